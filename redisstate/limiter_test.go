package redisstate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
)

// replicas returns n limiters on one Redis, each with its own local
// limiter, as n llmproxy processes would have.
func replicas(t *testing.T, r *redisServer, n int, opts Options) ([]*Shared, []access.Limiter) {
	t.Helper()
	var shared []*Shared
	var limiters []access.Limiter
	for range n {
		s := newShared(t, r, opts)
		shared = append(shared, s)
		limiters = append(limiters, s.Limiter(nil))
	}
	return shared, limiters
}

func limitOf(t *testing.T, err error) *access.LimitError {
	t.Helper()
	var le *access.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v (%T), want a *access.LimitError", err, err)
	}
	return le
}

// Many goroutines on three replicas at once: exactly rpm requests get in,
// and every other one is told the rpm limit and a wait within the minute.
func TestRPMIsExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	tests := []struct {
		name    string
		rpm     int
		callers int
	}{
		{"one", 1, 40},
		{"fifty", 50, 300},
		{"two hundred", 200, 600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shared, limiters := replicas(t, r, 3, Options{})
			k := testKey(t, access.Key{RPM: tc.rpm})
			var admitted atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range tc.callers {
				wg.Go(func() {
					<-start
					ticket, err := limiters[i%3].Admit(context.Background(), k, time.Now())
					if err != nil {
						le := limitOf(t, err)
						if le.Limit != "rpm" || le.RetryAfter <= 0 || le.RetryAfter > time.Minute {
							t.Errorf("refusal %s, retry after %v", le.Limit, le.RetryAfter)
						}
						return
					}
					admitted.Add(1)
					ticket.Done(0, 0)
				})
			}
			close(start)
			wg.Wait()
			if got := admitted.Load(); got != int64(tc.rpm) {
				t.Errorf("admitted %d of %d, want exactly rpm = %d", got, tc.callers, tc.rpm)
			}
			for i, s := range shared {
				if n := s.m.fallbacks.Load(); n != 0 {
					t.Errorf("replica %d fell back to local counters %d times", i, n)
				}
			}
		})
	}
}

// Tokens reported by one replica count on the others; the wait given is
// until enough of them leave the minute.
func TestTPMAcrossReplicas(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	tests := []struct {
		name   string
		tpm    int
		tokens []int64 // reported by replicas 0, 1, 2, …
		refuse bool    // the next request is refused
	}{
		{"under the limit", 100, []int64{60, 39}, false},
		{"at the limit", 100, []int64{60, 40}, true},
		{"over the limit", 100, []int64{60, 60}, true},
		{"one big answer", 100, []int64{250}, true},
		{"no tokens reported", 1, []int64{0, 0, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, limiters := replicas(t, r, 3, Options{})
			k := testKey(t, access.Key{TPM: tc.tpm})
			for i, n := range tc.tokens {
				ticket, err := limiters[i%3].Admit(context.Background(), k, time.Now())
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				ticket.Done(n, 0)
			}
			_, err := limiters[2].Admit(context.Background(), k, time.Now())
			if !tc.refuse {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			le := limitOf(t, err)
			if le.Limit != "tpm" || le.RetryAfter <= 0 || le.RetryAfter > time.Minute {
				t.Errorf("refusal %s, retry after %v; want tpm within the minute", le.Limit, le.RetryAfter)
			}
		})
	}
}

// max_parallel holds across replicas; a slot freed on one is taken on
// another; nothing is left in Redis once every request is done.
func TestMaxParallelAcrossReplicas(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	_, limiters := replicas(t, r, 3, Options{})
	k := testKey(t, access.Key{MaxParallel: 2})
	ctx := context.Background()
	a, err := limiters[0].Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := limiters[1].Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := limiters[2].Admit(ctx, k, time.Now()); limitOf(t, err).Limit != "max_parallel" {
		t.Fatalf("third request refused by %s, want max_parallel", limitOf(t, err).Limit)
	}
	b.Done(0, 0)
	c, err := limiters[2].Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatalf("a slot freed on replica 1 is not free on replica 2: %v", err)
	}
	a.Done(0, 0)
	c.Done(0, 0)
	c.Done(0, 0) // a second Done frees nothing more
	n, err := r.client(t).ZCard(ctx, "llmproxy:lim:{"+k.ID+"}:slots").Result()
	if err != nil || n != 0 {
		t.Errorf("slots left in Redis: %d (%v)", n, err)
	}
}

// A refused request counts nothing: not in the rpm log, not a slot.
func TestRefusedRequestCountsNothing(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	_, limiters := replicas(t, r, 2, Options{})
	k := testKey(t, access.Key{RPM: 2, MaxParallel: 1})
	ctx := context.Background()
	a, err := limiters[0].Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := limiters[1].Admit(ctx, k, time.Now()); limitOf(t, err).Limit != "max_parallel" {
			t.Fatalf("refused by %s, want max_parallel", limitOf(t, err).Limit)
		}
	}
	a.Done(0, 0)
	b, err := limiters[1].Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatalf("the refusals were counted in the rpm log: %v", err)
	}
	b.Done(0, 0)
	if _, err := limiters[0].Admit(ctx, k, time.Now()); limitOf(t, err).Limit != "rpm" {
		t.Errorf("third request refused by %s, want rpm", limitOf(t, err).Limit)
	}
}

