package socket

import (
	"net"
	"time"

	"github.com/llmproxy/llmproxy/internal/clock"
)

// idleConn is the TCP connection under TLS. It keeps the timeouts exact
// while moving the kernel deadline only now and then.
//
// Setting a deadline resets a runtime timer, too dear to do on every read
// and write of a busy stream, or twice for every request on a pooled
// connection. So the deadline the socket has may be earlier than the one
// due, never later: when it fires, Read checks the one due — since the
// last byte, or since the caller started waiting, whichever is later,
// under the idle timeout; a fixed time for the response header and the
// liveness probe — and when it has not come, moves the deadline to it
// and waits on. A pooled connection keeps the deadline an earlier request
// left (an earlier one is moved only when it fires: once per idle timeout
// under steady use); a later one is moved at once. A busy stream costs
// one clock read per socket read; a silent one at most two timer firings.
// A stream relayed by body.Relay also has the deadline kept within 250 ms
// of a read that skipped the socket (recheckAfter): about four firings a
// second while events come, one per event when they are further apart.
//
// Writes keep the idle timeout the same way, moving the deadline when a
// quarter of the idle timeout has passed since it last moved.
//
// Each direction's fields are used by one goroutine at a time: reads by the
// one reading the response (or, after an upgrade, the relay's reader),
// writes by the one writing the request (or the relay's writer).
type idleConn struct {
	net.Conn

	readIdle  time.Duration // the idle timeout on reads; 0: readUntil, or none
	readFrom  time.Time     // the idle clock for reads runs from here
	readUntil time.Time     // a fixed deadline (readIdle 0); zero: none
	readSet   time.Time     // the socket's read deadline: no later than the one due

	writeIdle   time.Duration
	writeFrom   time.Time
	writePushed time.Time
}

// startRead starts a read that may wait for idle: the clock runs from now
// (a slow reader is not a silent upstream).
func (ic *idleConn) startRead(idle time.Duration) {
	now := clock.Now()
	ic.readIdle, ic.readFrom, ic.readUntil = idle, now, time.Time{}
	ic.readBy(now.Add(idle))
}

// startFixed starts reads that must end within d, however many bytes come
// meanwhile: the response header's timeout, the liveness probe.
func (ic *idleConn) startFixed(d time.Duration) {
	ic.readIdle, ic.readUntil = 0, clock.Now().Add(d)
	ic.readBy(ic.readUntil)
}

// stopRead ends the timeouts on reads. A deadline the socket still has
// is cleared when it fires.
func (ic *idleConn) stopRead() {
	ic.readIdle, ic.readUntil = 0, time.Time{}
}

// readBy makes the socket's read deadline come no later than due.
func (ic *idleConn) readBy(due time.Time) {
	if ic.readSet.IsZero() || ic.readSet.After(due) {
		ic.setRead(due)
	}
}

func (ic *idleConn) setRead(t time.Time) error {
	ic.readSet = t
	return ic.Conn.SetReadDeadline(t)
}

// readDue is the deadline reads are under; zero: none.
func (ic *idleConn) readDue() time.Time {
	if ic.readIdle > 0 {
		return ic.readFrom.Add(ic.readIdle)
	}
	return ic.readUntil
}

// SetReadDeadline and SetDeadline set a fixed deadline, as on any
// connection: the idle timeouts end.
func (ic *idleConn) SetReadDeadline(t time.Time) error {
	ic.readIdle, ic.readUntil = 0, t
	return ic.setRead(t)
}

func (ic *idleConn) SetDeadline(t time.Time) error {
	ic.readIdle, ic.readUntil, ic.readSet = 0, t, t
	ic.stopWrite()
	return ic.Conn.SetDeadline(t)
}

func (ic *idleConn) startWrite(idle time.Duration) {
	now := clock.Now()
	ic.writeIdle, ic.writeFrom = idle, now
	if now.Sub(ic.writePushed) > idle/4 {
		ic.Conn.SetWriteDeadline(now.Add(idle))
		ic.writePushed = now
	}
}

func (ic *idleConn) stopWrite() {
	ic.writeIdle, ic.writePushed = 0, time.Time{}
}

func (ic *idleConn) Read(p []byte) (int, error) {
	for {
		n, err := ic.Conn.Read(p)
		if n > 0 && ic.readIdle > 0 {
			ic.readFrom = clock.Now()
		}
		if n > 0 || err == nil || !isTimeout(err) {
			return n, err
		}
		due := ic.readDue()
		if !due.IsZero() && time.Until(due) <= 0 {
			return n, err
		}
		// An earlier deadline fired (an old one left in place, or the
		// idle clock moved since): wait on until the one due.
		ic.setRead(due)
	}
}

func (ic *idleConn) Write(p []byte) (int, error) {
	written := 0
	for {
		n, err := ic.Conn.Write(p[written:])
		written += n
		if n > 0 && ic.writeIdle > 0 {
			ic.writeFrom = clock.Now()
		}
		if err == nil || ic.writeIdle == 0 || !isTimeout(err) {
			return written, err
		}
		due := ic.writeFrom.Add(ic.writeIdle)
		if time.Until(due) <= 0 {
			return written, err
		}
		ic.Conn.SetWriteDeadline(due)
		ic.writePushed = ic.writeFrom
	}
}
