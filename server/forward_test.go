package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmproxy/llmproxy/providertest"
)

// sizes is a reader that returns chunks of the given sizes and records the
// size of the buffer each read was offered.
type sizes struct {
	chunks  []int
	offered []int
	next    byte
}

func (s *sizes) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	s.offered = append(s.offered, len(p))
	n := min(s.chunks[0], len(p))
	if s.chunks[0] -= n; s.chunks[0] == 0 {
		s.chunks = s.chunks[1:]
	}
	for i := range p[:n] {
		p[i] = s.next
		s.next++
	}
	return n, nil
}

func TestCopyBodyAdaptsItsBuffer(t *testing.T) {
	t.Parallel()
	// Small events, then a bulk of 200 KiB, then small events again.
	src := &sizes{chunks: []int{100, 300, 200 << 10, 50, 60, 70, 80}}
	rec := httptest.NewRecorder()
	if err := copyBody(rec, src, true); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := 0; i < 100+300+200<<10+50+60+70+80; i++ {
		want = append(want, byte(i))
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Fatalf("copied %d bytes, not the same as the %d sent", rec.Body.Len(), len(want))
	}
	if !rec.Flushed {
		t.Error("a stream must be flushed")
	}
	o := src.offered
	if o[0] != smallBuffer {
		t.Errorf("first read offered %d bytes, want the small buffer", o[0])
	}
	sawLarge := false
	for _, n := range o {
		sawLarge = sawLarge || n == largeBuffer
	}
	if !sawLarge {
		t.Error("a bulk body never got the large buffer")
	}
	if last := o[len(o)-1]; last != smallBuffer {
		t.Errorf("after the bulk, small events are read with %d bytes: the buffer should shrink back", last)
	}
}

// A buffer given back while a stream waits (the handoff's relay does so
// before each wait) comes back in the size the reads called for.
func TestBodyBufferKeepsItsSizeAcrossRelease(t *testing.T) {
	t.Parallel()
	var b bodyBuffer
	for range switchAfter {
		b.used(smallBuffer, smallBuffer) // reads that fill the small buffer
	}
	if n := len(b.get()); n != largeBuffer {
		t.Fatalf("after full reads: %d bytes, want the large buffer", n)
	}
	b.release()
	if n := len(b.get()); n != largeBuffer {
		t.Errorf("given back and taken again: %d bytes, want the large buffer still", n)
	}
	b.release()
}

func TestTrailersPassThrough(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"socket", "fetch"} {
		fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Usage-Tokens")
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Usage-Tokens", "42")
		}), &providertest.Options{HTTP2: true})
		cfg := testConfig(t, map[string]string{"openai": fake.URL})
		cfg.Transport = mode
		h := start(t, cfg)
		resp, err := h.client.Get(h.URL + "/openai/v1/stream")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "data: 1\n\n" || resp.Trailer.Get("X-Usage-Tokens") != "42" {
			t.Errorf("%s: body %q trailer %v", mode, body, resp.Trailer)
		}
	}
}
