// Package redisstate shares what llmproxy replicas must agree on through
// Redis: client-key limits (rpm, tpm, max_parallel, budget), provider-key
// cooldowns and disabled state, provider circuit breakers, and the counters
// of the least_used and least_inflight strategies. When Redis cannot be
// reached, each replica serves on its own counters and says so (the log,
// /health, /metrics), then goes back to Redis when it answers again.
//
// Clocks. Windows — the rpm log, the tpm buckets, parallel-slot leases,
// balancing entries — are measured on Redis's clock (TIME inside each
// script): replicas' clocks may disagree by seconds, and a replica running
// ahead would age admissions out early and let more than rpm through.
// Budget periods (a UTC day or month) are picked with the replica's own
// clock, the now given to Admit, as access.Local does: skew only moves
// midnight by as much, and tests can inject the time. Cooldowns and breakers
// carry the until-time of the replica that saw the failure.
//
// Keys, under Prefix, each with an expiry: lim:{ID}:rpm, :tpm, :slots and
// :budget:<day|month>:<start> per client key (by its ID, never its secret),
// health (a hash; also the channel's name) and balance (a hash). One Redis
// (or a primary behind Sentinel's address), not a Redis Cluster: a client
// key's limits share a hash tag, but the fallback's catch-up spans keys.
package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/internal/sockio"
)

// Options configure New. The zero value of every field but URL means its
// default.
type Options struct {
	// URL is redis://[user:password@]host:port[/db], or rediss:// for TLS.
	// Required.
	URL string
	// Prefix starts every key and channel name. Default "llmproxy:".
	Prefix string
	// FailClosed refuses limited client keys while Redis is unreachable
	// (redis_fail: closed) instead of serving them on local counters.
	// Default false.
	FailClosed bool
	// SlotTTL is the lease of a max_parallel slot, renewed while its
	// request runs: a replica that died frees its slots after it. Default
	// 30s.
	SlotTTL time.Duration
	// Timeout bounds each Redis operation. Default 250ms.
	Timeout time.Duration
	// SyncEvery is how often the balancing counters are published and
	// the other replicas' read. Default 500ms.
	SyncEvery time.Duration
	// ProbeEvery is how often Redis is pinged, to notice it left (when
	// nothing else asks it) and that it came back. Default 1s.
	ProbeEvery time.Duration
	// Replica names this replica in what it writes. Default
	// hostname-pid-random.
	Replica string
	// Logger receives the state changes (unreachable, back) and go-redis's
	// own lines at debug level. Default: discard.
	Logger *slog.Logger
}

// disabledTTL is how long a provider key refused with 401/403 stays
// disabled for replicas that start later: long enough to spare it many
// wasted attempts, short enough that a key fixed without a reload comes
// back by itself.
const disabledTTL = time.Hour

// ErrUnavailable is Admit's answer for a limited key while Redis is
// unreachable and FailClosed is set. It is not a *access.LimitError: the
// server answers 503 limiter_unavailable.
var ErrUnavailable = errors.New("the shared limiter (Redis) is unreachable")

// Shared is one replica's connection to the state every replica shares.
type Shared struct {
	opts   Options
	client *redis.Client
	addr   string // host:port, for logs (never the URL: it may hold a password)
	log    *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // an operation failed: probe now

	up       atomic.Bool
	warnedAt atomic.Int64 // unix ns of the last "Redis answered with an error" line
	seq      atomic.Uint64

	leases  leaseSet   // this replica's running parallel slots, renewed
	pending pendingOps // what could not reach Redis, sent when it is back

	health  atomic.Pointer[gateway.Health]
	events  chan gateway.Event
	pubsub  *redis.PubSub
	shareMu sync.Mutex // ShareHealth runs once

	m counters
}

var _ gateway.Shared = (*Shared)(nil)

