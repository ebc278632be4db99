package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/llmproxy/llmproxy/internal/relay"
)

// relaying is a body that relays itself in reads of size bytes, with a
// wait before each (next, put(0), next again), and counts the Reads made
// on it (the socket transport's body: a Read before Relay would leave the
// stream to net/http's decoder, a read more per event).
type relaying struct {
	data  []byte
	size  int
	reads int
}

func (r *relaying) Relay(next func() []byte, put func(n int) bool) error {
	for len(r.data) > 0 {
		next()
		put(0) // a wait
		n := copy(next(), r.data[:min(r.size, len(r.data))])
		r.data = r.data[n:]
		if !put(n) {
			return relay.ErrPaused
		}
	}
	return io.EOF
}

func (r *relaying) Read(p []byte) (int, error) { r.reads++; return relay.Read(r, p) }
func (r *relaying) Close() error               { return nil }

// relayTo drives r to its end through buffers of size bytes, put stopping
// it every other call.
func relayTo(r relay.Relayer, size int) ([]byte, error) {
	var out, b []byte
	puts := 0
	for {
		err := r.Relay(func() []byte { b = make([]byte, size); return b }, func(n int) bool {
			if n == 0 { // a wait: the buffer may go back
				b = nil
				return true
			}
			out = append(out, b[:n]...)
			puts++
			return puts%2 == 1
		})
		if err != relay.ErrPaused {
			return out, err
		}
	}
}

// TestAnswerRelays: the first bytes of an answer are read through the
// body's Relay, and the answer relays the rest: first what was read,
// then the body's own Relay, never a Read.
func TestAnswerRelays(t *testing.T) {
	data := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: [DONE]\n\n")
	body := &relaying{data: bytes.Clone(data), size: 9}
	first := getFirst()
	resp := &http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: body}
	n, err := readFirst(resp, *first)
	if err != nil || n != 9 {
		t.Fatalf("readFirst: %d, %v; want the body's first read", n, err)
	}
	*first = (*first)[:n]
	a := &answer{body: body, first: first, prefix: *first}
	out, err := relayTo(a, 4)
	if err != io.EOF || !bytes.Equal(out, data) {
		t.Fatalf("relayed %q, %v; want %q, io.EOF", out, err, data)
	}
	if body.reads != 0 {
		t.Fatalf("the body was Read %d times instead of relayed", body.reads)
	}
	if a.first != nil {
		t.Fatal("the first-read buffer was not given back")
	}
}

// TestReadFirstReadsOtherAnswers: an answer that is not an event stream,
// or a stream that announces trailers, is read (net/http's decoder keeps
// the trailers the server forwards).
func TestReadFirstReadsOtherAnswers(t *testing.T) {
	for _, h := range []struct {
		ct      string
		trailer http.Header
	}{
		{"application/json", nil},
		{"text/event-stream", http.Header{"X-Usage": nil}},
	} {
		body := &relaying{data: []byte("{}"), size: 1}
		resp := &http.Response{Header: http.Header{"Content-Type": {h.ct}}, Trailer: h.trailer, Body: body}
		if _, err := readFirst(resp, make([]byte, 8)); err != nil || body.reads != 1 {
			t.Fatalf("%s, trailers %v: %d Reads, %v; want it read", h.ct, h.trailer, body.reads, err)
		}
	}
}

// TestAnswerRelaysReads: over a body that does not relay, the answer
// relays by Reads, and an error that came with the last bytes comes next.
func TestAnswerRelaysReads(t *testing.T) {
	boom := errors.New("boom")
	a := &answer{body: io.NopCloser(io.MultiReader(bytes.NewReader([]byte("data: x\n\n")), &failing{boom}))}
	out, err := relayTo(a, 3)
	if err != boom || string(out) != "data: x\n\n" {
		t.Fatalf("relayed %q, %v; want the bytes, then boom", out, err)
	}
}

// TestAnswerReadAfterPausedRelay: an error that came with the bytes a
// relay by Reads paused on comes from the next Read too.
func TestAnswerReadAfterPausedRelay(t *testing.T) {
	boom := errors.New("boom")
	a := &answer{body: io.NopCloser(&lastWith{data: []byte("data: x\n\n"), err: boom})}
	b := make([]byte, 64)
	err := a.Relay(func() []byte { return b }, func(int) bool { return false })
	if err != relay.ErrPaused {
		t.Fatalf("Relay: %v, want a pause", err)
	}
	if n, err := a.Read(b); n != 0 || err != boom {
		t.Fatalf("Read after the pause: %d, %v; want boom", n, err)
	}
}

// lastWith returns err with the last bytes of data, then io.EOF.
type lastWith struct {
	data []byte
	err  error
}

func (l *lastWith) Read(p []byte) (int, error) {
	if len(l.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, l.data)
	l.data = l.data[n:]
	if len(l.data) == 0 {
		return n, l.err
	}
	return n, nil
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

// A first-bytes buffer goes back to the pool cut to what it held (none,
// for an answer that broke before its first byte); the next attempt's
// read gets it whole again, or a read into nothing would return nothing
// and the attempt commit before the provider's first byte.
func TestFirstBuffersComeBackWhole(t *testing.T) {
	for range 100 {
		b := getFirst()
		if len(*b) != 2<<10 {
			t.Fatalf("a first-bytes buffer of %d bytes", len(*b))
		}
		*b = (*b)[:0]
		firstBuffers.Put(b)
	}
}
