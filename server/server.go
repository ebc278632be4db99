// Package server is llmproxy's HTTP front: it routes a request (health,
// preset, token, generic), applies the privacy policy, hands the request to
// the upstream transport and streams the answer back, with one place for
// errors, CORS and the request log line.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/dashboard"
	"github.com/llmproxy/llmproxy/egress"
	"github.com/llmproxy/llmproxy/fallback"
	"github.com/llmproxy/llmproxy/fetch"
	"github.com/llmproxy/llmproxy/netguard"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/privacy"
	"github.com/llmproxy/llmproxy/resume"
	"github.com/llmproxy/llmproxy/socket"
	"github.com/llmproxy/llmproxy/stats"
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
}

// Server is the proxy. It is an http.Handler; Serve runs it on a listener
// with the configured limits and graceful shutdown.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	version  string
	started  time.Time
	presets  *preset.Set
	routes   map[string]*presetRoute // by name and alias
	hasToken bool
	tokenSum [32]byte
	cors     corsPolicy
	redact   *privacy.Redactor
	stats    *stats.Stats
	metrics  http.Handler

	trusted transports // presets: the operator chose these hosts
	guarded transports // generic mode: behind the address guard
	guard   *netguard.Guard

	generic   *route // generic mode: denylist policy, guarded transports
	ws        *wsproxy.Relay
	dashboard http.Handler // nil when turned off

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

// route is what serves requests for a preset or for generic mode: the
// header policy, the transport chooser, and the forwarder using both.
type route struct {
	policy    *privacy.Policy
	transport *fallback.Transport // also carries WebSocket handshakes
	fwd       *forwarder
}

// presetRoute is a preset ready to serve.
type presetRoute struct {
	route
	p       *preset.Preset
	targets []*url.URL
	next    atomic.Uint64 // round robin over targets
}

