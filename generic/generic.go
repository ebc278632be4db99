// Package generic parses generic-mode paths: what follows the operator's
// token in /<token>/<scheme>/<host>[:port]/<path>?<query>, or in the Workers
// scripts' spelling /<token>/<scheme>://<host>/<path>. The host is checked
// strictly here; whether it may be reached is netguard's decision, made on
// the address actually dialled.
package generic

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Error is a path that names no valid target. Its message is safe to show:
// it never repeats the path, which sits next to the token.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

var (
	errScheme   = &Error{"generic target must start with http, https, ws or wss: /<token>/https/<host>/<path>"}
	errHost     = &Error{"generic target needs a host name or IP address, with an optional port"}
	errUserinfo = &Error{"generic target must not carry user info (user@host)"}
	errPort     = &Error{"generic target port must be a number from 1 to 65535"}
	errPath     = &Error{"generic target path or query holds a control character or invalid escaping"}
)

// Target is a parsed generic URL.
type Target struct {
	Scheme   string // https, http, wss or ws
	Host     string // lower case, [IPv6] bracketed, default port dropped
	Path     string // escaped, as received; starts with "/"
	RawQuery string // as received
}

// URL returns the target as a URL whose escaped path is exactly Path.
func (t *Target) URL() *url.URL {
	u := &url.URL{Scheme: t.Scheme, Host: t.Host, RawQuery: t.RawQuery}
	if p, err := url.PathUnescape(t.Path); err == nil {
		u.Path = p
		if p != t.Path {
			u.RawPath = t.Path
		}
	} else {
		u.Path, u.RawPath = t.Path, t.Path
	}
	return u
}

// WebSocket reports whether the target is a ws or wss URL.
func (t *Target) WebSocket() bool { return t.Scheme == "ws" || t.Scheme == "wss" }

// IsScheme reports whether a path segment starts a generic target.
func IsScheme(seg string) bool {
	switch strings.ToLower(strings.TrimSuffix(seg, ":")) { // as Parse reads it
	case "https", "http", "wss", "ws":
		return true
	}
	return false
}

// Parse parses rest, the escaped path after the token ("/https/host/path"),
// and the raw query. Any input yields a Target whose host is the one the
// path names, or an *Error.
func Parse(rest, rawQuery string) (*Target, error) {
	rest, ok := strings.CutPrefix(rest, "/")
	if !ok {
		return nil, errScheme
	}
	scheme, rest, _ := strings.Cut(rest, "/")
	colon := strings.HasSuffix(scheme, ":")
	scheme = strings.ToLower(strings.TrimSuffix(scheme, ":"))
	switch scheme {
	case "https", "http", "wss", "ws":
	default:
		return nil, errScheme
	}
	// "https://host" arrives as "https:", "", "host"; a front that merges
	// slashes (nginx does by default) leaves "https:", "host".
	if colon {
		rest = strings.TrimPrefix(rest, "/")
	}
	hostport, path, hasPath := strings.Cut(rest, "/")
	host, err := parseHost(scheme, hostport)
	if err != nil {
		return nil, err
	}
	path = "/" + path
	if !hasPath {
		path = "/"
	}
	if strings.ContainsFunc(path, isControl) || strings.ContainsFunc(rawQuery, isControl) || strings.ContainsRune(rawQuery, '#') {
		return nil, errPath
	}
	t := &Target{Scheme: scheme, Host: host, Path: path, RawQuery: rawQuery}
	// The path must go out byte for byte: refuse one that is not a valid
	// escaped path (a raw space, a stray '%'), which would be re-encoded.
	if t.URL().EscapedPath() != path {
		return nil, errPath
	}
	return t, nil
}

func parseHost(scheme, hostport string) (string, error) {
	if hostport == "" {
		return "", errHost
	}
	if strings.ContainsAny(hostport, "@") {
		return "", errUserinfo
	}
	// Percent-encoding, backslashes and the like have no place in a host:
	// refuse rather than guess how an upstream would read them.
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", errHost
		}
		host, port = hostport[1:end], hostport[end+1:]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil && !strings.Contains(host, ":") {
			return "", errHost
		}
		if port != "" {
			if port[0] != ':' {
				return "", errHost
			}
			if port = port[1:]; port == "" {
				return "", errPort
			}
		}
		host = "[" + strings.ToLower(host) + "]"
	} else {
		if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
			host, port = hostport[:i], hostport[i+1:]
			if port == "" {
				return "", errPort
			}
		}
		if !validHostname(host) {
			return "", errHost
		}
		host = strings.ToLower(host)
	}
	if port != "" {
		// Digits only (ParseUint takes no sign: Atoi would read "+1",
		// which no URL parser reads as a port), at most 65535.
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n < 1 || port[0] == '0' {
			return "", errPort
		}
		if !(n == 443 && (scheme == "https" || scheme == "wss") || n == 80 && (scheme == "http" || scheme == "ws")) {
			host += ":" + port
		}
	}
	return host, nil
}

// validHostname accepts DNS names (letters, digits, '-', '_', dots, an
// optional final dot) and dotted IPv4, which is all a DNS name can hold.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '.' || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// isControl also covers the space: no valid request target holds one.
func isControl(r rune) bool { return r <= 0x20 || r == 0x7f }

// IsError reports whether err is a parse error of this package.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
