//go:build unix

package redisstate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
)

// The cost Redis adds per request: Admit + Done through Redis next to the
// in-memory limiter, with the round trips counted, this process's CPU
// (user + system) and redis-server's CPU per request.
//
//	go test -run '^$' -bench AdmitDone -benchtime 2s ./redisstate/
func BenchmarkAdmitDone(b *testing.B) {
	r := startRedis(b)
	// No probe, no renewal in the way: every round trip counted is a
	// request's.
	s := newShared(b, r, Options{ProbeEvery: time.Hour, SlotTTL: time.Hour})
	var runs atomic.Int64
	// A fresh key per run, with an rpm no run reaches (the log of the
	// last minute holds every admission).
	key := func(limits string, n int) *access.Key {
		k := &access.Key{ID: fmt.Sprintf("bench%07d", runs.Add(1)), RPM: n + 1}
		if limits == "all limits" {
			k.TPM, k.MaxParallel = 1<<40, 1<<20
			k.Budget = &access.Budget{Nanos: 1 << 60, Period: access.Day}
		}
		return k
	}
	for _, limits := range []string{"rpm", "all limits"} {
		b.Run("local/"+limits, func(b *testing.B) {
			l := access.NewLocal()
			// The in-memory log is a ring of rpm entries: a clock that
			// moves a minute per rpm requests keeps it small.
			k := key(limits, 999)
			now := time.Now()
			measure(b, nil, nil, func() {
				for range b.N {
					now = now.Add(61 * time.Millisecond)
					t, err := l.Admit(context.Background(), k, now)
					if err != nil {
						b.Fatal(err)
					}
					t.Done(10, 10)
				}
			})
		})
		b.Run("redis/"+limits, func(b *testing.B) {
			l := s.Limiter(nil)
			k := key(limits, b.N)
			measure(b, s, r, func() {
				for range b.N {
					admitDone(b, l, k)
				}
			})
		})
		b.Run("redis/"+limits+"/parallel", func(b *testing.B) {
			l := s.Limiter(nil)
			k := key(limits, b.N)
			measure(b, s, r, func() {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						admitDone(b, l, k)
					}
				})
			})
		})
	}
}

func admitDone(b *testing.B, l access.Limiter, k *access.Key) {
	t, err := l.Admit(context.Background(), k, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	t.Done(10, 10)
}

// measure runs loop and reports round trips, CPU of this process and of
// redis-server per request.
func measure(b *testing.B, s *Shared, r *redisServer, loop func()) {
	var trips, fallbacks int64
	if s != nil {
		trips, fallbacks = s.m.roundTrips.Load(), s.m.fallbacks.Load()
	}
	var redisCPU float64
	if r != nil {
		redisCPU = serverCPU(b, r)
	}
	cpu := processCPU()
	b.ResetTimer()
	loop()
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(processCPU()-cpu)/n, "cpu-ns/op")
	if s != nil {
		b.ReportMetric(float64(s.m.roundTrips.Load()-trips)/n, "roundtrips/op")
		if f := s.m.fallbacks.Load() - fallbacks; f != 0 {
			b.Fatalf("%d requests fell back to local counters: the numbers are not Redis's", f)
		}
	}
	if r != nil {
		b.ReportMetric((serverCPU(b, r)-redisCPU)*1e9/n, "redis-cpu-ns/op")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is redis-server's CPU time so far, in seconds (INFO cpu).
func serverCPU(b *testing.B, r *redisServer) float64 {
	info, err := r.client(b).Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\r\n") {
		name, v, _ := strings.Cut(line, ":")
		if name == "used_cpu_sys" || name == "used_cpu_user" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu %q: %v", line, err)
			}
			total += f
		}
	}
	return total
}
