package server

import "bytes"

// framing follows a connection's request stream as net/http reads it off
// the socket: each head's framing headers, then its body's length
// (Content-Length, or chunk by chunk), so that every head is seen from its
// first byte — pipelined behind the request before it or not, whatever
// net/http had already buffered. A head with both Content-Length and
// Transfer-Encoding marks the connection (both): it is closed after the
// answer under way (RFC 9112 §6.1). Framing it cannot follow (a malformed
// length or chunk, which net/http refuses and closes on) marks it too.
type framing struct {
	state uint8

	// A head.
	line   []byte  // the current line's name, lower case, up to its ':'
	skip   bool    // the rest of this line is a value
	seen   int64   // bytes of this head so far
	cl     bool    // Content-Length seen in this head
	te     bool    // Transfer-Encoding seen in this head
	first  bool    // in the request line
	tail   [8]byte // its last bytes (CR left out), for the version
	http10 bool    // the request line ends in HTTP/1.0

	// A Content-Length value being read, and the head's length.
	inLength  bool
	pending   bool // a Content-Length line ended: the next may fold onto it
	digits    bool // digits read in this value
	spaceThen bool // a space after them: no more digits may come
	cur       int64
	length    int64
	hasLength bool // length holds an earlier Content-Length's value
	bad       bool // a value net/http refuses

	// A body.
	left int64 // bytes of the body or chunk to skip
	hex  bool  // a chunk size's digits read
	ext  bool  // in a chunk extension: skipped to the line's end
	any  bool  // a trailer line holds more than CR

	both bool // a head had both framing headers, or the framing was lost
}

const (
	fHead      = iota // a head
	fBody             // a Content-Length body: left bytes
	fChunkLine        // a chunk's size line
	fChunkData        // a chunk's data: left bytes
	fChunkCR          // the CR after a chunk's data
	fChunkLF          // and its LF
	fTrailer          // the trailer section after the last chunk
	fOff              // lost: nothing is followed any more
)

// maxLength bounds a Content-Length value (net/http's own bound: int64).
const maxLength = 1<<63 - 1

// atRest reports whether nothing of a next request has been read: a head
// is due and none of its bytes came yet.
func (f *framing) atRest() bool {
	return f.state == fHead && f.seen == 0 && !f.skip && len(f.line) == 0
}

// restart starts a new head (a connection given back after a hand-off,
// whose next bytes are read again from the start of a request).
func (f *framing) restart() {
	f.state = fHead
	f.resetHead()
}

func (f *framing) resetHead() {
	f.line, f.skip, f.seen, f.cl, f.te = f.line[:0], false, 0, false, false
	f.first, f.tail, f.http10 = true, [8]byte{}, false
	f.inLength, f.pending, f.hasLength, f.bad = false, false, false, false
}

// requestLine keeps the request line's last bytes.
// Only the span's last bytes are looked at, from its end: a long URL costs
// nothing more.
func (f *framing) requestLine(b []byte) {
	var last [len(f.tail)]byte
	n := 0
	for i := len(b) - 1; i >= 0 && n < len(last); i-- {
		if b[i] != '\r' {
			n++
			last[len(last)-n] = b[i]
		}
	}
	copy(f.tail[:], f.tail[n:])
	copy(f.tail[len(f.tail)-n:], last[len(last)-n:])
}

// lose stops following the stream; the connection closes after the answer
// under way.
func (f *framing) lose() {
	f.state, f.both = fOff, true
}

// stop stops following the stream: it is not HTTP/1.1 requests any more
// (a WebSocket).
func (f *framing) stop() { f.state = fOff }

// feed follows b, the next bytes read off the connection.
func (f *framing) feed(b []byte) {
	for len(b) > 0 {
		switch f.state {
		case fOff:
			return
		case fHead:
			b = f.head(b)
		case fBody, fChunkData:
			n := int64(len(b))
			if n > f.left {
				n = f.left
			}
			f.left -= n
			b = b[n:]
			if f.left == 0 {
				if f.state == fBody {
					f.restart()
				} else {
					f.state = fChunkCR
				}
			}
		case fChunkCR, fChunkLF:
			want := byte('\r')
			if f.state == fChunkLF {
				want = '\n'
			}
			if b[0] != want {
				f.lose()
				return
			}
			b = b[1:]
			if f.state == fChunkCR {
				f.state = fChunkLF
			} else {
				f.state, f.hex, f.ext, f.cur, f.seen = fChunkLine, false, false, 0, 0
			}
		case fChunkLine:
			b = f.chunkLine(b)
		case fTrailer:
			b = f.trailer(b)
		}
	}
}

