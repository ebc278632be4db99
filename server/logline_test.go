package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/privacy"
)

// recordingHandler keeps what reaches it through Handle; attrsRecorder adds
// HandleAttrs, as cmd/llmproxy's JSON handler takes the request line.
type recordingHandler struct {
	viaAttr [][]slog.Attr
	viaRec  [][]slog.Attr
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var attrs []slog.Attr
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	h.viaRec = append(h.viaRec, attrs)
	return nil
}

type attrsRecorder struct{ *recordingHandler }

func (h attrsRecorder) HandleAttrs(_ time.Time, _ slog.Level, msg string, attrs []slog.Attr) error {
	if msg != "request" {
		panic(msg)
	}
	h.viaAttr = append(h.viaAttr, slices.Clone(attrs))
	return nil
}

// The request line reaches a handler that takes attributes as a slice
// through HandleAttrs, and any other handler as a record, with the same
// attributes either way; the pooled slice is cleared for the next line.
func TestRequestLineHandlers(t *testing.T) {
	t.Parallel()
	red := privacy.NewRedactor(testToken)
	line := func(h slog.Handler, route string) {
		s := &Server{log: slog.New(h), redact: red}
		r := httptest.NewRequest("POST", "/openai/v1/chat/completions", nil)
		w := newLogWriter(httptest.NewRecorder())
		w.route, w.status = route, http.StatusOK
		w.report.Transport = "socket"
		w.bytesOut = 1234
		s.logRequest(w, r)
	}
	direct := &recordingHandler{}
	plain := &recordingHandler{}
	line(attrsRecorder{direct}, "openai")
	line(attrsRecorder{direct}, "anthropic")
	line(plain, "openai")
	if len(direct.viaRec) != 0 || len(direct.viaAttr) != 2 || len(plain.viaRec) != 1 {
		t.Fatalf("HandleAttrs %d, Handle %d and %d times", len(direct.viaAttr), len(direct.viaRec), len(plain.viaRec))
	}
	values := func(attrs []slog.Attr) map[string]string {
		m := map[string]string{}
		for _, a := range attrs {
			if a.Key != "duration_ms" {
				m[a.Key] = a.Value.String()
			}
		}
		return m
	}
	got, want := values(direct.viaAttr[0]), values(plain.viaRec[0])
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("HandleAttrs got %v, Handle %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: HandleAttrs %q, Handle %q", k, got[k], v)
		}
	}
	if got["route"] != "openai" || got["transport"] != "socket" || got["status"] != "200" {
		t.Errorf("request line %v", got)
	}
	if r := values(direct.viaAttr[1])["route"]; r != "anthropic" {
		t.Errorf("second line's route %q", r)
	}
	ap := lineAttrs.Get().(*[]slog.Attr)
	defer lineAttrs.Put(ap)
	for _, a := range (*ap)[:cap(*ap)] {
		if a.Key != "" {
			t.Fatalf("a pooled attribute slice still holds %q", a.Key)
		}
	}
}

// A transport may read the body once more after a stream was handed off
// (net/http's looks past Content-Length after the last byte): release and
// that read do not race, and the read gets EOF without counting.
func TestCountingBodyReleaseWhileRead(t *testing.T) {
	t.Parallel()
	for range 50 {
		var n atomic.Int64
		var bodyErr atomic.Pointer[error]
		b := &countingBody{rc: io.NopCloser(strings.NewReader("hello")), n: &n, err: &bodyErr}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 8)
			for range 100 {
				b.Read(buf)
			}
		}()
		b.release()
		<-done
		if got, err := b.Read(make([]byte, 8)); got != 0 || err != io.EOF {
			t.Fatalf("after release: %d, %v", got, err)
		}
		if c := n.Load(); c != 0 && c != 5 {
			t.Fatalf("counted %d bytes of 5", c)
		}
	}
}
