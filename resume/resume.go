// Package resume makes a Gemini answer that was cut off come back whole.
//
// Gemini often ends a long streamed answer early: the stream stops with no
// finishReason, or with an abnormal one (OTHER, MALFORMED_FUNCTION_CALL, …),
// or with STOP after only thinking. Transport relays the chunks as they
// arrive but holds back any abnormal ending, asks the model for the rest
// (the original request plus a model turn with the visible answer so far and
// a user turn asking to continue, in the answer's language) and stitches the
// continuation into the same stream: a repeated tail is dropped, thoughts
// before the answer resumes are dropped, token counts add up. The client
// sees one stream with one ending.
package resume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/replay"
)

var _ http.RoundTripper = (*Transport)(nil)

// Options tune the resume logic. Zero fields take the defaults named.
type Options struct {
	// MaxResumes bounds the continuations of one answer. Default 5.
	MaxResumes int
	// Delay is the pause before each continuation. Default 500ms.
	Delay time.Duration
	// IdleTimeout cuts an attempt that sends nothing for this long, so that
	// a stalled stream is resumed rather than waited on. Default 2m.
	IdleTimeout time.Duration
	// TotalTimeout: after this long since the request, a cut answer ends
	// with an error event instead of another continuation. A stream that
	// keeps flowing is never cut by it. Default 30m.
	TotalTimeout time.Duration
	// Prompts are the continuation requests by language (zh, en, ja, ko,
	// es, fr, de, ru, default); missing ones come from DefaultPrompts.
	Prompts map[string]string
	// MaxBody bounds the request body kept for continuations. Default 32 MiB.
	MaxBody int64
	// OnResume is called before each continuation with its reason, its
	// number (1 for the first) and the visible characters the client has.
	// It never sees the text.
	OnResume func(req *http.Request, reason string, attempt, chars int)
}

// Transport wraps the transport to Gemini with the resume logic, for
// streamGenerateContent (SSE with alt=sse, the JSON-array stream without)
// and generateContent. Anything else passes straight to Next.
type Transport struct {
	Next http.RoundTripper
	Options
}

func (t *Transport) opts() Options {
	o := t.Options
	if o.MaxResumes <= 0 {
		o.MaxResumes = 5
	}
	if o.Delay <= 0 {
		o.Delay = 500 * time.Millisecond
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.TotalTimeout <= 0 {
		o.TotalTimeout = 30 * time.Minute
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 32 << 20
	}
	return o
}

func (t *Transport) prompt(lang string) string {
	for _, l := range []string{lang, "default"} {
		if p := t.Prompts[l]; p != "" {
			return p
		}
		if p := DefaultPrompts[l]; p != "" {
			return p
		}
	}
	return DefaultPrompts["default"]
}

// kindOf says whether and how a request is handled.
func kindOf(req *http.Request) (framing, bool) {
	if req.Method != http.MethodPost {
		return 0, false
	}
	switch {
	case strings.HasSuffix(req.URL.Path, ":streamGenerateContent"):
		if req.URL.Query().Get("alt") == "sse" {
			return sseFraming, true
		}
		return array, true
	case strings.HasSuffix(req.URL.Path, ":generateContent"):
		return unary, true
	}
	return 0, false
}

// RoundTrip sends req and, for generation requests answered with 200,
// returns a response whose body resumes a cut-off answer.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	f, ok := kindOf(req)
	if !ok || req.Body == nil || req.Body == http.NoBody {
		return t.Next.RoundTrip(req)
	}
	o := t.opts()
	// The body may be buffered already (the gateway's failover did it);
	// either way it is read from the client once.
	first := req.Clone(req.Context())
	buffered, err := replay.Buffer(first, o.MaxBody)
	if err != nil {
		return nil, err
	}
	if !buffered {
		return t.Next.RoundTrip(first) // too large to continue: pass it through
	}
	body, _ := replay.Bytes(first)
	reqObj := decodeObject(body)
	contents, _ := reqObj["contents"].([]any)
	if contents == nil || candidateCount(reqObj) > 1 {
		// Not a request we can continue (several candidates, odd body):
		// pass it through untouched.
		return t.Next.RoundTrip(first)
	}
	// The resume logic reads the chunks: ask for them uncompressed.
	first.Header = first.Header.Clone()
	first.Header.Del("Accept-Encoding")

	resp, err := t.Next.RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" {
		return resp, err
	}
	s := &stream{
		t: t, o: o, req: first, reqObj: reqObj, start: time.Now(),
		ctx: req.Context(), w: writer{framing: f},
	}
	s.attach(resp.Body)
	if f == unary {
		return s.collect(resp)
	}
	resp.Body = s
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return resp, nil
}

func candidateCount(reqObj map[string]any) int {
	gc, _ := reqObj["generationConfig"].(map[string]any)
	n, _ := gc["candidateCount"].(json.Number)
	c, _ := n.Int64()
	return int(c)
}

func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	replay.Set(r, body)
	return r
}

// continuation builds the request for the rest of the answer: the original
// request plus a model turn with the visible answer so far (thoughts
// excluded) and a user turn asking to continue in its language. With no
// visible answer yet it is the original request again.
func (s *stream) continuation() *http.Request {
	text := s.visible.String()
	if text == "" {
		return withBody(s.req, mustJSON(s.reqObj))
	}
	obj := maps.Clone(s.reqObj)
	contents := slices.Clone(s.reqObj["contents"].([]any))
	contents = append(contents,
		map[string]any{"role": "model", "parts": []any{map[string]any{"text": text}}},
		map[string]any{"role": "user", "parts": []any{map[string]any{"text": s.t.prompt(detectLanguage(text))}}},
	)
	obj["contents"] = contents
	return withBody(s.req, mustJSON(obj))
}

func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // v came from decoding JSON
	}
	return b.Bytes()
}

// googleError is an error object in Google's format.
func googleError(code int, status, message string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": message, "status": status}}
}

var statusNames = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
	429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

// upstreamError turns a refused continuation into the error the client
// gets: the provider's own error object when it sent one.
func upstreamError(status int, body []byte) map[string]any {
	if obj := decodeObject(body); obj != nil {
		if e, ok := obj["error"].(map[string]any); ok && len(e) > 0 {
			return map[string]any{"error": e}
		}
	}
	return googleError(status, statusNames[status], fmt.Sprintf("the continuation of a cut-off answer was refused with HTTP %d", status))
}

// errIdle marks an attempt cut by the idle timeout.
var errIdle = errors.New("gemini attempt idle for too long")

func contextDone(ctx context.Context) bool { return ctx.Err() != nil }
