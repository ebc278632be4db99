package translate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/responses"

	"github.com/llmproxy/llmproxy/replay"
)

func post(t testing.TB, tr http.RoundTripper, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://glm.test/v4/responses", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sk-provider")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type errorJSON struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

func readError(t testing.TB, resp *http.Response) errorJSON {
	t.Helper()
	var e errorJSON
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return e
}

// Every field Chat Completions cannot express is refused with a 400 that
// names it, and nothing is sent.
func TestRefused(t *testing.T) {
	t.Parallel()
	const in = `"input":"hi"`
	for _, tc := range []struct {
		name, body, param, code string
		opts                    Options
	}{
		{"web_search", `{` + in + `,"tools":[{"type":"web_search"}]}`, "tools[0].type", codeUnsupported, Options{}},
		{"web_search_preview", `{` + in + `,"tools":[{"type":"function","name":"f"},{"type":"web_search_preview"}]}`, "tools[1].type", codeUnsupported, Options{}},
		{"file_search", `{` + in + `,"tools":[{"type":"file_search","vector_store_ids":["vs_1"]}]}`, "tools[0].type", codeUnsupported, Options{}},
		{"computer_use", `{` + in + `,"tools":[{"type":"computer_use_preview","display_width":1,"display_height":1,"environment":"linux"}]}`, "tools[0].type", codeUnsupported, Options{}},
		{"code_interpreter", `{` + in + `,"tools":[{"type":"code_interpreter","container":{"type":"auto"}}]}`, "tools[0].type", codeUnsupported, Options{}},
		{"image_generation", `{` + in + `,"tools":[{"type":"image_generation"}]}`, "tools[0].type", codeUnsupported, Options{}},
		{"mcp", `{` + in + `,"tools":[{"type":"mcp","server_label":"x","server_url":"https://mcp.test"}]}`, "tools[0].type", codeUnsupported, Options{}},
		{"local_shell", `{` + in + `,"tools":[{"type":"local_shell"}]}`, "tools[0].type", codeUnsupported, Options{}},
		{"custom tool", `{` + in + `,"tools":[{"type":"custom","name":"x"}]}`, "tools[0].type", codeUnsupported, Options{}},
		{"function output_schema", `{` + in + `,"tools":[{"type":"function","name":"f","output_schema":{"type":"object"}}]}`, "tools[0].output_schema", codeUnsupported, Options{}},
		{"tool_choice built-in", `{` + in + `,"tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"web_search_preview"}}`, "tool_choice.type", codeUnsupported, Options{}},
		{"tool_choice allowed_tools", `{` + in + `,"tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"allowed_tools","mode":"auto","tools":[]}}`, "tool_choice.type", codeUnsupported, Options{}},
		{"background", `{` + in + `,"background":true}`, "background", codeUnsupported, Options{}},
		{"prompt template", `{"prompt":{"id":"pmpt_1"}}`, "prompt", codeUnsupported, Options{}},
		{"conversation", `{` + in + `,"conversation":"conv_1"}`, "conversation", codeUnsupported, Options{}},
		{"previous_response_id", `{` + in + `,"previous_response_id":"resp_1"}`, "previous_response_id", codeUnsupported, Options{}},
		{"previous_response_id unknown", `{` + in + `,"previous_response_id":"resp_1"}`, "previous_response_id", codeNotFound, Options{Store: NewStore(0, 0)}},
		{"item_reference", `{"input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0].type", codeUnsupported, Options{}},
		{"input_file", `{"input":[{"role":"user","content":[{"type":"input_file","file_id":"file_1"}]}]}`, "input[0].content[0].type", codeUnsupported, Options{}},
		{"input_image file_id", `{"input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1","detail":"auto"}]}]}`, "input[0].content[0].file_id", codeUnsupported, Options{}},
		{"image in a system message", `{"input":[{"role":"system","content":[{"type":"input_image","image_url":"https://i.test/a.png"}]}]}`, "input[0].content[0].type", codeUnsupported, Options{}},
		{"image detail original", `{"input":[{"role":"user","content":[{"type":"input_image","image_url":"https://i.test/a.png","detail":"original"}]}]}`, "input[0].content[0].detail", codeUnsupported, Options{}},
		{"web_search_call item", `{"input":[{"type":"web_search_call","id":"ws_1","status":"completed"}]}`, "input[0].type", codeUnsupported, Options{}},
		{"computer_call_output item", `{"input":[{"type":"computer_call_output","call_id":"c","output":{}}]}`, "input[0].type", codeUnsupported, Options{}},
		{"image in tool output", `{"input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"https://i.test/a.png"}]}]}`, "input[0].output[0].type", codeUnsupported, Options{}},
		{"truncation auto", `{` + in + `,"truncation":"auto"}`, "truncation", codeUnsupported, Options{}},
		{"include logprobs", `{` + in + `,"include":["reasoning.encrypted_content","message.output_text.logprobs"]}`, "include[1]", codeUnsupported, Options{}},
		{"top_logprobs", `{` + in + `,"top_logprobs":5}`, "top_logprobs", codeUnsupported, Options{}},
		{"text.format grammar", `{` + in + `,"text":{"format":{"type":"grammar"}}}`, "text.format.type", codeUnsupported, Options{}},
		{"text.verbosity", `{` + in + `,"text":{"verbosity":"low"}}`, "text.verbosity", codeUnsupported, Options{}},
		{"reasoning.effort not taken", `{` + in + `,"reasoning":{"effort":"high"}}`, "reasoning.effort", codeUnsupported, Options{NoReasoningEffort: true}},
		{"service_tier flex", `{` + in + `,"service_tier":"flex"}`, "service_tier", codeUnsupported, Options{}},
		{"context_management", `{` + in + `,"context_management":[{"type":"compaction"}]}`, "context_management", codeUnsupported, Options{}},
		{"an unknown field set", `{` + in + `,"frobnicate":3}`, "frobnicate", codeUnsupported, Options{}},
		{"function_call namespace", `{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}","namespace":"ns"}]}`, "input[0].namespace", codeUnsupported, Options{}},
		{"role tool", `{"input":[{"role":"tool","content":"x"}]}`, "input[0].role", codeUnsupported, Options{}},
		{"no input", `{"model":"m"}`, "input", codeMissing, Options{}},
		{"temperature a string", `{` + in + `,"temperature":"hot"}`, "temperature", codeInvalidType, Options{}},
		{"max_output_tokens a fraction", `{` + in + `,"max_output_tokens":1.5}`, "max_output_tokens", codeInvalidType, Options{}},
		{"input a number", `{"input":3}`, "input", codeInvalidType, Options{}},
		{"function_call without name", `{"input":[{"type":"function_call","call_id":"c","arguments":"{}"}]}`, "input[0].name", codeMissing, Options{}},
		{"json_schema without schema", `{` + in + `,"text":{"format":{"type":"json_schema","name":"x"}}}`, "text.format.schema", codeMissing, Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next := &stub{}
			resp := post(t, &Transport{Next: next, Options: tc.opts}, tc.body)
			if next.calls() != 0 {
				t.Errorf("the provider was asked")
			}
			if resp.StatusCode != 400 || resp.Header.Get("X-Proxy-Error") != "true" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("status %d, X-Proxy-Error %q, Content-Type %q", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), resp.Header.Get("Content-Type"))
			}
			e := readError(t, resp)
			if e.Error.Param == nil || *e.Error.Param != tc.param || e.Error.Code != tc.code || e.Error.Type != "invalid_request_error" ||
				!strings.HasPrefix(e.Error.Message, tc.param+": ") {
				t.Errorf("error %+v, want param %q code %q", e.Error, tc.param, tc.code)
			}
		})
	}
}

