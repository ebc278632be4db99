package translate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/sse"
)

// benchStream is a chat stream as OpenAI sends it: a role chunk, n text
// chunks of a few tokens, the finish chunk, the usage chunk and [DONE].
func benchStream(n int) ([]byte, int) {
	var b bytes.Buffer
	head := `{"id":"chatcmpl-AbCdEf0123456789","object":"chat.completion.chunk","created":1767225600,"model":"glm-4.7","system_fingerprint":"fp_0123456789","choices":[`
	fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n", head)
	for i := range n {
		fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{\"content\":\" token%d, \\\"quoted\\\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n", head, i)
	}
	fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n", head)
	fmt.Fprintf(&b, "data: %s],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", head, 3*n, 20+3*n)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes(), n + 4
}

// BenchmarkStream compares the CPU per upstream event of a translated
// stream with relaying the same chat stream: as raw bytes (what the
// forwarder does) and event by event (what usage metering does).
func BenchmarkStream(b *testing.B) {
	data, events := benchStream(200)
	var cpu0 time.Duration
	// ns/event is wall time; cpu-ns/event is the process's CPU time
	// (getrusage), which other load on a shared machine does not inflate.
	perEvent := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*events), "cpu-ns/event")
	}
	start := func() { cpu0 = cpuTime() }
	b.Run("translate", func(b *testing.B) {
		next := &benchNext{data: data}
		tr := &Transport{Next: next}
		buf := make([]byte, 32<<10)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		start()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://p.test/v1/responses", strings.NewReader(`{"model":"glm-4.7","input":"Tell me a story.","stream":true}`))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, onlyReader{resp.Body}, buf); err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
		perEvent(b)
	})
	b.Run("relay-sse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		start()
		for b.Loop() {
			r := sse.NewReader(bytes.NewReader(data))
			for {
				ev, err := r.Next()
				if err != nil {
					break
				}
				io.Discard.Write(ev.Raw)
			}
		}
		perEvent(b)
	})
	b.Run("relay-bytes", func(b *testing.B) {
		buf := make([]byte, 32<<10)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		start()
		for b.Loop() {
			io.CopyBuffer(io.Discard, onlyReader{bytes.NewReader(data)}, buf)
		}
		perEvent(b)
	})
}

// BenchmarkUnary is one non-streaming answer of 200 chunks' worth of text.
func BenchmarkUnary(b *testing.B) {
	var text strings.Builder
	for i := range 200 {
		fmt.Fprintf(&text, " token%d,", i)
	}
	data := []byte(`{"id":"c","object":"chat.completion","model":"glm-4.7","choices":[{"index":0,"message":{"role":"assistant","content":"` + text.String() + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":600,"total_tokens":620}}`)
	next := &benchNext{data: data, ctype: "application/json"}
	tr := &Transport{Next: next}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://p.test/v1/responses", strings.NewReader(`{"model":"glm-4.7","input":"Tell me a story."}`))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// benchNext answers every request with the same bytes and records nothing.
type benchNext struct {
	data  []byte
	ctype string
}

func (n *benchNext) RoundTrip(req *http.Request) (*http.Response, error) {
	ct := n.ctype
	if ct == "" {
		ct = "text/event-stream"
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {ct}},
		Body: io.NopCloser(bytes.NewReader(n.data)), ContentLength: -1, Request: req}, nil
}

// onlyReader hides WriterTo so that io.Copy reads as a server would.
type onlyReader struct{ io.Reader }
