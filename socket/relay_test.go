package socket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/relay"
	"github.com/llmproxy/llmproxy/internal/sockio"
	"github.com/llmproxy/llmproxy/providertest"
)

// Relay: a chunked body read within the socket's ReadLoop (body.Relay).

// sseHead is the head of an event stream of unknown length.
const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

// relayAll relays resp's body to the end with a buffer of size n, calling
// Relay again after each pause; pause says which puts ask for one.
func relayAll(t *testing.T, resp *http.Response, n int, pause func(i int) bool) (string, error) {
	t.Helper()
	r, ok := resp.Body.(interface {
		Relay(next func() []byte, put func(int) bool) error
	})
	if !ok {
		t.Fatalf("the body %T does not relay", resp.Body)
	}
	buf := make([]byte, n)
	var got strings.Builder
	puts := 0
	for {
		err := r.Relay(func() []byte { return buf }, func(n int) bool {
			if n == 0 {
				return true // a wait (TestRelaySaysWhenItWaits)
			}
			got.Write(buf[:n])
			puts++
			return pause == nil || !pause(puts)
		})
		if err == ErrPaused {
			continue
		}
		return got.String(), err
	}
}

// chunkedEvents writes a chunked SSE answer of n events, each chunk cut
// across two writes and the size lines of some across two more, then a
// trailer; it returns what the body holds.
func chunkedEvents(c io.Writer, n int) string {
	io.WriteString(c, sseHead)
	var all strings.Builder
	for i := range n {
		ev := fmt.Sprintf("data: {\"i\":%d}\n\n", i)
		all.WriteString(ev)
		frame := fmt.Sprintf("%x;i=%d\r\n%s\r\n", len(ev), i, ev)
		cut := 1 + i%(len(frame)-1)
		io.WriteString(c, frame[:cut])
		io.WriteString(c, frame[cut:])
	}
	io.WriteString(c, "0\r\nX-Done: yes\r\n\r\n")
	return all.String()
}

// eventsUpstream answers every request with chunkedEvents(n) and sends
// what each body holds on want.
func eventsUpstream(t *testing.T, n int) (raw *providertest.Raw, want chan string) {
	want = make(chan string, 4)
	raw = providertest.NewRaw(t, func(c *providertest.RawConn) {
		for {
			if _, _, err := c.ReadRequest(); err != nil {
				return
			}
			want <- chunkedEvents(c, n)
		}
	})
	return raw, want
}

// recordEvents answers one request with n events, each chunk in a TLS
// record of its own, gap apart (before each), then the last chunk; it
// sends what the body holds on sent once all is written, and holds the
// connection until the client leaves.
func recordEvents(t *testing.T, n int, gap time.Duration) (raw *providertest.Raw, sent chan string) {
	sent = make(chan string, 1)
	raw = providertest.NewRaw(t, func(c *providertest.RawConn) {
		if _, _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, sseHead)
		var all strings.Builder
		for i := range n {
			time.Sleep(gap)
			ev := fmt.Sprintf("data: {\"i\":%d}\n\n", i)
			all.WriteString(ev)
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
		}
		io.WriteString(c, "0\r\n\r\n")
		sent <- all.String()
		c.R.ReadByte()
	})
	return raw, sent
}

