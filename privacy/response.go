package privacy

import (
	"net/http"
	"strings"
)

// responseNever lists response headers that never reach the client:
// hop-by-hop fields (RFC 9110 §7.6.1); Alt-Svc, which would send the client
// around the proxy straight to the provider; Network Error Logging and
// Reporting, which would make a browser report its own address to the
// provider's CDN; Strict-Transport-Security, which would pin the operator's
// domain to whatever the provider chose; and CORS headers, which the proxy
// sets itself.
var responseNever = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization",
	"Alt-Svc", "Nel", "Report-To", "Reporting-Endpoints", "Strict-Transport-Security",
}

// CleanResponse removes from h, in place, the response headers that must not
// reach the client. Set-Cookie (a provider CDN's tracking cookie) goes too
// unless keepCookies is set.
func CleanResponse(h http.Header, keepCookies bool) {
	if hop := parseConnection(h["Connection"]); hop.all {
		// An upstream listing more names than any real one does: every
		// header counts as named (see MaxConnectionTokens).
		clear(h)
		return
	} else if hop.n > 0 {
		for name := range h {
			if hop.names(name) {
				delete(h, name)
			}
		}
	}
	for _, name := range responseNever {
		delete(h, name)
	}
	if !keepCookies {
		delete(h, "Set-Cookie")
	}
	for name := range h {
		if len(name) > len("Access-Control-") && strings.EqualFold(name[:len("Access-Control-")], "Access-Control-") {
			delete(h, name)
		}
	}
}
