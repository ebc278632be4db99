// Package stats counts what the proxy does, in memory, per route: a preset
// name, or "generic/<scheme>" for generic mode (never the host). It holds no
// path beyond the preset, no query, key, token or prompt text. /stats reads
// a Snapshot as JSON; /metrics reads the same counters through a Prometheus
// collector.
package stats

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is the set of per-route counters. The zero value is not usable; use
// New.
type Stats struct {
	started time.Time
	version string

	mu     sync.RWMutex
	routes map[string]*Route

	usage usageTable // the gateway's, by client key, model, provider and key
}

// New returns empty stats for a process of the given version.
func New(version string) *Stats {
	return &Stats{started: time.Now(), version: version, routes: make(map[string]*Route)}
}

// Route returns the counters of a route, creating them on first use.
func (s *Stats) Route(name string) *Route {
	s.mu.RLock()
	r := s.routes[name]
	s.mu.RUnlock()
	if r != nil {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r = s.routes[name]; r == nil {
		r = &Route{name: name, fallbacks: make(map[string]int64)}
		s.routes[name] = r
	}
	return r
}

func (s *Stats) routeList() []*Route {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := make([]*Route, 0, len(s.routes))
	for _, r := range s.routes {
		list = append(list, r)
	}
	slices.SortFunc(list, func(a, b *Route) int {
		if a.name < b.name {
			return -1
		}
		return 1
	})
	return list
}

// Status classes counted per route. 499 (client closed) has its own.
const (
	class1xx = iota
	class2xx
	class3xx
	class4xx
	class5xx
	classClientClosed
	numClasses
)

var classNames = [numClasses]string{"1xx", "2xx", "3xx", "4xx", "5xx", "499"}

// Route holds one route's counters. Every method is safe for concurrent use.
type Route struct {
	name           string
	requests       atomic.Int64
	status         [numClasses]atomic.Int64
	upstreamErrors atomic.Int64
	failed         atomic.Int64 // answered 5xx, or broken off by the upstream: each request once
	bytesIn        atomic.Int64
	bytesOut       atomic.Int64
	openStreams    atomic.Int64
	openWebSockets atomic.Int64
	resumes        atomic.Int64

	mu        sync.Mutex
	fallbacks map[string]int64

	firstByte latency
	total     latency
}

// Request counts a request arriving.
func (r *Route) Request() { r.requests.Add(1) }

// Done records a request finished at the time at: its status (499 when the
// client left), bytes each way, time to first byte (zero when none was
// sent) and total time, and whether the upstream failed (unreachable,
// timed out, or broke off mid-response).
func (r *Route) Done(at time.Time, status int, bytesIn, bytesOut int64, firstByte, total time.Duration, upstreamFailed bool) {
	switch {
	case status == 499:
		r.status[classClientClosed].Add(1)
	case status >= 100 && status < 600:
		r.status[status/100-1].Add(1)
	}
	r.bytesIn.Add(bytesIn)
	r.bytesOut.Add(bytesOut)
	if upstreamFailed {
		r.upstreamErrors.Add(1)
	}
	if upstreamFailed || status >= 500 && status < 600 {
		r.failed.Add(1)
	}
	if firstByte > 0 {
		r.firstByte.observe(at, firstByte)
	}
	r.total.observe(at, total)
}

// Fallback counts a fallback from socket to fetch, by reason.
func (r *Route) Fallback(reason string) {
	r.mu.Lock()
	r.fallbacks[reason]++
	r.mu.Unlock()
}

// Resume counts a Gemini stream resume.
func (r *Route) Resume() { r.resumes.Add(1) }

// StreamOpened and StreamClosed track streaming responses in flight.
func (r *Route) StreamOpened() { r.openStreams.Add(1) }
func (r *Route) StreamClosed() { r.openStreams.Add(-1) }

// WebSocketOpened and WebSocketClosed track relayed WebSockets.
func (r *Route) WebSocketOpened() { r.openWebSockets.Add(1) }
func (r *Route) WebSocketClosed() { r.openWebSockets.Add(-1) }

func (r *Route) fallbackCounts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.fallbacks))
	for k, v := range r.fallbacks {
		out[k] = v
	}
	return out
}
