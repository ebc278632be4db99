package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmproxy/llmproxy/privacy"
)

// BenchmarkRequestLogLine is the access log's cost per request: one JSON
// line through the redacting handler, as the command line sets it up.
func BenchmarkRequestLogLine(b *testing.B) {
	red := privacy.NewRedactor(testToken)
	s := &Server{log: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: red.ReplaceAttr})), redact: red}
	r := httptest.NewRequest("POST", "/openai/v1/chat/completions", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := newLogWriter(httptest.NewRecorder())
		w.route, w.status = "openai", http.StatusOK
		w.report.Transport = "socket"
		w.bytesOut = 1234
		s.logRequest(w, r)
	}
}
