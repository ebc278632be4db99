package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// What the harness reads about its processes from /proc (proc(5)): CPU time
// used so far and resident memory. No cgo, so the clock tick comes from the
// auxiliary vector rather than sysconf(_SC_CLK_TCK).

// procStat is the part of /proc/<pid>/stat the harness uses.
type procStat struct {
	PPID         int
	UTime, STime uint64 // clock ticks, all threads, live and exited
}

// parseProcStat parses the contents of /proc/<pid>/stat. Field 2, the
// command name, is in parentheses and may itself hold spaces and
// parentheses, so the fields are counted from the last ')' (proc(5)).
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || bytes.IndexByte(b[:i], '(') < 0 {
		return procStat{}, errors.New("stat: no command name in parentheses")
	}
	// After ") ": state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14)
	// stime(15) …
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var s procStat
	var err error
	if s.PPID, err = strconv.Atoi(string(f[1])); err != nil {
		return procStat{}, errors.New("stat: ppid is not a number")
	}
	if s.UTime, err = strconv.ParseUint(string(f[11]), 10, 64); err != nil {
		return procStat{}, errors.New("stat: utime is not a number")
	}
	if s.STime, err = strconv.ParseUint(string(f[12]), 10, 64); err != nil {
		return procStat{}, errors.New("stat: stime is not a number")
	}
	return s, nil
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// atClkTck is the auxiliary-vector entry that holds the kernel's USER_HZ,
// the unit of utime and stime (getauxval(3)).
const atClkTck = 17

// parseAuxv finds key in an auxiliary vector (/proc/<pid>/auxv): pairs of
// machine words, ending with AT_NULL (0).
func parseAuxv(b []byte, wordSize int, order binary.ByteOrder, key uint64) (uint64, bool) {
	word := func(p []byte) uint64 {
		if wordSize == 4 {
			return uint64(order.Uint32(p))
		}
		return order.Uint64(p)
	}
	if wordSize != 4 && wordSize != 8 {
		return 0, false
	}
	for len(b) >= 2*wordSize {
		k, v := word(b), word(b[wordSize:])
		b = b[2*wordSize:]
		if k == 0 {
			break
		}
		if k == key {
			return v, true
		}
	}
	return 0, false
}

// clockTick is the length of one utime/stime tick: 1/USER_HZ, which is 100
// on every Linux architecture Go supports, read from the kernel anyway.
var clockTick = sync.OnceValue(func() time.Duration {
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		if hz, ok := parseAuxv(b, strconv.IntSize/8, binary.NativeEndian, atClkTck); ok && hz > 0 && hz <= 1e6 {
			return time.Second / time.Duration(hz)
		}
	}
	return 10 * time.Millisecond
})

// cpuTime is the user+system CPU time the processes have used so far.
// A process that is gone counts as zero.
func cpuTime(pids []int) time.Duration {
	total, _ := cpuTimes(pids)
	return total
}

// cpuTimes is cpuTime and, of it, the time spent in user space: the
// process's own code and the Go runtime, without the kernel's work on its
// sockets and wake-ups.
func cpuTimes(pids []int) (total, user time.Duration) {
	var ticks, uticks uint64
	for _, pid := range pids {
		if s, err := readProcStat(pid); err == nil {
			ticks += s.UTime + s.STime
			uticks += s.UTime
		}
	}
	return time.Duration(ticks) * clockTick(), time.Duration(uticks) * clockTick()
}

// children lists the processes whose parent is pid (nginx's workers), by
// reading every /proc/<n>/stat: /proc/<pid>/task/<pid>/children needs a
// kernel option that not every kernel has.
func children(pid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		n, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if s, err := readProcStat(n); err == nil && s.PPID == pid {
			out = append(out, n)
		}
	}
	return out
}

// parseVmRSS returns the VmRSS line of /proc/<pid>/status in bytes.
func parseVmRSS(b []byte) (int64, bool) {
	for line := range bytes.Lines(b) {
		v, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}

// rss returns the processes' resident memory in bytes, summed.
func rss(pids ...int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		if n, ok := parseVmRSS(b); ok {
			total += n
		}
	}
	return total
}

// ioCalls are a process's read and write system calls so far, from the
// syscr and syscw lines of /proc/<pid>/io. The kernel counts read, readv,
// write and writev (what Go's net package uses on sockets), not recv, send,
// recvmsg or sendmsg (nginx's reads; the MSG_PEEK probe), nor epoll.
type ioCalls struct{ Reads, Writes uint64 }

// parseProcIO parses the contents of /proc/<pid>/io.
func parseProcIO(b []byte) (ioCalls, bool) {
	var c ioCalls
	var seen int // bit 0: syscr, bit 1: syscw
	for line := range bytes.Lines(b) {
		name, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(name) {
		case "syscr":
			dst, seen = &c.Reads, seen|1
		case "syscw":
			dst, seen = &c.Writes, seen|2
		default:
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return ioCalls{}, false
		}
		*dst = n
	}
	if seen != 3 {
		return ioCalls{}, false
	}
	return c, true
}

// ioCallsOf sums the processes' read and write calls so far.
func ioCallsOf(pids []int) ioCalls {
	var total ioCalls
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			continue
		}
		if c, ok := parseProcIO(b); ok {
			total.Reads += c.Reads
			total.Writes += c.Writes
		}
	}
	return total
}

func (c ioCalls) minus(d ioCalls) ioCalls { return ioCalls{c.Reads - d.Reads, c.Writes - d.Writes} }
