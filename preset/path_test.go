package preset

import (
	"errors"
	"testing"
)

// TestJoinPathParameters: a segment that is empty, '.' or '..' once a
// server strips its ";" parameters (Tomcat, Jetty, Spring) is refused like
// '..' itself, in every spelling of ';' and of the dots. A parameter on an
// ordinary segment is harmless and passes.
func TestJoinPathParameters(t *testing.T) {
	t.Parallel()
	base, _ := ParseBaseURL("https://api.deepinfra.com/v1/openai")
	refused := []string{
		"/..;/admin", "/..;", "/.;/x", "/..;jsessionid=x/admin", "/a/..;/..;/admin", "/;/x", "/;jsessionid=1/x",
		"/..%3b/admin", "/..%3B/admin", "/.%3B/x", "/%3b/x", "/%2e%2e;/admin", "/%2E%2E%3B/admin",
		"/..%253b/admin", "/..%253B/admin", "/%252e%252e%253b/admin", "/%25252e%25252e/admin",
		"/%2e%2e%3bx=1/admin", "/...", "/..%20/admin", "/.%2e./x",
		"/%2525252e%2525252e/admin", // encoded four times: refused without a look
	}
	for _, rest := range refused {
		if got, err := Join(base, rest, ""); !errors.Is(err, ErrBadPath) {
			t.Errorf("Join(%q) = %v, %v; want ErrBadPath", rest, got, err)
		}
	}
	allowed := map[string]string{
		"/files/a;b":         "https://api.deepinfra.com/v1/openai/files/a;b",
		"/files/..a":         "https://api.deepinfra.com/v1/openai/files/..a",
		"/files/a..":         "https://api.deepinfra.com/v1/openai/files/a..",
		"/files/100%25":      "https://api.deepinfra.com/v1/openai/files/100%25",
		"/files/file%2520id": "https://api.deepinfra.com/v1/openai/files/file%2520id",
		"/models/a%3Bb":      "https://api.deepinfra.com/v1/openai/models/a%3Bb",
	}
	for rest, want := range allowed {
		got, err := Join(base, rest, "")
		if err != nil || got.String() != want {
			t.Errorf("Join(%q) = %v, %v; want %s", rest, got, err, want)
		}
	}
}
