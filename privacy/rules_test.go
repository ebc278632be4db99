package privacy

import (
	"slices"
	"strings"
	"testing"
)

// heldOut are real header names that carry the client's address, location,
// device or identity, or a trace context, as CDNs, load balancers, API
// gateways, authenticating proxies, mobile carriers, browsers and tracing
// libraries add them. The list was written before the rules, and the rules
// were not written from it: they catch these names as members of a family,
// not by name (see the never table and the family words in classify.go).
// Do not add a name here together with a rule for that name; add a family.
var heldOut = []string{
	// Client address.
	"X-Original-Remote-Addr", "X-Forwarded-Client-Cert", "X-Real-Forwarded-For", "Z-Forwarded-For",
	"Ali-Cdn-Real-Ip", "Cdn-Src-Ip", "X-Cdn-Src-Ip", "EO-Client-IP", "X-Nf-Client-Connection-Ip", "X-User-IP",
	"X-Source-IP", "Incap-Client-IP", "X-Wap-Network-Client-Ip", "X-Client-Public-Ip", "X-Remote-Address",
	"X-Client-IPv6", "X-Real-Client-Addr", "Remote-Host", "X-Original-Client-Ip", "X-Azure-SocketIP",
	"X-ProxyMesh-IP", "X-Bluecoat-Via", "X-Forwarded-For-Original", "X-Client-Address", "X-Peer-Addr",
	// Location.
	"X-Geo-Country", "X-GeoIP-Country-Code", "X-Country-Code", "X-Client-Geo-Location",
	"X-Client-Region-Subdivision", "X-Client-City-Lat-Long", "X-Akamai-Edgescape", "X-Nf-Geo", "X-Postal-Code",
	"X-Geo-Metro-Code", "X-Continent-Code", "X-Timezone", "X-Client-Latitude", "X-Sucuri-Country", "X-Country",
	"X-Client-Asn", "X-Isp", "X-Visitor-City", "GeoIP-Region",
	// Device, browsing profile, carrier.
	"X-UIDH", "X-Msisdn", "X-Up-Calling-Line-Id", "X-Att-Deviceid", "X-Operamini-Phone-Ua", "Device-Stock-Ua",
	"X-Ucbrowser-Device-Ua", "X-Nokia-Msisdn", "X-Imsi", "X-Wap-Clientid", "Sec-Private-State-Token",
	"Sec-Shared-Storage-Writable", "Sec-Ad-Auction-Fetch", "Attribution-Reporting-Eligible",
	"X-Browser-Fingerprint", "X-Ja3-Fingerprint", "X-Original-User-Agent", "X-Client-Device-Id",
	// Tracing and correlation.
	"X-Ms-Client-Request-Id", "X-Client-Trace-Id", "X-Ot-Span-Context", "Ot-Tracer-Traceid", "X-Amzn-Requestid",
	"X-Unique-Id", "X-Transaction-Id", "X-Honeycomb-Trace", "X-Request-Trace", "Trace-Id", "X-Ms-Activity-Id",
	"X-Parent-Span-Id", "Sw8-Correlation",
	// Identity added by an authenticating proxy or API gateway.
	"X-Forwarded-User", "X-Auth-Request-Email", "X-Auth-Request-User", "X-Webauth-User", "X-Remote-User",
	"X-Goog-Authenticated-User-Email", "X-Ms-Client-Principal-Name", "X-Amzn-Oidc-Identity", "X-Ssl-Client-Dn",
	"X-Client-Cert", "X-Arr-Clientcert", "X-User-Email", "X-Authenticated-Userid", "X-Consumer-Username",
	"X-Consumer-Id", "X-Credential-Identifier", "X-Userinfo",
}

// heldOutMissed are the held-out names no family catches yet: each would
// need a rule written for that one name. They are listed, not hidden, and
// this list is asserted, so that a rule that starts catching one shows up
// here to be moved into heldOut's passing set.
var heldOutMissed = []string{
	"Attribution-Reporting-Eligible", // Privacy Sandbox; no "sec-" prefix and no family word
	"X-Consumer-Id",                  // Kong; "consumer" would also be a word of ordinary APIs
	"X-Credential-Identifier",        // Kong
	"X-Userinfo",                     // Kong OIDC
}

