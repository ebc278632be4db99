package server

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/providertest"
)

// A handed-off stream relayed from within the upstream socket's read loop
// (handoff.relayCopy): a client whose socket is full pauses the relay,
// and what the socket did not take goes out with a write that waits.

// TestRelayToASlowClient: the upstream sends faster than the client
// reads — 10 MB, more than the sockets between proxy and client hold,
// while the client reads nothing for a while — and every byte still
// arrives, in order, with the stream's end; the log counts the bytes.
func TestRelayToASlowClient(t *testing.T) {
	t.Parallel()
	const events = 5000
	var want strings.Builder
	for i := range events {
		fmt.Fprintf(&want, "data: {\"i\":%d,\"pad\":%q}\n\n", i, strings.Repeat("x", 2000))
	}
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		if _, _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for ev := range strings.SplitAfterSeq(want.String(), "\n\n") {
			if ev != "" {
				fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
			}
		}
		io.WriteString(c, "0\r\n\r\n")
		c.R.ReadByte()
	})
	h := start(t, testConfig(t, map[string]string{"openai": raw.URL}))
	cc := dialProxy(t, h)
	_, br, first := cc.openStream(postRequest("/openai/v1/chat/completions", `{}`))
	handedOff(t, h, 1)
	time.Sleep(300 * time.Millisecond) // the proxy's writes fill the client's socket
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("the stream ended with %v after %d bytes", err, len(first)+len(rest))
	}
	if got := first + string(rest); got != want.String() {
		t.Fatalf("relayed %d bytes, not the %d sent", len(got), want.Len())
	}
	if logs := h.waitLog(1); !strings.Contains(logs, fmt.Sprintf(`"bytes_out":%d`, want.Len())) {
		t.Errorf("log does not count %d bytes out:\n%s", want.Len(), logs)
	}
}
