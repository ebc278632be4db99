package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/internal/logbuf"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/providertest"
)

// genai (a test client) pulls in opencensus, which starts a worker at init.
func TestMain(m *testing.M) {
	leaktest.Main(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

const testToken = "test-token-5f3a9c1e7b2d4a68"

// harness is a running llmproxy on a loopback port.
type harness struct {
	t      *testing.T
	URL    string // http://127.0.0.1:port
	Addr   string
	srv    *Server
	logs   *logbuf.Buffer
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// testConfig returns a configuration trusting the fake providers' CA, with
// presets pointed at the given upstreams (name → base URL).
func testConfig(t testing.TB, presets map[string]string) *config.Config {
	cfg := config.Default()
	cfg.UpstreamCA = providertest.CA(t).CAFile
	cfg.Presets = make(map[string]preset.Override)
	for name, url := range presets {
		cfg.Presets[name] = preset.Override{URL: url}
	}
	return cfg
}

// testConfigTB points the openai preset at one upstream.
func testConfigTB(t testing.TB, openai string) *config.Config {
	return testConfig(t, map[string]string{"openai": openai})
}

// start runs a server with cfg and logs at debug level into a buffer.
func start(t *testing.T, cfg *config.Config, opts ...func(*Options)) *harness {
	t.Helper()
	logs := &logbuf.Buffer{}
	o := Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Version: "test"}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{
		t: t, URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), srv: srv, logs: logs,
		client: &http.Client{Transport: &http.Transport{}}, cancel: cancel, done: make(chan error, 1),
	}
	go func() { h.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.client.CloseIdleConnections()
	h.cancel()
	if !h.served() {
		h.t.Error("Serve did not return within 10s of shutdown")
	}
}

// served waits up to 10s for Serve to return once a shutdown began and
// reports whether it did; Serve returning an error fails the test.
func (h *harness) served() bool {
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Serve returned %v", err)
		}
		h.done <- nil // for stop, which runs last
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// do sends a request through the proxy and returns status, headers, body.
func (h *harness) do(method, path string, header http.Header, body string) (int, http.Header, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// raw sends bytes as they are on a new connection and parses the response.
func (h *harness) raw(request string) (*http.Response, string) {
	h.t.Helper()
	conn, err := net.Dial("tcp", h.Addr)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		h.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		h.t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// waitLog waits until the log holds n "request" lines (they are written
// when the handler returns, which may be after the client got its answer)
// and returns the whole log.
func (h *harness) waitLog(n int) string {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := h.logs.String()
		if strings.Count(logs, `"msg":"request"`) >= n || time.Now().After(deadline) {
			return logs
		}
		time.Sleep(5 * time.Millisecond)
	}
}
