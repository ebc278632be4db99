//go:build linux

package main

// The container image (../../Dockerfile) is the binary on a base that holds
// little more than the CA bundle. This machine cannot pull base images or
// run Docker, so this test builds the binary exactly as the Dockerfile does
// and runs it in an empty root holding only the binary and the CA bundle,
// as the image's non-root user, with the image's environment, entry point
// and health check.

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/providertest"
)

// nonroot is the uid and gid of distroless's nonroot user, the image's USER.
const nonroot = 65532

// systemBundle is where Debian (and distroless) keep the CA bundle, the
// first place Go's crypto/x509 looks on Linux.
const systemBundle = "/etc/ssl/certs/ca-certificates.crt"

// image is what the Dockerfile says about the binary and how it runs.
type image struct {
	ldflags     string            // the go build -ldflags, with ${VERSION}
	env         map[string]string // the final stage's ENV
	user        string
	entrypoint  []string
	healthcheck []string // HEALTHCHECK CMD
}

var ldflagsRE = regexp.MustCompile(`-ldflags "([^"]*)"`)

// readDockerfile reads the instructions the test mirrors, and fails when
// the build line no longer makes the static, path-free binary this test
// proves runs alone.
func readDockerfile(t *testing.T) image {
	t.Helper()
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continued lines; comment lines may sit inside a continuation.
	var instructions []string
	var cur strings.Builder
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			instructions = append(instructions, s)
		}
		cur.Reset()
	}
	img := image{env: map[string]string{}}
	var build string
	for _, ins := range instructions {
		keyword, rest, _ := strings.Cut(ins, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(keyword) {
		case "FROM": // only the final stage's settings are the image's
			img = image{env: map[string]string{}}
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					img.env[k] = v
				}
			}
		case "USER":
			img.user = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &img.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT must be the exec form (no shell in the image): %v", err)
			}
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, "CMD ")
			if !ok || json.Unmarshal([]byte(cmd), &img.healthcheck) != nil {
				t.Fatalf("HEALTHCHECK must be CMD in the exec form (no shell in the image): %s", rest)
			}
		}
	}
	if m := ldflagsRE.FindStringSubmatch(build); m != nil {
		img.ldflags = m[1]
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build -trimpath", "./cmd/llmproxy"} {
		if !strings.Contains(build, want) {
			t.Fatalf("the Dockerfile's build no longer has %q: %s", want, build)
		}
	}
	if !strings.Contains(img.ldflags, "-X main.version=${VERSION}") {
		t.Fatalf("the Dockerfile's -ldflags do not stamp the version: %q", img.ldflags)
	}
	if img.user != "nonroot:nonroot" && img.user != "65532:65532" {
		t.Fatalf("the image's USER is %q; this test runs as distroless's nonroot (%d)", img.user, nonroot)
	}
	if len(img.entrypoint) == 0 || len(img.healthcheck) == 0 || img.env["LLMPROXY_LISTEN"] == "" {
		t.Fatalf("the Dockerfile lacks an ENTRYPOINT, a HEALTHCHECK or LLMPROXY_LISTEN: %+v", img)
	}
	return img
}

// buildStatic builds the binary as the Dockerfile does, with stamp as its
// version, and checks that it is static, stripped and free of this
// machine's paths.
func buildStatic(t *testing.T, img image, stamp string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "llmproxy")
	ldflags := strings.ReplaceAll(img.ldflags, "${VERSION}", stamp)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it needs a dynamic loader or libraries", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary imports %v", libs)
	}
	if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
		t.Errorf("the binary has a symbol table (-s missing): %v", err)
	}
	if f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		t.Error("the binary has DWARF (-w missing)")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if src, err := filepath.Abs("../.."); err == nil && bytes.Contains(data, []byte(src+"/")) {
		t.Errorf("the binary holds the build machine's source path %s (-trimpath missing)", src)
	}
	return bin
}

// makeRoot lays out an otherwise empty root: the binary, the CA bundle,
// the files given, and the image's data directory owned by its user.
//
// The binary is linked into the root, not written: a file this process
// has open for writing is open in every child another test forks
// meanwhile, until that child's exec, and executing the file then fails
// with "text file busy" (ETXTBSY, golang.org/issue/22315). A copy is
// written only where the root is on another file system than bin.
func makeRoot(t *testing.T, bin string, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil { // TempDir is 0700: the user must get in
		t.Fatal(err)
	}
	if err := os.Link(bin, filepath.Join(root, "llmproxy")); err != nil {
		exe, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "llmproxy"), exe, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, nonroot, nonroot); err != nil {
		t.Fatal(err)
	}
	return root
}

// inRoot prepares argv to run chrooted into root as the image's user, with
// the image's environment (plus extra) and nothing of this process's.
func inRoot(ctx context.Context, root string, img image, extra map[string]string, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	for k, v := range img.env {
		if _, over := extra[k]; !over {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, envList(extra)...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot},
		Pdeathsig:  syscall.SIGKILL, // never outlive a test binary that died
	}
	return cmd
}

