package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/admin"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/server"
	"github.com/llmproxy/llmproxy/store"
)

// EnvSecretKey encrypts provider keys saved from the panel (an interface:
// keep the name).
const EnvSecretKey = "LLMPROXY_SECRET_KEY"

// dbFile is the store's database in the data dir.
const dbFile = "llmproxy.db"

// openStore opens the admin store: when the panel is on, when a database
// URL is set, or when the data dir already holds a database (its entries
// keep applying with the panel off). nil when none. The secret key comes
// from LLMPROXY_SECRET_KEY.
func openStore(ctx context.Context, cfg *config.Config, create bool) (*store.Store, bool, error) {
	return openStoreLogged(ctx, cfg, create, nil)
}

// openStoreLogged is openStore with a logger for the store's watch of
// PostgreSQL (a lost connection, reconnecting).
func openStoreLogged(ctx context.Context, cfg *config.Config, create bool, logger *slog.Logger) (*store.Store, bool, error) {
	if !create && !wantsStore(cfg) {
		return nil, false, nil
	}
	key, err := secretKey()
	if err != nil {
		return nil, false, err
	}
	st, err := store.Open(ctx, store.Options{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL, SecretKey: key, Logger: logger})
	if err != nil {
		setting := "data_dir"
		if cfg.DatabaseURL != "" {
			setting = "database_url"
		}
		return nil, false, &config.SettingError{Setting: setting, Msg: err.Error()}
	}
	return st, key != nil, nil
}

// wantsStore reports whether serve opens the admin store: the panel is
// on, or there is a store to read.
func wantsStore(cfg *config.Config) bool {
	return cfg.AdminPassword != "" || hasStore(cfg)
}

// secretKey reads LLMPROXY_SECRET_KEY: nil when unset, a *SettingError
// naming it when malformed.
func secretKey() ([]byte, error) {
	v := strings.TrimSpace(os.Getenv(EnvSecretKey))
	if v == "" {
		return nil, nil
	}
	key, err := store.ParseSecretKey(v)
	if err != nil {
		return nil, &config.SettingError{Setting: EnvSecretKey, Msg: err.Error()}
	}
	return key, nil
}

// hasStore reports whether there is a store to read: a database URL, or
// the embedded database in the data dir.
func hasStore(cfg *config.Config) bool {
	if cfg.DatabaseURL != "" {
		return true
	}
	_, err := os.Stat(filepath.Join(cfg.DataDir, dbFile))
	return err == nil
}

// withStore adds the store's entries to a configuration built from the
// file, the flags and the seed variables.
func withStore(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*config.Config, error) {
	if st == nil {
		return cfg, nil
	}
	e, err := st.Entries(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the admin store: %w", err)
	}
	// A key that cannot be decrypted (LLMPROXY_SECRET_KEY missing or not
	// the one it was saved with) is left out, loudly: llmproxy serves with
	// the keys it can use rather than not at all.
	for _, k := range e.Locked() {
		if log != nil {
			log.Warn("a provider key in the admin store cannot be decrypted and is left out: set "+EnvSecretKey+" to the key it was saved with",
				"provider", k.Provider, "key", k.Key)
		}
	}
	if err := e.WithoutLocked().Apply(cfg); err != nil {
		return nil, err
	}
	return cfg, cfg.Validate()
}

// panel wires the admin panel and the store into serve.
type panel struct {
	st      *store.Store
	rec     *store.Recorder
	handler http.Handler
	limiter *access.Local
	// applied is the store revision the panel's own last change applied:
	// the watch need not apply it again.
	applied atomic.Int64
}