func TestNotJSON(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "null", "[1]", `{"input":`, "\"hi\""} {
		next := &stub{}
		resp := post(t, &Transport{Next: next}, body)
		e := readError(t, resp)
		if resp.StatusCode != 400 || e.Error.Code != codeInvalidJSON || e.Error.Param != nil || next.calls() != 0 {
			t.Errorf("%q: %d %+v", body, resp.StatusCode, e.Error)
		}
	}
}

// What is sent for a Responses request, field by field.
func TestRequestMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
		opts             Options
	}{
		{"string input", `{"model":"glm-4.7","input":"hi"}`,
			`{"model":"glm-4.7","messages":[{"role":"user","content":"hi"}]}`, Options{}},
		{"instructions first, developer as system", `{"instructions":"Be brief.","input":[{"role":"developer","content":"Use SI units."},{"type":"message","role":"user","content":"hi"}]}`,
			`{"messages":[{"role":"system","content":"Be brief."},{"role":"system","content":"Use SI units."},{"role":"user","content":"hi"}]}`, Options{}},
		{"parts: text and image", `{"input":[{"role":"user","content":[{"type":"input_text","text":"What is it?"},{"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"low"}]}]}`,
			`{"messages":[{"role":"user","content":[{"type":"text","text":"What is it?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}}]}]}`, Options{}},
		{"one text part is a string", `{"input":[{"role":"user","content":[{"type":"input_text","text":"hi","prompt_cache_breakpoint":null}]}]}`,
			`{"messages":[{"role":"user","content":"hi"}]}`, Options{}},
		{"assistant output_text and refusal joined, reasoning dropped", `{"input":[{"role":"user","content":"a"},{"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"hmm"}],"encrypted_content":"gAAA"},{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"I ","annotations":[],"logprobs":[]},{"type":"refusal","refusal":"cannot."}]},{"role":"user","content":"b"}]}`,
			`{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"I cannot."},{"role":"user","content":"b"}]}`, Options{}},
		{"consecutive calls are one turn", `{"input":[{"role":"user","content":"a"},{"type":"function_call","id":"fc_1","call_id":"c1","name":"f","arguments":"{}","status":"completed"},{"type":"function_call","call_id":"c2","name":"g","arguments":"{\"x\":1}"},{"type":"function_call_output","call_id":"c1","output":"one"},{"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"tw"},{"type":"input_text","text":"o"}]}]}`,
			`{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"g","arguments":"{\"x\":1}"}}]},{"role":"tool","content":"one","tool_call_id":"c1"},{"role":"tool","content":"two","tool_call_id":"c2"}]}`, Options{}},
		{"parameters", `{"input":"hi","temperature":0.2,"top_p":0.9,"max_output_tokens":100,"parallel_tool_calls":false,"metadata":{"k":"v"},"user":"u1","reasoning":{"effort":"low","summary":"auto"},"stream":true}`,
			`{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"top_p":0.9,"max_tokens":100,"reasoning_effort":"low","metadata":{"k":"v"},"user":"u1"}`, Options{}},
		{"tools and tool_choice", `{"input":"hi","tools":[{"type":"function","name":"f","description":"does f","parameters":{"type":"object"},"strict":false,"defer_loading":false}],"tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false}`,
			`{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","description":"does f","parameters":{"type":"object"},"strict":false}}],"tool_choice":{"function":{"name":"f"},"type":"function"},"parallel_tool_calls":false}`, Options{}},
		{"tool options without tools are dropped", `{"input":"hi","tool_choice":"required","parallel_tool_calls":true,"tools":[]}`,
			`{"messages":[{"role":"user","content":"hi"}]}`, Options{}},
		{"accepted and ignored", `{"input":"hi","store":true,"include":["reasoning.encrypted_content","web_search_call.results"],"truncation":"disabled","prompt_cache_key":"k","prompt_cache_retention":"24h","safety_identifier":"s","service_tier":"auto","stream_options":{"include_obfuscation":false},"max_tool_calls":3,"background":false,"text":{"format":{"type":"text"},"verbosity":"medium"},"top_logprobs":0,"some_future_field":null,"another":false}`,
			`{"messages":[{"role":"user","content":"hi"}]}`, Options{}},
		{"reasoning.effort null with no effort taken", `{"input":"hi","reasoning":{"effort":null,"summary":"detailed"}}`,
			`{"messages":[{"role":"user","content":"hi"}]}`, Options{NoReasoningEffort: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next := &stub{body: chunks(`[DONE]`)}
			post(t, &Transport{Next: next, Options: tc.opts}, tc.body)
			if next.calls() != 1 {
				t.Fatalf("%d calls", next.calls())
			}
			if got := string(next.bodys[0]); got != tc.want {
				t.Errorf("sent\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestRequestRewrite(t *testing.T) {
	t.Parallel()
	next := &stub{body: chunks(`[DONE]`)}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://glm.test/api/paas/v4/responses?api-version=1", strings.NewReader(`{"input":"hi","stream":true}`))
	req.Header.Set("Authorization", "Bearer sk-provider")
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Content-Length", "28")
	req.Header.Set("OpenAI-Beta", "x")
	resp, err := (&Transport{Next: next}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := next.reqs[0]
	if got.Method != "POST" || got.URL.String() != "https://glm.test/api/paas/v4/chat/completions?api-version=1" {
		t.Errorf("sent %s %s", got.Method, got.URL)
	}
	h := got.Header
	if h.Get("Authorization") != "Bearer sk-provider" || h.Get("OpenAI-Beta") != "x" || h.Get("Content-Type") != "application/json" ||
		h.Get("Accept") != "text/event-stream" || h.Get("Accept-Encoding") != "" || h.Get("Content-Length") != "" {
		t.Errorf("headers %v", h)
	}
	if got.ContentLength != int64(len(next.bodys[0])) {
		t.Errorf("ContentLength %d for %d bytes", got.ContentLength, len(next.bodys[0]))
	}
	// The client's request is left as it was, and can be sent again.
	if req.URL.Path != "/api/paas/v4/responses" || req.Header.Get("Accept-Encoding") != "gzip" {
		t.Errorf("the original request changed: %s %v", req.URL, req.Header)
	}
	if b, ok := replay.Bytes(req); !ok || string(b) != `{"input":"hi","stream":true}` {
		t.Errorf("the original body: %q %v", b, ok)
	}
}

// Anything but POST …/responses goes to Next untouched.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ method, url string }{
		{"GET", "https://glm.test/v1/responses/resp_1"},
		{"POST", "https://glm.test/v1/chat/completions"},
		{"POST", "https://glm.test/v1/responses/input_tokens"},
		{"DELETE", "https://glm.test/v1/responses"},
	} {
		next := &stub{ctype: "application/json"}
		req, _ := http.NewRequestWithContext(context.Background(), tc.method, tc.url, strings.NewReader("{not json"))
		resp, err := (&Transport{Next: next}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if next.calls() != 1 || next.reqs[0] != req || string(next.bodys[0]) != "{not json" {
			t.Errorf("%s %s was changed", tc.method, tc.url)
		}
	}
}

// A provider's error answer is returned as it is: the same response.
func TestUpstreamAnswerAsIs(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 404, 429, 500, 503} {
		want := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"3"}}, Body: io.NopCloser(strings.NewReader(`{"error":{}}`))}
		next := roundTripFunc(func(*http.Request) (*http.Response, error) { return want, nil })
		req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://glm.test/v1/responses", strings.NewReader(`{"input":"hi"}`))
		got, err := (&Transport{Next: next}).RoundTrip(req)
		if err != nil || got != want {
			t.Errorf("%d: got %v, %v", status, got, err)
		}
	}
	// A transport error is returned as it is too.
	boom := errors.New("dial refused")
	next := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, boom })
	req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://glm.test/v1/responses", strings.NewReader(`{"input":"hi"}`))
	if _, err := (&Transport{Next: next}).RoundTrip(req); err != boom {
		t.Errorf("error %v", err)
	}
}

