package drift_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Compiling a configuration builds the gateway's parts: none may leave a
// goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
