package resume

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func TestDetectLanguage(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]string{
		"这是一个关于代理服务器如何把被截断的回答重新拼接起来的故事。":                                                                               "zh",
		"これは途中で切れた回答をつなぎ直すプロキシの話です。":                                                                                   "ja",
		"이것은 잘린 답변을 다시 이어 붙이는 프록시에 관한 이야기입니다.":                                                                         "ko",
		"Это история о прокси, который сшивает оборванный ответ.":                                                      "ru",
		"This is the story of a proxy that stitches the answer back together and it works.":                            "en",
		"Esta es la historia de un proxy que une la respuesta cortada, ¿verdad? Sí, es así.":                           "es",
		"C'est l'histoire d'un proxy qui recoud la réponse coupée et qui ne répète rien du tout.":                      "fr",
		"Das ist die Geschichte eines Proxys, der die abgebrochene Antwort wieder zusammensetzt und nicht wiederholt.": "de",
		"func main() { x := 42; y := x * 2 }":                                                                          "default",
		"1234 5678 + 42 = ?":                                                                                           "default",
	} {
		if got := detectLanguage(text); got != want {
			t.Errorf("detectLanguage(%.30q…) = %s, want %s", text, got, want)
		}
	}
}

func TestOverlap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sent, next string
		want       int
	}{
		{"the answer so far ends here", "ends here and goes on", len("ends here")},
		{"the answer so far ends here", " and goes on", 0},
		{"short", "rt and on", 0}, // under minOverlap: a coincidence
		{"…说到这里，我们继续", "这里，我们继续往下说", len("这里，我们继续")},
		{"", "anything", 0},
		{"abcdefghijKLM", "abcdefghij and on", 0}, // the start repeated is not a tail repeat
		{"abcdefghij", "abcdefghij", 10},
		{"xxabcdefghij", "abcdefghij", 10},
	} {
		if got := overlap(tc.sent, tc.next); got != tc.want {
			t.Errorf("overlap(%q, %q) = %d, want %d", tc.sent, tc.next, got, tc.want)
		}
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	for _, sep := range []string{"\n", "\r\n"} {
		in := "data: {\"a\":1}" + sep + sep + ": comment" + sep + sep + "data: {\"b\":" + sep + "data: 2}" + sep + sep
		r := newSSEReader(strings.NewReader(in))
		e1, err := r.next()
		if err != nil || e1.obj["a"] == nil || string(e1.raw) != "data: {\"a\":1}"+sep+sep {
			t.Fatalf("first event %+v %v", e1, err)
		}
		if r.crlf() != (sep == "\r\n") {
			t.Errorf("line ending not detected")
		}
		if e2, err := r.next(); err != nil || e2.obj != nil {
			t.Fatalf("comment %+v %v", e2, err)
		}
		if e3, err := r.next(); err != nil || e3.obj["b"] == nil {
			t.Fatalf("multi-line data %+v %v", e3, err)
		}
		if _, err := r.next(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
	}
	r := newSSEReader(strings.NewReader("data: {\"a\":1}\n\ndata: {\"half\""))
	r.next()
	if _, err := r.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("half an event: %v, want ErrUnexpectedEOF", err)
	}
}

func TestArrayReader(t *testing.T) {
	t.Parallel()
	r := newArrayReader(strings.NewReader("[{\"a\":1}\n,\r\n{\"b\":2}]"))
	for _, key := range []string{"a", "b"} {
		if e, err := r.next(); err != nil || e.obj[key] == nil {
			t.Fatalf("element %s: %+v %v", key, e, err)
		}
	}
	if _, err := r.next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	r = newArrayReader(strings.NewReader("[{\"a\":1},{\"b\""))
	r.next()
	if _, err := r.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut array: %v, want ErrUnexpectedEOF", err)
	}
	r = newArrayReader(strings.NewReader("[{\"a\":1}"))
	r.next()
	if _, err := r.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("array without its bracket: %v", err)
	}
}

