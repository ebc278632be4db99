// Package access answers "who is calling": the operator's token, a client
// key the operator handed out, or nobody. A credential is accepted from
// Authorization: Bearer, x-api-key, x-goog-api-key, ?key= or one more header
// the operator names; it is compared as a SHA-256 digest and never goes
// upstream. A Caller carries the key's scopes (models, presets) and limits
// (requests and tokens per minute, requests at once, a budget), which a
// Limiter enforces.
package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/config"
)

// Kind is what kind of caller a request comes from.
type Kind uint8

const (
	Anonymous Kind = iota // no credential (gateway.public, or a route that needs none)
	Operator              // the operator's token: every model and preset, no limits
	Client                // a client key
)

// Caller is who a request comes from.
type Caller struct {
	Kind Kind
	Key  *Key // the client key; nil for Operator and Anonymous
}

// Name is what logs, stats and metrics call the caller: the client key's
// name, "operator" or "anonymous". Never a secret.
func (c *Caller) Name() string {
	switch c.Kind {
	case Operator:
		return "operator"
	case Client:
		return c.Key.Name
	}
	return "anonymous"
}

// AllowsModel reports whether the caller may use a model (by its public
// name).
func (c *Caller) AllowsModel(model string) bool {
	return c.Kind != Client || c.Key.models.Match(model)
}

// AllowsPreset reports whether the caller may use a preset's server-side
// keys.
func (c *Caller) AllowsPreset(name string) bool {
	return c.Kind != Client || c.Key.presets.Match(name)
}

// RestrictsModels reports whether AllowsModel can say no, so that a
// request need not be read for its model when it cannot.
func (c *Caller) RestrictsModels() bool { return c.Kind == Client && c.Key.models != nil }

// AllowsModelName reports whether the key's model scope covers name.
func (k *Key) AllowsModelName(name string) bool { return k.models.Match(name) }

// Scopes returns the key's model and preset patterns as configured (nil:
// all).
func (k *Key) Scopes() (models, presets []string) {
	return k.models.Strings(), k.presets.Strings()
}

// Key is a client key, compiled: the secret is kept only as its digest.
type Key struct {
	// Name names the key in logs, stats and pages; ID is stable across
	// reloads for the same secret (it keys the limiter's state).
	Name, ID string
	// Origin is where it was defined: config, PROXY_AUTH_TOKEN, store.
	Origin      string
	RPM, TPM    int
	MaxParallel int
	Budget      *Budget
	Expires     time.Time

	digest          [32]byte
	models, presets Patterns
	caller          *Caller // the key's Caller, made once: Authenticate returns it
}

// Budget is a spending cap per period, in nano-units (1e-9) of Currency.
type Budget struct {
	Nanos    int64
	Period   Period
	Currency string
}

// Period is a budget's window: a calendar day or month, in UTC.
type Period uint8

const (
	Month Period = iota
	Day
)

func (p Period) String() string {
	if p == Day {
		return "day"
	}
	return "month"
}

