package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		live, scan, goal uint64
		want             int
	}{
		{"small heap: the runtime's minimum reaches the goal", 2 << 20, 3 << 20, 16 << 20, 400}, // 4 MiB × 4 = 16 MiB
		{"the live heap reaches the goal first", 6 << 20, 7 << 20, 16 << 20, 143},               // 6 + 7×1.43 ≥ 16 MiB
		{"tiny heap", 1 << 10, 2 << 10, 16 << 20, 400},
		{"nothing to scan", 0, 0, 16 << 20, 400},
		{"a large goal: bounded", 1 << 20, 2 << 20, 1 << 30, maxGCPercent},
		{"GOGC=100 reaches the goal", 8 << 20, 9 << 20, 16 << 20, 100},
		{"large heap: GOGC=100", 300 << 20, 301 << 20, 16 << 20, 100},
	} {
		if got := gcPercentFor(tc.live, tc.scan, tc.goal); got != tc.want {
			t.Errorf("%s: gcPercentFor(%d, %d, %d) = %d, want %d", tc.name, tc.live, tc.scan, tc.goal, got, tc.want)
		}
	}
}

func gogc() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// waitGOGC collects until the GC percentage satisfies ok: the tuner runs
// in the finalizer goroutine, some time after a collection ends.
func waitGOGC(t *testing.T, within time.Duration, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		runtime.GC()
		p := gogc()
		if ok(p) || time.Now().After(deadline) {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The tuner follows the live heap after each collection, stands aside
// when GOGC is set, and leaves GOGC=100 once stopped. (Not parallel: the
// GC percentage is the process's.)
func TestTuneGC(t *testing.T) {
	t.Cleanup(func() { debug.SetGCPercent(100) })

	t.Setenv("GOGC", "") // present, even empty: the operator's choice
	stop := tuneGC(1 << 30)
	if p := waitGOGC(t, 300*time.Millisecond, func(p int64) bool { return p != 100 }); p != 100 {
		t.Errorf("the tuner changed the GC percentage to %d although GOGC was set", p)
	}
	stop()

	os.Unsetenv("GOGC")
	stop = tuneGC(1 << 30) // far above this test's live heap
	if p := waitGOGC(t, 5*time.Second, func(p int64) bool { return p > 100 }); p <= 100 {
		t.Errorf("GC percent %d with a small live heap, want more than 100", p)
	}
	stop()
	if p := gogc(); p != 100 {
		t.Errorf("GC percent %d after stop, want 100", p)
	}

	// The goal the runtime sets is the one asked for, its minimum
	// included (4 MiB × GOGC/100): not a multiple of it.
	const goal = 16 << 20
	stop = tuneGC(goal)
	if p := waitGOGC(t, 5*time.Second, func(p int64) bool { return p > 100 }); p <= 100 {
		t.Fatalf("GC percent %d with a small live heap, want more than 100", p)
	}
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	got, live, limit := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
	if limit >= 1<<30 && live < goal/2 && (got < goal || got > goal+goal/8) { // (a low GOMEMLIMIT would cap it)
		t.Errorf("heap goal %d bytes with %d live, want %d", got, live, goal)
	}
	stop()

	debug.SetGCPercent(300)
	stop = tuneGC(1 << 10) // below any live heap
	defer stop()
	if p := waitGOGC(t, 5*time.Second, func(p int64) bool { return p == 100 }); p != 100 {
		t.Errorf("GC percent %d with a live heap beyond the goal, want 100", p)
	}
}
