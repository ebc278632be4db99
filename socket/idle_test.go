package socket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
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
		io.WriteString(c, sseHead)
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

// deadlineCounter counts the read deadlines set on the socket.
type deadlineCounter struct {
	net.Conn
	sets int
	last time.Time
}

func (d *deadlineCounter) SetReadDeadline(t time.Time) error {
	d.sets++
	d.last = t
	return d.Conn.SetReadDeadline(t)
}

// A pooled connection's requests — the response header under a fixed
// timeout, then the body under the idle one — move the socket's read
// deadline only when it would come later than the one due: after the
// first request, never (the default timeouts: header 10m, idle 5m). And
// the socket's deadline is never later than the one due.
func TestIdleConnKeepsItsDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	dc := &deadlineCounter{Conn: a}
	ic := &idleConn{Conn: dc}
	check := func(step string) {
		t.Helper()
		if due := ic.readDue(); !due.IsZero() && dc.last.After(due) {
			t.Fatalf("%s: the socket's deadline %v is later than the one due, %v", step, dc.last, due)
		}
	}
	for i := range 10 {
		ic.startFixed(10 * time.Minute)
		check("response header")
		for range 3 {
			ic.startRead(5 * time.Minute)
			check("body")
		}
		ic.stopRead()
		if i == 0 && dc.sets != 2 {
			t.Fatalf("first request: %d deadlines set, want 2 (the header's, then the earlier idle one)", dc.sets)
		}
	}
	if dc.sets != 2 {
		t.Fatalf("%d deadlines set over ten requests, want the first request's 2", dc.sets)
	}
	// A shorter fixed timeout (the liveness probe) moves it at once.
	ic.startFixed(time.Millisecond)
	check("probe")
	if dc.sets != 3 {
		t.Fatalf("the probe's earlier deadline was not set")
	}
}

// A deadline left from before fires early: the read waits on until the
// one due; an earlier one due is set at once.
func TestIdleConnLeftoverDeadline(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ic := &idleConn{Conn: a}

	const idle = 300 * time.Millisecond
	ic.startFixed(30 * time.Millisecond) // left in place by the next start
	start := time.Now()
	ic.startRead(idle)
	_, err := ic.Read(make([]byte, 1))
	if waited := time.Since(start); !isTimeout(err) || waited < idle {
		t.Fatalf("after %v: %v, want a timeout no sooner than the idle %v", waited, err, idle)
	}

	ic.SetReadDeadline(time.Time{})
	ic.startRead(time.Hour)              // sets an hour from now
	ic.startFixed(30 * time.Millisecond) // earlier: set at once
	readTimesOut(t, ic, "a fixed 30ms timeout after an hour-long idle one")

	// A deadline set as on any connection is kept as set.
	ic.startRead(time.Hour)
	ic.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	readTimesOut(t, ic, "SetReadDeadline's deadline")
}

// readTimesOut reads from ic, which nobody writes to, and fails unless the
// read ends in a timeout within 10s.
func readTimesOut(t *testing.T, ic *idleConn, deadline string) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := ic.Read(make([]byte, 1))
		errc <- err
	}()
	select {
	case err := <-errc:
		if !isTimeout(err) {
			t.Fatalf("err = %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never fired", deadline)
	}
}

// zeros is an endless request body that notes when it was last read.
type zeros struct{ last atomic.Int64 }

func (z *zeros) Read(p []byte) (int, error) {
	clear(p)
	z.last.Store(time.Now().UnixNano())
	return len(p), nil
}

// A request body the upstream stops reading is cut IdleTimeout after its
// last progress, and the round trip ends then: closing the connection
// writes no TLS close_notify, which would wait on the full send buffer for
// crypto/tls's own 5 s.
func TestStalledWriteEndsAtIdleTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) { http.ReadRequest(c.R); <-release })
	defer close(release)
	tr := newTransport(t)
	const idle = 300 * time.Millisecond
	tr.IdleTimeout = idle
	const size = 256 << 20
	z := &zeros{}
	req, _ := http.NewRequest("POST", raw.URL+"/", io.LimitReader(z, size))
	req.ContentLength = size
	_, err := tr.RoundTrip(req)
	silent := time.Since(time.Unix(0, z.last.Load()))
	if err == nil {
		t.Fatal("RoundTrip succeeded")
	}
	// Not a timing check: without the fix it is 5 s more.
	if silent > idle+4*time.Second {
		t.Fatalf("a stalled write ended %v after its last progress (IdleTimeout %v): %v", silent, idle, err)
	}
}
