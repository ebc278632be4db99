package server

import (
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/llmproxy/llmproxy/fallback"
	"github.com/llmproxy/llmproxy/privacy"
)

// forward sends r through rt — a gateway plan: the attempt loop that
// picks target, header policy, credential and transport — and relays the
// response to w. It does what httputil.ReverseProxy would, minus what
// llmproxy must not do (X-Forwarded-*, a flush timer per response). An
// upstream failure before the response began becomes a JSON error; after
// it began, the client's connection is aborted: never a made-up clean end.
func (s *Server) forward(w *logWriter, r *http.Request, rt http.RoundTripper) {
	// The outbound request is a copy of the inbound one with its own
	// context (outbound.go): canceled when the client leaves, until the
	// response is a stream handed off (handoff.go), which outlives the
	// handler. The plan filters the header map (in place when nothing
	// else will read it).
	ctx := newOutbound(fallback.WithReport(r.Context(), &w.report))
	l := follow(r, ctx)
	out := r.WithContext(ctx)
	out.Host, out.RequestURI = "", ""
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Close, out.TransferEncoding, out.Trailer = false, nil, nil
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		out.Body = nil
	} // else a countingBody or a replay buffer: their Close leaves the server's body alone

	var resp *http.Response
	defer func() {
		if resp != nil {
			resp.Body.Close()
		}
		if ctx == nil {
			return // handed off: the relay's now
		}
		// Unlinked first: a canceled AfterFunc would start a goroutine.
		l.unlink()
		ctx.cancel()
	}()
	resp, err := rt.RoundTrip(out)
	if err != nil {
		s.proxyError(w, r, err)
		return
	}
	if resp.StatusCode < 200 {
		// A 101 here would be an upgrade nobody asked for (WebSockets take
		// another path); 1xx never reach this point.
		s.proxyError(w, r, errUnexpectedStatus)
		return
	}

	// Trailers pass the same filter as headers, announced ones here and
	// all that came once the body is read; most responses have none.
	connection := privacy.CleanResponse(resp.Header, s.cfg.KeepSetCookie)
	if len(resp.Trailer) > 0 {
		privacy.CleanTrailer(resp.Trailer, connection, s.cfg.KeepSetCookie)
	}
	stream := isEventStream(resp.Header.Get("Content-Type"))
	if stream {
		// Tell nginx and similar fronts not to buffer the stream either.
		resp.Header.Set("X-Accel-Buffering", "no")
	}
	dst := w.Header()
	for name, values := range resp.Header {
		if have, ok := dst[name]; ok { // ours (Vary from CORS): keep both
			dst[name] = append(have, values...)
		} else {
			dst[name] = values
		}
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for name := range resp.Trailer {
			names = append(names, name)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	if stream && canHandOff(w, r, resp) && l.unlink() {
		var done bool
		if done, err = s.handOff(w, r, resp, ctx.cancel); done {
			resp, ctx = nil, nil // the relay's now
			if s.afterHandOff != nil {
				s.afterHandOff(s, w)
			}
			return
		}
		l = follow(r, ctx)
	}

	// SSE, and any body of unknown length, is flushed on every write: each
	// event reaches the client the moment it arrives.
	switch err {
	case nil:
		err = copyBody(w, resp.Body, stream || resp.ContentLength < 0)
	case io.EOF: // the whole body came with the head
		err = nil
	}
	if err != nil {
		w.reason = "upstream failed mid-response"
		w.failed = !clientLeft(r)
		s.log.Debug("response body failed", "error", err)
		panic(http.ErrAbortHandler)
	}
	resp.Body.Close() // fills resp.Trailer, unannounced fields and all
	if len(resp.Trailer) == 0 {
		return
	}
	privacy.CleanTrailer(resp.Trailer, connection, s.cfg.KeepSetCookie)
	for name, values := range resp.Trailer {
		dst[http.TrailerPrefix+name] = values
	}
}

var errUnexpectedStatus = &unexpectedStatus{}

type unexpectedStatus struct{}

func (*unexpectedStatus) Error() string { return "upstream answered with an unexpected 1xx status" }

// isEventStream reports whether a Content-Type is text/event-stream,
// without mime.ParseMediaType's allocations on every response.
func isEventStream(contentType string) bool {
	const sse = "text/event-stream"
	ct := strings.TrimLeft(contentType, " \t")
	if len(ct) < len(sse) || !strings.EqualFold(ct[:len(sse)], sse) {
		return false
	}
	rest := strings.TrimLeft(ct[len(sse):], " \t")
	return rest == "" || rest[0] == ';'
}

// Body copies start with a small buffer, which is what an open stream
// relayed in its handler holds while it waits for its next event (a
// handed-off one gives it back meanwhile); they move to a large one while
// reads fill the small one (a bulk body then costs few reads and writes),
// and back once reads are small again, so a long stream that once carried
// a large event does not keep the large buffer for the rest of its life.
// The small one is 1 KiB: a token event (150–600 bytes from OpenAI,
// Anthropic or Gemini) fits in one read; a larger one takes two reads and
// two writes, the second right behind the first.
var (
	smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallBuffer); return &b }}
	largeBuffers = sync.Pool{New: func() any { b := make([]byte, largeBuffer); return &b }}
)

const (
	smallBuffer = 1 << 10
	largeBuffer = 32 << 10
	switchAfter = 2 // reads in a row that call for the other size
)

func copyBody(w http.ResponseWriter, src io.Reader, flush bool) error {
	var buf bodyBuffer
	defer buf.release()
	flusher, _ := w.(http.Flusher)
	for {
		b := buf.get()
		n, rerr := src.Read(b)
		if n > 0 {
			if _, werr := w.Write(b[:n]); werr != nil {
				return werr
			}
			if flush && flusher != nil {
				flusher.Flush()
			}
			buf.used(n, len(b))
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// bodyBuffer is a body copy's buffer: small, or large while reads fill
// the small one.
type bodyBuffer struct {
	bp     *[]byte
	large  bool
	streak int // reads in a row that call for the other size
}

// get returns the buffer for the next read.
func (b *bodyBuffer) get() []byte {
	if b.bp == nil {
		if b.large {
			b.bp = largeBuffers.Get().(*[]byte)
		} else {
			b.bp = smallBuffers.Get().(*[]byte)
		}
	}
	return *b.bp
}

// used takes note of a read of n bytes into room bytes of the buffer, and
// switches buffers after switchAfter reads in a row that call for it.
func (b *bodyBuffer) used(n, room int) {
	if b.large && n < smallBuffer || !b.large && n == room {
		b.streak++
	} else {
		b.streak = 0
	}
	if b.streak < switchAfter {
		return
	}
	b.release()
	if b.large = !b.large; b.large {
		b.bp = largeBuffers.Get().(*[]byte)
	} else {
		b.bp = smallBuffers.Get().(*[]byte)
	}
	b.streak = 0
}

func (b *bodyBuffer) release() {
	if b.bp == nil {
		return
	}
	if b.large {
		largeBuffers.Put(b.bp)
	} else {
		smallBuffers.Put(b.bp)
	}
	b.bp = nil
}
