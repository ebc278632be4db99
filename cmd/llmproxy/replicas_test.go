//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/internal/logbuf"
	"github.com/llmproxy/llmproxy/internal/proctest"
	"github.com/llmproxy/llmproxy/providertest"
)

// Three llmproxy processes sharing one redis-server, as the issue asks:
// a client key's rpm held across them under concurrent load; a provider
// key cooled on one skipped by the others; Redis killed mid-run without a
// lost request, and the fallback visible on /health; a replica killed
// with requests in flight frees its parallel slots.
func TestReplicasShareRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds llmproxy and runs three processes and a redis-server; not with -short")
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("LLMPROXY_REDIS_TESTS") != "" {
			t.Fatalf("LLMPROXY_REDIS_TESTS is set but redis-server is not installed: %v", err)
		}
		t.Skip("redis-server is not installed: replicas were NOT tested (set LLMPROXY_REDIS_TESTS=1 to make this a failure)")
	}
	bin := buildReplicaBinary(t)
	rds := startReplicaRedis(t, redisBin)

	alpha := providertest.NewOpenAI(t, &providertest.OpenAI{
		Name: "alpha",
		Keys: []string{replicaKey1, replicaKey2},
		Fault: func(fr providertest.FaultRequest) providertest.Fault {
			if fr.Key == replicaKey1 {
				return providertest.RateLimited("60")
			}
			return providertest.Fault{}
		},
	}, nil)
	long := make([]providertest.Delta, 200)
	for i := range long {
		long[i] = providertest.Text("word ")
	}
	slow := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "slow", Reply: long, ChunkDelay: 250 * time.Millisecond}, nil)

	// The lease of a parallel slot: short here, so that a dead replica's
	// slots free in seconds. Without the setting, the lease is 30s and
	// that part is skipped.
	slotTTL := ""
	if _, err := config.Parse([]byte("redis_slot_ttl: 2s\n")); err == nil {
		slotTTL = "redis_slot_ttl: 2s\n"
	}
	yaml := slotTTL + `auth_token: ` + replicaOperator + `
providers:
  alpha:
    base_url: ` + alpha.URL + `/v1
    keys: [` + replicaKey1 + `, ` + replicaKey2 + `]
  slow:
    base_url: ` + slow.URL + `/v1
    keys: [sk-replica-slow-key-000003]
models:
  m:
    targets: [{provider: alpha, model: gpt-4o-mini}]
  slow:
    targets: [{provider: slow, model: gpt-4o-mini}]
client_keys:
  - {name: limited, key: ck-replica-limited-000000001, rpm: 20}
  - {name: roomy, key: ck-replica-roomy-00000000002, rpm: 1000}
  - {name: parallel, key: ck-replica-parallel-0000003, max_parallel: 2}
  - {name: free, key: ck-replica-free-000000000004}
`
	var reps []*replicaProc
	for i := range 3 {
		reps = append(reps, startReplica(t, bin, i, yaml, rds.url))
	}
	for _, rp := range reps {
		rp.waitReady(t)
	}
	if _, ok := reps[0].health(t)["redis"]; !ok {
		t.Skip("--redis-url is not wired into serve yet (cmd/llmproxy/main.go): /health has no redis part")
	}
	client := &http.Client{}
	t.Cleanup(client.CloseIdleConnections)

	t.Run("a key cooled on one replica is skipped by the others", func(t *testing.T) {
		for range 4 {
			if alpha.KeyRequests(replicaKey1) > 0 {
				break
			}
			if code, body := reps[0].chat(t, client, "ck-replica-free-000000000004", "m"); code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
		}
		if alpha.KeyRequests(replicaKey1) != 1 {
			t.Fatalf("the provider saw key 1 %d times, want the one 429", alpha.KeyRequests(replicaKey1))
		}
		for _, rp := range reps[1:] {
			eventuallyWithin(t, 5*time.Second, fmt.Sprintf("replica %d does not show key 1 cooling", rp.n), func() bool {
				return rp.keyState(t, "alpha", replicaKey1) == "cooling"
			})
		}
		for _, rp := range reps[1:] {
			for range 4 { // each would rotate onto key 1 twice
				if code, body := rp.chat(t, client, "ck-replica-free-000000000004", "m"); code != http.StatusOK {
					t.Fatalf("replica %d: status %d: %s", rp.n, code, body)
				}
			}
		}
		if n := alpha.KeyRequests(replicaKey1); n != 1 {
			t.Errorf("the provider saw key 1 %d times, want no request after the 429 on replica 0", n)
		}
	})

	t.Run("rpm held across replicas under concurrent load", func(t *testing.T) {
		const n, rpm = 60, 20
		codes := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				codes[i], _ = reps[i%3].chat(t, client, "ck-replica-limited-000000001", "m")
			})
		}
		close(start)
		wg.Wait()
		ok, limited := 0, 0
		for _, c := range codes {
			switch c {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Errorf("status %d", c)
			}
		}
		t.Logf("%d requests at once over 3 replicas, rpm %d: %d admitted, %d refused", n, rpm, ok, limited)
		if ok < rpm-1 || ok > rpm+1 || ok+limited != n {
			t.Errorf("admitted %d, refused %d; want %d ± 1 admitted (the issue's bar)", ok, limited, rpm)
		}
	})

	t.Run("redis killed mid-run loses no request", func(t *testing.T) {
		const perReplica = 20
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed []string
		sent := make(chan struct{}, 3*perReplica)
		for _, rp := range reps {
			wg.Go(func() {
				for range perReplica {
					code, body := rp.chat(t, client, "ck-replica-roomy-00000000002", "m")
					if code != http.StatusOK {
						mu.Lock()
						failed = append(failed, fmt.Sprintf("replica %d: %d %s", rp.n, code, body))
						mu.Unlock()
					}
					sent <- struct{}{}
				}
			})
		}
		for range 10 {
			<-sent
		}
		// The lines are looked for from here on: a Redis that a busy
		// machine held up past the timeout earlier logged a fallback and
		// a return of its own.
		before := make([]int, len(reps))
		for i, rp := range reps {
			before[i] = len(rp.logs.String())
		}
		rds.kill()
		wg.Wait()
		if len(failed) > 0 {
			t.Errorf("%d of %d requests failed with Redis killed:\n%s", len(failed), 3*perReplica, strings.Join(failed, "\n"))
		}
		for i, rp := range reps {
			eventuallyWithin(t, 5*time.Second, fmt.Sprintf("replica %d's /health is not degraded", rp.n), func() bool {
				h := rp.health(t)
				return h["status"] == "degraded" && h["redis"] == "unreachable: serving on local counters"
			})
			// The log is written in batches (logsink.go).
			eventuallyWithin(t, 5*time.Second, fmt.Sprintf("replica %d does not log the fallback", rp.n), func() bool {
				return strings.Count(rp.logs.String()[before[i]:], "redis unreachable") == 1
			})
			before[i] = len(rp.logs.String())
		}
		rds.start(t)
		for i, rp := range reps {
			eventuallyWithin(t, 10*time.Second, fmt.Sprintf("replica %d is not back on Redis", rp.n), func() bool {
				h := rp.health(t)
				return h["status"] == "ok" && h["redis"] == "up"
			})
			eventuallyWithin(t, 5*time.Second, fmt.Sprintf("replica %d does not log its return", rp.n), func() bool {
				return strings.Count(rp.logs.String()[before[i]:], "redis is back") == 1
			})
		}
	})

	t.Run("a replica killed with requests in flight frees its slots", func(t *testing.T) {
		if slotTTL == "" {
			t.Skip("no redis_slot_ttl setting yet: with the 30s default lease this would take half a minute")
		}
		const key = "ck-replica-parallel-0000003"
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := range 2 {
			if code, _ := reps[0].openStream(ctx, t, client, key); code != http.StatusOK {
				t.Fatalf("stream %d on replica 0: status %d", i, code)
			}
		}
		if code, _ := reps[1].openStream(ctx, t, client, key); code != http.StatusTooManyRequests {
			t.Fatalf("a third stream on replica 1: status %d, want 429 (max_parallel 2 across replicas)", code)
		}
		reps[0].kill(t) // SIGKILL: no Done, no renewal
		// Both slots come back on another replica once the dead one's
		// leases run out.
		for i := range 2 {
			eventuallyWithin(t, 10*time.Second, fmt.Sprintf("slot %d of the dead replica is not free", i), func() bool {
				code, _ := reps[1].openStream(ctx, t, client, key)
				return code == http.StatusOK
			})
		}
		if code, _ := reps[2].openStream(ctx, t, client, key); code != http.StatusTooManyRequests {
			t.Errorf("a third stream on replica 2: status %d, want 429 (the two slots are replica 1's now)", code)
		}
	})
}

