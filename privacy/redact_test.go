package privacy

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

// unescape percent-decodes s once, leniently (an invalid escape stays as
// it is), as the test's own reading of what a server or a reader would see.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := url.PathUnescape(s[i : i+3]); err == nil {
				b.WriteString(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// revealed reports whether secret shows in s or in any of its decodings up
// to maxDecodeRounds deep.
func revealed(s, secret string) bool {
	for range maxDecodeRounds + 1 {
		if strings.Contains(s, secret) {
			return true
		}
		s = unescape(s)
	}
	return false
}

// spell percent-encodes each byte of s with probability p, in random hex
// case; then, with probability p2, encodes the '%' of each escape again.
func spell(rng *rand.Rand, s string, p, p2 float64) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if rng.Float64() >= p {
			b.WriteByte(s[i])
			continue
		}
		hex := fmt.Sprintf("%02X", s[i])
		if rng.IntN(2) == 0 {
			hex = strings.ToLower(hex)
		}
		if rng.Float64() < p2 {
			b.WriteString("%25" + hex)
		} else {
			b.WriteString("%" + hex)
		}
	}
	return b.String()
}

func TestRedactorSpellingsOfTheToken(t *testing.T) {
	t.Parallel()
	const token = "tok-Abc_123.xyz~Qq"
	r := NewRedactor(token)
	spellings := []string{
		token,
		"%74%6F%6B%2D%41%62%63%5F%31%32%33%2E%78%79%7A%7E%51%71", // all, upper hex
		"%74%6f%6b%2d%41%62%63%5f%31%32%33%2e%78%79%7a%7e%51%71", // all, lower hex
		"tok%2DAbc_123.xyz~Qq",     // one character
		"%2574ok-Abc_123.xyz~Qq",   // double encoding
		"%252574ok-Abc_123.xyz~Qq", // triple encoding
		"%%37%34ok-Abc_123.xyz~Qq", // the hex digits encoded
	}
	rng := rand.New(rand.NewPCG(13, 5))
	for range 300 {
		spellings = append(spellings, spell(rng, token, rng.Float64(), rng.Float64()))
	}
	contexts := []string{
		"/%s/https/api.example.com/v1/models",
		`Get "https://api.example.com/v1?token=%s&alt=sse": EOF`,
		"refused: wrong token in /%s/https/x",
		"next=https%%3A%%2F%%2Fapi.example.com%%2F%s%%2Fv1",
		"%s",
	}
	for _, sp := range spellings {
		for _, c := range contexts {
			in := fmt.Sprintf(c, sp)
			out := r.String(in)
			if revealed(out, token) {
				t.Fatalf("String(%q) = %q still reveals the token", in, out)
			}
			if !strings.Contains(out, Placeholder) {
				t.Fatalf("String(%q) = %q: no placeholder", in, out)
			}
			if strings.Contains(in, "api.example.com") && !strings.Contains(unescape(out), "api.example.com") {
				t.Fatalf("String(%q) = %q lost text around the token", in, out)
			}
		}
	}
}

func TestRedactorSpellingsOfQueryKeys(t *testing.T) {
	t.Parallel()
	const value = "s3cr3tValue42"
	r := NewRedactor()
	rng := rand.New(rand.NewPCG(7, 11))
	var queries []string
	// Names that end in a credential word count too, spelled as above but
	// for the random spellings (whose draws the list above keeps).
	for _, name := range []string{"auth_token", "x_api_key", "refresh_token", "client_secret", "db_password", "X-Goog-Api-Key"} {
		queries = append(queries,
			name+"="+value+"&alt=sse",
			name+"%3D"+value+"%26alt%3Dsse",
			name+"%3d"+value+"%26alt%3dsse",
			name+"%253D"+value+"%2526alt%253Dsse",
		)
	}
	for _, name := range []string{"key", "api_key", "api-key", "apikey", "token", "access_token", "signature", "KEY"} {
		queries = append(queries,
			name+"="+value+"&alt=sse",
			name+"%3D"+value+"%26alt%3Dsse",
			name+"%3d"+value+"%26alt%3dsse",
			name+"%253D"+value+"%2526alt%253Dsse",
			spell(rng, name, 0.5, 0.3)+"="+spell(rng, value, 0.5, 0.3)+"&alt=sse",
			spell(rng, name+"="+value+"&", 0.6, 0.4)+"alt=sse",
		)
	}
	for _, q := range queries {
		for _, c := range []string{`Get "https://generativelanguage.googleapis.com/v1beta/models?%s": EOF`, "u=https%%3A%%2F%%2Fh.example%%2Fp%%3F%s"} {
			in := fmt.Sprintf(c, q)
			out := r.String(in)
			if revealed(out, value) {
				t.Errorf("String(%q) = %q still reveals the value", in, out)
			}
			if !revealed(out, "alt=sse") {
				t.Errorf("String(%q) = %q lost the harmless parameter", in, out)
			}
		}
	}
}

