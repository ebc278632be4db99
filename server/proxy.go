package server

import (
	"log/slog"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"

	"github.com/llmproxy/llmproxy/privacy"
	"github.com/llmproxy/llmproxy/upstream"
)

// newReverseProxy returns the proxy for one route. The request that reaches
// it already carries the upstream URL (see forward); Rewrite applies the
// header policy, ModifyResponse the response policy, and every failure goes
// through proxyError.
func (s *Server) newReverseProxy(policy *privacy.Policy, defaults map[string]string, transport http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Host = "" // Host comes from the upstream URL
			// ReverseProxy drops query parameters it cannot parse; the
			// query must pass byte for byte.
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Header = policy.Outbound(pr.In.Header)
			for name, value := range defaults {
				if _, ok := pr.Out.Header[name]; !ok {
					pr.Out.Header[name] = []string{value}
				}
			}
		},
		Transport: transport,
		// Flush every write: SSE events and any body of unknown length must
		// reach the client the moment they arrive.
		FlushInterval: -1,
		BufferPool:    copyBuffers,
		ModifyResponse: func(resp *http.Response) error {
			privacy.CleanResponse(resp.Header, s.cfg.KeepSetCookie)
			if isEventStream(resp.Header.Get("Content-Type")) {
				// Tell nginx and similar fronts not to buffer the stream.
				resp.Header.Set("X-Accel-Buffering", "no")
			}
			return nil
		},
		ErrorHandler: s.proxyError,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

func isEventStream(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "text/event-stream"
}

// forward sends r to target through proxy. The request log line learns the
// transport and any fallback through the upstream report.
func (s *Server) forward(w *logWriter, r *http.Request, proxy *httputil.ReverseProxy, target *url.URL) {
	out := r.WithContext(upstream.WithReport(r.Context(), &w.report))
	out.URL = target
	proxy.ServeHTTP(w, out)
}

// proxyError answers a failed round trip. A client that left gets nothing
// (logged as 499).
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	f := s.classify(r.Context(), err)
	if lw, ok := w.(*logWriter); ok {
		lw.reason = f.reason
		lw.failed = f.status == http.StatusBadGateway || f.status == http.StatusGatewayTimeout
		if f.status == StatusClientClosed {
			lw.status = StatusClientClosed
		}
	}
	s.log.Debug("upstream request failed", "reason", f.reason, "error", err)
	if f.status == StatusClientClosed {
		return
	}
	s.cors.headers(w, r)
	writeError(w, f.status, f.typ, f.msg)
}

// copyBuffers recycles the buffers that carry response bodies. 8 KiB holds
// many SSE events while keeping an open stream small.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
