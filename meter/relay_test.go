package meter

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/llmproxy/llmproxy/internal/relay"
)

// relayBody is a body that relays itself, as the socket transport's does:
// data in reads whose sizes cycle through sizes, then end (io.EOF when nil),
// with a wait before every other read (next, put(0), next again). Reads
// counts the Reads made on it.
type relayBody struct {
	data  []byte
	sizes []int
	i     int
	end   error
	reads int
}

func (r *relayBody) Relay(next func() []byte, put func(n int) bool) error {
	for len(r.data) > 0 {
		b := next()
		if r.i%2 == 0 {
			put(0) // a wait: b is the caller's again
			b = next()
		}
		n := copy(b, r.data[:min(r.sizes[r.i%len(r.sizes)], len(r.data))])
		r.i++
		r.data = r.data[n:]
		if !put(n) {
			return relay.ErrPaused
		}
	}
	if r.end != nil {
		return r.end
	}
	return io.EOF
}

func (r *relayBody) Read(p []byte) (int, error) {
	r.reads++
	return relay.Read(r, p)
}

func (r *relayBody) Close() error { return nil }

// relayAll drives w's Relay to the end as the server's relay does, through
// buffers of size bytes: put stops the relay every pauseEvery puts, and,
// with mix, a Read comes between two calls now and then.
func relayAll(t testing.TB, w io.Reader, size, pauseEvery int, mix bool) ([]byte, error) {
	r, ok := w.(relay.Relayer)
	if !ok {
		t.Fatalf("%T does not relay", w)
	}
	var out, b []byte
	puts, calls := 0, 0
	for {
		err := r.Relay(func() []byte {
			b = make([]byte, size)
			return b
		}, func(n int) bool {
			if n == 0 { // a wait: the buffer may go back
				clear(b)
				b = nil
				return true
			}
			if b == nil {
				t.Fatalf("put(%d) after a wait with no next between", n)
			}
			out = append(out, b[:n]...)
			puts++
			return pauseEvery == 0 || puts%pauseEvery != 0
		})
		if err != relay.ErrPaused {
			return out, err
		}
		if calls++; mix && calls%2 == 1 {
			p := make([]byte, size)
			n, err := w.Read(p)
			out = append(out, p[:n]...)
			if err != nil {
				return out, err
			}
		}
	}
}

// checkRelay: the meter over a body that relays gives through Relay what
// Read gives (want, u), with Done once and complete, and never Reads the
// body unless the caller mixed Reads in.
func checkRelay(t *testing.T, data []byte, opts Options, want []byte, u Usage) {
	t.Helper()
	for _, c := range []struct {
		size, pause int
		mix         bool
		sizes       []int
	}{
		{32 << 10, 0, false, []int{1 << 20}},
		{7, 3, false, []int{5, 1, 64, 13}},
		{16, 2, true, []int{1, 7, 300}},
	} {
		body := &relayBody{data: data, sizes: c.sizes}
		calls := 0
		var got Usage
		var complete bool
		o := opts
		o.Done = func(u Usage, ok bool) { calls++; got, complete = u, ok }
		w := Wrap(body, o)
		out, err := relayAll(t, w, c.size, c.pause, c.mix)
		w.Close()
		if err != io.EOF || calls != 1 || !complete {
			t.Fatalf("%+v: error %v, Done called %d times, complete %v", c, err, calls, complete)
		}
		if !bytes.Equal(out, want) || got != u {
			t.Fatalf("%+v: relayed %q with %+v; read %q with %+v", c, out, got, want, u)
		}
		if !c.mix && body.reads != 0 {
			t.Fatalf("%+v: the meter read the body %d times instead of relaying it", c, body.reads)
		}
	}
	// A failure mid-way comes out of Relay as out of Read, Done incomplete.
	boom := errors.New("boom")
	calls := 0
	o := opts
	o.Done = func(_ Usage, ok bool) {
		calls++
		if ok {
			t.Error("complete after an error")
		}
	}
	w := Wrap(&relayBody{data: data, sizes: []int{3}, end: boom}, o)
	if _, err := relayAll(t, w, 9, 2, false); err != boom {
		t.Fatalf("error %v, want boom", err)
	}
	w.Close()
	if calls != 1 {
		t.Fatalf("Done called %d times after a failure", calls)
	}
}

func TestRelay(t *testing.T) {
	for _, fx := range fixtures {
		for _, strip := range []bool{false, true} {
			data := fixture(t, fx.file)
			opts := Options{Format: fx.format, Stream: fx.stream, StripUsageChunk: strip, RequireEnd: true}
			var u Usage
			o := opts
			o.Done = func(got Usage, _ bool) { u = got }
			want, err := io.ReadAll(Wrap(io.NopCloser(bytes.NewReader(data)), o))
			if err != nil {
				t.Fatalf("%s: %v", fx.file, err)
			}
			checkRelay(t, data, opts, want, u)
		}
	}
	// A last event without its blank line goes out at the end.
	for _, strip := range []bool{false, true} {
		data := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]")
		opts := Options{Stream: true, StripUsageChunk: strip, RequireEnd: true}
		var u Usage
		o := opts
		o.Done = func(got Usage, _ bool) { u = got }
		want, err := io.ReadAll(Wrap(io.NopCloser(bytes.NewReader(data)), o))
		if err != nil || !bytes.HasSuffix(want, []byte("data: [DONE]")) || u.Input != 3 {
			t.Fatalf("strip %v: read %q, %+v, %v", strip, want, u, err)
		}
		checkRelay(t, data, opts, want, u)
	}
}

// A body that does not relay is relayed by Reads, an error that came with
// the bytes put stopped at kept for the next call.
func TestRelayOverReads(t *testing.T) {
	data := []byte("data: {\"choices\":[{\"delta\":{}}]}\n\ndata: [DONE]\n\n")
	boom := errors.New("boom")
	w := Wrap(io.NopCloser(&errWithLast{data: data, err: boom}), Options{Stream: true})
	out, err := relayAll(t, w, 8, 1, false)
	if err != boom || !bytes.Equal(out, data) {
		t.Fatalf("relayed %q, %v; want the body and boom", out, err)
	}
}

// TestRelayCutShort: a stream cut before its last event comes out of Relay
// as out of Read (RequireEnd: io.ErrUnexpectedEOF), also when it was
// relayed by Reads, paused on its last bytes and then Read.
func TestRelayCutShort(t *testing.T) {
	data := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")
	for _, strip := range []bool{false, true} {
		for _, body := range []io.ReadCloser{&relayBody{data: bytes.Clone(data), sizes: []int{5}}, io.NopCloser(&errWithLast{data: bytes.Clone(data), err: io.EOF})} {
			calls := 0
			w := Wrap(body, Options{Stream: true, StripUsageChunk: strip, RequireEnd: true, Done: func(_ Usage, ok bool) {
				calls++
				if ok {
					t.Error("complete, cut short")
				}
			}})
			out, err := relayAll(t, w, 64, 1, true)
			if err != io.ErrUnexpectedEOF || !bytes.Equal(out, data) || calls != 1 {
				t.Fatalf("strip %v, %T: %q, %v, Done %d times; want the bytes, io.ErrUnexpectedEOF, once", strip, body, out, err, calls)
			}
		}
	}
}

// errWithLast returns err with the last bytes of data, once; io.EOF after.
type errWithLast struct {
	data []byte
	err  error
	sent bool
}

func (r *errWithLast) Read(p []byte) (int, error) {
	if r.sent {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	if len(r.data) == 0 {
		r.sent = true
		return n, r.err
	}
	return n, nil
}
