package main

import (
	"log"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// CPU per request and per relayed SSE event: the CPU time (user + system,
// from /proc) that a target's processes and the upstream's used while the
// load ran, divided by the work done. Unlike req/s, it does not move when
// the load generator and the proxy fight over the same two cores.

// cpuRound is one wrk run through a target, with the CPU used meanwhile.
type cpuRound struct {
	small
	Proxy, Upstream     time.Duration // CPU time used during the run
	ProxyUser           time.Duration // of Proxy, the time in user space
	ProxyIO, UpstreamIO ioCalls       // read and write calls during the run
}

// measureWrk runs wrk through t, sampling the CPU time and the read and
// write calls of t's processes and of the upstream (pid up) before and
// after.
func measureWrk(work, wrk string, t *target, up, conns int, d time.Duration) cpuRound {
	pids, ups := t.pids(), []int{up}
	p0, pu0 := cpuTimes(pids)
	u0 := cpuTime(ups)
	pio0, uio0 := ioCallsOf(pids), ioCallsOf(ups)
	s := runWrk(work, wrk, t, conns, d)
	p1, pu1 := cpuTimes(pids)
	u1 := cpuTime(ups)
	pio1, uio1 := ioCallsOf(pids), ioCallsOf(ups)
	return cpuRound{small: s, Proxy: p1 - p0, ProxyUser: pu1 - pu0, Upstream: u1 - u0, ProxyIO: pio1.minus(pio0), UpstreamIO: uio1.minus(uio0)}
}

// sseRound is one run of the SSE CPU test through a target.
type sseRound struct {
	Events          int // relayed: received by the client
	Elapsed         time.Duration
	Proxy, Upstream time.Duration // CPU time used during the run
}

// measureSSECPU runs `streams` SSE streams of `events` events `gap` apart
// through t, all at once, and samples CPU time as measureWrk does.
func measureSSECPU(c *http.Client, t *target, up, streams, events int, gap time.Duration) sseRound {
	pids := t.pids()
	p0, u0 := cpuTime(pids), cpuTime([]int{up})
	start := time.Now()
	var got atomic.Int64
	var wg sync.WaitGroup
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, _ := oneStream(c, t.sseRequest(events, gap))
			got.Add(int64(len(d)))
		}()
	}
	wg.Wait()
	r := sseRound{Events: int(got.Load()), Elapsed: time.Since(start)}
	r.Proxy, r.Upstream = cpuTime(pids)-p0, cpuTime([]int{up})-u0
	if r.Events != streams*events {
		log.Printf("%s: %d of %d SSE events arrived", t.name, r.Events, streams*events)
	}
	return r
}

// perUnit is CPU time per unit of work in microseconds; NaN when there was
// no work.
func perUnit(cpu time.Duration, n int) float64 {
	if n <= 0 {
		return nan
	}
	return float64(cpu) / float64(time.Microsecond) / float64(n)
}

var nan = math.NaN()

// median of the values, NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return nan
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// diffs subtracts b[i] from a[i], round by round, as ratios divides.
func diffs(a, b []float64) []float64 {
	return perRound(a, b, func(x, y float64) float64 { return x - y })
}

// ratios divides a[i] by b[i], round by round: the targets of one round
// run one after the other, so a round's ratio compares like with like.
func ratios(a, b []float64) []float64 {
	return perRound(a, b, func(x, y float64) float64 { return x / y })
}

// perRound applies f to the figures of each round both have, skipping a
// round where b measured nothing.
func perRound(a, b []float64, f func(x, y float64) float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, f(a[i], b[i]))
		}
	}
	return out
}
