package leaktest

import (
	"testing"
	"time"
)

// Not parallel: goleak looks at every goroutine of the process.
func TestCheck(t *testing.T) {
	if got := check(3, time.Second); got != 3 {
		t.Errorf("a failed run's code became %d", got)
	}
	if got := check(0, time.Second); got != 0 {
		t.Errorf("nothing running: %d", got)
	}

	// A goroutine on its way out is waited for.
	done := make(chan struct{})
	go func() { time.Sleep(300 * time.Millisecond); close(done) }()
	if got := check(0, 20*time.Second); got != 0 {
		t.Errorf("a goroutine that ends within the wait: %d", got)
	}
	<-done

	// One that never ends fails the run.
	stop := make(chan struct{})
	go func() { <-stop }()
	if got := check(0, 200*time.Millisecond); got != 1 {
		t.Errorf("a goroutine still running: %d, want 1", got)
	}
	close(stop)
}
