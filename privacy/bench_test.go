package privacy

import (
	"net/http"
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
