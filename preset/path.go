package preset

import (
	"errors"
	"net/url"
	"strings"
)

// ErrBadPath is returned for a path that could leave the preset's base path
// or that holds bytes no upstream should see. The message is safe to show.
var ErrBadPath = errors.New("the path after the preset has an empty, '.' or '..' segment (path parameters such as '..;' included), an encoded slash or backslash, invalid escaping, or a control character")

// Join returns the upstream URL for a request: base, then the escaped path
// after the preset (rest: "" or starting with "/"), then the raw query, both
// byte for byte as the client sent them.
//
// A path that could climb out of base's path once an upstream decodes and
// normalises it is refused: dot segments in any spelling (.., %2e%2e, %2E.,
// and their double-encoded forms), dot segments with path parameters
// (..;, .;, ..;jsessionid=x, ..%3B, which Tomcat, Jetty and Spring read as
// .. once they strip the parameters), empty segments (//, /;/), encoded
// slashes and backslashes, and control characters. A trailing slash is
// kept.
func Join(base *url.URL, rest, rawQuery string) (*url.URL, error) {
	plain := plainPath(rest) // looked at once: checked and joined as it is
	if err := checkRest(rest, plain); err != nil {
		return nil, err
	}
	// A fragment never belongs in a request target (Go's server lets '#'
	// through in the raw query).
	if strings.ContainsFunc(rawQuery, invalidInTarget) || strings.ContainsRune(rawQuery, '#') {
		return nil, ErrBadPath
	}
	if plain && base.RawPath == "" && plainPath(base.Path) {
		return joinPlain(base, rest, rawQuery), nil
	}
	return joinEscaped(base, rest, rawQuery)
}

// joinPlain is Join for a base path and rest that need no escaping and hold
// no escapes (plainPath): the path is both the decoded and the escaped
// form, so the request's URL is put together without decoding and
// re-encoding it (the common case, once per request).
func joinPlain(base *url.URL, rest, rawQuery string) *url.URL {
	path := strings.TrimSuffix(base.Path, "/") + rest
	if path == "" {
		path = "/"
	}
	return &url.URL{Scheme: base.Scheme, Host: base.Host, Path: path, RawQuery: rawQuery}
}

// joinEscaped is Join for any checked rest.
func joinEscaped(base *url.URL, rest, rawQuery string) (*url.URL, error) {
	basePath := strings.TrimSuffix(base.EscapedPath(), "/")
	escaped := basePath + rest
	if escaped == "" {
		escaped = "/"
	}
	path, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, ErrBadPath
	}
	u := &url.URL{Scheme: base.Scheme, Host: base.Host, Path: path, RawQuery: rawQuery}
	if path != escaped {
		u.RawPath = escaped
	}
	if u.EscapedPath() != escaped { // not a valid escaped path: it would be re-encoded
		return nil, ErrBadPath
	}
	return u, nil
}

// checkRest refuses a rest Join must not join; plain: plainPath(rest).
func checkRest(rest string, plain bool) error {
	if rest == "" {
		return nil
	}
	if plain && rest[0] == '/' {
		return checkPlain(rest)
	}
	return checkEscaped(rest)
}

// checkEscaped is checkRest for any non-empty rest.
func checkEscaped(rest string) error {
	if rest[0] != '/' || strings.ContainsFunc(rest, invalidInTarget) || strings.ContainsRune(rest, '\\') {
		return ErrBadPath
	}
	for seg := range strings.SplitSeq(rest[1:], "/") {
		rest = rest[1+len(seg):] // what follows this segment
		if seg == "" {
			if rest == "" {
				continue // trailing slash
			}
			return ErrBadPath
		}
		if !safeSegment(seg) {
			return ErrBadPath
		}
	}
	return nil
}

// checkPlain is checkRest for a rest of plain bytes (plainPath), starting
// with '/': with nothing to decode and no parameters or spaces, a segment is
// harmful only when it is empty (a trailing slash aside) or all dots.
func checkPlain(rest string) error {
	for i := 1; i <= len(rest); {
		j := strings.IndexByte(rest[i:], '/')
		if j < 0 {
			j = len(rest) - i
		}
		seg := rest[i : i+j]
		if seg == "" {
			if i+j == len(rest) {
				return nil // trailing slash
			}
			return ErrBadPath
		}
		if strings.Trim(seg, ".") == "" {
			return ErrBadPath
		}
		i += j + 1
	}
	return nil
}

// plainPath reports whether every byte of s is one a path carries as it
// is, that needs no decoding, and that no server reads as a parameter or
// trims: RFC 3986's unreserved characters, '/', ':' and '@'.
func plainPath(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

var plainByte = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/:@") {
		t[c] = true
	}
	return t
}()

// maxDecodeRounds is how many rounds of percent-decoding safeSegment looks
// through; a segment still encoded after that is refused, as no client
// encodes a path four times.
const maxDecodeRounds = 3

// safeSegment reports whether an escaped path segment stays a harmless
// segment whatever an upstream does to it: percent-decoding it (leniently,
// leaving an invalid escape as it is, as some servers do), up to
// maxDecodeRounds times, and stripping its path parameters (";…", RFC 3986
// §3.3 leaves their meaning to the server; Tomcat removes them before and
// after decoding) at any of those rounds.
func safeSegment(seg string) bool {
	for round := 0; ; round++ {
		if strings.ContainsAny(seg, "/\\") || strings.ContainsFunc(seg, isControl) || dotSegment(seg) {
			return false
		}
		if !strings.Contains(seg, "%") {
			return true
		}
		next := lenientUnescape(seg)
		if next == seg {
			return true // only invalid escapes: nothing more to decode
		}
		if round == maxDecodeRounds {
			return false
		}
		seg = next
	}
}

// dotSegment reports whether a segment, once its path parameters are
// stripped, is empty or dots (and spaces, which Windows servers trim): a
// segment an upstream may collapse or read as a parent.
func dotSegment(seg string) bool {
	name, _, _ := strings.Cut(seg, ";")
	return strings.Trim(name, ". ") == ""
}

// lenientUnescape decodes every valid %XX and keeps anything else as is.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// invalidInTarget: control characters and the raw space, which no valid
// request target holds.
func invalidInTarget(r rune) bool { return r <= 0x20 || r == 0x7f }
