//go:build linux && !msan && !asan

package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns two connected TCP connections, both wrapped.
func pair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	a, b = Wrap(c), Wrap(s)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// smallBuffers shrinks c's socket buffers, so that a large write meets
// EAGAIN and waits in the poller (still above loopback's segment size: a
// window smaller than one segment stalls TCP for tens of milliseconds).
func smallBuffers(t testing.TB, cs ...net.Conn) {
	t.Helper()
	for _, c := range cs {
		raw, err := c.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		raw.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 64<<10)
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 128<<10)
		})
	}
}

func TestWrapTakesOnlySockets(t *testing.T) {
	a, b := pair(t)
	for _, c := range []net.Conn{a, b} {
		if _, ok := c.(*Conn); !ok {
			t.Fatalf("a TCP connection was not wrapped: %T", c)
		}
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if got := Wrap(p); got != p {
		t.Fatalf("a pipe was wrapped: %T", got)
	}
	// A wrapped connection still reaches its socket: the client watcher
	// and the pooled connection's probe need it.
	if _, err := a.(syscall.Conn).SyscallConn(); err != nil {
		t.Fatal(err)
	}
	// A Unix stream is wrapped; a datagram socket, whose empty read is an
	// empty datagram and not the end, is not.
	dir := t.TempDir()
	ln, err := net.Listen("unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	uc, err := net.Dial("unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, ok := Wrap(uc).(*Conn); !ok {
		t.Fatal("a Unix stream connection was not wrapped")
	}
	dg, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dir + "/d", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer dg.Close()
	if got := Wrap(dg); got != net.Conn(dg) {
		t.Fatalf("a datagram socket was wrapped: %T", got)
	}
}

func TestLargeWritesArriveWhole(t *testing.T) {
	a, b := pair(t)
	smallBuffers(t, a, b)
	// More than the socket buffers hold: the write waits for the reader
	// (EAGAIN, then the poller) and goes on where it stopped.
	want := make([]byte, 4<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() {
		n, err := a.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		errc <- err
		a.(*Conn).CloseWrite()
	}()
	var got bytes.Buffer
	buf := make([]byte, 3000) // reads of an odd size, smaller than what waits
	for {
		time.Sleep(0) // let the writer fill the buffers now and then
		n, err := b.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("got %d bytes, not the %d written, or not in order", got.Len(), len(want))
	}
}

func TestEmptyReadAndWrite(t *testing.T) {
	a, b := pair(t)
	if n, err := a.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
	if n, err := b.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
}

func TestEndOfStreamIsEOF(t *testing.T) {
	a, b := pair(t)
	if _, err := a.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "last" {
		t.Fatalf("read %q, %v; want %q and a clean EOF", got, err, "last")
	}
	if n, err := b.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("a read after the end: %d, %v; want io.EOF", n, err)
	}
}

// opErr checks that err is shaped as net.Conn's own errors are: a
// *net.OpError for op, with the connection's addresses.
func opErr(t *testing.T, err error, op string) *net.OpError {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op {
		t.Fatalf("error %v (%T) is not a *net.OpError for %q", err, err, op)
	}
	if oe.Source == nil || oe.Addr == nil {
		t.Fatalf("error %v lacks the connection's addresses", err)
	}
	return oe
}

func TestDeadlineTimesOut(t *testing.T) {
	a, b := pair(t)
	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := b.Read(make([]byte, 8))
	opErr(t, err, "read")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a read past its deadline failed with %v, not a timeout", err)
	}
	// The connection stays usable once the deadline moves.
	b.SetReadDeadline(time.Time{})
	if _, err := a.Write([]byte("on")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := b.Read(buf); err != nil || string(buf[:n]) != "on" {
		t.Fatalf("read %q, %v after the deadline was cleared", buf[:n], err)
	}
}

// closeWakes starts call, which waits in the poller, closes c, and checks
// that call returns a *net.OpError for op around net.ErrClosed.
func closeWakes(t *testing.T, c net.Conn, op string, call func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- call() }()
	time.Sleep(20 * time.Millisecond) // the call waits in the poller
	c.Close()
	select {
	case err := <-errc:
		opErr(t, err, op)
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("a %s on a closed connection failed with %v, not net.ErrClosed", op, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Close did not wake the %s", op)
	}
}

func TestCloseWakesABlockedRead(t *testing.T) {
	_, b := pair(t)
	closeWakes(t, b, "read", func() error {
		_, err := b.Read(make([]byte, 8))
		return err
	})
}

func TestResetIsReported(t *testing.T) {
	a, b := pair(t)
	// SO_LINGER 0: the close sends a reset.
	raw, _ := a.(syscall.Conn).SyscallConn()
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	})
	a.Close()
	time.Sleep(20 * time.Millisecond)
	_, err := b.Read(make([]byte, 8))
	oe := opErr(t, err, "read")
	var se *os.SyscallError
	if !errors.As(oe.Err, &se) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a reset read as %v, not ECONNRESET in an *os.SyscallError", err)
	}
	// Writes fail too, once the reset is known.
	var werr error
	for range 10 {
		if _, werr = b.Write([]byte("x")); werr != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	opErr(t, werr, "write")
	if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
		t.Fatalf("a write after a reset failed with %v", werr)
	}
}

func TestConcurrentWritesDoNotInterleave(t *testing.T) {
	a, b := pair(t)
	const writers, each, size = 4, 200, 64 << 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range each {
				if _, err := a.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); a.(*Conn).CloseWrite() }()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each*size {
		t.Fatalf("read %d bytes, want %d", len(got), writers*each*size)
	}
	// Each write is whole on the wire, as net.Conn's are: no message
	// holds another's bytes.
	for i := 0; i < len(got); i += size {
		if m := got[i : i+size]; bytes.Count(m, m[:1]) != size {
			t.Fatalf("the write at byte %d is interleaved with another", i)
		}
	}
}