// TestRelayDecodesAndReuses: events whose chunks arrive in pieces come
// out whole and in order, the trailer is read, and the connection goes
// back to the pool for the next request, a while later.
func TestRelayDecodesAndReuses(t *testing.T) {
	t.Parallel()
	raw, want := eventsUpstream(t, 200)
	tr := newTransport(t)
	for i, size := range []int{7, 1 << 10} {
		if i > 0 {
			// Past the deadline a relay keeps close after a read that
			// skipped the socket, and past the probe-free reuse: the
			// liveness probe must not take that deadline for a close.
			time.Sleep(2 * recheckAfter)
		}
		req, _ := http.NewRequest("GET", raw.URL+"/stream", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := relayAll(t, resp, size, nil)
		if err != io.EOF {
			t.Fatalf("request %d: Relay ended with %v, want io.EOF", i, err)
		}
		if w := <-want; got != w {
			t.Fatalf("request %d: relayed %d bytes, not the %d sent:\n%q", i, len(got), len(w), got)
		}
	}
	if n := raw.Conns(); n != 1 {
		t.Fatalf("%d connections for two streams relayed to their end, want 1", n)
	}
}

// TestRelayPausesAndGoesOn: put stopping the relay loses nothing; the
// next call goes on where it stopped. A body Read has begun is relayed
// with Reads (net/http's decoder holds its state), and a body that is not
// chunked likewise.
func TestRelayPausesAndGoesOn(t *testing.T) {
	t.Parallel()
	want := make(chan string, 3)
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		for {
			req, _, err := c.ReadRequest()
			if err != nil {
				return
			}
			if req.URL.Path == "/length" {
				body := strings.Repeat("data: x\n\n", 300)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				want <- body
				continue
			}
			want <- chunkedEvents(c, 100)
		}
	})
	tr := newTransport(t)
	for _, path := range []string{"/paused", "/read-first", "/length"} {
		req, _ := http.NewRequest("GET", raw.URL+path, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var first []byte
		if path == "/read-first" {
			first = make([]byte, 5)
			n, err := io.ReadFull(resp.Body, first)
			if err != nil {
				t.Fatal(err)
			}
			first = first[:n]
		}
		got, err := relayAll(t, resp, 64, func(i int) bool { return i%3 == 0 })
		if err != io.EOF {
			t.Fatalf("%s: Relay ended with %v, want io.EOF", path, err)
		}
		if w := <-want; string(first)+got != w {
			t.Fatalf("%s: relayed %q, want %q", path, string(first)+got, w)
		}
	}
}

