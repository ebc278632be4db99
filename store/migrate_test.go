package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/llmproxy/llmproxy/access"
)

func appliedVersions(t testing.TB, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		rows.Scan(&v)
		out = append(out, v)
	}
	return out
}

func hasIndex(t testing.TB, s *Store, name string) bool {
	t.Helper()
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = $1`
	if s.d.name == postgres.name {
		q = `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1`
	}
	var n int
	if err := s.r.QueryRow(q, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// rawDB opens the database of opts without the store: no migration, for
// tests that build an old schema by hand.
func rawDB(t testing.TB, opts Options) (*sql.DB, dialect) {
	t.Helper()
	if opts.DatabaseURL != "" {
		cfg, _, err := parseDatabaseURL(opts.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		return sql.OpenDB(stdlib.GetConnector(*cfg)), postgres
	}
	path := filepath.Join(opts.DataDir, FileName)
	if err := prepareFiles(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(sqlite.driver, sqliteDSN(path, true))
	if err != nil {
		t.Fatal(err)
	}
	return db, sqlite
}

func TestMigrateFromEmpty(t *testing.T) {
	t.Parallel()
	eachBackend(t, testMigrateFromEmpty)
}

func testMigrateFromEmpty(t *testing.T, b backend) {
	opts := b.fresh(t)
	s := openAt(t, opts, testKey)
	if got, want := appliedVersions(t, s.r), []int{1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	if SchemaVersion() != 3 {
		t.Errorf("SchemaVersion() = %d", SchemaVersion())
	}
	for _, idx := range []string{"usage_daily_spent", "client_keys_active_name", "provider_keys_provider"} {
		if !hasIndex(t, s, idx) {
			t.Errorf("no index %s", idx)
		}
	}
	if got := revision(t, s); got != 0 {
		t.Errorf("revision %d", got)
	}
	// Opening again applies nothing twice.
	s.Close()
	s = openAt(t, opts, nil)
	if got := appliedVersions(t, s.r); len(got) != 3 {
		t.Errorf("applied %v after reopening", got)
	}
}

// A database at v1, with rows written as v1 wrote them, migrates to the
// latest version with every row intact; its usage rows, written before
// ids were kept (v3), count for a budget by their client's name.
func TestMigrateFromV1(t *testing.T) {
	t.Parallel()
	eachBackend(t, testMigrateFromV1)
}

func testMigrateFromV1(t *testing.T, b backend) {
	ctx := context.Background()
	opts := b.fresh(t)
	db, d := rawDB(t, opts)
	if err := migrate(ctx, db, d, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	aead, _ := newAEAD(testKey)
	sealed, err := seal(aead, secretA, keyAAD("old-p", "main"))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE store_state SET revision = 7`, nil},
		{`INSERT INTO providers (name, kind, base_url, preset, weight, models, headers, transport, responses, api_version, updated_at)
VALUES ('old-p', 'anthropic', 'https://api.anthropic.com', '', 1, '["claude-*"]', 'null', '', '', '', $1)`, []any{created.UnixMicro()}},
		{`INSERT INTO provider_keys (provider_id, position, name, env, sealed, last4) VALUES (1, 0, 'main', '', $1, '0001')`, []any{sealed}},
		{`INSERT INTO provider_keys (provider_id, position, name, env, sealed, last4) VALUES (1, 1, 'OLD_ENV', 'OLD_ENV', NULL, '')`, nil},
		{`INSERT INTO models (name, targets, strategy, display_name, description, context_window, max_input_tokens, max_output_tokens, pricing, flags, metadata, updated_at)
VALUES ('old-m', '[{"provider":"old-p","model":"claude-x"}]', 'fallback', 'Old', '', 200000, 0, 0, 'null', 'null', 'null', $1)`, []any{created.UnixMicro()}},
		{`INSERT INTO client_keys (name, digest, models, presets, rpm, tpm, max_parallel, budget, expires_at, created_at, revoked_at)
VALUES ('old-k', $1, 'null', '[]', 10, 0, 0, '{"amount":3,"period":"day","currency":"usd"}', 0, $2, NULL)`, []any{strings.Repeat("ab", 32), created.UnixMicro()}},
		{`INSERT INTO usage_daily (day, client, model, provider, key_name, currency, requests, input_tokens, cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nanos)
VALUES ('2024-05-06', 'old-k', 'old-m', 'old-p', 'main', 'usd', 3, 30, 0, 0, 9, 0, 123)`, nil},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if _, err := db.Exec(`SELECT * FROM audit`); err == nil {
		t.Fatal("v1 has an audit table: the test builds the wrong schema")
	}
	db.Close()

	s := openAt(t, opts, testKey)
	if got := appliedVersions(t, s.r); !reflect.DeepEqual(got, []int{1, 2, 3}) {
		t.Fatalf("applied %v", got)
	}
	if !hasIndex(t, s, "usage_daily_spent") {
		t.Error("v2's index is missing")
	}
	if got := revision(t, s); got != 7 {
		t.Errorf("revision %d, want 7", got)
	}
	e := entries(t, s)
	p := findProvider(t, e, "old-p")
	if p.Kind != "anthropic" || !reflect.DeepEqual(p.Models, []string{"claude-*"}) || !p.UpdatedAt.Equal(created) {
		t.Errorf("provider = %+v", p)
	}
	if got := keyViews(p); !reflect.DeepEqual(got, []keyView{{"main", "", secretA, "0001"}, {"OLD_ENV", "OLD_ENV", "", ""}}) {
		t.Errorf("keys = %+v", got)
	}
	if len(e.Models) != 1 || e.Models[0].Name != "old-m" || e.Models[0].Targets[0].Model != "claude-x" || e.Models[0].ContextWindow != 200000 {
		t.Errorf("models = %+v", e.Models)
	}
	if len(e.ClientKeys) != 1 || e.ClientKeys[0].Name != "old-k" || e.ClientKeys[0].Budget.Amount != 3 || e.ClientKeys[0].Presets == nil ||
		e.ClientKeys[0].Models != nil || !e.ClientKeys[0].CreatedAt.Equal(created) {
		t.Errorf("client keys = %+v", e.ClientKeys)
	}
	spent, err := s.Spent(ctx, access.KeyID(strings.Repeat("ab", 32)), "old-k", "usd", day(2024, 5, 1))
	if err != nil || spent != 123 {
		t.Errorf("Spent = %d, %v", spent, err)
	}
	want := []UsageRow{{Day: day(2024, 5, 6), Client: "old-k", Model: "old-m", Provider: "old-p", Key: "main", Currency: "usd",
		Requests: 3, Input: 30, Output: 9, CostNanos: 123}}
	if got := usageRows(t, s, day(2024, 5, 1), day(2024, 6, 1)); !reflect.DeepEqual(got, want) {
		t.Errorf("usage = %+v\nwant %+v", got, want)
	}
	// A row of the same day and names, now with the key's id, is a row of
	// its own (the key may not be the one that wrote the old row).
	if err := s.AddUsage(ctx, []UsageRow{{Day: day(2024, 5, 6), ClientID: "0123456789ab", Client: "old-k", Model: "old-m",
		Provider: "old-p", Key: "main", Currency: "usd", Requests: 1, CostNanos: 7}}); err != nil {
		t.Fatal(err)
	}
	if got := usageRows(t, s, day(2024, 5, 1), day(2024, 6, 1)); len(got) != 2 {
		t.Errorf("usage after a row with an id = %+v", got)
	}
	// v2's audit log works on the migrated database.
	change(t, s, func(tx *Tx) error { return tx.Audit("migrated", "", "") })
	if a, err := s.Audit(ctx, 1); err != nil || len(a) != 1 || a[0].Action != "migrated" {
		t.Errorf("audit = %+v, %v", a, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	eachBackend(t, testRefusesNewerSchema)
}

func testRefusesNewerSchema(t *testing.T, b backend) {
	opts := b.fresh(t)
	s := openAt(t, opts, nil)
	next := SchemaVersion() + 1
	if _, err := s.w.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'NNNN_future.sql', 0)`, next); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(context.Background(), opts)
	if err == nil {
		s2.Close()
		t.Fatal("a database from a newer llmproxy was opened")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("err = %v, want ErrSchemaTooNew", err)
	}
	for _, says := range []string{fmt.Sprintf("version %d", next), fmt.Sprintf("up to %d", next-1)} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("error %q does not say %q", err, says)
		}
	}
}

// Replicas (here Stores) opening one new database at once apply each
// migration once: SQLite's write lock, PostgreSQL's advisory lock.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	eachBackend(t, testConcurrentOpen)
}

func testConcurrentOpen(t *testing.T, b backend) {
	opts := b.fresh(t)
	const n = 4
	var wg sync.WaitGroup
	stores := make([]*Store, n)
	errs := make([]error, n)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(context.Background(), opts) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if errs[0] == nil {
		if got := appliedVersions(t, stores[0].r); !reflect.DeepEqual(got, []int{1, 2, 3}) {
			t.Errorf("applied %v", got)
		}
	}
}

func TestMigrationsRenderForEveryDialect(t *testing.T) {
	t.Parallel()
	for _, d := range []dialect{sqlite, postgres} {
		for _, m := range migrations {
			out := d.render(m.sql)
			if strings.Contains(out, "{{") {
				t.Errorf("%s %s: a {{word}} the dialect does not know is left", d.name, m.name)
			}
		}
	}
	pg := postgres.render(migrations[0].sql)
	for _, word := range []string{"AUTOINCREMENT", "BLOB"} {
		if strings.Contains(pg, word) {
			t.Errorf("postgres migration holds SQLite's %s", word)
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	file := &fstest.MapFile{Data: []byte("SELECT 1;")}
	for _, tc := range []struct {
		name  string
		files []string
		ok    bool
	}{
		{"in order", []string{"0001_a.sql", "0002_b.sql"}, true},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, false},
		{"starts at 2", []string{"0002_b.sql"}, false},
		{"short number", []string{"0001_a.sql", "2_b.sql"}, false},
		{"no name", []string{"0001.sql"}, false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys["migrations/"+f] = file
			}
			ms, err := loadMigrations(fsys)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if tc.ok && len(ms) != len(tc.files) {
				t.Errorf("%d migrations", len(ms))
			}
		})
	}
}