// Start returns the start of the period holding t (UTC).
func (p Period) Start(t time.Time) time.Time {
	t = t.UTC()
	if p == Day {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Next returns the start of the period after the one holding t.
func (p Period) Next(t time.Time) time.Time {
	s := p.Start(t)
	if p == Day {
		return s.AddDate(0, 0, 1)
	}
	return s.AddDate(0, 1, 0)
}

// Errors of Authenticate. Their messages are safe to show a client.
var (
	ErrMissing = errors.New("this endpoint needs a key: send it as Authorization: Bearer <key> (or x-api-key)")
	ErrWrong   = errors.New("invalid key")
	ErrExpired = errors.New("this key has expired")
)

// Keys is the compiled set of credentials, immutable once built.
type Keys struct {
	byDigest    map[[32]byte]*Key
	list        []*Key
	operator    [32]byte
	hasOperator bool
	authHeader  string // canonical; "" when none
	public      bool
}

// Options are what Compile needs besides the client keys.
type Options struct {
	// OperatorToken is the operator's token (auth_token); "" for none.
	OperatorToken string
	// AuthHeader is one more header that may carry a credential.
	AuthHeader string
	// Public lets anonymous callers use the gateway.
	Public bool
	// Getenv resolves env:NAME; default os.Getenv.
	Getenv func(string) string
}

// Compile checks and compiles client keys. Errors name the key (never its
// secret) and are *config.SettingError.
func Compile(keys []config.ClientKey, opts Options) (*Keys, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	ks := &Keys{byDigest: make(map[[32]byte]*Key, len(keys)), public: opts.Public}
	if opts.OperatorToken != "" {
		ks.operator, ks.hasOperator = sha256.Sum256([]byte(opts.OperatorToken)), true
	}
	if h := strings.TrimSpace(opts.AuthHeader); h != "" {
		ks.authHeader = textproto.CanonicalMIMEHeaderKey(h)
	}
	names := make(map[string]bool, len(keys))
	for i, ck := range keys {
		setting := fmt.Sprintf("client_keys[%d]", i)
		switch {
		case ck.Origin == "store":
			setting = "client_keys." + ck.Name
		case ck.Origin != "" && ck.Origin != "config":
			setting = ck.Origin
		}
		fail := func(format string, args ...any) error {
			return &config.SettingError{Setting: setting, Msg: fmt.Sprintf(format, args...)}
		}
		if ck.Name == "" {
			return nil, fail("a client key needs a name")
		}
		if names[ck.Name] {
			return nil, fail("client key name %q is used twice", ck.Name)
		}
		names[ck.Name] = true
		digest, err := digestOf(ck.Key, getenv)
		if err != nil {
			return nil, fail("client key %q: %v", ck.Name, err)
		}
		if ks.hasOperator && digest == ks.operator {
			return nil, fail("client key %q is the operator's token", ck.Name)
		}
		if _, dup := ks.byDigest[digest]; dup {
			return nil, fail("client key %q has the same secret as another key", ck.Name)
		}
		if ck.RPM < 0 || ck.TPM < 0 || ck.MaxParallel < 0 {
			return nil, fail("client key %q: rpm, tpm and max_parallel must not be negative", ck.Name)
		}
		k := &Key{
			Name: ck.Name, ID: hex.EncodeToString(digest[:6]), Origin: ck.Origin,
			RPM: ck.RPM, TPM: ck.TPM, MaxParallel: ck.MaxParallel, Expires: ck.Expires, digest: digest,
		}
		if k.Origin == "" {
			k.Origin = "config"
		}
		if k.models, err = CompilePatterns(ck.Models); err != nil {
			return nil, fail("client key %q: models: %v", ck.Name, err)
		}
		if k.presets, err = CompilePatterns(ck.Presets); err != nil {
			return nil, fail("client key %q: presets: %v", ck.Name, err)
		}
		if ck.Budget != nil {
			b, err := compileBudget(*ck.Budget)
			if err != nil {
				return nil, fail("client key %q: budget: %v", ck.Name, err)
			}
			k.Budget = &b
		}
		k.caller = &Caller{Kind: Client, Key: k}
		ks.byDigest[digest] = k
		ks.list = append(ks.list, k)
	}
	return ks, nil
}

func compileBudget(b config.Budget) (Budget, error) {
	out := Budget{Currency: strings.ToLower(b.Currency)}
	if out.Currency == "" {
		out.Currency = "usd"
	}
	switch strings.ToLower(b.Period) {
	case "", "month", "monthly":
		out.Period = Month
	case "day", "daily":
		out.Period = Day
	default:
		return out, fmt.Errorf("period must be day or month, not %q", b.Period)
	}
	if b.Amount <= 0 {
		return out, errors.New("amount must be positive")
	}
	out.Nanos = int64(b.Amount*1e9 + 0.5)
	return out, nil
}

// digestOf resolves a key spec (literal, env:NAME, sha256:HEX) to the
// SHA-256 digest of the secret.
func digestOf(spec string, getenv func(string) string) ([32]byte, error) {
	var zero [32]byte
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return zero, errors.New("key is empty")
	case strings.HasPrefix(spec, "env:"):
		name := strings.TrimPrefix(spec, "env:")
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return zero, fmt.Errorf("environment variable %s is not set", name)
		}
		return checkSecret(v)
	case strings.HasPrefix(spec, "sha256:"):
		var d [32]byte
		raw, err := hex.DecodeString(strings.TrimPrefix(spec, "sha256:"))
		if err != nil || len(raw) != 32 {
			return zero, errors.New("sha256: must be followed by 64 hex digits")
		}
		copy(d[:], raw)
		return d, nil
	}
	return checkSecret(spec)
}

