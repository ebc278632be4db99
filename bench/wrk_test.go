package main

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
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
	s := parseWrk(out)
	if s.RPS != 13600.35 || s.P50 != 1970*time.Microsecond || s.P99 != 7570*time.Microsecond || s.Errors != 7 {
		t.Errorf("parsed %+v", s)
	}
	s = parseWrk("Latency Distribution\n     50%  812.00us\n     99%    1.20s\nRequests/sec: 5.5\n")
	if s.P50 != 812*time.Microsecond || s.P99 != 1200*time.Millisecond {
		t.Errorf("units: %+v", s)
	}
}
