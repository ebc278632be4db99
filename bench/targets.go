package main

import (
	"bufio"
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
	proxy bool // a proxy process we can measure
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

// start runs a command with its output in a log file and waits until addr
// accepts connections.
func start(work, name, addr string, args ...string) *exec.Cmd {
	logf, err := os.Create(filepath.Join(work, name+".log"))
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
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
// the upstream.
func startLLMProxy(work, bin, name, transport, upstream, caFile string) *target {
	addr := freePort()
	cmd := start(work, name, addr, bin,
		"--listen", addr, "--transport", transport, "--log-format", "json",
		"--preset", "bench="+upstream, "--upstream-ca", caFile)
	return &target{name: name, base: "http://" + addr + "/bench", cmd: cmd, proxy: true}
}

// startHTTPUtil runs the minimal httputil.ReverseProxy (`bench httputil`).
func startHTTPUtil(work, self, upstream, caFile string) *target {
	addr := freePort()
	cmd := start(work, "httputil", addr, self, "httputil", "-addr", addr, "-upstream", upstream, "-ca", caFile)
	return &target{name: "httputil.ReverseProxy", base: "http://" + addr, cmd: cmd, proxy: true}
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
events { worker_connections 16384; }
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
// no buffering so that SSE streams), installing it first if it can.
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
	addr := freePort()
	conf := strings.NewReplacer("{{work}}", work, "{{upstream}}", upstreamAddr, "{{listen}}", addr, "{{ca}}", caFile).Replace(nginxConf)
	path := filepath.Join(work, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		log.Fatal(err)
	}
	cmd := start(work, "nginx", addr, bin, "-p", work, "-c", path)
	return &target{name: "nginx", base: "http://" + addr, cmd: cmd, note: nginxVersion(bin)}, ""
}

func nginxVersion(bin string) string {
	out, _ := exec.Command(bin, "-v").CombinedOutput()
	return strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
}

// rss returns a process's resident memory in bytes, from /proc.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
