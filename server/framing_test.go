package server

import (
	"fmt"
	"strings"
	"testing"
)

// state is what a framing concluded, for comparing two.
func (f *framing) String() string {
	return fmt.Sprintf("state=%d line=%q skip=%v seen=%d cl=%v te=%v inLength=%v digits=%v cur=%d length=%d/%v bad=%v left=%d hex=%v ext=%v any=%v both=%v",
		f.state, f.line, f.skip, f.seen, f.cl, f.te, f.inLength, f.digits, f.cur, f.length, f.hasLength, f.bad, f.left, f.hex, f.ext, f.any, f.both)
}

// feedIn feeds b to a new framing in pieces of n bytes.
func feedIn(b []byte, n int) *framing {
	f := &framing{}
	f.restart()
	for i := 0; i < len(b); i += n {
		f.feed(b[i:min(i+n, len(b))])
	}
	return f
}

// The framing follows every head on a connection, pipelined behind the
// one before or not, whatever the bodies hold and however the bytes are
// cut into reads.
func TestFramingFollowsTheStream(t *testing.T) {
	t.Parallel()
	get := "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
	both := "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
	headLike := "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		name   string
		stream string
		both   bool
		atRest bool
	}{
		{"one request", get, false, true},
		{"both headers", both, true, true},
		{"both, pipelined behind a GET", get + both, true, true},
		{"both, behind OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + both, true, true},
		{"both, behind a body", "POST /v1/x HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd" + both, true, true},
		{"both, behind a chunked body with an extension and a trailer",
			"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\nA \r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n" + both, true, true},
		{"a body that looks like a head", "POST /v1/x HTTP/1.1\r\nContent-Length: " + fmt.Sprint(len(headLike)) + "\r\n\r\n" + headLike + get, false, true},
		{"a chunk that looks like a head", "POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(headLike), headLike) + get, false, true},
		{"Content-Length twice, the same", "POST /v1/x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length:  2 \r\n\r\nab" + get, false, true},
		{"Content-Length twice, different: lost", "POST /v1/x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab" + get, true, false},
		{"a Content-Length that is no number: lost", "POST /v1/x HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab" + get, true, false},
		{"a bad chunk size: lost", "POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + get, true, false},
		{"a chunk without its CRLF: lost", "POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", true, false},
		{"a body still coming", "POST /v1/x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", false, false},
		// net/http ignores Transfer-Encoding on HTTP/1.0 (no body here);
		// RFC 9112 §6.1 has the connection closed.
		{"HTTP/1.0 with Transfer-Encoding: lost", "POST /x HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"ADD /x HTTP/1.1\r\n\r\n" + both, true, false},
		{"HTTP/1.0 with a body", "POST /x HTTP/1.0\r\nContent-Length: 2\r\n\r\nab" + get, false, true},
		{"Content-Length folded onto the next line", "POST /x HTTP/1.1\r\nContent-Length:\r\n 4\r\n\r\nabcd" + get, false, true},
		{"a folded line after Content-Length", "POST /x HTTP/1.1\r\nContent-Length: 4\r\nX-A: a\r\n\tb\r\n\r\nabcd" + get, false, true},
	} {
		for _, n := range []int{1, 2, 3, 7, 64, len(tc.stream)} {
			f := feedIn([]byte(tc.stream), n)
			if f.both != tc.both || f.atRest() != tc.atRest {
				t.Errorf("%s, in pieces of %d: both %v, at rest %v; want %v, %v (%v)", tc.name, n, f.both, f.atRest(), tc.both, tc.atRest, f)
			}
		}
	}
}

// A head of any length is followed (its state does not grow with it):
// net/http answers one over max_header_bytes itself.
func TestFramingFollowsLongHeads(t *testing.T) {
	t.Parallel()
	stream := "GET / HTTP/1.1\r\nX: " + strings.Repeat("v", 2<<20) + "\r\nContent-Length: 2\r\n\r\nab" +
		"POST /v1/x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	for _, n := range []int{4096, len(stream)} {
		if f := feedIn([]byte(stream), n); !f.both || !f.atRest() {
			t.Errorf("pieces of %d: %v", n, f)
		}
	}
}

// FuzzFraming: however a stream is cut into reads, the framing concludes
// the same as when it comes in one.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), uint8(7))
	f.Add([]byte("GET / HTTP/1.1\r\nX-Long-Value: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\ncontent-length:1\n\nxGET / HTTP/1.1\r\n\r\n"), uint8(1))
	f.Add([]byte("\r\n\r\nGET / HTTP/1.1\r\nTRANSFER-ENCODING : chunked\r\n\r\n"), uint8(3))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		whole := feedIn(stream, max(len(stream), 1))
		pieces := feedIn(stream, int(step)%64+1)
		if whole.String() != pieces.String() {
			t.Fatalf("in pieces of %d: %v; whole: %v", int(step)%64+1, pieces, whole)
		}
	})
}

// BenchmarkFraming follows a typical SDK request, head and body, in one
// read.
func BenchmarkFraming(b *testing.B) {
	req := []byte("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: llmproxy.example\r\nUser-Agent: OpenAI/Python 1.54.0\r\n" +
		"Accept: application/json\r\nAuthorization: Bearer sk-0123456789abcdefghijklmnop\r\nContent-Type: application/json\r\n" +
		"X-Stainless-Lang: python\r\nX-Stainless-Os: Linux\r\nContent-Length: 96\r\n\r\n" + strings.Repeat("x", 96))
	f := &framing{}
	f.restart()
	for b.Loop() {
		f.feed(req)
	}
	if !f.atRest() {
		b.Fatal(f)
	}
}
