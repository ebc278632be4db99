package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/internal/leaktest"
)

func TestMain(m *testing.M) {
	// The crash test runs this binary again as the process it kills.
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		crashHelper(dir)
		return
	}
	code := m.Run()
	stopPostgres()
	os.Exit(leaktest.Check(code))
}

// testKey is a SecretKey for tests (not a placeholder: its bytes differ).
var testKey = func() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i*7 + 3)
	}
	return k
}()

func openStore(t testing.TB, dir string, key []byte) *Store {
	t.Helper()
	return openWith(t, Options{DataDir: dir, SecretKey: key})
}

func openWith(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, t.TempDir(), testKey)
}

// change runs a Change that must succeed.
func change(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Change(context.Background(), "test", fn); err != nil {
		t.Fatalf("Change: %v", err)
	}
}

func entries(t testing.TB, s *Store) Entries {
	t.Helper()
	e, err := s.Entries(context.Background())
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	return e
}

func revision(t testing.TB, s *Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func model(name string) Model {
	return Model{Name: name, Targets: []config.Target{{Provider: "p", Model: "up-" + name}}}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new", "data")
	s := openStore(t, dir, testKey)
	// A write, so that the -wal and -shm files exist while it is open.
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("m")) })

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("data dir mode %o, want 700", got)
	}
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode %o, want 600", name, got)
		}
	}
	if s.Path() != filepath.Join(dir, FileName) {
		t.Errorf("Path() = %q", s.Path())
	}
}

func TestOpenNarrowsWideFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("m")) })
	s.Close()
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		// Touch the -wal and -shm (SQLite removed them at close; empty
		// ones are valid), never truncating the database itself.
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Chmod(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s = openStore(t, dir, nil)
	if got := modelNames(entries(t, s)); len(got) != 1 {
		t.Errorf("models after reopening: %v", got)
	}
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			continue // SQLite may have removed the WAL files
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode %o after Open, want 600", name, got)
		}
	}
}

func TestOpenOddDataDirName(t *testing.T) {
	t.Parallel()
	// A path that a plain DSN would cut at '?' or '#', or misread at '%'.
	dir := filepath.Join(t.TempDir(), "a b?c#d%41")
	s := openStore(t, dir, nil)
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("m")) })
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("database not where it should be: %v", err)
	}
	if got := entries(t, s).Models; len(got) != 1 {
		t.Errorf("models = %v", got)
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no dir", Options{}},
		{"short key", Options{DataDir: t.TempDir(), SecretKey: make([]byte, 16)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

// The durability settings are the promise; a DSN typo would drop them
// silently.
func TestConnectionSettings(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, tc := range []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.w, "journal_mode", "wal"},
		{s.w, "synchronous", "2"}, // FULL
		{s.w, "foreign_keys", "1"},
		{s.w, "busy_timeout", "5000"},
		{s.r, "foreign_keys", "1"},
		{s.r, "busy_timeout", "5000"},
		{s.r, "query_only", "1"},
	} {
		var got string
		if err := tc.db.QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			who := "writer"
			if tc.db == s.r {
				who = "reader"
			}
			t.Errorf("%s: PRAGMA %s = %s, want %s", who, tc.pragma, got, tc.want)
		}
	}
}

// The queries use $N (PostgreSQL's placeholders); modernc.org/sqlite must
// bind them by number, not by order of appearance.
func TestPlaceholdersByOrdinal(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var got string
	if err := s.r.QueryRow(`SELECT $2 || $1 || $2`, "a", "b").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "bab" {
		t.Errorf("got %q, want bab", got)
	}
}

func TestConcurrentChanges(t *testing.T) {
	t.Parallel()
	eachBackend(t, testConcurrentChanges)
}

