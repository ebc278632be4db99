package stats

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is what GET /stats returns.
type Snapshot struct {
	Version  string                `json:"version"`
	UptimeS  int64                 `json:"uptime_s"`
	WindowS  int64                 `json:"latency_window_s"`
	Totals   Counts                `json:"totals"`
	Routes   map[string]RouteStats `json:"routes"`
	Features map[string]any        `json:"features,omitempty"`
	// Usage is the gateway's usage by client key, model, provider and
	// provider key; Limited its refusals by limit.
	Usage   []UsageRow `json:"usage,omitempty"`
	Limited []LimitRow `json:"limited,omitempty"`
}

// Counts are the counters of a route, or their sum.
type Counts struct {
	Requests       int64            `json:"requests"`
	Responses      map[string]int64 `json:"responses"`
	UpstreamErrors int64            `json:"upstream_errors"`
	// Failed counts each request that failed once: answered 5xx, or broken
	// off by the upstream after its status went out.
	Failed         int64            `json:"failed"`
	Fallbacks      map[string]int64 `json:"fallbacks"`
	GeminiResumes  int64            `json:"gemini_resumes"`
	BytesIn        int64            `json:"bytes_in"`
	BytesOut       int64            `json:"bytes_out"`
	OpenStreams    int64            `json:"open_streams"`
	OpenWebSockets int64            `json:"open_websockets"`
}

// RouteStats is one route's counters and latencies.
type RouteStats struct {
	Counts
	FirstByte Percentiles `json:"latency_first_byte"`
	Total     Percentiles `json:"latency_total"`
}

func newCounts() Counts {
	return Counts{Responses: make(map[string]int64), Fallbacks: make(map[string]int64)}
}

func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.UpstreamErrors += o.UpstreamErrors
	c.Failed += o.Failed
	c.GeminiResumes += o.GeminiResumes
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	c.OpenStreams += o.OpenStreams
	c.OpenWebSockets += o.OpenWebSockets
	for k, v := range o.Responses {
		c.Responses[k] += v
	}
	for k, v := range o.Fallbacks {
		c.Fallbacks[k] += v
	}
}

func (r *Route) counts() Counts {
	c := newCounts()
	c.Requests = r.requests.Load()
	for i := range r.status {
		if n := r.status[i].Load(); n > 0 {
			c.Responses[classNames[i]] = n
		}
	}
	c.UpstreamErrors = r.upstreamErrors.Load()
	c.Failed = r.failed.Load()
	c.Fallbacks = r.fallbackCounts()
	c.GeminiResumes = r.resumes.Load()
	c.BytesIn = r.bytesIn.Load()
	c.BytesOut = r.bytesOut.Load()
	c.OpenStreams = r.openStreams.Load()
	c.OpenWebSockets = r.openWebSockets.Load()
	return c
}

// Snapshot returns the current counters.
func (s *Stats) Snapshot() Snapshot {
	now := time.Now()
	snap := Snapshot{
		Version: s.version,
		UptimeS: int64(now.Sub(s.started).Seconds()),
		WindowS: int64(Window.Seconds()),
		Totals:  newCounts(),
		Routes:  make(map[string]RouteStats),
	}
	for _, r := range s.routeList() {
		c := r.counts()
		snap.Totals.add(c)
		snap.Routes[r.name] = RouteStats{Counts: c, FirstByte: r.firstByte.percentiles(now), Total: r.total.percentiles(now)}
	}
	snap.Usage, snap.Limited = s.UsageRows(), s.LimitRows()
	return snap
}

// Collector returns a Prometheus collector over the same counters: they are
// read at scrape time, so nothing is counted twice.
func (s *Stats) Collector() prometheus.Collector { return &collector{s: s} }

var (
	descRequests       = prometheus.NewDesc("llmproxy_requests_total", "Requests received, by route (preset name or generic/<scheme>).", []string{"route"}, nil)
	descResponses      = prometheus.NewDesc("llmproxy_responses_total", "Responses by status class (1xx…5xx, 499 when the client left).", []string{"route", "class"}, nil)
	descUpstreamErrors = prometheus.NewDesc("llmproxy_upstream_errors_total", "Upstream failures: unreachable, timed out, or broken off mid-response.", []string{"route"}, nil)
	descFailed         = prometheus.NewDesc("llmproxy_failed_requests_total", "Requests that failed, each once: answered 5xx, or broken off by the upstream.", []string{"route"}, nil)
	descFallbacks      = prometheus.NewDesc("llmproxy_fallbacks_total", "Requests that fell back from the socket transport to fetch, by reason.", []string{"route", "reason"}, nil)
	descResumes        = prometheus.NewDesc("llmproxy_gemini_resumes_total", "Gemini streams resumed after being cut off.", []string{"route"}, nil)
	descBytes          = prometheus.NewDesc("llmproxy_bytes_total", "Body bytes relayed, by direction (in: from clients, out: to clients).", []string{"route", "direction"}, nil)
	descStreams        = prometheus.NewDesc("llmproxy_open_streams", "Streaming responses in flight.", []string{"route"}, nil)
	descWebSockets     = prometheus.NewDesc("llmproxy_open_websockets", "WebSockets being relayed.", []string{"route"}, nil)
	descFirstByte      = prometheus.NewDesc("llmproxy_first_byte_seconds", "Time from request to the first response body byte sent to the client.", []string{"route"}, nil)
	descDuration       = prometheus.NewDesc("llmproxy_request_duration_seconds", "Time from request to the end of the response.", []string{"route"}, nil)
	descUptime         = prometheus.NewDesc("llmproxy_uptime_seconds", "Seconds since the process started.", nil, nil)
	descBuild          = prometheus.NewDesc("llmproxy_build_info", "Always 1; the version is a label.", []string{"version"}, nil)
)

type collector struct{ s *Stats }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descResponses, descUpstreamErrors, descFailed, descFallbacks, descResumes,
		descBytes, descStreams, descWebSockets, descFirstByte, descDuration, descUptime, descBuild,
		descGatewayRequests, descTokens, descCost, descLimited} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, r := range c.s.routeList() {
		counter(descRequests, r.requests.Load(), r.name)
		for i := range r.status {
			counter(descResponses, r.status[i].Load(), r.name, classNames[i])
		}
		counter(descUpstreamErrors, r.upstreamErrors.Load(), r.name)
		counter(descFailed, r.failed.Load(), r.name)
		for reason, n := range r.fallbackCounts() {
			counter(descFallbacks, n, r.name, reason)
		}
		counter(descResumes, r.resumes.Load(), r.name)
		counter(descBytes, r.bytesIn.Load(), r.name, "in")
		counter(descBytes, r.bytesOut.Load(), r.name, "out")
		gauge(descStreams, r.openStreams.Load(), r.name)
		gauge(descWebSockets, r.openWebSockets.Load(), r.name)
		for d, l := range map[*prometheus.Desc]*latency{descFirstByte: &r.firstByte, descDuration: &r.total} {
			count, sum, buckets := l.cumulative()
			ch <- prometheus.MustNewConstHistogram(d, count, sum, buckets, r.name)
		}
	}
	c.collectUsage(ch)
	ch <- prometheus.MustNewConstMetric(descUptime, prometheus.GaugeValue, time.Since(c.s.started).Seconds())
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, c.s.version)
}
