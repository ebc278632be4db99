package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type countingWriter struct {
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) state() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.buf.String()
}

func TestLogSinkBatches(t *testing.T) {
	out := &countingWriter{}
	s := newLogSink(out)
	// A long interval, so that a busy machine cannot make it pass before
	// the check; the timer's own flush is waited for below.
	s.every = 2 * time.Second
	for i := range 100 {
		s.Write([]byte("line " + strings.Repeat("x", i%7) + "\n"))
	}
	if n, _ := out.state(); n != 0 {
		t.Fatalf("%d writes before the flush interval: lines must gather", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, text := out.state()
		if n > 0 {
			if n != 1 || strings.Count(text, "\n") != 100 {
				t.Fatalf("%d writes holding %d lines, want 1 write of 100", n, strings.Count(text, "\n"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lines never flushed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A large batch goes out at once; Flush sends the rest.
	s.Write(bytes.Repeat([]byte("y"), flushSize))
	if n, _ := out.state(); n != 2 {
		t.Errorf("a full buffer must be written at once (%d writes)", n)
	}
	s.Write([]byte("tail\n"))
	s.Flush()
	if _, text := out.state(); !strings.HasSuffix(text, "tail\n") {
		t.Error("Flush lost the last line")
	}
}