// mustPass are request headers providers need ("Headers that must arrive
// unchanged" in the privacy reference, the presets' extras) and headers of
// LLM APIs and gateways reached in generic mode. No rule may catch them.
var mustPass = []string{
	"Content-Type", "Accept", "Authorization", "X-Api-Key", "X-Goog-Api-Key", "Anthropic-Version", "Anthropic-Beta",
	"OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta", "Idempotency-Key", "Sec-WebSocket-Protocol",
	"Content-Encoding", "User-Agent", "Accept-Language",
	// Preset extras.
	"X-Portkey-Provider", "X-Portkey-Virtual-Key", "X-Portkey-Config", "X-Portkey-Api-Key", "X-Portkey-Trace-Id",
	"X-Portkey-Span-Id", "X-Portkey-Parent-Span-Id", "X-Portkey-Metadata", "X-Portkey-Aws-Region",
	"X-Portkey-Vertex-Region", "X-Portkey-Custom-Host", "X-Portkey-Forward-Headers",
	"X-Github-Api-Version", "X-Use-Cache", "X-Wait-For-Model", "Anthropic-Dangerous-Direct-Browser-Access",
	"X-Audit-Log-Reason",
	// Other LLM APIs and gateways.
	"Api-Key", "X-Goog-User-Project", "X-Goog-Request-Params", "X-Goog-Api-Client", "X-Server-Timeout",
	"X-Amzn-Bedrock-Trace", "X-Amzn-Bedrock-Guardrailidentifier", "X-Amzn-Bedrock-Accept",
	"X-Amzn-Sagemaker-Custom-Attributes", "X-Amzn-Sagemaker-Target-Model", "X-Amzn-Sagemaker-Session-Id",
	"X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token", "X-Amz-Target", "X-Amz-Region-Set",
	"X-Amz-User-Agent", "HTTP-Referer", "X-Title", "X-Client-Name", "X-Fern-Sdk-Name", "X-Hf-Bill-To",
	"X-Session-Affinity", "X-Dashscope-Sse", "X-Dashscope-Workspace", "Helicone-Auth", "Helicone-User-Id",
	"Helicone-Property-Country", "Prefer", "X-Request-Timeout", "Cache-Control", "If-None-Match",
	"Range", "Content-Md5", "Priority",
	// Look-alikes: a family word inside another word.
	"X-Custom-Thing", "Ipv6-Hint", "X-Shipping", "X-Skip-Cache", "X-Membership", "X-Tooltip", "X-Long-Running",
	"X-Spanner-Database", "X-Regional-Pricing-Tier",
}

func TestClassifyHeldOut(t *testing.T) {
	t.Parallel()
	for _, name := range heldOut {
		missed := slices.Contains(heldOutMissed, name)
		got := Classify(name)
		switch {
		case !missed && got != Never:
			t.Errorf("Classify(%q) = %v, want Never", name, got)
		case missed && got != Pass:
			t.Errorf("Classify(%q) = %v: now caught, move it out of heldOutMissed", name, got)
		}
	}
	for _, name := range heldOutMissed {
		if !slices.Contains(heldOut, name) {
			t.Errorf("heldOutMissed lists %q, which heldOut does not", name)
		}
	}
}

func TestClassifyMustPass(t *testing.T) {
	t.Parallel()
	for _, name := range mustPass {
		if got := Classify(name); got != Pass {
			t.Errorf("Classify(%q) = %v, want Pass", name, got)
		}
	}
}

// TestClassifySpellings: any separator a framework reads as '-' ('_', '.',
// and the other token characters), any case, repeated separators.
func TestClassifySpellings(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"X-Forwarded-For", "X-Real-IP", "Cf-Connecting-Ip", "X-Client-Trace-Id", "X-Geo-Country"} {
		words := strings.Split(base, "-")
		for _, sep := range []string{"_", ".", "~", "+", "--", "-_"} {
			for _, name := range []string{strings.Join(words, sep), strings.ToUpper(strings.Join(words, sep)), strings.ToLower(strings.Join(words, sep))} {
				if got := Classify(name); got != Never {
					t.Errorf("Classify(%q) = %v, want Never", name, got)
				}
			}
		}
	}
	for _, name := range []string{"sec_websocket_protocol", "SEC-WEBSOCKET-PROTOCOL", "content_type", "x.api.key"} {
		if got := Classify(name); got != Pass {
			t.Errorf("Classify(%q) = %v, want Pass", name, got)
		}
	}
	if got := Classify("X_STAINLESS_OS"); got != Fingerprint {
		t.Errorf("Classify(X_STAINLESS_OS) = %v, want Fingerprint", got)
	}
}
