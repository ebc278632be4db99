package providertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// sseEvent is one server-sent event as the test reads it off the wire.
type sseEvent struct{ name, data string }

// splitSSE splits a whole SSE body into events; lineEnd is "\n" or "\r\n".
func splitSSE(t *testing.T, body, lineEnd string) []sseEvent {
	t.Helper()
	var out []sseEvent
	for block := range strings.SplitSeq(strings.TrimSuffix(body, lineEnd+lineEnd), lineEnd+lineEnd) {
		var ev sseEvent
		for line := range strings.SplitSeq(block, lineEnd) {
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			default:
				t.Fatalf("unexpected line %q in %q", line, body)
			}
		}
		out = append(out, ev)
	}
	return out
}

// TestWire checks the stream framing byte by byte, below what the SDKs
// forgive: event names match the data's type, OpenAI ends with [DONE],
// Anthropic pings after the first block starts, Gemini ends lines with CRLF.
func TestWire(t *testing.T) {
	t.Parallel()
	reply := []Delta{Reasoning("r"), Text("a"), Text("b"), ToolCall(0, "", "f", `{"x":`), ToolArgs(0, `1}`)}
	oa := NewOpenAI(t, &OpenAI{Reply: reply, NativeResponses: true}, nil)
	an := NewAnthropic(t, &Anthropic{Reply: reply}, nil)
	ga := NewGoogleAI(t, &GoogleAI{Reply: reply}, nil)
	hc := testClient(t)
	post := func(url, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
		}
		return resp, string(b)
	}
	typed := func(t *testing.T, evs []sseEvent) []string {
		var names []string
		for _, ev := range evs {
			var d struct{ Type string }
			if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.Type != ev.name {
				t.Errorf("event %q carries %s", ev.name, ev.data)
			}
			names = append(names, ev.name)
		}
		return names
	}

	t.Run("openai chat", func(t *testing.T) {
		resp, body := post(oa.URL+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		evs := splitSSE(t, body, "\n")
		if resp.Header.Get("Content-Type") != "text/event-stream" || evs[len(evs)-1].data != "[DONE]" || len(evs) != 1+len(reply)+1+1 {
			t.Errorf("%s %q", resp.Header.Get("Content-Type"), body)
		}
		for _, ev := range evs[:len(evs)-1] {
			if ev.name != "" || !json.Valid([]byte(ev.data)) {
				t.Errorf("event %+v", ev)
			}
		}
	})
	t.Run("openai responses", func(t *testing.T) {
		_, body := post(oa.URL+"/v1/responses", `{"model":"m","stream":true,"input":"hi"}`)
		names := typed(t, splitSSE(t, body, "\n"))
		if names[0] != "response.created" || names[len(names)-1] != "response.completed" {
			t.Errorf("events %v", names)
		}
	})
	t.Run("anthropic", func(t *testing.T) {
		_, body := post(an.URL+"/v1/messages", `{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		names := typed(t, splitSSE(t, body, "\n"))
		if len(names) < 3 || names[0] != "message_start" || names[1] != "content_block_start" || names[2] != "ping" ||
			strings.Count(strings.Join(names, " "), "ping") != 1 || names[len(names)-1] != "message_stop" {
			t.Errorf("events %v", names)
		}
	})
	t.Run("gemini sse", func(t *testing.T) {
		_, body := post(ga.URL+"/v1beta/models/g:streamGenerateContent?alt=sse", `{"contents":[]}`)
		if strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\n") {
			t.Errorf("a bare LF in %q", body)
		}
		// reasoning, two texts, one call for both tool pieces
		if evs := splitSSE(t, body, "\r\n"); len(evs) != 4 {
			t.Errorf("%d events in %q", len(evs), body)
		}
	})
	t.Run("gemini array", func(t *testing.T) {
		_, body := post(ga.URL+"/v1beta/models/g:streamGenerateContent", `{"contents":[]}`)
		var chunks []json.RawMessage
		if err := json.Unmarshal([]byte(body), &chunks); err != nil || len(chunks) != 4 {
			t.Errorf("%d chunks, %v: %q", len(chunks), err, body)
		}
	})
}

// TestBreaksOnTheWire checks with a plain HTTP client what each break
// looks like: whether the status line arrived, how many events, and
// whether the body ended with a reset or cleanly (then with Connection:
// close, so FIN follows).
func TestBreaksOnTheWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		fault       Fault
		wantHeaders bool // a 200 arrived
		wantEvents  int
		wantReset   bool
	}{
		{name: "reset before headers", fault: ResetBeforeHeaders(), wantReset: true},
		{name: "cut before first byte", fault: CutBeforeFirstByte(), wantHeaders: true, wantReset: true},
		{name: "cut after events", fault: CutAfterEvents(2), wantHeaders: true, wantEvents: 2, wantReset: true},
		{name: "end early", fault: EndEarly(2), wantHeaders: true, wantEvents: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := NewOpenAI(t, &OpenAI{Fault: func(FaultRequest) Fault { return tt.fault }}, nil)
			resp, err := testClient(t).Post(fake.URL+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
			if !tt.wantHeaders {
				if !isReset(err) {
					t.Errorf("err %v, want a reset", err)
				}
				return
			}
			if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("%v %v", resp, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if isReset(err) != tt.wantReset || (!tt.wantReset && err != nil) || resp.Close == tt.wantReset {
				t.Errorf("read err %v, Connection: close %v", err, resp.Close)
			}
			if n := bytes.Count(body, []byte("data: ")); n != tt.wantEvents || bytes.Contains(body, []byte("finish_reason\":\"")) {
				t.Errorf("%d events: %q", n, body)
			}
		})
	}
}
