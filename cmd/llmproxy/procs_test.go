package main

import (
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// fakeProcs stands in for the runtime: GOMAXPROCS and its default.
type fakeProcs struct {
	n, def int
	calls  []int // what each switch set: 1, or def for the default
}

func (f *fakeProcs) procs(n int) int {
	old := f.n
	if n > 0 {
		f.n = n
		f.calls = append(f.calls, n)
	}
	return old
}

func (f *fakeProcs) all() {
	f.n = f.def
	f.calls = append(f.calls, f.def)
}

// feed gives the tuner windows of 100 ms, each using the given share of a
// core, and returns what GOMAXPROCS is after each.
func feed(tu *procTuner, f *fakeProcs, at *time.Time, cpu *time.Duration, uses ...float64) []int {
	var got []int
	for _, u := range uses {
		*at = at.Add(100 * time.Millisecond)
		*cpu += time.Duration(u * float64(100*time.Millisecond))
		tu.observe(*at, *cpu)
		got = append(got, f.n)
	}
	return got
}

func repeat(u float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = u
	}
	return s
}

func TestProcTunerSwitches(t *testing.T) {
	t.Parallel()
	f := &fakeProcs{n: 4, def: 4}
	tu := &procTuner{procs: f.procs, all: f.all, window: 100 * time.Millisecond, settle: time.Second, up: procsUp, down: procsDown}
	at, cpu := time.Now(), time.Duration(0)
	tu.lastAt = at

	// Low use goes to one P only once it lasted settle (ten windows).
	got := feed(tu, f, &at, &cpu, repeat(0.1, 9)...)
	if got[8] != 4 || len(f.calls) != 0 {
		t.Fatalf("after 0.9 s of low use: GOMAXPROCS %d, switches %v; want 4 and none", got[8], f.calls)
	}
	if got = feed(tu, f, &at, &cpu, 0.1); got[0] != 1 {
		t.Fatalf("after 1 s of low use: GOMAXPROCS %d, want 1", got[0])
	}
	// On one P, use below procsUp stays there; one window at it goes back
	// to the default at once.
	if got = feed(tu, f, &at, &cpu, 0.5, 0.59, 0.2); got[2] != 1 || len(f.calls) != 1 {
		t.Fatalf("on one P below %.1f of a core: GOMAXPROCS %v, switches %v; want 1 throughout", procsUp, got, f.calls)
	}
	if got = feed(tu, f, &at, &cpu, 0.65); got[0] != 4 {
		t.Fatalf("a window at %.2f of a core on one P: GOMAXPROCS %d, want the default 4", 0.65, got[0])
	}
	// Between procsDown and procsUp nothing moves; a busy window restarts
	// the count toward one P.
	feed(tu, f, &at, &cpu, repeat(0.45, 30)...)
	feed(tu, f, &at, &cpu, repeat(0.1, 9)...)
	feed(tu, f, &at, &cpu, 0.35)
	if got = feed(tu, f, &at, &cpu, repeat(0.1, 9)...); got[8] != 4 {
		t.Fatalf("low use broken by a window at 0.35: GOMAXPROCS %d before settle, want 4", got[8])
	}
	if got = feed(tu, f, &at, &cpu, 0.1); got[0] != 1 {
		t.Fatalf("then 1 s of low use: GOMAXPROCS %d, want 1", got[0])
	}
	if want := []int{1, 4, 1}; !slices.Equal(f.calls, want) {
		t.Fatalf("switches %v, want %v", f.calls, want)
	}
}

// A window counts by its length: a late tick (a busy machine) is one long
// window, not a short one.
func TestProcTunerWindowLength(t *testing.T) {
	t.Parallel()
	f := &fakeProcs{n: 2, def: 2}
	tu := &procTuner{procs: f.procs, all: f.all, window: 100 * time.Millisecond, settle: time.Second, up: procsUp, down: procsDown}
	at := time.Now()
	tu.lastAt = at
	at = at.Add(1500 * time.Millisecond)
	tu.observe(at, 150*time.Millisecond) // 0.1 of a core over 1.5 s
	if f.n != 1 {
		t.Fatalf("1.5 s at 0.1 of a core in one late window: GOMAXPROCS %d, want 1", f.n)
	}
	at = at.Add(time.Second)
	tu.observe(at, 150*time.Millisecond+500*time.Millisecond) // 0.5 over 1 s: below procsUp
	if f.n != 1 {
		t.Fatalf("0.5 of a core on one P: GOMAXPROCS %d, want 1", f.n)
	}
}

// The tuner stays off on one CPU, where the CPU time cannot be read, and
// where the default is one P already.
func TestProcTunerStaysOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		n    int
		read bool
	}{{"one CPU", 1, true}, {"no CPU time", 4, false}} {
		f := &fakeProcs{n: tc.n, def: tc.n}
		tu := &procTuner{cpu: func() (time.Duration, bool) { return 0, tc.read }, procs: f.procs, all: f.all,
			window: time.Millisecond, settle: time.Millisecond}
		stop := tu.start()
		time.Sleep(20 * time.Millisecond)
		stop()
		if len(f.calls) != 0 || f.n != tc.n {
			t.Errorf("%s: switches %v, GOMAXPROCS %d; want none", tc.name, f.calls, f.n)
		}
	}
}

// The tuner on the real runtime: an idle process goes to one P, a busy
// one back to the default, and stop leaves the default; with GOMAXPROCS
// set it does nothing. (Not parallel: GOMAXPROCS is the process's.)
func TestTuneProcs(t *testing.T) {
	def := runtime.GOMAXPROCS(0)
	if def < 2 {
		t.Skip("one CPU: nothing to tune")
	}
	if _, ok := processCPU(); !ok {
		t.Skip("no process CPU time here")
	}
	t.Cleanup(runtime.SetDefaultGOMAXPROCS)

	t.Run("GOMAXPROCS set", func(t *testing.T) {
		t.Setenv("GOMAXPROCS", "")
		stop := tuneProcs(10*time.Millisecond, 50*time.Millisecond)
		defer stop()
		time.Sleep(300 * time.Millisecond) // idle: six times what would settle
		if n := runtime.GOMAXPROCS(0); n != def {
			t.Fatalf("GOMAXPROCS %d with the variable set, want %d untouched", n, def)
		}
	})

	// As tuneProcs makes it, but quicker, and going back to the default
	// from 0.3 of a core: on a CI machine busy with other tests, one P
	// of ours may get less than procsUp of a core.
	tu := &procTuner{cpu: processCPU, procs: runtime.GOMAXPROCS, all: runtime.SetDefaultGOMAXPROCS,
		window: 20 * time.Millisecond, settle: 200 * time.Millisecond, up: 0.3, down: procsDown}
	stop := tu.start()
	defer stop()
	eventuallyWithin(t, 10*time.Second, "idle, the process does not go to one P", func() bool {
		return runtime.GOMAXPROCS(0) == 1
	})
	// Two goroutines that spin use all of one P: at least procsUp.
	var halt atomic.Bool
	defer halt.Store(true)
	for range 2 {
		go func() {
			for !halt.Load() {
			}
		}()
	}
	eventuallyWithin(t, 10*time.Second, "busy, the process does not go back to the default", func() bool {
		return runtime.GOMAXPROCS(0) == def
	})
	halt.Store(true)
	eventuallyWithin(t, 10*time.Second, "idle again, the process does not go back to one P", func() bool {
		return runtime.GOMAXPROCS(0) == 1
	})
	stop()
	if n := runtime.GOMAXPROCS(0); n != def {
		t.Fatalf("after stop GOMAXPROCS is %d, want the default %d", n, def)
	}
}
