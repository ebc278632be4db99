package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproxy/llmproxy/gateway"
)

// Provider-key health travels two ways: a message on a channel for the
// replicas running now, and an entry in a hash (one per key or breaker,
// with its expiry) for those that start later or come back after an
// outage.

func (s *Shared) healthChannel() string { return s.opts.Prefix + "health" }
func (s *Shared) healthKey() string     { return s.opts.Prefix + "health" }
func (s *Shared) balanceKey() string    { return s.opts.Prefix + "balance" }

// envelope is a published event and its author, so that a replica skips
// its own.
type envelope struct {
	From string        `json:"from"`
	Ev   gateway.Event `json:"ev"`
	// Expires is when a stored entry stops mattering (unix ms).
	Expires int64 `json:"x,omitempty"`
}

// decodeEnvelope reads a message or a stored entry; it refuses what no
// replica would have written.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return envelope{}, err
	}
	if e.Ev.Provider == "" {
		return envelope{}, errors.New("health event without a provider")
	}
	keyed := e.Ev.Key != ""
	switch e.Ev.Kind {
	case gateway.EventCooldown, gateway.EventDisable, gateway.EventEnable:
		if keyed {
			return e, nil
		}
	case gateway.EventBreakerOpen, gateway.EventBreakerOK:
		if !keyed {
			return e, nil
		}
	}
	return envelope{}, errors.New("health event of an unknown kind")
}

// ShareHealth shares h with the other replicas: changes h publishes go to
// them, theirs are applied to h, and the state they left (keys cooling or
// disabled, breakers open) is loaded now, so that a new replica skips a
// key cooled elsewhere. Balancing counters are shared every SyncEvery.
// Call it once, before serving.
func (s *Shared) ShareHealth(h *gateway.Health) {
	s.shareMu.Lock()
	defer s.shareMu.Unlock()
	if s.ctx.Err() != nil || !s.health.CompareAndSwap(nil, h) {
		return
	}
	h.Shared = s
	if s.up.Load() {
		ctx, cancel := context.WithTimeout(s.ctx, 4*s.opts.Timeout)
		if err := s.loadHealth(ctx, h); err != nil {
			s.failed(s.ctx, err)
		}
		cancel()
	}
	// go-redis resubscribes after a lost connection; each subscription
	// confirmed reloads the state, for what was published meanwhile.
	s.pubsub = s.client.Subscribe(s.ctx, s.healthChannel())
	ch := s.pubsub.ChannelWithSubscriptions(
		redis.WithChannelSize(256),
		redis.WithChannelHealthCheckInterval(max(s.opts.ProbeEvery, time.Second)),
		redis.WithChannelPingTimeout(4*s.opts.Timeout),
	)
	s.wg.Add(1)
	go s.receive(h, ch)
}

func (s *Shared) receive(h *gateway.Health, ch <-chan any) {
	defer s.wg.Done()
	for msg := range ch {
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				ctx, cancel := context.WithTimeout(s.ctx, 4*s.opts.Timeout)
				if err := s.loadHealth(ctx, h); err != nil {
					s.failed(s.ctx, err)
				}
				cancel()
			}
		case *redis.Message:
			e, err := decodeEnvelope([]byte(m.Payload))
			if err != nil || e.From == s.opts.Replica {
				continue
			}
			h.Apply(e.Ev)
			s.m.applied.Add(1)
		}
	}
}

// loadHealth applies the stored state other replicas left.
func (s *Shared) loadHealth(ctx context.Context, h *gateway.Health) error {
	all, err := s.client.HGetAll(ctx, s.healthKey()).Result()
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	for _, v := range all {
		e, err := decodeEnvelope([]byte(v))
		if err != nil || e.From == s.opts.Replica || e.Expires != 0 && e.Expires <= now {
			continue
		}
		h.Apply(e.Ev)
		s.m.applied.Add(1)
	}
	return nil
}

// Publish implements gateway.Shared. It never blocks a request: the event
// is queued, and dropped when the queue is full or Redis away (this
// replica's state is sent again when Redis is back).
func (s *Shared) Publish(ev gateway.Event) {
	select {
	case s.events <- ev:
	default:
		s.m.dropped.Add(1)
	}
}

func (s *Shared) publisher() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev := <-s.events:
			if !s.up.Load() {
				s.m.dropped.Add(1)
				continue
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
			if err := s.send(ctx, ev); err != nil {
				s.m.dropped.Add(1)
				s.failed(s.ctx, err)
			}
			cancel()
		}
	}
}

// sendScript stores (or forgets) an event's entry and publishes it, in one
// round trip. A cooldown or an open breaker does not replace an entry that
// matters longer (a replica that had not heard of an hour's quota rest
// reports a 429's seconds): replicas that start later load the later end,
// as Apply keeps it. The hash lives as long as its longest entry.
var sendScript = redis.NewScript(sendLua)

