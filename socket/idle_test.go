package socket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/providertest"
)

// TestIdleTimeoutHonoured: a stream that sends often, then falls silent,
// is cut no earlier than the idle timeout after the last byte the client
// read (a lower bound: it can only fail if the timeout fires early), and
// is cut (with ErrIdleTimeout, well before the test's own deadline). The
// chunks come at a tenth of the timeout and the last one right after the
// one before, so it lands between two moves of a coalesced deadline, where
// an early cut would show.
func TestIdleTimeoutHonoured(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		if _, _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for i := range 8 {
			ev := fmt.Sprintf("data: %d\n\n", i)
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
			if i < 6 {
				time.Sleep(idle / 10)
			} else {
				time.Sleep(5 * time.Millisecond)
			}
		}
		c.R.ReadByte() // silence until the client gives up
	})
	tr := newTransport(t)
	tr.IdleTimeout = idle
	ctx, cancel := context.WithTimeout(context.Background(), 20*idle)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", raw.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	var last time.Time
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			last = time.Now()
		}
		if err == nil {
			continue
		}
		silent := time.Since(last)
		if !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("after %v of silence: err = %v, want ErrIdleTimeout", silent, err)
		}
		if silent < idle {
			t.Fatalf("cut after %v of silence, before the idle timeout of %v", silent, idle)
		}
		return
	}
}

// TestIdleConnWrite: the write side keeps the same promise. The reader
// takes a few bytes at a tenth of the timeout, then stops reading.
func TestIdleConnWrite(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	a, b := net.Pipe()
	defer a.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 8)
		for range 12 {
			if _, err := io.ReadFull(b, buf); err != nil {
				return
			}
			time.Sleep(idle / 10)
		}
		// Stop reading; leave when the writer gives up.
		io.ReadAll(io.LimitReader(b, 0))
	}()
	ic := &idleConn{Conn: a}
	var last time.Time
	for {
		ic.startWrite(idle)
		_, err := ic.Write([]byte("12345678"))
		if err == nil {
			last = time.Now()
			continue
		}
		silent := time.Since(last)
		if !isTimeout(err) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if silent < idle {
			t.Fatalf("write cut after %v without progress, before the idle timeout of %v", silent, idle)
		}
		break
	}
	b.Close()
	<-done
}
