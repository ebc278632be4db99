// Package sse reads and writes server-sent events (the WHATWG "text/event-stream"
// format) the way a proxy needs them: event by event, keeping each event's raw
// bytes so that an event nobody changes is relayed exactly as received. Gemini
// stream resume, usage metering and the Responses translation share it.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// DefaultMaxEvent bounds one event (all its lines together). An upstream that
// sends more without a blank line is broken or hostile.
const DefaultMaxEvent = 32 << 20

// ErrEventTooLarge is returned for an event longer than the reader's bound.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one event as received.
type Event struct {
	// Raw is the whole event: its lines and the blank line that ended it,
	// byte for byte (comments and unknown fields included).
	Raw []byte
	// Data is the value of its data lines, joined with '\n' (the leading
	// space after "data:" removed); nil when it has none.
	Data []byte
	// Name is the value of its event line; nil when it has none.
	Name []byte
}

// Reader splits a stream into events. The slices of an Event are valid until
// the next call to Next: a caller that keeps an event copies it (Clone).
type Reader struct {
	br *bufio.Reader
	// MaxEvent bounds one event; default DefaultMaxEvent.
	MaxEvent int

	raw, data, name []byte
	crlf, seen      bool
}

// NewReader returns a Reader with a 4 KiB buffer.
func NewReader(r io.Reader) *Reader { return NewReaderSize(r, 4<<10) }

// NewReaderSize returns a Reader whose buffer holds size bytes.
func NewReaderSize(r io.Reader, size int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, size)}
}

// CRLF reports whether the stream ends its lines with CRLF (known once the
// first line was read), so that a writer can answer in kind.
func (r *Reader) CRLF() bool { return r.crlf }

// Next returns the next event. Blank lines between events are skipped. At
// the clean end of the stream it returns io.EOF; a stream that ends inside
// an event (no blank line after it) was cut, and Next says so with
// io.ErrUnexpectedEOF. Other read errors are returned as they are.
func (r *Reader) Next() (Event, error) {
	limit := r.MaxEvent
	if limit <= 0 {
		limit = DefaultMaxEvent
	}
	r.raw, r.data, r.name = r.raw[:0], r.data[:0], r.name[:0]
	hasData, hasName := false, false
	for {
		line, err := r.readLine(limit - len(r.raw))
		if len(line) > 0 && !r.seen {
			r.seen = true
			r.crlf = bytes.HasSuffix(line, []byte("\r\n"))
		}
		r.raw = append(r.raw, line...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if isBlank(r.raw) {
					return Event{}, io.EOF
				}
				return Event{}, io.ErrUnexpectedEOF // half an event
			}
			return Event{}, err
		}
		content := bytes.TrimRight(line, "\r\n")
		if isBlank(content) {
			if isBlank(r.raw) {
				r.raw = r.raw[:0] // a stray blank line between events
				continue
			}
			ev := Event{Raw: r.raw}
			if hasData {
				ev.Data = r.data
			}
			if hasName {
				ev.Name = r.name
			}
			return ev, nil
		}
		field, value := splitField(content)
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.name = append(r.name[:0], value...)
			hasName = true
		}
	}
}

// readLine reads one line including its terminator, failing past max bytes.
func (r *Reader) readLine(max int) ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		if len(line) > max {
			return nil, ErrEventTooLarge
		}
		return line, err
	}
	// A line longer than the buffer: gather it.
	long := append([]byte(nil), line...)
	for err == bufio.ErrBufferFull {
		if len(long) > max {
			return nil, ErrEventTooLarge
		}
		line, err = r.br.ReadSlice('\n')
		long = append(long, line...)
	}
	if len(long) > max {
		return nil, ErrEventTooLarge
	}
	return long, err
}

// splitField splits "name: value" (one optional space after the colon, as
// the WHATWG algorithm says). A line without a colon is a field with an
// empty value; a line starting with a colon is a comment (empty name).
func splitField(line []byte) (name, value []byte) {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return line, nil
	}
	value = line[i+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return line[:i], value
}

// isBlank reports whether b holds only spaces, tabs and line ends: such
// lines separate events (a server that pads them with spaces is forgiven).
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// Clone returns a copy of e that stays valid after the next call to Next.
func (e Event) Clone() Event {
	c := Event{Raw: bytes.Clone(e.Raw)}
	if e.Data != nil {
		c.Data = bytes.Clone(e.Data)
	}
	if e.Name != nil {
		c.Name = bytes.Clone(e.Name)
	}
	return c
}

// AppendEvent appends an event with an optional name and a data payload
// (split into one data line per line of payload) to dst, ended by a blank
// line; crlf ends lines with CRLF instead of LF.
func AppendEvent(dst []byte, name string, data []byte, crlf bool) []byte {
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, eol...)
	}
	for {
		i := bytes.IndexByte(data, '\n')
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			dst = append(dst, eol...)
			break
		}
		dst = append(dst, bytes.TrimSuffix(data[:i], []byte("\r"))...)
		dst = append(dst, eol...)
		data = data[i+1:]
	}
	return append(dst, eol...)
}
