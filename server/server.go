// Package server is llmproxy's HTTP front: it routes a request (health,
// preset, token, generic), applies the privacy policy, hands the request to
// the upstream transport and streams the answer back, with one place for
// errors, CORS and the request log line.
package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/dashboard"
	"github.com/llmproxy/llmproxy/egress"
	"github.com/llmproxy/llmproxy/fallback"
	"github.com/llmproxy/llmproxy/fetch"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/netguard"
	"github.com/llmproxy/llmproxy/privacy"
	"github.com/llmproxy/llmproxy/resume"
	"github.com/llmproxy/llmproxy/socket"
	"github.com/llmproxy/llmproxy/stats"
	"github.com/llmproxy/llmproxy/translate"
	"github.com/llmproxy/llmproxy/wsproxy"
)

// Options are what New needs besides the configuration.
type Options struct {
	// Logger receives the request lines and events. Default: discard.
	Logger *slog.Logger
	// Version is reported by /health.
	Version string
	// Resolver resolves generic targets for the address guard. Default: the
	// system resolver. Tests use it to play DNS tricks.
	Resolver netguard.Resolver
	// Getenv resolves env:NAME keys and the seed variables. Default
	// os.Getenv.
	Getenv func(string) string
	// Limiter enforces client keys' limits. Default: in memory.
	Limiter access.Limiter
	// OnUsage, when set, is told every answered gateway request's usage
	// (the admin store keeps it per day).
	OnUsage func(gateway.Result, time.Time)
	// Admin, when set, serves the admin panel under /admin.
	Admin http.Handler
	// Status, when set, adds parts' states to /health (shared state:
	// {"redis": "up"}); degraded makes /health say "degraded" (still 200:
	// llmproxy serves).
	Status func() (degraded bool, parts map[string]string)
	// Collectors are more Prometheus collectors for /metrics.
	Collectors []prometheus.Collector

	afterHandOff  func(*Server, *logWriter) // tests: runs in the handler after a stream was handed off
	lazyReadAfter time.Duration             // tests: the background reads' wait (lazyReadAfter when 0)
}

// Server is the proxy. It is an http.Handler; Serve runs it on a listener
// with the configured limits and graceful shutdown.
type Server struct {
	cfg     *config.Config // the settings that need a restart to change
	log     *slog.Logger
	version string
	started time.Time
	getenv  func(string) string

	// snap is the compiled routing configuration: presets, providers,
	// model routes, client keys. A reload swaps it whole; a request keeps
	// the one it started with.
	snap    atomic.Pointer[gateway.Snapshot]
	health  *gateway.Health
	limiter access.Limiter

	hasToken bool
	tokenSum [32]byte
	cors     corsPolicy
	redact   *privacy.Redactor
	stats    *stats.Stats
	metrics  http.Handler

	trusted    transports // presets and providers: the operator chose these hosts
	guarded    transports // generic mode: behind the address guard
	guard      *netguard.Guard
	generic    *fallback.Transport
	fallbacks  sync.Map // name + mode → *fallback.Transport, kept across reloads
	resumeOn   bool
	translator func(name string, next http.RoundTripper) http.RoundTripper
	responses  *translate.Store // responses.store: memory; nil when off

	ws           *wsproxy.Relay
	handoffs     handoffs                  // streams relayed outside their handlers
	afterHandOff func(*Server, *logWriter) // Options.afterHandOff
	lazyEvery    time.Duration             // Options.lazyReadAfter
	cutting      atomic.Bool               // the shutdown's drain timeout passed: what is left is cut off
	dashboard    http.Handler              // nil when turned off
	admin        http.Handler              // nil when turned off
	onUsage      func(gateway.Result, time.Time)
	status       func() (bool, map[string]string)
	extra        []prometheus.Collector

	warned sync.Map // "preset/reason" → struct{}: fallbacks already logged at warn level
}

// transports is one socket + fetch pair sharing a dialer.
type transports struct {
	socket *socket.Transport
	fetch  *fetch.Transport
}

func (t transports) closeIdle() {
	t.socket.CloseIdleConnections()
	t.fetch.CloseIdleConnections()
}

