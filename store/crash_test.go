package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashHelperEnv, when set to a data dir, turns the test binary into the
// process TestCrashLosesNothingAcknowledged kills.
const crashHelperEnv = "LLMPROXY_STORE_CRASH_HELPER"

// crashHelper writes in a loop and prints each write's number once the
// call returned nil: "change N" after a Change (a model mN), "usage N"
// after an AddUsage (one request). It runs until it is killed.
func crashHelper(dir string) {
	prefix := os.Getenv(crashHelperEnv + "_PREFIX")
	s, err := Open(context.Background(), Options{DataDir: dir, SecretKey: testKey})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s-m%d", prefix, i)
		if err := s.Change(ctx, "crash", func(tx *Tx) error {
			if err := tx.PutModel(model(name)); err != nil {
				return err
			}
			// A provider with a sealed key too, so that the crash can
			// land in the middle of the bigger writes.
			if err := tx.PutProvider(provider(fmt.Sprintf("%s-p%d", prefix, i), ProviderKey{Secret: secretA})); err != nil {
				return err
			}
			return tx.Audit("model.put", name, "")
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// os.Stdout is unbuffered: once the line is in the pipe it was
		// acknowledged, even if the process dies right after.
		fmt.Printf("change %d\n", i)
		if err := s.AddUsage(ctx, []UsageRow{{Day: day(2025, 1, 1), Client: prefix, Requests: 1}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("usage %d\n", i)
	}
}

// A write that returned nil survives a kill -9 at any later moment. The
// helper is killed after a random number of acknowledgements, three times
// over the same database, each round reopening what the last one left.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	t.Parallel()
	dir := t.TempDir()
	var wantRevision int64
	for round := range 3 {
		prefix := fmt.Sprintf("r%d", round)
		changes, usages := runAndKill(t, dir, prefix, 5+rand.IntN(40))

		s := openStore(t, dir, testKey)
		e := entries(t, s)
		have := map[string]bool{}
		for _, m := range e.Models {
			have[m.Name] = true
		}
		for i := range changes {
			if !have[fmt.Sprintf("%s-m%d", prefix, i)] {
				t.Errorf("round %d: acknowledged change %d is lost", round, i)
			}
		}
		// The change in flight at the kill may or may not have landed;
		// nothing beyond it can have.
		n := 0
		for name := range have {
			if strings.HasPrefix(name, prefix+"-") {
				n++
			}
		}
		if n < changes || n > changes+1 {
			t.Errorf("round %d: %d models for %d acknowledged changes", round, n, changes)
		}
		for _, p := range e.Providers {
			if strings.HasPrefix(p.Name, prefix+"-") && (len(p.Keys) != 1 || p.Keys[0].Secret != secretA) {
				t.Errorf("round %d: provider %s half-written: %+v", round, p.Name, p.Keys)
			}
		}
		rows := usageRows(t, s, day(2025, 1, 1), day(2025, 1, 2))
		var requests int64
		for _, r := range rows {
			if r.Client == prefix {
				requests = r.Requests
			}
		}
		if requests < int64(usages) || requests > int64(usages)+1 {
			t.Errorf("round %d: %d requests stored for %d acknowledged usage writes", round, requests, usages)
		}
		// Each change bumps the revision once, in its own transaction.
		wantRevision += int64(n)
		if got := revision(t, s); got != wantRevision {
			t.Errorf("round %d: revision %d, want %d (one per stored change)", round, got, wantRevision)
		}
		s.Close()
	}
}

// runAndKill starts the helper, kills it with SIGKILL after acks
// acknowledgements plus a random delay (so that the kill lands anywhere
// in a write), and returns how many changes and usage writes it
// acknowledged.
func runAndKill(t *testing.T, dir, prefix string, acks int) (changes, usages int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir, crashHelperEnv+"_PREFIX="+prefix)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	killed := false
	seen := 0
	for sc.Scan() {
		kind, num, ok := strings.Cut(sc.Text(), " ")
		i, err := strconv.Atoi(num)
		if !ok || err != nil {
			t.Fatalf("helper said %q", sc.Text())
		}
		switch kind {
		case "change":
			changes = i + 1
		case "usage":
			usages = i + 1
		}
		if seen++; seen == acks && !killed {
			killed = true
			time.AfterFunc(time.Duration(rand.IntN(3000))*time.Microsecond, func() { cmd.Process.Kill() })
		}
	}
	// Lines read after the kill was scheduled were acknowledged too: the
	// scanner reads until the pipe closes with the process.
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended without being killed: %v\n%s", err, stderr.String())
	}
	if changes == 0 {
		t.Fatalf("helper acknowledged nothing\n%s", stderr.String())
	}
	return changes, usages
}
