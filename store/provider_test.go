package store

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const (
	secretA = "sk-test-AAAAsecretvalue-0001"
	secretB = "sk-test-BBBBsecretvalue-0002"
	secretC = "sk-test-CCCCsecretvalue-0003"
	short   = "sk-short"
)

func provider(name string, keys ...ProviderKey) Provider {
	return Provider{Name: name, Kind: "openai", BaseURL: "https://" + name + ".example/v1", Keys: keys}
}

func findProvider(t testing.TB, e Entries, name string) Provider {
	t.Helper()
	for _, p := range e.Providers {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no provider %q in %v", name, e.Providers)
	return Provider{}
}

type keyView struct{ Name, Env, Secret, Last4 string }

func keyViews(p Provider) []keyView {
	var out []keyView
	for _, k := range p.Keys {
		if k.Locked != nil {
			out = append(out, keyView{Name: k.Name, Secret: "LOCKED"})
			continue
		}
		out = append(out, keyView{k.Name, k.Env, k.Secret, k.Last4})
	}
	return out
}

func TestProviderRoundTrip(t *testing.T) {
	t.Parallel()
	eachBackend(t, testProviderRoundTrip)
}

func testProviderRoundTrip(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	want := Provider{
		Name: "zhipu", Kind: "openai", BaseURL: "https://open.bigmodel.cn/api/paas/v4", Weight: 3,
		Models: []string{"glm-*"}, Headers: map[string]string{"OpenAI-Organization": "org-1"},
		Transport: "fetch", Responses: "translate", APIVersion: "2024-10-21",
		Keys: []ProviderKey{{Env: "ZHIPU_KEY"}, {Name: "main", Secret: secretA}},
	}
	change(t, s, func(tx *Tx) error { return tx.PutProvider(want) })
	got := findProvider(t, entries(t, s), "zhipu")
	if got.UpdatedAt.IsZero() {
		t.Error("no UpdatedAt")
	}
	if got.Keys[0].ID == 0 || got.Keys[1].ID == 0 {
		t.Error("keys without IDs")
	}
	got.UpdatedAt = want.UpdatedAt
	want.Keys = []ProviderKey{
		{ID: got.Keys[0].ID, Name: "ZHIPU_KEY", Env: "ZHIPU_KEY"},
		{ID: got.Keys[1].ID, Name: "main", Secret: secretA, Last4: secretA[len(secretA)-4:]},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// nil stays nil: a provider with no models of its own.
	change(t, s, func(tx *Tx) error { return tx.PutProvider(provider("bare")) })
	if got := findProvider(t, entries(t, s), "bare"); got.Models != nil || got.Headers != nil || got.Keys != nil {
		t.Errorf("bare provider = %+v", got)
	}
}

func TestProviderKeysUpdate(t *testing.T) {
	t.Parallel()
	eachBackend(t, testProviderKeysUpdate)
}

func testProviderKeysUpdate(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	change(t, s, func(tx *Tx) error {
		return tx.PutProvider(provider("p", ProviderKey{Secret: secretA}, ProviderKey{Env: "P_KEY"}, ProviderKey{Secret: short}, ProviderKey{Name: "key-4", Secret: secretB}, ProviderKey{Secret: secretC}))
	})
	p := findProvider(t, entries(t, s), "p")
	// Defaults: key-N by place, the next free N when taken; the env var's
	// name; no last four for a short secret.
	want := []keyView{
		{"key-1", "", secretA, "0001"},
		{"P_KEY", "P_KEY", "", ""},
		{"key-3", "", short, ""},
		{"key-4", "", secretB, "0002"},
		{"key-5", "", secretC, "0003"},
	}
	if got := keyViews(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys = %+v\nwant %+v", got, want)
	}
	ids := make([]int64, len(p.Keys))
	for i, k := range p.Keys {
		ids[i] = k.ID
	}

	// Keep key-1 as it is (no secret given) under a new name, first ->
	// last; replace key-4's secret; turn the env key into a literal; drop
	// key-3 and key-5.
	change(t, s, func(tx *Tx) error {
		return tx.PutProvider(provider("p",
			ProviderKey{ID: ids[3], Name: "key-4", Secret: secretC},
			ProviderKey{ID: ids[1], Name: "was-env", Secret: secretB},
			ProviderKey{ID: ids[0], Name: "renamed"},
		))
	})
	p = findProvider(t, entries(t, s), "p")
	want = []keyView{
		{"key-4", "", secretC, "0003"},
		{"was-env", "", secretB, "0002"},
		{"renamed", "", secretA, "0001"},
	}
	if got := keyViews(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys = %+v\nwant %+v", got, want)
	}
	if p.Keys[0].ID != ids[3] || p.Keys[1].ID != ids[1] || p.Keys[2].ID != ids[0] {
		t.Errorf("IDs changed: %v", p.Keys)
	}

	// Another provider's key ID is refused, and nothing changes.
	change(t, s, func(tx *Tx) error { return tx.PutProvider(provider("q", ProviderKey{Env: "Q"})) })
	q := findProvider(t, entries(t, s), "q")
	err := s.Change(context.Background(), "test", func(tx *Tx) error {
		return tx.PutProvider(provider("p", ProviderKey{ID: q.Keys[0].ID}))
	})
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Field != "keys[0]" {
		t.Errorf("foreign key ID: %v", err)
	}
	if got := keyViews(findProvider(t, entries(t, s), "p")); !reflect.DeepEqual(got, want) {
		t.Errorf("keys changed by a refused change: %+v", got)
	}

	// Replacing a provider keeps its place in the order.
	change(t, s, func(tx *Tx) error { return tx.PutProvider(provider("p", ProviderKey{Env: "ONLY"})) })
	e := entries(t, s)
	if e.Providers[0].Name != "p" || len(e.Providers[0].Keys) != 1 {
		t.Errorf("providers = %+v", e.Providers)
	}
	var n int
	if err := s.r.QueryRow(`SELECT COUNT(*) FROM provider_keys`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d key rows, want 2 (p's one, q's one): %v", n, err)
	}
}

func TestProviderValidation(t *testing.T) {
	t.Parallel()
	eachBackend(t, testProviderValidation)
}

func testProviderValidation(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	for _, tc := range []struct {
		name  string
		p     Provider
		field string
	}{
		{"empty name", provider(""), "name"},
		{"space in name", provider("my provider"), "name"},
		{"slash in name", provider("a/b"), "name"},
		{"dot first", provider(".a"), "name"},
		{"too long", provider(strings.Repeat("a", 65)), "name"},
		{"env and secret", provider("p", ProviderKey{Env: "A", Secret: secretA}), "keys[0]"},
		{"env with prefix", provider("p", ProviderKey{Env: "env:A"}), "keys[0].env"},
		{"env with dash", provider("p", ProviderKey{Env: "A-B"}), "keys[0].env"},
		{"new key with nothing", provider("p", ProviderKey{Name: "x"}), "keys[0]"},
		{"secret with newline", provider("p", ProviderKey{Secret: secretA + "\n"}), "keys[0].secret"},
		{"secret with space", provider("p", ProviderKey{Secret: "sk-a b-cdefghijkl"}), "keys[0].secret"},
		{"same name twice", provider("p", ProviderKey{Env: "A"}, ProviderKey{Name: "A", Secret: secretA}), "keys[1].name"},
		{"same env twice", provider("p", ProviderKey{Env: "A"}, ProviderKey{Env: "A"}), "keys[1].name"},
		{"control char in name", provider("p", ProviderKey{Name: "a\x1bb", Env: "A"}), "keys[0].name"},
		{"blank name", provider("p", ProviderKey{Name: "  ", Env: "A"}), "keys[0].name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Change(context.Background(), "test", func(tx *Tx) error { return tx.PutProvider(tc.p) })
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want an *InvalidError", err)
			}
			if inv.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", inv.Field, tc.field, err)
			}
			if strings.Contains(err.Error(), secretA) {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
	if got := entries(t, s); len(got.Providers) != 0 {
		t.Errorf("refused providers were stored: %+v", got.Providers)
	}
	// Names the gateway accepts.
	for _, name := range []string{"a", "0", "a.b_c-d", strings.Repeat("x", 64)} {
		change(t, s, func(tx *Tx) error { return tx.PutProvider(provider(name)) })
	}
}

func TestLiteralNeedsSecretKey(t *testing.T) {
	t.Parallel()
	eachBackend(t, testLiteralNeedsSecretKey)
}

func testLiteralNeedsSecretKey(t *testing.T, b backend) {
	s := openAt(t, b.fresh(t), nil)
	err := s.Change(context.Background(), "test", func(tx *Tx) error {
		return tx.PutProvider(provider("p", ProviderKey{Env: "OK"}, ProviderKey{Secret: secretA}))
	})
	if !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("err = %v, want ErrNoSecretKey", err)
	}
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Field != "keys[1].secret" {
		t.Errorf("err = %v, want field keys[1].secret", err)
	}
	for _, says := range []string{"env:NAME", "LLMPROXY_SECRET_KEY"} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("error %q does not mention %s", err, says)
		}
	}
	if strings.Contains(err.Error(), secretA) {
		t.Error("the error holds the secret")
	}
	if len(entries(t, s).Providers) != 0 {
		t.Error("the provider was half-saved")
	}
	// env:NAME references need no key.
	change(t, s, func(tx *Tx) error { return tx.PutProvider(provider("p", ProviderKey{Env: "OK"})) })
}