// A budget is spent across replicas, refuses until the next period
// begins, and starts again then. The time is injected: the last minute of
// a day, and of a month.
func TestBudgetAcrossReplicasAndPeriods(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	tests := []struct {
		name   string
		period access.Period
		now    time.Time
	}{
		{"day", access.Day, time.Date(2031, 3, 14, 23, 59, 0, 0, time.UTC)},
		{"month", access.Month, time.Date(2031, 4, 30, 23, 59, 0, 0, time.UTC)},
		{"month, in another zone", access.Month, time.Date(2031, 5, 1, 1, 59, 0, 0, time.FixedZone("CEST", 2*3600))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, limiters := replicas(t, r, 3, Options{})
			k := testKey(t, access.Key{Budget: &access.Budget{Nanos: 1000, Period: tc.period, Currency: "USD"}})
			ctx := context.Background()
			for i, cost := range []int64{600, 500} {
				ticket, err := limiters[i].Admit(ctx, k, tc.now)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				ticket.Done(0, cost)
			}
			_, err := limiters[2].Admit(ctx, k, tc.now)
			le := limitOf(t, err)
			if le.Limit != "budget" || le.RetryAfter != time.Minute {
				t.Errorf("refused by %s until %v; want budget until the next period (1m)", le.Limit, le.RetryAfter)
			}
			ticket, err := limiters[2].Admit(ctx, k, tc.now.Add(2*time.Minute))
			if err != nil {
				t.Fatalf("the next period is refused: %v", err)
			}
			ticket.Done(0, 999)
			if _, err := limiters[0].Admit(ctx, k, tc.now.Add(3*time.Minute)); err != nil {
				t.Errorf("999 of 1000 spent in the new period, refused: %v", err)
			}
			// The old period's counter goes by itself, after its period.
			key := "llmproxy:lim:{" + k.ID + "}:budget:" + tc.period.String() + ":" + tc.period.Start(tc.now).Format("20060102")
			exp, err := r.client(t).ExpireTime(ctx, key).Result()
			want := tc.period.Next(tc.now).Add(time.Hour).Unix()
			if err != nil || int64(exp/time.Second) != want {
				t.Errorf("counter %s expires at %v (%v), want %d", key, exp, err, want)
			}
		})
	}
}

// Every key a limit writes goes away by itself.
func TestLimitKeysExpire(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	s := newShared(t, r, Options{SlotTTL: 10 * time.Second})
	l := s.Limiter(nil)
	k := testKey(t, access.Key{RPM: 10, TPM: 1000, MaxParallel: 3, Budget: &access.Budget{Nanos: 1e9, Period: access.Day}})
	ctx := context.Background()
	running, err := l.Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	done, err := l.Admit(ctx, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	done.Done(10, 10)
	c := r.client(t)
	keys, err := c.Keys(ctx, "llmproxy:lim:{"+k.ID+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Errorf("keys %v, want rpm, tpm, slots and budget", keys)
	}
	for _, key := range keys {
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 {
			t.Errorf("%s: ttl %v (%v), want an expiry", key, ttl, err)
		}
		if ttl > 25*time.Hour {
			t.Errorf("%s lives %v", key, ttl)
		}
	}
	running.Done(0, 0)
}

// A replica that dies holding slots (no Done) frees them after SlotTTL,
// while a live replica's slots are renewed for as long as they run.
func TestLeaseOfADeadReplicaExpires(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	// Renewed every ttl/3 from this process while Redis's clock runs on:
	// a stall of the test process of two thirds of ttl would let a lease
	// lapse, so ttl is long for a busy machine.
	const ttl = 2 * time.Second
	dying := newShared(t, r, Options{SlotTTL: ttl})
	other := newShared(t, r, Options{SlotTTL: ttl})
	k := testKey(t, access.Key{MaxParallel: 2})
	ctx := context.Background()
	var held []access.Ticket
	for range 2 {
		ticket, err := dying.Limiter(nil).Admit(ctx, k, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ticket)
	}
	time.Sleep(3 * ttl) // the slots outlive their first lease: renewed
	if _, err := other.Limiter(nil).Admit(ctx, k, time.Now()); limitOf(t, err).Limit != "max_parallel" {
		t.Fatalf("refused by %s, want max_parallel: the running requests' leases were not renewed", limitOf(t, err).Limit)
	}
	dying.Close() // dies: no Done, no renewal
	lim := other.Limiter(nil)
	var got []access.Ticket
	eventually(t, 20*ttl, "the dead replica's two slots are not free", func() bool {
		ticket, err := lim.Admit(ctx, k, time.Now())
		if err == nil {
			got = append(got, ticket)
		}
		return len(got) == 2
	})
	for _, ticket := range append(got, held...) {
		ticket.Done(0, 0) // the dead replica's Done comes to nothing, quietly
	}
}
