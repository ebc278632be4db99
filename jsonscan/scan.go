package jsonscan

import (
	"encoding/binary"
	"unicode/utf8"
)

// result is what one pass over a document learned about a path.
type result struct {
	// found is how many keys of the path were found, each in the value of the
	// one before it: found == len(path) means the whole path is there.
	found int
	// val is the value of path[found-1], or the document itself when found is 0.
	val Value
	// key is the offset of the opening quote of path[found-1]'s key.
	key int
}

// scan validates data as exactly one JSON value and follows path through it.
//
// It is one loop with an explicit stack (a bit per level: object or array), so
// nesting costs no Go stack; the three labels are the scanner's states: a value
// starts, a value ended, an object key starts.
//
// The objects on the path form a prefix of the stack: onPath is its length.
// In such an object at depth d, each key is compared with path[d-1]; a match
// marks the next value as the path's value at that depth.
//
// fields, when not nil, asks for several members of the top-level object
// instead of a path (which is then empty): each key at depth 1 is compared
// with every one of fields.keys, and the value of the first exact match of a
// key is recorded in fields.vals, with the same duplicate rule as a path.
func scan(data []byte, path []string, fields *fieldSet) (r result, err error) {
	// Bit d of objects: the container at depth d is an object. 256 levels
	// live on the stack; a deeper document grows the slice (at most
	// MaxDepth/64+1 words), so a typical call zeroes 32 bytes, not 1.2 KiB.
	var small [4]uint64
	objects := small[:]
	var (
		n      = len(data)
		depth  = 0
		onPath = 0
		mark   = true  // the next value is path[depth-1]'s (the document itself at depth 0)
		isPath = false // the value being read is marked
		open   = false // r.val.End is still to be recorded, when depth returns to r.found
		i      = skipSpace(data, 0)
		c      byte
		ks     int
		simple bool
		dup    bool // an object on the path holds its key twice, or a case variant
	)

value:
	if i >= n {
		return r, errEOF(i)
	}
	isPath, mark = mark, false
	c = data[i]
	if isPath {
		r.val = Value{Start: i}
		open = true
	}
	switch c {
	case '{', '[':
		if depth == MaxDepth {
			return r, &SyntaxError{int64(i), "nesting deeper than 10000 levels"}
		}
		depth++
		w, b := depth>>6, uint64(1)<<(depth&63)
		if w == len(objects) {
			objects = append(objects, 0)
		}
		i = skipSpace(data, i+1)
		if c == '[' {
			objects[w] &^= b
			if isPath {
				r.val.Kind = KindArray
			}
			if i < n && data[i] == ']' {
				i++
				depth--
				goto end
			}
			goto value
		}
		objects[w] |= b
		if isPath {
			r.val.Kind = KindObject
			if depth <= len(path) {
				onPath = depth
			}
		}
		if i < n && data[i] == '}' {
			i++
			if onPath == depth {
				onPath--
			}
			depth--
			goto end
		}
		goto key
	case '"':
		if i, _, err = scanString(data, i); err != nil {
			return r, err
		}
		if isPath {
			r.val.Kind = KindString
		}
	case 't':
		if i, err = literal(data, i, "true"); err != nil {
			return r, err
		}
		if isPath {
			r.val.Kind = KindTrue
		}
	case 'f':
		if i, err = literal(data, i, "false"); err != nil {
			return r, err
		}
		if isPath {
			r.val.Kind = KindFalse
		}
	case 'n':
		if i, err = literal(data, i, "null"); err != nil {
			return r, err
		}
		if isPath {
			r.val.Kind = KindNull
		}
	default:
		if i, err = scanNumber(data, i); err != nil {
			return r, err
		}
		if isPath {
			r.val.Kind = KindNumber
		}
	}

end: // a value ended just before i
	if open && depth == r.found {
		r.val.End = i
		open = false
		if fields != nil && depth == 1 {
			fields.vals[fields.cur] = r.val
		}
	}
	i = skipSpace(data, i)
	if depth == 0 {
		if i != n {
			return r, &SyntaxError{int64(i), "invalid character after top-level value"}
		}
		if dup {
			return result{}, ErrDuplicateKey
		}
		return r, nil
	}
	if i >= n {
		return r, errEOF(i)
	}
	c = data[i]
	if objects[depth>>6]&(1<<(depth&63)) != 0 {
		switch c {
		case ',':
			i = skipSpace(data, i+1)
			goto key
		case '}':
			i++
			if onPath == depth {
				onPath--
			}
			depth--
			goto end
		}
		return r, &SyntaxError{int64(i), "invalid character after object member"}
	}
	switch c {
	case ',':
		i = skipSpace(data, i+1)
		goto value
	case ']':
		i++
		depth--
		goto end
	}
	return r, &SyntaxError{int64(i), "invalid character after array element"}

key:
	if i >= n {
		return r, errEOF(i)
	}
	if data[i] != '"' {
		return r, &SyntaxError{int64(i), "object key is not a string"}
	}
	ks = i
	if i, simple, err = scanString(data, i); err != nil {
		return r, err
	}
	if onPath == depth && !dup {
		exact, fold := matchKey(data[ks+1:i-1], simple, path[depth-1])
		switch {
		case exact && r.found < depth:
			r.found, r.key, mark = depth, ks, true
		case fold:
			// Reported once the rest is known to be valid: ErrDuplicateKey
			// always means a well-formed document.
			dup = true
		}
	} else if fields != nil && depth == 1 && !dup {
		for j, key := range fields.keys {
			exact, fold := matchKey(data[ks+1:i-1], simple, key)
			if exact && fields.vals[j].Kind == KindInvalid {
				fields.cur, r.found, mark = j, 1, true
				break
			}
			if fold {
				dup = true
				break
			}
		}
	}
	i = skipSpace(data, i)
	if i >= n {
		return r, errEOF(i)
	}
	if data[i] != ':' {
		return r, &SyntaxError{int64(i), "missing colon after object key"}
	}
	i = skipSpace(data, i+1)
	goto value
}