func TestNoNext(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://glm.test/v1/responses", strings.NewReader(`{"input":"hi"}`))
	if resp, err := (&Transport{}).RoundTrip(req); err != errNoNext || resp != nil {
		t.Errorf("%v, %v", resp, err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	body := `{"input":"` + strings.Repeat("a", 100) + `"}`
	for _, buffered := range []bool{false, true} {
		next := &stub{}
		req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://glm.test/v1/responses", strings.NewReader(body))
		if buffered {
			replay.Buffer(req, 1<<20)
		}
		resp, err := (&Transport{Next: next, Options: Options{MaxBody: 64}}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		e := readError(t, resp)
		if resp.StatusCode != 413 || e.Error.Code != codeTooLarge || resp.Header.Get("X-Proxy-Error") != "true" || next.calls() != 0 {
			t.Errorf("buffered %v: %d %+v", buffered, resp.StatusCode, e.Error)
		}
	}
}

// readEvents reads a translated stream into its events.
func readEvents(t testing.TB, r io.Reader) ([]responses.ResponseStreamEventUnion, error) {
	t.Helper()
	b, err := io.ReadAll(r)
	var evs []responses.ResponseStreamEventUnion
	for _, block := range strings.Split(string(b), "\n\n") {
		_, data, ok := strings.Cut(block, "data: ")
		if !ok {
			continue
		}
		var ev responses.ResponseStreamEventUnion
		if e := json.Unmarshal([]byte(data), &ev); e != nil {
			t.Fatalf("event %q: %v", data, e)
		}
		evs = append(evs, ev)
	}
	return evs, err
}

func TestStreamEdges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		chunks   []string
		terminal string
		text     string
		items    []string // types
		check    func(t *testing.T, r *responses.Response)
	}{
		{"in-band error", []string{
			chunkHead + `{"index":0,"delta":{"content":"Hel"}}]}`,
			`{"error":{"message":"model overloaded","type":"server_error","code":"overloaded"}}`,
			chunkHead + `{"index":0,"delta":{"content":"never read"}}]}`,
		}, "response.failed", "Hel", []string{"message"}, func(t *testing.T, r *responses.Response) {
			if r.Error.Code != "server_error" || !strings.Contains(r.Error.Message, "model overloaded") || r.Output[0].Status != "incomplete" {
				t.Errorf("error %s, item %s", r.Error.RawJSON(), r.Output[0].RawJSON())
			}
		}},
		{"in-band rate limit", []string{`{"error":{"message":"slow down","code":"rate_limit_exceeded"}}`},
			"response.failed", "", nil, func(t *testing.T, r *responses.Response) {
				if r.Error.Code != "rate_limit_exceeded" {
					t.Errorf("error %s", r.Error.RawJSON())
				}
			}},
		{"error event with plain text", []string{
			chunkHead + `{"index":0,"delta":{"content":"Hel"}}]}`,
			"event: error\ndata: upstream overloaded",
		}, "response.failed", "Hel", []string{"message"}, func(t *testing.T, r *responses.Response) {
			if r.Error.Code != "server_error" || r.Error.Message != "the provider reported an error: upstream overloaded" {
				t.Errorf("error %s", r.Error.RawJSON())
			}
		}},
		{"refusal", []string{
			chunkHead + `{"index":0,"delta":{"refusal":"I can't"}}]}`,
			chunkHead + `{"index":0,"delta":{"refusal":" help."},"finish_reason":"stop"}]}`, `[DONE]`,
		}, "response.completed", "", []string{"message"}, func(t *testing.T, r *responses.Response) {
			c := r.Output[0].Content
			if len(c) != 1 || c[0].Type != "refusal" || c[0].Refusal != "I can't help." {
				t.Errorf("content %s", r.Output[0].RawJSON())
			}
		}},
		{"calls without index, name in the second fragment", []string{
			chunkHead + `{"index":0,"delta":{"tool_calls":[{"id":"call_x","function":{"arguments":"{\"a\""}}]}}]}`,
			chunkHead + `{"index":0,"delta":{"tool_calls":[{"function":{"name":"f","arguments":":1}"}}]}}]}`,
			chunkHead + `{"index":0,"delta":{"tool_calls":[{"id":"call_y","function":{"name":"g","arguments":{"b":2}}}]}}]}`,
			chunkHead + `{"index":0,"delta":{"content":"done"},"finish_reason":"tool_calls"}]}`, `[DONE]`,
		}, "response.completed", "done", []string{"function_call", "function_call", "message"}, func(t *testing.T, r *responses.Response) {
			a, b := r.Output[0], r.Output[1]
			if a.CallID != "call_x" || a.Name != "f" || a.Arguments.OfString != `{"a":1}` || b.CallID != "call_y" || b.Name != "g" || b.Arguments.OfString != `{"b":2}` {
				t.Errorf("calls %s %s", a.RawJSON(), b.RawJSON())
			}
		}},
		{"a call whose name never comes", []string{
			chunkHead + `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`, `[DONE]`,
		}, "response.completed", "", []string{"function_call"}, func(t *testing.T, r *responses.Response) {
			if r.Output[0].Arguments.OfString != "{}" || !strings.HasPrefix(r.Output[0].CallID, "call_") {
				t.Errorf("call %s", r.Output[0].RawJSON())
			}
		}},
		{"reasoning field and Mistral content parts", []string{
			chunkHead + `{"index":0,"delta":{"reasoning":"think"}}]}`,
			chunkHead + `{"index":0,"delta":{"content":[{"type":"text","text":"ok"}]}}]}`, `[DONE]`,
		}, "response.completed", "ok", []string{"reasoning", "message"}, nil},
		{"finish_reason then EOF", []string{chunkHead + `{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}`},
			"response.completed", "a", []string{"message"}, nil},
		{"[DONE] with no finish_reason", []string{chunkHead + `{"index":0,"delta":{"content":"a"}}]}`, `[DONE]`},
			"response.completed", "a", []string{"message"}, nil},
		{"provider failure reason", []string{chunkHead + `{"index":0,"delta":{"content":"a"},"finish_reason":"insufficient_system_resource"}]}`, `[DONE]`},
			"response.failed", "a", []string{"message"}, nil},
		{"other choices ignored", []string{chunkHead + `{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"}}]}`, `[DONE]`},
			"response.completed", "a", []string{"message"}, nil},
		{"DeepSeek cache hits", []string{chunkHead + `{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1,"prompt_cache_hit_tokens":7}}`, `[DONE]`},
			"response.completed", "a", []string{"message"}, func(t *testing.T, r *responses.Response) {
				if r.Usage.InputTokensDetails.CachedTokens != 7 || r.Usage.TotalTokens != 11 {
					t.Errorf("usage %s", r.Usage.RawJSON())
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := post(t, &Transport{Next: &stub{body: chunks(tc.chunks...)}}, `{"input":"hi","stream":true}`)
			evs, err := readEvents(t, resp.Body)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			last := evs[len(evs)-1]
			if last.Type != tc.terminal {
				t.Fatalf("ends with %s", last.Type)
			}
			var text string
			for _, ev := range evs {
				if ev.Type == "response.output_text.delta" {
					text += ev.Delta
				}
			}
			r := last.Response
			if text != tc.text {
				t.Errorf("text %q", text)
			}
			var types []string
			for _, it := range r.Output {
				types = append(types, it.Type)
			}
			if strings.Join(types, ",") != strings.Join(tc.items, ",") {
				t.Errorf("items %v", types)
			}
			if tc.check != nil {
				tc.check(t, &r)
			}
		})
	}
}

// A stream cut or broken upstream is an error from Read, after the events
// that were ready; never a terminal event. One cut before its first event
// has announced nothing (the gateway may still try another provider).
func TestStreamBroken(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset by peer")
	for _, tc := range []struct {
		name string
		body func() io.Reader
		want error
	}{
		{"EOF without finish_reason", chunks(chunkHead + `{"index":0,"delta":{"content":"a"}}]}`), ErrCut},
		{"EOF inside an event", func() io.Reader { return strings.NewReader("data: " + chunkHead) }, ErrCut},
		{"EOF after a keep-alive comment", func() io.Reader { return strings.NewReader(": PROCESSING\n\n") }, ErrCut},
		{"read error", func() io.Reader {
			return io.MultiReader(chunks(chunkHead+`{"index":0,"delta":{"content":"a"}}]}`)(), &errReader{boom})
		}, boom},
		{"not JSON", chunks(`{"choices":[`), errBadChunk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := post(t, &Transport{Next: &stub{body: tc.body}}, `{"input":"hi","stream":true}`)
			b, err := io.ReadAll(resp.Body)
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if announced := !strings.HasPrefix(tc.name, "EOF inside") && !strings.Contains(tc.name, "comment"); bytes.Contains(b, []byte("response.created")) != announced ||
				bytes.Contains(b, []byte("response.completed")) {
				t.Errorf("stream %q (announced: want %v)", b, announced)
			}
			// Not streaming: the same is an error of RoundTrip (or 502).
			req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://glm.test/v1/responses", strings.NewReader(`{"input":"hi"}`))
			resp2, err := (&Transport{Next: &stub{body: tc.body}}).RoundTrip(req)
			if err == nil {
				resp2.Body.Close()
				t.Errorf("RoundTrip succeeded: %d", resp2.StatusCode)
			}
		})
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// Non-streaming answers: a completion; an in-band error; garbage; gzip.
func TestUnary(t *testing.T) {
	t.Parallel()
	gz := func(s string) func() io.Reader {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return func() io.Reader { return bytes.NewReader(b.Bytes()) }
	}
	completion := `{"id":"c","object":"chat.completion","model":"glm-4.7-x","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!","reasoning_content":"greet","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`
	for _, tc := range []struct {
		name     string
		stub     *stub
		status   int
		output   string
		resStat  string
		encoding string
	}{
		{"completion", &stub{ctype: "application/json", body: chunks()}, 0, "", "", ""},
		{"in-band error", &stub{ctype: "application/json", body: func() io.Reader {
			return strings.NewReader(`{"error":{"message":"bad things","type":"server_error"}}`)
		}}, 200, "", "failed", ""},
		{"not a completion", &stub{ctype: "application/json", body: func() io.Reader { return strings.NewReader(`<html>`) }}, 502, "", "", ""},
		{"no choices", &stub{ctype: "application/json", body: func() io.Reader { return strings.NewReader(`{"choices":[]}`) }}, 502, "", "", ""},
		{"gzip", &stub{ctype: "application/json", body: gz(completion)}, 200, "Hi!", "completed", "gzip"},
		{"brotli", &stub{ctype: "application/json", body: func() io.Reader { return strings.NewReader("x") }}, 502, "", "", "br"},
	} {
		if tc.name == "completion" {
			tc.stub.body = func() io.Reader { return strings.NewReader(completion) }
			tc.status, tc.output, tc.resStat = 200, "Hi!", "completed"
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := tc.stub.RoundTrip(r)
				if tc.encoding != "" {
					resp.Header.Set("Content-Encoding", tc.encoding)
				}
				return resp, err
			})
			resp := post(t, &Transport{Next: next}, `{"input":"hi"}`)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
			}
			b, _ := io.ReadAll(resp.Body)
			if tc.status != 200 {
				if resp.Header.Get("X-Proxy-Error") != "true" {
					t.Errorf("no X-Proxy-Error on %s", b)
				}
				return
			}
			var r responses.Response
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			if r.Status != responses.ResponseStatus(tc.resStat) || r.OutputText() != tc.output {
				t.Errorf("status %q text %q: %s", r.Status, r.OutputText(), b)
			}
			if tc.output != "" && (len(r.Output) != 3 || r.Output[0].Type != "reasoning" || r.Output[2].CallID != "call_1" || r.Model != "glm-4.7-x" || r.Usage.TotalTokens != 5) {
				t.Errorf("answer %s", b)
			}
			if resp.Header.Get("X-Request-Id") != "req_1" {
				t.Errorf("the provider's headers were lost: %v", resp.Header)
			}
		})
	}
}

