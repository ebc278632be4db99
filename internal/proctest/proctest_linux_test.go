package proctest

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// state is a process's state letter from /proc (S sleeping, T stopped, Z
// zombie), "" once it is gone.
func state(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])[0]
}

func waitState(t *testing.T, pid int, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := state(pid)
		for _, w := range want {
			if got == w {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d: state %q, want one of %q", pid, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	Prepare(cmd, nil)
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestFreezeAndThaw(t *testing.T) {
	cmd := sleeper(t)
	pid := cmd.Process.Pid
	waitState(t, pid, "S")
	if err := Freeze(cmd.Process); err != nil {
		t.Fatal(err)
	}
	waitState(t, pid, "T")
	if err := Thaw(cmd.Process); err != nil {
		t.Fatal(err)
	}
	waitState(t, pid, "S")
}

// TestHelperDiesWithTheTestBinary runs this test binary as a parent that
// starts a helper with Prepare, says the helper's pid and exits with no
// cleanup, as a test binary that times out does: the helper must die too.
func TestHelperDiesWithTheTestBinary(t *testing.T) {
	if os.Getenv("PROCTEST_PARENT") == "1" {
		cmd := exec.Command("sleep", "60")
		Prepare(cmd, nil)
		if err := cmd.Start(); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(strconv.Itoa(cmd.Process.Pid) + "\n")
		os.Exit(0)
	}
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep command")
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestHelperDiesWithTheTestBinary$")
	parent.Env = append(os.Environ(), "PROCTEST_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		parent.Wait()
		t.Fatalf("the parent said %q", line)
	}
	parent.Wait()
	// The helper's parent is gone: it is killed (a zombie until init
	// reaps it), not left sleeping.
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	waitState(t, pid, "", "Z")
}