const (
	replicaOperator = "op-replica-token-0123456789abcdef0123456789abcdef"
	replicaKey1     = "sk-replica-alpha-key-000001"
	replicaKey2     = "sk-replica-alpha-key-000002"
)

// buildReplicaBinary builds llmproxy once for the test.
func buildReplicaBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "llmproxy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// replicaRedis is a redis-server the test kills and starts again on the
// same port.
type replicaRedis struct {
	bin  string
	port int
	url  string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startReplicaRedis(t *testing.T, bin string) *replicaRedis {
	r := &replicaRedis{bin: bin, port: freeLoopbackPort(t)}
	r.url = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	r.start(t)
	t.Cleanup(r.kill)
	return r
}

func (r *replicaRedis) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--save", "", "--appendonly", "no",
		"--bind", "127.0.0.1", "--protected-mode", "no")
	proctest.Prepare(cmd, nil)
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	eventuallyWithin(t, 10*time.Second, "redis-server does not answer", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		c.Write([]byte("PING\r\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line == "+PONG\r\n"
	})
}

func (r *replicaRedis) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// replicaProc is one llmproxy process.
type replicaProc struct {
	n    int
	addr string
	cmd  *exec.Cmd
	logs *logbuf.Buffer
	once sync.Once
}

func startReplica(t *testing.T, bin string, n int, yaml, redisURL string) *replicaProc {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "llmproxy.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	rp := &replicaProc{n: n, addr: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), logs: &logbuf.Buffer{}}
	rp.cmd = exec.Command(bin, "--config", file, "--listen", rp.addr, "--redis-url", redisURL,
		"--upstream-ca", providertest.CA(t).CAFile, "--log-format", "json")
	rp.cmd.Dir = dir
	rp.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	rp.cmd.Stdout, rp.cmd.Stderr = rp.logs, rp.logs
	proctest.Prepare(rp.cmd, nil)
	if err := rp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rp.kill(t)
		if t.Failed() {
			t.Logf("replica %d's log:\n%s", n, rp.logs.String())
		}
	})
	return rp
}

