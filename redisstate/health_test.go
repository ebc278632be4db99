package redisstate

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/providertest"
)

const (
	key1 = "sk-redisstate-key-one-000001"
	key2 = "sk-redisstate-key-two-000002"
)

// replica is one llmproxy's gateway: a health registry shared through
// Redis, and a snapshot compiled on it.
type replica struct {
	s      *Shared
	health *gateway.Health
	snap   *gateway.Snapshot
}

func newReplica(t *testing.T, r *redisServer, yaml string, opts Options) *replica {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: providertest.CA(t).ClientTLS()}
	t.Cleanup(tr.CloseIdleConnections)
	h := gateway.NewHealth()
	s := newShared(t, r, opts)
	s.ShareHealth(h)
	snap, err := gateway.Compile(cfg, gateway.Deps{
		Transport: func(string, string) http.RoundTripper { return tr },
		Guarded:   tr,
		Health:    h,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &replica{s: s, health: h, snap: snap}
}

func (rp *replica) provider(t *testing.T, name string) *gateway.Provider {
	t.Helper()
	for _, p := range rp.snap.Providers() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no provider %s", name)
	return nil
}

// keyHealth returns the health of the provider key whose secret ends
// like secret (keys are shown masked).
func (rp *replica) keyHealth(t *testing.T, provider, secret string) *gateway.KeyHealth {
	t.Helper()
	for _, k := range rp.provider(t, provider).Keys() {
		if strings.HasSuffix(k.Masked, secret[len(secret)-4:]) {
			return k.Health()
		}
	}
	t.Fatalf("no key …%s", secret[len(secret)-4:])
	return nil
}

// chat sends one Chat Completions request through the replica's gateway,
// as the server does, and returns the status.
func (rp *replica) chat(t *testing.T, model string) int {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	r.Header.Set("Content-Type", "application/json")
	call, err := gateway.ParseCall(r.Method, r.URL.EscapedPath(), r.Header)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := rp.snap.ModelPlan(r, call, access.OperatorCaller(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := r.WithContext(r.Context())
	out.Host, out.RequestURI = "", ""
	resp, err := plan.RoundTrip(out)
	if err != nil {
		t.Fatalf("round trip: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func oneProvider(t *testing.T, fake *providertest.OpenAIServer) string {
	return fmt.Sprintf(`
upstream_ca: %s
providers:
  alpha:
    base_url: %s/v1
    keys: [%s, %s]
models:
  m:
    targets: [{provider: alpha, model: gpt-4o-mini}]
`, providertest.CA(t).CAFile, fake.URL, key1, key2)
}

// A key cooled on one replica is skipped by the others' key rotation, and
// by a replica that starts later.
func TestCooledKeySkippedByOtherReplicas(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{key1, key2}}, nil)
	yaml := oneProvider(t, fake)
	a := newReplica(t, r, yaml, Options{})
	b := newReplica(t, r, yaml, Options{})

	a.keyHealth(t, "alpha", key1).RateLimited(time.Now(), time.Minute)
	eventually(t, 5*time.Second, "replica b does not see key 1 cooling", func() bool {
		st, _, _ := b.keyHealth(t, "alpha", key1).State(time.Now())
		return st == gateway.KeyCooling
	})
	// b rotates over its keys: without the shared cooldown two of these
	// four would carry key 1.
	for range 4 {
		if code := b.chat(t, "m"); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	late := newReplica(t, r, yaml, Options{})
	if st, until, reason := late.keyHealth(t, "alpha", key1).State(time.Now()); st != gateway.KeyCooling || reason != "rate limited" ||
		until.Before(time.Now().Add(50*time.Second)) {
		t.Errorf("a replica started later sees key 1 %s until %v (%s); want cooling for about a minute", st, until, reason)
	}
	for range 2 {
		late.chat(t, "m")
	}
	if n := fake.KeyRequests(key1); n != 0 {
		t.Errorf("the provider saw key 1 %d times after it cooled", n)
	}
	if n := fake.KeyRequests(key2); n != 6 {
		t.Errorf("the provider saw key 2 %d times, want 6", n)
	}
}

// A shorter cooldown does not shorten the one stored for replicas that
// start later: a key resting an hour for its quota, then answered 429 as a
// last resort here and on a replica that missed the quota (its event
// dropped), still rests for the hour on a replica started after.
func TestLaterReplicaKeepsTheLongerCooldown(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	fake := providertest.NewOpenAI(t, nil, nil)
	yaml := oneProvider(t, fake)
	a := newReplica(t, r, yaml, Options{})
	b := newReplica(t, r, yaml, Options{})
	now := time.Now()
	k := a.keyHealth(t, "alpha", key1)
	k.QuotaExhausted(now)
	eventually(t, 5*time.Second, "the quota rest is not stored", func() bool { return a.s.m.published.Load() == 1 })
	fields, err := r.client(t).HKeys(context.Background(), a.s.healthKey()).Result()
	if err != nil || len(fields) != 1 {
		t.Fatalf("stored fields %q (%v), want the key's", fields, err)
	}
	_, fp, _ := strings.Cut(fields[0], "\x00")
	k.RateLimited(now, 0)
	eventually(t, 5*time.Second, "a's 429 is not published", func() bool { return a.s.m.published.Load() == 2 })
	b.s.Publish(gateway.Event{Provider: "alpha", Key: fp, Kind: gateway.EventCooldown,
		Until: now.Add(5 * time.Second), Reason: "rate limited"})
	eventually(t, 5*time.Second, "b's 429 is not published", func() bool { return b.s.m.published.Load() == 1 })
	late := newReplica(t, r, yaml, Options{})
	st, until, reason := late.keyHealth(t, "alpha", key1).State(time.Now())
	if st != gateway.KeyCooling || reason != "quota exhausted" || until.Before(now.Add(59*time.Minute)) {
		t.Errorf("a replica started later sees key 1 %s until %v (%s); want cooling for the hour (quota exhausted)",
			st, until.Sub(now).Round(time.Second), reason)
	}
	// A cooldown over by the time it is sent forgets only an entry that
	// is over too.
	b.s.Publish(gateway.Event{Provider: "alpha", Key: fp, Kind: gateway.EventCooldown, Until: now, Reason: "rate limited"})
	eventually(t, 5*time.Second, "b's cooldown is not published", func() bool { return b.s.m.published.Load() == 2 })
	if n, err := r.client(t).HLen(context.Background(), a.s.healthKey()).Result(); err != nil || n != 1 {
		t.Errorf("%d entries stored (%v), want the quota rest's", n, err)
	}
}

// Every kind of change reaches the other replica; the author ignores its
// own message.
func TestHealthEventsReachOtherReplicas(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	fake := providertest.NewOpenAI(t, nil, nil)
	yaml := oneProvider(t, fake)
	a := newReplica(t, r, yaml, Options{})
	b := newReplica(t, r, yaml, Options{})
	now := time.Now()
	keyState := func(rp *replica, secret string) func() string {
		return func() string {
			st, _, _ := rp.keyHealth(t, "alpha", secret).State(time.Now())
			return string(st)
		}
	}
	breakerState := func(rp *replica) func() string {
		return func() string {
			st, _ := rp.provider(t, "alpha").Breaker().State(time.Now())
			return string(st)
		}
	}
	tests := []struct {
		name   string
		change func()
		state  func() string // on b
		want   string
	}{
		{"quota exhausted", func() { a.keyHealth(t, "alpha", key1).QuotaExhausted(now) }, keyState(b, key1), "cooling"},
		{"enabled again", func() { a.keyHealth(t, "alpha", key1).Enable() }, keyState(b, key1), "ok"},
		{"disabled", func() { a.keyHealth(t, "alpha", key2).Disable("the provider refused the key (401)") }, keyState(b, key2), "disabled"},
		{"enabled by a reload", a.health.EnableAll, keyState(b, key2), "ok"},
		{"breaker open", func() {
			a.s.Publish(gateway.Event{Provider: "alpha", Kind: gateway.EventBreakerOpen, Until: now.Add(time.Minute)})
		}, breakerState(b), "open"},
		{"breaker closed", func() { a.s.Publish(gateway.Event{Provider: "alpha", Kind: gateway.EventBreakerOK}) }, breakerState(b), "closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			eventually(t, 5*time.Second, "b's state is not "+tc.want, func() bool { return tc.state() == tc.want })
		})
	}

	// A replica does not apply its own messages: an event published
	// that a's registry never saw leaves a alone.
	a.s.Publish(gateway.Event{Provider: "alpha", Kind: gateway.EventBreakerOpen, Until: time.Now().Add(time.Minute)})
	eventually(t, 5*time.Second, "b's breaker is not open", func() bool { return breakerState(b)() == "open" })
	if st := breakerState(a)(); st != "closed" {
		t.Errorf("a applied its own message: breaker %s", st)
	}
}

// least_inflight sees every replica's requests: a provider busy on one
// replica is avoided by the other; a replica that died stops counting
// once its entries expire.
func TestBalancingCountsEveryReplica(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	x := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "x"}, nil)
	y := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "y"}, nil)
	yaml := fmt.Sprintf(`
upstream_ca: %s
providers:
  x:
    base_url: %s/v1
    keys: [%s]
  y:
    base_url: %s/v1
    keys: [%s]
models:
  m:
    strategy: least_inflight
    targets: [{provider: x, model: gpt-4o-mini}, {provider: y, model: gpt-4o-mini}]
`, providertest.CA(t).CAFile, x.URL, key1, y.URL, key2)
	opts := Options{SyncEvery: 50 * time.Millisecond}
	busy := newReplica(t, r, yaml, opts)
	other := newReplica(t, r, yaml, opts)
	busy.health.Balances(func(provider, _ string, b *gateway.Balance) {
		if provider == "x" {
			b.Inflight.Add(3) // three long requests running on x
		}
	})
	// Equal counts go to x, the first target; x busy elsewhere, to y.
	eventually(t, 5*time.Second, "the other replica still sends to x, busy on the first", func() bool {
		before := len(y.Requests())
		other.chat(t, "m")
		return len(y.Requests()) > before
	})
	busy.s.Close() // dies with its requests counted
	eventually(t, 5*time.Second, "a dead replica's requests still count", func() bool {
		before := len(x.Requests())
		other.chat(t, "m")
		return len(x.Requests()) > before
	})
}

