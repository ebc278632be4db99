package clock

import (
	"testing"
	"time"
)

// Now keeps order with time.Now: a time read between two of Now's lies
// between them, and the reverse, on the monotonic clock that deadlines
// and durations use.
func TestNowKeepsOrderWithTimeNow(t *testing.T) {
	for range 1000 {
		a := Now()
		b := time.Now()
		c := Now()
		d := time.Now()
		if b.Before(a) || c.Before(b) || d.Before(c) {
			t.Fatalf("out of order: %v %v %v %v", a, b, c, d)
		}
	}
	start := Now()
	time.Sleep(20 * time.Millisecond)
	if d := time.Since(start); d < 20*time.Millisecond || d > 10*time.Second {
		t.Fatalf("20 ms later, time.Since says %v", d)
	}
	if d := Now().Sub(start); d < 20*time.Millisecond || d > 10*time.Second {
		t.Fatalf("20 ms later, Now().Sub says %v", d)
	}
	// A deadline made from Now has passed once its time has come: what
	// net.Conn.SetReadDeadline, time.Until and Before look at.
	if ahead := Now().Add(time.Second); time.Until(ahead) <= 0 || !time.Now().Before(ahead) {
		t.Fatal("a deadline 1 s ahead has passed at once")
	}
	due := Now().Add(10 * time.Millisecond)
	time.Sleep(15 * time.Millisecond)
	if time.Until(due) > 0 || time.Now().Before(due) {
		t.Fatal("a deadline 10 ms ahead has not passed 15 ms later")
	}
}

// Now's wall clock is close to time.Now's (it differs only when the wall
// clock is set while the process runs).
func TestNowWallClose(t *testing.T) {
	if d := time.Now().Round(0).Sub(Now().Round(0)); d < -time.Second || d > time.Second {
		t.Fatalf("wall clocks %v apart", d)
	}
}

func BenchmarkNow(b *testing.B) {
	b.Run("time.Now", func(b *testing.B) {
		for range b.N {
			sink = time.Now()
		}
	})
	b.Run("clock.Now", func(b *testing.B) {
		for range b.N {
			sink = Now()
		}
	})
}

var sink time.Time
