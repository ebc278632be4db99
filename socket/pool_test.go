package socket

import (
	"net"
	"testing"
	"time"
)

// closeCounter is a pooled connection's socket: only Close is called on it.
type closeCounter struct {
	net.Conn
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// The idle pool hands out the newest connection first, closes one that
// does not fit or idled too long, and a sweep closes the expired and drops
// the lists left empty.
func TestIdlePool(t *testing.T) {
	tr := &Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Hour}
	defer tr.CloseIdleConnections()
	pooled := func(key string) (*conn, *closeCounter) {
		cc := &closeCounter{}
		return &conn{t: tr, key: key, nc: cc}, cc
	}
	a, ca := pooled("x")
	b, cb := pooled("x")
	c, cc := pooled("x")
	d, cd := pooled("y")
	tr.putIdle(a)
	tr.putIdle(b)
	tr.putIdle(c) // a third for x: no room
	tr.putIdle(d)
	if ca.closed+cb.closed+cd.closed != 0 || cc.closed != 1 {
		t.Fatalf("closed a %d, b %d, c %d, d %d; want only c", ca.closed, cb.closed, cc.closed, cd.closed)
	}
	now := time.Now()
	if got := tr.popIdle("x", now); got != b {
		t.Fatal("not the newest first")
	}
	if got := tr.popIdle("x", now); got != a {
		t.Fatal("the older one was not next")
	}
	if got := tr.popIdle("x", now); got != nil {
		t.Fatal("an empty list gave a connection")
	}
	if got := tr.popIdle("z", now); got != nil {
		t.Fatal("an unknown endpoint gave a connection")
	}

	// Returned again after the empty list was left behind; taken an hour
	// later, it has expired: closed, not handed out.
	tr.putIdle(a)
	if got := tr.popIdle("x", now.Add(2*time.Hour)); got != nil || ca.closed != 1 {
		t.Fatalf("expired connection: got %v, closed %d times", got, ca.closed)
	}

	// The sweep closes d, idle for two hours, and drops both lists.
	d.idleAt = now.Add(-2 * time.Hour)
	tr.sweep()
	tr.mu.Lock()
	left, sweeping := len(tr.idle), tr.sweeping
	tr.mu.Unlock()
	if cd.closed != 1 || left != 0 || sweeping {
		t.Fatalf("after the sweep: d closed %d times, %d lists left, sweeping %v", cd.closed, left, sweeping)
	}

	// CloseIdleConnections closes whatever is pooled.
	e, ce := pooled("x")
	tr.putIdle(e)
	tr.CloseIdleConnections()
	if ce.closed != 1 || tr.popIdle("x", time.Now()) != nil {
		t.Fatalf("CloseIdleConnections: closed %d times", ce.closed)
	}
}
