package main

import (
	"io"
	"sync"
	"time"
)

// logSink batches log lines: it writes what gathered at most every
// flushEvery, or at once past flushSize, and everything on Close. A busy
// proxy then makes one write per batch instead of one per request (a
// write(2) per request line cost as much as a tenth of a request's CPU).
type logSink struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	armed bool
	every time.Duration // flushEvery; tests change it
}

const (
	flushEvery = 100 * time.Millisecond
	flushSize  = 32 << 10
)

func newLogSink(w io.Writer) *logSink { return &logSink{w: w, every: flushEvery} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	switch {
	case len(s.buf) >= flushSize:
		s.flushLocked()
	case !s.armed:
		s.armed = true
		time.AfterFunc(s.every, s.Flush)
	}
	return len(p), nil
}

// Flush writes what has gathered.
func (s *logSink) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
	s.armed = false
}

func (s *logSink) flushLocked() {
	if len(s.buf) > 0 {
		s.w.Write(s.buf)
		s.buf = s.buf[:0]
	}
}
