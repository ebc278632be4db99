// Package translate puts OpenAI's Responses API in front of providers that
// have only Chat Completions (DeepSeek, GLM, Qwen, Groq, vLLM, …), as an
// http.RoundTripper: POST …/responses becomes POST …/chat/completions, and
// the answer (a completion or a stream of chunks) becomes a Response or the
// Responses event stream, event by event. What Chat Completions cannot
// express is refused with a 400 naming the field, never dropped silently.
// docs/responses-api.md holds the mapping table.
package translate

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/replay"
	"github.com/llmproxy/llmproxy/sse"
)

// DefaultMaxBody bounds a Responses request body (Options.MaxBody).
const DefaultMaxBody = 32 << 20

// maxAnswer bounds a whole (non-streaming) answer read from the provider.
const maxAnswer = 64 << 20

// ErrCut is returned by a translated stream's Read when the provider's
// stream ended before its answer did (no finish_reason and no [DONE]): the
// client's connection must be aborted, never ended as if complete.
var ErrCut = errors.New("translate: the provider's stream ended before the answer did")

var errNoNext = errors.New("translate: Transport.Next is not set")

var errBadChunk = errors.New("translate: the provider sent a stream event that is not a Chat Completions chunk")

// Options tune a Transport. The zero value means the defaults.
type Options struct {
	// Store keeps answers in memory so that previous_response_id can
	// refer to them (the operator's responses.store: memory). Default
	// nil: nothing is kept, previous_response_id gets 400, and every
	// Response says store: false. An answer is kept as the request's
	// owner's (WithOwner on its context).
	Store *Store
	// NoReasoningEffort says the provider takes no reasoning_effort: a
	// request with reasoning.effort gets 400. Default false:
	// reasoning.effort is sent as reasoning_effort.
	NoReasoningEffort bool
	// NewID returns a new id that starts with prefix ("resp_", "msg_",
	// "fc_", "rs_", "call_"). Default: prefix and 48 random hex digits.
	NewID func(prefix string) string
	// Now is the clock for created_at and completed_at. Default time.Now.
	Now func() time.Time
	// MaxBody bounds the request body; a longer one gets 413. Default
	// DefaultMaxBody (32 MiB).
	MaxBody int64
}

func (o *Options) newID() func(string) string {
	if o.NewID != nil {
		return o.NewID
	}
	return randomID
}

func (o *Options) now() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

func (o *Options) maxBody() int64 {
	if o.MaxBody > 0 {
		return o.MaxBody
	}
	return DefaultMaxBody
}

