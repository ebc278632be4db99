package stats

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/meter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCountsAndPercentiles(t *testing.T) {
	t.Parallel()
	s := New("v1")
	r := s.Route("openai")
	var wg sync.WaitGroup
	for i := 1; i <= 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Request()
			status := 200
			if i%10 == 0 {
				status = 502
			}
			r.Done(time.Now(), status, 10, 100, time.Duration(i)*time.Millisecond, time.Duration(i)*10*time.Millisecond, status == 502)
		}()
	}
	wg.Wait()
	r.Fallback("tls")
	r.Fallback("tls")
	r.Resume()
	s.Route("generic/https").Done(time.Now(), 499, 0, 0, 0, time.Second, false)

	snap := s.Snapshot()
	o := snap.Routes["openai"]
	if o.Requests != 100 || o.Responses["2xx"] != 90 || o.Responses["5xx"] != 10 || o.UpstreamErrors != 10 {
		t.Errorf("counts: %+v", o.Counts)
	}
	if o.BytesIn != 1000 || o.BytesOut != 10000 || o.Fallbacks["tls"] != 2 || o.GeminiResumes != 1 {
		t.Errorf("counts: %+v", o.Counts)
	}
	// Nearest rank over 1..100 ms.
	if o.FirstByte.P50 != 50 || o.FirstByte.P90 != 90 || o.FirstByte.P99 != 99 || o.FirstByte.Samples != 100 {
		t.Errorf("first byte percentiles: %+v", o.FirstByte)
	}
	if o.Total.P50 != 500 {
		t.Errorf("total p50 = %v", o.Total.P50)
	}
	if snap.Totals.Requests != 100 || snap.Totals.Responses["499"] != 1 || snap.Version != "v1" {
		t.Errorf("totals: %+v", snap.Totals)
	}
}

func TestWindowForgetsOldSamples(t *testing.T) {
	t.Parallel()
	var l latency
	for i := range windowSize + 10 {
		l.observe(time.Now(), time.Duration(i)*time.Millisecond)
	}
	p := l.percentiles(time.Now())
	if p.Samples != windowSize {
		t.Errorf("samples = %d, want the last %d", p.Samples, windowSize)
	}
	if p := l.percentiles(time.Now().Add(Window + time.Second)); p.Samples != 0 {
		t.Errorf("samples older than the window still counted: %+v", p)
	}
}

func TestPrometheusCollector(t *testing.T) {
	t.Parallel()
	s := New("v2")
	r := s.Route("claude")
	r.Request()
	r.Done(time.Now(), 200, 5, 7, 30*time.Millisecond, 2*time.Second, false)
	r.Fallback("dns")
	r.StreamOpened()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	if problems, err := testutil.CollectAndLint(s.Collector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	want := `
# HELP llmproxy_fallbacks_total Requests that fell back from the socket transport to fetch, by reason.
# TYPE llmproxy_fallbacks_total counter
llmproxy_fallbacks_total{reason="dns",route="claude"} 1
# HELP llmproxy_open_streams Streaming responses in flight.
# TYPE llmproxy_open_streams gauge
llmproxy_open_streams{route="claude"} 1
# HELP llmproxy_requests_total Requests received, by route (preset name or generic/<scheme>).
# TYPE llmproxy_requests_total counter
llmproxy_requests_total{route="claude"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "llmproxy_fallbacks_total", "llmproxy_open_streams", "llmproxy_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "llmproxy_request_duration_seconds"); err != nil || n != 1 {
		t.Errorf("duration histogram: %d, %v", n, err)
	}
}

// A model name is the client's word and may hold bytes that are not UTF-8
// (a percent-escape in a Gemini path): /metrics keeps answering, with the
// name's bad bytes replaced, and /stats shows the same row.
func TestUsageOfAModelNameThatIsNotUTF8(t *testing.T) {
	t.Parallel()
	s := New("test")
	s.Usage("alice", "gemini-\xff", "google", "GEMINI_1", meter.Usage{Input: 3, Output: 4}, 0, "")
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	rows := s.UsageRows()
	if len(rows) != 1 || rows[0].Model != "gemini-\uFFFD" {
		t.Errorf("rows %+v, want one for gemini-\\uFFFD", rows)
	}
}

// Each failed request counts once as failed: answered 5xx by llmproxy
// (the upstream unreachable: an upstream error too), answered 5xx by the
// upstream, or broken off by the upstream after a 200.
func TestFailedCountsEachRequestOnce(t *testing.T) {
	t.Parallel()
	s := New("test")
	r := s.Route("openai")
	now := time.Now()
	r.Done(now, 502, 0, 0, 0, time.Millisecond, true)  // unreachable
	r.Done(now, 503, 0, 0, 0, time.Millisecond, false) // the upstream's own 503
	r.Done(now, 200, 0, 0, 0, time.Millisecond, true)  // broken off mid-stream
	r.Done(now, 200, 0, 0, 0, time.Millisecond, false)
	r.Done(now, 429, 0, 0, 0, time.Millisecond, false)
	c := s.Snapshot().Routes["openai"]
	if c.Failed != 3 || c.UpstreamErrors != 2 {
		t.Errorf("failed %d, upstream errors %d; want 3 and 2", c.Failed, c.UpstreamErrors)
	}
	want := `# HELP llmproxy_failed_requests_total Requests that failed, each once: answered 5xx, or broken off by the upstream.
# TYPE llmproxy_failed_requests_total counter
llmproxy_failed_requests_total{route="openai"} 3
`
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want), "llmproxy_failed_requests_total"); err != nil {
		t.Error(err)
	}
}