// New builds a server from a validated configuration.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     logger,
		version: opts.Version,
		started: time.Now(),
		getenv:  opts.Getenv,
		cors:    newCORS(cfg.CORSOrigins),
		redact:  privacy.NewRedactor(cfg.AuthToken),
		stats:   stats.New(opts.Version),
		health:  gateway.NewHealth(),
		limiter: opts.Limiter,
		admin:   opts.Admin,
		onUsage: opts.OnUsage,
		status:  opts.Status,
		extra:   opts.Collectors,

		afterHandOff: opts.afterHandOff,
		lazyEvery:    opts.lazyReadAfter,
	}
	if s.limiter == nil {
		s.limiter = access.NewLocal()
	}
	if s.getenv == nil {
		s.getenv = os.Getenv
	}
	s.metrics = s.metricsHandler()
	if cfg.AuthToken != "" {
		s.hasToken = true
		s.tokenSum = sha256.Sum256([]byte(cfg.AuthToken))
	}

	roots, err := cfg.RootCAs()
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	dialer, err := egress.New(egress.Options{Proxy: cfg.EgressProxy, Timeout: cfg.Timeouts.Dial})
	if err != nil {
		return nil, &config.SettingError{Setting: "egress_proxy", Msg: err.Error()}
	}
	allowed, allowedHosts, err := cfg.Destinations()
	if err != nil {
		return nil, err
	}
	s.guard = &netguard.Guard{
		Dialer:       dialer,
		Resolver:     opts.Resolver,
		AllowPrivate: cfg.AllowPrivate,
		Allowed:      allowed,
		AllowedHosts: allowedHosts,
	}
	if cfg.AuthToken != "" && !cfg.AllowPrivate {
		if err := netguard.LocalAddrsError(); err != nil {
			logger.Warn("generic mode's guard cannot list this machine's addresses: a public address of its own is not refused (allow netlink sockets)", "err", err)
		}
	}
	s.trusted = s.newTransports(dialer.DialContext, tlsConfig)
	s.guarded = s.newTransports(s.guard.DialContext, tlsConfig)
	s.generic = s.newFallback("generic", fallback.Mode(cfg.Transport), s.guarded)
	s.resumeOn = cfg.Gemini.Resume
	s.translator = s.newTranslator(cfg)
	s.ws = wsproxy.New(wsproxy.Options{
		ReadLimit:        cfg.WebSocket.ReadLimit,
		IdleTimeout:      cfg.WebSocket.IdleTimeout,
		PingInterval:     cfg.WebSocket.PingInterval,
		HandshakeTimeout: cfg.WebSocket.HandshakeTimeout,
	})

	snap, err := s.compile(cfg)
	if err != nil {
		return nil, err
	}
	s.snap.Store(snap)
	for _, w := range snap.Warnings {
		s.log.Warn(w)
	}
	if cfg.Dashboard {
		if s.dashboard, err = dashboard.New(s.dashboardInfo(snap)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// compile builds a routing snapshot from a configuration, on the
// server's long-lived transports and health registry.
func (s *Server) compile(cfg *config.Config) (*gateway.Snapshot, error) {
	deps := gateway.Deps{
		Transport: func(name, mode string) http.RoundTripper {
			return s.transportFor(name, cmp.Or(mode, s.cfg.Transport))
		},
		Guarded:   s.generic,
		Health:    s.health,
		Getenv:    s.getenv,
		Translate: s.translator,
	}
	if s.resumeOn {
		deps.Resume = s.newResume
	}
	return gateway.Compile(cfg, deps)
}

// Reload compiles cfg's routing parts (presets, providers, models, client
// keys) and swaps them in; running requests and streams keep the snapshot
// they started with. Settings that need a restart (listen address,
// timeouts, transports, token) are reported, not applied. A bad cfg
// changes nothing and returns the error.
func (s *Server) Reload(cfg *config.Config) error {
	snap, err := s.build(cfg)
	if err != nil {
		return err
	}
	for _, name := range restartSettings(s.cfg, cfg) {
		s.log.Warn("setting changed in the reloaded configuration; it takes effect at restart", "setting", name)
	}
	s.health.EnableAll() // the operator may have fixed refused keys
	s.snap.Store(snap)
	s.log.Info("configuration reloaded",
		"providers", len(snap.Providers()), "models", len(snap.Routes()), "client_keys", len(snap.Keys().List()))
	return nil
}

// Apply swaps in the routing parts of cfg as Reload does, for a change
// made in the admin panel: keys the provider refused stay disabled (a
// panel edit elsewhere must not retry them).
func (s *Server) Apply(cfg *config.Config) error {
	snap, err := s.build(cfg)
	if err != nil {
		return err
	}
	s.snap.Store(snap)
	s.log.Info("configuration applied",
		"providers", len(snap.Providers()), "models", len(snap.Routes()), "client_keys", len(snap.Keys().List()))
	return nil
}

func (s *Server) build(cfg *config.Config) (*gateway.Snapshot, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.AuthToken != s.cfg.AuthToken {
		// The token needs a restart: until then the running one opens
		// /<token>/…, so it is the one the snapshot's policies keep from
		// upstreams and its operator credential — not the new one, half
		// applied.
		cfg = cfg.Clone()
		cfg.AuthToken = s.cfg.AuthToken
	}
	snap, err := s.compile(cfg)
	if err != nil {
		return nil, err
	}
	for _, w := range snap.Warnings {
		s.log.Warn(w)
	}
	return snap, nil
}

// DropKeys takes the client keys drop picks out of the running snapshot,
// rebuilding nothing else, and returns how many it took: a revocation
// takes effect when the configuration cannot be rebuilt (Apply refused).
// Requests in flight keep the snapshot they started with.
func (s *Server) DropKeys(drop func(*access.Key) bool) int {
	for {
		cur := s.snap.Load()
		next, n := cur.WithoutKeys(drop)
		if n == 0 {
			return 0
		}
		// Not over an Apply that swapped in the meantime: drop from that.
		if s.snap.CompareAndSwap(cur, next) {
			s.log.Info("client keys taken out of the running configuration", "client_keys", n)
			return n
		}
	}
}

// Snapshot returns the running routing snapshot.
func (s *Server) Snapshot() *gateway.Snapshot { return s.snap.Load() }

// restartSettings names the settings that differ and are read only at
// start.
func restartSettings(old, cur *config.Config) []string {
	var out []string
	check := func(name string, changed bool) {
		if changed {
			out = append(out, name)
		}
	}
	check("listen", old.Listen != cur.Listen)
	check("auth_token", old.AuthToken != cur.AuthToken)
	check("preset_auth", old.PresetAuth != cur.PresetAuth)
	check("transport", old.Transport != cur.Transport)
	check("upstream_ca", old.UpstreamCA != cur.UpstreamCA)
	check("egress_proxy", old.EgressProxy != cur.EgressProxy)
	check("timeouts", old.Timeouts != cur.Timeouts)
	check("websocket", old.WebSocket != cur.WebSocket)
	check("max_body_bytes", old.MaxBodyBytes != cur.MaxBodyBytes)
	check("max_header_bytes", old.MaxHeaderBytes != cur.MaxHeaderBytes)
	check("allow_private", old.AllowPrivate != cur.AllowPrivate)
	check("cors_origins", !slices.Equal(old.CORSOrigins, cur.CORSOrigins))
	check("allowed_destinations", !slices.Equal(old.AllowedDestinations, cur.AllowedDestinations))
	check("gemini", !reflect.DeepEqual(old.Gemini, cur.Gemini))
	check("responses", old.Responses != cur.Responses)
	check("keep_set_cookie", old.KeepSetCookie != cur.KeepSetCookie)
	check("aggressive_fallback", old.AggressiveFallback != cur.AggressiveFallback)
	check("dashboard", old.Dashboard != cur.Dashboard)
	check("debug", old.Debug != cur.Debug)
	check("log_format", old.LogFormat != cur.LogFormat)
	check("admin_password", old.AdminPassword != cur.AdminPassword)
	check("data_dir", old.DataDir != cur.DataDir)
	check("database_url", old.DatabaseURL != cur.DatabaseURL)
	check("redis_url", old.RedisURL != cur.RedisURL)
	check("redis_fail", old.RedisFail != cur.RedisFail)
	check("redis_slot_ttl", old.RedisSlotTTL != cur.RedisSlotTTL)
	return out
}

// dashboardInfo is what the page may show: presets and features, never a
// token, key or proxy address.
func (s *Server) dashboardInfo(snap *gateway.Snapshot) dashboard.Info {
	cfg := s.cfg
	info := dashboard.Info{
		Version: s.version,
		Features: dashboard.Features{
			Token:              cfg.AuthToken != "",
			PresetAuth:         cfg.PresetAuth,
			Generic:            cfg.AuthToken != "",
			Transport:          cfg.Transport,
			AggressiveFallback: cfg.AggressiveFallback,
			GeminiResume:       cfg.Gemini.Resume,
			AllowPrivate:       cfg.AllowPrivate,
			EgressProxy:        cfg.EgressProxy != "",
			WebSocket:          true,
			Gateway:            snap.On(),
			Admin:              s.admin != nil,
		},
	}
	for _, p := range snap.Presets() {
		pr := p.Preset()
		mode := cmp.Or(pr.Transport, cfg.Transport)
		info.Presets = append(info.Presets, dashboard.Preset{
			Name: pr.Name, Aliases: pr.Aliases, Title: pr.Title, Hosts: p.Hosts(), ClientPath: pr.ClientPath,
			Key: string(pr.Key), Transport: mode, Resume: pr.Resume, ServerKeys: p.Keyed(),
		})
	}
	return info
}

func (s *Server) newTransports(dial func(context.Context, string, string) (net.Conn, error), tlsConfig *tls.Config) transports {
	t := s.cfg.Timeouts
	return transports{
		socket: &socket.Transport{
			DialContext:           dial,
			TLSClientConfig:       tlsConfig,
			DialTimeout:           t.Dial,
			TLSHandshakeTimeout:   t.TLSHandshake,
			ResponseHeaderTimeout: t.ResponseHeader,
			IdleTimeout:           t.UpstreamIdle,
		},
		fetch: fetch.New(fetch.Options{
			DialContext:           dial,
			TLSClientConfig:       tlsConfig,
			DialTimeout:           t.Dial,
			TLSHandshakeTimeout:   t.TLSHandshake,
			ResponseHeaderTimeout: t.ResponseHeader,
			IdleTimeout:           t.UpstreamIdle,
		}),
	}
}

// transportFor returns the socket→fetch transport of a preset or provider
// in a mode, the same one across reloads (it remembers HTTP/2-only hosts).
func (s *Server) transportFor(name, mode string) *fallback.Transport {
	key := name + "\x00" + mode
	if t, ok := s.fallbacks.Load(key); ok {
		return t.(*fallback.Transport)
	}
	t, _ := s.fallbacks.LoadOrStore(key, s.newFallback(name, fallback.Mode(mode), s.trusted))
	return t.(*fallback.Transport)
}

// newFallback returns the transport chooser for a preset, a provider or
// generic mode.
func (s *Server) newFallback(name string, mode fallback.Mode, t transports) *fallback.Transport {
	return &fallback.Transport{
		Socket:        t.socket,
		Fetch:         t.fetch,
		Mode:          mode,
		Aggressive:    s.cfg.AggressiveFallback,
		MaxReplayBody: s.cfg.MaxBodyBytes,
		Blocked:       netguard.IsBlocked,
		OnFallback:    func(_ *http.Request, reason fallback.Reason) { s.fallback(name, reason) },
	}
}

// fallback counts a fallback and logs the first of each kind per preset at
// warn level, so an operator notices; the request line carries every one.
func (s *Server) fallback(name string, reason fallback.Reason) {
	route, kind, who := statsRoute(name)
	s.stats.Route(route).Fallback(string(reason))
	if _, seen := s.warned.LoadOrStore(name+"/"+string(reason), struct{}{}); !seen {
		s.log.Warn("socket transport failed before sending; falling back to fetch",
			kind, who, "reason", string(reason),
			"note", "logged once per "+kind+" and reason; each request line names its fallback")
	}
}

// statsRoute is the /stats route a transport's name counts under: a
// preset's own, or the gateway for a provider's (gateway.ProviderPrefix),
// with what to call it in a log line.
func statsRoute(name string) (route, kind, who string) {
	if p, ok := strings.CutPrefix(name, gateway.ProviderPrefix); ok {
		return "gateway", "provider", p
	}
	return name, "preset", name
}

// newResume wraps a transport with the Gemini stream resume. Each resume
// is logged (reason, attempt, characters so far, never the text) and
// counted.
func (s *Server) newResume(name string, next http.RoundTripper) http.RoundTripper {
	g := s.cfg.Gemini
	return &resume.Transport{Next: next, Options: resume.Options{
		MaxResumes:   g.MaxResumes,
		Delay:        g.ResumeDelay,
		IdleTimeout:  g.AttemptIdleTimeout,
		TotalTimeout: g.TotalTimeout,
		Prompts:      g.Prompts,
		MaxBody:      s.cfg.MaxBodyBytes,
		OnResume: func(_ *http.Request, reason string, attempt, chars int) {
			route, kind, who := statsRoute(name)
			s.stats.Route(route).Resume()
			s.log.Info("gemini answer cut off: asking for the rest",
				kind, who, "reason", reason, "attempt", attempt, "chars_so_far", chars)
		},
	}}
}

// Serve runs the server on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets running requests and streams finish for up to
// the shutdown timeout, then closes what is left. It returns nil after a
// shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if addr, ok := ln.Addr().(*net.TCPAddr); ok {
		s.guard.Listen = append(s.guard.Listen, addr.AddrPort())
	}
	fl := newFramingListener(ln, s.cfg.MaxHeaderBytes)
	fl.lazy.interval = s.lazyEvery
	fl.readHeader = s.cfg.Timeouts.ReadHeader
	ln = fl
	if fl.watch != nil {
		defer fl.watch.close() // after the handed-off streams, drained below
	}
	srv := &http.Server{
		Handler:     s,
		ConnContext: connContext,
		// OPTIONS * comes to ServeHTTP too (a request's framing is
		// checked there), which answers it as net/http's handler would.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            s.cfg.Timeouts.ReadHeader,
		IdleTimeout:                  s.cfg.Timeouts.ClientIdle,
		// net/http reads up to 4 KiB beyond MaxHeaderBytes before it
		// refuses a head: the limit is the setting, that slack included.
		MaxHeaderBytes: max(s.cfg.MaxHeaderBytes-4096, 1),
		// No WriteTimeout and no ReadTimeout: either would cut a long stream.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	s.log.Info("shutting down: no new connections; running requests may finish",
		"drain_timeout", s.cfg.Timeouts.Shutdown.String(), "websockets", s.ws.Open(), "handed_off_streams", s.handoffs.Open())
	drain, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Shutdown)
	defer cancel()
	// WebSockets are told at once (close 1001, going away): a realtime
	// session does not end by itself, and its client will reconnect.
	wsDone := make(chan struct{})
	go func() { s.ws.Shutdown(drain); close(wsDone) }()
	// Streams handed off (handoff.go) are not net/http's any more: they
	// are waited for, and cut off at the timeout, the same way.
	streamsDone := make(chan struct{})
	go func() { s.handoffs.shutdown(drain); close(streamsDone) }()
	err := srv.Shutdown(drain)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("drain timeout reached: closing the connections still open")
		s.cutting.Store(true)
		srv.Close()
	}
	<-wsDone
	<-streamsDone
	<-errc
	s.trusted.closeIdle()
	s.guarded.closeIdle()
	s.log.Info("stopped")
	return nil
}

// Health returns the registry of provider and key health the server's
// snapshots share (replicas share it through Redis).
func (s *Server) Health() *gateway.Health { return s.health }