// newPanel opens the store and builds the panel's handler; srv is filled
// in by the caller once the server exists (the panel's Test goes through
// it). build makes a configuration from the file, flags and variables.
func newPanel(ctx context.Context, cfg *config.Config, build func() (*config.Config, error),
	srv **server.Server, logger *slog.Logger) (*panel, error) {
	st, secret, err := openStoreLogged(ctx, cfg, false, logger)
	if err != nil || st == nil {
		return nil, err
	}
	p := &panel{st: st, rec: store.NewRecorder(st, 2*time.Second, logger), limiter: access.NewLocal()}
	if cfg.AdminPassword == "" {
		return p, nil
	}
	check := func(e store.Entries) error {
		fileCfg, err := build()
		if err != nil {
			return err
		}
		// Locked keys (not decryptable here) are left out as at start:
		// one of them must not block every change made in the panel.
		if err := e.WithoutLocked().Apply(fileCfg); err != nil {
			return err
		}
		if err := fileCfg.Validate(); err != nil {
			return err
		}
		// Compiled with throwaway transports and health: a check changes
		// nothing running.
		_, err = gateway.Compile(fileCfg, gateway.Deps{
			Transport: func(string, string) http.RoundTripper { return &recorder{} },
			Guarded:   &recorder{}, Health: gateway.NewHealth(),
		})
		return err
	}
	apply := func(ctx context.Context) error {
		rev, err := st.Revision(ctx) // read before the entries: the watch skips what this applies
		if err != nil {
			return err
		}
		fileCfg, err := build()
		if err != nil {
			return err
		}
		full, err := withStore(ctx, fileCfg, st, logger)
		if err != nil {
			return err
		}
		if err := (*srv).Apply(full); err != nil {
			return err
		}
		p.applied.Store(rev)
		return nil
	}
	p.handler, err = admin.New(admin.Options{
		Password:     cfg.AdminPassword,
		Store:        st,
		Check:        check,
		Apply:        apply,
		DropRevoked:  func(ctx context.Context) error { return p.dropRevoked(ctx, *srv) },
		Snapshot:     func() *gateway.Snapshot { return (*srv).Snapshot() },
		Gateway:      http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*srv).ServeHTTP(w, r) }),
		SecretKeySet: secret,
		Version:      versionString(),
		Logger:       logger,
	})
	if err != nil {
		st.Close()
		return nil, &config.SettingError{Setting: "admin_password", Msg: err.Error()}
	}
	return p, nil
}

// watch applies the store's changes made elsewhere — another replica's
// panel, llmproxy import — by the same swap as the panel's own, from the
// revision read before the entries applied at start. It returns when ctx
// ends.
func (p *panel) watch(ctx context.Context, since int64, srv *server.Server, build func() (*config.Config, error), logger *slog.Logger) {
	err := p.st.WatchFrom(ctx, since, func(rev int64) {
		if rev <= p.applied.Load() {
			return
		}
		cfg, err := build()
		if err == nil {
			err = srv.Apply(cfg)
		}
		if err != nil {
			logger.Warn("the admin store changed but its entries cannot be applied; the running configuration stays, less the client keys revoked", "revision", rev, "error", err)
			if err := p.dropRevoked(ctx, srv); err != nil {
				logger.Error("client keys revoked in the admin store may still be accepted", "revision", rev, "error", err)
			}
			return
		}
		logger.Info("applied a change from the admin store", "revision", rev)
	})
	if err != nil && ctx.Err() == nil {
		logger.Warn("not watching the admin store for changes", "error", err)
	}
}

// dropRevoked takes out of srv's running configuration every client key
// from the store that the store no longer has active (revoked, deleted),
// rebuilding nothing else: when the configuration cannot be rebuilt (a
// provider key's variable unset since start, say), a revocation still
// takes effect on the key's next request.
func (p *panel) dropRevoked(ctx context.Context, srv *server.Server) error {
	e, err := p.st.Entries(ctx)
	if err != nil {
		return err
	}
	active := make(map[string]bool, len(e.ClientKeys))
	for _, k := range e.ClientKeys {
		if k.Active() {
			active[k.Digest] = true
		}
	}
	srv.DropKeys(func(k *access.Key) bool { return k.Origin == "store" && !active[k.Digest()] })
	return nil
}

