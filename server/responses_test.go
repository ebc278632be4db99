package server

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/stats"
)

// Seed 002's whole point: one Responses API in front of OpenAI (native)
// and GLM (Chat Completions only), with failover from one kind to the
// other; usage counted from the Responses answer either way.
func TestGatewayResponsesAcrossNativeAndTranslated(t *testing.T) {
	t.Parallel()
	native := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "native", NativeResponses: true,
		Fault: providertest.Sequence(providertest.Status(500), providertest.Status(500))}, nil)
	glm := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "glm", BasePath: "/api/paas/v4",
		Reply: []providertest.Delta{providertest.Reasoning("思考"), providertest.Text("GLM "), providertest.Text("answers")}}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "openai", BaseURL: native.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}, Responses: "native"},
			config.Provider{Name: "zhipu", BaseURL: glm.URL + "/api/paas/v4", Keys: []string{"env:BETA_KEY_1"}},
			config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "openai", Model: "gpt-4.1"}, {Provider: "zhipu", Model: "glm-4.7"}}})
	}))
	client := openaiClient(h, aliceKey)
	params := responses.ResponseNewParams{Model: "super-brain",
		Instructions: openai.String("You are helpful."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("请介绍一下 GPT-4o。")}}

	// The native provider fails (500): the translated one answers.
	resp, err := client.Responses.New(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "GLM answers" || !strings.HasPrefix(resp.ID, "resp_") {
		t.Errorf("translated answer %q (id %s)", resp.OutputText(), resp.ID)
	}
	gr := glm.Requests()
	if len(gr) != 1 || gr[0].URI != "/api/paas/v4/chat/completions" || !strings.Contains(string(gr[0].Body), `"model":"glm-4.7"`) ||
		!strings.Contains(string(gr[0].Body), `"role":"system"`) {
		t.Errorf("the translated provider got %+v", gr)
	}
	// Streaming, also translated.
	stream := client.Responses.NewStreaming(t.Context(), params)
	var text strings.Builder
	completed := false
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			completed = true
		}
	}
	if err := stream.Err(); err != nil || !completed || text.String() != "GLM answers" {
		t.Errorf("translated stream: %v completed=%v text=%q", err, completed, text.String())
	}
	// Now the native provider answers (its fault script is used up) and
	// the request is relayed as it is.
	resp, err = client.Responses.New(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	nr := native.Requests()
	if last := nr[len(nr)-1]; last.URI != "/v1/responses" || !strings.Contains(string(last.Body), `"model":"gpt-4.1"`) {
		t.Errorf("native request %s %s", last.URI, last.Body)
	}
	if resp.OutputText() == "" {
		t.Error("no answer from the native provider")
	}
	// Usage counted from the Responses shape for both.
	usageRow(t, h, func(u stats.UsageRow) bool { return u.Provider == "zhipu" && u.Requests == 2 && u.OutputTokens > 0 })
	usageRow(t, h, func(u stats.UsageRow) bool { return u.Provider == "openai" && u.Requests == 1 && u.OutputTokens > 0 })

	// previous_response_id cannot be honoured on a translated provider
	// without the memory store: a 400 that says so.
	params.PreviousResponseID = openai.String(resp.ID)
	only := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "zhipu", BaseURL: glm.URL + "/api/paas/v4", Keys: []string{"env:BETA_KEY_1"}},
			config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "zhipu", Model: "glm-4.7"}}})
	}))
	onlyClient := openaiClient(only, aliceKey)
	_, err = onlyClient.Responses.New(t.Context(), params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "previous_response_id" {
		t.Errorf("previous_response_id: %v", err)
	}
}

