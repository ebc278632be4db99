package gateway

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Health holds what llmproxy learned about providers and keys: cooldowns,
// disabled keys, circuit breakers and the counters the balancing strategies
// read. It outlives configuration snapshots (a reload or a panel edit keeps
// what was learned) and is safe for concurrent use.
type Health struct {
	mu        sync.Mutex
	keys      map[string]*KeyHealth // by provider name and key fingerprint
	breakers  map[string]*Breaker   // by provider name
	balancing map[string]*Balance   // by provider name and base URL
	// Shared, when set, carries changes to other replicas (Redis).
	Shared Shared
}

// Shared publishes local health changes to other replicas; what they
// publish comes back through Health.Apply.
type Shared interface {
	Publish(Event)
}

// Event is a health change that other replicas apply too.
type Event struct {
	Provider string    `json:"p"`
	Key      string    `json:"k,omitempty"` // fingerprint; "" for the provider's breaker
	Kind     EventKind `json:"e"`
	Until    time.Time `json:"u,omitzero"`
	Reason   string    `json:"r,omitempty"`
}

// EventKind is what an Event changes.
type EventKind string

const (
	EventCooldown    EventKind = "cooldown"     // a key cools down until Until
	EventDisable     EventKind = "disable"      // a key is disabled (Reason)
	EventEnable      EventKind = "enable"       // a key is enabled again
	EventBreakerOpen EventKind = "breaker_open" // a provider is cooled until Until
	EventBreakerOK   EventKind = "breaker_ok"   // a provider answers again
)

// NewHealth returns an empty registry.
func NewHealth() *Health {
	return &Health{
		keys:      make(map[string]*KeyHealth),
		breakers:  make(map[string]*Breaker),
		balancing: make(map[string]*Balance),
	}
}

func (h *Health) key(provider, fp string) *KeyHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := provider + "\x00" + fp
	k := h.keys[id]
	if k == nil {
		k = &KeyHealth{h: h, provider: provider, fp: fp}
		h.keys[id] = k
	}
	return k
}

func (h *Health) breaker(provider string) *Breaker {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.breakers[provider]
	if b == nil {
		b = &Breaker{h: h, provider: provider}
		h.breakers[provider] = b
	}
	return b
}

func (h *Health) balance(provider, base string) *Balance {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := provider + "\x00" + base
	b := h.balancing[id]
	if b == nil {
		b = &Balance{}
		h.balancing[id] = b
	}
	return b
}

// EnableAll re-enables every disabled key (a SIGHUP reload: the operator
// may have fixed them).
func (h *Health) EnableAll() {
	h.mu.Lock()
	keys := make([]*KeyHealth, 0, len(h.keys))
	for _, k := range h.keys {
		keys = append(keys, k)
	}
	h.mu.Unlock()
	for _, k := range keys {
		k.Enable()
	}
}

// Apply applies a change another replica published.
func (h *Health) Apply(ev Event) {
	if ev.Key == "" {
		b := h.breaker(ev.Provider)
		b.mu.Lock()
		switch ev.Kind {
		case EventBreakerOpen:
			if ev.Until.After(b.openUntil) {
				b.openUntil, b.fails = ev.Until, breakerThreshold
			}
		case EventBreakerOK:
			b.fails, b.opens, b.openUntil = 0, 0, time.Time{}
		}
		b.mark()
		b.mu.Unlock()
		return
	}
	k := h.key(ev.Provider, ev.Key)
	k.mu.Lock()
	defer k.mu.Unlock()
	defer k.mark()
	switch ev.Kind {
	case EventCooldown:
		if ev.Until.After(k.coolUntil) {
			k.coolUntil, k.coolReason = ev.Until, ev.Reason
		}
	case EventDisable:
		k.disabled = ev.Reason
	case EventEnable:
		k.disabled, k.coolUntil, k.strikes = "", time.Time{}, 0
	}
}

func (h *Health) publish(ev Event) {
	if h.Shared != nil {
		h.Shared.Publish(ev)
	}
}

// KeyState is what a key's health says.
type KeyState string

const (
	KeyOK       KeyState = "ok"
	KeyCooling  KeyState = "cooling"
	KeyDisabled KeyState = "disabled"
)

// KeyHealth is one provider key's health.
type KeyHealth struct {
	h        *Health
	provider string
	fp       string

	mu         sync.Mutex
	coolUntil  time.Time
	coolReason string
	strikes    int    // 429s in a row without a Retry-After: the default cooldown grows
	disabled   string // why; "" when enabled

	// troubled is false while the key is enabled, has no cooldown on
	// record and no strikes: then an attempt asks and settles without the
	// lock. It is written under mu, by mark.
	troubled atomic.Bool

	Requests atomic.Int64 // attempts made with the key
	Failures atomic.Int64 // attempts that failed because of the key (429, 401, quota)
}

