package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// small is the result of the small-request test for one target.
type small struct {
	RPS      float64
	P50, P99 time.Duration
	Errors   int
}

const wrkScript = `wrk.method = "POST"
wrk.body = '{"model":"bench-1","messages":[{"role":"user","content":"Hello!"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-0000000000000000"
`

// wrkPath finds wrk, installing it when it can.
func wrkPath() (string, error) {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p, nil
	}
	if os.Getuid() == 0 {
		log.Print("installing wrk (apt-get install wrk)")
		exec.Command("sh", "-c", "apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null 2>&1)").Run()
	}
	return exec.LookPath("wrk")
}

// runWrk runs wrk with fixed concurrency, keep-alive, a short JSON POST.
func runWrk(work, wrk, url string, conns int, d time.Duration) small {
	script := filepath.Join(work, "post.lua")
	os.WriteFile(script, []byte(wrkScript), 0o644)
	out, err := exec.Command(wrk, "-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())),
		"--latency", "--timeout", "10s", "-s", script, url).CombinedOutput()
	if err != nil {
		log.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	return parseWrk(string(out))
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	rePct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(out string) small {
	var s small
	if m := reRPS.FindStringSubmatch(out); m != nil {
		s.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range rePct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			s.P50 = d
		} else {
			s.P99 = d
		}
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		s.Errors += n
	}
	if m := reSockErr.FindStringSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(g)
			s.Errors += n
		}
	}
	if s.RPS == 0 {
		log.Fatalf("could not read wrk's output:\n%s", strings.TrimSpace(out))
	}
	return s
}
