package store

import (
	"testing"
)

// backend is a database the store runs on, for tests that run on each.
type backend struct {
	name string
	// fresh returns Options (without SecretKey) for a new, empty database.
	fresh func(t testing.TB) Options
}

var backends = []backend{
	{"sqlite", func(t testing.TB) Options { return Options{DataDir: t.TempDir()} }},
	{"postgres", func(t testing.TB) Options { return Options{DatabaseURL: postgresServer(t).newDatabase(t)} }},
}

// eachBackend runs fn as a parallel subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// openAt opens the database opts names, with key, closed at the test's
// end.
func openAt(t testing.TB, opts Options, key []byte) *Store {
	t.Helper()
	opts.SecretKey = key
	return openWith(t, opts)
}

// newStoreOn opens a new, empty store on b.
func newStoreOn(t testing.TB, b backend) *Store {
	t.Helper()
	return openAt(t, b.fresh(t), testKey)
}
