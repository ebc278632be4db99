//go:build linux

package main

import (
	"context"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/store"
)

// openDataDir opens the store in dir as llmproxy would, with this
// process's LLMPROXY_SECRET_KEY.
func openDataDir(t *testing.T, dir string) *store.Store {
	t.Helper()
	var key []byte
	if v := os.Getenv(EnvSecretKey); v != "" {
		var err error
		if key, err = store.ParseSecretKey(v); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(context.Background(), store.Options{DataDir: dir, SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// changeDataDir makes one change in the store in dir, and closes it.
func changeDataDir(t *testing.T, dir string, fn func(tx *store.Tx) error) {
	t.Helper()
	st := openDataDir(t, dir)
	defer st.Close()
	if err := st.Change(context.Background(), "test", fn); err != nil {
		t.Fatal(err)
	}
}

// dataDirState reads the store's entries and revision, and closes it.
func dataDirState(t *testing.T, dir string) (store.Entries, int64) {
	t.Helper()
	st := openDataDir(t, dir)
	defer st.Close()
	e, err := st.Entries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rev, err := st.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return e, rev
}

// `llmproxy export` writes YAML that --config accepts: literal provider
// keys only with --with-secrets (and a count of those left out), client
// keys as the digests of their secrets, scopes and limits as they were.
// Served as a config file, the export authenticates the same secrets and
// routes as the store did.
func TestExportIsAConfigFile(t *testing.T) {
	clearEnv(t)
	secretKey := secretKeyHex()
	t.Setenv(EnvSecretKey, secretKey)
	const (
		literal  = "sk-export-literal-provider-key-0001"
		envValue = "sk-export-env-provider-key-00000002"
		alice    = "ck-export-alice-secret-0000000001"
		nobody   = "ck-export-nobody-secret-000000002"
		gone     = "ck-export-revoked-secret-00000003"
	)
	t.Setenv("EXPORT_ENV_KEY", envValue)
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{literal, envValue}}, nil)
	dir := t.TempDir()
	cached := 0.5
	expires := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	stored := store.Model{Name: "exp-chat", Targets: []config.Target{{Provider: "exp", Model: "gpt-exp"}}, Strategy: "fallback",
		DisplayName: "Export chat", Description: "routed to the fake", ContextWindow: 128000, MaxOutputTokens: 4096,
		Pricing: &config.Pricing{Currency: "usd", InputPer1M: 2, CachedPer1M: &cached, OutputPer1M: 8},
		Flags:   []string{"tools"}, Metadata: map[string]any{"tier": "gold"}}
	budget := &config.Budget{Amount: 5, Period: "day", Currency: "usd"}
	changeDataDir(t, dir, func(tx *store.Tx) error {
		if err := tx.PutProvider(store.Provider{Name: "exp", BaseURL: fake.URL + "/v1",
			Keys: []store.ProviderKey{{Name: "main", Secret: literal}, {Env: "EXPORT_ENV_KEY"}}}); err != nil {
			return err
		}
		if err := tx.PutModel(stored); err != nil {
			return err
		}
		if _, err := tx.CreateClientKey(store.ClientKey{Name: "alice", Digest: access.Digest(alice), Models: []string{"exp-*"},
			RPM: 60, Budget: budget, Expires: expires}); err != nil {
			return err
		}
		// An empty list of models: a key that may use none of them.
		if _, err := tx.CreateClientKey(store.ClientKey{Name: "nobody", Digest: access.Digest(nobody), Models: []string{}}); err != nil {
			return err
		}
		id, err := tx.CreateClientKey(store.ClientKey{Name: "gone", Digest: access.Digest(gone)})
		if err != nil {
			return err
		}
		return tx.RevokeClientKey(id)
	})
	entries, _ := dataDirState(t, dir)
	if i := slices.IndexFunc(entries.ClientKeys, func(k store.ClientKey) bool { return k.Name == "nobody" }); i < 0 || entries.ClientKeys[i].Models == nil {
		t.Fatal("the store did not keep nobody's empty list of models")
	}

	tests := []struct {
		name      string
		args      []string
		secretKey string // LLMPROXY_SECRET_KEY for the export
		literal   bool   // the literal provider key is in the export
		comment   string // a part of the header that must be there
	}{
		{name: "without secrets", args: []string{"export"}, secretKey: secretKey, comment: "# 1 provider key(s) saved as literals are left out"},
		{name: "with secrets", args: []string{"export", "--with-secrets"}, secretKey: secretKey, literal: true},
		{name: "with secrets, as yes", args: []string{"export", "--with-secrets=yes"}, secretKey: secretKey, literal: true},
		{name: "with secrets off", args: []string{"export", "--with-secrets=off"}, secretKey: secretKey, comment: "# 1 provider key(s) saved as literals are left out"},
		// Asked for secrets it cannot decrypt, the export must not pretend
		// --with-secrets would include them: it says the secret key is
		// the wrong one.
		{name: "with secrets, another secret key", args: []string{"export", "--with-secrets"}, secretKey: secretKeyHex(), comment: EnvSecretKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvSecretKey, tc.secretKey)
			code, out, stderr := runCLI(t, append(tc.args, "--data-dir", dir)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got := strings.Contains(out, literal); got != tc.literal {
				t.Errorf("the literal provider key in the export: %v, want %v", got, tc.literal)
			}
			if l := leaks(out+stderr, []string{alice, nobody, gone, access.Digest(gone)}); len(l) > 0 {
				t.Errorf("the export holds %v (a client secret, or the revoked key)", l)
			}
			if tc.comment != "" && !strings.Contains(out, tc.comment) {
				t.Errorf("the header does not say %q:\n%s", tc.comment, out)
			}
			if tc.literal && strings.Contains(out, "left out") {
				t.Errorf("with the secrets the export still says keys were left out:\n%s", out)
			}
			for _, want := range []string{"env:EXPORT_ENV_KEY", "sha256:" + access.Digest(alice), "sha256:" + access.Digest(nobody)} {
				if !strings.Contains(out, want) {
					t.Errorf("the export lacks %s:\n%s", want, out)
				}
			}

			path := writeFile(t, out)
			cfg, err := config.Load(path)
			if err == nil {
				err = cfg.Validate()
			}
			if err != nil {
				t.Fatalf("--config refuses the export: %v\n%s", err, out)
			}
			m, ok := cfg.Models["exp-chat"]
			if !ok {
				t.Fatalf("no exp-chat in %v", cfg.Models)
			}
			got := store.Model{Name: "exp-chat", Targets: m.Targets, Strategy: m.Strategy, DisplayName: m.DisplayName,
				Description: m.Description, ContextWindow: m.ContextWindow, MaxInputTokens: m.MaxInputTokens,
				MaxOutputTokens: m.MaxOutputTokens, Pricing: m.Pricing, Flags: m.Flags, Metadata: m.Metadata}
			if !reflect.DeepEqual(got, stored) {
				t.Errorf("the exported route:\n%+v\nwant\n%+v", got, stored)
			}
			byName := map[string]config.ClientKey{}
			for _, k := range cfg.ClientKeys {
				byName[k.Name] = k
			}
			if _, ok := byName["gone"]; ok || len(byName) != 2 {
				t.Errorf("exported client keys %v, want alice and nobody (not the revoked one)", slices.Sorted(maps.Keys(byName)))
			}
			if a := byName["alice"]; !slices.Equal(a.Models, []string{"exp-*"}) || a.RPM != 60 ||
				!reflect.DeepEqual(a.Budget, budget) || !a.Expires.Equal(expires) {
				t.Errorf("alice exported as %+v", a)
			}
			if n := byName["nobody"]; n.Models == nil {
				t.Error("nobody (no models) is exported without its empty list of models: as a config file it may use every model")
			}

			// The export as the config file of a server without a store.
			srv := startLLMProxy(t, "--config", path, "--data-dir", t.TempDir(), "--upstream-ca", providertest.CA(t).CAFile)
			hc := newHTTPClient(t)
			sent := len(fake.Requests())
			if code, body := chat(t, hc, srv.base(), alice, "exp-chat"); code != http.StatusOK {
				t.Errorf("alice's secret against the export: %d %s", code, body)
			}
			for _, r := range fake.Requests()[sent:] {
				if auth := r.Header.Get("Authorization"); auth != "Bearer "+envValue && !(tc.literal && auth == "Bearer "+literal) {
					t.Errorf("the provider got a key it should not have (literal exported: %v)", tc.literal)
				}
			}
			sent = len(fake.Requests())
			if code, _ := chat(t, hc, srv.base(), nobody, "exp-chat"); code == http.StatusOK || len(fake.Requests()) != sent {
				t.Errorf("nobody, who may use no model, was served (%d) by the export", code)
			}
			if code, _ := chat(t, hc, srv.base(), gone, "exp-chat"); code != http.StatusUnauthorized {
				t.Errorf("the revoked key against the export: %d, want 401", code)
			}
			if code := srv.stop(); code != exitOK {
				t.Errorf("exit %d", code)
			}
			if l := leaks(srv.logs.String(), []string{literal, envValue, alice, nobody}); len(l) > 0 {
				t.Errorf("the server logged %v", l)
			}
		})
	}

	t.Run("no store", func(t *testing.T) {
		empty := t.TempDir()
		code, _, stderr := runCLI(t, "export", "--data-dir", empty)
		if code != exitFailure || !strings.Contains(stderr, "no admin store in "+empty) {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
}

// `llmproxy export --with-secrets` then `llmproxy import` into an empty
// data dir (a backup restored) gives back the provider keys by the names
// the panel, /stats and the usage page show: a key whose name is not the
// one a bare spec gets is written {name, key}, which import (and --config)
// read back; the others stay bare.
func TestExportImportKeepsProviderKeyNames(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvSecretKey, secretKeyHex())
	t.Setenv("NAMES_ENV_KEY", "sk-names-env-provider-key-0000002")
	t.Setenv("NAMES_OTHER_KEY", "sk-names-other-provider-key-00003")
	src := t.TempDir()
	keys := []store.ProviderKey{
		{Name: "main", Secret: "sk-names-literal-provider-key-001"},
		{Name: "backup", Env: "NAMES_ENV_KEY"},
		{Name: "NAMES_OTHER_KEY", Env: "NAMES_OTHER_KEY"}, // its default name
		{Name: "key-4", Secret: "sk-names-literal-provider-key-004"},
	}
	changeDataDir(t, src, func(tx *store.Tx) error {
		return tx.PutProvider(store.Provider{Name: "prov", BaseURL: "https://prov.example/v1", Keys: keys})
	})
	code, out, stderr := runCLI(t, "export", "--with-secrets", "--data-dir", src)
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	for _, bare := range []string{"- env:NAMES_OTHER_KEY\n", "- sk-names-literal-provider-key-004\n"} {
		if !strings.Contains(out, bare) {
			t.Errorf("a key with its default name is not written bare (%q):\n%s", bare, out)
		}
	}
	file := writeFile(t, out)
	dst := t.TempDir()
	if code, out, stderr := runCLI(t, "import", "--data-dir", dst, file); code != exitOK {
		t.Fatalf("import: exit %d: %s%s", code, out, stderr)
	}
	e, _ := dataDirState(t, dst)
	if len(e.Providers) != 1 || len(e.Providers[0].Keys) != len(keys) {
		t.Fatalf("providers: %+v", e.Providers)
	}
	for i, k := range e.Providers[0].Keys {
		if k.Name != keys[i].Name || k.Env != keys[i].Env || k.Secret != keys[i].Secret {
			t.Errorf("key %d after export and import: %q (env %q), want %q (env %q)", i, k.Name, k.Env, keys[i].Name, keys[i].Env)
		}
	}
	// The export as a config file names its keys the same way.
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"main", "backup", "", ""}
	if got := cfg.Providers["prov"].KeyNames; !slices.Equal(got, want) {
		t.Errorf("KeyNames from --config: %q, want %q", got, want)
	}
}

// `llmproxy import FILE` loads providers, models and client keys in one
// change (a client key as a literal, env:NAME or sha256:…); a bad file
// changes nothing; a running server serves an import within moments (it
// watches the store), and keeps it through a SIGHUP.
func TestImportLoadsAFileInOneChange(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvSecretKey, secretKeyHex())
	const (
		providerLiteral = "sk-import-literal-provider-key-01"
		providerEnv     = "sk-import-env-provider-key-00002"
		clientLiteral   = "ck-import-literal-client-key-0003"
		clientEnv       = "ck-import-env-client-secret-00004"
		clientDigested  = "ck-import-digested-client-key-005"
		clientLate      = "ck-import-late-client-key-0000006"
	)
	t.Setenv("IMPORT_PROVIDER_KEY", providerEnv)
	t.Setenv("IMPORT_CLIENT_SECRET", clientEnv)
	t.Setenv("IMPORT_SHORT_SECRET", "ck-short-env-2")
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{providerLiteral, providerEnv}}, nil)
	dir := t.TempDir()
	// The store exists before the import, with an entry of its own.
	changeDataDir(t, dir, func(tx *store.Tx) error {
		return tx.PutProvider(store.Provider{Name: "before", BaseURL: "https://before.example/v1"})
	})
	_, rev0 := dataDirState(t, dir)

	file := writeFile(t, `providers:
  imp:
    base_url: `+fake.URL+`/v1
    keys: [env:IMPORT_PROVIDER_KEY, `+providerLiteral+`]
models:
  imp-chat:
    targets: [{provider: imp, model: gpt-imp}]
    pricing: {input_per_1m: 1, output_per_1m: 2}
client_keys:
  - {name: lit, key: `+clientLiteral+`, rpm: 30}
  - {name: fromenv, key: env:IMPORT_CLIENT_SECRET, models: [imp-*]}
  - {name: digested, key: sha256:`+strings.ToUpper(access.Digest(clientDigested))+`}
`)
	t.Run("one change", func(t *testing.T) {
		code, out, stderr := runCLI(t, "import", "--data-dir", dir, file)
		if code != exitOK || !strings.Contains(out, "imported 5 entries") {
			t.Fatalf("exit %d: %s%s", code, out, stderr)
		}
		if l := leaks(out+stderr, []string{providerLiteral, providerEnv, clientLiteral, clientEnv, clientDigested}); len(l) > 0 {
			t.Errorf("import printed %v", l)
		}
		e, rev := dataDirState(t, dir)
		if rev != rev0+1 {
			t.Errorf("revision %d → %d: not one change", rev0, rev)
		}
		i := slices.IndexFunc(e.Providers, func(p store.Provider) bool { return p.Name == "imp" })
		if i < 0 || !slices.ContainsFunc(e.Providers, func(p store.Provider) bool { return p.Name == "before" }) {
			t.Fatalf("providers after the import: %+v", e.Providers)
		}
		if keys := e.Providers[i].Keys; len(keys) != 2 || keys[0].Env != "IMPORT_PROVIDER_KEY" || keys[1].Secret != providerLiteral {
			t.Errorf("imp's keys: %d (the env reference first, then the literal)", len(keys))
		}
		if len(e.Models) != 1 || e.Models[0].Name != "imp-chat" || e.Models[0].Pricing == nil || e.Models[0].Pricing.OutputPer1M != 2 {
			t.Errorf("models after the import: %+v", e.Models)
		}
		want := map[string]string{"lit": access.Digest(clientLiteral), "fromenv": access.Digest(clientEnv), "digested": access.Digest(clientDigested)}
		for _, k := range e.ClientKeys {
			if want[k.Name] != k.Digest {
				t.Errorf("client key %s has the digest %s, want %s", k.Name, k.Digest, want[k.Name])
			}
			delete(want, k.Name)
		}
		if len(want) > 0 {
			t.Errorf("client keys not imported: %v", want)
		}
		st := openDataDir(t, dir)
		audit, err := st.Audit(context.Background(), 10)
		st.Close()
		if err != nil || len(audit) == 0 || audit[0].Action != "import" || audit[0].Target != file {
			t.Errorf("the audit log's last entry: %+v (%v)", audit, err)
		}
	})

	// Each bad file also holds a good provider, which must not be saved
	// either: all or nothing.
	half := "providers:\n  half:\n    base_url: https://half.example/v1\n"
	bad := []struct {
		name, yaml  string
		noSecretKey bool
		want        string // a part of the error
	}{
		{name: "a route to an unknown provider", yaml: half + "models:\n  m:\n    targets: [{provider: nosuch}]\n", want: "nosuch"},
		{name: "a client key from an unset variable", yaml: half + "client_keys:\n  - {name: u, key: env:IMPORT_UNSET_VARIABLE}\n", want: "IMPORT_UNSET_VARIABLE"},
		// Refused as the config file refuses them: never stored as a digest.
		{name: "a client key copied from an example", yaml: half + "client_keys:\n  - {name: copied, key: my-secret-password-123}\n", want: "client_keys.copied (config file): is a well-known placeholder"},
		{name: "a client key too short", yaml: half + "client_keys:\n  - {name: short, key: ck-short-key-1}\n", want: "client_keys.short (config file): is shorter than 16"},
		{name: "a client key from a variable too short", yaml: half + "client_keys:\n  - {name: shortenv, key: env:IMPORT_SHORT_SECRET}\n", want: "client_keys.shortenv (config file): is shorter than 16"},
		{name: "a digest that is not one", yaml: half + "client_keys:\n  - {name: d, key: 'sha256:not-a-digest'}\n", want: "64 hex digits"},
		{name: "a client key name the store has", yaml: half + "client_keys:\n  - {name: lit, key: ck-import-other-secret-0000000007}\n", want: "lit"},
		{name: "a secret the store has", yaml: half + "client_keys:\n  - {name: again, key: " + clientLiteral + "}\n", want: "secret"},
		{name: "a literal provider key without a secret key", yaml: "providers:\n  half:\n    base_url: https://half.example/v1\n    keys: [sk-import-unsealed-key-0000000008]\n",
			noSecretKey: true, want: EnvSecretKey},
		// The file that does not parse is named as what it is, the
		// import's argument (not --config, which was not given).
		{name: "not YAML", yaml: "providers: [\n", want: "llmproxy.yaml"},
	}
	t.Run("a bad file changes nothing", func(t *testing.T) {
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				if tc.noSecretKey {
					t.Setenv(EnvSecretKey, "")
				}
				before, rev := dataDirState(t, dir)
				code, out, stderr := runCLI(t, "import", "--data-dir", dir, writeFile(t, tc.yaml))
				if code == exitOK {
					t.Fatalf("imported: %s", out)
				}
				if !strings.Contains(stderr, tc.want) {
					t.Errorf("the error does not name %q: %s", tc.want, stderr)
				}
				if l := leaks(out+stderr, []string{clientLiteral, "sk-import-unsealed-key-0000000008", "ck-import-other-secret-0000000007",
					"my-secret-password-123", "ck-short-key-1", "ck-short-env-2"}); len(l) > 0 {
					t.Errorf("the error holds %v", l)
				}
				after, rev2 := dataDirState(t, dir)
				if rev2 != rev || !reflect.DeepEqual(after, before) {
					t.Errorf("the store changed (revision %d → %d)", rev, rev2)
				}
			})
		}
	})

	t.Run("served, and a later import applied while running", func(t *testing.T) {
		// No panel: a data dir holding a store is applied all the same.
		srv := startLLMProxy(t, "--data-dir", dir, "--upstream-ca", providertest.CA(t).CAFile)
		hc := newHTTPClient(t)
		for name, secret := range map[string]string{"literal": clientLiteral, "env:NAME": clientEnv, "sha256:": clientDigested} {
			if code, body := chat(t, hc, srv.base(), secret, "imp-chat"); code != http.StatusOK {
				t.Errorf("the key imported as %s: %d %s", name, code, body)
			}
		}
		// The running server watches the store: no SIGHUP needed.
		late := writeFile(t, "models:\n  late-chat:\n    targets: [{provider: imp}]\nclient_keys:\n  - {name: late, key: "+clientLate+"}\n")
		if code, out, stderr := runCLI(t, "import", "--data-dir", dir, late); code != exitOK {
			t.Fatalf("import while serving: exit %d: %s%s", code, out, stderr)
		}
		eventually(t, "the late import served", func() bool {
			code, _ := chat(t, hc, srv.base(), clientLate, "late-chat")
			return code == http.StatusOK
		})
		// A SIGHUP afterwards rebuilds from the file and the store alike.
		srv.hangup()
		eventually(t, "the reload", func() bool { return strings.Contains(srv.logs.String(), "configuration reloaded") })
		for _, secret := range []string{clientLate, clientLiteral} {
			if code, body := chat(t, hc, srv.base(), secret, "late-chat"); code != http.StatusOK {
				t.Errorf("after SIGHUP: %d %s", code, body)
			}
		}
		srv.stop()
		if l := leaks(srv.logs.String(), []string{providerLiteral, providerEnv, clientLiteral, clientEnv, clientDigested, clientLate}); len(l) > 0 {
			t.Errorf("the server logged %v", l)
		}
	})
}

