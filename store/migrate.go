package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// ErrSchemaTooNew is returned by Open for a database written by a newer
// llmproxy: this binary does not know its tables and must not touch them.
var ErrSchemaTooNew = errors.New("the database was written by a newer llmproxy")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change, applied once and in order.
type migration struct {
	version int
	name    string // the file name, for the record
	sql     string
}

// migrations are the embedded files, NNNN_what.sql, numbered 1, 2, … with
// no gap.
var migrations = mustLoadMigrations(migrationFiles)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic("store: " + err.Error()) // a build mistake, caught by every test
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	// Glob sorts by name; four-digit numbers sort as numbers.
	var ms []migration
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 {
			return nil, fmt.Errorf("migration %s: name it NNNN_what.sql", name)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", name, len(ms)+1)
		}
		body, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int { return len(migrations) }

// migrate brings the database to the last of ms, one transaction per
// migration, each recorded in schema_migrations with it. The version is
// read again inside each transaction, which holds the dialect's migration
// lock (SQLite: the write lock of BEGIN IMMEDIATE; PostgreSQL: an
// advisory lock), so two processes opening one new database at once apply
// each migration once.
func migrate(ctx context.Context, db *sql.DB, d dialect, ms []migration) error {
	// Under the lock too: on PostgreSQL two CREATE TABLE IF NOT EXISTS
	// racing can both pass the check, and the second fails.
	if err := inMigrationTx(ctx, db, d, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)`)
		return err
	}); err != nil {
		return fmt.Errorf("store: creating schema_migrations: %w", err)
	}
	for {
		done, err := migrateOne(ctx, db, d, ms)
		if err != nil || done {
			return err
		}
	}
}

// inMigrationTx runs fn in a transaction that holds the migration lock.
func inMigrationTx(ctx context.Context, db *sql.DB, d dialect, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d.migrateLock != "" {
		if _, err := tx.ExecContext(ctx, d.migrateLock); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func migrateOne(ctx context.Context, db *sql.DB, d dialect, ms []migration) (done bool, err error) {
	err = inMigrationTx(ctx, db, d, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
			return fmt.Errorf("reading the schema version: %w", err)
		}
		switch {
		case v > len(ms):
			return fmt.Errorf("%w: its schema is version %d and this llmproxy knows up to %d; run the newer llmproxy, or restore a backup of the database", ErrSchemaTooNew, v, len(ms))
		case v == len(ms):
			done = true
			return nil
		}
		m := ms[v]
		if _, err := tx.ExecContext(ctx, d.render(m.sql)); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: migrating: %w", err)
	}
	return done, nil
}
