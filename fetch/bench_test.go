package fetch

import (
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkConnWrite writes 4 KiB (net/http's write buffer for HTTP/1.1)
// to a loopback TCP connection whose peer discards it, bare and under the
// write idle timeout: the cost idleConn adds to each write of a request.
func BenchmarkConnWrite(b *testing.B) {
	for _, row := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"bare", func(c net.Conn) net.Conn { return c }},
		{"idle", func(c net.Conn) net.Conn { return newIdleConn(c, 5*time.Minute) }},
	} {
		b.Run(row.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				s, err := ln.Accept()
				if err != nil {
					return
				}
				io.Copy(io.Discard, s)
				s.Close()
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			c := row.wrap(nc)
			p := make([]byte, 4<<10)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(p); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			<-done
		})
	}
}
