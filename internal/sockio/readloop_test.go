//go:build linux && !msan && !asan

package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// ReadLoop and TryWrite (what a relayed stream reads and writes with).

// TestReadLoopWaitsAfterAShortRead: after a read that emptied the socket,
// a read in the same call of f does not reach the socket — bytes that
// arrived since are not returned (ErrWouldBlock) — and the wait that
// follows ends for those bytes, which came before it began: the poller's
// news of them is not forgotten. A loop of RawConn.Read calls, each
// resetting the poller first, would fail the first half or hang in the
// second (the deadline fails the test then).
func TestReadLoopWaitsAfterAShortRead(t *testing.T) {
	a, b := pair(t)
	lc := b.(*Conn)
	lc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	var got []string
	calls := 0
	buf := make([]byte, 64)
	err := lc.ReadLoop(func() bool {
		calls++
		for {
			n, err := lc.Read(buf)
			if n > 0 {
				got = append(got, string(buf[:n]))
				if len(got) == 1 {
					// Loopback delivers during the write: "two" is queued
					// when Write returns.
					if _, err := a.Write([]byte("two")); err != nil {
						t.Error(err)
						return false
					}
				}
				continue
			}
			if err == ErrWouldBlock {
				if !lc.Skipped() {
					t.Error("the read after one that emptied the socket reached it")
				}
				return len(got) < 2
			}
			t.Errorf("read in the loop: %v", err)
			return false
		}
	})
	if err != nil {
		t.Fatalf("ReadLoop: %v (got %q)", err, got)
	}
	if strings.Join(got, "|") != "one|two" {
		t.Fatalf("read %q, want one, then two after the wait", got)
	}
	if calls != 2 {
		t.Fatalf("f was called %d times, want 2: two came after the read that emptied the socket", calls)
	}
}

// TestReadLoopReadsOnAfterAFullRead: a read that filled its buffer may
// have left bytes queued, so the next read asks the socket.
func TestReadLoopReadsOnAfterAFullRead(t *testing.T) {
	a, b := pair(t)
	lc := b.(*Conn)
	lc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	var got []string
	buf := make([]byte, 4)
	err := lc.ReadLoop(func() bool {
		for {
			n, err := lc.Read(buf)
			if n > 0 {
				got = append(got, string(buf[:n]))
				continue
			}
			if err != ErrWouldBlock {
				t.Errorf("read: %v", err)
			}
			return false
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "0123|4567|89" {
		t.Fatalf("reads of 4 bytes gave %q", got)
	}
}

// TestReadLoopEndsAndFails: the end of the stream is io.EOF within the
// loop; a deadline and a Close end its wait with Read's errors; after
// the loop, Read waits again as usual.
func TestReadLoopEndsAndFails(t *testing.T) {
	t.Run("eof", func(t *testing.T) {
		a, b := pair(t)
		lc := b.(*Conn)
		lc.SetReadDeadline(time.Now().Add(10 * time.Second))
		a.Write([]byte("last"))
		var got string
		var end error
		err := lc.ReadLoop(func() bool {
			buf := make([]byte, 64)
			for {
				n, err := lc.Read(buf)
				got += string(buf[:n])
				if err == ErrWouldBlock {
					// The end comes while the loop waits: the poller
					// tells of it.
					time.AfterFunc(20*time.Millisecond, func() { a.Close() })
					return true
				}
				if err != nil {
					end = err
					return false
				}
			}
		})
		if err != nil || got != "last" || end != io.EOF {
			t.Fatalf("ReadLoop: %v; read %q then %v, want last then io.EOF", err, got, end)
		}
	})
	// The end that came with the last bytes: the read after them skips the
	// socket (Skipped), the wait is not woken, and the caller's deadline
	// ends it; the next loop's first read finds the end.
	t.Run("eof with the last bytes", func(t *testing.T) {
		a, b := pair(t)
		lc := b.(*Conn)
		a.Write([]byte("last"))
		a.Close()
		time.Sleep(20 * time.Millisecond) // both are queued
		lc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var got string
		skipped := false
		err := lc.ReadLoop(func() bool {
			buf := make([]byte, 64)
			for {
				n, err := lc.Read(buf)
				got += string(buf[:n])
				if err == ErrWouldBlock {
					skipped = lc.Skipped()
					return true
				}
				if err != nil {
					t.Errorf("read %v", err)
					return false
				}
			}
		})
		if got != "last" || !skipped || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read %q, skipped %v, ReadLoop %v; want last, a skipped read, the deadline", got, skipped, err)
		}
		lc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var end error
		err = lc.ReadLoop(func() bool {
			_, end = lc.Read(make([]byte, 64))
			return false
		})
		if err != nil || end != io.EOF {
			t.Fatalf("the next loop's read: %v, %v; want io.EOF", err, end)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		_, b := pair(t)
		lc := b.(*Conn)
		lc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		err := lc.ReadLoop(func() bool {
			_, err := lc.Read(make([]byte, 8))
			return err == ErrWouldBlock
		})
		opErr(t, err, "read")
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the wait past the deadline ended with %v", err)
		}
		// Read is itself again: it waits, and the deadline ends it.
		lc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if _, err := lc.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a Read after the loop: %v, want a timeout", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		_, b := pair(t)
		lc := b.(*Conn)
		closeWakes(t, b, "read", func() error {
			return lc.ReadLoop(func() bool {
				_, err := lc.Read(make([]byte, 8))
				return err == ErrWouldBlock
			})
		})
	})
}

// TestTryWriteDoesNotWait: a socket with no room takes part of a write or
// none, at once and without an error; the rest goes with Write. A write to
// a peer that is gone fails.
func TestTryWriteDoesNotWait(t *testing.T) {
	a, b := pair(t)
	smallBuffers(t, a, b)
	big := []byte(strings.Repeat("x", 4<<20))
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		n, err = a.(*Conn).TryWrite(big)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("TryWrite waited for room")
	}
	if err != nil || n <= 0 || n >= len(big) {
		t.Fatalf("TryWrite of 4 MiB to small buffers: %d, %v; want part of it", n, err)
	}
	go a.Write(big[n:])
	got, err := io.ReadFull(b, make([]byte, len(big)))
	if err != nil || got != len(big) {
		t.Fatalf("read %d of %d: %v", got, len(big), err)
	}

	// The peer resets the connection: a TryWrite fails, as a Write would.
	b.(*Conn).Conn.(*net.TCPConn).SetLinger(0)
	b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := a.(*Conn).TryWrite([]byte("more"))
		if err != nil {
			opErr(t, err, "write")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("TryWrite to a reset connection kept succeeding")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