// record keeps an answered request's usage per day in the store.
func (p *panel) record(res gateway.Result, at time.Time) {
	day := at.UTC().Truncate(24 * time.Hour)
	model := res.Model
	if model == "" {
		model = "-"
	}
	p.rec.Record(store.UsageRow{
		Day: day, ClientID: clientID(res.Caller), Client: clientName(res.Caller), Model: model, Provider: res.Provider, Key: res.Key, Currency: res.Currency,
		Requests: 1, Input: res.Usage.Input, Cached: res.Usage.CachedInput, CacheWrite: res.Usage.CacheWrite,
		Output: res.Usage.Output, Reasoning: res.Usage.Reasoning, CostNanos: res.Cost,
	})
}

// clientID is the caller's client key's id, store.NoClientID for a caller
// without one: what a budget is restored by.
func clientID(c *access.Caller) string {
	if c == nil || c.Kind != access.Client {
		return store.NoClientID
	}
	return c.Key.ID
}

func clientName(c *access.Caller) string {
	if c == nil {
		return "anonymous"
	}
	return c.Name()
}

// restoreBudgets gives the limiter what each budgeted key spent in its
// current period, from the store's daily usage: a restart does not reset
// a budget.
func (p *panel) restoreBudgets(ctx context.Context, snap *gateway.Snapshot, logger *slog.Logger) {
	now := time.Now()
	for _, k := range snap.Keys().List() {
		if k.Budget == nil {
			continue
		}
		spent, err := p.st.Spent(ctx, k.ID, k.Name, k.Budget.Currency, k.Budget.Period.Start(now))
		if err != nil {
			logger.Warn("could not restore a client key's spending", "client", k.Name, "error", err)
			continue
		}
		p.limiter.AddSpent(k, now, spent)
	}
}

func (p *panel) close() {
	if p == nil {
		return
	}
	p.rec.Close()
	p.st.Close()
}

// exportStore writes the store's configuration as YAML that --config
// accepts. Provider keys stored as literals are left out unless
// --with-secrets; client keys are written as their digests (the store
// never had their secrets).
func exportStore(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if !hasStore(cfg) {
		return cli.Exit("no admin store in "+cfg.DataDir+" (--data-dir, LLMPROXY_DATA_DIR; or --database-url)", exitFailure)
	}
	st, _, err := openStore(c.Context, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	e, err := st.Entries(c.Context)
	if err != nil {
		return err
	}
	doc, skipped, locked := exportDoc(e, c.Bool("with-secrets"))
	out := c.App.Writer
	fmt.Fprintf(out, "# llmproxy admin store, exported %s (llmproxy %s)\n", time.Now().UTC().Format(time.RFC3339), versionString())
	if skipped > 0 {
		fmt.Fprintf(out, "# %d provider key(s) saved as literals are left out: llmproxy export --with-secrets includes them\n", skipped)
	}
	if locked > 0 {
		fmt.Fprintf(out, "# %d provider key(s) are left out because they do not decrypt with this %s\n", locked, EnvSecretKey)
	}
	enc := yaml.NewEncoder(out)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}

type exportProvider struct {
	Kind       string            `yaml:"kind,omitempty"`
	BaseURL    string            `yaml:"base_url,omitempty"`
	Preset     string            `yaml:"preset,omitempty"`
	Keys       []any             `yaml:"keys,omitempty"` // a spec, or exportProviderKey when named
	Weight     int               `yaml:"weight,omitempty"`
	Models     []string          `yaml:"models,omitempty"`
	Headers    map[string]string `yaml:"headers,omitempty"`
	Transport  string            `yaml:"transport,omitempty"`
	Responses  string            `yaml:"responses,omitempty"`
	APIVersion string            `yaml:"api_version,omitempty"`
}

// exportProviderKey is a provider key whose name is not the one the
// config loader would give it: {name, key} keeps the name.
type exportProviderKey struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type exportModel struct {
	Targets         []config.Target `yaml:"targets"`
	Strategy        string          `yaml:"strategy,omitempty"`
	DisplayName     string          `yaml:"display_name,omitempty"`
	Description     string          `yaml:"description,omitempty"`
	ContextWindow   int             `yaml:"context_window,omitempty"`
	MaxInputTokens  int             `yaml:"max_input_tokens,omitempty"`
	MaxOutputTokens int             `yaml:"max_output_tokens,omitempty"`
	Pricing         *config.Pricing `yaml:"pricing,omitempty"`
	Flags           []string        `yaml:"flags,omitempty"`
	Metadata        map[string]any  `yaml:"metadata,omitempty"`
}

type exportClientKey struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
	// Pointers: no list (nil) is every model, an empty list none, and
	// omitempty would write both as nothing.
	Models      *[]string      `yaml:"models,omitempty"`
	Presets     *[]string      `yaml:"presets,omitempty"`
	RPM         int            `yaml:"rpm,omitempty"`
	TPM         int            `yaml:"tpm,omitempty"`
	MaxParallel int            `yaml:"max_parallel,omitempty"`
	Budget      *config.Budget `yaml:"budget,omitempty"`
	Expires     *time.Time     `yaml:"expires,omitempty"`
}

