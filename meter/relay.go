package meter

import (
	"io"
	"slices"

	"github.com/llmproxy/llmproxy/internal/relay"
)

// Relay passes the body on as Read does — scanned on the way, the usage-only
// chunk taken out with StripUsageChunk — for a body that relays itself
// (relay.Relayer: the socket transport's, through the gateway's answer), so
// that a relayed stream keeps its one read per event. A body that does not
// relay is read by Reads. Read and Relay may follow one another.
func (m *meter) Relay(next func() []byte, put func(n int) bool) error {
	r, ok := m.body.(relay.Relayer)
	if !ok {
		return relay.Reads(m, &m.pending, next, put)
	}
	if m.strip {
		return m.relayHeld(r, next, put)
	}
	var cur []byte
	err := r.Relay(func() []byte {
		cur = next()
		return cur
	}, func(n int) bool {
		if n == 0 {
			return put(0) // a wait
		}
		m.mu.Lock()
		if !m.ended {
			m.scan(cur[:n])
		}
		m.mu.Unlock()
		return put(n)
	})
	if err == relay.ErrPaused {
		return err
	}
	m.mu.Lock()
	var fire bool
	var u Usage
	if !m.ended {
		u, fire = m.end(), true
		err = m.cut(err)
	}
	m.mu.Unlock()
	if fire && m.done != nil {
		m.done(u, err == io.EOF)
	}
	return err
}

// Ready reports whether Relay would hand over bytes without waiting: the
// body's are ready (relay.Readier), or, with StripUsageChunk, bytes an
// earlier read left ready. With held bytes of an event not yet complete,
// the relay may still find nothing to hand over; relay.TryRead then
// returns nothing rather than wait.
func (m *meter) Ready() bool {
	m.mu.Lock()
	held := m.off < m.ready
	failed := m.err != nil || m.pending != nil
	m.mu.Unlock()
	if failed {
		return false
	}
	return held || relay.Ready(m.body)
}

// relayHeld is Relay with StripUsageChunk, readHeld's counterpart: each read
// goes into buf, and what may go out (complete events but the usage-only
// chunk) is handed to put through next's buffers at once, within the read.
func (m *meter) relayHeld(r relay.Relayer, next func() []byte, put func(n int) bool) error {
	// What an earlier call or Read left ready goes first.
	if !m.putReady(next, put) {
		return relay.ErrPaused
	}
	m.mu.Lock()
	if err := m.err; err != nil {
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	err := r.Relay(func() []byte {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.room()
	}, func(n int) bool {
		if n == 0 {
			return put(0) // a wait: buf stays, the caller's buffer may go
		}
		m.mu.Lock()
		m.took(n)
		m.mu.Unlock()
		return m.putReady(next, put)
	})
	if err == relay.ErrPaused {
		return err
	}
	// The body's end or failure, as readHeld takes it.
	m.mu.Lock()
	m.took(0)
	u, fire, err := m.heldEnd(err)
	m.mu.Unlock()
	if fire && m.done != nil {
		m.done(u, err == io.EOF)
	}
	if !m.putReady(next, put) {
		return relay.ErrPaused // m.err comes at the next call
	}
	return err
}

// room makes room in buf for a read, as readHeld does before each: what
// went out goes, the held event moves up. m.mu is held.
func (m *meter) room() []byte {
	if m.off > 0 {
		k := copy(m.buf, m.buf[m.off:])
		m.buf = m.buf[:k]
		m.base += int64(m.off)
		m.ready -= m.off
		m.scanned -= m.off
		m.off = 0
	}
	if cap(m.buf)-len(m.buf) < minRead {
		m.buf = slices.Grow(m.buf, max(4*minRead, len(m.buf)))
	}
	return m.buf[len(m.buf):cap(m.buf)]
}

// putReady hands buf[off:ready] to put through next's buffers; false when
// put stopped the relay.
func (m *meter) putReady(next func() []byte, put func(n int) bool) bool {
	for {
		m.mu.Lock()
		left := m.off < m.ready
		m.mu.Unlock()
		if !left {
			return true
		}
		b := next()
		m.mu.Lock()
		n := copy(b, m.buf[m.off:m.ready])
		m.off += n
		m.mu.Unlock()
		if !put(n) {
			return false
		}
	}
}
