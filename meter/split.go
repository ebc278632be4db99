package meter

import "bytes"

// A splitter finds where the units of a body (SSE events, Gemini JSON
// chunks) begin and end while the body is fed to it in pieces of any size.
// Offsets are logical stream offsets chosen by the caller (feed's base), so
// that a caller that removes an event can feed what followed it again at the
// removed event's offset.
type splitter interface {
	// feed sets the next piece to scan, b, which starts at offset base.
	feed(b []byte, base int64)
	// next scans on to the end of the next unit in the piece and returns its
	// offsets; ok is false once the piece is used up.
	next() (start, end int64, ok bool)
	// open returns where the unit still unfinished at the end of the piece
	// began; ok is false when there is none.
	open() (start int64, ok bool)
}

// sseSplit splits text/event-stream into events exactly as sse.Reader does:
// a line ends with LF (a CR before it is part of the line), a line of only
// spaces, tabs and CRs is blank, and a blank line ends the event when the
// event holds a line that is not; blank lines between events belong to none.
// An event starts at its first non-blank line.
type sseSplit struct {
	b    []byte
	i    int
	base int64

	inEvent bool  // the open event has a non-blank line
	midLine bool  // a line has begun and not ended
	blank   bool  // the line so far is blank
	start   int64 // where the open event (or the line that may begin one) began
}

func (s *sseSplit) feed(b []byte, base int64) { s.b, s.i, s.base = b, 0, base }

func (s *sseSplit) next() (start, end int64, ok bool) {
	b := s.b
	for s.i < len(b) {
		i := s.i
		if !s.midLine {
			s.blank = true
			if !s.inEvent {
				s.start = s.base + int64(i)
			}
		}
		j := bytes.IndexByte(b[i:], '\n')
		stop := len(b)
		if j >= 0 {
			stop = i + j + 1
		}
		if s.blank {
			s.blank = isBlank(b[i:stop]) // content lines fail on their first byte
		}
		if !s.blank {
			s.inEvent = true
		}
		s.i = stop
		if j < 0 {
			s.midLine = true
			return 0, 0, false
		}
		s.midLine = false
		if s.blank && s.inEvent {
			s.inEvent = false
			return s.start, s.base + int64(stop), true
		}
	}
	return 0, 0, false
}

func (s *sseSplit) open() (int64, bool) { return s.start, s.inEvent || s.midLine }

// isBlank is sse's: only spaces, tabs and line ends.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// jsonSplit finds the chunks of a Gemini body that is not SSE: the objects
// of a top-level JSON array (streamGenerateContent without alt=sse), or a
// top-level object itself (generateContent). It tracks nesting and strings
// only; it does not validate, and malformed input only yields chunks that
// fail to decode.
type jsonSplit struct {
	b    []byte
	i    int
	base int64

	depth   int
	top     byte // the body's first bracket, '[' or '{'
	inStr   bool
	esc     bool // the piece ended just after a backslash in a string
	inChunk bool
	chunkAt int // the depth the open chunk began at
	start   int64
}

func (s *jsonSplit) feed(b []byte, base int64) { s.b, s.i, s.base = b, 0, base }

// jsonClass marks the bytes jsonSplit acts on; all others are skipped in a
// tight loop (a Gemini chunk is mostly short strings and punctuation).
var jsonClass = [256]uint8{'"': cQuote, '\\': cEscape, '{': cOpen, '[': cOpen, '}': cClose, ']': cClose}

const (
	cQuote = 1 + iota
	cEscape
	cOpen
	cClose
)

func (s *jsonSplit) next() (start, end int64, ok bool) {
	b, i := s.b, s.i
	if s.inStr {
		i = s.longString(b, i)
	}
	for i < len(b) {
		k := jsonClass[b[i]]
		i++
		switch k {
		case 0:
		case cQuote:
			// Keys and enum values end within a few bytes: looked at one
			// by one here (cheaper than a call); longer text is left to
			// IndexByte in longString.
			for n := min(len(b), i+32); i < n; i++ {
				switch jsonClass[b[i]] {
				case cQuote:
					goto closed
				case cEscape:
					i++ // the escaped byte
				}
			}
			s.inStr = true
			i = s.longString(b, i)
			continue
		closed:
			i++
		case cOpen:
			c := b[i-1]
			if s.depth == 0 && s.top == 0 {
				s.top = c
			}
			if c == '{' && !s.inChunk && (s.depth == 0 || s.depth == 1 && s.top == '[') {
				s.inChunk, s.chunkAt, s.start = true, s.depth, s.base+int64(i-1)
			}
			s.depth++
		case cClose:
			if s.depth > 0 {
				s.depth--
			}
			if s.inChunk && s.depth == s.chunkAt {
				s.inChunk, s.i = false, i
				return s.start, s.base + int64(i), true
			}
		}
	}
	s.i = i
	return 0, 0, false
}

// longString moves on from i inside a string: to just after its closing
// quote (leaving the string), or to the end of the piece. i is len(b)+1
// when the piece ended on a backslash. The quote is found with IndexByte
// and only the backslashes before it are looked at, so that text with many
// escapes stays linear.
func (s *jsonSplit) longString(b []byte, i int) int {
	if s.esc {
		s.esc = false
		i++ // the byte a backslash at the end of the last piece escaped
	}
	for {
		if i > len(b) {
			s.esc = true
			return len(b)
		}
		q := bytes.IndexByte(b[i:], '"')
		end := len(b)
		if q >= 0 {
			end = i + q
		}
		for {
			k := bytes.IndexByte(b[i:end], '\\')
			if k < 0 {
				break
			}
			i += k + 2 // the backslash and the byte it escapes
			if i > end {
				break
			}
		}
		switch {
		case i > end: // the quote was escaped (or the piece ended on a backslash): go on
			continue
		case q < 0:
			return len(b)
		}
		s.inStr = false
		return end + 1
	}
}

func (s *jsonSplit) open() (int64, bool) { return s.start, s.inChunk }

// bodySplit makes the whole body one unit, ended only by the end of the body.
type bodySplit struct{}

func (*bodySplit) feed([]byte, int64)           {}
func (*bodySplit) next() (int64, int64, bool)   { return 0, 0, false }
func (*bodySplit) open() (start int64, ok bool) { return 0, true }
