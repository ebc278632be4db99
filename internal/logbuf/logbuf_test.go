package logbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Writers on several goroutines and a reader at once (run with -race):
// every line arrives whole, and Count and String see them.
func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "writer %d line %d\n", w, i)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			_ = b.Count("line")
		}
	}()
	wg.Wait()
	<-done
	if n := b.Count("line"); n != 400 {
		t.Fatalf("Count = %d, want 400", n)
	}
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		var w, i int
		if _, err := fmt.Sscanf(line, "writer %d line %d", &w, &i); err != nil {
			t.Fatalf("torn line %q: %v", line, err)
		}
	}
}
