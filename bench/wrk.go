package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"
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
	Requests int // completed
}

const wrkScript = `wrk.method = "POST"
wrk.body = '{"model":"bench-1","messages":[{"role":"user","content":"Hello!"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-0000000000000000"
`

// wrkScriptFor is the script with a target's headers added (a gateway's
// client key replaces the Authorization above: names are canonicalised, as
// the script's are). Values go in Lua long brackets, which need no escaping.
func wrkScriptFor(headers map[string]string) string {
	var b strings.Builder
	b.WriteString(wrkScript)
	for k, v := range headers {
		fmt.Fprintf(&b, "wrk.headers[ [==[%s]==] ] = [==[%s]==]\n", http.CanonicalHeaderKey(k), v)
	}
	return b.String()
}

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

// runWrk runs wrk with fixed concurrency, keep-alive, a short JSON POST to
// t's chat path.
func runWrk(work, wrk string, t *target, conns int, d time.Duration) small {
	script := filepath.Join(work, "post.lua")
	os.WriteFile(script, []byte(wrkScriptFor(t.headers)), 0o644)
	url := t.url("/v1/chat/completions")
	out, err := exec.Command(wrk, "-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())),
		"--latency", "--timeout", "10s", "-s", script, url).CombinedOutput()
	if err != nil {
		log.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	s, err := parseWrk(string(out))
	if err != nil {
		log.Fatalf("wrk %s: %v:\n%s", url, err, strings.TrimSpace(string(out)))
	}
	return s
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	rePct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reReqs    = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
)

// parseWrk reads wrk's summary; it fails when the output has no rate.
func parseWrk(out string) (small, error) {
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
	// Counts are read as 32-bit, so that their sum cannot overflow.
	count := func(d string) int { n, _ := strconv.ParseInt(d, 10, 32); return int(n) }
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		s.Errors += count(m[1])
	}
	if m := reSockErr.FindStringSubmatch(out); m != nil {
		for _, g := range m[1:] {
			s.Errors += count(g)
		}
	}
	if m := reReqs.FindStringSubmatch(out); m != nil {
		s.Requests = count(m[1])
	}
	if s.RPS == 0 {
		return small{}, errors.New("could not read wrk's output")
	}
	return s, nil
}
