package store

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
)

func TestModelRoundTrip(t *testing.T) {
	t.Parallel()
	eachBackend(t, testModelRoundTrip)
}

func testModelRoundTrip(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	cached := 0.25
	want := Model{
		Name:     "gpt-4o*",
		Targets:  []config.Target{{Provider: "a", Model: "gpt-4o", Weight: 2}, {Provider: "b"}},
		Strategy: "weighted", DisplayName: "GPT-4o", Description: "fast",
		ContextWindow: 128000, MaxInputTokens: 100000, MaxOutputTokens: 16384,
		Pricing:  &config.Pricing{Currency: "usd", InputPer1M: 2.5, CachedPer1M: &cached, OutputPer1M: 10},
		Flags:    []string{"vision", "tools"},
		Metadata: map[string]any{"family": "gpt", "size": 3.0, "nested": map[string]any{"ok": true}},
	}
	change(t, s, func(tx *Tx) error { return tx.PutModel(want) })
	got := entries(t, s).Models[0]
	if got.UpdatedAt.IsZero() {
		t.Error("no UpdatedAt")
	}
	got.UpdatedAt = time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	// Replace: same place, new values; empty and nil lists kept apart.
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("second")) })
	change(t, s, func(tx *Tx) error { return tx.PutModel(Model{Name: "gpt-4o*", Flags: []string{}}) })
	e := entries(t, s)
	if names := modelNames(e); strings.Join(names, ",") != "gpt-4o*,second" {
		t.Errorf("order %v", names)
	}
	if m := e.Models[0]; m.Flags == nil || len(m.Flags) != 0 || m.Targets != nil || m.Pricing != nil || m.Metadata != nil {
		t.Errorf("replaced model = %+v", m)
	}

	for _, name := range []string{"", " gpt", "gpt ", "a\nb", "a\x00b"} {
		err := s.Change(context.Background(), "test", func(tx *Tx) error { return tx.PutModel(Model{Name: name}) })
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != "name" {
			t.Errorf("model name %q: %v", name, err)
		}
	}
	err := s.Change(context.Background(), "test", func(tx *Tx) error {
		return tx.PutModel(Model{Name: "m", Metadata: map[string]any{"f": func() {}}})
	})
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Field != "metadata" {
		t.Errorf("unencodable metadata: %v", err)
	}
}

func TestClientKeys(t *testing.T) {
	t.Parallel()
	eachBackend(t, testClientKeys)
}

