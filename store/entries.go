package store

import (
	"cmp"
	"context"
	"crypto/cipher"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/llmproxy/llmproxy/config"
)

// Entries are the configuration the panel manages.
type Entries struct {
	Providers  []Provider
	Models     []Model
	ClientKeys []ClientKey // revoked ones included (RevokedAt set); Apply skips them
}

// Provider mirrors config.Provider, with named keys.
type Provider struct {
	Name, Kind, BaseURL, Preset      string
	Weight                           int
	Models                           []string
	Headers                          map[string]string
	Transport, Responses, APIVersion string
	Keys                             []ProviderKey
	UpdatedAt                        time.Time
	// LeftOut counts the Locked keys WithoutLocked took out (never
	// stored): Apply tells the gateway the provider still holds keys.
	LeftOut int
}

// ProviderKey is one of a provider's API keys: an env:NAME reference or a
// literal.
type ProviderKey struct {
	ID     int64  // 0 for a new key
	Name   string // shown in stats and pages; default the env var name or "key-N"
	Env    string // set for an env:NAME reference
	Secret string // a literal: only in memory, encrypted at rest; filled when read (decrypted); "" when Locked
	Last4  string // stored in clear for display, computed at save ("" for env refs and secrets shorter than 12)
	// Locked is set when the store holds a literal it cannot decrypt:
	// ErrNoSecretKey (no SecretKey) or ErrWrongSecretKey (not the key it
	// was saved with). Secret is "" then; saving the key unchanged keeps
	// the stored value, and Apply refuses it.
	Locked error
}

// Model mirrors config.Model.
type Model struct {
	Name                                           string
	Targets                                        []config.Target
	Strategy                                       string
	DisplayName, Description                       string
	ContextWindow, MaxInputTokens, MaxOutputTokens int
	Pricing                                        *config.Pricing
	Flags                                          []string
	Metadata                                       map[string]any
	UpdatedAt                                      time.Time
}

// ClientKey is a credential handed out from the panel. The secret itself
// is never stored.
type ClientKey struct {
	ID     int64
	Name   string
	Digest string // hex SHA-256 of the secret (access.Digest)
	// Models and Presets are names or * patterns; nil means all, an empty
	// list none.
	Models, Presets       []string
	RPM, TPM, MaxParallel int
	Budget                *config.Budget
	Expires               time.Time // zero = never
	CreatedAt, RevokedAt  time.Time // RevokedAt zero = active
}

// Active reports whether the key is not revoked (it may still be expired).
func (k ClientKey) Active() bool { return k.RevokedAt.IsZero() }

// LockedKey names a provider key whose stored literal cannot be decrypted.
type LockedKey struct {
	Provider, Key string
	Err           error // ErrNoSecretKey or ErrWrongSecretKey
}

func (l LockedKey) Error() string {
	return fmt.Sprintf("provider %q key %q: %v", l.Provider, l.Key, l.Err)
}

func (l LockedKey) Unwrap() error { return l.Err }

// Locked lists the provider keys whose literal could not be decrypted, in
// order, so that the panel and the start-up log can say which ones.
func (e Entries) Locked() []LockedKey {
	var out []LockedKey
	for _, p := range e.Providers {
		for _, k := range p.Keys {
			if k.Locked != nil {
				out = append(out, LockedKey{Provider: p.Name, Key: k.Name, Err: k.Locked})
			}
		}
	}
	return out
}

// WithoutLocked returns a copy of e without the keys Locked lists, for a
// caller that would rather serve with fewer keys (and say so) than have
// Apply refuse them. Each provider counts what it lost (LeftOut): one left
// with no usable key still holds keys, and the gateway refuses its
// requests rather than send them without a key.
func (e Entries) WithoutLocked() Entries {
	out := e
	out.Providers = make([]Provider, len(e.Providers))
	for i, p := range e.Providers {
		n := len(p.Keys)
		p.Keys = slices.DeleteFunc(slices.Clone(p.Keys), func(k ProviderKey) bool { return k.Locked != nil })
		p.LeftOut += n - len(p.Keys)
		out.Providers[i] = p
	}
	return out
}

// Entries reads the configuration, literals decrypted. A literal that
// does not decrypt does not fail the read: its key comes back Locked.
func (s *Store) Entries(ctx context.Context) (Entries, error) {
	// One read transaction: one snapshot across the four queries.
	tx, err := s.r.BeginTx(ctx, s.d.snapshot)
	if err != nil {
		return Entries{}, fmt.Errorf("store: entries: %w", err)
	}
	defer tx.Rollback()
	return readEntries(ctx, tx, s.aead, nil)
}