// TestRelayAndReadTakeTurns: a first read through Relay (relay.Read, as
// the gateway reads an answer's first bytes) leaves the body to the
// relay's decoder, and a Read once Relay has begun is one relayed read:
// Reads and Relay calls may follow one another, and nothing is lost.
func TestRelayAndReadTakeTurns(t *testing.T) {
	t.Parallel()
	raw, want := eventsUpstream(t, 100)
	tr := newTransport(t)
	req, _ := http.NewRequest("GET", raw.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b := resp.Body.(*body)
	var got strings.Builder
	p := make([]byte, 5)
	n, err := relay.Read(b, p)
	if err != nil || n == 0 {
		t.Fatalf("first relayed read: %d, %v", n, err)
	}
	got.Write(p[:n])
	if b.dec == nil || b.read {
		t.Fatal("the first read went through net/http's decoder: the rest cannot be relayed in the loop")
	}
	ended := false
	for round := 0; !ended; round++ {
		// A few Reads, then a relay paused after a few puts.
		for range 3 {
			n, err := resp.Body.Read(p)
			got.Write(p[:n])
			if err == io.EOF {
				ended = true
				break
			}
			if err != nil {
				t.Fatalf("Read after Relay: %v", err)
			}
		}
		if ended {
			break
		}
		puts := 0
		buf := make([]byte, 11)
		err := b.Relay(func() []byte { return buf }, func(n int) bool {
			got.Write(buf[:n])
			puts++
			return puts < 4
		})
		if err == io.EOF {
			break
		}
		if err != ErrPaused {
			t.Fatalf("round %d: Relay ended with %v", round, err)
		}
	}
	if w := <-want; got.String() != w {
		t.Fatalf("got %q, want %q", got.String(), w)
	}
	if b.read {
		t.Fatal("a Read went to net/http's decoder after Relay began")
	}
}

// TestRelayGathersWhatArrivedTogether: events that are all queued when
// the relay reads (a stream it fell behind on: one TLS record each) reach
// put together, one write to the client rather than one per event, and
// whole.
func TestRelayGathersWhatArrivedTogether(t *testing.T) {
	t.Parallel()
	const events = 20
	raw, sent := recordEvents(t, events, 0) // all queued before the relay reads
	tr := newTransport(t)
	req, _ := http.NewRequest("GET", raw.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	want := <-sent
	time.Sleep(50 * time.Millisecond) // the records are queued on the socket
	puts := 0
	got, err := relayAll(t, resp, 4<<10, func(int) bool { puts++; return false })
	if err != io.EOF {
		t.Fatalf("Relay ended with %v, want io.EOF", err)
	}
	if got != want {
		t.Fatalf("relayed %q, want %q", got, want)
	}
	// The socket's first read may not take every record (TLS reads what a
	// record needs, and a little more): a few puts, not one per event.
	if puts > 3 {
		t.Errorf("%d events that were all queued took %d puts, want at most 3", events, puts)
	}
}

// TestRelaySaysWhenItWaits: before each wait for more the relay calls
// put(0), and it does not touch next's buffer again until it has called
// next: a caller that gives its buffer back at put(0) (the server's
// handoff, so that an idle stream holds none) loses nothing.
func TestRelaySaysWhenItWaits(t *testing.T) {
	t.Parallel()
	const events = 5
	raw, sent := recordEvents(t, events, 50*time.Millisecond)
	tr := newTransport(t)
	req, _ := http.NewRequest("GET", raw.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Body.(interface {
		Relay(next func() []byte, put func(int) bool) error
	})
	var (
		cur   []byte // next's buffer; nil once given back
		got   strings.Builder
		waits int
	)
	for {
		err = r.Relay(func() []byte {
			cur = make([]byte, 1<<10)
			return cur
		}, func(n int) bool {
			if cur == nil {
				t.Fatalf("put(%d) after put(0), with no next between", n)
			}
			if n == 0 {
				waits++
				copy(cur, bytes.Repeat([]byte("X"), len(cur))) // the buffer is the caller's again
				cur = nil
				return true
			}
			got.Write(cur[:n])
			return true
		})
		if err != ErrPaused {
			break
		}
	}
	if err != io.EOF {
		t.Fatalf("Relay ended with %v, want io.EOF", err)
	}
	if want := <-sent; got.String() != want {
		t.Fatalf("relayed %q, want %q", got.String(), want)
	}
	// One wait before each event; a busy machine that holds the relay up
	// for a gap may find two events together once.
	if waits < events-1 {
		t.Errorf("%d put(0) for %d events 50 ms apart, want one before each wait", waits, events)
	}
}

// TestRelayNoticesAnEndThatCameWithTheData: the upstream sends an event
// and at once ends the connection (FIN or reset, no close_notify) before
// the relay reads: the read of the event empties the socket, the poller
// does not tell of the end again, and the relay must still notice it
// soon (recheckAfter), not at the idle timeout.
func TestRelayNoticesAnEndThatCameWithTheData(t *testing.T) {
	t.Parallel()
	for _, reset := range []bool{false, true} {
		go1 := make(chan struct{})
		raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
			if _, _, err := c.ReadRequest(); err != nil {
				return
			}
			io.WriteString(c, sseHead)
			<-go1
			io.WriteString(c, "e\r\ndata: partial\n\r\n")
			tcp := c.Conn.(*tls.Conn).NetConn().(*net.TCPConn)
			if reset {
				tcp.SetLinger(0)
			}
			tcp.Close()
		})
		tr := newTransport(t)
		tr.IdleTimeout = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", raw.URL+"/stream", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		close(go1)
		time.Sleep(100 * time.Millisecond) // the event and the end are queued
		start := time.Now()
		_, err = relayAll(t, resp, 1<<10, nil)
		took := time.Since(start)
		cancel()
		if err == io.EOF || err == nil || errors.Is(err, ErrIdleTimeout) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("reset %v: the relay ended with %v after %v, want the upstream's failure", reset, err, took)
		}
		var se *Error
		if !errors.As(err, &se) || se.Op != OpResponse {
			t.Fatalf("reset %v: %v is not a response failure", reset, err)
		}
	}
}

