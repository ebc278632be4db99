package redisstate

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are what Collector reports.
type counters struct {
	fallbacks, refused, errors, roundTrips atomic.Int64
	published, applied, dropped            atomic.Int64
}

var (
	descUp = prometheus.NewDesc("llmproxy_redis_up",
		"1 while Redis answers and limits, key health and balancing are shared; 0 while this replica uses its own counters.", nil, nil)
	descFallbacks = prometheus.NewDesc("llmproxy_redis_fallbacks_total",
		"Limited client-key requests admitted on this replica's own counters because Redis did not answer.", nil, nil)
	descRefused = prometheus.NewDesc("llmproxy_redis_refused_total",
		"Limited client-key requests refused because Redis did not answer (redis_fail: closed).", nil, nil)
	descErrors = prometheus.NewDesc("llmproxy_redis_errors_total",
		"Redis operations that failed.", nil, nil)
	descRoundTrips = prometheus.NewDesc("llmproxy_redis_round_trips_total",
		"Round trips to Redis (a command or a pipeline).", nil, nil)
	descEvents = prometheus.NewDesc("llmproxy_redis_health_events_total",
		"Provider-key and breaker changes shared through Redis: published by this replica, applied from others, or dropped (Redis away, queue full).",
		[]string{"direction"}, nil)
)

// Collector returns the Prometheus collector of the shared state's
// metrics, for /metrics.
func (s *Shared) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Shared }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descFallbacks, descRefused, descErrors, descRoundTrips, descEvents} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s, m := c.s, &c.s.m
	up := 0.0
	if s.up.Load() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
	counter := func(d *prometheus.Desc, v *atomic.Int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v.Load()), labels...)
	}
	counter(descFallbacks, &m.fallbacks)
	counter(descRefused, &m.refused)
	counter(descErrors, &m.errors)
	counter(descRoundTrips, &m.roundTrips)
	counter(descEvents, &m.published, "published")
	counter(descEvents, &m.applied, "applied")
	counter(descEvents, &m.dropped, "dropped")
}
