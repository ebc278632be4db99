package access

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

const (
	aliceKey = "ck-alice-0123456789abcdef"
	bobKey   = "ck-bob-0123456789abcdef00"
	carolKey = "ck-carol-0123456789abcdef"
	daveKey  = "ck-dave-0123456789abcdef0"
	opToken  = "op-token-0123456789abcdef"
)

var t0 = time.Date(2030, 1, 31, 23, 30, 0, 0, time.UTC)

func testKeys(t *testing.T) *Keys {
	t.Helper()
	env := map[string]string{"BOB_KEY": "  " + bobKey + "\n"} // a value read from a file, with its newline
	ks, err := Compile([]config.ClientKey{
		{Name: "alice", Key: aliceKey},
		{Name: "bob", Key: "env:BOB_KEY", Models: []string{"gpt-*"}},
		{Name: "carol", Key: "sha256:" + Digest(carolKey), Presets: []string{"openai"}},
		{Name: "dave", Key: daveKey, Expires: t0},
	}, Options{OperatorToken: opToken, AuthHeader: "x-custom-auth", Getenv: func(n string) string { return env[n] }})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// Authenticate with every carrier, several credentials, the operator's
// token, expired keys, and missing versus wrong.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	for _, tc := range []struct {
		name   string
		query  string
		header map[string][]string // set as a client would (canonicalised by net/http)
		kind   Kind
		key    string // the client key's name
		err    error
	}{
		{name: "bearer", header: map[string][]string{"Authorization": {"Bearer " + aliceKey}}, kind: Client, key: "alice"},
		{name: "bearer lower case", header: map[string][]string{"authorization": {"bearer " + aliceKey}}, kind: Client, key: "alice"},
		{name: "bearer upper case", header: map[string][]string{"AUTHORIZATION": {"BEARER  " + aliceKey + " "}}, kind: Client, key: "alice"},
		{name: "x-api-key", header: map[string][]string{"x-api-key": {aliceKey}}, kind: Client, key: "alice"},
		{name: "X-API-KEY", header: map[string][]string{"X-API-KEY": {aliceKey}}, kind: Client, key: "alice"},
		{name: "x-goog-api-key", header: map[string][]string{"x-goog-api-key": {aliceKey}}, kind: Client, key: "alice"},
		{name: "auth header", header: map[string][]string{"X-Custom-Auth": {aliceKey}}, kind: Client, key: "alice"},
		{name: "auth header with Bearer", header: map[string][]string{"x-custom-auth": {"Bearer " + aliceKey}}, kind: Client, key: "alice"},
		{name: "query key", query: "alt=sse&key=" + aliceKey, kind: Client, key: "alice"},
		{name: "env key", header: map[string][]string{"Authorization": {"Bearer " + bobKey}}, kind: Client, key: "bob"},
		{name: "sha256 key", header: map[string][]string{"X-Api-Key": {carolKey}}, kind: Client, key: "carol"},
		{name: "operator token", header: map[string][]string{"Authorization": {"Bearer " + opToken}}, kind: Operator},
		{name: "operator token in x-api-key", header: map[string][]string{"X-Api-Key": {opToken}}, kind: Operator},
		{name: "wrong then right", header: map[string][]string{"Authorization": {"Bearer sk-wrong-0000000000000000"}, "X-Api-Key": {aliceKey}}, kind: Client, key: "alice"},
		{name: "right then wrong", header: map[string][]string{"Authorization": {"Bearer " + aliceKey}, "X-Api-Key": {"nope"}}, kind: Client, key: "alice"},
		{name: "two Authorization values", header: map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz", "Bearer " + aliceKey}}, kind: Client, key: "alice"},
		{name: "wrong in a header, right in the query", query: "key=" + aliceKey, header: map[string][]string{"X-Goog-Api-Key": {"wrong"}}, kind: Client, key: "alice"},
		{name: "expired", header: map[string][]string{"Authorization": {"Bearer " + daveKey}}, err: ErrExpired},
		{name: "expired and wrong", header: map[string][]string{"Authorization": {"Bearer " + daveKey}, "X-Api-Key": {"wrong"}}, err: ErrExpired},
		{name: "expired and valid", header: map[string][]string{"Authorization": {"Bearer " + daveKey}, "X-Api-Key": {aliceKey}}, kind: Client, key: "alice"},
		{name: "missing", err: ErrMissing},
		{name: "basic auth only", header: map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}}, err: ErrMissing},
		{name: "empty bearer", header: map[string][]string{"Authorization": {"Bearer   "}}, err: ErrMissing},
		{name: "empty key query", query: "key=", err: ErrMissing},
		{name: "wrong", header: map[string][]string{"Authorization": {"Bearer " + aliceKey + "x"}}, err: ErrWrong},
		{name: "prefix of a key", header: map[string][]string{"X-Api-Key": {aliceKey[:len(aliceKey)-1]}}, err: ErrWrong},
		{name: "the digest itself is no key", header: map[string][]string{"X-Api-Key": {Digest(carolKey)}}, err: ErrWrong},
		{name: "sha256: spec is no key", header: map[string][]string{"X-Api-Key": {"sha256:" + Digest(carolKey)}}, err: ErrWrong},
		{name: "api-key (Azure SDKs)", header: map[string][]string{"Api-Key": {aliceKey}}, kind: Client, key: "alice"},
		{name: "another header is not a carrier", header: map[string][]string{"X-Auth": {aliceKey}}, err: ErrMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := "/v1/chat/completions"
			if tc.query != "" {
				target += "?" + tc.query
			}
			r := httptest.NewRequest(http.MethodPost, target, nil)
			for name, vs := range tc.header {
				for _, v := range vs {
					r.Header.Add(name, v)
				}
			}
			c, err := ks.Authenticate(r, t0)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				if c == nil || c.Kind != Anonymous || c.Key != nil {
					t.Errorf("a refused caller %+v", c)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			if c.Kind != tc.kind {
				t.Fatalf("kind %d, want %d", c.Kind, tc.kind)
			}
			if tc.kind == Client && c.Key.Name != tc.key {
				t.Errorf("key %s, want %s", c.Key.Name, tc.key)
			}
		})
	}
}

