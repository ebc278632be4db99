package replay

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestBufferReplays(t *testing.T) {
	t.Parallel()
	src := &closeCounter{Reader: iotest.HalfReader(strings.NewReader(`{"model":"m"}`))}
	req, _ := http.NewRequest("POST", "http://x/", nil)
	req.Body, req.ContentLength = src, -1
	ok, err := Buffer(req, 1<<10)
	if !ok || err != nil {
		t.Fatalf("Buffer = %v, %v", ok, err)
	}
	if src.closed != 1 {
		t.Errorf("the client's body was closed %d times, want once", src.closed)
	}
	if req.ContentLength != 13 {
		t.Errorf("ContentLength = %d", req.ContentLength)
	}
	for i := range 3 {
		r, ok := Rewind(req)
		if !ok {
			t.Fatal("not rewindable")
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if string(b) != `{"model":"m"}` {
			t.Fatalf("send %d read %q", i, b)
		}
	}
	if b, ok := Bytes(req); !ok || string(b) != `{"model":"m"}` {
		t.Errorf("Bytes = %q, %v", b, ok)
	}
	// Buffering again reads nothing more.
	if ok, err := Buffer(req, 1); !ok || err != nil {
		t.Errorf("second Buffer = %v, %v", ok, err)
	}
}

func TestBufferTooLargeKeepsStreaming(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequest("POST", "http://x/", strings.NewReader("0123456789"))
	ok, err := Buffer(req, 4)
	if ok || err != nil {
		t.Fatalf("Buffer = %v, %v; want false, nil", ok, err)
	}
	b, _ := io.ReadAll(req.Body)
	if string(b) != "0123456789" {
		t.Errorf("streamed body %q: bytes were lost", b)
	}
	if _, ok := Bytes(req); ok {
		t.Error("Bytes reported a buffer for a streaming body")
	}
}

func TestBufferClientError(t *testing.T) {
	t.Parallel()
	boom := errors.New("bad chunk")
	src := &closeCounter{Reader: io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom))}
	req, _ := http.NewRequest("POST", "http://x/", nil)
	req.Body = src
	if _, err := Buffer(req, 100); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if src.closed != 1 {
		t.Error("body not closed after an error")
	}
}

func TestWithAndEmpty(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequest("POST", "http://x/", strings.NewReader("old"))
	Buffer(req, 100)
	r2 := With(req, []byte("new body"))
	b, _ := io.ReadAll(r2.Body)
	if string(b) != "new body" || r2.ContentLength != 8 {
		t.Errorf("With: %q %d", b, r2.ContentLength)
	}
	if old, _ := Bytes(req); string(old) != "old" {
		t.Errorf("With changed the original: %q", old)
	}
	empty := With(req, nil)
	if empty.Body != http.NoBody || empty.ContentLength != 0 {
		t.Errorf("empty body: %v %d", empty.Body, empty.ContentLength)
	}
	if _, ok := Bytes(empty); !ok {
		t.Error("an empty replayable body is still replayable")
	}
	noBody, _ := http.NewRequest("GET", "http://x/", nil)
	if r, ok := Rewind(noBody); !ok || r != noBody {
		t.Error("a request without a body rewinds to itself")
	}
}

// A body of unknown length grows as it is read, whole whatever the reads'
// sizes; one of a declared length fills the buffer made for it.
func TestReadAll(t *testing.T) { // not parallel: it counts allocations
	want := strings.Repeat("0123456789", 500)
	for _, size := range []int{1, 512, len(want), len(want) + 1} {
		got, err := readAll(unlimited(iotest.OneByteReader(strings.NewReader(want))), size)
		if err != nil || string(got) != want {
			t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
		}
	}
	got, err := readAll(unlimited(iotest.TimeoutReader(strings.NewReader(want))), len(want)+1)
	if !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("a failing read: %v, %d bytes", err, len(got))
	}
	body := `{"model":"m","messages":[{"role":"user","content":"Hello!"}]}`
	src := strings.NewReader(body)
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(body)
		got, err = readAll(unlimited(src), len(body)+1)
	})
	if err != nil || string(got) != body || cap(got) != len(body)+1 || allocs != 1 {
		t.Errorf("a declared length: %q cap %d, %v allocations, %v", got, cap(got), allocs, err)
	}
	// Buffer, on every gateway request: the bytes, their reader and
	// GetBody, nothing more (the limit's reader stays on the stack).
	req, rc := httptest.NewRequest("POST", "/", nil), io.NopCloser(src)
	allocs = testing.AllocsPerRun(100, func() {
		src.Reset(body)
		req.Body, req.GetBody, req.ContentLength = rc, nil, int64(len(body))
		if ok, err := Buffer(req, 1<<20); !ok || err != nil {
			t.Fatal(ok, err)
		}
	})
	if got, _ := Bytes(req); string(got) != body || allocs != 3 {
		t.Errorf("Buffer: %q, %v allocations", got, allocs)
	}
}

func unlimited(r io.Reader) *io.LimitedReader { return &io.LimitedReader{R: r, N: math.MaxInt64} }
