package stats

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Window is how far back the percentiles of /stats look.
const Window = 5 * time.Minute

// windowSize bounds the samples kept per route and measure: the window is
// the last five minutes or the last windowSize samples, whichever is less.
const windowSize = 1024

// bucketBounds are the Prometheus histogram buckets, in seconds: LLM
// latencies run from milliseconds to many minutes.
var bucketBounds = [...]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// latency records durations twice: in a ring of recent samples for the
// sliding-window percentiles, and in cumulative buckets for Prometheus.
type latency struct {
	mu      sync.Mutex
	samples []sample // ring, allocated on first use
	next    int

	count   atomic.Uint64
	sumNano atomic.Int64
	buckets [len(bucketBounds)]atomic.Uint64
}

type sample struct {
	at time.Time
	d  time.Duration
}

func (l *latency) observe(now time.Time, d time.Duration) {
	l.mu.Lock()
	if l.samples == nil {
		l.samples = make([]sample, 0, windowSize)
	}
	if len(l.samples) < windowSize {
		l.samples = append(l.samples, sample{now, d})
	} else {
		l.samples[l.next] = sample{now, d}
		l.next = (l.next + 1) % windowSize
	}
	l.mu.Unlock()

	l.count.Add(1)
	l.sumNano.Add(int64(d))
	secs := d.Seconds()
	for i, bound := range bucketBounds {
		if secs <= bound {
			l.buckets[i].Add(1)
			break
		}
	}
}

// Percentiles are latencies in milliseconds over the window.
type Percentiles struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
}

func (l *latency) percentiles(now time.Time) Percentiles {
	l.mu.Lock()
	ds := make([]time.Duration, 0, len(l.samples))
	for _, s := range l.samples {
		if now.Sub(s.at) <= Window {
			ds = append(ds, s.d)
		}
	}
	l.mu.Unlock()
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 { // nearest rank: the ceil(q·n)-th smallest
		i := max(int(math.Ceil(q*float64(len(ds))))-1, 0)
		return float64(ds[i].Microseconds()) / 1000
	}
	return Percentiles{Samples: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99)}
}

// cumulative returns the Prometheus view: count, sum in seconds, and the
// cumulative count at each bucket bound.
func (l *latency) cumulative() (uint64, float64, map[float64]uint64) {
	buckets := make(map[float64]uint64, len(bucketBounds))
	var running uint64
	for i, bound := range bucketBounds {
		running += l.buckets[i].Load()
		buckets[bound] = running
	}
	return l.count.Load(), time.Duration(l.sumNano.Load()).Seconds(), buckets
}