// SpecDigest resolves a client key spec (a literal, env:NAME or
// sha256:HEX) as Compile does, with its checks (a secret shorter than
// MinKeyLength or copied from an example is refused), to the hex digest
// Digest gives: the form the admin store keeps. Errors never hold the
// secret.
func SpecDigest(spec string, getenv func(string) string) (string, error) {
	d, err := digestOf(spec, getenv)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(d[:]), nil
}

// MinKeyLength is the shortest client key accepted.
const MinKeyLength = 16

func checkSecret(s string) ([32]byte, error) {
	lower := strings.ToLower(s)
	for _, p := range placeholders {
		if lower == p || strings.HasPrefix(lower, "your-") || strings.HasPrefix(lower, "your_") {
			return [32]byte{}, errors.New("is a well-known placeholder; generate one with: openssl rand -hex 24")
		}
	}
	if len(s) < MinKeyLength {
		return [32]byte{}, fmt.Errorf("is shorter than %d characters; generate one with: openssl rand -hex 24", MinKeyLength)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return [32]byte{}, errors.New("holds whitespace")
	}
	return sha256.Sum256([]byte(s)), nil
}

// Digest returns the hex SHA-256 of a secret, the form client_keys accept
// as sha256:<digest> (and the admin store keeps).
func Digest(secret string) string {
	d := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(d[:])
}

// Digest returns the hex SHA-256 of the key's secret, as Digest gives it
// (the form the admin store keeps).
func (k *Key) Digest() string { return hex.EncodeToString(k.digest[:]) }

// KeyID returns the id (Key.ID) of the key whose secret has the hex digest
// given (as Digest writes it): its first 12 digits. "" when it is shorter.
func KeyID(hexDigest string) string {
	if len(hexDigest) < 12 {
		return ""
	}
	return strings.ToLower(hexDigest[:12])
}

// List returns the keys in configuration order.
func (ks *Keys) List() []*Key { return ks.list }

// Without returns the keys less those drop picks, and how many it took;
// everything else (the operator's token, the header, public) is kept. ks
// itself is returned when drop picks none: Keys never change once built.
func (ks *Keys) Without(drop func(*Key) bool) (*Keys, int) {
	list := make([]*Key, 0, len(ks.list))
	for _, k := range ks.list {
		if !drop(k) {
			list = append(list, k)
		}
	}
	n := len(ks.list) - len(list)
	if n == 0 {
		return ks, 0
	}
	out := *ks
	out.list = list
	out.byDigest = make(map[[32]byte]*Key, len(list))
	for _, k := range list {
		out.byDigest[k.digest] = k
	}
	return &out, n
}

// Public reports whether anonymous callers may use the gateway.
func (ks *Keys) Public() bool { return ks.public }

// HasCredentials reports whether any credential could authenticate.
func (ks *Keys) HasCredentials() bool { return ks.hasOperator || len(ks.list) > 0 }

// AuthHeader returns the extra credential header's canonical name, or "".
func (ks *Keys) AuthHeader() string { return ks.authHeader }