func (rp *replicaProc) kill(t *testing.T) {
	rp.once.Do(func() {
		rp.cmd.Process.Kill()
		rp.cmd.Wait()
	})
}

func (rp *replicaProc) waitReady(t *testing.T) {
	t.Helper()
	eventuallyWithin(t, 15*time.Second, fmt.Sprintf("replica %d does not answer /health", rp.n), func() bool {
		resp, err := http.Get("http://" + rp.addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (rp *replicaProc) health(t *testing.T) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + rp.addr + "/health")
	if err != nil {
		t.Fatalf("replica %d /health: %v", rp.n, err)
	}
	defer resp.Body.Close()
	var h map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("replica %d /health: %v", rp.n, err)
	}
	return h
}

// keyState is a provider key's state as the replica's /stats shows it.
func (rp *replicaProc) keyState(t *testing.T, provider, secret string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+rp.addr+"/stats", nil)
	req.Header.Set("Authorization", "Bearer "+replicaOperator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("replica %d /stats: %v", rp.n, err)
	}
	defer resp.Body.Close()
	var doc struct {
		Providers []struct {
			Name string `json:"name"`
			Keys []struct {
				Masked string `json:"masked"`
				State  string `json:"state"`
			} `json:"keys"`
		} `json:"providers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("replica %d /stats: %v", rp.n, err)
	}
	for _, p := range doc.Providers {
		for _, k := range p.Keys {
			if p.Name == provider && strings.HasSuffix(k.Masked, secret[len(secret)-4:]) {
				return k.State
			}
		}
	}
	t.Fatalf("replica %d /stats has no key …%s of %s", rp.n, secret[len(secret)-4:], provider)
	return ""
}

// chat sends one Chat Completions request and returns the status and body.
func (rp *replicaProc) chat(t *testing.T, client *http.Client, key, model string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+rp.addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// openStream starts a streaming request to the slow provider and leaves
// it running (until ctx ends) when it is admitted.
func (rp *replicaProc) openStream(ctx context.Context, t *testing.T, client *http.Client, key string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+rp.addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	if resp.StatusCode == http.StatusOK {
		go func() { // drain until the request is cancelled or its replica dies
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
		return resp.StatusCode, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
