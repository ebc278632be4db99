package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/net/http/httpguts"

	"github.com/llmproxy/llmproxy/access"
)

// ErrNotFound: the provider, model or client key named is not in the store.
var ErrNotFound = errors.New("not in the store")

// InvalidError is a value the store refuses, with the field it is in, so
// that a form can show the message next to that field.
type InvalidError struct {
	Entry string // provider "a", model "m", client key "k"
	Field string // name, keys[1].env, digest, …
	Err   error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("store: %s: %s: %v", e.Entry, e.Field, e.Err)
}

func (e *InvalidError) Unwrap() error { return e.Err }

func invalid(entry, field, format string, args ...any) *InvalidError {
	return &InvalidError{Entry: entry, Field: field, Err: fmt.Errorf(format, args...)}
}

var (
	// validProviderName is what gateway.Compile accepts (gateway/snapshot.go).
	validProviderName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// validEnvName is a POSIX environment variable name.
	validEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// maxNameLen bounds key names, which show in logs, stats and pages.
const maxNameLen = 128

// Tx is one Change in progress. It is valid only inside the function
// given to Change, and not for concurrent use.
type Tx struct {
	s       *Store
	ctx     context.Context
	tx      *sql.Tx
	actor   string
	now     time.Time
	secrets map[string]bool // literals this change wrote or read: Audit never records them
	done    bool
}

// Change runs fn in one transaction: its writes, its Audit entries (by
// actor) and the revision bump commit together, or — when fn returns an
// error, panics, or the commit fails — not at all ("nothing half-saved").
// fn may read the resulting configuration with tx.Entries and refuse it;
// its error is returned as it is. Changes are serialised: concurrent calls
// wait their turn (up to ctx) and all succeed. fn must not call Change or
// AddUsage itself: they wait for the writer that fn holds.
func (s *Store) Change(ctx context.Context, actor string, fn func(tx *Tx) error) error {
	if strings.TrimSpace(actor) == "" {
		return errors.New("store: a change needs an actor (who made it) for the audit log")
	}
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: change: %w", err)
	}
	tx := &Tx{s: s, ctx: ctx, tx: sqlTx, actor: actor, now: s.now().UTC(), secrets: map[string]bool{}}
	committed := false
	defer func() {
		tx.done = true
		if !committed {
			sqlTx.Rollback()
		}
	}()
	// The bump comes first: on PostgreSQL its row lock is what serialises
	// Changes made by several replicas, and in READ COMMITTED every later
	// statement of this change sees what the previous holder committed.
	var rev int64
	if err := sqlTx.QueryRowContext(ctx, `UPDATE store_state SET revision = revision + 1 WHERE id = 1 RETURNING revision`).Scan(&rev); err != nil {
		return fmt.Errorf("store: change: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if s.d.notify {
		// Queued in the transaction: PostgreSQL delivers it at commit,
		// and not at all on a rollback
		// (https://www.postgresql.org/docs/current/sql-notify.html).
		if _, err := sqlTx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, strconv.FormatInt(rev, 10)); err != nil {
			return fmt.Errorf("store: change: notify: %w", err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: change: commit: %w", err)
	}
	committed = true
	return nil
}

var errTxDone = errors.New("store: the change is over: use tx only inside the function given to Change")

func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	if tx.done {
		return nil, errTxDone
	}
	return tx.tx.ExecContext(tx.ctx, query, args...)
}

// Entries reads the configuration as this change has made it so far.
func (tx *Tx) Entries() (Entries, error) {
	if tx.done {
		return Entries{}, errTxDone
	}
	return readEntries(tx.ctx, tx.tx, tx.s.aead, func(secret string) { tx.secrets[secret] = true })
}

// storedKey is a provider_keys row.
type storedKey struct {
	id       int64
	name     string
	env      string
	sealed   []byte
	last4    string
	position int
}

// PutProvider inserts a provider, or replaces the one of that name (its
// place in the order is kept). Keys: ID 0 is a new key (Secret sealed, or
// Env stored); an existing ID keeps its stored value unless Env or Secret
// is given; keys of the provider missing from p.Keys are deleted. A
// literal without a SecretKey is an *InvalidError wrapping ErrNoSecretKey.
func (tx *Tx) PutProvider(p Provider) error {
	if tx.done {
		return errTxDone
	}
	entry := fmt.Sprintf("provider %q", p.Name)
	if !validProviderName.MatchString(p.Name) {
		return invalid(entry, "name", "a provider name is 1 to 64 letters, digits, '.', '_' and '-', beginning with a letter or digit")
	}
	keys, err := keyNames(entry, p.Keys)
	if err != nil {
		return err
	}
	models, err := json.Marshal(p.Models)
	if err != nil {
		return invalid(entry, "models", "%v", err)
	}
	headers, err := json.Marshal(p.Headers)
	if err != nil {
		return invalid(entry, "headers", "%v", err)
	}
	var id int64
	err = tx.tx.QueryRowContext(tx.ctx, `INSERT INTO providers
(name, kind, base_url, preset, weight, models, headers, transport, responses, api_version, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, base_url = excluded.base_url, preset = excluded.preset,
weight = excluded.weight, models = excluded.models, headers = excluded.headers, transport = excluded.transport,
responses = excluded.responses, api_version = excluded.api_version, updated_at = excluded.updated_at
RETURNING id`, p.Name, p.Kind, p.BaseURL, p.Preset, p.Weight, string(models), string(headers),
		p.Transport, p.Responses, p.APIVersion, tx.now.UnixMicro()).Scan(&id)
	if err != nil {
		return fmt.Errorf("store: %s: %w", entry, err)
	}
	existing, err := tx.providerKeys(id)
	if err != nil {
		return fmt.Errorf("store: %s: %w", entry, err)
	}
	for i, k := range keys {
		field := fmt.Sprintf("keys[%d]", i)
		var row storedKey
		if k.ID != 0 {
			old, ok := existing[k.ID]
			if !ok {
				return invalid(entry, field, "key %d is not one of this provider's keys", k.ID)
			}
			delete(existing, k.ID)
			row = old
		}
		oldName := row.name
		row.name, row.position = k.Name, i
		switch {
		case k.Env != "":
			row.env, row.sealed, row.last4 = k.Env, nil, ""
		case k.Secret != "":
			if row.sealed, err = seal(tx.s.aead, k.Secret, keyAAD(p.Name, k.Name)); err != nil {
				return &InvalidError{Entry: entry, Field: field + ".secret", Err: err}
			}
			tx.secrets[k.Secret] = true
			row.env, row.last4 = "", last4(k.Secret)
		case row.env == "" && oldName != k.Name:
			// The same literal under a new name: the name is in the
			// sealed value's additional data, so it is sealed again.
			secret, err := open(tx.s.aead, row.sealed, keyAAD(p.Name, oldName))
			if err != nil {
				return &InvalidError{Entry: entry, Field: field + ".name", Err: fmt.Errorf("cannot rename the key: %w", err)}
			}
			tx.secrets[secret] = true
			if row.sealed, err = seal(tx.s.aead, secret, keyAAD(p.Name, k.Name)); err != nil {
				return &InvalidError{Entry: entry, Field: field + ".name", Err: err}
			}
		}
		if err := tx.writeKey(id, row); err != nil {
			return fmt.Errorf("store: %s: %s: %w", entry, field, err)
		}
	}
	for kid := range existing {
		if _, err := tx.exec(`DELETE FROM provider_keys WHERE id = $1`, kid); err != nil {
			return fmt.Errorf("store: %s: %w", entry, err)
		}
	}
	return nil
}

func (tx *Tx) providerKeys(providerID int64) (map[int64]storedKey, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id, name, env, sealed, last4, position FROM provider_keys WHERE provider_id = $1`, providerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]storedKey{}
	for rows.Next() {
		var k storedKey
		if err := rows.Scan(&k.id, &k.name, &k.env, &k.sealed, &k.last4, &k.position); err != nil {
			return nil, err
		}
		out[k.id] = k
	}
	return out, rows.Err()
}

func (tx *Tx) writeKey(providerID int64, k storedKey) error {
	if k.id == 0 {
		_, err := tx.exec(`INSERT INTO provider_keys (provider_id, position, name, env, sealed, last4) VALUES ($1, $2, $3, $4, $5, $6)`,
			providerID, k.position, k.name, k.env, k.sealed, k.last4)
		return err
	}
	_, err := tx.exec(`UPDATE provider_keys SET position = $1, name = $2, env = $3, sealed = $4, last4 = $5 WHERE id = $6`,
		k.position, k.name, k.env, k.sealed, k.last4, k.id)
	return err
}

// keyNames checks a provider's keys and fills in default names: the env
// var's name, else key-N (N its place, or the next free number).
func keyNames(entry string, keys []ProviderKey) ([]ProviderKey, error) {
	out := make([]ProviderKey, len(keys))
	taken := map[string]bool{}
	for _, k := range keys {
		if k.Name != "" {
			taken[k.Name] = true
		}
	}
	seen := map[string]bool{}
	for i, k := range keys {
		field := fmt.Sprintf("keys[%d]", i)
		switch {
		case k.Env != "" && k.Secret != "":
			return nil, invalid(entry, field, "give either an env:NAME reference or a secret, not both")
		case k.Env != "" && !validEnvName.MatchString(k.Env):
			return nil, invalid(entry, field+".env", "an environment variable name such as OPENAI_API_KEY (without env:)")
		case k.ID == 0 && k.Env == "" && k.Secret == "":
			return nil, invalid(entry, field, "a new key needs an env:NAME reference or a secret")
		case k.Secret != "" && (!httpguts.ValidHeaderFieldValue(k.Secret) || strings.ContainsAny(k.Secret, " \t")):
			// A pasted key with a trailing newline is the usual mistake;
			// the message never shows the value.
			return nil, invalid(entry, field+".secret", "the key holds whitespace or a control character")
		}
		if k.Name == "" {
			k.Name = k.Env
		}
		for n := i + 1; k.Name == ""; n++ {
			if name := "key-" + strconv.Itoa(n); !taken[name] {
				k.Name = name
				taken[name] = true
			}
		}
		if err := checkName(k.Name); err != nil {
			return nil, &InvalidError{Entry: entry, Field: field + ".name", Err: err}
		}
		if seen[k.Name] {
			return nil, invalid(entry, field+".name", "another key of this provider is called %q", k.Name)
		}
		seen[k.Name] = true
		out[i] = k
	}
	return out, nil
}

// checkName checks a key's display name.
func checkName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("a name is required")
	case len(name) > maxNameLen:
		return fmt.Errorf("a name is at most %d bytes", maxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("a name holds no control character")
	}
	return nil
}

// last4 is what pages show of a secret: its last four characters, and
// nothing for one shorter than 12, whose last four would be a third of it
// (the gateway masks the same way).
func last4(secret string) string {
	if len(secret) < 12 {
		return ""
	}
	return secret[len(secret)-4:]
}

// DeleteProvider deletes a provider and its keys.
func (tx *Tx) DeleteProvider(name string) error {
	return tx.deleteByName("providers", "provider", name)
}

// DeleteModel deletes a model route.
func (tx *Tx) DeleteModel(name string) error {
	return tx.deleteByName("models", "model", name)
}

func (tx *Tx) deleteByName(table, what, name string) error {
	res, err := tx.exec(`DELETE FROM `+table+` WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("store: deleting %s %q: %w", what, name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: %s %q: %w", what, name, ErrNotFound)
	}
	return nil
}

// PutModel inserts a model route, or replaces the one of that name (its
// place in the order is kept). The name is a model name or * pattern as
// the gateway accepts it.
func (tx *Tx) PutModel(m Model) error {
	if tx.done {
		return errTxDone
	}
	entry := fmt.Sprintf("model %q", m.Name)
	if _, err := access.CompilePattern(m.Name); err != nil {
		return &InvalidError{Entry: entry, Field: "name", Err: err}
	}
	if strings.TrimSpace(m.Name) != m.Name {
		return invalid(entry, "name", "no space at either end of a model name")
	}
	cols := make([]string, 4)
	for i, v := range []struct {
		field string
		v     any
	}{{"targets", toJSONTargets(m.Targets)}, {"pricing", toJSONPricing(m.Pricing)}, {"flags", m.Flags}, {"metadata", m.Metadata}} {
		b, err := json.Marshal(v.v)
		if err != nil {
			return invalid(entry, v.field, "%v", err)
		}
		cols[i] = string(b)
	}
	_, err := tx.exec(`INSERT INTO models
(name, targets, strategy, display_name, description, context_window, max_input_tokens, max_output_tokens, pricing, flags, metadata, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (name) DO UPDATE SET targets = excluded.targets, strategy = excluded.strategy,
display_name = excluded.display_name, description = excluded.description, context_window = excluded.context_window,
max_input_tokens = excluded.max_input_tokens, max_output_tokens = excluded.max_output_tokens, pricing = excluded.pricing,
flags = excluded.flags, metadata = excluded.metadata, updated_at = excluded.updated_at`,
		m.Name, cols[0], m.Strategy, m.DisplayName, m.Description, m.ContextWindow, m.MaxInputTokens, m.MaxOutputTokens,
		cols[1], cols[2], cols[3], tx.now.UnixMicro())
	if err != nil {
		return fmt.Errorf("store: %s: %w", entry, err)
	}
	return nil
}

// CreateClientKey stores a new client key and returns its ID. Digest must
// be set (access.Digest of the secret); the name must be unique among
// active keys. CreatedAt defaults to now (an import keeps its own).
func (tx *Tx) CreateClientKey(k ClientKey) (int64, error) {
	if tx.done {
		return 0, errTxDone
	}
	entry := fmt.Sprintf("client key %q", k.Name)
	digest := strings.ToLower(k.Digest)
	if b, err := hex.DecodeString(digest); err != nil || len(b) != 32 {
		return 0, invalid(entry, "digest", "the SHA-256 digest of the secret, 64 hex digits")
	}
	if err := tx.checkClientKeyName(entry, k.Name, 0, k.RevokedAt.IsZero()); err != nil {
		return 0, err
	}
	var n int
	if err := tx.tx.QueryRowContext(tx.ctx, `SELECT COUNT(*) FROM client_keys WHERE digest = $1`, digest).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: %s: %w", entry, err)
	}
	if n > 0 {
		return 0, invalid(entry, "digest", "another client key has the same secret")
	}
	cols, err := clientKeyJSON(entry, k)
	if err != nil {
		return 0, err
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = tx.now
	}
	var revoked any
	if !k.RevokedAt.IsZero() {
		revoked = k.RevokedAt.UnixMicro()
	}
	var id int64
	err = tx.tx.QueryRowContext(tx.ctx, `INSERT INTO client_keys
(name, digest, models, presets, rpm, tpm, max_parallel, budget, expires_at, created_at, revoked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		k.Name, digest, cols[0], cols[1], k.RPM, k.TPM, k.MaxParallel, cols[2], micros(k.Expires), created.UnixMicro(), revoked).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: %s: %w", entry, err)
	}
	return id, nil
}

// UpdateClientKey changes a client key's name, scopes, limits, budget and
// expiry, by ID. It never changes the digest, the creation time or a
// revocation; a revoked key cannot be updated.
func (tx *Tx) UpdateClientKey(k ClientKey) error {
	if tx.done {
		return errTxDone
	}
	entry := fmt.Sprintf("client key %d", k.ID)
	var revoked sql.NullInt64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT revoked_at FROM client_keys WHERE id = $1`, k.ID).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", entry, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", entry, err)
	}
	if revoked.Valid {
		return fmt.Errorf("store: %s is revoked; create a new key instead", entry)
	}
	if err := tx.checkClientKeyName(entry, k.Name, k.ID, true); err != nil {
		return err
	}
	cols, err := clientKeyJSON(entry, k)
	if err != nil {
		return err
	}
	_, err = tx.exec(`UPDATE client_keys SET name = $1, models = $2, presets = $3, rpm = $4, tpm = $5, max_parallel = $6,
budget = $7, expires_at = $8 WHERE id = $9`,
		k.Name, cols[0], cols[1], k.RPM, k.TPM, k.MaxParallel, cols[2], micros(k.Expires), k.ID)
	if err != nil {
		return fmt.Errorf("store: %s: %w", entry, err)
	}
	return nil
}

