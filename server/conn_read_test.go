package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts what reaches the socket: reads and read deadlines.
type countingConn struct {
	net.Conn
	reads, oneByte, deadlines, writeDeadlines atomic.Int32
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadlines.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	if len(p) == 1 {
		c.oneByte.Add(1)
	}
	return c.Conn.Read(p)
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.deadlines.Add(1)
	return c.Conn.SetReadDeadline(t)
}

// readConn is a server-side conn over a loopback TCP connection, reading
// a request's body (no head being read), and the client's end. interval
// is how long a background read waits in the connection.
func readConn(t *testing.T, interval time.Duration) (*conn, *countingConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: sc}
	fl := &framingListener{}
	fl.lazy.interval = interval
	c := &conn{Conn: cc, ln: fl}
	t.Cleanup(func() { fl.lazy.close(); client.Close(); sc.Close() })
	return c, cc, client
}

type readResult struct {
	n   int
	b   byte
	err error
}

// backgroundRead starts a read as net/http's background reader makes one
// (one byte) and waits until it has parked in the connection (it may have
// gone on to the socket since).
func backgroundRead(t *testing.T, c *conn) <-chan readResult {
	t.Helper()
	c.rd.mu.Lock()
	parked := c.rd.seq
	c.rd.mu.Unlock()
	done := readAsync(c, 1)
	eventually(t, "the background read parks", func() bool {
		c.rd.mu.Lock()
		defer c.rd.mu.Unlock()
		return c.rd.seq > parked
	})
	return done
}

// readAsync reads up to n bytes from c in a goroutine.
func readAsync(c *conn, n int) <-chan readResult {
	done := make(chan readResult, 1)
	go func() {
		b := make([]byte, n)
		n, err := c.Read(b)
		done <- readResult{n, b[0], err}
	}()
	return done
}

func result(t *testing.T, done <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("after 5s: the read has not returned")
		return readResult{}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// net/http stops its background read with a deadline in the past: a read
// parked in the connection returns the timeout net/http expects, and the
// socket sees neither a read nor a deadline.
func TestBackgroundReadStopsWithoutTheSocket(t *testing.T) {
	t.Parallel()
	c, cc, _ := readConn(t, time.Hour)

	done := backgroundRead(t, c)
	c.SetReadDeadline(time.Unix(1, 0)) // abortPendingRead
	r := result(t, done)
	if r.n != 0 || !isTimeout(r.err) {
		t.Fatalf("stopped read: %d, %v; want a timeout", r.n, r.err)
	}
	c.SetReadDeadline(time.Time{})
	if n, d := cc.reads.Load(), cc.deadlines.Load(); n != 0 || d != 0 {
		t.Errorf("the socket saw %d reads and %d deadlines; want none", n, d)
	}
	if c.gone.Load() {
		t.Error("a stopped background read was taken for the client leaving")
	}

	// Stopped before it parked: it returns at once.
	c.SetReadDeadline(time.Unix(1, 0))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("read after the stop: %d, %v; want a timeout", n, err)
	}
	c.SetReadDeadline(time.Time{})
	if n := cc.reads.Load(); n != 0 {
		t.Errorf("the socket saw %d reads", n)
	}

	// A deadline in the past that stopped a parked read holds for the
	// reads after it, though the socket was not told.
	c, cc, _ = readConn(t, time.Hour)
	done = backgroundRead(t, c)
	c.SetReadDeadline(time.Unix(1, 0))
	if r := result(t, done); !isTimeout(r.err) {
		t.Fatalf("stopped read: %v; want a timeout", r.err)
	}
	if r := result(t, readAsync(c, 16)); !isTimeout(r.err) {
		t.Fatalf("a read after the stop: %d, %v; want a timeout", r.n, r.err)
	}
	if d := cc.deadlines.Load(); d != 0 {
		t.Errorf("the socket saw %d deadlines; want none", d)
	}
}

