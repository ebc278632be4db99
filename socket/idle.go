package socket

import (
	"net"
	"time"
)

// idleConn is the TCP connection under TLS. It keeps the idle timeout
// exact while moving the kernel deadline only now and then.
//
// Setting a deadline resets a runtime timer, too dear to do on every read
// and write of a busy stream, so the deadline moves only when a quarter of
// the idle timeout has passed since it last moved. Left at that, a stream
// whose last byte came just before a move was due would be cut up to a
// quarter early. So when the kernel reports a timeout, idleConn checks the
// real idle time — since the last byte moved in that direction, or since
// the caller started waiting, whichever is later — and when it is short of
// the idle timeout it moves the deadline to exactly the timeout after that
// moment and waits on. A busy stream costs one clock read per socket read;
// a silent one at most two timer firings.
//
// Each direction's fields are used by one goroutine at a time: reads by the
// one reading the response (or, after an upgrade, the relay's reader),
// writes by the one writing the request (or the relay's writer).
type idleConn struct {
	net.Conn

	readIdle   time.Duration // 0: no idle timeout on reads (headers, probe, upgraded)
	readFrom   time.Time     // the idle clock for reads runs from here
	readPushed time.Time     // the read deadline is readPushed + readIdle

	writeIdle   time.Duration
	writeFrom   time.Time
	writePushed time.Time
}

// startRead starts a read that may wait for idle: the clock runs from now
// (a slow reader is not a silent upstream), and the deadline moves if it
// is stale.
func (ic *idleConn) startRead(idle time.Duration) {
	now := time.Now()
	ic.readIdle, ic.readFrom = idle, now
	if now.Sub(ic.readPushed) > idle/4 {
		ic.Conn.SetReadDeadline(now.Add(idle))
		ic.readPushed = now
	}
}

// stopRead ends the idle timeout on reads; the caller sets its own
// deadline, and the next startRead one of its own.
func (ic *idleConn) stopRead() {
	ic.readIdle, ic.readPushed = 0, time.Time{}
}

func (ic *idleConn) startWrite(idle time.Duration) {
	now := time.Now()
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
			ic.readFrom = time.Now()
		}
		if n > 0 || err == nil || ic.readIdle == 0 || !isTimeout(err) {
			return n, err
		}
		due := ic.readFrom.Add(ic.readIdle)
		if !time.Now().Before(due) {
			return n, err
		}
		// The deadline was a stale one: not yet idle for the full time.
		ic.Conn.SetReadDeadline(due)
		ic.readPushed = ic.readFrom
	}
}

func (ic *idleConn) Write(p []byte) (int, error) {
	written := 0
	for {
		n, err := ic.Conn.Write(p[written:])
		written += n
		if n > 0 && ic.writeIdle > 0 {
			ic.writeFrom = time.Now()
		}
		if err == nil || ic.writeIdle == 0 || !isTimeout(err) {
			return written, err
		}
		due := ic.writeFrom.Add(ic.writeIdle)
		if !time.Now().Before(due) {
			return written, err
		}
		ic.Conn.SetWriteDeadline(due)
		ic.writePushed = ic.writeFrom
	}
}