// Authenticate finds the caller of r from its credentials. A request that
// carries none is Anonymous with ErrMissing; one whose credentials all
// fail gets ErrWrong (or ErrExpired). Every credential the request carries
// is tried, so a client that sends its key in one header and something
// else in another is still recognised.
func (ks *Keys) Authenticate(r *http.Request, now time.Time) (*Caller, error) {
	found := false
	var expired bool
	var buf [4]Credential // room for the usual few, on the stack
	for _, cred := range AppendCredentials(buf[:0], r, ks.authHeader) {
		found = true
		sum := sha256.Sum256([]byte(cred.Value))
		if ks.hasOperator && subtle.ConstantTimeCompare(sum[:], ks.operator[:]) == 1 {
			return &Caller{Kind: Operator}, nil
		}
		// A map lookup on the digest: its timing says nothing about the
		// secret, and the final comparison is constant-time.
		if k := ks.byDigest[sum]; k != nil && subtle.ConstantTimeCompare(sum[:], k.digest[:]) == 1 {
			if !k.Expires.IsZero() && !now.Before(k.Expires) {
				expired = true
				continue
			}
			return k.caller, nil
		}
	}
	switch {
	case expired:
		return &Caller{}, ErrExpired
	case found:
		return &Caller{}, ErrWrong
	}
	return &Caller{}, ErrMissing
}

// OperatorCaller is the caller behind a request that came under the
// operator's token in the path.
func OperatorCaller() *Caller { return &Caller{Kind: Operator} }

// Credential is a credential a request carries, and where.
type Credential struct {
	Value string
	Where string // "bearer", "x-api-key", "x-goog-api-key", "query", or the auth header's name
}

// wsKeyPrefix starts the WebSocket subprotocol that carries a key.
const wsKeyPrefix = "openai-insecure-api-key."

// CredentialHeaders are the headers that may carry a client credential
// (besides the operator's auth_header). A request that authenticated with
// a client credential never sends any of them upstream: the provider's key
// is injected instead.
var CredentialHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key"}

// placeholders are keys copied from examples (the seeds' own among them):
// anyone who read the same README could guess them.
var placeholders = []string{"my-secret-password-123", "my-custom-key-001", "your-api-key", "sk-xxxx",
	"changeme", "change-me", "replace-me", "placeholder", "password", "secret", "test-key"}

// AppendCredentials appends to out the credentials r carries, in the order
// they are tried: Authorization: Bearer, x-api-key, x-goog-api-key,
// api-key, the extra header, ?key=.
func AppendCredentials(out []Credential, r *http.Request, authHeader string) []Credential {
	for _, v := range r.Header["Authorization"] {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			if t := strings.TrimSpace(v[7:]); t != "" {
				out = append(out, Credential{t, "bearer"})
			}
		}
	}
	// api-key is where Azure OpenAI's SDKs put theirs.
	for _, name := range [...]string{"X-Api-Key", "X-Goog-Api-Key", "Api-Key"} {
		for _, v := range r.Header[name] {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, Credential{v, strings.ToLower(name)})
			}
		}
	}
	if authHeader != "" {
		for _, v := range r.Header[authHeader] {
			v = strings.TrimSpace(v)
			if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
				v = strings.TrimSpace(v[7:])
			}
			if v != "" {
				out = append(out, Credential{v, authHeader})
			}
		}
	}
	// A browser cannot set headers on a WebSocket: OpenAI's Realtime API
	// takes the key in a subprotocol, openai-insecure-api-key.<key>.
	for _, v := range r.Header["Sec-Websocket-Protocol"] {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			if len(p) > len(wsKeyPrefix) && strings.EqualFold(p[:len(wsKeyPrefix)], wsKeyPrefix) {
				out = append(out, Credential{p[len(wsKeyPrefix):], "subprotocol"})
			}
		}
	}
	// A name percent-encoded (%6Bey) is the name, as net/url decodes it.
	if q := r.URL.RawQuery; strings.Contains(q, "key=") || strings.IndexByte(q, '%') >= 0 {
		for _, v := range r.URL.Query()["key"] {
			if v != "" {
				out = append(out, Credential{v, "query"})
			}
		}
	}
	return out
}

type callerKey struct{}

// WithCaller returns a context whose requests come from c without a
// credential: llmproxy's own in-process requests (the admin panel's Test
// button). Nothing outside the process can set it.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller WithCaller set, if any.
func CallerFrom(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok
}
