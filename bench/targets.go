package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// target is one way for a client to reach the upstream.
type target struct {
	name  string
	base  string // URL prefix the upstream's paths are appended to
	cmd   *exec.Cmd
	note  string
	proxy bool // a proxy process whose CPU and memory the harness measures

	// metrics is a URL serving the Go runtime's heap and stack bytes and
	// goroutines with the names of Prometheus's Go collector; "" when the
	// proxy is not a Go program (nginx).
	metrics string
	// headers are sent with every request of every test, over the
	// defaults: a gateway's client key in Authorization, say.
	headers map[string]string
	// chatOnly marks a target that serves only POST /v1/chat/completions
	// (a gateway routes by model): the SSE and idle-stream tests skip it.
	chatOnly bool
	// chatStream: the target streams through POST /v1/chat/completions
	// with "stream": true (the gateway: routed by model, metered) instead
	// of GET /sse; the idle-stream test skips it.
	chatStream bool
	// fresh starts a new instance of the same proxy; the idle-stream test
	// measures each count in one. nil: not part of that test.
	fresh func() *target
}

func (t *target) url(path string) string { return t.base + path }

// stop ends the target's process, if it has one.
func (t *target) stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	t.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.cmd.Process.Kill()
		<-done
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// pids are the target's processes: its own and its children (nginx's
// workers; the master holds no connection, so it adds nothing measurable).
func (t *target) pids() []int {
	if t.cmd == nil || t.cmd.Process == nil {
		return nil
	}
	return append([]int{t.cmd.Process.Pid}, children(t.cmd.Process.Pid)...)
}

// hostPath returns the host:port of the target and its URL path prefix.
func (t *target) hostPath() (host, path string) {
	u, err := url.Parse(t.base)
	if err != nil {
		log.Fatalf("%s: base %q: %v", t.name, t.base, err)
	}
	return u.Host, u.Path
}

// sseRequest asks t for a stream of n stamped events, gap apart.
func (t *target) sseRequest(n int, gap time.Duration) *http.Request {
	if t.chatStream {
		body := fmt.Sprintf(`{"model":"bench-1","stream":true,"messages":[{"role":"user","content":"Hello!"}],"bench_events":%d,"bench_gap":%q}`, n, gap)
		req := t.request("POST", "/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	return t.request("GET", fmt.Sprintf("/sse?n=%d&gap=%s", n, gap), nil)
}

// request builds a request to path on t with t's headers.
func (t *target) request(method, path string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, t.url(path), body)
	if err != nil {
		log.Fatal(err)
	}
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	return req
}

// start runs a command with its output in a log file and waits until addr
// accepts connections.
func start(work, name, addr string, args ...string) *exec.Cmd {
	return startEnv(work, name, addr, nil, args...)
}

// startEnv is start with variables added to the environment.
func startEnv(work, name, addr string, env []string, args ...string) *exec.Cmd {
	logf, err := os.Create(filepath.Join(work, name+".log"))
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		log.Fatalf("starting %s: %v", name, err)
	}
	waitListening(name, addr)
	return cmd
}

func waitListening(name, addr string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s did not start listening on %s", name, addr)
}

// startLLMProxy runs the built binary with one preset, "bench", pointing at
// the upstream; env adds "NAME=value" entries to its environment.
func startLLMProxy(work, bin, name, transport, upstream, caFile string, env ...string) *target {
	addr := freePort()
	cmd := startEnv(work, name, addr, env, bin,
		"--listen", addr, "--transport", transport, "--log-format", "json",
		"--preset", "bench="+upstream, "--upstream-ca", caFile)
	return &target{name: name, base: "http://" + addr + "/bench", cmd: cmd, proxy: true,
		metrics: "http://" + addr + "/metrics",
		fresh:   func() *target { return startLLMProxy(work, bin, name, transport, upstream, caFile, env...) }}
}

// startLLMProxyConfig runs the built binary with a configuration file and
// environment variables, for rows such as the gateway:
//
//	yaml: the file's contents, written to <work>/<name>.yaml and passed as
//	      --config (--listen and --log-format json are added on the command
//	      line, so the file need not set them);
//	env:  "NAME=value" entries added to the environment (provider keys);
//	path: the URL path prefix the upstream's paths go under: "" when the
//	      proxy answers /v1/chat/completions itself, "/bench" for a preset.
//
// The YAML must trust the fake upstream's test CA (upstream_ca: caFile) and
// point its providers at the upstream URL (base_url: upstream + "/v1").
// /metrics must answer without a token for the idle-stream test, as it does
// without --auth-token. Set the returned target's headers (the client key)
// and chatOnly (when only /v1/chat/completions is routed) before use.
// Add the row in main.go's list of targets, e.g.
//
//	{"llmproxy gateway", func() (*target, string) {
//		t := startLLMProxyConfig(work, bin, "llmproxy gateway", gatewayYAML(upstream, caFile), []string{"BENCH_KEY=sk-up"}, "")
//		t.headers = map[string]string{"Authorization": "Bearer sk-client-…"}
//		t.chatOnly = true
//		return t, ""
//	}},
func startLLMProxyConfig(work, bin, name, yaml string, env []string, path string) *target {
	file := filepath.Join(work, strings.ReplaceAll(name, " ", "-")+".yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		log.Fatal(err)
	}
	addr := freePort()
	cmd := startEnv(work, name, addr, env, bin, "--config", file, "--listen", addr, "--log-format", "json")
	t := &target{name: name, base: "http://" + addr + path, cmd: cmd, proxy: true, metrics: "http://" + addr + "/metrics"}
	t.fresh = func() *target {
		f := startLLMProxyConfig(work, bin, name, yaml, env, path)
		f.headers, f.chatOnly = t.headers, t.chatOnly
		return f
	}
	return t
}

