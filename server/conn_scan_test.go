package server

import (
	"bytes"
	"testing"
)

// scanByByte is scan as it was written first, a byte at a time: the
// reference the IndexByte version must agree with.
func (c *conn) scanByByte(b []byte) {
	for _, ch := range b {
		if c.seen++; c.seen > maxWatched {
			c.head = false
			return
		}
		switch {
		case ch == '\n':
			if len(c.line) == 0 && !c.skip && c.seen > 2 {
				c.both.Store(c.cl && c.te)
				c.head, c.cl, c.te, c.seen = false, false, false, 0
				return
			}
			c.line, c.skip = c.line[:0], false
		case ch == '\r' || c.skip:
		case ch == ':':
			switch string(c.line) {
			case "content-length":
				c.cl = true
			case "transfer-encoding":
				c.te = true
			}
			c.skip = true
		case len(c.line) < len("transfer-encoding")+1:
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			c.line = append(c.line, ch)
		default:
			c.skip = true
		}
	}
}

// FuzzScan feeds a head to scan and to the byte-at-a-time reference in
// the same pieces (the reads net/http happens to make) and compares what
// each concluded after every piece.
func FuzzScan(f *testing.F) {
	f.Add([]byte("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello"), uint8(7))
	f.Add([]byte("GET / HTTP/1.1\r\nX-Long-Value: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\ncontent-length:1\n\nx"), uint8(1))
	f.Add([]byte("\r\n\r\nGET / HTTP/1.1\r\nTRANSFER-ENCODING : chunked\r\n\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, head []byte, step uint8) {
		n := int(step)%64 + 1
		fast := &conn{head: true}
		slow := &conn{head: true}
		for i := 0; i < len(head); i += n {
			piece := head[i:min(i+n, len(head))]
			if fast.head {
				fast.scan(piece)
			}
			if slow.head {
				slow.scanByByte(piece)
			}
			if fast.head != slow.head || fast.cl != slow.cl || fast.te != slow.te || fast.skip != slow.skip ||
				fast.seen != slow.seen || fast.both.Load() != slow.both.Load() || !bytes.Equal(fast.line, slow.line) {
				t.Fatalf("after %d bytes in pieces of %d: scan head=%v cl=%v te=%v skip=%v seen=%d both=%v line=%q; byte by byte head=%v cl=%v te=%v skip=%v seen=%d both=%v line=%q",
					i+len(piece), n, fast.head, fast.cl, fast.te, fast.skip, fast.seen, fast.both.Load(), fast.line,
					slow.head, slow.cl, slow.te, slow.skip, slow.seen, slow.both.Load(), slow.line)
			}
		}
	})
}

// A head longer than maxWatched stops being watched at the same byte
// either way, also when the limit falls inside a skipped value.
func TestScanStopsAtMaxWatched(t *testing.T) {
	head := append([]byte("GET / HTTP/1.1\r\nX: "), bytes.Repeat([]byte("v"), maxWatched)...)
	for _, n := range []int{1, 4096, len(head)} {
		fast, slow := &conn{head: true}, &conn{head: true}
		for i := 0; i < len(head) && (fast.head || slow.head); i += n {
			piece := head[i:min(i+n, len(head))]
			if fast.head {
				fast.scan(piece)
			}
			if slow.head {
				slow.scanByByte(piece)
			}
			if fast.head != slow.head || fast.seen != slow.seen {
				t.Fatalf("pieces of %d, at %d: head %v/%v, seen %d/%d", n, i, fast.head, slow.head, fast.seen, slow.seen)
			}
		}
		if fast.head {
			t.Errorf("pieces of %d: still watching after %d bytes", n, len(head))
		}
	}
}

// BenchmarkScan watches a typical SDK request head, in one read.
func BenchmarkScan(b *testing.B) {
	head := []byte("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: llmproxy.example\r\nUser-Agent: OpenAI/Python 1.54.0\r\n" +
		"Accept: application/json\r\nAuthorization: Bearer sk-0123456789abcdefghijklmnop\r\nContent-Type: application/json\r\n" +
		"X-Stainless-Lang: python\r\nX-Stainless-Os: Linux\r\nContent-Length: 96\r\n\r\n")
	for _, tc := range []struct {
		name string
		scan func(*conn, []byte)
	}{{"indexbyte", (*conn).scan}, {"bytewise", (*conn).scanByByte}} {
		b.Run(tc.name, func(b *testing.B) {
			c := &conn{}
			for b.Loop() {
				c.head, c.line, c.skip, c.seen = true, c.line[:0], false, 0
				tc.scan(c, head)
			}
		})
	}
}