// target returns the base URL for the next request.
func (pr *presetRoute) target() *url.URL {
	if len(pr.targets) == 1 {
		return pr.targets[0]
	}
	return pr.targets[(pr.next.Add(1)-1)%uint64(len(pr.targets))]
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
		cors:    newCORS(cfg.CORSOrigins),
		redact:  privacy.NewRedactor(cfg.AuthToken),
		stats:   stats.New(opts.Version),
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
	s.trusted = s.newTransports(dialer.DialContext, tlsConfig)
	s.guarded = s.newTransports(s.guard.DialContext, tlsConfig)
	s.ws = wsproxy.New(wsproxy.Options{
		ReadLimit:        cfg.WebSocket.ReadLimit,
		IdleTimeout:      cfg.WebSocket.IdleTimeout,
		PingInterval:     cfg.WebSocket.PingInterval,
		HandshakeTimeout: cfg.WebSocket.HandshakeTimeout,
	})
	// Generic mode forwards any header not known to identify the client
	// (an arbitrary API may need it): the denylist, not an allowlist.
	s.generic = s.newRoute(privacy.New(privacy.Options{Fingerprint: cfg.ForwardSDKHeaders, Secret: cfg.AuthToken}),
		nil, s.newUpstream("generic", fallback.Mode(cfg.Transport), s.guarded))

	if s.presets, err = cfg.PresetSet(); err != nil {
		return nil, &config.SettingError{Setting: "presets", Msg: err.Error()}
	}
	s.routes = make(map[string]*presetRoute)
	for _, p := range s.presets.All() {
		pr, err := s.newPresetRoute(p)
		if err != nil {
			return nil, &config.SettingError{Setting: "presets", Msg: err.Error()}
		}
		s.routes[p.Name] = pr
		for _, alias := range p.Aliases {
			s.routes[alias] = pr
		}
	}
	if cfg.Dashboard {
		if s.dashboard, err = dashboard.New(s.dashboardInfo()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// dashboardInfo is what the page may show: presets and features, never a
// token, key or proxy address.
func (s *Server) dashboardInfo() dashboard.Info {
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
		},
	}
	for _, p := range s.presets.All() {
		pr := s.routes[p.Name]
		hosts := make([]string, len(pr.targets))
		for i, u := range pr.targets {
			hosts[i] = u.Host
		}
		info.Presets = append(info.Presets, dashboard.Preset{
			Name: p.Name, Aliases: p.Aliases, Title: p.Title, Hosts: hosts, ClientPath: p.ClientPath,
			Key: string(p.Key), Transport: string(pr.transport.Mode), Resume: p.Resume,
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

// newUpstream returns the transport chooser for a preset (or generic mode).
func (s *Server) newUpstream(name string, mode fallback.Mode, t transports) *fallback.Transport {
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
	s.stats.Route(name).Fallback(string(reason))
	if _, seen := s.warned.LoadOrStore(name+"/"+string(reason), struct{}{}); !seen {
		s.log.Warn("socket transport failed before sending; falling back to fetch",
			"preset", name, "reason", string(reason),
			"note", "logged once per preset and reason; each request line names its fallback")
	}
}

func (s *Server) newPresetRoute(p *preset.Preset) (*presetRoute, error) {
	pr := &presetRoute{p: p}
	for _, raw := range p.URLs() {
		u, err := preset.ParseBaseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("preset %q: %w", p.Name, err)
		}
		pr.targets = append(pr.targets, u)
	}
	mode := fallback.Mode(s.cfg.Transport)
	if p.Transport != "" {
		mode = fallback.Mode(p.Transport)
	}
	allow := append(append([]string{}, privacy.PresetHeaders...), p.Headers...)
	policy := privacy.New(privacy.Options{Allow: allow, Fingerprint: s.cfg.ForwardSDKHeaders, Secret: s.cfg.AuthToken})
	t := s.newUpstream(p.Name, mode, s.trusted)
	pr.route = *s.newRoute(policy, p.Defaults, t)
	if p.Resume && s.cfg.Gemini.Resume {
		// Only HTTP goes through the resume logic; WebSockets (Gemini Live)
		// use route.transport directly.
		pr.fwd.transport = s.newResume(p.Name, t)
	}
	return pr, nil
}

func (s *Server) newRoute(policy *privacy.Policy, defaults map[string]string, t *fallback.Transport) *route {
	return &route{policy: policy, transport: t, fwd: &forwarder{s: s, policy: policy, defaults: defaults, transport: t}}
}

// newResume wraps a preset's transport with the Gemini stream resume. Each
// resume is logged (reason, attempt, characters so far, never the text)
// and counted.
func (s *Server) newResume(name string, next http.RoundTripper) *resume.Transport {
	g := s.cfg.Gemini
	return &resume.Transport{Next: next, Options: resume.Options{
		MaxResumes:   g.MaxResumes,
		Delay:        g.ResumeDelay,
		IdleTimeout:  g.AttemptIdleTimeout,
		TotalTimeout: g.TotalTimeout,
		Prompts:      g.Prompts,
		MaxBody:      s.cfg.MaxBodyBytes,
		OnResume: func(_ *http.Request, reason string, attempt, chars int) {
			s.stats.Route(name).Resume()
			s.log.Info("gemini answer cut off: asking for the rest",
				"preset", name, "reason", reason, "attempt", attempt, "chars_so_far", chars)
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
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.Timeouts.ReadHeader,
		IdleTimeout:       s.cfg.Timeouts.ClientIdle,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
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
		"drain_timeout", s.cfg.Timeouts.Shutdown.String(), "websockets", s.ws.Open())
	drain, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Shutdown)
	defer cancel()
	// WebSockets are told at once (close 1001, going away): a realtime
	// session does not end by itself, and its client will reconnect.
	wsDone := make(chan struct{})
	go func() { s.ws.Shutdown(drain); close(wsDone) }()
	err := srv.Shutdown(drain)
	<-wsDone
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("drain timeout reached: closing the connections still open")
		srv.Close()
	}
	<-errc
	s.trusted.closeIdle()
	s.guarded.closeIdle()
	s.log.Info("stopped")
	return nil
}
