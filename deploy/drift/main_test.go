package drift_test

import (
	"testing"

	"github.com/llmproxy/llmproxy/internal/leaktest"
)

// Compiling a configuration builds the gateway's parts: none may leave a
// goroutine behind.
func TestMain(m *testing.M) { leaktest.Main(m) }
