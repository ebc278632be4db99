package main

import (
	"encoding/binary"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "4242 (llmproxy) S 4000 4242 4000 0 -1 4194560 1834 0 0 0 1523 687 0 0 20 0 6 0 12345 1262841856 5421 18446744073709551615\n",
			want: procStat{PPID: 4000, UTime: 1523, STime: 687},
		},
		{
			name: "command with spaces and parentheses",
			in:   "77 (nginx: worker (x) ) R 76 76 1 0 -1 4194624 5 0 0 0 12 34 0 0 20 0 1 0 99 10000 200\n",
			want: procStat{PPID: 76, UTime: 12, STime: 34},
		},
		{
			name: "exactly the fields needed",
			in:   "1 (a) S 0 0 0 0 0 0 0 0 0 0 5 6",
			want: procStat{PPID: 0, UTime: 5, STime: 6},
		},
		{name: "too few fields", in: "1 (a) S 0 0 0 0 0 0 0 0 0 0 5", wantErr: true},
		{name: "no parentheses", in: "1 a S 0 0 0 0 0 0 0 0 0 0 5 6 7", wantErr: true},
		{name: "closing parenthesis only", in: "1 a) S 0 0 0 0 0 0 0 0 0 0 5 6 7", wantErr: true},
		{name: "utime not a number", in: "1 (a) S 0 0 0 0 0 0 0 0 0 0 x 6", wantErr: true},
		{name: "negative stime", in: "1 (a) S 0 0 0 0 0 0 0 0 0 0 5 -6", wantErr: true},
		{name: "ppid not a number", in: "1 (a) S p 0 0 0 0 0 0 0 0 0 5 6", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The parser agrees with the kernel about this very process.
func TestReadProcStatSelf(t *testing.T) {
	t.Parallel()
	s, err := readProcStat(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if s.PPID != os.Getppid() {
		t.Errorf("ppid %d, want %d", s.PPID, os.Getppid())
	}
	// Burn CPU in user space until the user counter moves. Both counters
	// count in ticks, and the kernel splits the process's run time between
	// user and system by sampling, so a few ticks may all land on the
	// system side (the other tests of this process make syscalls): wait
	// for the user share itself, before a generous bound, and assert no
	// time.
	before, userBefore := cpuTimes([]int{os.Getpid()})
	x, moved := 0, false
	for deadline := time.Now().Add(30 * time.Second); !moved && time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x += i ^ x
		}
		_, user := cpuTimes([]int{os.Getpid()})
		moved = user > userBefore
	}
	if !moved {
		t.Errorf("user CPU time stayed at %s (%d)", userBefore, x)
	}
	// The user share is part of the total, which moved with it.
	if total, user := cpuTimes([]int{os.Getpid()}); total <= before || user > total {
		t.Errorf("user CPU %s of %s, total before %s", user, total, before)
	}
	if got := cpuTime([]int{-1}); got != 0 {
		t.Errorf("a missing process counted %s", got)
	}
}

func auxv(order binary.AppendByteOrder, wordSize int, pairs ...uint64) []byte {
	var b []byte
	for _, v := range pairs {
		if wordSize == 4 {
			b = order.AppendUint32(b, uint32(v))
		} else {
			b = order.AppendUint64(b, v)
		}
	}
	return b
}