// Expiry is exact: a key works until its instant, not at it.
func TestExpiry(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	r := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
	r.Header.Set("Authorization", "Bearer "+daveKey)
	if _, err := ks.Authenticate(r, t0.Add(-time.Nanosecond)); err != nil {
		t.Errorf("before expiry: %v", err)
	}
	if _, err := ks.Authenticate(r, t0); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: %v", err)
	}
}

// The error messages say nothing about the keys.
func TestAuthenticateErrorsAreSafe(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrMissing, ErrWrong, ErrExpired} {
		for _, s := range []string{aliceKey, opToken, "ck-"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%q names a key", err)
			}
		}
	}
}

func TestCallerScopes(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	byName := map[string]*Key{}
	for _, k := range ks.List() {
		byName[k.Name] = k
	}
	for _, tc := range []struct {
		caller          *Caller
		name            string
		model, preset   string
		allowsModel     bool
		allowsPreset    bool
		restrictsModels bool
	}{
		{OperatorCaller(), "operator", "anything", "anything", true, true, false},
		{&Caller{}, "anonymous", "anything", "anything", true, true, false},
		{&Caller{Kind: Client, Key: byName["alice"]}, "alice", "anything", "anything", true, true, false},
		{&Caller{Kind: Client, Key: byName["bob"]}, "bob", "gpt-4o", "claude", true, true, true},
		{&Caller{Kind: Client, Key: byName["bob"]}, "bob", "claude-3", "claude", false, true, true},
		{&Caller{Kind: Client, Key: byName["carol"]}, "carol", "x", "openai", true, true, false},
		{&Caller{Kind: Client, Key: byName["carol"]}, "carol", "x", "claude", true, false, false},
	} {
		c := tc.caller
		if c.Name() != tc.name || c.AllowsModel(tc.model) != tc.allowsModel || c.AllowsPreset(tc.preset) != tc.allowsPreset ||
			c.RestrictsModels() != tc.restrictsModels {
			t.Errorf("%s on %s/%s: name %s model %v preset %v restricts %v", tc.name, tc.model, tc.preset,
				c.Name(), c.AllowsModel(tc.model), c.AllowsPreset(tc.preset), c.RestrictsModels())
		}
	}
	models, presets := byName["bob"].Scopes()
	if !equal(models, []string{"gpt-*"}) || presets != nil {
		t.Errorf("bob's scopes %v %v", models, presets)
	}
	if ks.AuthHeader() != "X-Custom-Auth" || !ks.HasCredentials() || ks.Public() {
		t.Errorf("keys: auth header %q, credentials %v, public %v", ks.AuthHeader(), ks.HasCredentials(), ks.Public())
	}
	if names := keyNames(ks.List()); !equal(names, []string{"alice", "bob", "carol", "dave"}) {
		t.Errorf("list order %v", names)
	}
	if byName["alice"].Origin != "config" {
		t.Errorf("origin %q", byName["alice"].Origin)
	}
}

