package access

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Limiter enforces client keys' limits: requests per minute, tokens per
// minute, requests at once, and a budget per day or month.
type Limiter interface {
	// Admit admits one request by k at now, or returns a *LimitError that
	// says which limit was reached and when to try again. Nothing is
	// counted for a request that is not admitted.
	Admit(ctx context.Context, k *Key, now time.Time) (Ticket, error)
}

// Ticket is an admitted request. Done must be called once, when its
// answer has ended, with the tokens it used and their cost in nano-units
// of the key's budget currency (0 when unpriced or in another currency).
type Ticket interface {
	Done(tokens, costNanos int64)
}

// LimitError is a limit reached. Its message is safe to show.
type LimitError struct {
	Limit      string // "rpm", "tpm", "max_parallel", "budget"
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case "rpm":
		return "this key's requests per minute are used up"
	case "tpm":
		return "this key's tokens per minute are used up"
	case "max_parallel":
		return "this key has as many requests running as it may"
	case "budget":
		return "this key's budget for the period is spent"
	}
	return "this key's limit was reached"
}

// RetryAfterSeconds is the Retry-After header's value: whole seconds,
// rounded up, at least 1.
func (e *LimitError) RetryAfterSeconds() string {
	s := int64((e.RetryAfter + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// Unlimited reports whether a key has no limit at all, so that callers can
// skip the limiter.
func (k *Key) Unlimited() bool {
	return k.RPM == 0 && k.TPM == 0 && k.MaxParallel == 0 && k.Budget == nil
}

// window is the length of the per-minute limits.
const window = time.Minute

var _ Limiter = (*Local)(nil)

// Local keeps limits in this process's memory. Windows are exact: the
// request limit is a sliding log of admissions, the token limit a sliding
// window of one-second buckets.
type Local struct {
	mu   sync.Mutex
	keys map[string]*keyState // by Key.ID: a reload keeps the counts
}

// NewLocal returns an empty in-memory limiter.
func NewLocal() *Local { return &Local{keys: make(map[string]*keyState)} }

type keyState struct {
	mu sync.Mutex
	// admitted is a ring of the latest admission times, len = RPM.
	admitted []time.Time
	next     int
	// tokens are one-second buckets of the last minute, by unix second.
	tokens   [60]bucket
	parallel int
	// spent in the budget period that started at periodStart.
	spent       int64
	periodStart time.Time
}

type bucket struct {
	sec    int64
	tokens int64
}

func (l *Local) state(k *Key) *keyState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.keys[k.ID]
	if st == nil {
		st = &keyState{}
		l.keys[k.ID] = st
	}
	return st
}

// Admit implements Limiter.
func (l *Local) Admit(_ context.Context, k *Key, now time.Time) (Ticket, error) {
	if k.Unlimited() {
		return noTicket{}, nil
	}
	st := l.state(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	if k.MaxParallel > 0 && st.parallel >= k.MaxParallel {
		return nil, &LimitError{Limit: "max_parallel", RetryAfter: time.Second}
	}
	if k.RPM > 0 {
		if cap(st.admitted) != k.RPM { // new, or the limit changed: start a new log
			st.admitted, st.next = make([]time.Time, 0, k.RPM), 0
		}
		if len(st.admitted) == k.RPM {
			oldest := st.admitted[st.next]
			if wait := oldest.Add(window).Sub(now); wait > 0 {
				return nil, &LimitError{Limit: "rpm", RetryAfter: wait}
			}
		}
	}
	if k.TPM > 0 {
		used, wait := st.tokensInWindow(now, int64(k.TPM))
		if used >= int64(k.TPM) {
			return nil, &LimitError{Limit: "tpm", RetryAfter: wait}
		}
	}
	if b := k.Budget; b != nil {
		if start := b.Period.Start(now); !start.Equal(st.periodStart) {
			st.periodStart, st.spent = start, 0
		}
		if st.spent >= b.Nanos {
			return nil, &LimitError{Limit: "budget", RetryAfter: b.Period.Next(now).Sub(now)}
		}
	}
	// Admitted: count it.
	if k.RPM > 0 {
		if len(st.admitted) < k.RPM {
			st.admitted = append(st.admitted, now)
		} else {
			st.admitted[st.next] = now
			st.next = (st.next + 1) % k.RPM
		}
	}
	st.parallel++
	return &localTicket{st: st, key: k}, nil
}

// tokensInWindow returns the tokens used in the minute before now and,
// when that reaches limit, how long until enough of them age out.
func (st *keyState) tokensInWindow(now time.Time, limit int64) (int64, time.Duration) {
	sec := now.Unix()
	var used int64
	for _, b := range st.tokens {
		if b.sec > sec-60 && b.sec <= sec {
			used += b.tokens
		}
	}
	if used < limit {
		return used, 0
	}
	// Walk forward from the oldest second until what remains is under
	// the limit.
	remaining := used
	for s := sec - 59; s <= sec; s++ {
		b := st.tokens[((s%60)+60)%60]
		if b.sec == s {
			remaining -= b.tokens
		}
		if remaining < limit {
			return used, time.Unix(s+60, 0).Sub(now)
		}
	}
	return used, window
}

func (st *keyState) addTokens(now time.Time, n int64) {
	sec := now.Unix()
	b := &st.tokens[((sec%60)+60)%60]
	if b.sec != sec {
		b.sec, b.tokens = sec, 0
	}
	b.tokens += n
}

type localTicket struct {
	st   *keyState
	key  *Key
	once sync.Once
}

func (t *localTicket) Done(tokens, costNanos int64) {
	t.once.Do(func() {
		now := time.Now()
		st := t.st
		st.mu.Lock()
		defer st.mu.Unlock()
		st.parallel--
		if tokens > 0 {
			st.addTokens(now, tokens)
		}
		if b := t.key.Budget; b != nil && costNanos > 0 {
			if start := b.Period.Start(now); !start.Equal(st.periodStart) {
				st.periodStart, st.spent = start, 0
			}
			st.spent += costNanos
		}
	})
}

// Spent returns what k spent in its budget's current period (nanos).
func (l *Local) Spent(k *Key, now time.Time) int64 {
	if k.Budget == nil {
		return 0
	}
	st := l.state(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !k.Budget.Period.Start(now).Equal(st.periodStart) {
		return 0
	}
	return st.spent
}

// AddSpent adds to what k spent in the period holding at (the admin store
// restores the day's and month's spending at start).
func (l *Local) AddSpent(k *Key, at time.Time, nanos int64) {
	if k.Budget == nil {
		return
	}
	st := l.state(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	if start := k.Budget.Period.Start(at); !start.Equal(st.periodStart) {
		if start.Before(st.periodStart) {
			return // an older period: nothing to do with today's budget
		}
		st.periodStart, st.spent = start, 0
	}
	st.spent += nanos
}

type noTicket struct{}

func (noTicket) Done(int64, int64) {}

// NoTicket is the ticket of a caller without limits.
var NoTicket Ticket = noTicket{}
