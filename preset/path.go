package preset

import (
	"errors"
	"net/url"
	"strings"
)

// ErrBadPath is returned for a path that could leave the preset's base path
// or that holds bytes no upstream should see. The message is safe to show.
var ErrBadPath = errors.New("the path after the preset has an empty, '.' or '..' segment, an encoded slash or backslash, invalid escaping, or a control character")

// Join returns the upstream URL for a request: base, then the escaped path
// after the preset (rest: "" or starting with "/"), then the raw query, both
// byte for byte as the client sent them.
//
// A path that could climb out of base's path once an upstream decodes and
// normalises it is refused: dot segments in any spelling (.., %2e%2e, %2E.,
// and their double-encoded forms), empty segments (//), encoded slashes and
// backslashes, and control characters. A trailing slash is kept.
func Join(base *url.URL, rest, rawQuery string) (*url.URL, error) {
	if err := checkRest(rest); err != nil {
		return nil, err
	}
	// A fragment never belongs in a request target (Go's server lets '#'
	// through in the raw query).
	if strings.ContainsFunc(rawQuery, invalidInTarget) || strings.ContainsRune(rawQuery, '#') {
		return nil, ErrBadPath
	}
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

func checkRest(rest string) error {
	if rest == "" {
		return nil
	}
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
		if !safeSegment(seg, 2) {
			return ErrBadPath
		}
	}
	return nil
}

// safeSegment reports whether an escaped path segment stays a harmless
// segment after up to depth rounds of percent-decoding.
func safeSegment(seg string, depth int) bool {
	if seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\") || strings.ContainsFunc(seg, isControl) {
		return false
	}
	if depth == 0 || !strings.Contains(seg, "%") {
		return true
	}
	decoded, err := url.PathUnescape(seg)
	if err != nil {
		return false
	}
	return safeSegment(decoded, depth-1)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// invalidInTarget: control characters and the raw space, which no valid
// request target holds.
func invalidInTarget(r rune) bool { return r <= 0x20 || r == 0x7f }
