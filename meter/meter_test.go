package meter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"go.uber.org/goleak"

	"github.com/llmproxy/llmproxy/internal/leaktest"
)

func TestMain(m *testing.M) {
	// genai (the oracle in sdk_test.go) imports opencensus, whose init starts a worker.
	leaktest.Main(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// fixtures are answers written after the providers' public API references.
var fixtures = []struct {
	file   string
	format Format
	stream bool
	want   Usage
}{
	{"openai_chat_stream.sse", OpenAI, true, Usage{Input: 2006, CachedInput: 1920, Output: 300, Reasoning: 192}},
	{"openai_compat_stream.sse", OpenAI, true, Usage{Input: 12, Output: 2}},
	{"openai_chat.json", OpenAI, false, Usage{Input: 1117, CachedInput: 1024, Output: 46}},
	{"deepseek_chat.json", OpenAI, false, Usage{Input: 1600, CachedInput: 1536, Output: 10}},
	{"openai_embeddings.json", OpenAI, false, Usage{Input: 8}},
	{"responses_stream.sse", OpenAIResponses, true, Usage{Input: 1310, CachedInput: 1152, Output: 708, Reasoning: 640}},
	{"responses.json", OpenAIResponses, false, Usage{Input: 1310, CachedInput: 1152, Output: 708, Reasoning: 640}},
	// Anthropic: input_tokens 21 + cache read 2048 + cache write 188.
	{"anthropic_stream.sse", Anthropic, true, Usage{Input: 2257, CachedInput: 2048, CacheWrite: 188, Output: 15}},
	{"anthropic_thinking_stream.sse", Anthropic, true, Usage{Input: 472, Output: 503, Reasoning: 412}},
	{"anthropic.json", Anthropic, false, Usage{Input: 5943, CachedInput: 1800, CacheWrite: 2048, Output: 503}},
	// Gemini: candidates 12 + thoughts 1151; the last chunk's counts.
	{"gemini_stream.sse", Gemini, true, Usage{Input: 31, CachedInput: 16, Output: 1163, Reasoning: 1151}},
	{"gemini_array.json", Gemini, false, Usage{Input: 31, CachedInput: 16, Output: 1163, Reasoning: 1151}},
	// Gemini unary: prompt 2048 + tool-use prompt 100; candidates 4 + thoughts 440.
	{"gemini_unary.json", Gemini, false, Usage{Input: 2148, CachedInput: 1024, Output: 444, Reasoning: 440}},
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chunkReader returns data in pieces whose sizes cycle through sizes.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(r.sizes[r.i%len(r.sizes)], len(p), len(r.data))
	r.i++
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// readers gives the ways a body may arrive.
var readers = []struct {
	name string
	make func([]byte) io.Reader
}{
	{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"one byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"odd chunks", func(b []byte) io.Reader { return &chunkReader{data: b, sizes: []int{3, 7, 1, 64, 13, 1000, 2}} }},
	{"half reads", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
}

// recorder records the calls of Done.
type recorder struct {
	mu       sync.Mutex
	calls    int
	u        Usage
	complete bool
}

func (r *recorder) done(u Usage, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.u, r.complete = u, complete
}

func (r *recorder) check(t *testing.T, want Usage, complete bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls != 1 {
		t.Fatalf("Done called %d times, want once", r.calls)
	}
	if r.u != want || r.complete != complete {
		t.Errorf("Done(%+v, %v), want Done(%+v, %v)", r.u, r.complete, want, complete)
	}
}

type nopCloser struct {
	io.Reader
	closed int
}

func (c *nopCloser) Close() error { c.closed++; return nil }

// drain reads r to its end like io.ReadAll, failing on a (0, nil) read.
func drain(t *testing.T, r io.Reader) ([]byte, error) {
	t.Helper()
	var out []byte
	p := make([]byte, 512)
	for {
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err != nil {
			return out, err
		}
		if n == 0 {
			t.Fatal("Read returned (0, nil)")
		}
	}
}

func TestFixtures(t *testing.T) {
	t.Parallel()
	for _, fx := range fixtures {
		data := fixture(t, fx.file)
		for _, rd := range readers {
			t.Run(fx.file+"/"+rd.name, func(t *testing.T) {
				t.Parallel()
				var rec recorder
				body := &nopCloser{Reader: rd.make(data)}
				w := Wrap(body, Options{Format: fx.format, Stream: fx.stream, Done: rec.done})
				out, err := drain(t, w)
				if err != io.EOF {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(out, data) {
					t.Fatalf("output differs from the upstream's bytes")
				}
				rec.check(t, fx.want, true)
				if err := w.Close(); err != nil || body.closed != 1 {
					t.Errorf("Close: %v, underlying closed %d times", err, body.closed)
				}
				rec.check(t, fx.want, true) // Close after EOF does not call Done again
			})
		}
		t.Run(fx.file+"/Parse", func(t *testing.T) {
			t.Parallel()
			u, ok := Parse(fx.format, fx.stream, data)
			if !ok || u != fx.want {
				t.Errorf("Parse = %+v, %v; want %+v, true", u, ok, fx.want)
			}
		})
	}
}

func TestStripUsageChunk(t *testing.T) {
	t.Parallel()
	stream := string(fixture(t, "openai_chat_stream.sse"))
	usageEvent := string(fixture(t, "openai_chat_stream.usage-event"))
	if strings.Count(stream, usageEvent) != 1 {
		t.Fatal("the fixture should hold the usage-only event once")
	}
	want := Usage{Input: 2006, CachedInput: 1920, Output: 300, Reasoning: 192}
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	compat := string(fixture(t, "openai_compat_stream.sse"))
	cases := []struct {
		name     string
		in, want string
		usage    Usage
	}{
		{"include_usage", stream, strings.Replace(stream, usageEvent, "", 1), want},
		{"CRLF", crlf(stream), crlf(strings.Replace(stream, usageEvent, "", 1)), want},
		{"usage on the last content chunk stays", compat, compat, Usage{Input: 12, Output: 2}},
		{
			"comments, stray blank lines and other fields are kept",
			": keep-alive\n\n\n\nid: 1\n" + usageEvent + "\n  \ndata: [DONE]\n\n",
			": keep-alive\n\n\n\n" + "\n  \ndata: [DONE]\n\n", // the event begins at its first line, "id: 1"
			want,
		},
		{
			"last event without its blank line",
			"data: {\"choices\":[{\"delta\":{}}]}\n\n" + strings.TrimSuffix(usageEvent, "\n"),
			"data: {\"choices\":[{\"delta\":{}}]}\n\n",
			want,
		},
		{
			"choices with content are never dropped",
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
			Usage{Input: 3, Output: 1},
		},
		{
			"usage null with empty choices is kept",
			"data: {\"choices\":[],\"usage\":null,\"prompt_filter_results\":[]}\n\ndata: [DONE]\n\n",
			"data: {\"choices\":[],\"usage\":null,\"prompt_filter_results\":[]}\n\ndata: [DONE]\n\n",
			Usage{},
		},
		{
			"spaced JSON",
			"data: { \"choices\" : [ ] , \"usage\" : { \"prompt_tokens\" : 5 } }\n\ndata: [DONE]\n\n",
			"data: [DONE]\n\n",
			Usage{Input: 5},
		},
	}
	for _, tc := range cases {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				t.Parallel()
				var rec recorder
				w := Wrap(io.NopCloser(rd.make([]byte(tc.in))), Options{Format: OpenAI, Stream: true, StripUsageChunk: true, Done: rec.done})
				out, err := drain(t, w)
				if err != io.EOF {
					t.Fatalf("read: %v", err)
				}
				if string(out) != tc.want {
					t.Errorf("got\n%q\nwant\n%q", out, tc.want)
				}
				rec.check(t, tc.usage, true)
			})
		}
	}
}

// gate is a body that hands out what the test pushes, one push per Read.
type gate struct {
	ch     chan []byte
	closed chan struct{}
	once   sync.Once
}

func newGate() *gate { return &gate{ch: make(chan []byte), closed: make(chan struct{})} }

func (g *gate) Read(p []byte) (int, error) {
	select {
	case b, ok := <-g.ch:
		if !ok {
			return 0, io.EOF
		}
		return copy(p, b), nil
	case <-g.closed:
		return 0, errors.New("body closed")
	}
}

func (g *gate) Close() error { g.once.Do(func() { close(g.closed) }); return nil }

// readOne runs one Read in the background.
func readOne(r io.Reader) chan string {
	res := make(chan string, 1)
	go func() {
		p := make([]byte, 4096)
		n, err := r.Read(p)
		res <- fmt.Sprintf("%q %v", p[:n], err)
	}()
	return res
}

// TestNoDelay: without strip, a Read returns what the upstream sent at once,
// half an event included; with strip, a complete event goes out without
// waiting for the next one.
func TestNoDelay(t *testing.T) {
	t.Parallel()
	for _, strip := range []bool{false, true} {
		t.Run(fmt.Sprint("strip=", strip), func(t *testing.T) {
			t.Parallel()
			g := newGate()
			w := Wrap(g, Options{Format: OpenAI, Stream: true, StripUsageChunk: strip})
			res := readOne(w)
			g.ch <- []byte("data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"cho")
			want := fmt.Sprintf("%q <nil>", "data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"cho")
			if strip {
				want = fmt.Sprintf("%q <nil>", "data: {\"choices\":[{\"delta\":{}}]}\n\n")
			}
			if got := <-res; got != want {
				t.Errorf("first Read: %s, want %s", got, want)
			}
			res = readOne(w)
			g.ch <- []byte("ices\":[]}\n\n")
			want = fmt.Sprintf("%q <nil>", "ices\":[]}\n\n")
			if strip {
				want = fmt.Sprintf("%q <nil>", "data: {\"choices\":[]}\n\n")
			}
			if got := <-res; got != want {
				t.Errorf("second Read: %s, want %s", got, want)
			}
			close(g.ch)
			w.Close()
		})
	}
}

func TestCutStream(t *testing.T) {
	t.Parallel()
	data := fixture(t, "anthropic_stream.sse")
	cut := bytes.Index(data, []byte("event: message_delta"))
	boom := errors.New("connection reset")
	for _, strip := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			err  error
		}{{"reset", boom}, {"unexpected EOF", io.ErrUnexpectedEOF}} {
			t.Run(fmt.Sprint(tc.name, " strip=", strip), func(t *testing.T) {
				t.Parallel()
				var rec recorder
				body := io.MultiReader(iotest.OneByteReader(bytes.NewReader(data[:cut+10])), iotest.ErrReader(tc.err))
				w := Wrap(io.NopCloser(body), Options{Format: Anthropic, Stream: true, StripUsageChunk: strip, Done: rec.done})
				out, err := drain(t, w)
				if err != tc.err {
					t.Fatalf("error %v, want %v unchanged", err, tc.err)
				}
				if !bytes.Equal(out, data[:cut+10]) {
					t.Errorf("output %q, want the bytes before the cut", out)
				}
				// message_start's counts only: output_tokens 1.
				rec.check(t, Usage{Input: 2257, CachedInput: 2048, CacheWrite: 188, Output: 1}, false)
				w.Close()
				rec.check(t, Usage{Input: 2257, CachedInput: 2048, CacheWrite: 188, Output: 1}, false)
			})
		}
	}
}

func TestCloseBeforeEOF(t *testing.T) {
	t.Parallel()
	data := fixture(t, "gemini_stream.sse")
	second := bytes.Index(data, []byte("\r\n\r\ndata:")) + 4
	third := bytes.Index(data[second:], []byte("\r\n\r\ndata:")) + second + 4
	for _, strip := range []bool{false, true} {
		t.Run(fmt.Sprint("strip=", strip), func(t *testing.T) {
			t.Parallel()
			var rec recorder
			body := &nopCloser{Reader: &chunkReader{data: data, sizes: []int{third}}}
			w := Wrap(body, Options{Format: Gemini, Stream: true, StripUsageChunk: strip, Done: rec.done})
			p := make([]byte, third)
			if n, err := io.ReadFull(w, p); n != third || err != nil {
				t.Fatalf("read %d, %v", n, err)
			}
			if err := w.Close(); err != nil || body.closed != 1 {
				t.Fatalf("Close: %v, underlying closed %d times", err, body.closed)
			}
			// The second chunk's counts: candidates 9 + thoughts 127.
			rec.check(t, Usage{Input: 31, Output: 136, Reasoning: 127}, false)
			w.Close()
			if body.closed != 2 {
				t.Errorf("a second Close should reach the body too")
			}
			rec.check(t, Usage{Input: 31, Output: 136, Reasoning: 127}, false)
		})
	}
}

// TestCloseDuringRead: Close from another goroutine while a Read waits on the
// upstream (how a proxy aborts), under -race.
func TestCloseDuringRead(t *testing.T) {
	t.Parallel()
	for _, strip := range []bool{false, true} {
		t.Run(fmt.Sprint("strip=", strip), func(t *testing.T) {
			t.Parallel()
			var rec recorder
			g := newGate()
			w := Wrap(g, Options{Format: OpenAI, Stream: true, StripUsageChunk: strip, Done: rec.done})
			res := readOne(w)
			g.ch <- []byte("data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\ndata: {\"choices\":[{")
			<-res
			errc := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, w) // blocks in the upstream's Read
				errc <- err
			}()
			w.Close()
			if err := <-errc; err == nil || err.Error() != "body closed" {
				t.Errorf("Read after Close: %v, want the body's error", err)
			}
			rec.check(t, Usage{Input: 4, Output: 2}, false)
		})
	}
}

func TestMaxBuffer(t *testing.T) {
	t.Parallel()
	long := `{"choices":[{"message":{"content":"` + strings.Repeat("x", 300) + `"}}],"usage":{"prompt_tokens":7,"completion_tokens":300}}`
	usageOnly := "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":300}}\n\n"
	// An event that looks like the usage-only chunk but is too long to hold.
	spaced := "data: {\"choices\":[]" + strings.Repeat(" ", 300) + ",\"usage\":{\"prompt_tokens\":1}}\n\n"
	cases := []struct {
		name   string
		stream bool
		strip  bool
		in     string
		want   string
		usage  Usage
	}{
		{"body over the bound counts as unknown", false, false, long, long, Usage{}},
		{"body within the bound", false, false, long[:50] + `"}}],"usage":{"prompt_tokens":7}}`, long[:50] + `"}}],"usage":{"prompt_tokens":7}}`, Usage{Input: 7}},
		{"event over the bound is skipped", true, false, "data: " + long + "\n\n", "data: " + long + "\n\n", Usage{}},
		{"later events count", true, false, "data: " + long + "\n\n" + usageOnly, "data: " + long + "\n\n" + usageOnly, Usage{Input: 7, Output: 300}},
		{"event over the bound goes out and is never dropped", true, true, spaced + usageOnly + "data: [DONE]\n\n", spaced + "data: [DONE]\n\n", Usage{Input: 7, Output: 300}},
		{"a held event is not dropped once over", true, true, spaced, spaced, Usage{}},
	}
	for _, tc := range cases {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				t.Parallel()
				var rec recorder
				w := Wrap(io.NopCloser(rd.make([]byte(tc.in))), Options{Format: OpenAI, Stream: tc.stream, StripUsageChunk: tc.strip, MaxBuffer: 200, Done: rec.done})
				out, err := drain(t, w)
				if err != io.EOF || string(out) != tc.want {
					t.Errorf("got %q, %v\nwant %q", out, err, tc.want)
				}
				rec.check(t, tc.usage, true)
			})
		}
	}
}