// startHTTPUtil runs the minimal httputil.ReverseProxy (`bench httputil`).
func startHTTPUtil(work, self, upstream, caFile string) *target {
	addr := freePort()
	cmd := start(work, "httputil", addr, self, "httputil", "-addr", addr, "-upstream", upstream, "-ca", caFile)
	return &target{name: "httputil.ReverseProxy", base: "http://" + addr, cmd: cmd, proxy: true}
}

// startFloor runs the floor of our stack (`bench floor`, floor.go), with
// its runtime figures on a second port.
func startFloor(work, self, upstream, caFile string) *target {
	addr, maddr := freePort(), freePort()
	cmd := start(work, "floor", addr, self, "floor", "-addr", addr, "-metrics", maddr, "-upstream", upstream, "-ca", caFile)
	waitListening("floor metrics", maddr)
	return &target{name: "floor", base: "http://" + addr, cmd: cmd, proxy: true, metrics: "http://" + maddr + "/metrics",
		fresh: func() *target { return startFloor(work, self, upstream, caFile) }}
}

// runHTTPUtil is what most Go programs would write: NewSingleHostReverseProxy
// with net/http's default transport, trusting the test CA.
func runHTTPUtil(addr, upstream, caFile string) {
	u, err := url.Parse(upstream)
	if err != nil {
		log.Fatal(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr
	rp.FlushInterval = -1
	rp.ErrorLog = log.New(io.Discard, "", 0)
	log.Fatal(http.ListenAndServe(addr, rp))
}

const nginxConf = `worker_processes 2;
daemon off;
pid {{work}}/nginx.pid;
error_log {{work}}/nginx-error.log warn;
worker_rlimit_nofile {{nofile}};
events { worker_connections {{conns}}; }
http {
  access_log {{work}}/nginx-access.log;
  client_body_temp_path {{work}}/nginx-body;
  proxy_temp_path {{work}}/nginx-proxy;
  upstream provider {
    server {{upstream}};
    keepalive 64;
  }
  server {
    listen {{listen}};
    location / {
      proxy_pass https://provider;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host localhost;
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate {{ca}};
      proxy_ssl_session_reuse on;
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`

// startNginx runs nginx as a reverse proxy (two workers, upstream keep-alive,
// no buffering so that SSE streams), installing it first if it can. Each
// instance gets a directory of its own under work.
func startNginx(work, upstreamAddr, caFile string) (*target, string) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getuid() == 0 {
			log.Print("installing nginx (apt-get install nginx-light)")
			install := exec.Command("sh", "-c", "apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1)")
			install.Run()
		}
		if _, err := os.Stat(bin); err != nil {
			return nil, "nginx not installed and could not be installed: skipped"
		}
	}
	dir, err := os.MkdirTemp(work, "nginx-")
	if err != nil {
		log.Fatal(err)
	}
	// Each idle stream holds two connections (client and upstream), and one
	// worker may take most of them; nginx gets the open-file limit the
	// harness has, which os/exec otherwise resets to the original soft one.
	nofile := 2*min(maxStreams(), 30000) + 256
	addr := freePort()
	conf := strings.NewReplacer("{{work}}", dir, "{{upstream}}", upstreamAddr, "{{listen}}", addr, "{{ca}}", caFile,
		"{{nofile}}", strconv.Itoa(nofile), "{{conns}}", strconv.Itoa(nofile-128)).Replace(nginxConf)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		log.Fatal(err)
	}
	cmd := start(work, "nginx", addr, bin, "-p", dir, "-c", path)
	return &target{name: "nginx", base: "http://" + addr, cmd: cmd, note: nginxVersion(bin), proxy: true,
		fresh: func() *target { t, _ := startNginx(work, upstreamAddr, caFile); return t }}, ""
}

func nginxVersion(bin string) string {
	out, _ := exec.Command(bin, "-v").CombinedOutput()
	return strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
}
