package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/internal/logbuf"
	"github.com/llmproxy/llmproxy/internal/proctest"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/store"
)

// Issue 12: "a panel change on one replica is served by another within a
// second". Two llmproxy processes share one PostgreSQL (--database-url);
// a change written to the store as the panel writes it — a provider with
// a literal key, a model route, a client key — is served by both, the
// other replica learning of it through LISTEN/NOTIFY (store.Watch) and
// applying it by the same snapshot swap as the panel's Apply.
func TestReplicasShareTheStoreOnPostgres(t *testing.T) {
	dbURL, dbPassword := startPGServer(t)
	bin := filepath.Join(t.TempDir(), "llmproxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const providerKey = "sk-replica-provider-key-0001"
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "replica", Keys: []string{providerKey}}, nil)
	secretKey := make([]byte, 32)
	for i := range secretKey {
		secretKey[i] = byte(i*11 + 5)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), EnvSecretKey + "=" + hex.EncodeToString(secretKey)}
	args := []string{"--listen", "127.0.0.1:0", "--log-format", "json", "--database-url", dbURL,
		"--admin-password", "replica-admin-pass-8c1e", "--upstream-ca", providertest.CA(t).CAFile}
	// Started together: both migrate the new database at once.
	a, b := startPGReplica(t, "A", bin, env, args), startPGReplica(t, "B", bin, env, args)
	a.waitListening(t)
	b.waitListening(t)

	const clientSecret = "ck-replica-client-key-000000001"
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	ask := func(r *pgReplica) int {
		req, _ := http.NewRequest("POST", "http://"+r.addr+"/v1/chat/completions",
			strings.NewReader(`{"model":"replica-model","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+clientSecret)
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, r := range []*pgReplica{a, b} {
		if code := ask(r); code == http.StatusOK {
			t.Fatalf("replica %s serves the model before it exists", r.name)
		}
	}

	// What the panel on replica A does: one Change in the shared store.
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DatabaseURL: dbURL, SecretKey: secretKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var keyID int64
	if err := st.Change(ctx, "admin", func(tx *store.Tx) error {
		if err := tx.PutProvider(store.Provider{Name: "replica-p", BaseURL: fake.URL + "/v1",
			Keys: []store.ProviderKey{{Name: "main", Secret: providerKey}}}); err != nil {
			return err
		}
		if err := tx.PutModel(store.Model{Name: "replica-model", Targets: []config.Target{{Provider: "replica-p", Model: "gpt-4o-mini"}}}); err != nil {
			return err
		}
		keyID, err = tx.CreateClientKey(store.ClientKey{Name: "replica-client", Digest: access.Digest(clientSecret)})
		if err != nil {
			return err
		}
		return tx.Audit("test", "replicas", "")
	}); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	pgEventually(t, b, "replica B to serve the new model", func() bool { return ask(b) == http.StatusOK })
	t.Logf("replica B served the change %v after the commit (the latency includes this test's 10ms polling)", time.Since(committed).Round(time.Millisecond))
	pgEventually(t, a, "replica A to serve the new model", func() bool { return ask(a) == http.StatusOK })
	if n := fake.KeyRequests(providerKey); n < 2 {
		t.Errorf("the provider saw its key %d times, want a request from each replica", n)
	}

	// A removal travels the same way: the revoked key is refused.
	if err := st.Change(ctx, "admin", func(tx *store.Tx) error { return tx.RevokeClientKey(keyID) }); err != nil {
		t.Fatal(err)
	}
	pgEventually(t, b, "replica B to refuse the revoked key", func() bool { return ask(b) == http.StatusUnauthorized })

	for _, r := range []*pgReplica{a, b} {
		logs := r.logs.String()
		for _, secret := range []string{dbPassword, providerKey, clientSecret} {
			if strings.Contains(logs, secret) {
				t.Errorf("replica %s logged a secret (%.6s…):\n%s", r.name, secret, logs)
			}
		}
	}
}

func pgEventually(t *testing.T, r *pgReplica, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (is --database-url wired to store.Options.DatabaseURL, and st.Watch to the snapshot swap?); the end of replica %s's log:\n%s",
				what, r.name, pgLogTail(r.logs.String(), 30))
		}
	}
}

// pgLogTail is the last n lines of a log.
func pgLogTail(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// pgReplica is an llmproxy process.
type pgReplica struct {
	name string
	cmd  *exec.Cmd
	logs *logbuf.Buffer
	exit chan error
	addr string
}

func startPGReplica(t *testing.T, name, bin string, env, args []string) *pgReplica {
	t.Helper()
	r := &pgReplica{name: name, logs: &logbuf.Buffer{}, exit: make(chan error, 1)}
	// Each its own data dir and working dir: nothing of the store may
	// end up in a file when it lives in PostgreSQL.
	r.cmd = exec.Command(bin, append(slices.Clone(args), "--data-dir", t.TempDir())...)
	r.cmd.Dir = t.TempDir()
	r.cmd.Env = env
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	proctest.Prepare(r.cmd, nil)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exit <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exit:
		case <-time.After(15 * time.Second):
			r.cmd.Process.Kill()
			<-r.exit
			t.Errorf("replica %s did not stop on SIGTERM", r.name)
		}
	})
	return r
}

// waitListening reads the address from the "llmproxy listening" log line.
func (r *pgReplica) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.addr == "" {
		sc := bufio.NewScanner(strings.NewReader(r.logs.String()))
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "llmproxy listening" {
				r.addr = strings.TrimPrefix(rec.Addr, "http://")
			}
		}
		select {
		case err := <-r.exit:
			t.Fatalf("replica %s exited (%v):\n%s", r.name, err, r.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s is not listening after 30s:\n%s", r.name, r.logs.String())
		}
	}
}

// startPGServer runs a PostgreSQL server for the test from the Debian
// package's binaries and returns a new database's URL and its password.
// (store/pgtest_test.go's, trimmed: a _test file cannot be imported.) Without the binaries the test skips, unless
// LLMPROXY_PG_TESTS is set (CI), then it fails.
func startPGServer(t *testing.T) (dbURL, password string) {
	t.Helper()
	bin, err := proctest.PostgresBinDir()
	if err != nil {
		if os.Getenv("LLMPROXY_PG_TESTS") == "" {
			t.Skipf("%v; set LLMPROXY_PG_TESTS=1 to make this a failure", err)
		}
		t.Fatalf("%v and LLMPROXY_PG_TESTS is set", err)
	}
	// PostgreSQL refuses to run as root: as root (CI), run it as the
	// postgres user that the package creates.
	pgUser, err := proctest.PostgresUser()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("", "llmproxy-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	password = "pg-replica-Pass-41d2"
	pwfile := filepath.Join(base, "pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := proctest.Chown(pgUser, base, pwfile); err != nil {
		t.Fatal(err)
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(base, "data"), "-U", "llmproxy", "--pwfile", pwfile,
		"--auth-local", "trust", "--auth-host", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = base
	proctest.Prepare(initdb, pgUser)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	logs := &logbuf.Buffer{}
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(base, "data"), "-p", port, "-k", base,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off")
	srv.Dir = base
	srv.Stdout, srv.Stderr = logs, logs
	proctest.Prepare(srv, pgUser)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-exited
		}
	})
	u := url.URL{Scheme: "postgres", User: url.UserPassword("llmproxy", password), Host: "127.0.0.1:" + port,
		Path: "/postgres", RawQuery: "sslmode=disable"}
	// Ready when it accepts a connection; then a database for the
	// replicas.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			_, err = conn.Exec(ctx, "CREATE DATABASE replicas")
			conn.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("postgres exited (%v):\n%s", err, logs.String())
		case <-ctx.Done():
			t.Fatalf("postgres does not accept connections after 30s: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	u.Path = "/replicas"
	return u.String(), password
}
