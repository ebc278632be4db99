package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
)

// limitedKey compiles a client key with limits.
func limitedKey(t testing.TB, ck config.ClientKey) *Key {
	t.Helper()
	if ck.Name == "" {
		ck.Name = "k"
	}
	if ck.Key == "" {
		ck.Key = aliceKey
	}
	ks, err := Compile([]config.ClientKey{ck}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ks.List()[0]
}

// admit is one Admit at a time offset, and what should come of it.
type admit struct {
	at    time.Duration // after t0
	limit string        // "" admitted, else the limit that refuses
	retry time.Duration // the refusal's RetryAfter
}

func runAdmits(t *testing.T, l *Local, k *Key, base time.Time, steps []admit) []Ticket {
	t.Helper()
	var tickets []Ticket
	for i, s := range steps {
		tk, err := l.Admit(context.Background(), k, base.Add(s.at))
		if s.limit == "" {
			if err != nil {
				t.Fatalf("step %d at +%v: %v, want admitted", i+1, s.at, err)
			}
			tickets = append(tickets, tk)
			continue
		}
		var le *LimitError
		if !errors.As(err, &le) {
			t.Fatalf("step %d at +%v: %v, want a %s refusal", i+1, s.at, err, s.limit)
		}
		if le.Limit != s.limit || le.RetryAfter != s.retry {
			t.Fatalf("step %d at +%v: %s retry after %v, want %s after %v", i+1, s.at, le.Limit, le.RetryAfter, s.limit, s.retry)
		}
		if tk != nil {
			t.Errorf("step %d: a refusal with a ticket", i+1)
		}
	}
	return tickets
}

// rpm is an exact sliding window: N admitted, the next refused until the
// oldest admission is a minute old, and admitted again exactly then.
// Refusals are not counted. (An rpm above 1 once cleared its log on every
// admission, so that it never filled: this table is what caught it.)
func TestRPMSlidingWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rpm   int
		steps []admit
	}{
		{1, []admit{{0, "", 0}, {time.Second, "rpm", 59 * time.Second}, {time.Minute - 1, "rpm", 1}, {time.Minute, "", 0},
			{time.Minute, "rpm", time.Minute}}},
		{3, []admit{
			{0, "", 0}, {10 * time.Second, "", 0}, {20 * time.Second, "", 0},
			{30 * time.Second, "rpm", 30 * time.Second},
			{59*time.Second + 999*time.Millisecond, "rpm", time.Millisecond},
			{time.Minute, "", 0}, // the first admission left the window
			{time.Minute, "rpm", 10 * time.Second},
			{70 * time.Second, "", 0},
			{80 * time.Second, "", 0},
			{80 * time.Second, "rpm", 40 * time.Second},
			{5 * time.Minute, "", 0}, {5 * time.Minute, "", 0}, {5 * time.Minute, "", 0},
			{5 * time.Minute, "rpm", time.Minute},
		}},
	} {
		t.Run(fmt.Sprint("rpm ", tc.rpm), func(t *testing.T) {
			t.Parallel()
			l := NewLocal()
			k := limitedKey(t, config.ClientKey{RPM: tc.rpm})
			for _, tk := range runAdmits(t, l, k, t0, tc.steps) {
				tk.Done(0, 0)
			}
		})
	}
}

// tpm sums one-second buckets over the last minute; a refusal says when
// enough tokens will have aged out.
func TestTPMBuckets(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	k := limitedKey(t, config.ClientKey{TPM: 100})
	st := l.state(k)
	st.addTokens(t0, 40)
	st.addTokens(t0.Add(10*time.Second), 40)
	st.addTokens(t0.Add(20*time.Second+500*time.Millisecond), 40) // same bucket as :20
	runAdmits(t, l, k, t0, []admit{
		{25 * time.Second, "tpm", 35 * time.Second},                            // 120 ≥ 100 until t0's 40 leave
		{59*time.Second + 500*time.Millisecond, "tpm", 500 * time.Millisecond}, // t0's bucket is still in the window
		{time.Minute, "", 0}, // 80 < 100
	})
	st.addTokens(t0.Add(time.Minute), 30) // reuses t0's slot in the ring
	runAdmits(t, l, k, t0, []admit{
		{61 * time.Second, "tpm", 9 * time.Second}, // 110: wait for :10's 40
		{70 * time.Second, "", 0},                  // 70
		{2 * time.Minute, "", 0},                   // nothing left
	})
	// Exactly at the limit is refused; one below is admitted.
	l2, k2 := NewLocal(), limitedKey(t, config.ClientKey{TPM: 100})
	l2.state(k2).addTokens(t0, 99)
	runAdmits(t, l2, k2, t0, []admit{{0, "", 0}})
	l2.state(k2).addTokens(t0, 1)
	runAdmits(t, l2, k2, t0, []admit{{0, "tpm", time.Minute}, {time.Minute, "", 0}})
}

