package jsonscan

import (
	"bytes"
	"iter"
	"unicode/utf8"
)

// Key is an object member's key, as the string literal it is in the
// document.
type Key struct {
	lit []byte
	// plain: the literal is its value (no escape, nothing outside ASCII).
	plain bool
}

// Literal returns the key's string literal, quotes included, as it stands
// in the document.
func (k Key) Literal() []byte { return k.lit }

// Is reports whether the key names the struct field tagged name the way
// encoding/json matches it: the key is unescaped, then compared ignoring case
// with simple Unicode folding (bytes.EqualFold), so "Usage", "u\u0073age"
// and "uſage" (long s) are all "usage". A decoder that reads fields by hand
// with Is reads the fields encoding/json would.
func (k Key) Is(name string) bool {
	body := k.lit[1 : len(k.lit)-1]
	if k.plain {
		switch {
		case len(body) == len(name):
			// A name of the same length that folds to an ASCII key is
			// ASCII too: the only other runes that fold to ASCII letters
			// (the Kelvin sign, long s) are longer than them.
			return string(body) == name || asciiEqualFold(body, name)
		case len(name) < len(body):
			return false // no rune folds to a longer one here
		case isASCII(name):
			return false
		}
	}
	return decodedEqualFold(body, name)
}

// isPlain reports whether the inside of a string literal is its value: no
// escape, nothing outside ASCII.
func isPlain(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf || c == '\\' {
			return false
		}
	}
	return true
}

// Members iterates over the members of obj, the bytes of a KindObject Value
// in a document Get or Valid accepted: obj is not checked again, and Members
// on anything else yields nothing or stops early. Each member comes as its key
// and its value, the Value's span counted within obj. Duplicate keys come as
// often as they stand, in document order, so a decoder that keeps the last
// reads what encoding/json reads.
func Members(obj []byte) iter.Seq2[Key, Value] {
	return func(yield func(Key, Value) bool) {
		n := len(obj)
		if n < 2 || obj[0] != '{' {
			return
		}
		i := skipSpace(obj, 1)
		for i < n && obj[i] == '"' {
			keyEnd := skipString(obj, i)
			if keyEnd < 0 {
				return
			}
			key := Key{lit: obj[i:keyEnd], plain: isPlain(obj[i+1 : keyEnd-1])}
			i = skipSpace(obj, keyEnd)
			if i >= n || obj[i] != ':' {
				return
			}
			i = skipSpace(obj, i+1)
			v, ok := skipValue(obj, i)
			if !ok || !yield(key, v) {
				return
			}
			i = skipSpace(obj, v.End)
			if i >= n || obj[i] != ',' {
				return
			}
			i = skipSpace(obj, i+1)
		}
	}
}

// skipString returns the offset after the string literal at data[i] == '"' of
// a valid document, or -1 when it does not end.
func skipString(data []byte, i int) int {
	i++
	for {
		k := bytes.IndexAny(data[i:], `"\`)
		if k < 0 {
			return -1
		}
		i += k
		if data[i] == '"' {
			return i + 1
		}
		i += 2 // an escape: the byte after '\\' is never the closing quote
		if i > len(data) {
			return -1
		}
	}
}

// skipValue returns the span of the value at data[i] of a valid document.
func skipValue(data []byte, i int) (Value, bool) {
	if i >= len(data) {
		return Value{}, false
	}
	v := Value{Start: i}
	switch c := data[i]; {
	case c == '"':
		v.Kind, v.End = KindString, skipString(data, i)
	case c == '{' || c == '[':
		v.Kind = KindObject
		if c == '[' {
			v.Kind = KindArray
		}
		depth := 0
		for j := i; j < len(data); {
			switch data[j] {
			case '"':
				j = skipString(data, j)
				if j < 0 {
					return Value{}, false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					v.End = j + 1
					return v, true
				}
			}
			j++
		}
		return Value{}, false
	case c == 't':
		v.Kind, v.End = KindTrue, i+4
	case c == 'f':
		v.Kind, v.End = KindFalse, i+5
	case c == 'n':
		v.Kind, v.End = KindNull, i+4
	default:
		v.Kind = KindNumber
		j := i + 1
		for j < len(data) && (isDigit(data[j]) || data[j] == '.' || data[j] == 'e' || data[j] == 'E' || data[j] == '+' || data[j] == '-') {
			j++
		}
		v.End = j
	}
	if v.End < 0 || v.End > len(data) {
		return Value{}, false
	}
	return v, true
}
