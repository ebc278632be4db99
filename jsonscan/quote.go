package jsonscan

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// nextRune decodes the rune at body[i], body being the inside of a valid string
// literal, and returns the offset after it. Escapes decode as encoding/json
// decodes them: a surrogate pair to its rune, a surrogate that is not half of a
// valid pair to U+FFFD.
func nextRune(body []byte, i int) (rune, int) {
	c := body[i]
	if c != '\\' {
		if c < utf8.RuneSelf {
			return rune(c), i + 1
		}
		r, size := utf8.DecodeRune(body[i:])
		return r, i + size
	}
	switch body[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r := hex4(body[i+2:])
		i += 6
		if !utf16.IsSurrogate(r) {
			return r, i
		}
		if len(body)-i >= 6 && body[i] == '\\' && body[i+1] == 'u' {
			if d := utf16.DecodeRune(r, hex4(body[i+2:])); d != utf8.RuneError {
				return d, i + 6
			}
		}
		return utf8.RuneError, i
	}
	return rune(body[i+1]), i + 2 // '"', '\\', '/'
}

func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// matchKey compares a key (the inside of a valid string literal) with a path
// key. exact: the key decodes to exactly p. fold: it equals p ignoring case, as
// encoding/json (bytes.EqualFold since Go 1.21) matches a key to a struct field.
func matchKey(body []byte, simple bool, p string) (exact, fold bool) {
	if simple {
		if string(body) == p {
			return true, true
		}
		if isASCII(p) {
			return false, len(body) == len(p) && asciiEqualFold(body, p)
		}
	}
	if decodedEqual(body, p) {
		return true, true
	}
	return false, decodedEqualFold(body, p)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func asciiEqualFold(a []byte, b string) bool {
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// decodedEqual reports whether the literal body decodes to exactly the bytes
// of p, without building the decoded string.
func decodedEqual(body []byte, p string) bool {
	var buf [utf8.UTFMax]byte
	i, j := 0, 0
	for i < len(body) {
		if c := body[i]; c != '\\' {
			// Runs of unescaped bytes compare as bytes.
			k := bytes.IndexByte(body[i:], '\\')
			if k < 0 {
				k = len(body) - i
			}
			if len(p)-j < k || string(body[i:i+k]) != p[j:j+k] {
				return false
			}
			i, j = i+k, j+k
			continue
		}
		var r rune
		r, i = nextRune(body, i)
		w := utf8.EncodeRune(buf[:], r)
		if len(p)-j < w || string(buf[:w]) != p[j:j+w] {
			return false
		}
		j += w
	}
	return j == len(p)
}

// decodedEqualFold is strings.EqualFold over the decoded literal body and p.
func decodedEqualFold(body []byte, p string) bool {
	i, j := 0, 0
	for i < len(body) && j < len(p) {
		var r rune
		r, i = nextRune(body, i)
		q, size := utf8.DecodeRuneInString(p[j:])
		if q == utf8.RuneError && size == 1 {
			return false // p is not UTF-8; a decoded key always is
		}
		j += size
		if !foldEqual(r, q) {
			return false
		}
	}
	return i == len(body) && j == len(p)
}

// foldEqual is the per-rune test of strings.EqualFold (simple Unicode folding:
// 'K' and the Kelvin sign U+212A are one letter, 's' and long s U+017F too).
func foldEqual(a, b rune) bool {
	if a == b {
		return true
	}
	if b < a {
		a, b = b, a
	}
	if b < utf8.RuneSelf {
		return 'A' <= a && a <= 'Z' && b == a+'a'-'A'
	}
	r := unicode.SimpleFold(a)
	for r != a && r < b {
		r = unicode.SimpleFold(r)
	}
	return r == b
}

// Unquote decodes a JSON string literal, such as the bytes data[v.Start:v.End]
// of a KindString Value. It checks the literal the way Valid does.
func Unquote(lit []byte) (string, error) {
	if len(lit) == 0 || lit[0] != '"' {
		return "", &SyntaxError{0, "not a string literal"}
	}
	end, _, err := scanString(lit, 0)
	if err != nil {
		return "", err
	}
	if end != len(lit) {
		return "", &SyntaxError{int64(end), "invalid character after string literal"}
	}
	return unquote(lit[1 : end-1]), nil
}

// unquote decodes the inside of a valid string literal.
func unquote(body []byte) string {
	k := bytes.IndexByte(body, '\\')
	if k < 0 {
		return string(body)
	}
	var b strings.Builder
	b.Grow(len(body)) // decoding never lengthens: "\ud800" (6 bytes) becomes 3
	for k >= 0 {
		b.Write(body[:k])
		var r rune
		r, k = nextRune(body, k)
		b.WriteRune(r)
		body = body[k:]
		k = bytes.IndexByte(body, '\\')
	}
	b.Write(body)
	return b.String()
}

const hexDigits = "0123456789abcdef"

// AppendString appends s to dst as a JSON string literal, escaped as
// encoding/json escapes it with SetEscapeHTML(false): '"', '\\' and control
// characters are escaped (\b \f \n \r \t, else \u00XX), U+2028 and U+2029 are
// escaped for JavaScript, invalid UTF-8 becomes \ufffd. '<', '>' and '&' stay
// as they are, so the provider sees the text the client meant.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// quotedLen is len(AppendString(nil, s)), so that an edit allocates once.
func quotedLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case plain[c]:
				n++
			case c == '"', c == '\\', c == '\b', c == '\f', c == '\n', c == '\r', c == '\t':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}