// New connects to Redis. A Redis that does not answer at start is not an
// error: the replica starts on local counters, says so, and switches to
// Redis when it answers. Errors are for a URL that cannot be used; their
// messages never hold the URL.
func New(ctx context.Context, opts Options) (*Shared, error) {
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // prints the whole URL, password included
			return nil, errors.New("redis_url: not a valid redis:// or rediss:// URL")
		}
		return nil, fmt.Errorf("redis_url: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = "llmproxy:"
	}
	opts.SlotTTL = orDefault(opts.SlotTTL, 30*time.Second)
	opts.Timeout = orDefault(opts.Timeout, 250*time.Millisecond)
	opts.SyncEvery = orDefault(opts.SyncEvery, 500*time.Millisecond)
	opts.ProbeEvery = orDefault(opts.ProbeEvery, time.Second)
	if opts.Replica == "" {
		opts.Replica = replicaID()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	useLogger(opts.Logger)

	// RESP2: every Redis since 2.6 and the proxies in front of managed
	// ones speak it; nothing here needs RESP3's push messages.
	if ro.Protocol == 0 {
		ro.Protocol = 2
	}
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	ro.DisableIdentity = true // CLIENT SETINFO: a round trip per connection, unknown before Redis 7.2
	// A script is not idempotent: retrying one whose answer was lost
	// would count a request twice. A failure falls back instead.
	ro.MaxRetries = -1
	ro.DialerRetries = 1 // the default 5 with backoff would hold a request half a second on a refused connection
	ro.ContextTimeoutEnabled = true
	if ro.DialTimeout == 0 {
		ro.DialTimeout = max(4*opts.Timeout, time.Second) // a TLS handshake to a remote Redis
	}
	if ro.ReadTimeout == 0 {
		ro.ReadTimeout = opts.Timeout
	}
	if ro.WriteTimeout == 0 {
		ro.WriteTimeout = opts.Timeout
	}
	if ro.PoolTimeout == 0 {
		ro.PoolTimeout = opts.Timeout
	}

	s := &Shared{
		opts:   opts,
		client: redis.NewClient(ro),
		addr:   ro.Addr,
		log:    opts.Logger,
		kick:   make(chan struct{}, 1),
		events: make(chan gateway.Event, 1024),
	}
	s.leases.m = make(map[string]leaseEntry)
	s.client.AddHook(roundTripHook{&s.m.roundTrips})
	s.client.AddHook(sockHook{})
	s.ctx, s.cancel = context.WithCancel(context.Background())

	pctx, cancel := context.WithTimeout(ctx, 4*opts.Timeout)
	err = s.loadScripts(pctx)
	cancel()
	if err != nil {
		s.log.Warn("redis unreachable at start: "+s.downNote(), "redis", s.addr, "error", err.Error())
	} else {
		s.up.Store(true)
		s.log.Info("sharing client-key limits and provider-key health through redis", "redis", s.addr, "replica", opts.Replica)
	}
	s.wg.Add(2)
	go s.maintain()
	go s.publisher()
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func replicaID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Close stops the background work and closes the connections. Slots this
// replica holds are not released: they expire after SlotTTL, as a dead
// replica's do (requests still running would otherwise be forgotten).
func (s *Shared) Close() error {
	s.cancel()
	s.shareMu.Lock()
	if s.pubsub != nil {
		s.pubsub.Close()
	}
	s.shareMu.Unlock()
	s.wg.Wait()
	return s.client.Close()
}

// Up reports whether Redis answers: limits, key health and balancing are
// shared.
func (s *Shared) Up() bool { return s.up.Load() }

// Status is /health's view: {"redis": "up"}, or degraded with the reason.
func (s *Shared) Status() (degraded bool, parts map[string]string) {
	if s.up.Load() {
		return false, map[string]string{"redis": "up"}
	}
	return true, map[string]string{"redis": "unreachable: " + s.downNote()}
}

func (s *Shared) downNote() string {
	if s.opts.FailClosed {
		return "refusing limited client keys (redis_fail: closed)"
	}
	return "serving on local counters"
}

// failed notes an operation that Redis did not carry out. A caller that
// gave up (its context ended) says nothing about Redis. An error answer
// from a Redis that is otherwise up (a script refused, an ACL) is logged,
// at most once a minute; anything else asks for a probe.
func (s *Shared) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.m.errors.Add(1)
	var re redis.Error
	if errors.As(err, &re) && !isConnError(re) {
		now := time.Now().UnixNano()
		last := s.warnedAt.Load()
		if now-last > int64(time.Minute) && s.warnedAt.CompareAndSwap(last, now) {
			s.log.Warn("redis answered an operation with an error; this replica used its own counters for it",
				"redis", s.addr, "error", re.Error())
		}
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// isConnError reports error answers that mean Redis cannot serve at all
// right now (loading its data set, a replica cut off): those go through
// the probe like a refused connection.
func isConnError(err redis.Error) bool {
	msg := err.Error()
	for _, p := range []string{"LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"} {
		if len(msg) >= len(p) && msg[:len(p)] == p {
			return true
		}
	}
	return false
}

// maintain pings Redis, renews this replica's leases and shares the
// balancing counters, each on its own period.
func (s *Shared) maintain() {
	defer s.wg.Done()
	probe := time.NewTicker(s.opts.ProbeEvery)
	defer probe.Stop()
	renew := time.NewTicker(max(s.opts.SlotTTL/3, time.Millisecond))
	defer renew.Stop()
	sync := time.NewTicker(s.opts.SyncEvery)
	defer sync.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
			s.probe()
		case <-probe.C:
			s.probe()
		case <-renew.C:
			if s.up.Load() {
				err := s.renewLeases(s.ctx, false)
				if err == nil {
					// what a request that ended while Redis came back left
					ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
					err = s.flushPending(ctx)
					cancel()
				}
				if err != nil {
					s.failed(s.ctx, err)
				}
			}
		case <-sync.C:
			if h := s.health.Load(); h != nil && s.up.Load() {
				if err := s.syncBalances(h); err != nil {
					s.failed(s.ctx, err)
				}
			}
		}
	}
}