// An upstream's own X-Proxy-Error never reaches the client: the marker
// means llmproxy.
func TestUpstreamMarkerIsDropped(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Fault: func(providertest.FaultRequest) providertest.Fault {
		return providertest.ContextLengthExceeded().WithHeader("X-Proxy-Error", "true")
	}}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg, config.Provider{Name: "alpha", BaseURL: fake.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}, Models: []string{"*"}})
	}))
	code, hdr, _ := chat(h, aliceKey, "gpt-4o-mini")
	if code != 400 || hdr.Get("X-Proxy-Error") != "" {
		t.Errorf("gateway: %d X-Proxy-Error=%q", code, hdr.Get("X-Proxy-Error"))
	}
	h2 := start(t, testConfigTB(t, fake.URL))
	code, hdr, _ = h2.do("POST", "/openai/v1/chat/completions", http.Header{"Authorization": {"Bearer sk-own"}}, `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if code != 400 || hdr.Get("X-Proxy-Error") != "" {
		t.Errorf("preset: %d X-Proxy-Error=%q", code, hdr.Get("X-Proxy-Error"))
	}
}

// A translated Responses stream announces the response (response.created)
// with the provider's first event, not before it: a provider that answers
// 200 and breaks before its first byte has shown the client nothing, so
// the gateway fails over and the client gets the next provider's whole
// answer — as for a native stream.
func TestTranslatedResponsesStreamFailsOverBeforeTheFirstByte(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "alpha",
		Fault: func(providertest.FaultRequest) providertest.Fault { return providertest.CutBeforeFirstByte() }}, nil)
	beta := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "beta",
		Reply: []providertest.Delta{providertest.Text("from "), providertest.Text("beta")}}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}, Responses: "translate"},
			config.Provider{Name: "beta", BaseURL: beta.URL + "/v1", Keys: []string{"env:BETA_KEY_1"}, Responses: "translate"},
			config.Model{Name: "super-brain", Strategy: "fallback",
				Targets: []config.Target{{Provider: "alpha", Model: "a-model"}, {Provider: "beta", Model: "b-model"}}})
	}))
	client := openaiClient(h, aliceKey)
	stream := client.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{Model: "super-brain",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	var text strings.Builder
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
	}
	if err := stream.Err(); err != nil || text.String() != "from beta" {
		t.Errorf("stream error %v, text %q, events %v; want beta's whole answer after a failover", err, text.String(), types)
	}
	if len(types) == 0 || types[0] != "response.created" || types[len(types)-1] != "response.completed" {
		t.Errorf("events %v: one announcement, one end", types)
	}
	if a, b := len(alpha.Requests()), len(beta.Requests()); a != 1 || b != 1 {
		t.Errorf("requests: alpha %d, beta %d; want one each", a, b)
	}
}

// With responses.store: memory, a translated response is read back (GET
// /v1/responses/{id}), deleted (DELETE) and continued
// (previous_response_id) by the client key that made it only: to another
// key it is unknown, with the same answer as an id never stored.
func TestGatewayStoredResponsesArePerCaller(t *testing.T) {
	t.Parallel()
	glm := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "glm", BasePath: "/api/paas/v4"}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		cfg.Responses.Store = "memory"
		mustAdd(t, cfg,
			config.Provider{Name: "zhipu", BaseURL: glm.URL + "/api/paas/v4", Keys: []string{"env:BETA_KEY_1"}},
			config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "zhipu", Model: "glm-4.7"}}})
	}))
	alice, bob := openaiClient(h, aliceKey), openaiClient(h, bobKey)
	ctx := t.Context()
	params := responses.ResponseNewParams{Model: "super-brain",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("My secret is 1234.")}}
	made, err := alice.Responses.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}

	got, err := alice.Responses.Get(ctx, made.ID, responses.ResponseGetParams{})
	if err != nil || got.ID != made.ID || got.OutputText() != made.OutputText() || got.Status != "completed" {
		t.Fatalf("alice reads her own: %v %+v", err, got)
	}

	// To bob it is not there: the same 404 as an id never stored.
	notFound := func(err error, id string) string {
		t.Helper()
		var e *openai.Error
		if !errors.As(err, &e) || e.StatusCode != 404 {
			t.Fatalf("%s: %v, want 404", id, err)
		}
		return strings.ReplaceAll(e.Type+" "+e.Code+" "+e.Param+" "+e.Message, id, "ID")
	}
	_, err = bob.Responses.Get(ctx, made.ID, responses.ResponseGetParams{})
	foreign := notFound(err, made.ID)
	_, err = bob.Responses.Get(ctx, "resp_never", responses.ResponseGetParams{})
	if unknown := notFound(err, "resp_never"); foreign != unknown {
		t.Errorf("another's id is told apart from an unknown one:\n%s\n%s", foreign, unknown)
	}
	if strings.Contains(foreign, "1234") {
		t.Errorf("the refusal shows the stored text: %s", foreign)
	}
	notFound(bob.Responses.Delete(ctx, made.ID), made.ID)
	calls := len(glm.Requests())
	_, err = bob.Responses.New(ctx, responses.ResponseNewParams{Model: "super-brain", PreviousResponseID: openai.String(made.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is my secret?")}})
	var e *openai.Error
	if !errors.As(err, &e) || e.StatusCode != 400 || e.Param != "previous_response_id" || e.Code != "previous_response_not_found" {
		t.Errorf("bob continues alice's: %v", err)
	}
	if n := len(glm.Requests()); n != calls {
		t.Errorf("bob's continuation reached the provider")
	}
	// Nor without a key.
	if code, _, _ := h.do("GET", "/v1/responses/"+made.ID, nil, ""); code != 401 {
		t.Errorf("GET without a key: %d", code)
	}

	// Alice continues hers: the provider gets the stored conversation.
	if _, err := alice.Responses.New(ctx, responses.ResponseNewParams{Model: "super-brain", PreviousResponseID: openai.String(made.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is my secret?")}}); err != nil {
		t.Fatal(err)
	}
	if reqs := glm.Requests(); !strings.Contains(string(reqs[len(reqs)-1].Body), "My secret is 1234.") {
		t.Errorf("the continuation lacks the stored conversation: %s", reqs[len(reqs)-1].Body)
	}

	// Deleted, as OpenAI answers it; then gone.
	code, hdr, body := h.do("DELETE", "/v1/responses/"+made.ID, http.Header{"Authorization": {"Bearer " + aliceKey}}, "")
	if code != 200 || !strings.Contains(body, `"id": "`+made.ID+`"`) || !strings.Contains(body, `"object": "response"`) ||
		!strings.Contains(body, `"deleted": true`) || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("DELETE: %d %s", code, body)
	}
	_, err = alice.Responses.Get(ctx, made.ID, responses.ResponseGetParams{})
	notFound(err, made.ID)
	notFound(alice.Responses.Delete(ctx, made.ID), made.ID)

	// A stream's answer is kept too, and deleted through the SDK.
	stream := alice.Responses.NewStreaming(ctx, params)
	var id string
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.completed" {
			id = ev.Response.ID
		}
	}
	if err := stream.Err(); err != nil || id == "" {
		t.Fatalf("stream: %v", err)
	}
	if _, err := alice.Responses.Get(ctx, id, responses.ResponseGetParams{}); err != nil {
		t.Errorf("alice reads her streamed answer: %v", err)
	}
	if err := alice.Responses.Delete(ctx, id); err != nil {
		t.Errorf("alice deletes her streamed answer: %v", err)
	}
}

// Without the memory store, GET and DELETE /v1/responses/{id} say that
// llmproxy keeps no responses, and where a provider's own are read.
func TestGatewayStoredResponsesWithoutTheStore(t *testing.T) {
	t.Parallel()
	glm := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "glm"}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "zhipu", BaseURL: glm.URL + "/v1", Keys: []string{"env:BETA_KEY_1"}},
			config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "zhipu", Model: "glm-4.7"}}})
	}))
	client := openaiClient(h, aliceKey)
	_, errGet := client.Responses.Get(t.Context(), "resp_abc", responses.ResponseGetParams{})
	for _, err := range []error{errGet, client.Responses.Delete(t.Context(), "resp_abc")} {
		var e *openai.Error
		if !errors.As(err, &e) || e.StatusCode != 404 || !strings.Contains(e.Message, "responses.store is off") ||
			!strings.Contains(e.Message, "/openai/v1/responses/{id}") {
			t.Errorf("%v", err)
		}
	}
	if code, _, _ := h.do("PUT", "/v1/responses/resp_abc", http.Header{"Authorization": {"Bearer " + aliceKey}}, "{}"); code != 405 {
		t.Errorf("PUT: %d", code)
	}
	if n := len(glm.Requests()); n != 0 {
		t.Errorf("the provider got %d requests", n)
	}
}
