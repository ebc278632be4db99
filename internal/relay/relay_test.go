package relay

import (
	"errors"
	"io"
	"testing"
)

// pieces relays its pieces one per put, then io.EOF. It waits before
// each, as a socket's relay does: next, put(0), next again.
type pieces struct{ left []string }

func (p *pieces) Relay(next func() []byte, put func(n int) bool) error {
	for len(p.left) > 0 {
		next()
		put(0) // a wait
		n := copy(next(), p.left[0])
		p.left = p.left[1:]
		if !put(n) {
			return ErrPaused
		}
	}
	return io.EOF
}

func TestRead(t *testing.T) {
	r := &pieces{left: []string{"ab", "cde"}}
	buf := make([]byte, 8)
	if n, err := Read(r, buf[:0]); n != 0 || err != nil || len(r.left) != 2 {
		t.Fatalf("empty read: %d, %v, and %d pieces left", n, err, len(r.left))
	}
	for _, want := range []string{"ab", "cde"} {
		n, err := Read(r, buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("Read: %q, %v; want %q", buf[:n], err, want)
		}
	}
	if n, err := Read(r, buf); n != 0 || err != io.EOF {
		t.Fatalf("at the end: %d, %v", n, err)
	}
}

// emptyReads returns (0, nil) for ever.
type emptyReads struct{}

func (emptyReads) Read([]byte) (int, error) { return 0, nil }

func TestReadsWithoutProgress(t *testing.T) {
	var pending error
	buf := make([]byte, 4)
	err := Reads(emptyReads{}, &pending, func() []byte { return buf }, func(int) bool { return true })
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("got %v, want io.ErrNoProgress", err)
	}
}
