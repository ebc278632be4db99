package preset

import "testing"

// BenchmarkJoin: the upstream URL of every preset and gateway request; plain
// is the common path (nothing to decode), escaped one that has escapes.
func BenchmarkJoin(b *testing.B) {
	base, err := ParseBaseURL("https://api.openai.com/v1")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, rest string }{
		{"plain", "/chat/completions"},
		{"escaped", "/files/file-abc%2Bdef/content"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Join(base, c.rest, "api-version=1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