// TestRelayIdleTimeout: Relay keeps the idle timeout as Read does: not
// before it (the deadline it keeps within 250 ms of a skipped read is not
// the timeout), with ErrIdleTimeout.
func TestRelayIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 600 * time.Millisecond
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		if _, _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, sseHead)
		for i := range 8 {
			ev := fmt.Sprintf("data: %d\n\n", i)
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
			time.Sleep(idle / 10)
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
	var last time.Time
	buf := make([]byte, 64)
	err = resp.Body.(interface {
		Relay(func() []byte, func(int) bool) error
	}).Relay(func() []byte { return buf }, func(n int) bool {
		if n > 0 { // not a wait
			last = time.Now()
		}
		return true
	})
	silent := time.Since(last)
	if !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("after %v of silence: %v, want ErrIdleTimeout", silent, err)
	}
	// The idle clock runs from the read that brought the last event,
	// a moment before put saw it (longer on a busy machine): 100 ms of
	// slack, far from the 250 ms recheck, which must not count as the
	// timeout.
	if silent < idle-100*time.Millisecond {
		t.Fatalf("cut after %v of silence, before the idle timeout of %v", silent, idle)
	}
}

// TestRelayCanceled: the client leaving (the request's context) ends a
// relay that waits, as it ends a Read.
func TestRelayCanceled(t *testing.T) {
	t.Parallel()
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		if _, _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, sseHead+"9\r\ndata: 1\n\n\r\n")
		c.R.ReadByte()
	})
	tr := newTransport(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", raw.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	buf := make([]byte, 64)
	err = resp.Body.(interface {
		Relay(func() []byte, func(int) bool) error
	}).Relay(func() []byte { return buf }, func(n int) bool {
		got.Write(buf[:n])
		time.AfterFunc(20*time.Millisecond, cancel)
		return true
	})
	if got.String() != "data: 1\n\n" || !errors.Is(err, context.Canceled) {
		t.Fatalf("relayed %q, then %v; want the event, then context.Canceled", got.String(), err)
	}
}

// TestRelayEndsAfterAPauseOnTheLastRead: put pauses on the read that also
// ended the body, and the request is canceled before the next call (the
// client left as the stream ended): the body ended, so that call reports
// its end, not the cancel.
func TestRelayEndsAfterAPauseOnTheLastRead(t *testing.T) {
	t.Parallel()
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		if _, _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, sseHead+"9\r\ndata: 1\n\n\r\n0\r\n\r\n")
		c.R.ReadByte()
	})
	tr := newTransport(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", raw.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the whole body is there
	r := resp.Body.(interface {
		Relay(func() []byte, func(int) bool) error
	})
	buf := make([]byte, 64)
	var got string
	err = r.Relay(func() []byte { return buf }, func(n int) bool { got += string(buf[:n]); return false })
	if err != ErrPaused || got != "data: 1\n\n" {
		t.Fatalf("first call: %q, %v; want the event and ErrPaused", got, err)
	}
	cancel()
	time.Sleep(20 * time.Millisecond) // the cancel closed the connection
	if err := r.Relay(func() []byte { return buf }, func(int) bool { return true }); err != io.EOF {
		t.Fatalf("after the pause on the last read: %v, want io.EOF", err)
	}
}

// errWith is a reader that returns its bytes and an error together.
type errWith struct {
	b   string
	err error
}

func (r *errWith) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, r.err
}

// TestHeaderLimitDropsWouldBlockWithBytes: bytes that come with
// ErrWouldBlock (crypto/tls looking ahead for an alert) go up alone, so
// that no buffer above keeps the error for a later read; ErrWouldBlock
// alone, and other errors, go up as they are.
func TestHeaderLimitDropsWouldBlockWithBytes(t *testing.T) {
	l := &headerLimit{r: &errWith{"data", sockio.ErrWouldBlock}}
	buf := make([]byte, 8)
	if n, err := l.Read(buf); n != 4 || err != nil {
		t.Fatalf("bytes with ErrWouldBlock: %d, %v; want 4, nil", n, err)
	}
	if n, err := l.Read(buf); n != 0 || err != sockio.ErrWouldBlock {
		t.Fatalf("ErrWouldBlock alone: %d, %v", n, err)
	}
	l = &headerLimit{r: &errWith{"data", io.ErrUnexpectedEOF}}
	if n, err := l.Read(buf); n != 4 || err != io.ErrUnexpectedEOF {
		t.Fatalf("bytes with another error: %d, %v", n, err)
	}
}