func testConcurrentChanges(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	const workers, each = 12, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("m-%d-%d", w, i)
				errs <- s.Change(context.Background(), "w", func(tx *Tx) error {
					if err := tx.PutModel(model(name)); err != nil {
						return err
					}
					return tx.Audit("model.put", name, "")
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Change: %v", err)
		}
	}
	if got := revision(t, s); got != workers*each {
		t.Errorf("revision %d, want %d", got, workers*each)
	}
	if got := len(entries(t, s).Models); got != workers*each {
		t.Errorf("%d models, want %d", got, workers*each)
	}
	audit, err := s.Audit(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != workers*each {
		t.Errorf("%d audit entries, want %d", len(audit), workers*each)
	}
}

// Readers are not blocked by a change in progress, and do not see it.
func TestReadDuringChange(t *testing.T) {
	t.Parallel()
	eachBackend(t, testReadDuringChange)
}

func testReadDuringChange(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("old")) })
	change(t, s, func(tx *Tx) error {
		if err := tx.PutModel(model("new")); err != nil {
			return err
		}
		inside, err := tx.Entries()
		if err != nil {
			return err
		}
		if names := modelNames(inside); strings.Join(names, ",") != "old,new" {
			t.Errorf("tx.Entries models = %v, want old,new", names)
		}
		outside, err := s.Entries(context.Background())
		if err != nil {
			return err
		}
		if names := modelNames(outside); strings.Join(names, ",") != "old" {
			t.Errorf("Entries during the change = %v, want old", names)
		}
		return nil
	})
	if names := modelNames(entries(t, s)); strings.Join(names, ",") != "old,new" {
		t.Errorf("after commit = %v", names)
	}
}

func modelNames(e Entries) []string {
	var out []string
	for _, m := range e.Models {
		out = append(out, m.Name)
	}
	return out
}

func TestChangeRollsBack(t *testing.T) {
	t.Parallel()
	eachBackend(t, testChangeRollsBack)
}

