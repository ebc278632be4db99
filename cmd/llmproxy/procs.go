package main

import (
	"os"
	"runtime"
	"sync"
	"time"
)

// Running on one P while the proxy is lightly loaded.
//
// With more than one P, Go's scheduler keeps a second thread looking for
// work whenever a goroutine is readied: after an event is relayed and its
// goroutine parks, a thread spins through the other Ps' queues and the
// poller before it sleeps, and the next event may wake it with a futex.
// For a proxy relaying token streams, whose every event is a read, a
// write and a wait, that costs about 1.5 µs of a 10 µs event (the
// benchmark's SSE test: 9.0 against 10.7 µs per event, nginx's one-thread
// workers 9.4). One P does not pay it, but caps the proxy at one core of
// Go code: small requests at full load ran 10% slower on one P.
//
// So once the process has used less than procsDown of a core for
// procsSettle, it runs on one P, and as soon as a window's use reaches
// procsUp of a core it goes back to the runtime's default (all CPUs, or
// the cgroup's quota). A burst that begins on one P waits at most one
// window (procsWindow) for the others. An operator who sets GOMAXPROCS
// decides alone.

const (
	procsWindow = 100 * time.Millisecond // how often the CPU use is read
	procsUp     = 0.6                    // of a core, in one window: all Ps
	procsDown   = 0.3                    // of a core, over procsSettle: one P
	procsSettle = 2 * time.Second        // how long the use must stay low before going to one P
)

// tuneProcs runs a procTuner, reading the CPU use every window and going
// to one P after settle of low use, until stop, which leaves the runtime's
// default in place. It does nothing when GOMAXPROCS is set, where the
// process's CPU time cannot be read, or on a single CPU.
func tuneProcs(window, settle time.Duration) (stop func()) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return func() {}
	}
	t := &procTuner{cpu: processCPU, procs: runtime.GOMAXPROCS, all: runtime.SetDefaultGOMAXPROCS,
		window: window, settle: settle, up: procsUp, down: procsDown}
	return t.start()
}

// procTuner switches between one P and the runtime's default by the CPU
// time the process used, window by window.
type procTuner struct {
	cpu    func() (time.Duration, bool) // the process's CPU time so far (user + system)
	procs  func(n int) int              // runtime.GOMAXPROCS
	all    func()                       // runtime.SetDefaultGOMAXPROCS
	window time.Duration
	settle time.Duration
	up     float64 // procsUp
	down   float64 // procsDown

	one     bool          // running on one P
	low     time.Duration // how long the use has stayed below procsDown
	lastCPU time.Duration
	lastAt  time.Time
}

func (t *procTuner) start() (stop func()) {
	c, ok := t.cpu()
	if !ok || t.procs(0) < 2 {
		return func() {}
	}
	t.lastCPU, t.lastAt = c, time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(t.window)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				// The time of the reading, not of the tick: a tick read
				// late would count the delay's CPU into the wrong window.
				if c, ok := t.cpu(); ok {
					t.observe(time.Now(), c)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			if t.one {
				t.all()
				t.one = false
			}
		})
	}
}

// observe takes the process's CPU time at now and switches when the use
// since the last observation calls for it.
func (t *procTuner) observe(now time.Time, cpu time.Duration) {
	wall := now.Sub(t.lastAt)
	used := cpu - t.lastCPU
	t.lastCPU, t.lastAt = cpu, now
	if wall <= 0 {
		return
	}
	use := float64(used) / float64(wall) // cores
	if t.one {
		if use >= t.up {
			t.all()
			t.one, t.low = false, 0
		}
		return
	}
	if use >= t.down {
		t.low = 0
		return
	}
	if t.low += wall; t.low >= t.settle && t.procs(0) > 1 {
		t.procs(1)
		t.one, t.low = true, 0
	}
}