type exportDocument struct {
	Providers  yaml.Node         `yaml:"providers,omitempty"`
	Models     yaml.Node         `yaml:"models,omitempty"`
	ClientKeys []exportClientKey `yaml:"client_keys,omitempty"`
}

// exportDoc turns store entries into a config document, in the store's
// order (a YAML mapping node keeps it).
func exportDoc(e store.Entries, withSecrets bool) (doc exportDocument, skipped, locked int) {
	doc.Providers = yaml.Node{Kind: yaml.MappingNode}
	for _, p := range e.Providers {
		ep := exportProvider{Kind: p.Kind, BaseURL: p.BaseURL, Preset: p.Preset, Weight: p.Weight, Models: p.Models,
			Headers: p.Headers, Transport: p.Transport, Responses: p.Responses, APIVersion: p.APIVersion}
		for _, k := range p.Keys {
			// The name the loader gives a key written bare: its
			// variable's, else key-N by its place in the list written.
			var spec, bare string
			switch {
			case k.Env != "":
				spec, bare = "env:"+k.Env, k.Env
			case k.Locked != nil:
				locked++
				continue
			case withSecrets && k.Secret != "":
				spec, bare = k.Secret, fmt.Sprintf("key-%d", len(ep.Keys)+1)
			default:
				skipped++
				continue
			}
			if k.Name == bare {
				ep.Keys = append(ep.Keys, spec)
			} else {
				ep.Keys = append(ep.Keys, exportProviderKey{Name: k.Name, Key: spec})
			}
		}
		appendPair(&doc.Providers, p.Name, ep)
	}
	doc.Models = yaml.Node{Kind: yaml.MappingNode}
	for _, m := range e.Models {
		appendPair(&doc.Models, m.Name, exportModel{Targets: m.Targets, Strategy: m.Strategy, DisplayName: m.DisplayName,
			Description: m.Description, ContextWindow: m.ContextWindow, MaxInputTokens: m.MaxInputTokens,
			MaxOutputTokens: m.MaxOutputTokens, Pricing: m.Pricing, Flags: m.Flags, Metadata: m.Metadata})
	}
	for _, k := range e.ClientKeys {
		if !k.Active() {
			continue
		}
		ek := exportClientKey{Name: k.Name, Key: "sha256:" + k.Digest,
			RPM: k.RPM, TPM: k.TPM, MaxParallel: k.MaxParallel, Budget: k.Budget}
		if k.Models != nil {
			ek.Models = &k.Models
		}
		if k.Presets != nil {
			ek.Presets = &k.Presets
		}
		if !k.Expires.IsZero() {
			exp := k.Expires
			ek.Expires = &exp
		}
		doc.ClientKeys = append(doc.ClientKeys, ek)
	}
	if len(doc.Providers.Content) == 0 {
		doc.Providers = yaml.Node{}
	}
	if len(doc.Models.Content) == 0 {
		doc.Models = yaml.Node{}
	}
	return doc, skipped, locked
}

func appendPair(m *yaml.Node, key string, v any) {
	var val yaml.Node
	if err := val.Encode(v); err != nil {
		return
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &val)
}

