// Package privacy decides which request headers may travel upstream and which
// response headers may come back, so that a provider learns nothing about the
// client behind the proxy. Both transports (socket and fetch) and the WebSocket
// relay apply the same Policy. The README's privacy section states the
// guarantees it keeps.
package privacy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Policy filters the headers of a request on its way upstream.
//
// A preset policy is an allowlist: only the headers a provider needs, plus the
// ones the operator adds, pass. A generic policy is a denylist: anything not
// known to identify the client passes, because an arbitrary API may need it.
// The denylist applies in both modes and cannot be lifted, except for the
// client-SDK fingerprint headers (X-Stainless-*), which an operator may allow.
type Policy struct {
	allow         map[string]bool // canonical names, to whether each passes the denylist too; nil means denylist mode
	allowPrefixes []string        // canonical prefixes such as "X-Portkey-"
	fingerprint   bool            // forward X-Stainless-* headers
	secret        string          // a header whose value contains it never passes
}

// PresetHeaders are the request headers every preset forwards: what the
// providers' APIs and SDKs need to work ("headers that must arrive unchanged"). Content-Encoding belongs here because the body passes through
// byte for byte and would be unreadable without it.
var PresetHeaders = []string{
	"Accept",
	"Authorization",
	"Content-Type",
	"Content-Encoding",
	"X-Api-Key",
	"X-Goog-Api-Key",
	"Anthropic-Version",
	"Anthropic-Beta",
	"Openai-Organization",
	"Openai-Project",
	"Openai-Beta",
	"Idempotency-Key",
	"Sec-Websocket-Protocol",
}

// Options tunes a Policy. The zero value is a strict denylist policy.
type Options struct {
	// Allow, when non-nil, turns the policy into an allowlist: only these
	// headers pass (after the denylist). A name ending in "*" allows a prefix,
	// e.g. "X-Portkey-*". Denied names listed here are ignored; see Denied.
	Allow []string
	// Fingerprint forwards the client-SDK fingerprint headers (X-Stainless-OS,
	// -Arch, -Runtime, …), which are dropped by default: no provider needs them.
	Fingerprint bool
	// Secret is the operator's token. Any header whose value contains it,
	// as is or percent-encoded, is dropped, in whatever header the client
	// put it.
	Secret string
}

// New returns a policy. With opts.Allow nil it is a denylist policy (generic
// mode); otherwise an allowlist policy (presets).
func New(opts Options) *Policy {
	p := &Policy{fingerprint: opts.Fingerprint, secret: opts.Secret}
	if opts.Allow != nil {
		p.allow = make(map[string]bool, len(opts.Allow))
		for _, name := range opts.Allow {
			if prefix, ok := strings.CutSuffix(name, "*"); ok {
				p.allowPrefixes = append(p.allowPrefixes, textproto.CanonicalMIMEHeaderKey(prefix))
				continue
			}
			canonical := textproto.CanonicalMIMEHeaderKey(name)
			p.allow[canonical] = p.classPasses(canonical)
		}
	}
	return p
}

// Outbound returns the headers of src that may go upstream, in a new map.
// Values are copied by reference; src is not modified. Headers named in src's
// Connection header are dropped as hop-by-hop (RFC 9110 §7.6.1).
func (p *Policy) Outbound(src http.Header) http.Header {
	dst := make(http.Header, len(src))
	hop := parseConnection(src["Connection"])
	for name, values := range src {
		if c := textproto.CanonicalMIMEHeaderKey(name); p.keeps(c, values, &hop) {
			dst[c] = values
		}
	}
	return dst
}

// Filter removes from h, in place, the headers that may not go upstream,
// and returns h: Outbound without the copy, for a caller that owns h and
// has no further use for what is removed. Like Outbound, it leaves every
// name in canonical form (a server's parsed header has no other), so that
// a later delete or set by canonical name finds it.
func (p *Policy) Filter(h http.Header) http.Header {
	hop := parseConnection(h["Connection"])
	for name, values := range h {
		c := textproto.CanonicalMIMEHeaderKey(name)
		if !p.keeps(c, values, &hop) {
			delete(h, name)
		} else if c != name {
			delete(h, name)
			h[c] = append(h[c], values...)
		}
	}
	return h
}

// keeps reports whether a header, by its canonical name, goes upstream: its
// name passes the policy, the request's Connection header does not name it
// (RFC 9110 §7.6.1), and no value holds the operator's token.
func (p *Policy) keeps(name string, values []string, hop *hopByHop) bool {
	return p.passes(name) &&
		!hop.names(name) &&
		!(p.secret != "" && containsSecret(values, p.secret))
}

// passes reports whether a header with this canonical name may go
// upstream under p, regardless of its value.
func (p *Policy) passes(name string) bool {
	if p.allow == nil {
		return p.classPasses(name)
	}
	// An allowlist: a name passes when it is listed and the denylist lets
	// it, which for a listed name New worked out once.
	if ok, listed := p.allow[name]; listed {
		return ok
	}
	for _, prefix := range p.allowPrefixes {
		if strings.HasPrefix(name, prefix) {
			return p.classPasses(name)
		}
	}
	return false
}

// classPasses reports whether the denylist lets a name through: not Never,
// and not Fingerprint unless the policy forwards those.
func (p *Policy) classPasses(name string) bool {
	switch Classify(name) {
	case Never:
		return false
	case Fingerprint:
		return p.fingerprint
	}
	return true
}

// containsSecret reports whether a value holds the secret, as is or in any
// percent-encoded spelling (see Redactor.String): a header that carries a
// URL may carry the token encoded, and the upstream may decode it.
func containsSecret(values []string, secret string) bool {
	for _, v := range values {
		if strings.Contains(v, secret) {
			return true
		}
		for round := 0; round < maxDecodeRounds && strings.IndexByte(v, '%') >= 0; round++ {
			next, _, changed := decodeRound(v, nil)
			if !changed {
				break
			}
			if strings.Contains(next, secret) {
				return true
			}
			v = next
		}
	}
	return false
}

// ContainsSecret reports whether v holds secret, as is or percent-encoded
// (in any spelling the header policy catches).
func ContainsSecret(v, secret string) bool {
	return secret != "" && containsSecret([]string{v}, secret)
}
