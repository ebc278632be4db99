package meter

import "io"

// minRead is the least room offered to the underlying Read with strip.
const minRead = 4 << 10

// readHeld is Read with StripUsageChunk: bytes are read into buf, and each
// event goes out once its blank line is in, unless it is the usage-only chunk.
// Bytes outside events (stray blank lines) go out at once.
func (m *meter) readHeld(p []byte) (int, error) {
	empty := 0
	for {
		m.mu.Lock()
		if m.off < m.ready {
			n := copy(p, m.buf[m.off:m.ready])
			m.off += n
			m.mu.Unlock()
			return n, nil
		}
		if m.err != nil {
			err := m.err
			m.mu.Unlock()
			return 0, err
		}
		dst := m.room()
		m.mu.Unlock()

		n, err := m.body.Read(dst)
		if n == 0 && err == nil {
			if empty++; empty == maxEmptyReads {
				err = io.ErrNoProgress
			}
		}

		m.mu.Lock()
		m.took(n)
		var fire bool
		var u Usage
		if err != nil {
			u, fire, err = m.heldEnd(err)
		}
		m.mu.Unlock()
		if fire && m.done != nil {
			m.done(u, err == io.EOF)
		}
	}
}

// took takes n bytes read into room() into buf and decides on them: what
// may go out moves ready. m.mu is held.
func (m *meter) took(n int) {
	m.buf = m.buf[:len(m.buf)+n]
	if m.ended {
		// Closed meanwhile: pass on whatever still comes.
		m.ready, m.scanned = len(m.buf), len(m.buf)
	} else if n > 0 {
		m.scanHeld()
	}
}

// heldEnd ends the body with the read's error: the last event goes out
// (unless it is the usage-only chunk), and the error is kept for the
// reads after what is ready. It returns the error to report and, when
// Done is due, the usage. m.mu is held.
func (m *meter) heldEnd(err error) (u Usage, fire bool, _ error) {
	if !m.ended {
		// The last event may lack its blank line: it is still whole as
		// far as the body went.
		if t := m.tail(); t != nil && m.unit(t, true) {
			m.buf = m.buf[:len(m.buf)-len(t)]
		}
		m.ready = len(m.buf)
		u, fire = m.end(), true
		err = m.cut(err)
	}
	m.err = err
	return u, fire, err
}

// scanHeld scans the bytes appended to buf since the last scan, decides on
// each complete event, and moves ready past what may go out.
func (m *meter) scanHeld() {
	m.split.feed(m.buf[m.scanned:], m.base+int64(m.scanned))
	for {
		s, e, ok := m.split.next()
		if !ok {
			break
		}
		si, ei := int(s-m.base), int(e-m.base)
		if !(m.over && m.overAt == s) && m.unit(m.buf[si:ei], false) {
			// The usage-only chunk: what follows it moves up, and the
			// scan goes on from there (the splitter is between events).
			m.buf = append(m.buf[:si], m.buf[ei:]...)
			m.split.feed(m.buf[si:], s)
			ei = si
		}
		m.ready = max(m.ready, ei)
		m.over = false
	}
	m.scanned = len(m.buf)
	s, open := m.split.open()
	switch {
	case !open:
		m.ready, m.over = len(m.buf), false
	case m.over && m.overAt == s:
		m.ready = len(m.buf) // too long to hold: it goes out as it comes
	case len(m.buf)-int(s-m.base) > m.max:
		m.over, m.overAt = true, s
		m.ready = len(m.buf)
	default:
		m.ready = max(m.ready, int(s-m.base)) // hold the open event only
	}
}