func TestConcurrentReadsShareNothing(t *testing.T) {
	a, b := pair(t)
	const readers, total = 4, 4 << 20
	var sent uint64
	go func() {
		defer a.(*Conn).CloseWrite()
		buf := make([]byte, 32<<10)
		for off := 0; off < total; off += len(buf) {
			for i := range buf {
				buf[i] = byte((off + i) % 255) // never 0xff
				sent += uint64(buf[i])
			}
			if _, err := a.Write(buf); err != nil {
				return
			}
		}
	}()
	var mu sync.Mutex
	read, sum := 0, uint64(0)
	var wg sync.WaitGroup
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				for i := range buf {
					buf[i] = 0xff
				}
				n, err := b.Read(buf)
				// The bytes a read reports are in its own buffer.
				if bytes.IndexByte(buf[:n], 0xff) >= 0 {
					t.Error("a read reported bytes its buffer did not get")
					return
				}
				mu.Lock()
				read += n
				for _, c := range buf[:n] {
					sum += uint64(c)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if read != total || sum != sent {
		t.Fatalf("the readers got %d bytes (sum %d) together, want %d (sum %d)", read, sum, total, sent)
	}
}

func TestWriteDeadlineReportsWhatWasWritten(t *testing.T) {
	a, b := pair(t)
	smallBuffers(t, a, b)
	// Nobody reads: the write fills the buffers and waits, until its
	// deadline. The socket transport's idle timeout relies on the count.
	// The deadline leaves a busy machine time to start the write.
	msg := make([]byte, 4<<20)
	a.SetWriteDeadline(time.Now().Add(time.Second))
	n, err := a.Write(msg)
	if n <= 0 || n >= len(msg) {
		t.Fatalf("wrote %d of %d bytes; want a part", n, len(msg))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the write failed with %v, not its deadline", err)
	}
	// The same shape as the unwrapped connection's error.
	got := opErr(t, err, "write")
	plain := a.(*Conn).Conn
	_, perr := plain.Write(msg)
	want := opErr(t, perr, "write")
	if got.Net != want.Net || got.Source.String() != want.Source.String() || got.Addr.String() != want.Addr.String() || got.Error() != want.Error() {
		t.Fatalf("wrapped: %#v (%v)\nplain: %#v (%v)", got, got, want, want)
	}
}

func TestCloseWakesABlockedWrite(t *testing.T) {
	a, b := pair(t)
	smallBuffers(t, a, b)
	closeWakes(t, a, "write", func() error {
		_, err := a.Write(make([]byte, 4<<20))
		return err
	})
	// Every call after Close says so, the empty ones too.
	for _, f := range []func() error{
		func() error { _, err := a.Read(make([]byte, 8)); return err },
		func() error { _, err := a.Write([]byte("x")); return err },
		func() error { _, err := a.Read(nil); return err },
		func() error { _, err := a.Write(nil); return err },
	} {
		if err := f(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("a call after Close: %v, not net.ErrClosed", err)
		}
	}
}

// TestSocketOrdersMemory is for the race detector: what a goroutine did
// before it wrote to a socket happens before what another does after
// reading what it wrote, as with net.Conn (race.go). Without that, every
// test of a handler and its client would report races.
func TestSocketOrdersMemory(t *testing.T) {
	a, b := pair(t)
	var shared int
	go func() {
		shared = 42
		a.Write([]byte("go"))
	}()
	buf := make([]byte, 2)
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	if shared != 42 {
		t.Fatalf("shared = %d", shared)
	}
	// And the other way round, through the plain connection's syscalls.
	done := make(chan struct{})
	go func() {
		defer close(done)
		shared = 43
		a.(*Conn).Conn.Write([]byte("ok"))
	}()
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	if shared != 43 {
		t.Fatalf("shared = %d", shared)
	}
	<-done
}

func TestReadAndWriteAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's bookkeeping allocates")
	}
	a, b := pair(t)
	msg := []byte("event: x\n\n")
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(b, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a write and a read allocate %v times", allocs)
	}
}

// BenchmarkConn compares a small request and answer over loopback through
// net.Conn and through a wrapped one.
func BenchmarkConn(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		name := "net"
		if wrapped {
			name = "raw"
		}
		b.Run(name, func(b *testing.B) {
			x, y := pair(b)
			if !wrapped {
				x, y = x.(*Conn).Conn, y.(*Conn).Conn
			}
			go func() {
				buf := make([]byte, 512)
				for {
					n, err := y.Read(buf)
					if err != nil {
						return
					}
					if _, err := y.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			msg := bytes.Repeat([]byte("m"), 300)
			buf := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(x, buf[:len(msg)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCallsAreCountedAsNets: the kernel counts the raw calls in
// /proc/<pid>/io as it counts net's read(2) and write(2); the benchmark's
// calls-per-request table reads them there.
func TestCallsAreCountedAsNets(t *testing.T) {
	a, b := pair(t)
	counts := func() (r, w int64) {
		raw, err := os.ReadFile("/proc/self/io")
		if err != nil {
			t.Skip("no /proc/self/io:", err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "syscr":
				r = n
			case "syscw":
				w = n
			}
		}
		return r, w
	}
	r0, w0 := counts()
	buf := make([]byte, 8)
	for range 50 {
		if _, err := a.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	r1, w1 := counts()
	if r1-r0 < 50 || w1-w0 < 50 {
		t.Fatalf("50 reads and 50 writes counted as %d and %d", r1-r0, w1-w0)
	}
}