func testChangeRollsBack(t *testing.T, b backend) {
	errRefused := errors.New("refused")
	for _, tc := range []struct {
		name string
		fn   func(tx *Tx) error
	}{
		{"error", func(tx *Tx) error { return errRefused }},
		{"panic", func(tx *Tx) error { panic(errRefused) }},
		{"bad write", func(tx *Tx) error { return tx.PutModel(Model{Name: ""}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStoreOn(t, b)
			change(t, s, func(tx *Tx) error { return tx.PutModel(model("kept")) })
			err := func() (err error) {
				defer func() {
					if p := recover(); p != nil {
						err = p.(error)
					}
				}()
				return s.Change(context.Background(), "test", func(tx *Tx) error {
					if err := tx.PutModel(model("dropped")); err != nil {
						return err
					}
					if err := tx.DeleteModel("kept"); err != nil {
						return err
					}
					if err := tx.Audit("model.put", "dropped", ""); err != nil {
						return err
					}
					return tc.fn(tx)
				})
			}()
			if err == nil {
				t.Fatal("Change succeeded")
			}
			if got := modelNames(entries(t, s)); strings.Join(got, ",") != "kept" {
				t.Errorf("models after rollback = %v, want kept", got)
			}
			if got := revision(t, s); got != 1 {
				t.Errorf("revision %d after a rolled-back change, want 1", got)
			}
			if a, _ := s.Audit(context.Background(), 10); len(a) != 0 {
				t.Errorf("audit entries after rollback: %v", a)
			}
			// The writer is free again (a deadline, so that a leaked
			// transaction fails here instead of hanging the test).
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Change(ctx, "test", func(tx *Tx) error { return tx.PutModel(model("after")) }); err != nil {
				t.Fatalf("the writer is still taken after the rolled-back change: %v", err)
			}
			if got := revision(t, s); got != 2 {
				t.Errorf("revision %d, want 2", got)
			}
		})
	}
}

func TestChangeReturnsFnError(t *testing.T) {
	t.Parallel()
	eachBackend(t, testChangeReturnsFnError)
}

func testChangeReturnsFnError(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	want := &config.SettingError{}
	err := s.Change(context.Background(), "test", func(tx *Tx) error { return want })
	var got *config.SettingError
	if !errors.As(err, &got) || got != want {
		t.Errorf("Change returned %v, want fn's own error", err)
	}
}

func TestTxUnusableAfterChange(t *testing.T) {
	t.Parallel()
	eachBackend(t, testTxUnusableAfterChange)
}

func testTxUnusableAfterChange(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	var kept *Tx
	change(t, s, func(tx *Tx) error { kept = tx; return nil })
	for name, err := range map[string]error{
		"PutModel":    kept.PutModel(model("late")),
		"PutProvider": kept.PutProvider(Provider{Name: "p"}),
		"Audit":       kept.Audit("x", "", ""),
		"Revoke":      kept.RevokeClientKey(1),
	} {
		if !errors.Is(err, errTxDone) {
			t.Errorf("%s after Change: %v, want errTxDone", name, err)
		}
	}
	if _, err := kept.Entries(); !errors.Is(err, errTxDone) {
		t.Errorf("Entries after Change: %v", err)
	}
}

func TestChangeNeedsActor(t *testing.T) {
	t.Parallel()
	eachBackend(t, testChangeNeedsActor)
}

func testChangeNeedsActor(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	if err := s.Change(context.Background(), " ", func(tx *Tx) error { return nil }); err == nil {
		t.Error("a change without an actor was accepted")
	}
	if got := revision(t, s); got != 0 {
		t.Errorf("revision %d", got)
	}
}

func TestRevisionCountsCommits(t *testing.T) {
	t.Parallel()
	eachBackend(t, testRevisionCountsCommits)
}

func testRevisionCountsCommits(t *testing.T, b backend) {
	opts := b.fresh(t)
	s := openAt(t, opts, testKey)
	for i := range 3 {
		if got := revision(t, s); got != int64(i) {
			t.Fatalf("revision %d before change %d", got, i)
		}
		change(t, s, func(tx *Tx) error { return tx.PutModel(model(fmt.Sprint("m", i))) })
	}
	_ = s.Change(context.Background(), "test", func(tx *Tx) error { return errors.New("no") })
	if got := revision(t, s); got != 3 {
		t.Errorf("revision %d, want 3", got)
	}
	// The revision survives a restart.
	s.Close()
	if got := revision(t, openAt(t, opts, nil)); got != 3 {
		t.Errorf("revision %d after reopening, want 3", got)
	}
}

func TestAuditNewestFirst(t *testing.T) {
	t.Parallel()
	eachBackend(t, testAuditNewestFirst)
}

func testAuditNewestFirst(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	for i := range 5 {
		if err := s.Change(context.Background(), fmt.Sprint("admin", i), func(tx *Tx) error {
			return tx.Audit("model.put", fmt.Sprint("m", i), fmt.Sprint("detail ", i))
		}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Audit(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3", len(got))
	}
	for i, e := range got {
		n := 4 - i
		if e.Actor != fmt.Sprint("admin", n) || e.Action != "model.put" || e.Target != fmt.Sprint("m", n) || e.Detail != fmt.Sprint("detail ", n) {
			t.Errorf("entry %d = %+v, want change %d", i, e, n)
		}
		if e.At.IsZero() {
			t.Errorf("entry %d has no time", i)
		}
	}
	if !(got[0].ID > got[1].ID && got[1].ID > got[2].ID) {
		t.Errorf("not newest first: %d %d %d", got[0].ID, got[1].ID, got[2].ID)
	}
	all, _ := s.Audit(context.Background(), 0)
	if len(all) != 5 {
		t.Errorf("limit 0 gave %d entries, want all 5", len(all))
	}
	if err := s.Change(context.Background(), "x", func(tx *Tx) error { return tx.Audit("", "t", "") }); err == nil {
		t.Error("an audit entry without an action was accepted")
	}
}