// probe pings Redis and switches between shared and local state.
func (s *Shared) probe() {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	err := s.client.Ping(ctx).Err()
	cancel()
	if s.ctx.Err() != nil {
		return
	}
	if err != nil {
		s.setDown(err)
		return
	}
	if !s.up.Load() {
		s.setUp()
	}
}

func (s *Shared) setDown(err error) {
	if !s.up.CompareAndSwap(true, false) {
		return
	}
	s.log.Warn("redis unreachable: "+s.downNote()+", with this replica's own key health and balancing, until it answers",
		"redis", s.addr, "error", err.Error())
	if h := s.health.Load(); h != nil {
		// The others' counts are stale from now on.
		h.Balances(func(_, _ string, b *gateway.Balance) { b.SetRemote(0, 0) })
	}
}

// setUp brings Redis back into use: what this replica did meanwhile is
// sent (slots still running, counted for every replica from now on; slots
// it released; money it spent; key health it learned), and what the others
// learned is loaded. A failure leaves it for the next probe.
func (s *Shared) setUp() {
	ctx, cancel := context.WithTimeout(s.ctx, 4*s.opts.Timeout)
	defer cancel()
	if err := s.loadScripts(ctx); err != nil {
		return
	}
	if err := s.renewLeases(ctx, true); err != nil {
		return
	}
	if err := s.flushPending(ctx); err != nil {
		return
	}
	if h := s.health.Load(); h != nil {
		if err := s.loadHealth(ctx, h); err != nil {
			return
		}
		for _, ev := range h.Events(time.Now()) {
			if err := s.send(ctx, ev); err != nil {
				return
			}
		}
	}
	s.up.Store(true)
	s.log.Info("redis is back: client-key limits and provider-key health are shared again", "redis", s.addr)
}

// loadScripts loads every script, in one round trip, so that none is sent
// by digest to a Redis that does not know it (a Redis started again knows
// none): a request that times out is then known to have run when Redis
// read it.
func (s *Shared) loadScripts(ctx context.Context) error {
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, src := range []string{admitLua, doneLua, renewLua, sendLua, balanceLua} {
			p.ScriptLoad(ctx, src)
		}
		return nil
	})
	return err
}

// member returns a name unique to this replica for a log entry or lease.
func (s *Shared) member() string {
	return s.opts.Replica + ":" + strconv.FormatUint(s.seq.Add(1), 10)
}

// roundTripHook counts the round trips to Redis: one per command, one per
// pipeline.
type roundTripHook struct{ n *atomic.Int64 }

func (h roundTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h roundTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h roundTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// sockHook has Redis's sockets read and written outside the scheduler's
// system-call state, as the proxy's own are (internal/sockio): every
// gateway request makes a round trip to Redis when replicas share state.
// A TLS connection (rediss://) is left as go-redis made it.
type sockHook struct{}

func (sockHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return sockio.Wrap(c), nil
	}
}

func (sockHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (sockHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// go-redis logs through one process-wide logger (to stderr by default);
// its lines go to the latest Shared's logger at debug level instead, so
// that they keep the operator's log format. Redis's own state changes are
// logged by Shared itself.
var (
	redisLogger  atomic.Pointer[slog.Logger]
	redisLogOnce sync.Once
)

type redisLog struct{}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	if l := redisLogger.Load(); l != nil {
		l.Debug("redis client", "detail", fmt.Sprintf(format, v...))
	}
}

func useLogger(l *slog.Logger) {
	redisLogger.Store(l)
	redisLogOnce.Do(func() { redis.SetLogger(redisLog{}) })
}