// readEntries reads everything through q. Each decrypted secret is also
// passed to seen (the Tx's audit guard) when it is set.
func readEntries(ctx context.Context, q *sql.Tx, aead cipher.AEAD, seen func(string)) (Entries, error) {
	var e Entries
	var err error
	if e.Providers, err = readProviders(ctx, q, aead, seen); err != nil {
		return Entries{}, fmt.Errorf("store: providers: %w", err)
	}
	if e.Models, err = readModels(ctx, q); err != nil {
		return Entries{}, fmt.Errorf("store: models: %w", err)
	}
	if e.ClientKeys, err = readClientKeys(ctx, q); err != nil {
		return Entries{}, fmt.Errorf("store: client keys: %w", err)
	}
	return e, nil
}

func readProviders(ctx context.Context, q *sql.Tx, aead cipher.AEAD, seen func(string)) ([]Provider, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, kind, base_url, preset, weight, models, headers, transport, responses, api_version, updated_at
FROM providers ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Provider
	index := map[int64]int{}
	for rows.Next() {
		var p Provider
		var id, updated int64
		var models, headers string
		if err := rows.Scan(&id, &p.Name, &p.Kind, &p.BaseURL, &p.Preset, &p.Weight, &models, &headers,
			&p.Transport, &p.Responses, &p.APIVersion, &updated); err != nil {
			return nil, err
		}
		if err := unmarshalColumns("provider "+p.Name, column{"models", models, &p.Models}, column{"headers", headers, &p.Headers}); err != nil {
			return nil, err
		}
		p.UpdatedAt = fromMicros(updated)
		index[id] = len(out)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	keys, err := q.QueryContext(ctx, `SELECT id, provider_id, name, env, sealed, last4 FROM provider_keys ORDER BY provider_id, position, id`)
	if err != nil {
		return nil, err
	}
	defer keys.Close()
	for keys.Next() {
		var k ProviderKey
		var pid int64
		var sealed []byte
		if err := keys.Scan(&k.ID, &pid, &k.Name, &k.Env, &sealed, &k.Last4); err != nil {
			return nil, err
		}
		i, ok := index[pid]
		if !ok {
			continue // cannot happen with foreign keys on
		}
		if k.Env == "" {
			k.Secret, k.Locked = open(aead, sealed, keyAAD(out[i].Name, k.Name))
			if k.Locked == nil && seen != nil {
				seen(k.Secret)
			}
		}
		out[i].Keys = append(out[i].Keys, k)
	}
	return out, keys.Err()
}

func readModels(ctx context.Context, q *sql.Tx) ([]Model, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, targets, strategy, display_name, description, context_window, max_input_tokens, max_output_tokens,
pricing, flags, metadata, updated_at FROM models ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Model
	for rows.Next() {
		var m Model
		var targets, pricing, flags, metadata string
		var updated int64
		var jt []jsonTarget
		var jp *jsonPricing
		if err := rows.Scan(&m.Name, &targets, &m.Strategy, &m.DisplayName, &m.Description, &m.ContextWindow,
			&m.MaxInputTokens, &m.MaxOutputTokens, &pricing, &flags, &metadata, &updated); err != nil {
			return nil, err
		}
		if err := unmarshalColumns("model "+m.Name, column{"targets", targets, &jt}, column{"pricing", pricing, &jp},
			column{"flags", flags, &m.Flags}, column{"metadata", metadata, &m.Metadata}); err != nil {
			return nil, err
		}
		m.Targets, m.Pricing = fromJSONTargets(jt), fromJSONPricing(jp)
		m.UpdatedAt = fromMicros(updated)
		out = append(out, m)
	}
	return out, rows.Err()
}

func readClientKeys(ctx context.Context, q *sql.Tx) ([]ClientKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, digest, models, presets, rpm, tpm, max_parallel, budget, expires_at, created_at, revoked_at
FROM client_keys ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ClientKey
	for rows.Next() {
		var k ClientKey
		var models, presets, budget string
		var expires, created int64
		var revoked sql.NullInt64
		var jb *jsonBudget
		if err := rows.Scan(&k.ID, &k.Name, &k.Digest, &models, &presets, &k.RPM, &k.TPM, &k.MaxParallel,
			&budget, &expires, &created, &revoked); err != nil {
			return nil, err
		}
		if err := unmarshalColumns("client key "+k.Name, column{"models", models, &k.Models},
			column{"presets", presets, &k.Presets}, column{"budget", budget, &jb}); err != nil {
			return nil, err
		}
		k.Budget = fromJSONBudget(jb)
		k.Expires, k.CreatedAt = fromMicros(expires), fromMicros(created)
		if revoked.Valid {
			k.RevokedAt = fromMicros(revoked.Int64)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// column is a JSON column and where it decodes to.
type column struct {
	name, raw string
	dst       any
}

func unmarshalColumns(row string, cols ...column) error {
	for _, c := range cols {
		if err := json.Unmarshal([]byte(c.raw), c.dst); err != nil {
			return fmt.Errorf("%s: %s: the stored JSON does not decode: %w", row, c.name, err)
		}
	}
	return nil
}

// Apply adds the entries to a configuration (the file's), marked Origin
// "store": providers (keys as "env:NAME" or the decrypted literal),
// models, and the active client keys as "sha256:<digest>". A name the
// configuration already uses is an error naming both origins; so is a
// Locked key. On error cfg is left as it was.
//
// Key names: config.Provider.Keys holds specs only, so a provider key's
// Name does not reach the gateway yet; there an env key is named after its
// variable and a literal "key-N" by position, which is also the store's
// default name.
func (e Entries) Apply(cfg *config.Config) error {
	if locked := e.Locked(); len(locked) > 0 {
		errs := make([]error, len(locked))
		for i, l := range locked {
			errs[i] = fmt.Errorf("store: %w", l)
		}
		return errors.Join(errs...)
	}
	c := cfg.Clone()
	for _, p := range e.Providers {
		specs := make([]string, len(p.Keys))
		names := make([]string, len(p.Keys))
		for i, k := range p.Keys {
			if k.Env != "" {
				specs[i] = "env:" + k.Env
			} else {
				specs[i] = k.Secret
			}
			names[i] = k.Name // the panel's names reach stats and pages
		}
		if err := c.AddProvider(config.Provider{
			Name: p.Name, Origin: "store",
			Kind: p.Kind, BaseURL: p.BaseURL, Preset: p.Preset, Keys: specs, KeyNames: names, Unusable: p.LeftOut, Weight: p.Weight,
			Models: slices.Clone(p.Models), Headers: maps.Clone(p.Headers),
			Transport: p.Transport, Responses: p.Responses, APIVersion: p.APIVersion,
		}); err != nil {
			return err
		}
	}
	for _, m := range e.Models {
		if err := c.AddModel(config.Model{
			Name: m.Name, Origin: "store",
			Targets: slices.Clone(m.Targets), Strategy: m.Strategy,
			DisplayName: m.DisplayName, Description: m.Description,
			ContextWindow: m.ContextWindow, MaxInputTokens: m.MaxInputTokens, MaxOutputTokens: m.MaxOutputTokens,
			Pricing: clonePricing(m.Pricing), Flags: slices.Clone(m.Flags), Metadata: maps.Clone(m.Metadata),
		}); err != nil {
			return err
		}
	}
	used := make(map[string]string, len(c.ClientKeys))
	for _, k := range c.ClientKeys {
		used[k.Name] = cmp.Or(k.Origin, "config")
	}
	for _, k := range e.ClientKeys {
		if !k.Active() {
			continue
		}
		if origin, ok := used[k.Name]; ok {
			return fmt.Errorf("client key %q from store is already defined by %s", k.Name, origin)
		}
		used[k.Name] = "store"
		ck := config.ClientKey{
			Origin: "store", Name: k.Name, Key: "sha256:" + k.Digest,
			Models: slices.Clone(k.Models), Presets: slices.Clone(k.Presets),
			RPM: k.RPM, TPM: k.TPM, MaxParallel: k.MaxParallel, Expires: k.Expires,
		}
		if k.Budget != nil {
			b := *k.Budget
			ck.Budget = &b
		}
		c.ClientKeys = append(c.ClientKeys, ck)
	}
	*cfg = *c
	return nil
}

func clonePricing(p *config.Pricing) *config.Pricing {
	if p == nil {
		return nil
	}
	c := *p
	if p.CachedPer1M != nil {
		v := *p.CachedPer1M
		c.CachedPer1M = &v
	}
	return &c
}