// emptyReads answers (0, nil) n times before each piece.
type emptyReads struct {
	r     io.Reader
	n, at int
}

func (e *emptyReads) Read(p []byte) (int, error) {
	if e.at < e.n {
		e.at++
		return 0, nil
	}
	e.at = 0
	return e.r.Read(p)
}

func TestEmptyReads(t *testing.T) {
	t.Parallel()
	data := fixture(t, "openai_chat_stream.sse")
	for _, strip := range []bool{false, true} {
		t.Run(fmt.Sprint("strip=", strip), func(t *testing.T) {
			t.Parallel()
			w := Wrap(io.NopCloser(&emptyReads{r: iotest.HalfReader(bytes.NewReader(data)), n: 3}), Options{Format: OpenAI, Stream: true, StripUsageChunk: strip})
			if _, err := drain(t, w); err != io.EOF {
				t.Errorf("read: %v", err)
			}
			var rec recorder
			w = Wrap(io.NopCloser(&emptyReads{r: bytes.NewReader(data), n: 1000}), Options{Format: OpenAI, Stream: true, StripUsageChunk: strip, Done: rec.done})
			if _, err := drain(t, w); err != io.ErrNoProgress {
				t.Errorf("a body stuck on (0, nil): %v, want io.ErrNoProgress", err)
			}
			rec.check(t, Usage{}, false)
		})
	}
}

func TestShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		format Format
		stream bool
		in     string
		want   Usage
		ok     bool
	}{
		{"float and quoted counts", OpenAI, false, `{"usage":{"prompt_tokens":12.0,"completion_tokens":"5"}}`, Usage{Input: 12, Output: 5}, true},
		{"negative and huge counts are clamped", OpenAI, false, `{"usage":{"prompt_tokens":-4,"completion_tokens":1e300}}`, Usage{Output: MaxCount}, true},
		{"parts never exceed the whole", OpenAI, false, `{"usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":99},"completion_tokens":3,"completion_tokens_details":{"reasoning_tokens":7}}}`, Usage{Input: 10, CachedInput: 10, Output: 3, Reasoning: 3}, true},
		{"wrong types beside good fields", OpenAI, false, `{"usage":{"prompt_tokens":10,"prompt_tokens_details":"n/a","completion_tokens":[1]}}`, Usage{Input: 10}, true},
		{"usage null", OpenAI, false, `{"choices":[],"usage":null}`, Usage{}, false},
		{"usage not an object", OpenAI, false, `{"usage":"lots"}`, Usage{}, false},
		{"truncated body", OpenAI, false, `{"usage":{"prompt_tokens":10,`, Usage{}, false},
		{"error body", Anthropic, false, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, Usage{}, false},
		{"not JSON at all", Gemini, false, "<html>502 Bad Gateway</html>", Usage{}, false},
		{"Groq's x_groq usage", OpenAI, true, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"x_groq\":{\"id\":\"req_1\",\"usage\":{\"prompt_tokens\":24,\"completion_tokens\":377}}}\n\ndata: [DONE]\n\n", Usage{Input: 24, Output: 377}, true},
		{"later usage wins", OpenAI, true, "data: {\"usage\":{\"prompt_tokens\":1}}\n\ndata: broken {\"usage\":{\n\ndata: {\"usage\":{\"prompt_tokens\":2}}\n\n", Usage{Input: 2}, true},
		{"malformed event keeps earlier usage", Anthropic, true, "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\ndata: {\"usage\":{\"output_tokens\":\n\n", Usage{Input: 9, Output: 1}, true},
		{"multi-line data", OpenAI, true, "data: {\"choices\":[],\ndata: \"usage\":{\"prompt_tokens\":6}}\n\n", Usage{Input: 6}, true},
		{"no space after data:, CR line ends", OpenAI, true, "data:{\"usage\":{\"prompt_tokens\":6}}\r\n\r\n", Usage{Input: 6}, true},
		{"Gemini array cut mid-chunk keeps the last whole one", Gemini, false, `[{"usageMetadata":{"promptTokenCount":3}},{"usageMetadata":{"promptTokenCount":4,`, Usage{Input: 3}, true},
		{"Gemini SSE last event without blank line", Gemini, true, "data: {\"usageMetadata\":{\"promptTokenCount\":3}}\n\ndata: {\"usageMetadata\":{\"promptTokenCount\":5}}", Usage{Input: 5}, true},
		{"Gemini chunk without usage does not reset it", Gemini, true, "data: {\"usageMetadata\":{\"promptTokenCount\":3}}\n\ndata: {\"candidates\":[]}\n\n", Usage{Input: 3}, true},
		{"Responses failed event", OpenAIResponses, true, "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"usage\":{\"input_tokens\":50,\"output_tokens\":0}}}\n\n", Usage{Input: 50}, true},
		{"Anthropic zero never overwrites", Anthropic, true, "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":30}}\n\n", Usage{Input: 13, CachedInput: 4, Output: 30}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, ok := Parse(tc.format, tc.stream, []byte(tc.in))
			if u != tc.want || ok != tc.ok {
				t.Errorf("Parse = %+v, %v; want %+v, %v", u, ok, tc.want, tc.ok)
			}
			var rec recorder
			w := Wrap(io.NopCloser(iotest.OneByteReader(strings.NewReader(tc.in))), Options{Format: tc.format, Stream: tc.stream, Done: rec.done})
			if out, err := drain(t, w); err != io.EOF || string(out) != tc.in {
				t.Errorf("Wrap passed %q, %v", out, err)
			}
			rec.check(t, tc.want, true)
		})
	}
}

func TestUsageArithmetic(t *testing.T) {
	t.Parallel()
	a := Usage{Input: 10, CachedInput: 4, CacheWrite: 2, Output: 7, Reasoning: 3}
	if a.Total() != 17 {
		t.Errorf("Total = %d, want Input+Output = 17", a.Total())
	}
	var sum Usage
	if !sum.IsZero() {
		t.Error("zero Usage not IsZero")
	}
	sum.Add(a)
	sum.Add(Usage{Input: 1, CachedInput: 1, CacheWrite: 1, Output: 1, Reasoning: 1})
	if sum != (Usage{Input: 11, CachedInput: 5, CacheWrite: 3, Output: 8, Reasoning: 4}) || sum.IsZero() {
		t.Errorf("Add: %+v", sum)
	}
	for f := OpenAI; f <= Gemini; f++ {
		if f.String() == "unknown" {
			t.Errorf("Format %d has no name", f)
		}
	}
}
