package redisstate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/internal/logbuf"
)

func metric(t *testing.T, s *Shared, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			var sum float64
			for _, m := range f.GetMetric() {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Redis killed mid-run: every request is still answered, on local
// counters; the log says so once, /health and /metrics show it; Redis
// started again on the same port is used again, and the log says so once.
func TestRedisKilledThenBack(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	var logs logbuf.Buffer
	s := newShared(t, r, Options{Timeout: outageTimeout, ProbeEvery: 50 * time.Millisecond, Logger: jsonLogger(&logs)})
	l := s.Limiter(nil)
	k := testKey(t, access.Key{RPM: 1000, MaxParallel: 100})
	ctx := context.Background()
	admit := func() {
		t.Helper()
		ticket, err := l.Admit(ctx, k, time.Now())
		if err != nil {
			t.Fatalf("Admit: %v", err)
		}
		ticket.Done(0, 0)
	}
	admit()
	if degraded, parts := s.Status(); degraded || parts["redis"] != "up" || !s.Up() {
		t.Fatalf("status %v %v, up %v; want up", degraded, parts, s.Up())
	}

	r.kill()
	for range 20 {
		admit() // no request is lost: no error
	}
	eventually(t, 5*time.Second, "Up() still true with Redis dead", func() bool { return !s.Up() })
	for range 5 {
		admit()
	}
	degraded, parts := s.Status()
	if !degraded || parts["redis"] != "unreachable: serving on local counters" {
		t.Errorf("status %v %v, want degraded, serving on local counters", degraded, parts)
	}
	if got := metric(t, s, "llmproxy_redis_up"); got != 0 {
		t.Errorf("llmproxy_redis_up %v, want 0", got)
	}
	if got := metric(t, s, "llmproxy_redis_fallbacks_total"); got < 5 {
		t.Errorf("llmproxy_redis_fallbacks_total %v, want at least the 5 requests made while down", got)
	}

	r.start()
	eventually(t, 10*time.Second, "not back on Redis", s.Up)
	admit()
	n, err := r.client(t).ZCard(ctx, "llmproxy:lim:{"+k.ID+"}:rpm").Result()
	if err != nil || n != 1 {
		t.Errorf("the new Redis counted %d admissions (%v), want the 1 made since it is back", n, err)
	}
	if got := metric(t, s, "llmproxy_redis_up"); got != 1 {
		t.Errorf("llmproxy_redis_up %v, want 1", got)
	}
	if n := logs.Count("redis unreachable"); n != 1 {
		t.Errorf("%d lines say Redis is unreachable, want 1:\n%s", n, logs.String())
	}
	if n := logs.Count("redis is back"); n != 1 {
		t.Errorf("%d lines say Redis is back, want 1:\n%s", n, logs.String())
	}
}

// Local counters while Redis is away still enforce the limit per replica,
// and start from this replica's own recent requests.
func TestFallbackCountsFromRecentRequests(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	s := newShared(t, r, Options{ProbeEvery: 50 * time.Millisecond})
	l := s.Limiter(nil)
	k := testKey(t, access.Key{RPM: 5})
	ctx := context.Background()
	for range 3 {
		ticket, err := l.Admit(ctx, k, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ticket.Done(0, 0)
	}
	r.kill()
	admitted := 0
	for range 5 {
		if ticket, err := l.Admit(ctx, k, time.Now()); err == nil {
			admitted++
			ticket.Done(0, 0)
		} else if limitOf(t, err).Limit != "rpm" {
			t.Errorf("refused by %s", limitOf(t, err).Limit)
		}
	}
	if admitted != 2 {
		t.Errorf("admitted %d on local counters after 3 through Redis, want 2 (rpm 5)", admitted)
	}
}

// A partition (Redis frozen, connections open): operations time out, the
// replica serves locally; what finished meanwhile — a slot freed, money
// spent — reaches Redis when it answers again, and money is counted once:
// the Done that timed out was still in Redis's socket, and ran at thaw.
func TestPartitionKeepsWhatWasDone(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	s := newShared(t, r, Options{Timeout: outageTimeout, ProbeEvery: 50 * time.Millisecond})
	l := s.Limiter(nil)
	k := testKey(t, access.Key{MaxParallel: 1, Budget: &access.Budget{Nanos: 1e6, Period: access.Month}})
	ctx := context.Background()
	running, err := l.Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.freeze()
	running.Done(0, 300) // through Redis: its slot and cost wait
	eventually(t, 5*outageTimeout, "Up() still true with Redis frozen", func() bool { return !s.Up() })
	local, err := l.Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatalf("served locally: %v", err)
	}
	local.Done(0, 200) // on local counters: its cost waits too
	r.thaw()
	eventually(t, 10*time.Second, "not back on Redis", s.Up)
	c := r.client(t)
	if n, err := c.ZCard(ctx, "llmproxy:lim:{"+k.ID+"}:slots").Result(); err != nil || n != 0 {
		t.Errorf("%d slots held in Redis (%v), want the freed one released", n, err)
	}
	key, _ := s.budgetKey(k, time.Now())
	if spent, err := c.Get(ctx, key).Int64(); err != nil || spent != 500 {
		t.Errorf("Redis has %d spent (%v), want 300 + 200", spent, err)
	}
}

// A request admitted on local counters while Redis was away keeps its
// max_parallel slot once Redis is back: the slot is added to Redis,
// renewed while the request runs, counted by this replica and by the
// others, and freed when the request ends. A slot freed during the outage
// is not added; one taken through Redis before it is added again (Redis
// restarted empty).
func TestSlotTakenDuringAnOutageCountsWhenBack(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	const ttl = time.Second
	s := newShared(t, r, Options{Timeout: outageTimeout, ProbeEvery: 50 * time.Millisecond, SlotTTL: ttl})
	l := s.Limiter(nil)
	k := testKey(t, access.Key{MaxParallel: 2})
	ctx := context.Background()
	before, err := l.Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.kill()
	eventually(t, 5*time.Second, "Up() still true with Redis dead", func() bool { return !s.Up() })
	short, err := l.Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	short.Done(0, 0)
	running, err := l.Admit(ctx, k, time.Now()) // a long stream
	if err != nil {
		t.Fatal(err)
	}
	r.start()
	eventually(t, 10*time.Second, "not back on Redis", s.Up)
	c := r.client(t)
	slots := "llmproxy:lim:{" + k.ID + "}:slots"
	if n, err := c.ZCard(ctx, slots).Result(); err != nil || n != 2 {
		t.Errorf("%d slots held in Redis (%v), want the 2 running requests'", n, err)
	}
	other := newShared(t, r, Options{}).Limiter(nil)
	time.Sleep(2 * ttl) // past its first lease: renewed
	for _, tc := range []struct {
		name string
		l    access.Limiter
	}{{"this replica", l}, {"another replica", other}} {
		if ticket, err := tc.l.Admit(ctx, k, time.Now()); err == nil {
			ticket.Done(0, 0)
			t.Errorf("%s admitted a third request beside the two running (max_parallel 2)", tc.name)
		} else if le := limitOf(t, err); le.Limit != "max_parallel" {
			t.Errorf("%s: refused by %s, want max_parallel", tc.name, le.Limit)
		}
	}
	before.Done(0, 0)
	running.Done(0, 0)
	if n, err := c.ZCard(ctx, slots).Result(); err != nil || n != 0 {
		t.Errorf("%d slots held in Redis (%v) after the requests ended, want 0", n, err)
	}
	ticket, err := other.Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatalf("another replica after the requests ended: %v", err)
	}
	ticket.Done(0, 0)
}

// redis_fail: closed refuses limited keys while Redis is away, with an
// error that is not a limit; unlimited keys never need the limiter.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	s := newShared(t, r, Options{FailClosed: true, Timeout: outageTimeout, ProbeEvery: 50 * time.Millisecond})
	l := s.Limiter(nil)
	ctx := context.Background()
	limited := testKey(t, access.Key{RPM: 100})
	ticket, err := l.Admit(ctx, limited, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ticket.Done(0, 0)
	r.kill()
	_, err = l.Admit(ctx, limited, time.Now())
	var le *access.LimitError
	if !errors.Is(err, ErrUnavailable) || errors.As(err, &le) {
		t.Fatalf("err = %v, want ErrUnavailable and no limit", err)
	}
	if ticket, err := l.Admit(ctx, &access.Key{ID: "unlimited"}, time.Now()); err != nil || ticket != access.NoTicket {
		t.Errorf("unlimited key: %v, %v", ticket, err)
	}
	eventually(t, 5*time.Second, "Up() still true with Redis dead", func() bool { return !s.Up() })
	if _, err := l.Admit(ctx, limited, time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if degraded, parts := s.Status(); !degraded || !strings.Contains(parts["redis"], "refusing") {
		t.Errorf("status %v %v", degraded, parts)
	}
	if got := metric(t, s, "llmproxy_redis_refused_total"); got != 2 {
		t.Errorf("llmproxy_redis_refused_total %v, want 2", got)
	}
}

// A Redis that never answered: New still succeeds, on local counters.
func TestStartWithoutRedis(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	r.kill()
	var logs logbuf.Buffer
	s := newShared(t, r, Options{Timeout: outageTimeout, ProbeEvery: 50 * time.Millisecond, Logger: jsonLogger(&logs)})
	if s.Up() {
		t.Fatal("Up() with no Redis")
	}
	if ticket, err := s.Limiter(nil).Admit(context.Background(), testKey(t, access.Key{RPM: 1}), time.Now()); err != nil {
		t.Fatalf("Admit: %v", err)
	} else {
		ticket.Done(0, 0)
	}
	if !strings.Contains(logs.String(), "redis unreachable at start") {
		t.Errorf("the log does not say so:\n%s", logs.String())
	}
	r.start()
	eventually(t, 10*time.Second, "Redis started later is not used", s.Up)
}

// Errors never carry the URL: it may hold a password.
func TestBadURLKeepsThePassword(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url string }{
		{"unparsable", "redis://user:s3cret-pass@[::1"},
		{"wrong scheme", "http://user:s3cret-pass@localhost:6379"},
		{"bad db", "redis://user:s3cret-pass@localhost:6379/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), Options{URL: tc.url})
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error holds the password: %v", err)
			}
		})
	}
}
