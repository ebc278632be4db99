package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/stats"
)

func TestStatsAndMetrics(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "fail") {
			w.WriteHeader(429)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: hello\n\n")
	}), nil)
	h2only := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), &providertest.Options{HTTP2Only: true})
	cfg := testConfig(t, map[string]string{"openai": fake.URL, "gemini": h2only.URL})
	cfg.AuthToken = testToken
	h := start(t, cfg)

	secretPrompt := "my secret prompt about project-x"
	for range 3 {
		h.do("POST", "/openai/v1/chat/completions?user=alice", http.Header{"Authorization": {"Bearer sk-abcdef"}}, `{"prompt":"`+secretPrompt+`"}`)
	}
	h.do("POST", "/openai/v1/fail", nil, "{}")
	h.do("POST", "/gemini/v1beta/models/x:generateContent?key=AIzaSyQ-querykey0123456789ab", nil, "{}")
	h.waitLog(5)

	// Auth: the token is needed, as a bearer credential or in the path.
	if status, _, _ := h.do("GET", "/stats", nil, ""); status != 401 {
		t.Errorf("/stats without token: %d", status)
	}
	if status, _, _ := h.do("GET", "/metrics", http.Header{"Authorization": {"Bearer wrong-token-000000000"}}, ""); status != 401 {
		t.Errorf("/metrics with a wrong token: %d", status)
	}
	status, _, body := h.do("GET", "/stats", http.Header{"Authorization": {"Bearer " + testToken}}, "")
	if status != 200 {
		t.Fatalf("/stats: %d %s", status, body)
	}
	var snap stats.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatal(err)
	}
	o := snap.Routes["openai"]
	if o.Requests != 4 || o.Responses["2xx"] != 3 || o.Responses["4xx"] != 1 || o.BytesOut < int64(3*len("data: hello\n\n")) || o.BytesIn == 0 {
		t.Errorf("openai stats: %+v", o.Counts)
	}
	if o.FirstByte.Samples != 4 || o.Total.Samples != 4 {
		t.Errorf("openai latencies: %+v %+v", o.FirstByte, o.Total)
	}
	if g := snap.Routes["gemini"]; g.Fallbacks["tls"] != 1 {
		t.Errorf("gemini fallbacks: %+v", g.Fallbacks)
	}

	status, _, metrics := h.do("GET", "/"+testToken+"/metrics", nil, "")
	if status != 200 {
		t.Fatalf("/<token>/metrics: %d", status)
	}
	for _, want := range []string{
		`llmproxy_requests_total{route="openai"} 4`,
		`llmproxy_responses_total{class="4xx",route="openai"} 1`,
		`llmproxy_fallbacks_total{reason="tls",route="gemini"} 1`,
		`llmproxy_first_byte_seconds_count{route="openai"} 4`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Neither holds a path beyond the preset, a query, a key, the token or prompt text.
	for _, leak := range []string{"chat/completions", "user=alice", "sk-abcdef", "AIzaSy", testToken, "secret prompt", "v1beta"} {
		if strings.Contains(body, leak) || strings.Contains(metrics, leak) {
			t.Errorf("stats or metrics hold %q", leak)
		}
	}
}

func TestStatsOpenWithoutToken(t *testing.T) {
	t.Parallel()
	h := start(t, testConfig(t, nil))
	if status, _, body := h.do("GET", "/stats", nil, ""); status != 200 || !strings.Contains(body, `"uptime_s"`) {
		t.Errorf("/stats: %d %s", status, body)
	}
	if status, _, _ := h.do("GET", "/metrics", nil, ""); status != 200 {
		t.Errorf("/metrics: %d", status)
	}
}

// A gateway provider's Gemini resumes count under the gateway's route, as
// its requests do — not under a route of the provider's name, which /stats
// does not have (and which may be a preset's).
func TestGatewayResumesCountUnderTheGateway(t *testing.T) {
	t.Parallel()
	fake := &providertest.Gemini{Answer: "a long enough answer to be cut and resumed by the proxy", Attempts: []providertest.GeminiAttempt{{Cut: 20, How: "eof"}}}
	up := providertest.NewServer(t, fake, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		cfg.Gemini.ResumeDelay = time.Millisecond
		mustAdd(t, cfg, config.Provider{Name: "google", Kind: "gemini", BaseURL: up.URL, Keys: []string{"env:GEMINI_1"}, Models: []string{"gemini-*"}})
	}))
	code, _, body := h.do(http.MethodPost, "/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
		http.Header{"X-Goog-Api-Key": {aliceKey}, "Content-Type": {"application/json"}}, userPrompt)
	if code != 200 {
		t.Fatalf("status %d %s", code, body)
	}
	if n := len(fake.Bodies()); n < 2 {
		t.Fatalf("%d upstream requests: no resume happened", n)
	}
	doc := statsOf(t, h)
	if r, ok := doc.Routes["google"]; ok {
		t.Errorf("/stats has a route named after the provider, with %d requests and %d resumes", r.Requests, r.GeminiResumes)
	}
	if n := doc.Routes["gateway"].GeminiResumes; n != 1 {
		t.Errorf("the gateway's route: %d resumes, want 1", n)
	}
}