// TestReadyAndTryRead: an event that came with the response's head is
// ready (relay.Readier) and TryRead hands it over; with nothing buffered
// the body is not ready and TryRead returns nothing rather than wait; the
// relay then goes on where TryRead stopped.
func TestReadyAndTryRead(t *testing.T) {
	t.Parallel()
	for _, withHead := range []bool{true, false} {
		t.Run(fmt.Sprintf("first event with the head %v", withHead), func(t *testing.T) {
			t.Parallel()
			next := make(chan struct{})
			raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
				if _, _, err := c.ReadRequest(); err != nil {
					return
				}
				if withHead {
					io.WriteString(c, sseHead+"5\r\none\n\n\r\n") // one write: one TLS record
				} else {
					io.WriteString(c, sseHead)
				}
				<-next
				if !withHead {
					io.WriteString(c, "5\r\none\n\n\r\n")
				}
				io.WriteString(c, "5\r\ntwo\n\n\r\n0\r\n\r\n")
				c.R.ReadByte()
			})
			release := sync.OnceFunc(func() { close(next) })
			t.Cleanup(release) // before the upstream's: a failed test lets it end
			tr := newTransport(t)
			req, _ := http.NewRequest("GET", raw.URL+"/stream", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			r, ok := resp.Body.(relay.Readier)
			if !ok {
				t.Fatalf("the body %T is not a relay.Readier", resp.Body)
			}
			if r.Ready() != withHead {
				t.Fatalf("Ready() = %v with the first event %v", !withHead, map[bool]string{true: "read with the head", false: "not sent yet"}[withHead])
			}
			tryRead := func() (string, error) {
				type result struct {
					s   string
					err error
				}
				done := make(chan result, 1)
				go func() {
					p := make([]byte, 64)
					n, err := relay.TryRead(r, p)
					done <- result{string(p[:n]), err}
				}()
				select {
				case res := <-done:
					return res.s, res.err
				case <-time.After(5 * time.Second):
					t.Fatal("TryRead waited for bytes")
					return "", nil
				}
			}
			want := "one\n\n"
			if !withHead {
				want = ""
			}
			if got, err := tryRead(); got != want || err != nil {
				t.Fatalf("TryRead = %q, %v; want %q, nil", got, err, want)
			}
			if r.Ready() {
				t.Fatal("Ready() with nothing buffered")
			}
			if got, err := tryRead(); got != "" || err != nil {
				t.Fatalf("TryRead with nothing buffered = %q, %v", got, err)
			}
			release()
			rest, err := relayAll(t, resp, 64, nil)
			if err != io.EOF || want+rest != "one\n\ntwo\n\n" {
				t.Fatalf("the relay went on with %q, %v after %q", rest, err, want)
			}
		})
	}
}

func TestChunkedReady(t *testing.T) {
	for _, tc := range []struct {
		buffered string
		state    chunkState
		left     uint64
		want     bool
	}{
		{"", chunkSizeLine, 0, false},
		{"5\r", chunkSizeLine, 0, false},       // a size line under way
		{"5\r\n", chunkSizeLine, 0, false},     // no data yet
		{"5\r\nab", chunkSizeLine, 0, true},    // some data
		{"5;x=y\r\na", chunkSizeLine, 0, true}, // with an extension
		{"0\r\n\r\n", chunkSizeLine, 0, false}, // the last chunk: no data
		{"zz\r\nab", chunkSizeLine, 0, false},  // not a size: Read's error, not data
		{"5\n\nab", chunkSizeLine, 0, false},   // a bare LF
		{"ab", chunkData, 3, true},
		{"", chunkData, 3, false},
		{"\r\n5\r\nab", chunkDataEnd, 0, false}, // Read would return it, but ready says only what is sure
	} {
		br := bufio.NewReaderSize(strings.NewReader(tc.buffered), 64)
		br.Peek(len(tc.buffered)) // buffered, as a read of the connection leaves it
		d := &chunked{br: br, state: tc.state, left: tc.left}
		if got := d.ready(); got != tc.want {
			t.Errorf("%q in state %d: ready() = %v, want %v", tc.buffered, tc.state, got, tc.want)
		}
	}
}
