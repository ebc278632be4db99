package privacy

import (
	"net/http"
	"strings"
)

// neverInResponse reports whether a response header never reaches the client:
// hop-by-hop fields (RFC 9110 §7.6.1); Alt-Svc, which would send the client
// around the proxy straight to the provider; Network Error Logging and
// Reporting, which would make a browser report its own address to the
// provider's CDN; Strict-Transport-Security, which would pin the operator's
// domain to whatever the provider chose; and CORS headers, which the proxy
// sets itself.
//
// It is a switch, which a response's few headers go through in one pass,
// where deleting every listed name from the map would hash each of them.
func neverInResponse(name string) bool {
	switch name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization",
		"Alt-Svc", "Nel", "Report-To", "Reporting-Endpoints", "Strict-Transport-Security":
		return true
	}
	return false
}

// CleanResponse removes from h, in place, the response headers that must not
// reach the client. Set-Cookie (a provider CDN's tracking cookie) goes too
// unless keepCookies is set. It returns the values of the Connection header
// it removed: the fields they name are hop-by-hop in the trailer too
// (CleanTrailer).
func CleanResponse(h http.Header, keepCookies bool) (connection []string) {
	connection = h["Connection"]
	cleanResponse(h, connection, keepCookies)
	return connection
}

// CleanTrailer removes from t, in place, the trailer fields of a response
// that must not reach the client: a field the header filter drops must not
// come through as a trailer either. connection is what CleanResponse
// returned for the response's header.
func CleanTrailer(t http.Header, connection []string, keepCookies bool) {
	cleanResponse(t, connection, keepCookies)
}

func cleanResponse(h http.Header, connection []string, keepCookies bool) {
	hop := parseConnection(connection)
	if hop.all {
		// An upstream listing more names than any real one does: every
		// header counts as named (see MaxConnectionTokens).
		clear(h)
		return
	}
	for name := range h {
		if neverInResponse(name) || hop.n > 0 && hop.names(name) ||
			!keepCookies && name == "Set-Cookie" ||
			len(name) > len("Access-Control-") && strings.EqualFold(name[:len("Access-Control-")], "Access-Control-") {
			delete(h, name)
		}
	}
}
