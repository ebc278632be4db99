// Package store is llmproxy's embedded database: the providers, models and
// client keys the admin panel manages, usage per day, the audit log and a
// revision number, behind typed queries and numbered schema migrations.
//
// It runs on SQLite (modernc.org/sqlite: pure Go, so the binary stays
// static) in WAL mode with synchronous=FULL: a Change or AddUsage that
// returned nil survives a crash of the process or the machine. One writer
// connection serialises every write; readers run beside it.
//
// With Options.DatabaseURL it runs on PostgreSQL instead, shared by every
// replica (postgres.go): the same SQL (dialect.go), the same migrations,
// and a NOTIFY at every Change that Watch turns into a callback on the
// other replicas.
//
// Provider keys entered as literals are sealed with AES-256-GCM under
// LLMPROXY_SECRET_KEY; client keys are kept as SHA-256 digests only.
package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file's name in the data dir.
const FileName = "llmproxy.db"

// Options configure Open.
type Options struct {
	// DataDir holds the SQLite database (llmproxy.db) — created with mode
	// 0700 if missing; the database files are 0600. Unused with
	// DatabaseURL.
	DataDir string
	// DatabaseURL, when set, keeps the store in PostgreSQL instead of
	// SQLite: postgres://user:password@host:port/database?sslmode=…
	// (any libpq URL parameter pgx knows). Several llmproxy replicas may
	// share one database. Errors never show the password. Default "":
	// SQLite in DataDir.
	DatabaseURL string
	// SecretKey encrypts provider keys saved as literals (AES-256-GCM, 32
	// bytes; see ParseSecretKey). Nil: literals are refused
	// (ErrNoSecretKey) and only env:NAME references may be stored; literals
	// already stored read back Locked.
	SecretKey []byte
	// Logger receives Watch's connection troubles (lost, reconnecting).
	// Default: discarded.
	Logger *slog.Logger
}

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	// w is the one writer connection: Change and AddUsage queue for it.
	// r serves reads beside it (WAL readers see the last commit).
	w, r *sql.DB
	d    dialect
	aead cipher.AEAD // nil without a SecretKey
	path string      // the SQLite file; "" on PostgreSQL
	// pg is the parsed DatabaseURL, for Watch's own connection; nil on
	// SQLite. It holds the password: never print it.
	pg *pgx.ConnConfig
	// secrets are the URL's password in its spellings, taken out of
	// logged errors.
	secrets []string
	// listenCheck is Watch's listenCheck (shorter in tests).
	listenCheck time.Duration
	log         *slog.Logger
	now         func() time.Time
}

// Open opens (creating if needed) the database — PostgreSQL at
// opts.DatabaseURL, else SQLite in opts.DataDir — and brings its schema up
// to date. A database written by a newer llmproxy is refused with
// ErrSchemaTooNew.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.DatabaseURL == "" && opts.DataDir == "" {
		return nil, errors.New("store: no data dir")
	}
	s := &Store{d: sqlite, now: time.Now, log: opts.Logger, listenCheck: listenCheck}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.SecretKey != nil {
		aead, err := newAEAD(opts.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		s.aead = aead
	}
	if opts.DatabaseURL != "" {
		return s.openPostgres(ctx, opts.DatabaseURL)
	}
	return s.openSQLite(ctx, opts.DataDir)
}

func (s *Store) openSQLite(ctx context.Context, dataDir string) (*Store, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating the data dir: %w", err)
	}
	s.path = filepath.Join(dir, FileName)
	if err := prepareFiles(s.path); err != nil {
		return nil, err
	}

	s.w, err = sql.Open(s.d.driver, sqliteDSN(s.path, true))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, s.w, s.d, migrations); err != nil {
		s.w.Close()
		return nil, err
	}
	s.r, err = sql.Open(s.d.driver, sqliteDSN(s.path, false))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	return s, nil
}

// prepareFiles creates the database file 0600 before SQLite opens it:
// SQLite gives new files 0644 (less the umask), and creates the -wal and
// -shm files with the database file's mode. Files left wider by an
// earlier version or a copy are narrowed.
func prepareFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: creating the database file: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("store: narrowing the database file's mode: %w", err)
			}
		}
	}
	return nil
}

// Path is the SQLite database file's path ("" on PostgreSQL).
func (s *Store) Path() string { return s.path }

// Close closes the database. The writer closes last, so that SQLite
// checkpoints the WAL into the database file on its way out.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Revision increases by one with every committed Change; Watch reports
// it to the other replicas.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.r.QueryRowContext(ctx, `SELECT revision FROM store_state WHERE id = 1`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("store: revision: %w", err)
	}
	return rev, nil
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
