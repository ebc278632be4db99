package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// NotifyChannel is the PostgreSQL channel every committed Change notifies,
// with the new revision as its payload.
const NotifyChannel = "llmproxy_store"

// Pool sizes on PostgreSQL. Unlike SQLite's single writer, several writers
// may wait on the server at once: Change on the revision row's lock,
// AddUsage beside it on its own rows.
const (
	pgWriters = 4
	pgReaders = 4
	// pgIdle recycles idle connections, so that a server restart or a
	// failover is not met first by a stale one.
	pgIdle = 5 * time.Minute
)

func (s *Store) openPostgres(ctx context.Context, rawURL string) (*Store, error) {
	cfg, secrets, err := parseDatabaseURL(rawURL)
	if err != nil {
		return nil, err
	}
	s.d, s.pg, s.secrets = postgres, cfg, secrets
	s.w = sql.OpenDB(stdlib.GetConnector(*cfg))
	s.w.SetMaxOpenConns(pgWriters)
	s.w.SetMaxIdleConns(pgWriters)
	s.w.SetConnMaxIdleTime(pgIdle)
	if err := s.w.PingContext(ctx); err != nil {
		s.w.Close()
		return nil, redact(fmt.Errorf("store: connecting to PostgreSQL: %w", err), secrets)
	}
	if err := migrate(ctx, s.w, s.d, migrations); err != nil {
		s.w.Close()
		return nil, redact(err, secrets)
	}
	s.r = sql.OpenDB(stdlib.GetConnector(*cfg))
	s.r.SetMaxOpenConns(pgReaders)
	s.r.SetMaxIdleConns(pgReaders)
	s.r.SetConnMaxIdleTime(pgIdle)
	return s, nil
}

const urlForm = "postgres://user:password@host:port/database?sslmode=…"

// parseDatabaseURL reads Options.DatabaseURL. It returns the password and
// other secrets the URL holds, in every spelling found in it, so that
// errors can be cleaned of them. pgx's own errors mask passwords only on a
// best-effort basis (pgconn.ParseConfigError), and a *url.Error prints the
// whole URL, so no error here quotes the URL.
func parseDatabaseURL(raw string) (*pgx.ConnConfig, []string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("store: the database URL does not parse; write it as %s", urlForm)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, nil, fmt.Errorf("store: the database URL must begin with postgres:// (%s)", urlForm)
	}
	secrets := urlSecrets(raw, u)
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return nil, nil, redact(fmt.Errorf("store: the database URL: %w", err), secrets)
	}
	return cfg, secrets, nil
}

// urlSecrets lists the password and sslpassword a URL holds, escaped as
// written and unescaped.
func urlSecrets(raw string, u *url.URL) []string {
	var out []string
	add := func(vs ...string) {
		for _, v := range vs {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	if pw, ok := u.User.Password(); ok {
		add(pw)
		// As written: between the first ':' of the user info and the
		// last '@' of the authority.
		rest := raw[strings.Index(raw, "://")+3:]
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, p, ok := strings.Cut(rest[:at], ":"); ok {
				add(p)
			}
		}
	}
	for _, pair := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(k); err == nil && (key == "password" || key == "sslpassword") {
			add(v)
			if dv, err := url.QueryUnescape(v); err == nil {
				add(dv)
			}
		}
	}
	return out
}

// redactedError is an error whose text had secrets taken out; errors.Is
// and errors.As still see the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// minRedact: a secret shorter than this could be replaced inside ordinary
// words of the message; the message is then dropped instead.
const minRedact = 4

const withheld = "store: the database refused the connection or the URL (details withheld: they would show the password)"

// redact removes secrets from err's text.
func redact(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, s := range secrets {
		if !strings.Contains(msg, s) {
			continue
		}
		if len(s) < minRedact {
			return &redactedError{msg: withheld, err: err}
		}
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return &redactedError{msg: msg, err: err}
}