func testClientKeys(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	ctx := context.Background()
	d1, d2, d3 := access.Digest("client-secret-one"), access.Digest("client-secret-two"), access.Digest("client-secret-three")
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var id1, id2 int64
	change(t, s, func(tx *Tx) error {
		var err error
		if id1, err = tx.CreateClientKey(ClientKey{
			Name: "alice", Digest: strings.ToUpper(d1), Models: []string{"gpt-*"}, Presets: []string{},
			RPM: 60, TPM: 1000, MaxParallel: 2, Budget: &config.Budget{Amount: 5, Period: "day", Currency: "usd"}, Expires: expires,
		}); err != nil {
			return err
		}
		id2, err = tx.CreateClientKey(ClientKey{Name: "bob", Digest: d2})
		return err
	})
	keys := entries(t, s).ClientKeys
	if len(keys) != 2 || keys[0].ID != id1 || keys[1].ID != id2 {
		t.Fatalf("keys = %+v", keys)
	}
	alice := keys[0]
	if alice.Digest != d1 {
		t.Errorf("digest %q, want it lower-cased %q", alice.Digest, d1)
	}
	if alice.Presets == nil || len(alice.Presets) != 0 || keys[1].Models != nil || keys[1].Presets != nil {
		t.Errorf("nil (all) and empty (none) scopes mixed up: %+v / %+v", alice, keys[1])
	}
	if !alice.Expires.Equal(expires) || alice.CreatedAt.IsZero() || !alice.Active() ||
		alice.RPM != 60 || alice.TPM != 1000 || alice.MaxParallel != 2 || *alice.Budget != (config.Budget{Amount: 5, Period: "day", Currency: "usd"}) {
		t.Errorf("alice = %+v", alice)
	}

	for _, tc := range []struct {
		name  string
		fn    func(tx *Tx) error
		field string
	}{
		{"same name", func(tx *Tx) error { _, err := tx.CreateClientKey(ClientKey{Name: "alice", Digest: d3}); return err }, "name"},
		{"same secret", func(tx *Tx) error { _, err := tx.CreateClientKey(ClientKey{Name: "carol", Digest: d1}); return err }, "digest"},
		{"no digest", func(tx *Tx) error { _, err := tx.CreateClientKey(ClientKey{Name: "carol"}); return err }, "digest"},
		{"short digest", func(tx *Tx) error {
			_, err := tx.CreateClientKey(ClientKey{Name: "carol", Digest: d3[:40]})
			return err
		}, "digest"},
		{"no name", func(tx *Tx) error { _, err := tx.CreateClientKey(ClientKey{Digest: d3}); return err }, "name"},
		{"rename onto another", func(tx *Tx) error { return tx.UpdateClientKey(ClientKey{ID: id2, Name: "alice"}) }, "name"},
	} {
		err := s.Change(ctx, "test", tc.fn)
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field {
			t.Errorf("%s: %v, want an *InvalidError on %s", tc.name, err, tc.field)
		}
	}

	// Update: everything but the digest, the creation and a revocation.
	change(t, s, func(tx *Tx) error {
		return tx.UpdateClientKey(ClientKey{ID: id1, Name: "alice2", Digest: d3, RPM: 5, CreatedAt: time.Unix(1, 0), RevokedAt: time.Unix(2, 0)})
	})
	alice2 := entries(t, s).ClientKeys[0]
	if alice2.Name != "alice2" || alice2.Digest != d1 || alice2.RPM != 5 || alice2.Models != nil || alice2.Budget != nil ||
		!alice2.Expires.IsZero() || !alice2.CreatedAt.Equal(alice.CreatedAt) || !alice2.Active() {
		t.Errorf("after update: %+v", alice2)
	}

	// Revoke: the name is free again; a revoked key stays revoked.
	change(t, s, func(tx *Tx) error { return tx.RevokeClientKey(id2) })
	change(t, s, func(tx *Tx) error { return tx.RevokeClientKey(id2) }) // again: no change
	change(t, s, func(tx *Tx) error {
		_, err := tx.CreateClientKey(ClientKey{Name: "bob", Digest: d3})
		return err
	})
	keys = entries(t, s).ClientKeys
	if len(keys) != 3 || keys[1].Active() || !keys[2].Active() || keys[2].Name != "bob" {
		t.Errorf("after revoke and re-create: %+v", keys)
	}
	if err := s.Change(ctx, "test", func(tx *Tx) error { return tx.UpdateClientKey(ClientKey{ID: id2, Name: "bob-old"}) }); err == nil ||
		!strings.Contains(err.Error(), "revoked") {
		t.Errorf("updating a revoked key: %v", err)
	}
	for _, fn := range []func(tx *Tx) error{
		func(tx *Tx) error { return tx.RevokeClientKey(999) },
		func(tx *Tx) error { return tx.UpdateClientKey(ClientKey{ID: 999, Name: "x"}) },
	} {
		if err := s.Change(ctx, "test", fn); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown ID: %v, want ErrNotFound", err)
		}
	}
	// An import may bring a revoked key whose name an active one has.
	change(t, s, func(tx *Tx) error {
		_, err := tx.CreateClientKey(ClientKey{Name: "bob", Digest: access.Digest("old-bob"), RevokedAt: time.Unix(100, 0)})
		return err
	})
}

// The database itself refuses two active keys of one name (migration 2),
// whatever code writes them.
func TestActiveNameUniqueInSchema(t *testing.T) {
	t.Parallel()
	eachBackend(t, testActiveNameUniqueInSchema)
}

