package redisstate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproxy/llmproxy/access"
)

// Every key of a client key's limits carries its ID in braces (a Redis
// Cluster hash tag), so that one script may touch them all.
func (s *Shared) limitKey(id, what string) string {
	return s.opts.Prefix + "lim:{" + id + "}:" + what
}

// budgetKey names the counter of what k spent in the period holding at,
// and when that counter may go: an hour after the period, so that a
// replica whose clock runs late still finds it.
func (s *Shared) budgetKey(k *access.Key, at time.Time) (key string, expireAt int64) {
	p := k.Budget.Period
	start := p.Start(at)
	return s.limitKey(k.ID, "budget:"+p.String()+":"+start.Format("20060102")),
		p.Next(at).Add(time.Hour).Unix()
}

// admitScript admits one request, or says which limit refuses it; it
// counts all or nothing, and checks in access.Local's order.
var admitScript = redis.NewScript(admitLua)

const admitLua = luaHelpers + `
-- KEYS: 1 rpm log (zset: member -> admission ms), 2 token buckets (hash:
-- unix second -> tokens), 3 parallel slots (zset: lease -> expiry ms),
-- 4 what the budget period spent (nanos).
-- ARGV: 1 rpm, 2 tpm, 3 max_parallel, 4 budget nanos (-1: none),
-- 5 ms until the next budget period, 6 lease ms, 7 member.
local sec, now = clock()
local rpm, tpm, par, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if par > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', num(now))
  if redis.call('ZCARD', KEYS[3]) >= par then return {0, 'max_parallel', 1000} end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now - 60000))
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then
    -- the admission that must age out before one more fits
    local o = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    return {0, 'rpm', tonumber(o[2]) + 60000 - now}
  end
end
if tpm > 0 then
  local h = redis.call('HGETALL', KEYS[2])
  local used, b = 0, {}
  for i = 1, #h, 2 do
    local s = tonumber(h[i])
    if s <= sec - 60 then
      redis.call('HDEL', KEYS[2], h[i])
    elseif s <= sec then
      local v = tonumber(h[i + 1])
      used = used + v
      b[s] = (b[s] or 0) + v
    end
  end
  if used >= tpm then
    -- walk from the oldest second until what remains is under the limit
    for s = sec - 59, sec do
      used = used - (b[s] or 0)
      if used < tpm then return {0, 'tpm', (s + 60) * 1000 - now} end
    end
    return {0, 'tpm', 60000}
  end
end
if budget >= 0 then
  local spent = tonumber(redis.call('GET', KEYS[4]) or '0')
  if spent >= budget then return {0, 'budget', tonumber(ARGV[5])} end
end
if rpm > 0 then
  redis.call('ZADD', KEYS[1], num(now), ARGV[7])
  redis.call('PEXPIRE', KEYS[1], 61000)
end
if par > 0 then
  redis.call('ZADD', KEYS[3], num(now + tonumber(ARGV[6])), ARGV[7])
  keep(KEYS[3])
end
return {1}
`

// doneScript settles a request: frees its slot, adds its tokens to the
// current second's bucket and its cost to the period's counter.
var doneScript = redis.NewScript(doneLua)

const doneLua = luaHelpers + `
-- KEYS: 1 parallel slots, 2 token buckets, 3 what the budget period spent.
-- ARGV: 1 lease ('' for none), 2 tokens, 3 cost nanos, 4 budget expiry (unix s).
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
if tonumber(ARGV[2]) > 0 then
  local sec = clock()
  redis.call('HINCRBY', KEYS[2], num(sec), ARGV[2])
  redis.call('EXPIRE', KEYS[2], 61)
end
if tonumber(ARGV[3]) > 0 then
  redis.call('INCRBY', KEYS[3], ARGV[3])
  redis.call('EXPIREAT', KEYS[3], ARGV[4])
end
return 1
`

// renewScript extends this replica's leases in one slot set, and adds
// those Redis does not hold yet. XX for the others: a lease its request
// already freed is not brought back.
var renewScript = redis.NewScript(renewLua)