// A provider key the store cannot decrypt (saved with another
// LLMPROXY_SECRET_KEY) does not block an import of unrelated entries, as
// it does not block a change in the panel.
func TestImportIsNotBlockedByALockedKey(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvSecretKey, secretKeyHex())
	dir := t.TempDir()
	changeDataDir(t, dir, func(tx *store.Tx) error {
		return tx.PutProvider(store.Provider{Name: "sealed", BaseURL: "https://sealed.example/v1",
			Keys: []store.ProviderKey{{Name: "main", Secret: "sk-sealed-import-key-00000000001"}}})
	})
	t.Setenv(EnvSecretKey, secretKeyHex())
	t.Setenv("UNRELATED_KEY", "sk-unrelated-provider-key-000001")
	file := writeFile(t, "providers:\n  unrelated:\n    base_url: https://unrelated.example/v1\n    keys: [env:UNRELATED_KEY]\n")
	_, rev := dataDirState(t, dir)
	code, out, stderr := runCLI(t, "import", "--data-dir", dir, file)
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
	e, rev2 := dataDirState(t, dir)
	if rev2 != rev+1 || !slices.ContainsFunc(e.Providers, func(p store.Provider) bool { return p.Name == "unrelated" }) {
		t.Errorf("the import was not saved (revision %d → %d)", rev, rev2)
	}
	if locked := e.Locked(); len(locked) != 1 || locked[0].Provider != "sealed" {
		t.Errorf("the locked key: %v, want sealed's, kept as it was", locked)
	}
}