func TestParseAuxv(t *testing.T) {
	t.Parallel()
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		name     string
		in       []byte
		wordSize int
		order    binary.ByteOrder
		want     uint64
		ok       bool
	}{
		{"64-bit little-endian", auxv(le, 8, 6, 4096, atClkTck, 100, 0, 0), 8, le, 100, true},
		{"64-bit big-endian", auxv(be, 8, atClkTck, 250, 0, 0), 8, be, 250, true},
		{"32-bit", auxv(le, 4, 3, 7, atClkTck, 1024, 0, 0), 4, le, 1024, true},
		{"missing", auxv(le, 8, 6, 4096, 0, 0), 8, le, 0, false},
		{"after AT_NULL does not count", auxv(le, 8, 0, 0, atClkTck, 100), 8, le, 0, false},
		{"truncated pair", auxv(le, 8, atClkTck, 100)[:12], 8, le, 0, false},
		{"bad word size", auxv(le, 8, atClkTck, 100), 3, le, 0, false},
		{"empty", nil, 8, le, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseAuxv(tt.in, tt.wordSize, tt.order, atClkTck)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestClockTick(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	hz, ok := parseAuxv(b, strconv.IntSize/8, binary.NativeEndian, atClkTck)
	if !ok || hz == 0 {
		t.Fatalf("no AT_CLKTCK in this process's auxiliary vector")
	}
	if got := clockTick(); got != time.Second/time.Duration(hz) {
		t.Errorf("clockTick %s, want 1/%d s", got, hz)
	}
}

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{"status", "Name:\tnginx\nVmPeak:\t  20000 kB\nVmRSS:\t    5421 kB\nRssAnon:\t 1000 kB\n", 5421 << 10, true},
		{"last line without newline", "Name:\tx\nVmRSS:\t12 kB", 12 << 10, true},
		{"kernel thread has none", "Name:\tkthreadd\nState:\tS (sleeping)\n", 0, false},
		{"unknown unit", "VmRSS:\t12 MB\n", 0, false},
		{"not a number", "VmRSS:\tlots kB\n", 0, false},
		{"negative", "VmRSS:\t-12 kB\n", 0, false},
		{"absurd", "VmRSS:\t9223372036854775807 kB\n", 0, false},
		{"prefix elsewhere on the line", "XVmRSS:\t12 kB\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseVmRSS([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestChildren(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	// The test binary's parent (go test, or a shell) has this process as a
	// child.
	found := false
	for _, pid := range children(os.Getppid()) {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Errorf("children(%d) lacks this process (%d)", os.Getppid(), os.Getpid())
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("4242 (llmproxy) S 4000 4242 4000 0 -1 4194560 1834 0 0 0 1523 687 0 0 20 0 6 0\n"))
	f.Add([]byte("77 (a) b) R 76 76 1 0 -1 4194624 5 0 0 0 12 34\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseProcStat(b)
		if err != nil {
			return
		}
		// What parsed is there to be read back: the fields after the last
		// ')' hold ppid, utime and stime at their places.
		again, err := parseProcStat(append([]byte("1 (x) S "+strconv.Itoa(s.PPID)+" 0 0 0 0 0 0 0 0 0 "),
			[]byte(strconv.FormatUint(s.UTime, 10)+" "+strconv.FormatUint(s.STime, 10))...))
		if err != nil || again != s {
			t.Errorf("%+v did not survive a round trip: %+v, %v", s, again, err)
		}
	})
}

func FuzzParseAuxv(f *testing.F) {
	f.Add(auxv(binary.LittleEndian, 8, 6, 4096, atClkTck, 100, 0, 0), uint64(250))
	f.Add([]byte{1, 2, 3}, uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, hz uint64) {
		for _, ws := range []int{4, 8} {
			parseAuxv(b, ws, binary.LittleEndian, atClkTck) // must not panic
		}
		// A vector whose entries before AT_CLKTCK are non-null keys is
		// found whatever the values.
		if hz == 0 {
			return
		}
		v := auxv(binary.LittleEndian, 8, 6, hz^1, atClkTck, hz, 0, 0)
		if got, ok := parseAuxv(v, 8, binary.LittleEndian, atClkTck); !ok || got != hz {
			t.Errorf("got %d, %v; want %d", got, ok, hz)
		}
	})
}

func FuzzParseVmRSS(f *testing.F) {
	f.Add([]byte("Name:\tnginx\nVmRSS:\t    5421 kB\n"))
	f.Add([]byte("VmRSS:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := parseVmRSS(b)
		if ok && (n < 0 || n%1024 != 0) {
			t.Errorf("parsed %d bytes", n)
		}
		if !ok && n != 0 {
			t.Errorf("failed with %d", n)
		}
	})
}

func TestParseProcIO(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want ioCalls
		ok   bool
	}{
		{"io", "rchar: 6976\nwchar: 12\nsyscr: 10\nsyscw: 3\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n", ioCalls{10, 3}, true},
		{"order does not matter", "syscw: 7\nsyscr: 8", ioCalls{8, 7}, true},
		{"syscw missing", "syscr: 10\n", ioCalls{}, false},
		{"syscr twice, syscw missing", "syscr: 10\nsyscr: 11\n", ioCalls{}, false},
		{"not a number", "syscr: x\nsyscw: 1\n", ioCalls{}, false},
		{"negative", "syscr: -1\nsyscw: 1\n", ioCalls{}, false},
		{"empty", "", ioCalls{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseProcIO([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// The kernel counts this process's reads: reading a file moves syscr.
func TestIOCallsSelf(t *testing.T) {
	t.Parallel()
	before := ioCallsOf([]int{os.Getpid()})
	if _, err := os.ReadFile("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	if after := ioCallsOf([]int{os.Getpid()}); after.Reads <= before.Reads {
		t.Errorf("reads went from %d to %d", before.Reads, after.Reads)
	}
}

func FuzzParseProcIO(f *testing.F) {
	f.Add([]byte("rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 0\n"))
	f.Add([]byte("syscr:1\nsyscw:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := parseProcIO(b)
		if !ok && c != (ioCalls{}) {
			t.Errorf("failed with %+v", c)
		}
	})
}