const renewLua = luaHelpers + `
-- KEYS: 1 parallel slots. ARGV: 1 lease ms, 2 how many leases are added,
-- then the leases: those to add first, then those to renew.
local _, now = clock()
local exp = num(now + tonumber(ARGV[1]))
local add = tonumber(ARGV[2])
for i = 3, #ARGV do
  if i - 2 <= add then
    redis.call('ZADD', KEYS[1], exp, ARGV[i])
  else
    redis.call('ZADD', KEYS[1], 'XX', exp, ARGV[i])
  end
end
keep(KEYS[1])
return 1
`

// luaHelpers: Lua 5.1 turns numbers into strings with %.14g, which would
// round a millisecond timestamp's last digits away in a long enough
// future; num writes them whole. clock reads Redis's own time (see the
// package doc); writing after TIME needs effects replication, the default
// since Redis 5 and asked for explicitly before.
const luaHelpers = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local function num(x) return string.format('%.0f', x) end
local function clock()
  local t = redis.call('TIME')
  local sec = tonumber(t[1])
  return sec, sec * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- a slot set lives as long as its longest lease
local function keep(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', key, num(tonumber(last[2]) + 1000)) end
end
`

// Limiter returns a limiter that counts in Redis, shared by every replica,
// and in local while Redis is unreachable (or refuses limited keys with
// ErrUnavailable when FailClosed). Admissions through Redis are also
// counted in local, so that a fallback starts from this replica's own
// recent requests rather than from nothing. nil local means a new one.
func (s *Shared) Limiter(local *access.Local) access.Limiter {
	if local == nil {
		local = access.NewLocal()
	}
	return &limiter{s: s, local: local}
}

type limiter struct {
	s     *Shared
	local *access.Local
}

var (
	_ access.Limiter = (*limiter)(nil)
	_ access.Ticket  = (*ticket)(nil)
)

// Admit implements access.Limiter.
func (l *limiter) Admit(ctx context.Context, k *access.Key, now time.Time) (access.Ticket, error) {
	if k.Unlimited() {
		return access.NoTicket, nil
	}
	s := l.s
	if s.up.Load() {
		t, err := s.admit(ctx, k, now)
		if err == nil {
			if !s.opts.FailClosed {
				// A shadow count: its refusal (clocks differ) is no one's business.
				t.local, _ = l.local.Admit(ctx, k, now)
			}
			return t, nil
		}
		var le *access.LimitError
		if errors.As(err, &le) {
			return nil, err
		}
		s.failed(ctx, err)
	}
	if s.opts.FailClosed {
		s.m.refused.Add(1)
		return nil, ErrUnavailable
	}
	s.m.fallbacks.Add(1)
	lt, err := l.local.Admit(ctx, k, now)
	if err != nil {
		return nil, err
	}
	t := &ticket{s: s, k: k, local: lt, at: now, wall: time.Now()}
	if k.MaxParallel > 0 {
		// A lease Redis does not hold yet: when Redis is back, the slot
		// is registered (setUp, or the next renewal) and counts for every
		// replica until the request ends.
		t.lease, t.slots = s.member(), s.limitKey(k.ID, "slots")
		s.leases.add(t.lease, t.slots, false)
	}
	return t, nil
}

func (s *Shared) admit(ctx context.Context, k *access.Key, now time.Time) (*ticket, error) {
	member := s.member()
	slots := s.limitKey(k.ID, "slots")
	budget, budgetKey, retryBudget := int64(-1), s.limitKey(k.ID, "budget"), int64(0)
	if b := k.Budget; b != nil {
		budget = b.Nanos
		budgetKey, _ = s.budgetKey(k, now)
		retryBudget = b.Period.Next(now).Sub(now).Milliseconds()
	}
	// Not cancelled with the request: a script that ran for a client who
	// left would hold a slot nobody frees until its lease ends.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.Timeout)
	defer cancel()
	res, err := admitScript.Run(octx, s.client,
		[]string{s.limitKey(k.ID, "rpm"), s.limitKey(k.ID, "tpm"), slots, budgetKey},
		k.RPM, k.TPM, k.MaxParallel, budget, retryBudget, s.opts.SlotTTL.Milliseconds(), member).Slice()
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("admit script: empty answer")
	}
	if ok, _ := res[0].(int64); ok != 1 {
		if len(res) != 3 {
			return nil, fmt.Errorf("admit script: answer of %d values", len(res))
		}
		limit, _ := res[1].(string)
		ms, _ := res[2].(int64)
		return nil, &access.LimitError{Limit: limit, RetryAfter: time.Duration(max(ms, 1)) * time.Millisecond}
	}
	t := &ticket{s: s, k: k, redis: true, at: now, wall: time.Now()}
	if k.MaxParallel > 0 {
		t.lease, t.slots = member, slots
		s.leases.add(member, slots, true)
	}
	return t, nil
}

// ticket is an admitted request.
type ticket struct {
	s     *Shared
	k     *access.Key
	local access.Ticket // the fallback's own, or the shadow of a Redis admission; nil when none
	redis bool          // admitted through Redis
	lease string        // its parallel slot (in Redis, or to register there); "" when none
	slots string        // the slot set holding lease
	at    time.Time     // Admit's now
	wall  time.Time     // when Admit ran (monotonic), to move at forward
	once  sync.Once
}

// Done implements access.Ticket. Cost goes to the period holding Admit's
// now plus the time the request took (the present, unless a test injected
// another time).
func (t *ticket) Done(tokens, costNanos int64) {
	t.once.Do(func() {
		if t.local != nil {
			t.local.Done(tokens, costNanos)
		}
		t.s.done(t, tokens, costNanos)
	})
}

// doneOp is what a finished request leaves to write.
type doneOp struct {
	id           string // the client key's ID
	lease, slots string
	tokens       int64
	cost         int64
	budgetKey    string
	expireAt     int64
}

func (s *Shared) done(t *ticket, tokens, cost int64) {
	d := doneOp{id: t.k.ID}
	if t.lease != "" && s.leases.remove(t.lease) {
		d.lease, d.slots = t.lease, t.slots
	}
	if t.k.TPM > 0 && tokens > 0 {
		d.tokens = tokens
	}
	if b := t.k.Budget; b != nil && cost > 0 {
		d.cost = cost
		d.budgetKey, d.expireAt = s.budgetKey(t.k, t.at.Add(time.Since(t.wall)))
	}
	if d.lease == "" && d.tokens == 0 && d.cost == 0 {
		return // nothing to tell Redis: no round trip
	}
	if s.up.Load() {
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
		keys := []string{cmpOr(d.slots, s.limitKey(d.id, "slots")), s.limitKey(d.id, "tpm"), cmpOr(d.budgetKey, s.limitKey(d.id, "budget"))}
		err := doneScript.Run(ctx, s.client, keys, d.lease, d.tokens, d.cost, d.expireAt).Err()
		cancel()
		if err == nil {
			return
		}
		s.failed(s.ctx, err)
		if !unsent(err) {
			// Redis may have counted it (a timeout, a connection lost
			// after the write): never count money twice.
			d.cost = 0
		}
	}
	// Tokens are not kept: by the time Redis is back their minute is
	// mostly over. Freeing a slot twice is harmless.
	s.pending.add(d)
}

// unsent reports errors that mean the command never reached Redis.
func unsent(err error) bool {
	var op *net.OpError
	return errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, redis.ErrPoolExhausted) || errors.As(err, &op) && op.Op == "dial"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// leaseSet is this replica's running parallel slots, by lease.
type leaseSet struct {
	mu sync.Mutex
	m  map[string]leaseEntry
}

type leaseEntry struct {
	slots string // the slot set
	// sent: the lease was written to Redis, or is being written; its end
	// is told to Redis. A lease taken on local counters is not sent until
	// Redis answers again.
	sent bool
}

func (l *leaseSet) add(lease, slots string, sent bool) {
	l.mu.Lock()
	l.m[lease] = leaseEntry{slots: slots, sent: sent}
	l.mu.Unlock()
}

// remove forgets a lease whose request ended, and reports whether Redis
// may hold it.
func (l *leaseSet) remove(lease string) (sent bool) {
	l.mu.Lock()
	e, ok := l.m[lease]
	delete(l.m, lease)
	l.mu.Unlock()
	return ok && e.sent
}

func (l *leaseSet) held(lease string) bool {
	l.mu.Lock()
	_, ok := l.m[lease]
	l.mu.Unlock()
	return ok
}

// unsend marks leases that could not be written as not sent, those whose
// request still runs.
func (l *leaseSet) unsend(leases []string) {
	l.mu.Lock()
	for _, lease := range leases {
		if e, ok := l.m[lease]; ok {
			e.sent = false
			l.m[lease] = e
		}
	}
	l.mu.Unlock()
}

// leaseWrite is what one slot set's renewal writes.
type leaseWrite struct{ add, renew []string }

// toWrite returns, per slot set, the leases to add (those not sent; with
// all, every one) and those to renew, and marks them all sent.
func (l *leaseSet) toWrite(all bool) map[string]*leaseWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*leaseWrite)
	for lease, e := range l.m {
		w := out[e.slots]
		if w == nil {
			w = &leaseWrite{}
			out[e.slots] = w
		}
		if all || !e.sent {
			w.add = append(w.add, lease)
			if !e.sent {
				e.sent = true
				l.m[lease] = e
			}
		} else {
			w.renew = append(w.renew, lease)
		}
	}
	return out
}

// renewLeases extends every slot this replica holds, one script per slot
// set (one per client key with requests running). It adds the slots taken
// on local counters while Redis was away, so that they count for every
// replica until their requests end; with all (Redis is back) it adds every
// slot, for a Redis that lost its data or let leases expire during a long
// outage. A request that ended while its lease was being added has it
// removed again.
func (s *Shared) renewLeases(ctx context.Context, all bool) error {
	for key, w := range s.leases.toWrite(all) {
		args := make([]any, 0, len(w.add)+len(w.renew)+2)
		args = append(args, s.opts.SlotTTL.Milliseconds(), len(w.add))
		for _, l := range w.add {
			args = append(args, l)
		}
		for _, l := range w.renew {
			args = append(args, l)
		}
		octx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		err := renewScript.Run(octx, s.client, []string{key}, args...).Err()
		if err == nil {
			var ended []any
			for _, l := range w.add {
				if !s.leases.held(l) {
					ended = append(ended, l)
				}
			}
			if len(ended) > 0 {
				err = s.client.ZRem(octx, key, ended...).Err()
			}
		} else {
			s.leases.unsend(w.add)
		}
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// pendingOps is what finished requests could not write while Redis was
// away: slots to free (before their lease would) and money spent, summed
// per budget counter. Bounded: past maxPending slots, the leases free
// themselves.
type pendingOps struct {
	mu       sync.Mutex
	releases map[string]string // lease → slot set
	costs    map[string]pendingCost
}

type pendingCost struct {
	nanos    int64
	expireAt int64
}

const maxPending = 100_000

func (p *pendingOps) add(d doneOp) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.lease != "" && len(p.releases) < maxPending {
		if p.releases == nil {
			p.releases = make(map[string]string)
		}
		p.releases[d.lease] = d.slots
	}
	if d.cost > 0 && (len(p.costs) < maxPending || p.costs[d.budgetKey].nanos > 0) {
		if p.costs == nil {
			p.costs = make(map[string]pendingCost)
		}
		c := p.costs[d.budgetKey]
		p.costs[d.budgetKey] = pendingCost{nanos: c.nanos + d.cost, expireAt: max(c.expireAt, d.expireAt)}
	}
}

func (p *pendingOps) take() (map[string]string, map[string]pendingCost) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, c := p.releases, p.costs
	p.releases, p.costs = nil, nil
	return r, c
}

// flushPending sends what waited for Redis, in one transaction. On
// failure it is kept for the next time.
func (s *Shared) flushPending(ctx context.Context) error {
	releases, costs := s.pending.take()
	if len(releases) == 0 && len(costs) == 0 {
		return nil
	}
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for lease, key := range releases {
			p.ZRem(ctx, key, lease)
		}
		for key, c := range costs {
			p.IncrBy(ctx, key, c.nanos)
			p.ExpireAt(ctx, key, time.Unix(c.expireAt, 0))
		}
		return nil
	})
	if err != nil {
		for lease, key := range releases {
			s.pending.add(doneOp{lease: lease, slots: key})
		}
		for key, c := range costs {
			s.pending.add(doneOp{cost: c.nanos, budgetKey: key, expireAt: c.expireAt})
		}
	}
	return err
}