// A stream request answered with a whole completion still streams.
func TestStreamFromCompletion(t *testing.T) {
	t.Parallel()
	next := &stub{ctype: "application/json", body: func() io.Reader {
		return strings.NewReader(`{"choices":[{"index":0,"message":{"content":"Hi!"},"finish_reason":"stop"}]}`)
	}}
	resp := post(t, &Transport{Next: next}, `{"input":"hi","stream":true}`)
	evs, err := readEvents(t, resp.Body)
	if err != nil || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatal(err, resp.Header)
	}
	if last := evs[len(evs)-1]; last.Type != "response.completed" || last.Response.OutputText() != "Hi!" {
		t.Errorf("last event %s", last.RawJSON())
	}
}

// Each Read returns once one event is ready: the first, the response's
// announcement, with the provider's first chunk (not before: until then
// the gateway may still fail over), the next as soon as its chunk came;
// nothing waits for the rest.
func TestStreamIncremental(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pw.Close()
	next := &stub{body: func() io.Reader { return pr }}
	resp := post(t, &Transport{Next: next}, `{"input":"hi","stream":true}`)
	read := func(want string) string {
		t.Helper()
		done := make(chan string, 1)
		go func() {
			buf := make([]byte, 64<<10)
			var got []byte
			for !bytes.Contains(got, []byte(want)) {
				n, err := resp.Body.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			done <- string(got)
		}()
		select {
		case got := <-done:
			if !strings.Contains(got, want) {
				t.Fatalf("read %q, want %s", got, want)
			}
			return got
		case <-time.After(10 * time.Second): // a hang guard, not a timing check
			t.Fatalf("Read waited for more than the chunk that was sent (want %s)", want)
		}
		return ""
	}
	// A pipe write returns once it was read: the provider sends one chunk
	// and waits.
	send := func(s string) { go io.WriteString(pw, s) }
	send("data: " + chunkHead + `{"index":0,"delta":{"content":"one"}}]}` + "\n\n")
	first := read(`"delta":"one"`)
	if i := strings.Index(first, `"type":"response.in_progress"`); i < 0 || i > strings.Index(first, `"delta":"one"`) {
		t.Errorf("the first chunk came without the response's announcement before it: %q", first)
	}
	send("data: " + chunkHead + `{"index":0,"delta":{"content":"two"}}]}` + "\n\n")
	read(`"delta":"two"`)
	send("data: [DONE]\n\n")
	read(`"type":"response.completed"`)
	if n, err := resp.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after the end: %d, %v", n, err)
	}
}
