package redisstate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/internal/proctest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// redisServer is a real redis-server on a loopback port of its own, which
// a test may kill, freeze and start again on the same port.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	URL  string

	mu  sync.Mutex
	cmd *exec.Cmd
	out bytes.Buffer
}

// startRedis starts a redis-server for the test. Without one installed the
// test is skipped, unless LLMPROXY_REDIS_TESTS is set (CI): then it fails.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("LLMPROXY_REDIS_TESTS") != "" {
			t.Fatalf("LLMPROXY_REDIS_TESTS is set but redis-server is not installed: %v", err)
		}
		t.Skip("redis-server is not installed: the shared state was NOT tested (set LLMPROXY_REDIS_TESTS=1 to make this a failure)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, bin: bin, port: port, URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	r.start()
	t.Cleanup(r.kill)
	return r
}

// start runs redis-server (again) on the server's port and waits until it
// answers.
func (r *redisServer) start() {
	r.t.Helper()
	r.mu.Lock()
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--save", "", "--appendonly", "no",
		"--bind", "127.0.0.1", "--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	proctest.Prepare(cmd, nil)
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		r.t.Fatalf("redis-server: %v", err)
	}
	r.cmd = cmd
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.ping()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d does not answer: %v\n%s", r.port, err, r.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping asks redis-server for PONG by hand: a go-redis client would log
// each refused connection while the server starts.
func (r *redisServer) ping() error {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("answer %q", line)
	}
	return nil
}

func (r *redisServer) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// kill stops redis-server at once (SIGKILL: no goodbye to its clients).
func (r *redisServer) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	proctest.Thaw(r.cmd.Process) // a frozen server dies too
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// freeze stops redis-server without closing its connections (SIGSTOP): a
// network partition, as its clients see it; thaw resumes it, data intact.
func (r *redisServer) freeze() { r.signal(proctest.Freeze) }
func (r *redisServer) thaw()   { r.signal(proctest.Thaw) }

func (r *redisServer) signal(f func(*os.Process) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		if err := f(r.cmd.Process); errors.Is(err, errors.ErrUnsupported) {
			r.t.Skip(err)
		} else if err != nil {
			r.t.Fatalf("redis-server: %v", err)
		}
	}
}

// client is a plain connection for the test to look into Redis.
func (r *redisServer) client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// outageTimeout is the operation timeout of the tests that take Redis
// away: a kill is seen at once (connection refused), a freeze after this.
// It is long enough that a Redis process that gets no CPU for a moment
// on a busy test machine is not taken for an outage, which would log one
// more "unreachable" and move counts to local counters.
const outageTimeout = 2 * time.Second

// newShared connects a replica to r; it is closed at the end of the test.
func newShared(t testing.TB, r *redisServer, opts Options) *Shared {
	t.Helper()
	opts.URL = r.URL
	if opts.Timeout == 0 {
		// Generous: a slow operation on a busy test machine would fall
		// back to local counters and make the counts inexact.
		opts.Timeout = 5 * time.Second
	}
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testKey returns a client key whose ID is unique to the test.
func testKey(t testing.TB, k access.Key) *access.Key {
	sum := sha256.Sum256([]byte(t.Name()))
	k.ID = hex.EncodeToString(sum[:6])
	k.Name = "key-" + k.ID
	return &k
}

// eventually polls cond until it holds or the wait is over.
func eventually(t testing.TB, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// jsonLogger logs at info level, as JSON, to w.
func jsonLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