func testActiveNameUniqueInSchema(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	ins := `INSERT INTO client_keys (name, digest, models, presets, rpm, tpm, max_parallel, budget, expires_at, created_at, revoked_at)
VALUES ($1, $2, 'null', 'null', 0, 0, 0, 'null', 0, 1, $3)`
	if _, err := s.w.Exec(ins, "k", access.Digest("1"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(ins, "k", access.Digest("2"), 5); err != nil {
		t.Errorf("a revoked key of the same name: %v", err)
	}
	if _, err := s.w.Exec(ins, "k", access.Digest("3"), nil); err == nil {
		t.Error("two active keys of one name were stored")
	}
}

func fileConfig() *config.Config {
	cfg := config.Default()
	cfg.AddProvider(config.Provider{Name: "file-p", BaseURL: "https://f.example/v1", Keys: []string{"sk-file-0123456789"}})
	cfg.AddModel(config.Model{Name: "file-m", Targets: []config.Target{{Provider: "file-p"}}})
	cfg.ClientKeys = append(cfg.ClientKeys, config.ClientKey{Name: "file-k", Key: "file-client-secret-123456", Origin: "config"})
	return cfg
}

func storeEntries(t *testing.T, opts Options) (*Store, Entries) {
	s := openAt(t, opts, testKey)
	change(t, s, func(tx *Tx) error {
		if err := tx.PutProvider(Provider{Name: "store-p", BaseURL: "https://s.example/v1",
			Keys: []ProviderKey{{Env: "STORE_KEY"}, {Name: "lit", Secret: secretA}}}); err != nil {
			return err
		}
		if err := tx.PutModel(Model{Name: "store-m", Targets: []config.Target{{Provider: "store-p", Model: "up"}, {Provider: "file-p"}},
			Pricing: &config.Pricing{InputPer1M: 1}}); err != nil {
			return err
		}
		if _, err := tx.CreateClientKey(ClientKey{Name: "store-k", Digest: access.Digest("store-client-secret-1"), Models: []string{"store-m"}, RPM: 7}); err != nil {
			return err
		}
		id, err := tx.CreateClientKey(ClientKey{Name: "gone", Digest: access.Digest("revoked-client-secret")})
		if err != nil {
			return err
		}
		return tx.RevokeClientKey(id)
	})
	return s, entries(t, s)
}

func TestApply(t *testing.T) {
	t.Parallel()
	eachBackend(t, testApply)
}

func testApply(t *testing.T, b backend) {
	_, e := storeEntries(t, b.fresh(t))
	cfg := fileConfig()
	if err := e.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	provs := cfg.ProviderList()
	if len(provs) != 2 || provs[1].Name != "store-p" || provs[1].Origin != "store" || provs[0].Origin != "config" {
		t.Fatalf("providers = %+v", provs)
	}
	if got := provs[1].Keys; !reflect.DeepEqual(got, []string{"env:STORE_KEY", secretA}) {
		t.Errorf("keys = %q", got)
	}
	models := cfg.ModelList()
	if len(models) != 2 || models[1].Name != "store-m" || models[1].Origin != "store" || models[1].Pricing.InputPer1M != 1 {
		t.Errorf("models = %+v", models)
	}
	var names []string
	for _, k := range cfg.ClientKeys {
		names = append(names, k.Name+"/"+k.Origin)
	}
	if strings.Join(names, ",") != "file-k/config,store-k/store" {
		t.Errorf("client keys = %v (the revoked one must be left out)", names)
	}
	if k := cfg.ClientKeys[1]; k.Key != "sha256:"+access.Digest("store-client-secret-1") || k.RPM != 7 || !reflect.DeepEqual(k.Models, []string{"store-m"}) {
		t.Errorf("store-k = %+v", k)
	}

	// What Apply built is what the gateway compiles: the real check.
	health := gateway.NewHealth()
	snap, err := gateway.Compile(cfg, gateway.Deps{
		Transport: func(string, string) http.RoundTripper { return http.DefaultTransport },
		Guarded:   http.DefaultTransport,
		Health:    health,
		Getenv:    func(name string) string { return map[string]string{"STORE_KEY": "sk-from-env-0123456789"}[name] },
	})
	if err != nil {
		t.Fatalf("gateway.Compile: %v", err)
	}
	var sp *gateway.Provider
	for _, p := range snap.Providers() {
		if p.Name == "store-p" {
			sp = p
		}
	}
	if sp == nil || sp.Origin != "store" || len(sp.Keys()) != 2 {
		t.Fatalf("compiled store-p = %+v", sp)
	}
	// The panel's key names reach the gateway (stats, pages, logs).
	if got := []string{sp.Keys()[0].Name, sp.Keys()[1].Name}; !reflect.DeepEqual(got, []string{"STORE_KEY", "lit"}) {
		t.Errorf("compiled key names %v", got)
	}
	var storeKey bool
	for _, k := range snap.Keys().List() {
		storeKey = storeKey || k.Name == "store-k" && k.Origin == "store"
	}
	if !storeKey {
		t.Error("store-k did not reach the compiled client keys")
	}
}

func TestApplyConflicts(t *testing.T) {
	t.Parallel()
	eachBackend(t, testApplyConflicts)
}

func testApplyConflicts(t *testing.T, b backend) {
	for _, tc := range []struct {
		name string
		edit func(cfg *config.Config)
		want string
	}{
		{"provider", func(cfg *config.Config) {
			cfg.AddProvider(config.Provider{Name: "store-p", Origin: "ROUTES_CONFIG", BaseURL: "https://x.example"})
		}, `provider "store-p" from store is already defined by ROUTES_CONFIG`},
		{"model", func(cfg *config.Config) {
			cfg.AddModel(config.Model{Name: "store-m"})
		}, `model "store-m" from store is already defined by config`},
		{"client key", func(cfg *config.Config) {
			cfg.ClientKeys = append(cfg.ClientKeys, config.ClientKey{Name: "store-k", Origin: "PROXY_AUTH_TOKEN"})
		}, `client key "store-k" from store is already defined by PROXY_AUTH_TOKEN`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, e := storeEntries(t, b.fresh(t))
			cfg := fileConfig()
			tc.edit(cfg)
			before := cfg.Clone()
			err := e.Apply(cfg)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if !reflect.DeepEqual(cfg.ProviderList(), before.ProviderList()) || !reflect.DeepEqual(cfg.ModelList(), before.ModelList()) ||
				!reflect.DeepEqual(cfg.ClientKeys, before.ClientKeys) {
				t.Error("a failed Apply changed the configuration")
			}
		})
	}
	// A revoked key's name is free for the file.
	_, e := storeEntries(t, b.fresh(t))
	cfg := fileConfig()
	cfg.ClientKeys = append(cfg.ClientKeys, config.ClientKey{Name: "gone"})
	if err := e.Apply(cfg); err != nil {
		t.Errorf("a revoked store key blocked a file key's name: %v", err)
	}
}

func TestApplyRefusesLockedKeys(t *testing.T) {
	t.Parallel()
	eachBackend(t, testApplyRefusesLockedKeys)
}

func testApplyRefusesLockedKeys(t *testing.T, b backend) {
	opts := b.fresh(t)
	s, _ := storeEntries(t, opts)
	s.Close()
	s = openAt(t, opts, nil)
	e := entries(t, s)
	cfg := fileConfig()
	err := e.Apply(cfg)
	if !errors.Is(err, ErrNoSecretKey) || !strings.Contains(err.Error(), `provider "store-p" key "lit"`) {
		t.Fatalf("err = %v", err)
	}
	if len(cfg.ProviderList()) != 1 {
		t.Error("a failed Apply changed the configuration")
	}
	// The caller's other choice: serve without the locked key.
	without := e.WithoutLocked()
	if err := without.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if got := cfg.ProviderList()[1].Keys; !reflect.DeepEqual(got, []string{"env:STORE_KEY"}) {
		t.Errorf("keys without the locked one = %q", got)
	}
	// The gateway learns that the provider holds a key it cannot use: with
	// every key locked it refuses rather than send requests without one.
	if got := cfg.ProviderList()[1].Unusable; got != 1 {
		t.Errorf("Unusable = %d, want the one locked key", got)
	}
	if len(e.Providers[0].Keys) != 2 || len(without.Locked()) != 0 || e.Providers[0].LeftOut != 0 {
		t.Error("WithoutLocked changed the entries it was called on, or kept a locked key")
	}
}
