package translate

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3/responses"

	"github.com/llmproxy/llmproxy/sse"
)

// stub is a provider inside the test: it records what it was sent and
// answers with a canned response.
type stub struct {
	status int
	ctype  string
	body   func() io.Reader

	mu    sync.Mutex
	reqs  []*http.Request
	bodys [][]byte
}

func (s *stub) RoundTrip(req *http.Request) (*http.Response, error) {
	var b []byte
	if req.Body != nil {
		b, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.bodys = append(s.bodys, b)
	s.mu.Unlock()
	status := s.status
	if status == 0 {
		status = 200
	}
	ctype := s.ctype
	if ctype == "" {
		ctype = "text/event-stream"
	}
	var body io.Reader = strings.NewReader("")
	if s.body != nil {
		body = s.body()
	}
	return &http.Response{
		Status: http.StatusText(status), StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {ctype}, "X-Request-Id": {"req_1"}},
		Body:    io.NopCloser(body),
		Request: req, ContentLength: -1,
	}, nil
}

func (s *stub) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func chunks(events ...string) func() io.Reader {
	var b []byte
	for _, e := range events {
		if strings.HasPrefix(e, "event:") { // a whole event, as it is
			b = append(b, e+"\n\n"...)
			continue
		}
		b = append(b, "data: "+e+"\n\n"...)
	}
	return func() io.Reader { return bytes.NewReader(b) }
}

const chunkHead = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"glm-4.7-0414","choices":[`

var goldenStreams = map[string][]string{
	"text": {
		chunkHead + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{"content":", \"world\"\n"},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		chunkHead + `],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":8}}}`,
		`[DONE]`,
	},
	"tool_call": {
		chunkHead + `{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		chunkHead + `],"usage":{"prompt_tokens":30,"completion_tokens":9,"total_tokens":39}}`,
		`[DONE]`,
	},
	"reasoning": {
		chunkHead + `{"index":0,"delta":{"role":"assistant","reasoning_content":"Two and"},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{"reasoning_content":" two."},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{"content":"4"},"finish_reason":null}]}`,
		chunkHead + `{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11,"completion_tokens_details":{"reasoning_tokens":5}}}`,
	},
}

const goldenRequest = `{"model":"glm-4.7","input":"What is the weather?","instructions":"Be brief.","stream":true,` +
	`"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true},` +
	`{"type":"function","name":"get_time","parameters":{"type":"object","properties":{}}}],"temperature":0.5,"metadata":{"app":"test"}}`

func translateGolden(t *testing.T, events []string, body string) *http.Response {
	t.Helper()
	tr := &Transport{Next: &stub{body: chunks(events...)}, Options: fixedOptions()}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://glm.test/api/paas/v4/responses", strings.NewReader(body))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

// The whole event stream, byte for byte, with fixed ids and clock.
func TestGoldenStream(t *testing.T) {
	for name, events := range goldenStreams {
		t.Run(name, func(t *testing.T) {
			resp := translateGolden(t, events, goldenRequest)
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" || resp.ContentLength != -1 {
				t.Errorf("Content-Type %q, length %d", ct, resp.ContentLength)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".sse", got)
			// Every event is one the SDK knows, in a valid sequence.
			r := sse.NewReader(bytes.NewReader(got))
			var evs []responses.ResponseStreamEventUnion
			for {
				ev, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				var u responses.ResponseStreamEventUnion
				if err := json.Unmarshal(ev.Data, &u); err != nil || u.Type != string(ev.Name) {
					t.Fatalf("event %s: %v (type %q)", ev.Name, err, u.Type)
				}
				evs = append(evs, u)
			}
			checkSequence(t, evs)
		})
	}
}

// The non-streaming Response, byte for byte.
func TestGoldenResponse(t *testing.T) {
	for _, name := range []string{"text", "tool_call"} {
		t.Run(name, func(t *testing.T) {
			body := strings.Replace(goldenRequest, `"stream":true`, `"stream":false`, 1)
			resp := translateGolden(t, goldenStreams[name], body)
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != int64(len(got)) {
				t.Errorf("Content-Type %q, length %d of %d", resp.Header.Get("Content-Type"), resp.ContentLength, len(got))
			}
			var out bytes.Buffer
			json.Indent(&out, got, "", "  ")
			golden(t, name+".json", append(out.Bytes(), '\n'))
		})
	}
}