// mayHoldCredential reports whether s, or one of its decodings, has what
// a credential pattern looks for.
func mayHoldCredential(s string) bool {
	for range maxDecodeRounds + 1 {
		if strings.Contains(s, "=") || containsFold(s, "bearer") || containsFold(s, "bot") ||
			strings.Contains(s, "sk-") || strings.Contains(s, "AIza") {
			return true
		}
		s = unescape(s)
	}
	return false
}

// FuzzRedactor: whatever the string, none of its decodings up to
// maxDecodeRounds deep shows the secret once redacted.
func FuzzRedactor(f *testing.F) {
	f.Add("/tok-abcdef/https/x", "tok-abcdef")
	f.Add("%2574ok-abcdef%3Fkey%3Dx", "tok-abcdef")
	f.Add("%%37%34ok-abcdef", "tok-abcdef")
	f.Add("key%253Dabc%2526", "zzzzzzzz")
	f.Add("Authorization: BEARER abcdefgh", "zzzzzzzz")
	f.Add("x sk-abcdefgh1234 AIzaSyA-1234567890abcdefghij /bot123:abc", "zzzzzzzz")
	f.Fuzz(func(t *testing.T, s, secret string) {
		// A secret of token characters, as tokens are: one holding '%' or
		// the placeholder's brackets could be spelled by the placeholder.
		if len(secret) < 6 || strings.ContainsFunc(secret, func(c rune) bool {
			return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_.~", c))
		}) {
			return
		}
		r := NewRedactor(secret)
		out := r.String(s)
		// The look for a cue only skips strings the whole search would
		// leave as they are.
		if full := r.redact(s); out != full {
			t.Fatalf("String(%q) = %q, the whole search gives %q", s, out, full)
		}
		if revealed(out, secret) {
			t.Fatalf("String(%q) = %q reveals %q", s, out, secret)
		}
		if !revealed(s, secret) && !mayHoldCredential(s) && out != s {
			t.Fatalf("String(%q) = %q changed a string with nothing to redact", s, out)
		}
	})
}

func TestReplaceAttrStringer(t *testing.T) {
	t.Parallel()
	const token = "tok-abcdefghijklmnop"
	r := NewRedactor(token)
	u, _ := url.Parse("https://api.example.com/" + token + "/v1?key=AIzaSyA-1234567890abcdefghij")
	a := r.ReplaceAttr(nil, slog.Any("url", u))
	if s := a.Value.String(); revealed(s, token) || strings.Contains(s, "AIzaSyA") {
		t.Errorf("a *url.URL attribute logs as %q", s)
	}
	harmless, _ := url.Parse("https://api.example.com/v1/models")
	if a := r.ReplaceAttr(nil, slog.Any("url", harmless)); a.Value.Any() != any(harmless) {
		t.Errorf("a harmless *url.URL attribute was changed to %v", a.Value)
	}
}

// SensitiveKey matches the credential names in any case, and nothing that
// merely shares a length or a prefix with one.
func TestSensitiveKey(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "authorization": true, "X-API-KEY": true, "x-goog-api-key": true,
		"Proxy-Authorization": true, "Cookie": true, "KEY": true, "auth_token": true, "Password": true,
		"": false, "keys": false, "route": false, "status": false, "x-api-kez": false, "provider_key": false,
		"authorizations": false, "a-very-long-attribute-name-indeed": false,
	} {
		if got := SensitiveKey(name); got != want {
			t.Errorf("SensitiveKey(%q) = %v, want %v", name, got, want)
		}
	}
	for name := range sensitiveKeys {
		if !SensitiveKey(strings.ToUpper(name)) {
			t.Errorf("%q upper-cased is not sensitive", name)
		}
	}
}

// Literal secrets of different lengths are all found: a string shorter
// than the longest secret still loses the shorter one.
func TestRedactorSecretsOfDifferentLengths(t *testing.T) {
	short, long := "client-key-0123", "sk-provider-key-0123456789abcdefghij"
	r := NewRedactor(long, short)
	for _, s := range []string{"x " + short + " y", short, "a" + long + "b", short + long} {
		got := r.String(s)
		if strings.Contains(got, short) || strings.Contains(got, long) {
			t.Errorf("String(%q) = %q", s, got)
		}
	}
	if got := r.String("client-key-012"); got != "client-key-012" {
		t.Errorf("a string shorter than every secret changed: %q", got)
	}
}