// A store opened with another SecretKey (or none) still reads: the keys it
// cannot decrypt come back Locked, and saving them unchanged keeps them.
func TestLockedKeys(t *testing.T) {
	t.Parallel()
	eachBackend(t, testLockedKeys)
}

func testLockedKeys(t *testing.T, b backend) {
	opts := b.fresh(t)
	s := openAt(t, opts, testKey)
	change(t, s, func(tx *Tx) error {
		return tx.PutProvider(provider("p", ProviderKey{Name: "lit", Secret: secretA}, ProviderKey{Env: "P_ENV"}))
	})
	s.Close()

	other := bytes.Clone(testKey)
	other[5] ^= 0x80
	for _, tc := range []struct {
		name string
		key  []byte
		want error
	}{
		{"other key", other, ErrWrongSecretKey},
		{"no key", nil, ErrNoSecretKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openAt(t, opts, tc.key)
			e := entries(t, s)
			p := findProvider(t, e, "p")
			lit, env := p.Keys[0], p.Keys[1]
			if !errors.Is(lit.Locked, tc.want) || lit.Secret != "" {
				t.Errorf("literal: Locked %v, Secret %q; want %v and no secret", lit.Locked, lit.Secret, tc.want)
			}
			if lit.Last4 != "0001" {
				t.Errorf("Last4 %q still shown for display", lit.Last4)
			}
			if env.Locked != nil || env.Env != "P_ENV" {
				t.Errorf("env key: %+v", env)
			}
			locked := e.Locked()
			if len(locked) != 1 || locked[0].Provider != "p" || locked[0].Key != "lit" || !errors.Is(locked[0], tc.want) {
				t.Errorf("Locked() = %v", locked)
			}
			if msg := locked[0].Error(); !strings.Contains(msg, `"p"`) || !strings.Contains(msg, `"lit"`) {
				t.Errorf("Locked()[0] = %q: names neither provider nor key", msg)
			}
			// Saved unchanged (same ID, same name, no secret): kept.
			if err := s.Change(context.Background(), "test", func(tx *Tx) error {
				p.Weight = 2
				return tx.PutProvider(p)
			}); err != nil {
				t.Fatal(err)
			}
			// Renamed: its sealed value cannot be re-sealed.
			p.Keys[0].Name = "new-name"
			err := s.Change(context.Background(), "test", func(tx *Tx) error { return tx.PutProvider(p) })
			var inv *InvalidError
			if !errors.As(err, &inv) || inv.Field != "keys[0].name" || !errors.Is(err, tc.want) {
				t.Errorf("rename of a locked key: %v", err)
			}
		})
	}
	// Back with the right key: the literal is intact.
	s = openAt(t, opts, testKey)
	p := findProvider(t, entries(t, s), "p")
	if p.Weight != 2 || p.Keys[0].Secret != secretA || p.Keys[0].Locked != nil {
		t.Errorf("after reopening with the right key: %+v", p)
	}
}