func envList(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// logWatch collects a server's log and reports the address it listens on.
type logWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
	sent bool
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "llmproxy listening" {
				w.addr <- strings.TrimPrefix(rec.Addr, "http://")
				w.sent = true
				break
			}
		}
	}
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestBinaryRunsInAnEmptyRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release binary; not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to chroot (CI runs as root): the binary was NOT checked in an empty root")
	}
	img := readDockerfile(t)
	const stamp = "v0.0.0-emptyroot"
	bin := buildStatic(t, img, stamp)

	hostBundle, err := os.ReadFile(systemBundle)
	if err != nil {
		t.Fatalf("the host's CA bundle (what the image ships at %s): %v", systemBundle, err)
	}
	ca := providertest.CA(t)
	testCA, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		root := makeRoot(t, bin, map[string][]byte{systemBundle: hostBundle})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := inRoot(ctx, root, img, nil, slices.Concat(img.entrypoint, []string{"version"})...).CombinedOutput()
		if err != nil {
			t.Fatalf("llmproxy version: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if lines[0] != "llmproxy "+stamp {
			t.Errorf("version line %q, want the stamp %q", lines[0], stamp)
		}
		if want := runtime.Version() + " linux/" + runtime.GOARCH; !strings.Contains(string(out), want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	})

	bundleWithTestCA := append(append([]byte{}, hostBundle...), testCA...)
	tests := []struct {
		name  string
		files map[string][]byte
		args  []string
		env   map[string]string
	}{
		// The system bundle, and the fake provider's CA given with
		// --upstream-ca.
		{"upstream CA file", map[string][]byte{systemBundle: hostBundle, "/ca.pem": testCA}, []string{"--upstream-ca", "/ca.pem"}, nil},
		// The bundle alone: the fake provider verifies only if the binary
		// finds the bundle where the image keeps it, as a real provider's
		// certificate would.
		{"CA bundle only", map[string][]byte{systemBundle: bundleWithTestCA}, nil, nil},
		// The admin panel on: its store is created in the image's /data
		// volume, by the image's user, with nothing else in the root (no
		// /tmp, no /proc).
		{"admin store in /data", map[string][]byte{systemBundle: bundleWithTestCA}, nil,
			map[string]string{"ADMIN_PASSWORD": "emptyroot-admin-password-0001"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := makeRoot(t, bin, tc.files)
			serveInRoot(t, img, root, tc.args, tc.env)
			if tc.env["ADMIN_PASSWORD"] != "" {
				checkStore(t, filepath.Join(root, "data"))
			}
		})
	}
}

// checkStore wants the admin store in dir, owned by the image's user and
// readable by no one else.
func checkStore(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatalf("the admin panel left nothing in %s", dir)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != nonroot {
			t.Errorf("%s is not owned by the image's user", e.Name())
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: others may read the store", e.Name(), info.Mode().Perm())
		}
	}
}

// serveInRoot runs the image's entry point as a server in root, asks it
// for its health the way the image's HEALTHCHECK does, relays one request
// through it to a fake provider over TLS, and stops it with SIGTERM.
func serveInRoot(t *testing.T, img image, root string, args []string, env map[string]string) {
	const key = "sk-emptyroot-provider-key-0001"
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "emptyroot", Keys: []string{key}}, nil)

	logs := &logWatch{addr: make(chan string, 1)}
	argv := slices.Concat(img.entrypoint, []string{"--listen", "127.0.0.1:0", "--log-format", "json",
		"--preset", "fake=" + fake.URL}, args)
	srv := inRoot(context.Background(), root, img, env, argv...)
	srv.Stdout, srv.Stderr = logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			srv.Process.Kill()
			<-exited
		}
	}()

	var addr string
	select {
	case addr = <-logs.addr:
	case err := <-exited:
		stopped = true
		t.Fatalf("llmproxy exited before listening: %v\n%s", err, logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("llmproxy did not listen:\n%s", logs)
	}

	// The HEALTHCHECK as the image runs it: no arguments, the address from
	// the environment. The image's 0.0.0.0 must be read as loopback.
	_, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	health := inRoot(ctx, root, img, map[string]string{"LLMPROXY_LISTEN": "0.0.0.0:" + port}, img.healthcheck...)
	health.Env = append(health.Env, envList(env)...)
	if out, err := health.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("health check: %v\n%s", err, out)
	}

	// One request through it, to the fake provider over verified TLS.
	client := &http.Client{Transport: &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/fake/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Hello from emptyroot")) {
		t.Errorf("proxied request: %d %s\nlogs:\n%s", resp.StatusCode, body, logs)
	}
	if got := fake.KeyRequests(key); got != 1 {
		t.Errorf("the fake provider saw the key %d times, want 1", got)
	}
	for _, r := range fake.Requests() {
		if r.Header.Get("X-Forwarded-For") != "" {
			t.Error("the client's address went upstream")
		}
	}

	if env["ADMIN_PASSWORD"] != "" {
		adminReq, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/admin", nil)
		resp, err := client.Do(adminReq)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
			t.Errorf("GET /admin: %d with the panel on\nlogs:\n%s", resp.StatusCode, logs)
		}
	}

	// SIGTERM, as docker stop and systemd send it: a clean exit, 0.
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("llmproxy did not stop on SIGTERM:\n%s", logs)
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", logs)
	}
}