// A deadline in the past stops a read that is on the socket (one that did
// not park), through the socket's deadline; with none on it, the socket is
// not told, and the next read times out all the same.
func TestPastDeadlineStopsAReadOnTheSocket(t *testing.T) {
	t.Parallel()
	c, cc, _ := readConn(t, time.Hour)
	done := readAsync(c, 16)
	eventually(t, "the read is on the socket", func() bool { return c.rd.reading.Load() == 1 })
	c.SetReadDeadline(time.Unix(1, 0))
	if r := result(t, done); !isTimeout(r.err) {
		t.Fatalf("read: %d, %v; want a timeout", r.n, r.err)
	}
	if cc.deadlines.Load() != 1 {
		t.Errorf("%d socket deadlines, want 1", cc.deadlines.Load())
	}

	c, cc, _ = readConn(t, time.Hour)
	c.SetReadDeadline(time.Unix(1, 0))
	if r := result(t, readAsync(c, 16)); !isTimeout(r.err) {
		t.Fatalf("read after the deadline: %d, %v; want a timeout", r.n, r.err)
	}
	if cc.deadlines.Load() != 0 || cc.reads.Load() != 0 {
		t.Errorf("the socket saw %d deadlines and %d reads, want none", cc.deadlines.Load(), cc.reads.Load())
	}
}

// A background read still parked after the interval reads the socket: the
// client leaving is noticed (and cancels the request being forwarded), and
// a pipelined request's first byte is read as net/http would read it.
func TestBackgroundReadReadsTheSocketLater(t *testing.T) {
	t.Parallel()
	t.Run("client leaves", func(t *testing.T) {
		t.Parallel()
		c, cc, client := readConn(t, 20*time.Millisecond)
		o := newOutbound(t.Context())
		c.follow(o)
		done := backgroundRead(t, c)
		eventually(t, "the parked read reads the socket", func() bool { return cc.reads.Load() == 1 })
		client.Close()
		r := result(t, done)
		if !errors.Is(r.err, io.EOF) {
			t.Fatalf("read: %d, %v; want EOF", r.n, r.err)
		}
		if !c.gone.Load() || o.Err() == nil {
			t.Error("the client leaving did not cancel the request followed")
		}
	})
	t.Run("pipelined byte", func(t *testing.T) {
		t.Parallel()
		c, _, client := readConn(t, 20*time.Millisecond)
		done := backgroundRead(t, c)
		client.Write([]byte("G"))
		if r := result(t, done); r.n != 1 || r.b != 'G' || r.err != nil {
			t.Fatalf("read: %d %q, %v; want the byte", r.n, r.b, r.err)
		}
	})
	t.Run("listener closed", func(t *testing.T) {
		t.Parallel()
		c, cc, client := readConn(t, time.Hour)
		done := backgroundRead(t, c)
		c.ln.lazy.close() // a shutdown: parked reads read their sockets at once
		eventually(t, "the parked read reads the socket", func() bool { return cc.reads.Load() == 1 })
		client.Write([]byte("G"))
		if r := result(t, done); r.n != 1 || r.err != nil {
			t.Fatalf("read: %d, %v; want the byte", r.n, r.err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		c, _, _ := readConn(t, time.Hour)
		done := backgroundRead(t, c)
		c.Close()
		if r := result(t, done); !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("read: %d, %v; want the closed connection's error", r.n, r.err)
		}
	})
}

// Only a one-byte read between requests waits in the connection: a head's
// reads, and longer ones, go to the socket at once.
func TestOtherReadsGoToTheSocket(t *testing.T) {
	t.Parallel()
	c, cc, client := readConn(t, time.Hour)
	c.fr.feed([]byte("GET / HTTP/1.1\r\n")) // a head under way
	client.Write([]byte("G"))
	if r := result(t, readAsync(c, 1)); r.n != 1 || r.err != nil {
		t.Fatalf("a head's read: %d, %v", r.n, r.err)
	}
	c.fr.restart() // between requests
	client.Write([]byte("ET"))
	if r := result(t, readAsync(c, 16)); r.n != 2 || r.err != nil {
		t.Fatalf("a longer read: %d, %v", r.n, r.err)
	}
	if cc.reads.Load() != 2 {
		t.Errorf("socket reads %d, want 2", cc.reads.Load())
	}
}

// The socket's deadline is set only when an earlier one is asked for;
// when a kept earlier one fires, the read goes on to the deadline set.
func TestReadDeadlineKeptEarlier(t *testing.T) {
	t.Parallel()
	c, cc, client := readConn(t, time.Hour)
	now := time.Now()
	for _, step := range []struct {
		at   time.Time
		sets int32
	}{
		{now.Add(time.Hour), 1},
		{now.Add(2 * time.Hour), 1}, // later: kept
		{time.Time{}, 1},            // none: kept
		{now.Add(30 * time.Minute), 2},
	} {
		c.SetReadDeadline(step.at)
		if got := cc.deadlines.Load(); got != step.sets {
			t.Fatalf("after SetReadDeadline(%v): %d socket deadlines set, want %d", step.at, got, step.sets)
		}
	}

	// An early socket deadline fires; the read times out at the one set.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	c.SetReadDeadline(start.Add(300 * time.Millisecond))
	if _, err := c.Read(make([]byte, 16)); !isTimeout(err) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("timed out after %v, before the deadline set (300ms)", d)
	}

	// With none set after an earlier one, the read waits for the data
	// past the socket's kept deadline.
	c, cc, client = readConn(t, time.Hour)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	c.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(150 * time.Millisecond)
		client.Write([]byte("late"))
	}()
	b := make([]byte, 16)
	if n, err := c.Read(b); err != nil || string(b[:n]) != "late" {
		t.Fatalf("read: %q, %v; want the late bytes", b[:n], err)
	}
	if got := cc.deadlines.Load(); got != 2 { // the kept one, and none once it fired
		t.Errorf("%d socket deadlines set, want 2", got)
	}
}

