package translate

import (
	"errors"
	"fmt"
	"io"

	"github.com/llmproxy/llmproxy/sse"
)

// streamBody is a translated stream. Each Read returns as soon as at least
// one event is ready: one upstream chunk is read and translated at a time,
// and nothing is buffered beyond it.
type streamBody struct {
	src     io.ReadCloser
	sse     *sse.Reader
	t       *translator
	off     int   // bytes of t.out already read
	err     error // sticky: io.EOF after the terminal event, else why it broke
	started bool
}

func (s *streamBody) Read(p []byte) (int, error) {
	for s.off >= len(s.t.out) {
		if s.err != nil {
			return 0, s.err
		}
		s.t.out, s.off = s.t.out[:0], 0
		s.step()
	}
	n := copy(p, s.t.out[s.off:])
	s.off += n
	return n, nil
}

// step translates one upstream event. The response is announced
// (response.created, response.in_progress) together with the provider's
// first event that holds data, not before it (nor with a keep-alive
// comment): until the provider has sent something the
// client has seen nothing, and the gateway may still try another provider.
func (s *streamBody) step() {
	if s.t.ended {
		s.err = io.EOF
		return
	}
	ev, err := s.sse.Next()
	if !s.started && err == nil && len(ev.Data) > 0 { // a comment (keep-alive) is nothing yet
		s.started = true
		s.t.start()
	}
	switch {
	case err == nil:
		if _, err := s.t.event(ev); err != nil {
			s.err = err
		}
	case errors.Is(err, io.EOF) && s.t.finished:
		// A provider that closes after finish_reason without [DONE].
		s.t.end()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		s.err = ErrCut
	default:
		s.err = fmt.Errorf("translate: reading the provider's stream: %w", err)
	}
}

func (s *streamBody) Close() error { return s.src.Close() }
