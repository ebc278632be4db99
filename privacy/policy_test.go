package privacy

import (
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// identifying lists every request header the privacy reference says never goes
// upstream, in odd cases, plus spellings a framework would read the same.
var identifying = []string{
	"connection", "PROXY-CONNECTION", "Keep-Alive", "te", "Trailer", "transfer-encoding", "Upgrade",
	"Proxy-Authorization", "proxy-authenticate",
	"forwarded", "X-FORWARDED-FOR", "x-forwarded-host", "X-Forwarded-Proto", "x-forwarded-port",
	"X-Forwarded-Prefix", "x-forwarded-server", "X-Forwarded", "Forwarded-For", "via", "x-real-ip",
	"True-Client-IP", "x-client-ip", "X-Cluster-Client-IP", "client-ip", "Proxy-Client-IP",
	"WL-Proxy-Client-IP", "fastly-client-ip", "X-AppEngine-User-IP", "DO-Connecting-IP",
	"X-Original-Forwarded-For", "x-proxyuser-ip",
	"CF-Connecting-IP", "cf-ipcountry", "CF-RAY", "cf-visitor", "CF-Worker", "cf-ipcity", "CDN-Loop",
	"cookie", "ORIGIN", "Referer", "Sec-Fetch-Site", "sec-fetch-mode", "Sec-CH-UA", "sec-ch-ua-platform",
	"DNT", "sec-gpc",
	"traceparent", "Tracestate", "X-Request-ID", "x-amzn-trace-id", "X-B3-TraceId", "x-b3-spanid",
	"x_forwarded_for", "X_Real_IP", "cf_connecting_ip", "Fly-Client-IP", "X-Vercel-IP-Country",
	// The families and names of issue 13: Envoy, Sucuri, Akamai, App Engine, CloudFront, Vercel,
	// Microsoft and gRPC tracing, Chrome, Client Hints, carriers.
	"X-Envoy-External-Address", "X-ClientIP", "X-Sucuri-ClientIP", "Remote-Addr", "Request-Id",
	"Correlation-Context", "Correlation-Id", "grpc-trace-bin", "X-Client-Data", "Sec-Browsing-Topics",
	"X-AppEngine-Country", "X-AppEngine-Region", "X-AppEngine-City", "X-AppEngine-CityLatLong",
	"CloudFront-Viewer-Country", "CloudFront-Viewer-Address", "X-Vercel-IP-Latitude", "CF-IPCountry",
	"Device-Memory", "Viewport-Width", "DPR", "ECT", "RTT", "Downlink", "Save-Data", "X-Wap-Profile",
	"X-Device-Model", "x-trace-id", "X-TraceId", "x-span-id", "X-Correlation-Foo", "X-B3-Sampled",
	"x-datadog-parent-id", "X-Cloud-Trace-Context", "newrelic", "X-NewRelic-Id", "X-Dynatrace",
	"elastic-apm-traceparent", "sentry-trace", "baggage", "X-Amzn-Trace-Id", "X-Originating-IP",
	"X-Remote-IP", "X-Original-URI", "X-Client-Port", "X-Real-Port", "Proxy-Status",
}

func TestClassifyNever(t *testing.T) {
	t.Parallel()
	for _, name := range identifying {
		if got := Classify(name); got != Never {
			t.Errorf("Classify(%q) = %v, want Never", name, got)
		}
	}
	for _, name := range []string{"X-Stainless-OS", "x-stainless-arch", "X-STAINLESS-RUNTIME-VERSION"} {
		if got := Classify(name); got != Fingerprint {
			t.Errorf("Classify(%q) = %v, want Fingerprint", name, got)
		}
	}
	for _, name := range append(slices.Clone(PresetHeaders), "User-Agent", "X-Custom-Thing", "Ipv6-Hint", "X-Shipping") {
		if got := Classify(name); got != Pass {
			t.Errorf("Classify(%q) = %v, want Pass", name, got)
		}
	}
}

func request(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(pairs); i += 2 {
		h[pairs[i]] = append(h[pairs[i]], pairs[i+1])
	}
	return h
}

func TestOutbound(t *testing.T) {
	t.Parallel()
	const token = "operator-token-0123456789"
	in := request(
		"Authorization", "Bearer sk-live",
		"Content-Type", "application/json",
		"Accept", "text/event-stream",
		"Anthropic-Version", "2023-06-01",
		"X-Portkey-Provider", "openai",
		"User-Agent", "Mozilla/5.0",
		"X-Forwarded-For", "203.0.113.9",
		"Cookie", "session=1",
		"X-Stainless-Os", "Linux",
		"X-Custom", "value",
		"X-Hop", "dropped because Connection names it",
		"Connection", "X-Hop",
		"X-Leak", "carries "+token+" inside",
	)
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"preset allowlist", Options{Allow: append(slices.Clone(PresetHeaders), "X-Portkey-*"), Secret: token},
			[]string{"Accept", "Anthropic-Version", "Authorization", "Content-Type", "X-Portkey-Provider"}},
		{"generic denylist", Options{Secret: token},
			[]string{"Accept", "Anthropic-Version", "Authorization", "Content-Type", "User-Agent", "X-Custom", "X-Portkey-Provider"}},
		{"generic with SDK headers allowed", Options{Fingerprint: true},
			[]string{"Accept", "Anthropic-Version", "Authorization", "Content-Type", "User-Agent", "X-Custom", "X-Leak", "X-Portkey-Provider", "X-Stainless-Os"}},
		{"operator cannot allow a denied header", Options{Allow: []string{"Authorization", "X-Forwarded-For", "cookie"}},
			[]string{"Authorization"}},
		{"a denied header under an allowed prefix, an SDK header listed", Options{Allow: []string{"X-Forwarded-*", "X-Stainless-Os"}},
			nil},
		{"an SDK header listed, with SDK headers allowed", Options{Allow: []string{"X-Forwarded-*", "X-Stainless-Os"}, Fingerprint: true},
			[]string{"X-Stainless-Os"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := New(tc.opts).Outbound(in)
			// Filter keeps exactly what Outbound copies.
			filtered := New(tc.opts).Filter(in.Clone())
			if !maps.EqualFunc(out, filtered, slices.Equal) {
				t.Errorf("Filter %v differs from Outbound %v", filtered, out)
			}
			var got []string
			for name := range out {
				got = append(got, name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("forwarded %v, want %v", got, tc.want)
			}
		})
	}
	if in.Get("Cookie") == "" {
		t.Error("Outbound modified its input")
	}

	// A map filled by hand may hold names in other cases: both leave them
	// canonical, so that the gateway's delete of the client's credential by
	// its canonical name finds it.
	raw := http.Header{"authorization": {"Bearer client"}, "content-type": {"application/json"}, "x-forwarded-for": {"10.0.0.1"}}
	for _, p := range []*Policy{New(Options{}), New(Options{Allow: PresetHeaders})} {
		for _, got := range []http.Header{p.Outbound(raw), p.Filter(maps.Clone(raw))} {
			if len(got) != 2 || got.Get("Authorization") != "Bearer client" || got.Get("Content-Type") != "application/json" {
				t.Errorf("non-canonical names: %v", got)
			}
		}
	}
}

