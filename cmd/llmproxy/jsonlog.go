package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/llmproxy/llmproxy/privacy"
)

// jsonHandler writes one JSON object per record, as slog.JSONHandler does
// ({"time","level","msg", then the attributes; groups as nested objects}),
// with the redactor applied to every attribute — but without
// slog.JSONHandler's costs on the request line that every request writes:
// floats are appended directly instead of through json.Marshal, and the
// redaction runs inline. Only values that are neither strings, numbers,
// booleans, times nor errors go through encoding/json.
type jsonHandler struct {
	w      io.Writer
	mu     *sync.Mutex
	level  slog.Leveler
	red    *privacy.Redactor
	prefix []byte      // WithAttrs' attributes and WithGroup's open groups, encoded
	opened []groupMark // where each open group's key and contents start in prefix
}

// groupMark locates a group opened by WithGroup in the prefix: its key at
// key, its contents from start (a group left empty is dropped, key and all).
type groupMark struct{ key, start int }

func newJSONHandler(w io.Writer, level slog.Leveler, red *privacy.Redactor) *jsonHandler {
	return &jsonHandler{w: w, mu: &sync.Mutex{}, level: level, red: red}
}

var _ slog.Handler = (*jsonHandler)(nil)

var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *jsonHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *jsonHandler) Handle(_ context.Context, r slog.Record) error {
	bp, b, base := h.begin(r.Time, r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b = h.appendAttr(b, a)
		return true
	})
	return h.end(bp, b, base)
}

// HandleAttrs is Handle for a record given as its parts (server's request
// line), without the copy of its attributes into a slog.Record.
func (h *jsonHandler) HandleAttrs(t time.Time, level slog.Level, msg string, attrs []slog.Attr) error {
	bp, b, base := h.begin(t, level, msg)
	for _, a := range attrs {
		b = h.appendAttr(b, a)
	}
	return h.end(bp, b, base)
}

// begin starts a line in a pooled buffer: the time, level and message, then
// WithAttrs' attributes and open groups. base is where the prefix starts.
func (h *jsonHandler) begin(t time.Time, level slog.Level, msg string) (bp *[]byte, b []byte, base int) {
	bp = jsonBuffers.Get().(*[]byte)
	b = (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, level.String()...)
	b = append(b, `","msg":`...)
	b = appendJSONString(b, msg)
	b = append(b, ',')
	base = len(b)
	return bp, append(b, h.prefix...), base
}

// end closes the open groups and the line, writes it and returns the
// buffer to the pool.
func (h *jsonHandler) end(bp *[]byte, b []byte, base int) error {
	for i := len(h.opened) - 1; i >= 0; i-- {
		if g := h.opened[i]; len(b) == base+g.start {
			b = b[:base+g.key] // nothing in this group: slog drops it, key and all
			continue
		}
		b = trimComma(b)
		b = append(b, "},"...)
	}
	b = trimComma(b)
	b = append(b, "}\n"...)
	h.mu.Lock()
	_, err := h.w.Write(b)
	h.mu.Unlock()
	*bp = b
	if cap(b) <= 64<<10 {
		jsonBuffers.Put(bp)
	}
	return err
}

func trimComma(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == ',' {
		return b[:len(b)-1]
	}
	return b
}

func (h *jsonHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.prefix = append([]byte(nil), h.prefix...)
	c.opened = append([]groupMark(nil), h.opened...)
	for _, a := range attrs {
		c.prefix = c.appendAttr(c.prefix, a)
	}
	return &c
}

// WithGroup opens a group: later attributes go inside it, earlier ones
// stay outside, as slog.JSONHandler orders them.
func (h *jsonHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	key := len(h.prefix)
	c.prefix = appendJSONString(append([]byte(nil), h.prefix...), name)
	c.prefix = append(c.prefix, ":{"...)
	c.opened = append(append([]groupMark(nil), h.opened...), groupMark{key: key, start: len(c.prefix)})
	return &c
}

// appendAttr appends "key":value, — redacted as privacy.Redactor's
// ReplaceAttr would.
func (h *jsonHandler) appendAttr(b []byte, a slog.Attr) []byte {
	v := a.Value
	if v.Kind() == slog.KindLogValuer {
		v = v.Resolve()
	}
	if a.Key == "" && v.Kind() != slog.KindGroup {
		return b
	}
	if v.Kind() == slog.KindGroup {
		attrs := v.Group()
		if len(attrs) == 0 {
			return b
		}
		if a.Key == "" { // an inline group
			for _, ga := range attrs {
				b = h.appendAttr(b, ga)
			}
			return b
		}
		b = appendJSONString(b, a.Key)
		b = append(b, ":{"...)
		for _, ga := range attrs {
			b = h.appendAttr(b, ga)
		}
		b = trimComma(b)
		return append(b, "},"...)
	}
	b = appendJSONString(b, a.Key)
	b = append(b, ':')
	if privacy.SensitiveKey(a.Key) {
		b = appendJSONString(b, privacy.Placeholder)
		return append(b, ',')
	}
	switch v.Kind() {
	case slog.KindString:
		b = appendJSONString(b, h.red.String(v.String()))
	case slog.KindInt64:
		b = strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		b = strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			b = appendJSONString(b, strconv.FormatFloat(f, 'g', -1, 64))
		} else {
			b = appendFloat(b, f)
		}
	case slog.KindBool:
		b = strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		b = strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindTime:
		b = append(b, '"')
		b = v.Time().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	default:
		switch x := v.Any().(type) {
		case error:
			b = appendJSONString(b, h.red.String(x.Error()))
		case fmt.Stringer:
			b = appendJSONString(b, h.red.String(x.String()))
		default:
			raw, err := json.Marshal(x)
			if err != nil {
				b = appendJSONString(b, "!ERROR:"+err.Error())
			} else {
				b = appendJSONString(b, h.red.String(string(raw)))
			}
		}
	}
	return append(b, ',')
}

// appendFloat appends f as strconv.AppendFloat(b, f, 'f', -1, 64) does,
// without its search for the shortest digits when f is a whole number of
// thousandths or of billionths — the request line's duration_ms and cost,
// made by dividing an integer so — below 10^15 of them. The division is
// correctly rounded, so that decimal reads back as f; and as two such
// decimals differ by at least the unit, more than f's spacing at these
// magnitudes, no shorter one does. NaN and the infinities are the
// caller's.
func appendFloat(b []byte, f float64) []byte {
	for _, sc := range [...]struct {
		scale  float64
		places int
	}{{1e3, 3}, {1e9, 9}} {
		m := f * sc.scale
		if m != math.Trunc(m) || math.Abs(m) >= 1e15 || m/sc.scale != f || m == 0 {
			continue
		}
		n := int64(m)
		if n < 0 {
			b = append(b, '-')
			n = -n
		}
		b = strconv.AppendInt(b, n/pow10[sc.places], 10)
		frac := n % pow10[sc.places]
		if frac == 0 {
			return b
		}
		var digits [9]byte
		end := sc.places
		for i := sc.places - 1; i >= 0; i-- { // the places, zeros kept; the trailing ones dropped
			digits[i] = byte('0' + frac%10)
			if digits[i] == '0' && end == i+1 {
				end = i
			}
			frac /= 10
		}
		return append(append(b, '.'), digits[:end]...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping off (what slog.JSONHandler writes).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"
