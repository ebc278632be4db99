package providertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseGooglePath(f *testing.F) {
	for _, s := range []string{
		"/v1beta/models", "/v1beta/models/gemini-2.5-flash:generateContent", "/v1/models/x", "/v1alpha/models/a:b:c",
		"/v1beta/models/", "/v1beta/models/a/b:c", "/v2/models/x", "v1beta/models", "/v1beta/tunedModels/x:generateContent",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		model, method, ok := parseGooglePath(path)
		if !ok {
			if model != "" || method != "" {
				t.Fatalf("%q: not ok but %q %q", path, model, method)
			}
			return
		}
		if strings.Contains(model, "/") || strings.Contains(model, ":") || strings.Contains(method, "/") {
			t.Fatalf("%q: model %q method %q", path, model, method)
		}
		// The parts put back together are the path.
		version, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		rebuilt := "/" + version + "/models"
		if model != "" {
			rebuilt += "/" + model
		}
		if method != "" || strings.HasSuffix(path, ":") {
			rebuilt += ":" + method
		}
		if rebuilt != path {
			t.Fatalf("%q rebuilt as %q", path, rebuilt)
		}
	})
}

// FuzzFakes sends arbitrary requests to every fake (without TLS) and checks
// that each answers without panicking, with a status a provider uses, and
// with a well-formed body: JSON, or SSE events whose data is JSON, or a
// JSON array for Gemini's stream without alt=sse.
func FuzzFakes(f *testing.F) {
	seeds := []struct {
		which      uint8
		method     bool // POST
		path, body string
		replyText  string
	}{
		{0, true, "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "hello"},
		{0, true, "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[1]}`, "\"quote\"\n"},
		{0, true, "/v1/embeddings", `{"model":"m","input":["a",[1,2],"c"],"encoding_format":"base64","dimensions":3}`, ""},
		{0, true, "/v1/embeddings", `{"model":"m","input":[[1,2],[3]]}`, ""},
		{0, true, "/v1/responses", `{"model":"m","stream":true,"input":"hi"}`, "<>&"},
		{0, false, "/v1/models/gpt-4o-mini", ``, ""},
		{1, true, "/v1/messages", `{"model":"m","max_tokens":1,"stream":true,"messages":[{}]}`, "日本"},
		{1, true, "/v1/messages/count_tokens", `{"model":"m","messages":[{}]}`, ""},
		{1, false, "/v1/models", ``, ""},
		{2, true, "/v1beta/models/g:streamGenerateContent?alt=sse", `{"contents":[]}`, "x"},
		{2, true, "/v1beta/models/g:streamGenerateContent", `{"contents":[]}`, `{"a":1}`},
		{2, true, "/v1beta/models/g:batchEmbedContents", `{"requests":[{"content":{"parts":[{"text":"a"}]},"outputDimensionality":2}]}`, ""},
		{2, true, "/v1beta/models/g:embedContent?key=k", `{"content":{}}`, ""},
		{2, false, "/v1beta/models", ``, ""},
	}
	for _, s := range seeds {
		f.Add(s.which, s.method, s.path, s.body, s.replyText)
	}
	f.Fuzz(func(t *testing.T, which uint8, post bool, target, body, replyText string) {
		reply := []Delta{Reasoning(replyText), Text(replyText), ToolCall(0, replyText, replyText, replyText), ToolArgs(0, replyText)}
		var h http.Handler
		switch which % 3 {
		case 0:
			h = newOpenAIHandler(&OpenAI{NativeResponses: true, Reply: reply, Keys: []string{"k"}})
		case 1:
			h = newAnthropicHandler(&Anthropic{Reply: reply})
		default:
			h = newGoogleAIHandler(&GoogleAI{Reply: reply})
		}
		path, query, _ := strings.Cut(target, "?")
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		r := &http.Request{
			Method: method, URL: &url.URL{Path: path, RawQuery: query}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Authorization": {"Bearer k"}, "Anthropic-Version": {"2023-06-01"}},
			Body:   io.NopCloser(strings.NewReader(body)), Host: "fake.test", RequestURI: target,
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 401, 403, 404:
		default:
			t.Fatalf("status %d", w.Code)
		}
		out := w.Body.Bytes()
		switch ct := w.Header().Get("Content-Type"); ct {
		case "application/json":
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %q", out)
			}
		case "text/event-stream":
			for line := range bytes.SplitSeq(out, []byte("\n")) {
				data, ok := bytes.CutPrefix(bytes.TrimSuffix(line, []byte("\r")), []byte("data: "))
				if ok && string(data) != "[DONE]" && !json.Valid(data) {
					t.Fatalf("invalid JSON in event: %q", line)
				}
			}
		default:
			t.Fatalf("content type %q", ct)
		}
	})
}