// What a replica learned while Redis was away reaches the others when it
// is back (Redis restarted empty: the state is sent again).
func TestHealthLearnedDuringAnOutage(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	fake := providertest.NewOpenAI(t, nil, nil)
	yaml := oneProvider(t, fake)
	opts := Options{Timeout: outageTimeout, ProbeEvery: 50 * time.Millisecond}
	a := newReplica(t, r, yaml, opts)
	b := newReplica(t, r, yaml, opts)
	r.kill()
	eventually(t, 5*time.Second, "a still up", func() bool { return !a.s.Up() })
	a.keyHealth(t, "alpha", key1).RateLimited(time.Now(), time.Minute)
	a.keyHealth(t, "alpha", key2).Disable("the provider refused the key (401)")
	r.start()
	eventually(t, 10*time.Second, "b does not learn what a learned during the outage", func() bool {
		st1, _, _ := b.keyHealth(t, "alpha", key1).State(time.Now())
		st2, _, _ := b.keyHealth(t, "alpha", key2).State(time.Now())
		return st1 == gateway.KeyCooling && st2 == gateway.KeyDisabled
	})
}

func TestParseSums(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want map[string][2]int64
	}{
		{"empty", nil, map[string][2]int64{}},
		{"two", []string{"x\x00https://x/v1", "7", "2", "y\x00https://y/v1", "0", "1"},
			map[string][2]int64{"x\x00https://x/v1": {7, 2}, "y\x00https://y/v1": {0, 1}}},
		{"not a number", []string{"x\x00b", "7", "two"}, map[string][2]int64{}},
		{"no separator", []string{"xb", "7", "2"}, map[string][2]int64{}},
		{"cut short", []string{"x\x00b", "7"}, map[string][2]int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := parseSums(tc.in)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("parseSums = %v, want %v", got, tc.want)
			}
		})
	}
}