// RevokeClientKey revokes a client key for good. Revoking a revoked key
// changes nothing.
func (tx *Tx) RevokeClientKey(id int64) error {
	res, err := tx.exec(`UPDATE client_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, tx.now.UnixMicro(), id)
	if err != nil {
		return fmt.Errorf("store: revoking client key %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var one int
	err = tx.tx.QueryRowContext(tx.ctx, `SELECT 1 FROM client_keys WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: client key %d: %w", id, ErrNotFound)
	}
	return err
}

func (tx *Tx) checkClientKeyName(entry, name string, self int64, active bool) error {
	if err := checkName(name); err != nil {
		return &InvalidError{Entry: entry, Field: "name", Err: err}
	}
	if !active {
		return nil
	}
	var n int
	if err := tx.tx.QueryRowContext(tx.ctx, `SELECT COUNT(*) FROM client_keys WHERE name = $1 AND revoked_at IS NULL AND id <> $2`,
		name, self).Scan(&n); err != nil {
		return fmt.Errorf("store: %s: %w", entry, err)
	}
	if n > 0 {
		return invalid(entry, "name", "another active client key is called %q", name)
	}
	return nil
}

func clientKeyJSON(entry string, k ClientKey) ([3]string, error) {
	var cols [3]string
	for i, v := range []struct {
		field string
		v     any
	}{{"models", k.Models}, {"presets", k.Presets}, {"budget", toJSONBudget(k.Budget)}} {
		b, err := json.Marshal(v.v)
		if err != nil {
			return cols, invalid(entry, v.field, "%v", err)
		}
		cols[i] = string(b)
	}
	return cols, nil
}

// Audit records an entry in the audit log, by the change's actor, in the
// change's transaction. It must never hold a secret: as a safety net, any
// provider key this change wrote or read is replaced by [secret].
func (tx *Tx) Audit(action, target, detail string) error {
	if tx.done {
		return errTxDone
	}
	if action == "" {
		return errors.New("store: an audit entry needs an action")
	}
	for secret := range tx.secrets {
		target = strings.ReplaceAll(target, secret, "[secret]")
		detail = strings.ReplaceAll(detail, secret, "[secret]")
	}
	_, err := tx.exec(`INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)`,
		tx.now.UnixMicro(), tx.actor, action, target, detail)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}
