package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/stats"
)

// metricsHandler serves /metrics in the Prometheus text format: llmproxy's
// counters, the providers' key health, plus the Go runtime and process
// collectors, from a registry of this server's own.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		s.stats.Collector(),
		&healthCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, c := range s.extra {
		reg.MustRegister(c)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// statsDoc is what GET /stats returns: the counters, and each provider's
// keys and breaker.
type statsDoc struct {
	stats.Snapshot
	Providers []gateway.ProviderHealth `json:"providers,omitempty"`
}

// serveStats answers /stats (JSON) and /metrics (Prometheus), once the
// caller is authorised.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request, which string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, typeMethod, "use GET")
		return
	}
	if which == "metrics" {
		s.metrics.ServeHTTP(w, r)
		return
	}
	writeJSON(w, http.StatusOK, statsDoc{Snapshot: s.stats.Snapshot(), Providers: s.snap.Load().HealthReport(time.Now())})
}

var (
	descKeyUp = prometheus.NewDesc("llmproxy_provider_key_up",
		"1 when a provider key is usable, 0 while it cools down or is disabled.", []string{"provider", "provider_key"}, nil)
	descKeyState = prometheus.NewDesc("llmproxy_provider_key_state",
		"A provider key's state (ok, cooling, disabled): 1 for the current one.", []string{"provider", "provider_key", "state"}, nil)
	descKeyRequests = prometheus.NewDesc("llmproxy_provider_key_attempts_total",
		"Attempts made with a provider key.", []string{"provider", "provider_key"}, nil)
	descKeyFailures = prometheus.NewDesc("llmproxy_provider_key_failures_total",
		"Attempts that failed because of the key (429, 401/403, exhausted quota).", []string{"provider", "provider_key"}, nil)
	descBreakerOpen = prometheus.NewDesc("llmproxy_provider_breaker_open",
		"1 while a provider's circuit breaker is open (cooled after repeated failures).", []string{"provider"}, nil)
)

// healthCollector exports the providers' key health and breakers.
type healthCollector struct{ s *Server }

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descKeyUp, descKeyState, descKeyRequests, descKeyFailures, descBreakerOpen} {
		ch <- d
	}
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.s.snap.Load().HealthReport(time.Now()) {
		open := 0.0
		if p.Breaker == string(gateway.BreakerOpen) {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(descBreakerOpen, prometheus.GaugeValue, open, p.Name)
		for _, k := range p.Keys {
			up := 0.0
			if k.State == string(gateway.KeyOK) {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descKeyUp, prometheus.GaugeValue, up, p.Name, k.Name)
			for _, st := range []gateway.KeyState{gateway.KeyOK, gateway.KeyCooling, gateway.KeyDisabled} {
				v := 0.0
				if k.State == string(st) {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descKeyState, prometheus.GaugeValue, v, p.Name, k.Name, string(st))
			}
			ch <- prometheus.MustNewConstMetric(descKeyRequests, prometheus.CounterValue, float64(k.Requests), p.Name, k.Name)
			ch <- prometheus.MustNewConstMetric(descKeyFailures, prometheus.CounterValue, float64(k.Failures), p.Name, k.Name)
		}
	}
}
