package meter

import (
	"io"
	"testing"

	"github.com/llmproxy/llmproxy/internal/relay"
)

// readyBody is a relay.Readier whose bytes come as the test gives them:
// with none given, Relay says it would wait (put(0)) and, asked not to,
// stops; a wait that is not declined fails the test.
type readyBody struct {
	t      *testing.T
	chunks []string
	end    bool
}

func (b *readyBody) Read([]byte) (int, error) { b.t.Fatal("Read on a relayed body"); return 0, nil }
func (b *readyBody) Close() error             { return nil }
func (b *readyBody) Ready() bool              { return len(b.chunks) > 0 }

func (b *readyBody) Relay(next func() []byte, put func(int) bool) error {
	for {
		if len(b.chunks) == 0 {
			if b.end {
				return io.EOF
			}
			if put(0) {
				b.t.Fatal("the relay was let wait")
			}
			return relay.ErrPaused
		}
		p := next()
		n := copy(p, b.chunks[0])
		b.chunks[0] = b.chunks[0][n:]
		if b.chunks[0] == "" {
			b.chunks = b.chunks[1:]
		}
		if !put(n) {
			return relay.ErrPaused
		}
	}
}

// TryRead through a meter never waits: with StripUsageChunk an event held
// until it is complete leaves it nothing to hand over, and it says so.
func TestMeterTryReadDoesNotWait(t *testing.T) {
	for _, strip := range []bool{false, true} {
		body := &readyBody{t: t, chunks: []string{`data: {"choices":[{"delta":{"content":"a"}}]`}}
		m := Wrap(body, Options{Format: OpenAI, Stream: true, StripUsageChunk: strip}).(relay.Readier)
		if !m.Ready() {
			t.Fatalf("strip %v: not ready with the body's bytes ready", strip)
		}
		p := make([]byte, 256)
		n, err := relay.TryRead(m, p)
		if err != nil {
			t.Fatalf("strip %v: %v", strip, err)
		}
		first := string(p[:n])
		if strip && first != "" {
			t.Fatalf("strip: an event not yet complete went out: %q", first)
		}
		if m.Ready() {
			t.Fatalf("strip %v: ready with nothing to hand over", strip)
		}
		body.chunks = append(body.chunks, "}\n\n")
		body.end = true
		var rest string
		for {
			n, err = relay.TryRead(m, p)
			rest += string(p[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if got, want := first+rest, `data: {"choices":[{"delta":{"content":"a"}}]}`+"\n\n"; got != want {
			t.Fatalf("strip %v: relayed %q, want %q", strip, got, want)
		}
	}
}
