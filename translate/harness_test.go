package translate

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/replay"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestMain(m *testing.M) { leaktest.Main(m) }

// fixedOptions gives deterministic ids (prefix and a counter) and a fixed
// clock, so that two runs of one answer are byte for byte the same.
func fixedOptions() Options {
	var n atomic.Int64
	return Options{
		NewID: func(prefix string) string { return fmt.Sprintf("%s%04d", prefix, n.Add(1)) },
		Now:   func() time.Time { return time.Unix(1767225600, 0) },
	}
}

// upstreamTransport trusts the fake providers' CA.
func upstreamTransport(t testing.TB) *http.Transport {
	tr := &http.Transport{TLSClientConfig: providertest.CA(t).ClientTLS(), ForceAttemptHTTP2: false}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// proxy stands in for the gateway: it serves /v1/… over TLS, sends every
// request through a Transport to the provider at base, and streams the
// answer back chunk by chunk. A Read error after the answer started aborts
// the client's connection, as the real forwarder does.
type proxy struct {
	*httptest.Server
	tr *Transport
}

func newProxy(t testing.TB, base string, opts Options) *proxy {
	t.Helper()
	p := &proxy{tr: &Transport{Next: upstreamTransport(t), Options: opts}}
	p.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, base+strings.TrimPrefix(r.URL.Path, "/v1"), r.Body)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		for _, k := range []string{"Authorization", "Content-Type", "Accept", "OpenAI-Beta"} {
			if v := r.Header.Values(k); len(v) > 0 {
				out.Header[k] = v
			}
		}
		out.ContentLength = r.ContentLength
		if _, err := replay.Buffer(out, 1<<20); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		resp, err := p.tr.RoundTrip(out)
		if err != nil {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		rc := http.NewResponseController(w)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				rc.Flush()
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				panic(http.ErrAbortHandler) // never a made-up end
			}
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) client(t testing.TB) openai.Client {
	c := p.Client()
	t.Cleanup(c.CloseIdleConnections)
	return openai.NewClient(
		option.WithBaseURL(p.URL+"/v1/"),
		option.WithAPIKey("sk-test-key"),
		option.WithHTTPClient(c),
		option.WithMaxRetries(0),
	)
}

// fake starts a chat-only provider (no Responses API) answering with o.
func fake(t testing.TB, o providertest.OpenAI) *providertest.OpenAIServer {
	t.Helper()
	o.Name = "glm"
	return providertest.NewOpenAI(t, &o, nil)
}

// setup is a fake provider with a proxy in front.
func setup(t testing.TB, o providertest.OpenAI, opts Options) (*providertest.OpenAIServer, *proxy, openai.Client) {
	t.Helper()
	up := fake(t, o)
	p := newProxy(t, strings.TrimSuffix(up.BaseURL(), "/"), opts)
	return up, p, p.client(t)
}

// chatBody is the part of a Chat Completions request the tests look at.
type chatBody struct {
	Model    string `json:"model"`
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat json.RawMessage `json:"response_format"`
	Tools          json.RawMessage `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	MaxTokens      json.RawMessage `json:"max_tokens"`
	Temperature    json.RawMessage `json:"temperature"`
	Reasoning      json.RawMessage `json:"reasoning_effort"`
}

// received returns what the fake received, each body decoded.
func received(t testing.TB, up *providertest.OpenAIServer) ([]providertest.Request, []chatBody) {
	t.Helper()
	reqs := up.Requests()
	bodies := make([]chatBody, len(reqs))
	for i, r := range reqs {
		if err := json.Unmarshal(r.Body, &bodies[i]); err != nil {
			t.Fatalf("request %d is not JSON: %v: %s", i, err, r.Body)
		}
	}
	return reqs, bodies
}

// apiError unwraps the SDK's error for a non-2xx answer.
func sdkError(t testing.TB, err error) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an API error", err, err)
	}
	return e
}

func str(raw json.RawMessage) string {
	var s string
	json.Unmarshal(raw, &s)
	return s
}