// Through a ticket: Done counts the tokens (now, by the clock: Done takes
// no time), and the next Admit sees them.
func TestTPMThroughTickets(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	k := limitedKey(t, config.ClientKey{TPM: 100})
	tk, err := l.Admit(context.Background(), k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(150, 0)
	_, err = l.Admit(context.Background(), k, time.Now())
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "tpm" || le.RetryAfter <= 0 || le.RetryAfter > time.Minute {
		t.Fatalf("after 150 tokens: %v", err)
	}
	if _, err := l.Admit(context.Background(), k, time.Now().Add(61*time.Second)); err != nil {
		t.Errorf("a minute later: %v", err)
	}
}

// max_parallel counts tickets until Done; Done twice counts once.
func TestMaxParallel(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	k := limitedKey(t, config.ClientKey{MaxParallel: 2})
	ts := runAdmits(t, l, k, t0, []admit{{0, "", 0}, {0, "", 0}, {0, "max_parallel", time.Second}})
	ts[0].Done(0, 0)
	ts[0].Done(0, 0) // once only
	ts = append(ts[1:], runAdmits(t, l, k, t0, []admit{{0, "", 0}, {0, "max_parallel", time.Second}})...)
	for _, tk := range ts {
		tk.Done(0, 0)
	}
	runAdmits(t, l, k, t0, []admit{{0, "", 0}, {0, "", 0}, {0, "max_parallel", time.Second}})
}

// Budgets per day and per month, in UTC periods, spent through AddSpent
// (the store restoring a day) at chosen times.
func TestBudgetPeriods(t *testing.T) {
	t.Parallel()
	feb1 := time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)
	t.Run("day", func(t *testing.T) {
		t.Parallel()
		l := NewLocal()
		k := limitedKey(t, config.ClientKey{Budget: &config.Budget{Amount: 1, Period: "day"}})
		l.AddSpent(k, t0, 6e8)
		runAdmits(t, l, k, t0, []admit{{0, "", 0}}) // 0.6 of 1
		l.AddSpent(k, t0.Add(time.Minute), 4e8)
		if got := l.Spent(k, t0); got != 1e9 {
			t.Errorf("spent %d", got)
		}
		runAdmits(t, l, k, t0, []admit{
			{0, "budget", 30 * time.Minute}, // until midnight UTC
			{29*time.Minute + 59*time.Second, "budget", time.Second},
			{30 * time.Minute, "", 0}, // a new day
		})
		if got := l.Spent(k, feb1); got != 0 {
			t.Errorf("spent on the new day %d", got)
		}
		l.AddSpent(k, t0, 5e9) // yesterday's: nothing to do with today
		runAdmits(t, l, k, feb1, []admit{{time.Hour, "", 0}})
		l.AddSpent(k, feb1.Add(time.Hour), 1e9)
		runAdmits(t, l, k, feb1, []admit{{2 * time.Hour, "budget", 22 * time.Hour}})
	})
	t.Run("month", func(t *testing.T) {
		t.Parallel()
		l := NewLocal()
		k := limitedKey(t, config.ClientKey{Budget: &config.Budget{Amount: 20, Period: "month"}})
		l.AddSpent(k, time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), 20e9)
		runAdmits(t, l, k, t0, []admit{{0, "budget", 30 * time.Minute}})
		// 20:00 on 31 January in New York is February in UTC.
		est := time.FixedZone("EST", -5*3600)
		runAdmits(t, l, k, time.Date(2030, 1, 31, 20, 0, 0, 0, est), []admit{{0, "", 0}})
		if got := l.Spent(k, feb1); got != 0 {
			t.Errorf("February spent %d", got)
		}
	})
	t.Run("no budget", func(t *testing.T) {
		t.Parallel()
		l := NewLocal()
		k := limitedKey(t, config.ClientKey{RPM: 10})
		l.AddSpent(k, t0, 1e12)
		if l.Spent(k, t0) != 0 {
			t.Error("spending counted for a key without a budget")
		}
		runAdmits(t, l, k, t0, []admit{{0, "", 0}})
	})
}