// read_header and client_idle hold on a kept-alive connection as net/http
// sets them, though the socket keeps an earlier deadline: a client idle
// longer than read_header (not client_idle) is served; one slower than
// read_header with its next head, or idle past client_idle, is closed.
func TestClientTimeoutsOnAKeptAliveConnection(t *testing.T) {
	t.Parallel()
	cfg := testConfigTB(t, "http://127.0.0.1:1")
	cfg.Timeouts.ReadHeader = 200 * time.Millisecond
	cfg.Timeouts.ClientIdle = 10 * time.Second
	h := start(t, cfg)
	get := "GET /nowhere HTTP/1.1\r\nHost: proxy\r\n\r\n"

	cc := dialProxy(t, h)
	for i := range 3 {
		cc.send(get)
		if resp, _ := cc.response(); resp.StatusCode != 404 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		time.Sleep(400 * time.Millisecond) // past read_header, within client_idle
	}
	cc.send("GET /nowhere HTTP/1.1\r\n") // and the rest never comes
	began := time.Now()
	if !cc.closedByProxy() {
		t.Fatal("a head slower than read_header was waited for")
	}
	if d := time.Since(began); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v; read_header is 200ms (client_idle 10s)", d)
	}

	cfg = testConfigTB(t, "http://127.0.0.1:1")
	cfg.Timeouts.ReadHeader = 200 * time.Millisecond
	cfg.Timeouts.ClientIdle = 800 * time.Millisecond
	h = start(t, cfg)
	cc = dialProxy(t, h)
	began = time.Now() // before client_idle's clock starts: a slow test cannot shorten it
	cc.send(get)
	cc.response()
	if !cc.closedByProxy() {
		t.Fatal("an idle connection was kept past client_idle")
	}
	if d := time.Since(began); d < 800*time.Millisecond {
		t.Errorf("closed after %v, before client_idle (800ms)", d)
	}
}

// countingListener hands out its connections as countingConns, which
// record the one-byte reads that reach the socket.
type countingListener struct {
	net.Listener
	conns chan *countingConn
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.conns <- cc
	return cc, nil
}

// Through the real server, net/http's background read of a request that
// ends within lazyReadAfter never reaches the socket, the socket's read
// deadline is set once for many requests (read_header's first), and the
// write deadline net/http clears after each request, never set, is not.
// The wait is long here: a request that a busy machine holds up past the
// default 50–100 ms would send its background read to the socket, as it
// should.
func TestServerBackgroundReadStaysOffTheSocket(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	srv, err := New(testConfigTB(t, fake.URL), Options{Logger: slog.New(slog.DiscardHandler), Version: "test", lazyReadAfter: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := countingListener{ln, make(chan *countingConn, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, cl) }()
	defer func() {
		cancel()
		<-served
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	const requests = 20
	for i := range requests {
		io.WriteString(c, postRequest("/openai/v1/chat/completions", `{"model":"m"}`))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	sc := <-cl.conns
	if n := sc.oneByte.Load(); n != 0 {
		t.Errorf("%d one-byte reads reached the socket over %d requests, want none", n, requests)
	}
	if n := sc.deadlines.Load(); n > 2 {
		t.Errorf("%d read deadlines set on the socket over %d requests, want 1 (2 if they took 10s)", n, requests)
	}
	if n := sc.writeDeadlines.Load(); n != 0 {
		t.Errorf("%d write deadlines set on the socket, want none (none was ever set to clear)", n)
	}
}