func randomID(prefix string) string {
	var b [24]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Transport translates POST …/responses for a provider that has only Chat
// Completions. Every other request goes to Next unchanged.
type Transport struct {
	// Next sends the translated request: the provider's transport. It
	// must be set; there is no default, since http.DefaultTransport would
	// bypass llmproxy's own transports (it reads HTTP_PROXY and adds
	// headers of its own).
	Next    http.RoundTripper
	Options Options
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip sends req (a Responses API request) as a Chat Completions
// request to the same base URL with the same headers. A provider's answer
// other than 2xx is returned as it is; a request that cannot be expressed
// gets a synthesized 400 (X-Proxy-Error: true) and nothing is sent.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errNoNext
	}
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/responses") {
		return next.RoundTrip(req)
	}
	limit := t.Options.maxBody()
	body, ok := replay.Bytes(req)
	if !ok {
		full, err := replay.Buffer(req, limit)
		if err != nil {
			return nil, err
		}
		if !full {
			req.Body.Close()
			return tooLarge(limit).response(req), nil
		}
		body, _ = replay.Bytes(req)
	}
	if req.Body != nil {
		req.Body.Close() // a replayable body: the bytes stay
	}
	if int64(len(body)) > limit {
		return tooLarge(limit).response(req), nil
	}
	tr, aerr := parseRequest(body, &t.Options, t.Options.Store, ownerFrom(req.Context()))
	if aerr != nil {
		return aerr.response(req), nil
	}

	out := req.Clone(req.Context())
	replay.Set(out, tr.chat)
	out.URL.Path = strings.TrimSuffix(out.URL.Path, "/responses") + "/chat/completions"
	if out.URL.RawPath != "" {
		out.URL.RawPath = strings.TrimSuffix(out.URL.RawPath, "/responses") + "/chat/completions"
	}
	h := out.Header
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	// The answer is parsed here: no compression is asked for.
	h.Del("Accept-Encoding")
	h.Set("Content-Type", "application/json")
	if tr.stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}

	resp, err := next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, nil
	}
	src, aerr := decoded(resp)
	if aerr != nil {
		resp.Body.Close()
		return aerr.response(req), nil
	}
	tl := newTranslator(tr, &t.Options, t.Options.Store, !tr.stream)
	streamed := isEventStream(resp.Header.Get("Content-Type"))

	answer := *resp
	answer.Request = req
	answer.Uncompressed = false
	answer.Header = resp.Header.Clone()
	answer.Header.Del("Content-Length")
	answer.Header.Del("Content-Encoding")
	if tr.stream && streamed {
		answer.Header.Set("Content-Type", "text/event-stream; charset=utf-8")
		answer.ContentLength = -1
		answer.Body = &streamBody{src: src, sse: sse.NewReader(src), t: tl}
		return &answer, nil
	}

	// The whole answer at once: a completion, or a stream the provider
	// sent although none was asked for.
	defer src.Close()
	tl.start()
	if streamed {
		if err := drain(src, tl); err != nil {
			return nil, err
		}
	} else {
		data, err := io.ReadAll(io.LimitReader(src, maxAnswer+1))
		if err != nil {
			return nil, fmt.Errorf("translate: reading the provider's answer: %w", err)
		}
		var c chatChunk
		if len(data) > maxAnswer || parseChunk(data, &c, "") != nil ||
			(isNull(c.Error) && len(c.Choices) == 0) {
			return badAnswer().response(req), nil
		}
		tl.chunk(&c)
		tl.end()
	}
	if tr.stream {
		answer.Header.Set("Content-Type", "text/event-stream; charset=utf-8")
		data := tl.out
		answer.Body = io.NopCloser(bytes.NewReader(data))
		answer.ContentLength = int64(len(data))
	} else {
		answer.Header.Set("Content-Type", "application/json")
		answer.Body = io.NopCloser(bytes.NewReader(tl.final))
		answer.ContentLength = int64(len(tl.final))
	}
	answer.Header.Set("Content-Length", strconv.FormatInt(answer.ContentLength, 10))
	return &answer, nil
}

// drain feeds a whole provider stream to the translator.
func drain(src io.Reader, tl *translator) error {
	r := sse.NewReader(src)
	for !tl.ended {
		ev, err := r.Next()
		if err == io.EOF && tl.finished {
			tl.end()
			break
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return ErrCut
		}
		if err != nil {
			return fmt.Errorf("translate: reading the provider's stream: %w", err)
		}
		if _, err := tl.event(ev); err != nil {
			return err
		}
	}
	return nil
}

// decoded returns the answer's body without its content coding. The
// request asked for none; gzip is undone in case a provider sends it
// anyway, and any other coding cannot be read.
func decoded(resp *http.Response) (io.ReadCloser, *apiError) {
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))) {
	case "", "identity":
		return resp.Body, nil
	case "gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, badAnswer()
		}
		return readCloser{zr, resp.Body}, nil
	}
	return nil, badAnswer()
}

type readCloser struct {
	io.Reader
	io.Closer
}

func isEventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

func tooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge,
		message: "the request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}

// badAnswer is a 502 for a 2xx answer that is not Chat Completions: the
// attempt loop may try another provider, since nothing reached the client.
func badAnswer() *apiError {
	return &apiError{status: http.StatusBadGateway, typ: "upstream_error", code: codeUpstream,
		message: "the provider's answer is not a Chat Completions answer"}
}