func TestCleanResponse(t *testing.T) {
	t.Parallel()
	h := request(
		"Content-Type", "text/event-stream",
		"Alt-Svc", `h3=":443"`,
		"Set-Cookie", "__cf_bm=abc",
		"Nel", `{"report_to":"cf-nel"}`,
		"Report-To", `{"endpoints":[{"url":"https://a.nel.cloudflare.com"}]}`,
		"Strict-Transport-Security", "max-age=31536000; includeSubDomains",
		"Access-Control-Allow-Origin", "https://platform.openai.com",
		"Connection", "X-Upstream-Hop",
		"X-Upstream-Hop", "1",
		"Keep-Alive", "timeout=5",
		"X-Ratelimit-Remaining-Requests", "99",
	)
	CleanResponse(h, false)
	var got []string
	for name := range h {
		got = append(got, name)
	}
	slices.Sort(got)
	want := []string{"Content-Type", "X-Ratelimit-Remaining-Requests"}
	if !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	// Every name on the list goes, as the upstream spells it after
	// parsing (canonical), and only those.
	never := []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization",
		"Alt-Svc", "Nel", "Report-To", "Reporting-Endpoints", "Strict-Transport-Security"}
	h = http.Header{"X-Kept": {"1"}, "Content-Length": {"2"}, "Access-Control-": {"3"}}
	for _, name := range never {
		h[name] = []string{"x"}
	}
	CleanResponse(h, true)
	if len(h) != 3 {
		t.Errorf("after the hop-by-hop and provider headers: %v", h)
	}
	h = request("Set-Cookie", "a=1")
	CleanResponse(h, true)
	if h.Get("Set-Cookie") != "a=1" {
		t.Error("keepCookies did not keep Set-Cookie")
	}
}

// A trailer goes through the header's filter: what a header may not carry
// does not come as a trailer, and the header's Connection names count.
func TestCleanTrailer(t *testing.T) {
	t.Parallel()
	h := request("Content-Type", "text/event-stream", "Connection", "X-Upstream-Hop")
	connection := CleanResponse(h, false)
	tr := request(
		"Set-Cookie", "__cf_bm=abc",
		"Alt-Svc", `h3=":443"`,
		"Nel", `{"report_to":"cf-nel"}`,
		"Strict-Transport-Security", "max-age=31536000",
		"Access-Control-Allow-Origin", "*",
		"X-Upstream-Hop", "1",
		"X-Usage-Tokens", "42",
	)
	CleanTrailer(tr, connection, false)
	if len(tr) != 1 || tr.Get("X-Usage-Tokens") != "42" {
		t.Errorf("trailer kept %v, want X-Usage-Tokens only", tr)
	}
	tr = request("Set-Cookie", "a=1")
	CleanTrailer(tr, nil, true)
	if tr.Get("Set-Cookie") != "a=1" {
		t.Error("keepCookies did not keep a Set-Cookie trailer")
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	const token = "tok-abcdefghijklmnop"
	r := NewRedactor(token)
	tests := []string{
		"/" + token + "/https/api.example.com/v1",
		`Get "https://generativelanguage.googleapis.com/v1beta/models?key=AIzaSyA-1234567890abcdefghij&alt=sse": EOF`,
		"Authorization: Bearer sk-proj-abcdefghijklmnop",
		"/telegram/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
		"?api_key=secret1&token=secret2&access_token=secret3",
		"discord: Authorization: Bot MTIzNDU2Nzg5MDEyMzQ1Njc4.abc.defghijk",
	}
	secrets := []string{token, "AIzaSyA", "sk-proj", "AAHdqT", "secret1", "secret2", "secret3", "MTIzNDU2"}
	for _, in := range tests {
		out := r.String(in)
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("String(%q) = %q still holds %q", in, out, s)
			}
		}
	}
	a := r.ReplaceAttr(nil, slog.String("authorization", "Bearer x"))
	if a.Value.String() != Placeholder {
		t.Errorf("authorization attribute = %q", a.Value)
	}
	if got := r.String("api.openai.com:443 refused"); got != "api.openai.com:443 refused" {
		t.Errorf("redacted a harmless string: %q", got)
	}
}
