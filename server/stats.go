package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves /metrics in the Prometheus text format: llmproxy's
// counters plus the Go runtime and process collectors, from a registry of
// this server's own.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		s.stats.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
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
	writeJSON(w, http.StatusOK, s.stats.Snapshot())
}