// head follows a request head: header names at the start of each line,
// until the empty line that ends it. A value is skipped to its line's end
// with IndexByte, not byte by byte, except Content-Length's, whose digits
// are read. It returns the bytes after the head's end.
func (f *framing) head(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		if f.skip {
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				j = len(b) - i
			}
			switch {
			case f.inLength:
				f.lengthBytes(b[i : i+j])
			case f.first:
				f.requestLine(b[i : i+j])
			}
			f.seen += int64(j)
			if i += j; i == len(b) {
				return nil
			}
		}
		ch := b[i]
		f.seen++
		if f.pending && len(f.line) == 0 && !f.skip {
			// A Content-Length line ended. A line starting with a space or
			// a tab folds onto it (obs-fold: net/http joins them); else its
			// value is whole.
			f.pending = false
			if ch == ' ' || ch == '\t' {
				f.inLength, f.skip = true, true
				f.lengthBytes(b[i : i+1])
				continue
			}
			f.endLength()
		}
		switch {
		case ch == '\n':
			if f.inLength {
				f.inLength, f.pending = false, true
			}
			if f.first {
				f.first = false
				f.http10 = string(f.tail[:]) == "HTTP/1.0"
			}
			if len(f.line) == 0 && !f.skip && f.seen > 2 {
				f.bodyStart()
				return b[i+1:]
			}
			f.line, f.skip = f.line[:0], false
		case ch == '\r': // (a value being skipped never gets here: see above)
		case f.first:
			f.requestLine(b[i : i+1])
			f.skip = true // the rest of the request line: no header name
		case ch == ':':
			switch string(f.line) {
			case "content-length":
				f.cl, f.inLength, f.digits, f.spaceThen, f.cur = true, true, false, false, 0
			case "transfer-encoding":
				f.te = true
			}
			f.skip = true
		case len(f.line) < len("transfer-encoding")+1:
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			f.line = append(f.line, ch)
		default:
			f.skip = true // a name longer than any we look for
		}
	}
	return nil
}

// lengthBytes reads bytes of a Content-Length value: digits, with spaces
// around them (net/http trims them), nothing else.
func (f *framing) lengthBytes(v []byte) {
	for _, c := range v {
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			if f.digits {
				f.spaceThen = true
			}
		case '0' <= c && c <= '9' && !f.spaceThen:
			d := int64(c - '0')
			if f.cur > (maxLength-d)/10 {
				f.bad = true
			}
			f.cur = f.cur*10 + d
			f.digits = true
		default:
			f.bad = true
		}
	}
}

// endLength ends a Content-Length line: a second one must say the same.
func (f *framing) endLength() {
	f.inLength = false
	switch {
	case !f.digits:
		f.bad = true
	case f.hasLength && f.length != f.cur:
		f.bad = true
	default:
		f.length, f.hasLength = f.cur, true
	}
}

// bodyStart follows the head's end: the body its framing headers give.
func (f *framing) bodyStart() {
	if f.cl && f.te {
		f.both = true
	}
	switch {
	case f.te && f.http10:
		// net/http ignores Transfer-Encoding on HTTP/1.0; RFC 9112 §6.1
		// has the connection closed after it (faulty framing).
		f.lose()
		return
	case f.te: // chunked (net/http refuses, and closes on, any other coding)
		f.state, f.hex, f.ext, f.cur = fChunkLine, false, false, 0
	case f.cl && f.bad:
		f.lose()
		return
	case f.cl && f.length > 0:
		f.state, f.left = fBody, f.length
	default:
		f.restart()
		return
	}
	f.resetHead()
}

// chunkLine reads a chunk's size line: hex digits, an optional extension
// after ';', trailing spaces, CRLF (as net/http's chunked reader reads it).
func (f *framing) chunkLine(b []byte) []byte {
	for i, c := range b {
		switch {
		case c == '\n':
			if !f.hex {
				f.lose()
				return nil
			}
			if f.cur == 0 {
				f.state, f.any = fTrailer, false
			} else {
				f.state, f.left = fChunkData, f.cur
			}
			return b[i+1:]
		case f.ext:
		case c == ';':
			f.ext = true
		case c == ' ' || c == '\t' || c == '\r':
			f.ext = f.hex // trailing space: nothing but an extension may follow
		case ('0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f') && f.cur < 1<<59:
			d := c - '0'
			if c > '9' {
				d = c | 0x20 - 'a' + 10
			}
			f.cur, f.hex = f.cur<<4|int64(d), true
		default:
			f.lose()
			return nil
		}
		if f.seen++; f.seen > 4096 { // net/http's line limit
			f.lose()
			return nil
		}
	}
	return nil
}

// trailer skips the trailer section to its empty line.
func (f *framing) trailer(b []byte) []byte {
	for i, c := range b {
		switch c {
		case '\n':
			if !f.any {
				f.restart()
				return b[i+1:]
			}
			f.any = false
		case '\r':
		default:
			f.any = true
		}
	}
	return nil
}