// importStore loads a YAML file (the --config format) into the store, as
// one change: every provider, model and client key in it, checked as a
// whole against the running file configuration first.
func importStore(c *cli.Context) error {
	path := c.Args().First()
	if path == "" || c.Args().Len() > 1 {
		return usageError{errors.New("import takes one file: llmproxy import FILE")}
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	in, err := config.Parse(data)
	if err != nil {
		var se *config.SettingError
		if errors.As(err, &se) && se.Setting == "config" {
			return fmt.Errorf("%s: %s", path, se.Msg)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	st, _, err := openStore(c.Context, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	n := 0
	err = st.Change(c.Context, "import", func(tx *store.Tx) error {
		for _, p := range in.ProviderList() {
			sp := store.Provider{Name: p.Name, Kind: p.Kind, BaseURL: p.BaseURL, Preset: p.Preset, Weight: p.Weight,
				Models: p.Models, Headers: p.Headers, Transport: p.Transport, Responses: p.Responses, APIVersion: p.APIVersion}
			for i, spec := range p.Keys {
				// A key written {name, key} keeps its name; the store
				// names the others (the variable's name, else key-N).
				var k store.ProviderKey
				if i < len(p.KeyNames) {
					k.Name = p.KeyNames[i]
				}
				if env, ok := strings.CutPrefix(spec, "env:"); ok {
					k.Env = env
				} else {
					k.Secret = spec
				}
				sp.Keys = append(sp.Keys, k)
			}
			if err := tx.PutProvider(sp); err != nil {
				return err
			}
			n++
		}
		for _, m := range in.ModelList() {
			if err := tx.PutModel(store.Model{Name: m.Name, Targets: m.Targets, Strategy: m.Strategy, DisplayName: m.DisplayName,
				Description: m.Description, ContextWindow: m.ContextWindow, MaxInputTokens: m.MaxInputTokens,
				MaxOutputTokens: m.MaxOutputTokens, Pricing: m.Pricing, Flags: m.Flags, Metadata: m.Metadata}); err != nil {
				return err
			}
			n++
		}
		for _, k := range in.ClientKeys {
			// Checked as the config file's client keys are: a short or
			// example secret is refused, not stored as its digest.
			digest, err := access.SpecDigest(k.Key, os.Getenv)
			if err != nil {
				return &config.SettingError{Setting: "client_keys." + k.Name, Msg: err.Error()}
			}
			if _, err := tx.CreateClientKey(store.ClientKey{Name: k.Name, Digest: digest, Models: k.Models, Presets: k.Presets,
				RPM: k.RPM, TPM: k.TPM, MaxParallel: k.MaxParallel, Budget: k.Budget, Expires: k.Expires}); err != nil {
				return err
			}
			n++
		}
		if err := tx.Audit("import", path, fmt.Sprintf("%d entries", n)); err != nil {
			return err
		}
		e, err := tx.Entries()
		if err != nil {
			return err
		}
		full, err := loadConfig(c)
		if err != nil {
			return err
		}
		// Checked as serve applies it: keys that do not decrypt here are
		// left out, not a reason to refuse the file.
		if err := e.WithoutLocked().Apply(full); err != nil {
			return err
		}
		if err := full.Validate(); err != nil {
			return err
		}
		_, err = gateway.Compile(full, gateway.Deps{
			Transport: func(string, string) http.RoundTripper { return &recorder{} },
			Guarded:   &recorder{}, Health: gateway.NewHealth(),
		})
		return err
	})
	if err != nil {
		return err
	}
	where := cfg.DataDir
	if cfg.DatabaseURL != "" {
		where = "the PostgreSQL store"
	}
	fmt.Fprintf(c.App.Writer, "imported %d entries from %s into %s; a running llmproxy applies them within a second\n", n, path, where)
	if other := otherSettings(data); len(other) > 0 {
		fmt.Fprintf(c.App.Writer, "not imported (the store keeps providers, models and client keys only): %s\n", strings.Join(other, ", "))
	}
	return nil
}

// otherSettings lists a config file's top-level keys that import does not
// take.
func otherSettings(data []byte) []string {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	m := root.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		switch k := m[i].Value; k {
		case "providers", "models", "client_keys":
		default:
			out = append(out, k)
		}
	}
	return out
}