// Done counts a request's cost toward the budget; a zero cost nothing.
func TestBudgetThroughTickets(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	k := limitedKey(t, config.ClientKey{Budget: &config.Budget{Amount: 1, Period: "day"}})
	tk, err := l.Admit(context.Background(), k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(1000, 0)
	if got := l.Spent(k, time.Now()); got != 0 {
		t.Errorf("an unpriced request cost %d", got)
	}
	tk, _ = l.Admit(context.Background(), k, time.Now())
	tk.Done(1000, 2e9)
	tk.Done(1000, 2e9) // once only
	if got := l.Spent(k, time.Now()); got != 2e9 {
		t.Errorf("spent %d, want 2e9", got)
	}
	_, err = l.Admit(context.Background(), k, time.Now())
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "budget" {
		t.Errorf("over budget: %v", err)
	}
}

// A key without limits skips the limiter: no state, no refusal.
func TestUnlimited(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	k := limitedKey(t, config.ClientKey{})
	if !k.Unlimited() {
		t.Fatal("a key without limits is limited")
	}
	for range 1000 {
		tk, err := l.Admit(context.Background(), k, t0)
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(1e9, 1e12)
	}
	if len(l.keys) != 0 {
		t.Errorf("the limiter keeps state for an unlimited key")
	}
	for _, ck := range []config.ClientKey{{RPM: 1}, {TPM: 1}, {MaxParallel: 1}, {Budget: &config.Budget{Amount: 1}}} {
		if limitedKey(t, ck).Unlimited() {
			t.Errorf("%+v is unlimited", ck)
		}
	}
	NoTicket.Done(1, 1) // does nothing, and does not panic
}

// A reload compiles new Keys with the same ID: they share the counts.
func TestLimitsSurviveAReload(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	before := limitedKey(t, config.ClientKey{MaxParallel: 1})
	after := limitedKey(t, config.ClientKey{MaxParallel: 1})
	if before == after || before.ID != after.ID {
		t.Fatal("the same secret compiled twice")
	}
	runAdmits(t, l, before, t0, []admit{{0, "", 0}})
	runAdmits(t, l, after, t0, []admit{{0, "max_parallel", time.Second}})
}

// Many goroutines at once: exactly the limit is admitted. Run with -race.
func TestConcurrentAdmit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ck   config.ClientKey
		want int64
		done bool // Done each ticket as soon as it is admitted
	}{
		{"rpm", config.ClientKey{RPM: 50}, 50, true},
		{"max_parallel", config.ClientKey{MaxParallel: 7}, 7, false},
		{"rpm and max_parallel", config.ClientKey{RPM: 20, MaxParallel: 1000}, 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := NewLocal()
			k := limitedKey(t, tc.ck)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for range 8 {
						tk, err := l.Admit(context.Background(), k, t0)
						if err != nil {
							var le *LimitError
							if !errors.As(err, &le) {
								t.Error(err)
							}
							continue
						}
						admitted.Add(1)
						if tc.done {
							tk.Done(1, 0)
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != tc.want {
				t.Errorf("admitted %d of 256, want exactly %d", got, tc.want)
			}
		})
	}
}

func TestLimitError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retry time.Duration
		want  string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {time.Second + 1, "2"}, {30 * time.Second, "30"}, {22 * time.Hour, "79200"}} {
		if got := (&LimitError{RetryAfter: tc.retry}).RetryAfterSeconds(); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.retry, got, tc.want)
		}
	}
	seen := map[string]bool{}
	for _, limit := range []string{"rpm", "tpm", "max_parallel", "budget", "other"} {
		msg := (&LimitError{Limit: limit}).Error()
		if msg == "" || seen[msg] {
			t.Errorf("%s: message %q", limit, msg)
		}
		seen[msg] = true
	}
}