// A key's ID is stable across compilations for the same secret, whatever
// its spelling (literal, env:, sha256:), and differs between secrets.
func TestKeyIDs(t *testing.T) {
	t.Parallel()
	compile := func(spec string) *Key {
		ks, err := Compile([]config.ClientKey{{Name: "k", Key: spec}}, Options{Getenv: func(string) string { return aliceKey }})
		if err != nil {
			t.Fatal(err)
		}
		return ks.List()[0]
	}
	a, b, c := compile(aliceKey), compile("env:ANY"), compile("sha256:"+Digest(aliceKey))
	if a.ID != b.ID || a.ID != c.ID || len(a.ID) != 12 {
		t.Errorf("IDs %q %q %q", a.ID, b.ID, c.ID)
	}
	if compile(bobKey).ID == a.ID {
		t.Error("two secrets, one ID")
	}
	if strings.Contains(aliceKey, a.ID) {
		t.Error("the ID is part of the secret")
	}
}

// Without drops keys by what Digest says of them, keeps the operator's
// token and the others, and leaves the keys it was called on as they were.
func TestKeysWithout(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	auth := func(ks *Keys, secret string) (*Caller, error) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		return ks.Authenticate(r, t0.Add(-time.Hour))
	}
	if same, n := ks.Without(func(*Key) bool { return false }); same != ks || n != 0 {
		t.Errorf("dropping none: %d, a copy %v", n, same != ks)
	}
	out, n := ks.Without(func(k *Key) bool { return k.Digest() == Digest(bobKey) })
	if n != 1 || len(out.List()) != 3 {
		t.Fatalf("dropped %d, %d left", n, len(out.List()))
	}
	if _, err := auth(out, bobKey); !errors.Is(err, ErrWrong) {
		t.Errorf("the dropped key: %v", err)
	}
	for _, secret := range []string{aliceKey, carolKey, daveKey, opToken} {
		if _, err := auth(out, secret); err != nil {
			t.Errorf("a key kept: %v", err)
		}
	}
	if out.AuthHeader() != ks.AuthHeader() {
		t.Error("the extra header is lost")
	}
	if c, err := auth(ks, bobKey); err != nil || c.Name() != "bob" {
		t.Errorf("the original keys changed: %v", err)
	}
}

