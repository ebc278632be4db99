package privacy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkFilter applies a preset policy to the headers an SDK in a
// browser behind a CDN would send.
func BenchmarkFilter(b *testing.B) {
	src := http.Header{
		"Authorization": {"Bearer sk-0123456789"}, "Content-Type": {"application/json"},
		"Accept": {"text/event-stream"}, "User-Agent": {"OpenAI/JS 4.0"}, "X-Stainless-Os": {"Linux"},
		"X-Stainless-Lang": {"js"}, "Origin": {"https://app.example"}, "Referer": {"https://app.example/"},
		"Cf-Connecting-Ip": {"203.0.113.9"}, "X-Forwarded-For": {"203.0.113.9"}, "Accept-Language": {"en"},
		"Sec-Fetch-Mode": {"cors"}, "Traceparent": {"00-0af7-01"},
	}
	p := New(Options{Allow: PresetHeaders, Secret: "operator-token-0123456789"})
	h := make(http.Header, len(src))
	b.ReportAllocs()
	for b.Loop() {
		for k, v := range src {
			h[k] = v
		}
		p.Filter(h)
	}
}

// BenchmarkClassifyRules classifies names that no table lists, so that
// every one goes through the family rules: the slow path.
func BenchmarkClassifyRules(b *testing.B) {
	names := []string{
		"X-Custom-Thing", "X-Client-Name", "X-Goog-User-Project", "Helicone-Auth", "X-Request-Timeout",
		"X-Real-Client-Addr", "X-Geo-Country", "X-Ms-Client-Request-Id", "X-Operamini-Phone-Ua",
		"X-Some-Very-Long-Application-Specific-Header-Name", "X_Trueclientip", "Openai-Organization",
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			Classify(n)
		}
	}
}

// BenchmarkConnectionNames: a request whose Connection header lists n
// names, each also sent as a header, filtered by the denylist (generic
// mode). The time per name must stay flat as n grows: linear, not
// quadratic.
func BenchmarkConnectionNames(b *testing.B) {
	for _, n := range []int{30, 300, 3000, 30000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			src := make(http.Header, n+1)
			listed := make([]string, n)
			for i := range n {
				name := fmt.Sprintf("X-Hop-%d", i)
				listed[i] = name
				src[name] = []string{"v"}
			}
			src["Connection"] = []string{strings.Join(listed, ", ")}
			p := New(Options{})
			b.ReportAllocs()
			for b.Loop() {
				p.Outbound(src)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n+1), "ns/header")
		})
	}
}

// BenchmarkRedactorString redacts the strings of a request's log line, none
// of which holds a secret: the common case, paid on every line.
func BenchmarkRedactorString(b *testing.B) {
	r := NewRedactor("operator-token-abcdef0123456789")
	values := []string{"gateway", "POST", "alice", "gpt-4o-mini", "openai", "openai#2", "gpt-4o-mini-2024-07-18", "usd", "socket", "upstream failed mid-response", "bench-1", "BENCH_PROVIDER_KEY"}
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range values {
			if r.String(v) != v {
				b.Fatal("changed")
			}
		}
	}
}

// BenchmarkCleanResponse cleans a provider's usual response headers.
func BenchmarkCleanResponse(b *testing.B) {
	src := http.Header{
		"Content-Type": {"application/json"}, "Date": {"Mon, 23 Nov 2026 04:20:54 GMT"},
		"Openai-Processing-Ms": {"312"}, "X-Request-Id": {"req_0123"}, "Alt-Svc": {`h3=":443"`},
		"Cf-Ray": {"8f0-AMS"}, "Set-Cookie": {"__cf_bm=abc"}, "Strict-Transport-Security": {"max-age=31536000"},
		"X-Ratelimit-Remaining-Requests": {"99"},
	}
	h := make(http.Header, len(src))
	b.ReportAllocs()
	for b.Loop() {
		for k, v := range src {
			h[k] = v
		}
		CleanResponse(h, false)
	}
}
