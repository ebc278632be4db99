package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	t.Parallel()
	out := `Running 10s test @ http://127.0.0.1:9095/bench/v1/chat/completions
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.36ms    1.45ms  32.17ms   88.21%
    Req/Sec     6.83k   395.44     7.63k    72.50%
  Latency Distribution
     50%    1.97ms
     75%    2.71ms
     90%    3.72ms
     99%    7.57ms
  136004 requests in 10.00s, 57.84MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  13600.35
Transfer/sec:      5.78MB
`
	s, err := parseWrk(out)
	if err != nil || s.RPS != 13600.35 || s.P50 != 1970*time.Microsecond || s.P99 != 7570*time.Microsecond || s.Errors != 7 || s.Requests != 136004 {
		t.Errorf("parsed %+v, %v", s, err)
	}
	s, err = parseWrk("Latency Distribution\n     50%  812.00us\n     99%    1.20s\nRequests/sec: 5.5\n")
	if err != nil || s.P50 != 812*time.Microsecond || s.P99 != 1200*time.Millisecond || s.Requests != 0 {
		t.Errorf("units: %+v, %v", s, err)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("output without a rate parsed")
	}
}

func TestWrkScriptFor(t *testing.T) {
	t.Parallel()
	got := wrkScriptFor(map[string]string{"authorization": "Bearer sk-client-1"})
	if !strings.HasPrefix(got, wrkScript) {
		t.Fatalf("script lost the defaults:\n%s", got)
	}
	// Canonical, so that it replaces the default Authorization rather than
	// adding a second one.
	if want := "wrk.headers[ [==[Authorization]==] ] = [==[Bearer sk-client-1]==]\n"; !strings.HasSuffix(got, want) {
		t.Errorf("script ends %q, want %q", got[len(wrkScript):], want)
	}
	if wrkScriptFor(nil) != wrkScript {
		t.Error("no headers changed the script")
	}
}

func FuzzParseWrk(f *testing.F) {
	f.Add("  136004 requests in 10.00s, 57.84MB read\nRequests/sec:  13600.35\n     50%    1.97ms\n")
	f.Add("Socket errors: connect 0, read 2, write 0, timeout 1\nNon-2xx or 3xx responses: 4\nRequests/sec: 1\n")
	f.Fuzz(func(t *testing.T, out string) {
		s, err := parseWrk(out)
		if err == nil && s.RPS <= 0 {
			t.Errorf("accepted a rate of %v", s.RPS)
		}
		if s.Errors < 0 || s.Requests < 0 {
			t.Errorf("negative counts: %+v", s)
		}
	})
}