// Compile's refusals: each a *config.SettingError naming the key (never
// its secret).
func TestCompileRefusals(t *testing.T) {
	t.Parallel()
	const secretText = "ck-secret-text-never-print"
	env := map[string]string{"SHORT": "abc", "SPACEY": "ck-secret text-never-print", "OP": opToken}
	for _, tc := range []struct {
		name    string
		keys    []config.ClientKey
		opts    Options
		setting string
		message string
	}{
		{name: "no name", keys: []config.ClientKey{{Key: aliceKey}}, setting: "client_keys[0]", message: "needs a name"},
		{name: "short key", keys: []config.ClientKey{{Name: "a", Key: "ck-short"}}, setting: "client_keys[0]", message: "shorter than 16"},
		{name: "short env key", keys: []config.ClientKey{{Name: "a", Key: "env:SHORT"}}, setting: "client_keys[0]", message: "shorter than 16"},
		{name: "empty key", keys: []config.ClientKey{{Name: "a", Key: " "}}, setting: "client_keys[0]", message: "empty"},
		{name: "whitespace", keys: []config.ClientKey{{Name: "a", Key: "ck-secret text-never-print"}}, setting: "client_keys[0]", message: "whitespace"},
		{name: "whitespace from env", keys: []config.ClientKey{{Name: "a", Key: "env:SPACEY"}}, setting: "client_keys[0]", message: "whitespace"},
		{name: "env unset", keys: []config.ClientKey{{Name: "a", Key: "env:NOT_SET_ANYWHERE"}}, setting: "client_keys[0]", message: "NOT_SET_ANYWHERE is not set"},
		{name: "bad sha256", keys: []config.ClientKey{{Name: "a", Key: "sha256:abcd"}}, setting: "client_keys[0]", message: "64 hex digits"},
		{name: "sha256 not hex", keys: []config.ClientKey{{Name: "a", Key: "sha256:" + strings.Repeat("zz", 32)}}, setting: "client_keys[0]", message: "64 hex digits"},
		{name: "duplicate names", keys: []config.ClientKey{{Name: "a", Key: aliceKey}, {Name: "a", Key: bobKey}}, setting: "client_keys[1]", message: `"a" is used twice`},
		{name: "duplicate secrets", keys: []config.ClientKey{{Name: "a", Key: secretText}, {Name: "b", Key: secretText}}, setting: "client_keys[1]", message: "same secret"},
		{name: "duplicate secret by digest", keys: []config.ClientKey{{Name: "a", Key: secretText}, {Name: "b", Key: "sha256:" + Digest(secretText)}},
			setting: "client_keys[1]", message: "same secret"},
		{name: "the operator's token", keys: []config.ClientKey{{Name: "a", Key: opToken}}, opts: Options{OperatorToken: opToken}, setting: "client_keys[0]", message: "operator's token"},
		{name: "the operator's token from env", keys: []config.ClientKey{{Name: "a", Key: "env:OP"}}, opts: Options{OperatorToken: opToken}, setting: "client_keys[0]", message: "operator's token"},
		{name: "negative rpm", keys: []config.ClientKey{{Name: "a", Key: aliceKey, RPM: -1}}, setting: "client_keys[0]", message: "negative"},
		{name: "negative max_parallel", keys: []config.ClientKey{{Name: "a", Key: aliceKey, MaxParallel: -1}}, setting: "client_keys[0]", message: "negative"},
		{name: "bad budget period", keys: []config.ClientKey{{Name: "a", Key: aliceKey, Budget: &config.Budget{Amount: 5, Period: "week"}}}, setting: "client_keys[0]", message: "day or month"},
		{name: "zero budget", keys: []config.ClientKey{{Name: "a", Key: aliceKey, Budget: &config.Budget{Amount: 0}}}, setting: "client_keys[0]", message: "positive"},
		{name: "bad model pattern", keys: []config.ClientKey{{Name: "a", Key: aliceKey, Models: []string{"gpt-4o", ""}}}, setting: "client_keys[0]", message: "models"},
		{name: "bad preset pattern", keys: []config.ClientKey{{Name: "a", Key: aliceKey, Presets: []string{"a\nb"}}}, setting: "client_keys[0]", message: "presets"},
		{name: "a seed's key names its variable", keys: []config.ClientKey{{Name: "PROXY_AUTH_TOKEN", Key: "env:SHORT", Origin: "PROXY_AUTH_TOKEN"}},
			setting: "PROXY_AUTH_TOKEN", message: "shorter than 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.Getenv = func(n string) string { return env[n] }
			_, err := Compile(tc.keys, opts)
			var se *config.SettingError
			if !errors.As(err, &se) {
				t.Fatalf("err %v (%T), want a *config.SettingError", err, err)
			}
			if se.Setting != tc.setting || !strings.Contains(se.Msg, tc.message) {
				t.Errorf("got %s: %s; want %s: …%s…", se.Setting, se.Msg, tc.setting, tc.message)
			}
			for _, s := range []string{secretText, "secret text", opToken, aliceKey, "abc\""} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error holds a secret: %q", err)
				}
			}
		})
	}
}

