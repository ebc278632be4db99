// Package leaktest checks that a test binary's tests left no goroutine
// running, as goleak.VerifyTestMain does, with a longer wait for the ones
// still on their way out: goleak retries for about 0.4 s, which a busy
// test machine can spend before a closed connection's goroutine ends.
package leaktest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Wait is how long goroutines may take to end after the last test.
const Wait = 10 * time.Second

// Main runs the tests, then fails the binary if goroutines other than
// those opts ignore are still running after Wait.
func Main(m *testing.M, opts ...goleak.Option) {
	os.Exit(Check(m.Run(), opts...))
}

// Check returns code, or 1 when code is 0 and goroutines are still
// running after Wait (they are printed).
func Check(code int, opts ...goleak.Option) int { return check(code, Wait, opts...) }

func check(code int, wait time.Duration, opts ...goleak.Option) int {
	if code != 0 {
		return code
	}
	var err error
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		if err = goleak.Find(opts...); err == nil {
			return code
		}
		if time.Now().After(deadline) {
			break
		}
	}
	fmt.Fprintf(os.Stderr, "goleak: errors on a successful test run: %v\n", err)
	return 1
}