// Cooldowns: a 429 without Retry-After starts at defaultCooldown and
// doubles with each repeat up to maxCooldown; an exhausted quota (402,
// insufficient_quota) rests the key for quotaCooldown.
const (
	defaultCooldown = 5 * time.Second
	maxCooldown     = 5 * time.Minute
	quotaCooldown   = time.Hour
)

// mark records whether the key holds any state; k.mu is held.
func (k *KeyHealth) mark() {
	k.troubled.Store(k.disabled != "" || !k.coolUntil.IsZero() || k.strikes != 0)
}

// State returns the key's state at now, until when (cooling) and why.
func (k *KeyHealth) State(now time.Time) (KeyState, time.Time, string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.disabled != "":
		return KeyDisabled, time.Time{}, k.disabled
	case now.Before(k.coolUntil):
		return KeyCooling, k.coolUntil, k.coolReason
	}
	return KeyOK, time.Time{}, ""
}

// available reports whether the key may be used now and, when it is
// cooling down, until when (zero when disabled).
func (k *KeyHealth) available(now time.Time) (bool, time.Time) {
	if !k.troubled.Load() {
		return true, time.Time{}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.disabled != "" {
		return false, time.Time{}
	}
	if now.Before(k.coolUntil) {
		return false, k.coolUntil
	}
	// A cooldown that is over is forgotten, so that the key is asked
	// without the lock again once its strikes are reset.
	k.coolUntil, k.coolReason = time.Time{}, ""
	k.mark()
	return true, time.Time{}
}

// RateLimited cools the key after a 429: for retryAfter when the provider
// said, else for a default that grows on repeats. A longer cooldown
// already running (an exhausted quota) stays, and is what is published:
// a replica that starts later loads the last event stored.
func (k *KeyHealth) RateLimited(now time.Time, retryAfter time.Duration) {
	k.Failures.Add(1)
	k.mu.Lock()
	d := min(retryAfter, quotaCooldown) // the provider's word, within reason
	if d <= 0 {
		d = min(defaultCooldown<<min(k.strikes, 10), maxCooldown)
		k.strikes++
	}
	if until := now.Add(d); until.After(k.coolUntil) {
		k.coolUntil, k.coolReason = until, "rate limited"
	}
	ev := Event{Provider: k.provider, Key: k.fp, Kind: EventCooldown, Until: k.coolUntil, Reason: k.coolReason}
	k.mark()
	k.mu.Unlock()
	k.h.publish(ev)
}

// QuotaExhausted rests the key for much longer (402, insufficient_quota).
func (k *KeyHealth) QuotaExhausted(now time.Time) {
	k.Failures.Add(1)
	until := now.Add(quotaCooldown)
	k.mu.Lock()
	k.coolUntil, k.coolReason = until, "quota exhausted"
	k.mark()
	k.mu.Unlock()
	k.h.publish(Event{Provider: k.provider, Key: k.fp, Kind: EventCooldown, Until: until, Reason: "quota exhausted"})
}

// Disable takes the key out of use until it is enabled again (401/403:
// the provider refuses it).
func (k *KeyHealth) Disable(reason string) {
	k.Failures.Add(1)
	k.mu.Lock()
	was := k.disabled
	k.disabled = reason
	k.mark()
	k.mu.Unlock()
	if was == "" {
		k.h.publish(Event{Provider: k.provider, Key: k.fp, Kind: EventDisable, Reason: reason})
	}
}

// Enable puts a key back into use and forgets its cooldown.
func (k *KeyHealth) Enable() {
	k.mu.Lock()
	was := k.disabled != "" || !k.coolUntil.IsZero()
	k.disabled, k.coolUntil, k.coolReason, k.strikes = "", time.Time{}, "", 0
	k.mark()
	k.mu.Unlock()
	if was {
		k.h.publish(Event{Provider: k.provider, Key: k.fp, Kind: EventEnable})
	}
}

// succeeded resets the growing cooldown.
func (k *KeyHealth) succeeded() {
	if !k.troubled.Load() {
		return
	}
	k.mu.Lock()
	k.strikes = 0
	k.mark()
	k.mu.Unlock()
}

// Breaker is a provider's circuit breaker: breakerThreshold failures in a
// row (5xx, no connection, a timeout) open it for a while, during which
// the provider is tried only when nothing else is left; then one request
// at a time probes it, and the first success closes it.
type Breaker struct {
	h        *Health
	provider string

	mu         sync.Mutex
	fails      int
	opens      int // openings in a row: the pause grows
	openUntil  time.Time
	probeUntil time.Time // a half-open breaker's probe is out until then (or until it settles)

	// failing is false while every field above is zero (no failure since
	// the last success): the state of nearly every request, which then
	// asks and settles without the lock every attempt would otherwise
	// take in turn. It is written under mu, by mark.
	failing atomic.Bool
}

// mark records whether the breaker holds any state; b.mu is held.
func (b *Breaker) mark() {
	b.failing.Store(b.fails != 0 || b.opens != 0 || !b.openUntil.IsZero() || !b.probeUntil.IsZero())
}

const (
	breakerThreshold = 5
	breakerPause     = 30 * time.Second
	breakerMaxPause  = 5 * time.Minute
	// probeClaim bounds how long a probe keeps others off a half-open
	// provider without settling: a probe whose attempt never reports (a
	// panic in a transport) does not keep the provider a last resort for
	// good.
	probeClaim = time.Minute
)

// BreakerState is a breaker's state.
type BreakerState string

const (
	BreakerClosed   BreakerState = "closed"    // in use
	BreakerOpen     BreakerState = "open"      // cooled: last resort only
	BreakerHalfOpen BreakerState = "half_open" // one probe at a time
)

// State returns the breaker's state at now and, when open, until when.
func (b *Breaker) State(now time.Time) (BreakerState, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked(now), b.openUntil
}

func (b *Breaker) stateLocked(now time.Time) BreakerState {
	switch {
	case b.fails < breakerThreshold:
		return BreakerClosed
	case now.Before(b.openUntil):
		return BreakerOpen
	}
	return BreakerHalfOpen
}

// usable reports whether the provider should be tried in its turn (not as
// a last resort); in the half-open state it claims the probe, and probe
// says so: only that attempt's verdict settles the claim.
func (b *Breaker) usable(now time.Time) (ok, probe bool) {
	if !b.failing.Load() {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.stateLocked(now) {
	case BreakerClosed:
		return true, false
	case BreakerHalfOpen:
		if !now.Before(b.probeUntil) {
			b.probeUntil = now.Add(probeClaim)
			b.mark()
			return true, true
		}
	}
	return false, false
}

// cooled reports whether the provider is a last resort now: open, or
// half-open with its probe already out.
func (b *Breaker) cooled(now time.Time) bool {
	if !b.failing.Load() {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.stateLocked(now)
	return st == BreakerOpen || st == BreakerHalfOpen && now.Before(b.probeUntil)
}

// release ends an attempt that neither succeeded nor failed (the answer
// was the client's own error, or the client left); when it was the probe,
// the probe is offered again.
func (b *Breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	b.probeUntil = time.Time{}
	b.mark()
	b.mu.Unlock()
}

func (b *Breaker) succeeded() {
	if !b.failing.Load() {
		return // nothing to reset (a failure that raced with this one's success counts after it)
	}
	b.mu.Lock()
	was := b.fails >= breakerThreshold
	b.fails, b.opens, b.openUntil, b.probeUntil = 0, 0, time.Time{}, time.Time{}
	b.mark()
	b.mu.Unlock()
	if was {
		b.h.publish(Event{Provider: b.provider, Kind: EventBreakerOK})
	}
}

// failed counts a failure; when the attempt was the probe, its claim ends
// (another attempt's failure, a last resort's, leaves a probe out alone).
func (b *Breaker) failed(now time.Time, probe bool) {
	b.mu.Lock()
	b.fails++
	if probe {
		b.probeUntil = time.Time{}
	}
	var until time.Time
	if b.fails >= breakerThreshold && !now.Before(b.openUntil) {
		pause := min(breakerPause<<min(b.opens, 8), breakerMaxPause)
		b.opens++
		b.openUntil = now.Add(pause)
		until = b.openUntil
	}
	b.mark()
	b.mu.Unlock()
	if !until.IsZero() {
		b.h.publish(Event{Provider: b.provider, Kind: EventBreakerOpen, Until: until})
	}
}

// Balance holds the counters the balancing strategies read, per provider
// base URL: this replica's own, plus — when replicas share state — what
// the others counted.
type Balance struct {
	Used     atomic.Int64  // requests sent by this replica
	Inflight atomic.Int64  // this replica's requests whose answer has not ended
	ttfb     atomic.Uint64 // EWMA of the time to the first byte, float64 bits (ns)

	remoteUsed, remoteInflight atomic.Int64 // the other replicas', as last synced
}

// SetRemote records what the other replicas counted (shared state).
func (b *Balance) SetRemote(used, inflight int64) {
	b.remoteUsed.Store(used)
	b.remoteInflight.Store(inflight)
}

// used and inflight are what the strategies compare: every replica's.
func (b *Balance) used() int64     { return b.Used.Load() + b.remoteUsed.Load() }
func (b *Balance) inflight() int64 { return b.Inflight.Load() + b.remoteInflight.Load() }

// Balances calls fn for every balance counter, by provider and base URL
// (shared state publishes this replica's counts and sets the others').
func (h *Health) Balances(fn func(provider, base string, b *Balance)) {
	h.mu.Lock()
	type entry struct {
		provider, base string
		b              *Balance
	}
	list := make([]entry, 0, len(h.balancing))
	for id, b := range h.balancing {
		p, base, _ := strings.Cut(id, "\x00")
		list = append(list, entry{p, base, b})
	}
	h.mu.Unlock()
	for _, e := range list {
		fn(e.provider, e.base, e.b)
	}
}

// Snapshot of the state other replicas should know at start: every key
// cooling or disabled and every open breaker, as events.
func (h *Health) Events(now time.Time) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	for _, k := range h.keys {
		k.mu.Lock()
		switch {
		case k.disabled != "":
			out = append(out, Event{Provider: k.provider, Key: k.fp, Kind: EventDisable, Reason: k.disabled})
		case now.Before(k.coolUntil):
			out = append(out, Event{Provider: k.provider, Key: k.fp, Kind: EventCooldown, Until: k.coolUntil, Reason: k.coolReason})
		}
		k.mu.Unlock()
	}
	for _, b := range h.breakers {
		b.mu.Lock()
		if b.fails >= breakerThreshold && now.Before(b.openUntil) {
			out = append(out, Event{Provider: b.provider, Kind: EventBreakerOpen, Until: b.openUntil})
		}
		b.mu.Unlock()
	}
	return out
}

// ewmaWeight is how much a new sample moves the latency average.
const ewmaWeight = 0.2

// observe folds a time-to-first-byte sample into the average.
func (b *Balance) observe(d time.Duration) {
	for {
		old := b.ttfb.Load()
		v := float64(d)
		if old != 0 {
			v = math.Float64frombits(old)*(1-ewmaWeight) + v*ewmaWeight
		}
		if b.ttfb.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}

// Latency returns the average time to the first byte; 0 when unknown.
func (b *Balance) Latency() time.Duration {
	return time.Duration(math.Float64frombits(b.ttfb.Load()))
}

// ProviderHealth is a provider's (or a keyed preset's) health, for /stats,
// the dashboard and the admin panel. Keys are shown by name and masked.
type ProviderHealth struct {
	Name         string      `json:"name"`
	Kind         string      `json:"kind"`
	Origin       string      `json:"origin"`
	Hosts        []string    `json:"hosts"`
	Breaker      string      `json:"breaker"`
	BreakerUntil *time.Time  `json:"breaker_until,omitempty"`
	Keys         []KeyReport `json:"keys"`
}

// KeyReport is one provider key's state.
type KeyReport struct {
	Name     string     `json:"name"`
	Masked   string     `json:"masked"`
	State    string     `json:"state"`
	Until    *time.Time `json:"until,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Requests int64      `json:"requests"`
	Failures int64      `json:"failures"`
}

// HealthReport describes the health of every provider and keyed preset
// of the snapshot.
func (snap *Snapshot) HealthReport(now time.Time) []ProviderHealth {
	var out []ProviderHealth
	add := func(p *Provider) {
		st, until := p.Breaker().State(now)
		ph := ProviderHealth{Name: p.Name, Kind: string(p.Kind), Origin: p.Origin, Hosts: p.Hosts(), Breaker: string(st), Keys: []KeyReport{}}
		if st == BreakerOpen {
			ph.BreakerUntil = &until
		}
		for _, k := range p.Keys() {
			state, kUntil, reason := k.Health().State(now)
			kh := KeyReport{Name: k.Name, Masked: k.Masked, State: string(state), Reason: reason,
				Requests: k.Health().Requests.Load(), Failures: k.Health().Failures.Load()}
			if state == KeyCooling {
				kh.Until = &kUntil
			}
			ph.Keys = append(ph.Keys, kh)
		}
		out = append(out, ph)
	}
	for _, p := range snap.Providers() {
		add(p)
	}
	for _, p := range snap.Presets() {
		if p.Keyed() {
			add(p)
		}
	}
	return out
}