// Budgets: amounts in nanos, currencies in lower case, day or month.
func TestCompileBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   config.Budget
		want Budget
	}{
		{config.Budget{Amount: 5, Period: "day"}, Budget{Nanos: 5e9, Period: Day, Currency: "usd"}},
		{config.Budget{Amount: 20, Period: "month", Currency: "EUR"}, Budget{Nanos: 20e9, Period: Month, Currency: "eur"}},
		{config.Budget{Amount: 0.1}, Budget{Nanos: 1e8, Period: Month, Currency: "usd"}},
		{config.Budget{Amount: 1, Period: "Daily"}, Budget{Nanos: 1e9, Period: Day, Currency: "usd"}},
		{config.Budget{Amount: 1, Period: "monthly", Currency: "cny"}, Budget{Nanos: 1e9, Period: Month, Currency: "cny"}},
		{config.Budget{Amount: 0.000000001}, Budget{Nanos: 1, Period: Month, Currency: "usd"}},
	} {
		ks, err := Compile([]config.ClientKey{{Name: "a", Key: aliceKey, Budget: &tc.in}}, Options{})
		if err != nil {
			t.Fatalf("%+v: %v", tc.in, err)
		}
		if got := *ks.List()[0].Budget; got != tc.want {
			t.Errorf("%+v: %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestPeriods(t *testing.T) {
	t.Parallel()
	est := time.FixedZone("EST", -5*3600)
	for _, tc := range []struct {
		p           Period
		at          time.Time
		start, next time.Time
	}{
		{Day, t0, time.Date(2030, 1, 31, 0, 0, 0, 0, time.UTC), time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)},
		{Month, t0, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)},
		// 31 January 20:00 in New York is 1 February in UTC: periods are UTC.
		{Day, time.Date(2030, 1, 31, 20, 0, 0, 0, est), time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 2, 2, 0, 0, 0, 0, time.UTC)},
		{Month, time.Date(2030, 1, 31, 20, 0, 0, 0, est), time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC)},
		{Month, time.Date(2030, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2030, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Day, time.Date(2028, 2, 28, 12, 0, 0, 0, time.UTC), time.Date(2028, 2, 28, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
	} {
		if s, n := tc.p.Start(tc.at), tc.p.Next(tc.at); !s.Equal(tc.start) || !n.Equal(tc.next) {
			t.Errorf("%s of %v: %v – %v, want %v – %v", tc.p, tc.at, s, n, tc.start, tc.next)
		}
	}
	if Day.String() != "day" || Month.String() != "month" {
		t.Error("period names")
	}
}

// The credentials a request carries, in the order they are tried.
func TestCredentials(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/v1beta/models/m:generateContent?key=q1&key=&%6bey=q2", nil)
	r.Header.Add("Authorization", "Bearer b1")
	r.Header.Add("Authorization", "Token nope")
	r.Header.Add("X-Goog-Api-Key", " g1 ")
	r.Header.Add("X-Api-Key", "x1")
	r.Header.Add("X-Custom-Auth", "Bearer c1")
	got := AppendCredentials(nil, r, "X-Custom-Auth")
	want := []Credential{{"b1", "bearer"}, {"x1", "x-api-key"}, {"g1", "x-goog-api-key"}, {"c1", "X-Custom-Auth"}, {"q1", "query"}, {"q2", "query"}}
	if len(got) != len(want) {
		t.Fatalf("credentials %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("credential %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// A key name percent-encoded is the name (net/url decodes it, and so do
// the providers): alone in the query, it is still a credential.
func TestCredentialsEscapedQueryName(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/v1beta/models/m:generateContent?%6Bey=q3&alt=sse", nil)
	got := AppendCredentials(nil, r, "")
	if len(got) != 1 || got[0] != (Credential{"q3", "query"}) {
		t.Fatalf("credentials %v, want [{q3 query}]", got)
	}
}

func TestPublicAndEmpty(t *testing.T) {
	t.Parallel()
	ks, err := Compile(nil, Options{Public: true})
	if err != nil {
		t.Fatal(err)
	}
	if !ks.Public() || ks.HasCredentials() || len(ks.List()) != 0 || ks.AuthHeader() != "" {
		t.Errorf("empty public keys: %+v", ks)
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
	r.Header.Set("Authorization", "Bearer "+aliceKey)
	if _, err := ks.Authenticate(r, t0); !errors.Is(err, ErrWrong) {
		t.Errorf("a credential with none configured: %v", err)
	}
}

func keyNames(ks []*Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Name
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// KeyID finds a compiled key's id from the digest the admin store keeps:
// the store's usage rows and the panel's keys page meet on it.
func TestKeyIDFromDigest(t *testing.T) {
	t.Parallel()
	ks, err := Compile([]config.ClientKey{{Name: "alice", Key: aliceKey}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := ks.List()[0]
	if got := KeyID(k.Digest()); got != k.ID || len(got) != 12 {
		t.Errorf("KeyID(%s) = %q, want %q", k.Digest(), got, k.ID)
	}
	if got := KeyID(strings.ToUpper(Digest(aliceKey))); got != k.ID {
		t.Errorf("KeyID of an upper-case digest = %q, want %q", got, k.ID)
	}
	if got := KeyID("abc"); got != "" {
		t.Errorf("KeyID of a short digest = %q", got)
	}
}
