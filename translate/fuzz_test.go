package translate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/sse"
)

var requestSeeds = []string{
	goldenRequest,
	`{"model":"m","input":"hi"}`,
	`{"input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"https://i.test/a.png","detail":"high"}]}]}`,
	`{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"x"}],"tool_choice":"auto"}`,
	`{"input":"hi","text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object"},"strict":true}},"reasoning":{"effort":"low"}}`,
	`{"input":"hi","previous_response_id":"resp_1","store":false,"include":["reasoning.encrypted_content"]}`,
	`{"input":[{"type":"reasoning","id":"rs","summary":[]},{"type":"message","role":"assistant","content":[{"type":"refusal","refusal":"no"}]}]}`,
	`{"input":"hi","tools":[{"type":"web_search"}]}`,
}

// Any body: a 400 (in OpenAI's error format), or a Chat Completions body
// with at least one message of a known role.
func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s), false)
	}
	store := NewStore(0, 0)
	store.put("resp_1", "", []byte("{}"), []json.RawMessage{json.RawMessage(`{"role":"user","content":"before"}`)})
	f.Fuzz(func(t *testing.T, body []byte, opts bool) {
		o := &Options{NoReasoningEffort: opts}
		var s *Store
		if opts {
			s = store
		}
		r, e := parseRequest(body, o, s, "")
		if e != nil {
			var ej errorJSON
			if e.status != 400 || json.Unmarshal(e.body(), &ej) != nil || ej.Error.Message == "" || ej.Error.Code == "" {
				t.Fatalf("bad refusal %d %s", e.status, e.body())
			}
			return
		}
		var c struct {
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if !json.Valid(r.chat) || json.Unmarshal(r.chat, &c) != nil || len(c.Messages) == 0 {
			t.Fatalf("bad chat body %s", r.chat)
		}
		for _, m := range c.Messages {
			switch m.Role {
			case "system", "user", "assistant", "tool":
			default:
				t.Fatalf("role %q", m.Role)
			}
			if k := jsonKind(m.Content); k != '"' && k != '[' && string(m.Content) != "null" {
				t.Fatalf("content %s", m.Content)
			}
		}
	})
}

// Any provider answer never panics. A stream either ends with a terminal
// event after events numbered from 0, or fails with a read error; a whole
// answer is a Response, a 502, or an error.
func FuzzStream(f *testing.F) {
	for _, evs := range goldenStreams {
		var b []byte
		for _, e := range evs {
			b = append(b, "data: "+e+"\n\n"...)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte(`{"choices":[{"index":0,"message":{"content":"x","tool_calls":[{"id":"a","function":{"name":"f","arguments":{}}}]},"finish_reason":"length"}]}`), true)
	f.Add([]byte("event: error\ndata: {\"message\":\"x\"}\n\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, whole bool) {
		ctype := "text/event-stream"
		if whole {
			ctype = "application/json"
		}
		next := &stub{ctype: ctype, body: func() io.Reader { return bytes.NewReader(data) }}
		tr := &Transport{Next: next}

		req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://p.test/v1/responses", strings.NewReader(`{"input":"hi","stream":true}`))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil && !errors.Is(err, ErrCut) && !errors.Is(err, errBadChunk) && !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
		if resp.StatusCode != 200 {
			if resp.StatusCode != 502 || resp.Header.Get("X-Proxy-Error") != "true" {
				t.Fatalf("status %d", resp.StatusCode)
			}
		} else {
			checkFuzzStream(t, out, err == nil)
		}

		req, _ = http.NewRequestWithContext(context.Background(), "POST", "https://p.test/v1/responses", strings.NewReader(`{"input":"hi"}`))
		resp, err = tr.RoundTrip(req)
		if err != nil {
			return
		}
		out, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			var r struct {
				Object string            `json:"object"`
				Status string            `json:"status"`
				Output []json.RawMessage `json:"output"`
			}
			if json.Unmarshal(out, &r) != nil || r.Object != "response" || r.Status == "in_progress" {
				t.Fatalf("bad Response %s", out)
			}
		} else if resp.StatusCode != 502 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func checkFuzzStream(t *testing.T, out []byte, complete bool) {
	r := sse.NewReader(bytes.NewReader(out))
	var seq int64
	var last string
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("our own stream does not parse: %v", err)
		}
		var e struct {
			Type string `json:"type"`
			Seq  int64  `json:"sequence_number"`
		}
		if json.Unmarshal(ev.Data, &e) != nil || e.Type != string(ev.Name) || e.Seq != seq {
			t.Fatalf("event %d: %s", seq, ev.Raw)
		}
		seq++
		last = e.Type
	}
	terminal := last == "response.completed" || last == "response.incomplete" || last == "response.failed"
	if complete != terminal {
		t.Fatalf("complete %v, last event %q", complete, last)
	}
}

// The fast chunk decoder agrees with encoding/json whenever it answers.
func FuzzDecodeChunk(f *testing.F) {
	for _, evs := range goldenStreams {
		for _, e := range evs {
			f.Add([]byte(e))
		}
	}
	data, _ := benchStream(2)
	for _, line := range bytes.Split(data, []byte("\n\n")) {
		f.Add(bytes.TrimPrefix(line, []byte("data: ")))
	}
	for _, s := range []string{
		`{"choices":[{"index":0,"delta":{"content":"a\u00e9\n\"\\\/\b\f\r\t","tool_calls":[{"index":1,"id":"x","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}],"usage":null,"error":null}`,
		`{"Model":"x"}`, `{"model":"a","model":"b"}`, `{"choices":null}`, `{"choices":[]}`, `{"error":{"message":"m"}}`,
		`{"choices":[{"index":-0,"message":{"content":null,"refusal":"no"},"finish_reason":"stop"}]}`,
		`{"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":null,"x":[1.5e3,true,{}]}}`,
		`{"choices":[{"delta":{"content":"\ud83d\ude00"}}]}`, `{"choices":[{"index":1.0}]}`, ` { } `, `null`, `{"model":"é"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow chatChunk
		if !decodeChunk(data, &fast, "") {
			return
		}
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %+v\nslow %+v", data, fast, slow)
		}
	})
}

// The decoder takes the chunks real providers send (the fallback is for
// the odd ones, not the common case).
func TestDecodeChunkFastPath(t *testing.T) {
	t.Parallel()
	for name, evs := range goldenStreams {
		for _, e := range evs {
			var c chatChunk
			if e != "[DONE]" && !decodeChunk([]byte(e), &c, "") {
				t.Errorf("%s: fell back on %s", name, e)
			}
		}
	}
}