// scripted is an upstream answering each request with the next script:
// a status and a body, which either ends or stalls (stays open, silent,
// until the reader closes it).
type scripted struct {
	mu      sync.Mutex
	answers []scriptedAnswer
	n       int
}

type scriptedAnswer struct {
	status int // 0: 200
	body   string
	stall  bool
}

func (u *scripted) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body)
	u.mu.Lock()
	a := scriptedAnswer{status: 500, body: `{"error":{"code":500}}`}
	if u.n < len(u.answers) {
		a = u.answers[u.n]
	}
	u.n++
	u.mu.Unlock()
	if a.status == 0 {
		a.status = http.StatusOK
	}
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, a.body)
		if !a.stall {
			pw.Close()
		}
	}()
	return &http.Response{StatusCode: a.status, Header: http.Header{}, Body: pr, Request: req}, nil
}

func (u *scripted) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}

// chunkJSON is a GenerateContentResponse with one part.
func chunkJSON(text string, thought bool, finish string) string {
	part := map[string]any{"text": text}
	if thought {
		part["thought"] = true
	}
	cand := map[string]any{"index": 0, "content": map[string]any{"role": "model", "parts": []any{part}}}
	if finish != "" {
		cand["finishReason"] = finish
	}
	b, _ := json.Marshal(map[string]any{"candidates": []any{cand}, "responseId": "r"})
	return string(b)
}

func geminiRequest(t *testing.T, method string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro"+method,
		strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"Tell me a story."}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// readWithin reads the whole body, closing it (and failing) if that takes
// longer than limit: a stream that hangs.
func readWithin(t *testing.T, body io.ReadCloser, limit time.Duration) string {
	t.Helper()
	done := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(body)
		done <- b
	}()
	select {
	case b := <-done:
		body.Close()
		return string(b)
	case <-time.After(limit):
		body.Close()
		b := <-done
		t.Fatalf("the stream still ran after %v; got so far:\n%s", limit, b)
		return ""
	}
}