// The sealed value is bound to its provider and key name: copied to
// another row, it does not open.
func TestSealedValueBoundToRow(t *testing.T) {
	t.Parallel()
	eachBackend(t, testSealedValueBoundToRow)
}

func testSealedValueBoundToRow(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	change(t, s, func(tx *Tx) error {
		if err := tx.PutProvider(provider("a", ProviderKey{Name: "k", Secret: secretA})); err != nil {
			return err
		}
		if err := tx.PutProvider(provider("b", ProviderKey{Name: "k", Secret: secretB})); err != nil {
			return err
		}
		return tx.PutProvider(provider("a2", ProviderKey{Name: "other", Secret: secretC}, ProviderKey{Name: "k2", Secret: secretC}))
	})
	for _, q := range []string{
		// a's sealed key into b's row (same key name, other provider)
		`UPDATE provider_keys SET sealed = (SELECT k.sealed FROM provider_keys k JOIN providers p ON p.id = k.provider_id WHERE p.name = 'a')
		 WHERE provider_id = (SELECT id FROM providers WHERE name = 'b')`,
		// within a2, from "other" to "k2" (same provider, other name)
		`UPDATE provider_keys SET sealed = (SELECT sealed FROM provider_keys WHERE name = 'other') WHERE name = 'k2'`,
	} {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	e := entries(t, s)
	for _, tc := range []struct{ provider, key string }{{"b", "k"}, {"a2", "k2"}} {
		for _, k := range findProvider(t, e, tc.provider).Keys {
			if k.Name == tc.key && (!errors.Is(k.Locked, ErrWrongSecretKey) || k.Secret != "") {
				t.Errorf("%s/%s with a moved sealed value: Locked %v, Secret %q", tc.provider, tc.key, k.Locked, k.Secret)
			}
		}
	}
	if k := findProvider(t, e, "a").Keys[0]; k.Secret != secretA {
		t.Errorf("a/k = %+v", k)
	}
}

// No literal provider key is ever written in clear: not in a column (the
// audit log included), not in the database file, not in its WAL.
func TestNoSecretAtRest(t *testing.T) {
	t.Parallel()
	eachBackend(t, testNoSecretAtRest)
}

func testNoSecretAtRest(t *testing.T, b backend) {
	opts := b.fresh(t)
	s := openAt(t, opts, testKey)
	secrets := []string{secretA, secretB, short}
	change(t, s, func(tx *Tx) error {
		if err := tx.PutProvider(provider("p", ProviderKey{Secret: secretA}, ProviderKey{Secret: short})); err != nil {
			return err
		}
		// A careless caller: the secret in the audit log's target and detail.
		return tx.Audit("provider.put", "p "+secretA, "keys: "+secretA+", "+short)
	})
	change(t, s, func(tx *Tx) error {
		// The secret read back inside a change is guarded too.
		e, err := tx.Entries()
		if err != nil {
			return err
		}
		p := e.Providers[0]
		p.Keys = append(p.Keys, ProviderKey{Name: "b", Secret: secretB})
		if err := tx.PutProvider(p); err != nil {
			return err
		}
		return tx.Audit("provider.put", "p", "had "+p.Keys[0].Secret+" added "+secretB)
	})
	audit, err := s.Audit(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 || !strings.Contains(audit[1].Detail, "[secret]") {
		t.Errorf("audit = %+v", audit)
	}

	// Every column of every table, as text.
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if s.d.name == postgres.name {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	}
	tables, err := s.r.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	if len(names) < 8 {
		t.Fatalf("only tables %v", names)
	}
	for _, table := range names {
		rows, err := s.r.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var text string
				switch v := v.(type) {
				case string:
					text = v
				case []byte:
					text = string(v)
				}
				for _, secret := range secrets {
					if strings.Contains(text, secret) {
						t.Errorf("%s.%s holds a secret", table, cols[i])
					}
				}
			}
		}
		rows.Close()
	}

	// The raw bytes, while open (the changes are in the WAL) and after
	// the close (checkpointed into the database file).
	if s.d.name == postgres.name {
		// This database's files (tables, indexes) and the server's WAL,
		// once a checkpoint wrote everything out.
		srv := postgresServer(t)
		srv.exec(t, opts.DatabaseURL, "CHECKPOINT")
		var oid int64
		if err := s.r.QueryRow(`SELECT oid FROM pg_database WHERE datname = current_database()`).Scan(&oid); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{filepath.Join("base", strconv.FormatInt(oid, 10)), "pg_wal"} {
			grepTree(t, filepath.Join(srv.base, "data", dir), secrets)
		}
		return
	}
	dir := opts.DataDir
	grep := func(when string) {
		for _, name := range []string{FileName, FileName + "-wal"} {
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			for _, secret := range secrets {
				if bytes.Contains(raw, []byte(secret)) {
					t.Errorf("%s: %s holds a secret", when, name)
				}
			}
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, FileName+"-wal")); err != nil || fi.Size() == 0 {
		t.Fatalf("no WAL to search while open: %v", err)
	}
	grep("open")
	s.Close()
	grep("closed")
}

// grepTree fails the test for every file under dir holding one of
// secrets, and when it finds no file at all.
func grepTree(t *testing.T, dir string, secrets []string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, secret := range secrets {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s holds a secret", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("only %d files under %s: not a data dir", files, dir)
	}
}

func TestDeleteProvider(t *testing.T) {
	t.Parallel()
	eachBackend(t, testDeleteProvider)
}

func testDeleteProvider(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	change(t, s, func(tx *Tx) error {
		return tx.PutProvider(provider("p", ProviderKey{Env: "A"}, ProviderKey{Secret: secretA}))
	})
	change(t, s, func(tx *Tx) error { return tx.DeleteProvider("p") })
	var n int
	if err := s.r.QueryRow(`SELECT COUNT(*) FROM provider_keys`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d keys left after deleting their provider (%v)", n, err)
	}
	for _, fn := range []func(tx *Tx) error{
		func(tx *Tx) error { return tx.DeleteProvider("p") },
		func(tx *Tx) error { return tx.DeleteModel("nope") },
	} {
		if err := s.Change(context.Background(), "test", fn); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting what is not there: %v, want ErrNotFound", err)
		}
	}
}
