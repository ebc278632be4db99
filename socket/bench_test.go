package socket

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkWriteRequest writes a typical chat completion request: the
// header checks and the hand-written HTTP/1.1, without the network.
func BenchmarkWriteRequest(b *testing.B) {
	u, _ := url.Parse("https://api.openai.com/v1/chat/completions")
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":true}`
	h := http.Header{
		"Authorization": {"Bearer sk-proj-0123456789abcdef"},
		"Content-Type":  {"application/json"},
		"Accept":        {"text/event-stream"},
		"Openai-Beta":   {"assistants=v2"},
	}
	w := bufio.NewWriterSize(io.Discard, 4<<10)
	r := strings.NewReader(body)
	req := &http.Request{Method: "POST", URL: u, Header: h, ContentLength: int64(len(body))}
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		req.Body = io.NopCloser(r)
		if err := checkRequest(req); err != nil {
			b.Fatal(err)
		}
		if err := writeRequest(w, req); err != nil {
			b.Fatal(err)
		}
	}
}