func errEOF(i int) error { return &SyntaxError{int64(i), "unexpected end of input"} }

// isSpace: the four whitespace bytes of RFC 8259 §2; nothing else (no BOM, no
// NBSP, no vertical tab) may surround a token.
func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func literal(data []byte, i int, lit string) (int, error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, &SyntaxError{int64(i), "invalid literal"}
	}
	return i + len(lit), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber reads the number at data[i] (RFC 8259 §6):
// -? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?
// A byte after it that may not follow a value is the caller's error.
func scanNumber(data []byte, i int) (int, error) {
	start, n := i, len(data)
	if data[i] == '-' {
		i++
	}
	switch {
	case i < n && data[i] == '0':
		i++
	case i < n && '1' <= data[i] && data[i] <= '9':
		for i++; i < n && isDigit(data[i]); i++ {
		}
	default:
		if i == start {
			return 0, &SyntaxError{int64(i), "invalid character looking for a value"}
		}
		return 0, &SyntaxError{int64(i), "invalid number"}
	}
	if i < n && data[i] == '.' {
		i++
		if i >= n || !isDigit(data[i]) {
			return 0, &SyntaxError{int64(i), "invalid number: no digit after the decimal point"}
		}
		for i++; i < n && isDigit(data[i]); i++ {
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n || !isDigit(data[i]) {
			return 0, &SyntaxError{int64(i), "invalid number: no digit in the exponent"}
		}
		for i++; i < n && isDigit(data[i]); i++ {
		}
	}
	return i, nil
}

// plain marks the bytes a string may hold as they are: printable ASCII other
// than '"' and '\\'. Everything else takes the slow path.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString reads the string literal at data[i] == '"' and returns the offset
// after its closing quote. simple reports a literal of plain bytes only (no
// escape, nothing outside ASCII): its content is its value.
func scanString(data []byte, i int) (end int, simple bool, err error) {
	n := len(data)
	simple = true
	i++
	for {
		// Eight bytes at a time while none needs a look (prompts are long
		// runs of plain text), then byte by byte.
		for n-i >= 8 && !special(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		for i < n && plain[data[i]] {
			i++
		}
		if i >= n {
			return 0, false, &SyntaxError{int64(i), "unexpected end of input in string"}
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, simple, nil
		case c == '\\':
			simple = false
			if i+1 >= n {
				return 0, false, &SyntaxError{int64(i + 1), "unexpected end of input in string"}
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if n-i < 6 {
					return 0, false, &SyntaxError{int64(n), "unexpected end of input in string"}
				}
				for j := i + 2; j < i+6; j++ {
					if hexVal(data[j]) < 0 {
						return 0, false, &SyntaxError{int64(j), "invalid \\u escape in string"}
					}
				}
				i += 6
			default:
				return 0, false, &SyntaxError{int64(i + 1), "invalid escape in string"}
			}
		case c < 0x20:
			// RFC 8259 §7: control characters must be escaped.
			return 0, false, &SyntaxError{int64(i), "control character in string"}
		default:
			simple = false
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				// RFC 8259 §8.1: text exchanged between systems must be
				// UTF-8. encoding/json would replace the byte with U+FFFD,
				// other parsers refuse or keep it: one more differential.
				return 0, false, &SyntaxError{int64(i), "invalid UTF-8 in string"}
			}
			i += size
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special reports whether any of the eight bytes in w is not plain: a control
// character, '"', '\\', or a byte of a multi-byte UTF-8 sequence. It may also
// report a plain byte that follows a special one (a borrow carries over), which
// only sends the caller to its exact byte loop.
func special(w uint64) bool {
	q := w ^ ('"' * ones)
	b := w ^ ('\\' * ones)
	return (w|(w-0x20*ones)&^w|(q-ones)&^q|(b-ones)&^b)&highs != 0
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}