// The idle timeout holds for every attempt: a continuation that stalls is
// cut and continued as a first attempt that stalls is, and each break is
// logged with its own reason (an idle cut does not make the later ones
// idle too).
func TestIdleTimeoutCutsEveryAttempt(t *testing.T) {
	t.Parallel()
	up := &scripted{answers: []scriptedAnswer{
		{body: "data: " + chunkJSON("Once upon a time, ", false, "") + "\n\n", stall: true},
		{body: "data: " + chunkJSON("there was a proxy ", false, "") + "\n\n"},
		{body: "data: " + chunkJSON("that stitched ", false, "") + "\n\n", stall: true},
		{body: "data: " + chunkJSON("answers.", false, "STOP") + "\n\n"},
	}}
	var mu sync.Mutex
	var reasons []string
	tr := &Transport{Next: up, Options: Options{Delay: time.Millisecond, IdleTimeout: 200 * time.Millisecond,
		OnResume: func(_ *http.Request, reason string, _, _ int) {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
		}}}
	resp, err := tr.RoundTrip(geminiRequest(t, ":streamGenerateContent?alt=sse"))
	if err != nil {
		t.Fatal(err)
	}
	out := readWithin(t, resp.Body, 10*time.Second)
	if !strings.Contains(out, "answers.") {
		t.Fatalf("the answer was not completed:\n%s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"idle_timeout", "no_finish_reason", "idle_timeout"}; !slices.Equal(reasons, want) {
		t.Errorf("resume reasons %v, want %v", reasons, want)
	}
	if n := up.requests(); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
}

// A generateContent answer whose continuation is refused, with no answer
// text yet (only thinking, or an empty candidate, cut), is the refusal:
// its error object under its HTTP status, not a 200 with a made-up ending.
func TestUnaryWithoutAnswerTextIsTheRefusal(t *testing.T) {
	t.Parallel()
	refusal := scriptedAnswer{status: http.StatusTooManyRequests, body: `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`}
	for name, first := range map[string]string{
		"thoughts then STOP":    chunkJSON("Let me think…", true, "STOP"),
		"thoughts then OTHER":   chunkJSON("Let me think…", true, "OTHER"),
		"empty text then OTHER": `{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":""}]},"finishReason":"OTHER"}]}`,
		"no parts then OTHER":   `{"candidates":[{"index":0,"content":{"role":"model"},"finishReason":"OTHER"}],"usageMetadata":{"promptTokenCount":5,"totalTokenCount":5}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			up := &scripted{answers: []scriptedAnswer{{body: first}, refusal}}
			tr := &Transport{Next: up, Options: Options{Delay: time.Millisecond}}
			resp, err := tr.RoundTrip(geminiRequest(t, ":generateContent"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests || string(b) != `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`+"\n" {
				t.Errorf("status %d, body %s; want 429 and the refusal's error object", resp.StatusCode, b)
			}
		})
	}
	// With answer text the partial answer comes, with the ending that cut it.
	up := &scripted{answers: []scriptedAnswer{{body: chunkJSON("Once upon a time, ", false, "OTHER")}, refusal}}
	resp, err := (&Transport{Next: up, Options: Options{Delay: time.Millisecond}}).RoundTrip(geminiRequest(t, ":generateContent"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"finishReason":"OTHER"`) || !strings.Contains(string(b), "Once upon a time, ") {
		t.Errorf("partial answer: status %d, body %s; want 200, the text and finishReason OTHER", resp.StatusCode, b)
	}
}

// An error object, or a blocked prompt, that a continuation sends after
// text held back (to trim a repeat) comes after that text, as the upstream
// sent it: in a JSON array it is the last element.
func TestErrorInContinuationFollowsItsText(t *testing.T) {
	t.Parallel()
	for end, obj := range map[string]string{
		"error":   `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`,
		"blocked": `{"promptFeedback":{"blockReason":"OTHER"}}`,
	} {
		for _, method := range []string{":streamGenerateContent", ":streamGenerateContent?alt=sse"} {
			t.Run(end+method, func(t *testing.T) {
				t.Parallel()
				up := &scripted{answers: []scriptedAnswer{
					{body: "[" + chunkJSON("Once upon a time, ", false, "")}, // cut: no closing bracket
					{body: "[" + chunkJSON("there was a proxy.", false, "") + ",\r\n" + obj + "]"},
				}}
				if strings.Contains(method, "sse") {
					up.answers = []scriptedAnswer{
						{body: "data: " + chunkJSON("Once upon a time, ", false, "") + "\n\n"},
						{body: "data: " + chunkJSON("there was a proxy.", false, "") + "\n\ndata: " + obj + "\n\n"},
					}
				}
				tr := &Transport{Next: up, Options: Options{Delay: time.Millisecond}}
				resp, err := tr.RoundTrip(geminiRequest(t, method))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var payloads []string
				if strings.Contains(method, "sse") {
					for _, line := range strings.Split(string(b), "\n") {
						if data, ok := strings.CutPrefix(line, "data: "); ok {
							payloads = append(payloads, data)
						}
					}
				} else {
					var elems []json.RawMessage
					if err := json.Unmarshal(b, &elems); err != nil {
						t.Fatalf("not a JSON array: %v\n%s", err, b)
					}
					for _, e := range elems {
						payloads = append(payloads, string(e))
					}
				}
				var order []string
				for _, p := range payloads {
					e := &event{obj: decodeObject([]byte(p))}
					switch {
					case e.errorObject() != nil:
						order = append(order, "error")
					case e.blockReason() != "":
						order = append(order, "blocked")
					}
					for _, part := range e.parts() {
						if text, visible := partText(part); visible {
							order = append(order, text)
						}
					}
				}
				if want := []string{"Once upon a time, ", "there was a proxy.", end}; !slices.Equal(order, want) {
					t.Errorf("the client got %q, want %q\n%s", order, want, b)
				}
			})
		}
	}
}
