package server

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/sockio"
)

// tcpPair returns both ends of a loopback TCP connection, the server's
// wrapped as the framing listener wraps it.
func tcpPair(t *testing.T) (server *conn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); sc.Close() })
	return &conn{Conn: sockio.Wrap(sc)}, client
}

// TestAcceptedConnectionsUseRawCalls: the framing listener wraps what it
// accepts in internal/sockio, which reads and writes outside the
// scheduler's system-call state; dropping it would cost a tenth of a
// request's CPU without failing anything else.
func TestAcceptedConnectionsUseRawCalls(t *testing.T) {
	if !sockio.Raw {
		t.Skip("this build wraps nothing (msan, asan)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := newFramingListener(ln, 1<<20)
	defer fl.Close()
	if fl.watch != nil {
		defer fl.watch.close()
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := fl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*conn).Conn.(*sockio.Conn); !ok {
		t.Fatalf("an accepted connection holds a %T, not a *sockio.Conn", c.(*conn).Conn)
	}
}

func TestClientWatcher(t *testing.T) {
	cw, err := newClientWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer cw.close()
	watched := func(t *testing.T) (*handoff, net.Conn, context.Context) {
		sc, client := tcpPair(t)
		ctx, cancel := context.WithCancel(context.Background())
		h := &handoff{c: sc, cancel: cancel}
		if !cw.add(h) {
			t.Fatal("add refused a TCP connection")
		}
		return h, client, ctx
	}
	// settle waits until the watcher has handled what happened so far: a
	// sentinel connection closed now is noticed after it.
	settle := func(t *testing.T) {
		t.Helper()
		_, client, ctx := watched(t)
		client.Close()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the sentinel's leaving was not noticed")
		}
	}
	state := func(h *handoff) (gone, pending bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.gone, h.pending
	}

	t.Run("the client leaves", func(t *testing.T) {
		h, client, ctx := watched(t)
		client.Close()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the upstream context was not canceled when the client left")
		}
		if gone, pending := state(h); !gone || pending {
			t.Errorf("gone %v, pending %v", gone, pending)
		}
		cw.remove(h)
	})
	t.Run("the client sends its next request", func(t *testing.T) {
		h, client, ctx := watched(t)
		client.Write([]byte("POST / HTTP/1.1\r\n"))
		eventually(t, "the bytes were not noticed", func() bool { _, p := state(h); return p })
		client.Close() // one event per watch: nothing more is noticed
		settle(t)
		if ctx.Err() != nil {
			t.Error("watched after its first event")
		}
		var b [4]byte
		if n, _ := h.c.Read(b[:]); string(b[:n]) != "POST" {
			t.Errorf("the watcher consumed bytes: read %q", b[:n])
		}
		cw.remove(h)
	})
	t.Run("the client sends its next request and shuts its side", func(t *testing.T) {
		// Both before the watch begins: its first event holds both.
		sc, client := tcpPair(t)
		client.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		client.(*net.TCPConn).CloseWrite()
		time.Sleep(20 * time.Millisecond) // loopback: both arrived
		ctx, cancel := context.WithCancel(context.Background())
		h := &handoff{c: sc, cancel: cancel}
		if !cw.add(h) {
			t.Fatal("add refused a TCP connection")
		}
		eventually(t, "the bytes were not noticed", func() bool { _, p := state(h); return p })
		if gone, _ := state(h); gone || ctx.Err() != nil {
			t.Error("a client that shut its side behind a request was taken as gone")
		}
		cw.remove(h)
	})
	t.Run("removed", func(t *testing.T) {
		h, client, ctx := watched(t)
		cw.remove(h)
		if h.token != 0 {
			t.Error("still holds its token")
		}
		client.Close()
		settle(t)
		if ctx.Err() != nil {
			t.Error("a removed connection was still watched")
		}
	})
	t.Run("ended", func(t *testing.T) {
		h, client, ctx := watched(t)
		h.mu.Lock()
		h.ended = true // the relay is past the stream: news is its own to read
		h.mu.Unlock()
		client.Close()
		settle(t)
		if ctx.Err() != nil {
			t.Error("an ended stream's upstream context was canceled")
		}
		cw.remove(h)
	})
}

func TestClientWatcherClosed(t *testing.T) {
	cw, err := newClientWatcher()
	if err != nil {
		t.Fatal(err)
	}
	cw.close()
	cw.close() // twice is fine
	sc, _ := tcpPair(t)
	if cw.add(&handoff{c: sc, cancel: func() {}}) {
		t.Error("a closed watcher took a connection")
	}
}
