// Package logbuf is a log sink for tests: a buffer that a logger, a server
// or a helper process writes to from its own goroutines while the test
// reads what came so far.
package logbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer safe for one writer and readers at once. The
// zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count reports how many times substr occurs in what was written so far.
func (l *Buffer) Count(substr string) int {
	return strings.Count(l.String(), substr)
}
