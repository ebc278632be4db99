package privacy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// MaxConnectionTokens bounds the names one message's Connection header may
// list (RFC 9110 §7.6.1). Real clients and servers list one or two
// (keep-alive, close, upgrade, te). A message that lists more is treated as
// naming every header it carries, which is what it could have done anyway:
// the policy then keeps none of them. So the work one message can cause
// stays linear in its size, and the choice errs towards sending less. A
// server may prefer to refuse such a request (see ConnectionOverLimit).
const MaxConnectionTokens = 64

// hopByHop holds the names listed in a message's Connection header,
// parsed once per message: looking each header up in it costs the same
// however many names were listed.
type hopByHop struct {
	all   bool // more than MaxConnectionTokens: every header counts as named
	n     int
	small [8]string           // the first names, as listed (no copy)
	more  map[string]struct{} // the rest, in lower case
}

// parseConnection reads the Connection header's values once. It stops at
// the first name past MaxConnectionTokens.
func parseConnection(values []string) (h hopByHop) {
	count := 0
	for _, v := range values {
		for token := range strings.SplitSeq(v, ",") {
			token = textproto.TrimString(token)
			if token == "" {
				continue
			}
			if count++; count > MaxConnectionTokens {
				h.all = true
				return h
			}
			if h.n < len(h.small) {
				h.small[h.n] = token
				h.n++
				continue
			}
			if h.more == nil {
				h.more = make(map[string]struct{}, MaxConnectionTokens-len(h.small))
			}
			h.more[strings.ToLower(token)] = struct{}{}
		}
	}
	return h
}

// names reports whether the Connection header named this header.
func (h *hopByHop) names(name string) bool {
	if h.all {
		return true
	}
	for _, token := range h.small[:h.n] {
		if strings.EqualFold(token, name) {
			return true
		}
	}
	if h.more == nil {
		return false
	}
	var buf [64]byte
	lower := buf[:0]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c)
	}
	_, ok := h.more[string(lower)]
	return ok
}

// ConnectionOverLimit reports whether h's Connection header lists more
// than MaxConnectionTokens names, so that a server can refuse the request
// instead of sending it upstream without headers.
func ConnectionOverLimit(h http.Header) bool {
	hop := parseConnection(h["Connection"])
	return hop.all
}