const sendLua = `
-- KEYS: 1 state hash. ARGV: 1 channel, 2 message, 3 field, 4 entry ('' to
-- forget the field), 5 ms the entry matters, 6 the event's end (unix ms)
-- when a stored entry that matters longer is kept, else ''.
local later = false
if ARGV[6] ~= '' then
  local old = redis.call('HGET', KEYS[1], ARGV[3])
  if old then
    local ok, e = pcall(cjson.decode, old)
    later = ok and type(e) == 'table' and type(e.x) == 'number' and e.x > tonumber(ARGV[6])
  end
end
if later then
  -- kept, and the hash already lives as long
elseif ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], ARGV[3])
else
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
end
return redis.call('PUBLISH', ARGV[1], ARGV[2])
`

func (s *Shared) send(ctx context.Context, ev gateway.Event) error {
	now := time.Now()
	msg, err := json.Marshal(envelope{From: s.opts.Replica, Ev: ev})
	if err != nil {
		return err
	}
	var entry []byte
	var keep time.Duration
	later := "" // a cooldown's or a breaker's end: a stored entry that matters longer stays
	switch ev.Kind {
	case gateway.EventCooldown, gateway.EventBreakerOpen:
		keep = ev.Until.Sub(now)
		later = strconv.FormatInt(ev.Until.UnixMilli(), 10)
	case gateway.EventDisable:
		keep = disabledTTL
	}
	if keep > 0 {
		entry, err = json.Marshal(envelope{From: s.opts.Replica, Ev: ev, Expires: now.Add(keep).UnixMilli()})
		if err != nil {
			return err
		}
	}
	// An enable, a closed breaker, or a cooldown already over: forget
	// the field (a cooldown, only when nothing stored matters longer).
	err = sendScript.Run(ctx, s.client, []string{s.healthKey()},
		s.healthChannel(), msg, ev.Provider+"\x00"+ev.Key, entry, max(keep.Milliseconds(), 1), later).Err()
	if err == nil {
		s.m.published.Add(1)
	}
	return err
}

// balanceScript writes this replica's balancing counts and returns the
// sums of every other replica's that has not expired; expired entries
// (replicas that died) are removed.
var balanceScript = redis.NewScript(balanceLua)

const balanceLua = luaHelpers + `
-- KEYS: 1 the hash (field: replica NUL provider NUL base; value:
-- "used inflight expiry-ms"). ARGV: 1 replica, 2 ms an entry lives,
-- then field, "used inflight" pairs of this replica.
local _, now = clock()
local me, ttl = ARGV[1], tonumber(ARGV[2])
local exp = ' ' .. num(now + ttl)
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], me .. '\0' .. ARGV[i], ARGV[i + 1] .. exp)
end
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
local all = redis.call('HGETALL', KEYS[1])
local sums, order = {}, {}
for i = 1, #all, 2 do
  local f = all[i]
  local sep = string.find(f, '\0', 1, true)
  local used, inflight, e = string.match(all[i + 1], '^(%-?%d+) (%-?%d+) (%d+)$')
  if not sep or not e or tonumber(e) <= now then
    redis.call('HDEL', KEYS[1], f)
  elseif string.sub(f, 1, sep - 1) ~= me then
    local what = string.sub(f, sep + 1)
    local sum = sums[what]
    if not sum then
      sum = {0, 0}
      sums[what] = sum
      order[#order + 1] = what
    end
    sum[1] = sum[1] + tonumber(used)
    sum[2] = sum[2] + tonumber(inflight)
  end
end
local out = {}
for _, what in ipairs(order) do
  out[#out + 1] = what
  out[#out + 1] = num(sums[what][1])
  out[#out + 1] = num(sums[what][2])
end
return out
`

// syncBalances publishes this replica's balancing counts and sets what
// the others counted on each of h's counters.
func (s *Shared) syncBalances(h *gateway.Health) error {
	local := make(map[string]*gateway.Balance)
	args := []any{s.opts.Replica, (3 * s.opts.SyncEvery).Milliseconds()}
	h.Balances(func(provider, base string, b *gateway.Balance) {
		f := provider + "\x00" + base
		local[f] = b
		args = append(args, f, strconv.FormatInt(b.Used.Load(), 10)+" "+strconv.FormatInt(b.Inflight.Load(), 10))
	})
	if len(local) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	res, err := balanceScript.Run(ctx, s.client, []string{s.balanceKey()}, args...).StringSlice()
	if err != nil {
		return err
	}
	sums := parseSums(res)
	for f, b := range local {
		sum := sums[f]
		b.SetRemote(sum[0], sum[1])
	}
	return nil
}

// parseSums reads the balance script's answer: field, used, inflight, ….
// A malformed triple is skipped.
func parseSums(res []string) map[string][2]int64 {
	out := make(map[string][2]int64, len(res)/3)
	for i := 0; i+2 < len(res); i += 3 {
		used, err1 := strconv.ParseInt(res[i+1], 10, 64)
		inflight, err2 := strconv.ParseInt(res[i+2], 10, 64)
		if err1 != nil || err2 != nil || !strings.Contains(res[i], "\x00") {
			continue
		}
		out[res[i]] = [2]int64{used, inflight}
	}
	return out
}
