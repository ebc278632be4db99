package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"
)

// outcome is what an official SDK reported for one call.
type outcome struct {
	status   int         // HTTP status of an API error; 0 when there was none
	code     string      // OpenAI error.code, Anthropic error.type, Gemini error.status
	message  string      // the error message
	header   http.Header // of an API error, where the SDK exposes it (not genai)
	raw      string      // the error body
	events   int         // stream events the SDK delivered
	finished bool        // a finish reason arrived
	err      error       // any error
}

// provider starts one kind of fake with a Fault hook and calls it through
// its SDK.
type provider struct {
	name  string
	start func(t *testing.T, fault func(FaultRequest) Fault, opts *Options) (*Server, func(ctx context.Context, stream bool) outcome)
}

var providers = []provider{
	{name: "openai", start: func(t *testing.T, fault func(FaultRequest) Fault, opts *Options) (*Server, func(context.Context, bool) outcome) {
		fake := NewOpenAI(t, &OpenAI{Fault: fault}, opts)
		c := openAIClient(t, fake.BaseURL(), "sk-test")
		if opts != nil && opts.HTTP2 {
			c = openAIClient(t, fake.BaseURL(), "sk-test", option.WithHTTPClient(testClientHTTP2(t)))
		}
		return fake.Server, func(ctx context.Context, stream bool) (o outcome) {
			p := chatParams("gpt-4o-mini")
			if !stream {
				resp, err := c.Chat.Completions.New(ctx, p)
				o.err = err
				if err == nil {
					o.finished = resp.Choices[0].FinishReason != ""
				}
			} else {
				s := c.Chat.Completions.NewStreaming(ctx, p)
				for s.Next() {
					o.events++
					if ch := s.Current(); len(ch.Choices) > 0 && ch.Choices[0].FinishReason != "" {
						o.finished = true
					}
				}
				o.err = s.Err()
			}
			var apiErr *openai.Error
			if errors.As(o.err, &apiErr) {
				o.status, o.code, o.message, o.header, o.raw = apiErr.StatusCode, apiErr.Code, apiErr.Message, apiErr.Response.Header, apiErr.RawJSON()
			}
			return o
		}
	}},
	{name: "anthropic", start: func(t *testing.T, fault func(FaultRequest) Fault, opts *Options) (*Server, func(context.Context, bool) outcome) {
		fake := NewAnthropic(t, &Anthropic{Fault: fault}, opts)
		c := anthropicClient(t, fake.URL, "sk-ant-test")
		return fake.Server, func(ctx context.Context, stream bool) (o outcome) {
			p := messageParams("claude-sonnet-4-5")
			if !stream {
				msg, err := c.Messages.New(ctx, p)
				o.err = err
				if err == nil {
					o.finished = msg.StopReason != ""
				}
			} else {
				s := c.Messages.NewStreaming(ctx, p)
				for s.Next() {
					o.events++
					if s.Current().Type == "message_delta" {
						o.finished = true
					}
				}
				o.err = s.Err()
			}
			var apiErr *anthropic.Error
			if errors.As(o.err, &apiErr) {
				var body struct {
					Error struct{ Type, Message string } `json:"error"`
				}
				json.Unmarshal([]byte(apiErr.RawJSON()), &body)
				o.status, o.code, o.message, o.header, o.raw = apiErr.StatusCode, body.Error.Type, body.Error.Message, apiErr.Response.Header, apiErr.RawJSON()
			}
			return o
		}
	}},
	{name: "gemini", start: func(t *testing.T, fault func(FaultRequest) Fault, opts *Options) (*Server, func(context.Context, bool) outcome) {
		fake := NewGoogleAI(t, &GoogleAI{Fault: fault}, opts)
		c := genaiClient(t, fake.URL, "AIza-test")
		return fake.Server, func(ctx context.Context, stream bool) (o outcome) {
			if !stream {
				resp, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
				o.err = err
				if err == nil {
					o.finished = resp.Candidates[0].FinishReason != ""
				}
			} else {
				for chunk, err := range c.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
					if err != nil {
						o.err = err
						break
					}
					o.events++
					if chunk.Candidates[0].FinishReason != "" {
						o.finished = true
					}
				}
			}
			var apiErr genai.APIError
			if errors.As(o.err, &apiErr) {
				raw, _ := json.Marshal(apiErr)
				o.status, o.code, o.message, o.raw = apiErr.Code, apiErr.Status, apiErr.Message, string(raw)
			}
			return o
		}
	}},
}

// isReset reports whether err is the connection reset (TCP RST), not just
// closed.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestFaultErrors(t *testing.T) {
	t.Parallel()
	type want struct {
		status            int
		code, msg, header string // header "Retry-After: 7"; msg a substring of the message
		raw               string // a substring of the body
	}
	tests := []struct {
		name  string
		fault Fault
		want  map[string]want
	}{
		{
			name: "rate limited", fault: RateLimited("7"),
			want: map[string]want{
				"openai":    {status: 429, code: "rate_limit_exceeded", msg: "try again in 7s", header: "Retry-After: 7"},
				"anthropic": {status: 429, code: "rate_limit_error", msg: "rate limit", header: "Retry-After: 7"},
				"gemini":    {status: 429, code: "RESOURCE_EXHAUSTED", raw: `"retryDelay":"7s"`},
			},
		},
		{
			name: "quota exceeded", fault: QuotaExceeded(),
			want: map[string]want{
				"openai":    {status: 429, code: "insufficient_quota", msg: "quota"},
				"anthropic": {status: 400, code: "invalid_request_error", msg: "credit balance is too low"},
				"gemini":    {status: 429, code: "RESOURCE_EXHAUSTED", msg: "quota", raw: "QuotaFailure"},
			},
		},
		{
			name: "context length", fault: ContextLengthExceeded(),
			want: map[string]want{
				"openai":    {status: 400, code: "context_length_exceeded", msg: "maximum context length"},
				"anthropic": {status: 400, code: "invalid_request_error", msg: "prompt is too long"},
				"gemini":    {status: 400, code: "INVALID_ARGUMENT", msg: "exceeds the maximum number of tokens"},
			},
		},
		{
			name: "402", fault: Status(402),
			want: map[string]want{
				"openai":    {status: 402, code: "insufficient_balance"},
				"anthropic": {status: 402, code: "billing_error"},
				"gemini":    {status: 402, code: "FAILED_PRECONDITION"},
			},
		},
		{
			name: "401", fault: Status(401),
			want: map[string]want{
				"openai":    {status: 401, code: "invalid_api_key"},
				"anthropic": {status: 401, code: "authentication_error"},
				"gemini":    {status: 401, code: "UNAUTHENTICATED"},
			},
		},
		{
			name: "403", fault: Status(403),
			want: map[string]want{
				"openai":    {status: 403, code: "unsupported_country_region_territory"},
				"anthropic": {status: 403, code: "permission_error"},
				"gemini":    {status: 403, code: "PERMISSION_DENIED"},
			},
		},
		{
			name: "500", fault: Status(500),
			want: map[string]want{
				"openai":    {status: 500, raw: `"type":"server_error"`},
				"anthropic": {status: 500, code: "api_error"},
				"gemini":    {status: 500, code: "INTERNAL"},
			},
		},
		{
			name: "503", fault: Status(503),
			want: map[string]want{
				"openai":    {status: 503, msg: "overloaded"},
				"anthropic": {status: 503, code: "api_error"},
				"gemini":    {status: 503, code: "UNAVAILABLE", msg: "overloaded"},
			},
		},
		{
			name: "529", fault: Status(529),
			want: map[string]want{
				"openai":    {status: 529, raw: `"type":"server_error"`},
				"anthropic": {status: 529, code: "overloaded_error"},
				"gemini":    {status: 529, code: "UNKNOWN"},
			},
		},
		{
			name: "overridden", fault: Status(503).WithHeader("Retry-After", "2").WithCode("my_code").WithMessage("my message"),
			want: map[string]want{
				"openai":    {status: 503, code: "my_code", msg: "my message", header: "Retry-After: 2"},
				"anthropic": {status: 503, code: "my_code", msg: "my message", header: "Retry-After: 2"},
				"gemini":    {status: 503, code: "my_code", msg: "my message"},
			},
		},
	}
	for _, tt := range tests {
		for _, p := range providers {
			for _, stream := range []bool{false, true} {
				name := tt.name + "/" + p.name
				if stream {
					name += "/stream"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					fake, call := p.start(t, func(FaultRequest) Fault { return tt.fault }, nil)
					o := call(context.Background(), stream)
					w := tt.want[p.name]
					if o.status != w.status || o.code != w.code && w.code != "" || !strings.Contains(o.message, w.msg) || !strings.Contains(o.raw, w.raw) {
						t.Errorf("status %d code %q message %q body %s (err %v), want %+v", o.status, o.code, o.message, o.raw, o.err, w)
					}
					if w.header != "" {
						k, v, _ := strings.Cut(w.header, ": ")
						if got := o.header.Get(k); got != v {
							t.Errorf("%s: %q, want %q", k, got, v)
						}
					}
					if len(fake.Requests()) != 1 {
						t.Errorf("%d requests, want 1", len(fake.Requests()))
					}
				})
			}
		}
	}
}

func TestFaultBreaks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		fault        Fault
		stream       bool
		wantEvents   int
		wantErr      func(error) bool
		wantFinished bool
	}{
		{name: "reset before headers", fault: ResetBeforeHeaders(), wantErr: isReset},
		{name: "reset before headers, stream", fault: ResetBeforeHeaders(), stream: true, wantErr: isReset},
		{name: "cut before first byte", fault: CutBeforeFirstByte(), wantErr: isReset},
		{name: "cut before first byte, stream", fault: CutBeforeFirstByte(), stream: true, wantErr: isReset},
		{name: "cut after 2 events", fault: CutAfterEvents(2), stream: true, wantEvents: 2, wantErr: isReset},
		{name: "cut after 0 events", fault: CutAfterEvents(0), stream: true, wantErr: isReset},
		{name: "cut after many events stops before the end", fault: CutAfterEvents(1000), stream: true, wantEvents: -1, wantErr: isReset},
		{name: "cut, not streaming", fault: CutAfterEvents(2), wantErr: func(err error) bool { return err != nil }},
		{name: "end early", fault: EndEarly(2), stream: true, wantEvents: 2, wantErr: func(err error) bool { return err == nil }},
		{name: "end early, not streaming", fault: EndEarly(2), wantErr: func(err error) bool { return err != nil && !isReset(err) }},
		{name: "no fault", stream: true, wantEvents: -1, wantErr: func(err error) bool { return err == nil }, wantFinished: true},
	}
	for _, tt := range tests {
		for _, p := range providers {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				fake, call := p.start(t, func(FaultRequest) Fault { return tt.fault }, nil)
				o := call(context.Background(), tt.stream)
				if !tt.wantErr(o.err) || o.status != 0 {
					t.Errorf("err %v (status %d)", o.err, o.status)
				}
				if tt.wantEvents >= 0 && o.events != tt.wantEvents || tt.wantEvents < 0 && o.events == 0 {
					t.Errorf("%d events, want %d", o.events, tt.wantEvents)
				}
				if o.finished != tt.wantFinished {
					t.Errorf("finished %v, want %v", o.finished, tt.wantFinished)
				}
				if len(fake.Requests()) != 1 {
					t.Errorf("%d requests, want 1", len(fake.Requests()))
				}
			})
		}
	}
}

// TestFaultHang: the fake holds the request until the client gives up.
func TestFaultHang(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			_, call := p.start(t, func(FaultRequest) Fault {
				once.Do(cancel) // the request is there: give up on it
				return Hang()
			}, nil)
			if o := call(ctx, true); !errors.Is(o.err, context.Canceled) {
				t.Errorf("err %v, want context.Canceled", o.err)
			}
		})
	}
}

// TestFaultHTTP2 shows the faults that break connections under HTTP/2,
// where the fake resets the stream instead.
func TestFaultHTTP2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      Fault
		wantReset  bool
		wantEvents int
	}{
		{name: "reset before headers", fault: ResetBeforeHeaders(), wantReset: true},
		{name: "cut after events", fault: CutAfterEvents(2), wantReset: true, wantEvents: 2},
		{name: "end early", fault: EndEarly(2), wantEvents: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, call := providers[0].start(t, func(FaultRequest) Fault { return tt.fault }, &Options{HTTP2: true})
			o := call(context.Background(), true)
			reset := o.err != nil && strings.Contains(o.err.Error(), "stream error")
			if reset != tt.wantReset || (!tt.wantReset && o.err != nil) || o.events != tt.wantEvents || o.finished {
				t.Errorf("err %v, %d events, finished %v", o.err, o.events, o.finished)
			}
			if p := fake.Requests()[0].Proto; p != "HTTP/2.0" {
				t.Errorf("request over %s", p)
			}
		})
	}
}

// TestHangEndsWithTheTest: a request the fake holds does not keep the
// fake from shutting down; the client sees its connection reset.
func TestHangEndsWithTheTest(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	result := make(chan error, 1)
	t.Run("hang", func(t *testing.T) {
		var once sync.Once
		fake := NewAnthropic(t, &Anthropic{Fault: func(FaultRequest) Fault {
			once.Do(func() { close(arrived) })
			return Hang()
		}}, nil)
		// The client outlives this subtest, so it gets its own transport.
		tr := &http.Transport{TLSClientConfig: CA(t).ClientTLS()}
		go func() {
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Post(fake.URL+"/v1/messages", "application/json", strings.NewReader("{}"))
			if err == nil {
				resp.Body.Close()
			}
			result <- err
		}()
		<-arrived
	})
	if err := <-result; !isReset(err) {
		t.Errorf("err %v, want a reset", err)
	}
}

// TestFaultRequest checks what the Fault hook is told, and the per-key
// counts, by scripting "key 2 answers 429 with Retry-After: 7 on its
// third request".
func TestFaultRequest(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []FaultRequest
	fake := NewOpenAI(t, &OpenAI{Keys: []string{"k1", "k2"}, Fault: func(r FaultRequest) Fault {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		if r.Key == "k2" && r.KeyN == 3 {
			return RateLimited("7")
		}
		return Fault{}
	}}, nil)
	var statuses []int
	for i, key := range []string{"k1", "k2", "k2", "k1", "k2", "k2"} {
		c := openAIClient(t, fake.BaseURL(), key)
		p := chatParams("model-" + key)
		var err error
		if i%2 == 0 {
			_, err = c.Chat.Completions.New(context.Background(), p)
		} else {
			s := c.Chat.Completions.NewStreaming(context.Background(), p)
			for s.Next() {
			}
			err = s.Err()
		}
		var apiErr *openai.Error
		switch {
		case errors.As(err, &apiErr):
			statuses = append(statuses, apiErr.StatusCode)
			if ra := apiErr.Response.Header.Get("Retry-After"); ra != "7" {
				t.Errorf("Retry-After %q", ra)
			}
		case err != nil:
			t.Fatal(err)
		default:
			statuses = append(statuses, 200)
		}
	}
	if want := []int{200, 200, 200, 200, 429, 200}; !slices.Equal(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	if fake.KeyRequests("k1") != 2 || fake.KeyRequests("k2") != 4 || fake.KeyRequests("k3") != 0 {
		t.Errorf("KeyRequests k1 %d k2 %d k3 %d", fake.KeyRequests("k1"), fake.KeyRequests("k2"), fake.KeyRequests("k3"))
	}
	mu.Lock()
	defer mu.Unlock()
	for i, r := range seen {
		wantKeyN := map[int]int{0: 1, 1: 1, 2: 2, 3: 2, 4: 3, 5: 4}[i]
		if r.N != i+1 || r.KeyN != wantKeyN || r.Model != "model-"+r.Key || r.Path != "/v1/chat/completions" ||
			r.Stream != (i%2 == 1) || !strings.Contains(string(r.Body), r.Model) || r.Header.Get("Authorization") != "Bearer "+r.Key {
			t.Errorf("request %d: N %d KeyN %d key %q model %q path %q stream %v", i, r.N, r.KeyN, r.Key, r.Model, r.Path, r.Stream)
		}
	}
}

// TestFaultRequestFields checks that each fake reads key, model and stream
// from its own places.
func TestFaultRequestFields(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		for _, stream := range []bool{false, true} {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				var mu sync.Mutex
				var got FaultRequest
				_, call := p.start(t, func(r FaultRequest) Fault {
					mu.Lock()
					defer mu.Unlock()
					got = r
					return Fault{}
				}, nil)
				if o := call(context.Background(), stream); o.err != nil {
					t.Fatal(o.err)
				}
				mu.Lock()
				defer mu.Unlock()
				want := map[string]FaultRequest{
					"openai":    {Key: "sk-test", Model: "gpt-4o-mini", Path: "/v1/chat/completions"},
					"anthropic": {Key: "sk-ant-test", Model: "claude-sonnet-4-5", Path: "/v1/messages"},
					"gemini":    {Key: "AIza-test", Model: "gemini-2.5-flash", Path: "/v1beta/models/gemini-2.5-flash:generateContent"},
				}[p.name]
				if p.name == "gemini" && stream {
					want.Path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
				}
				if got.N != 1 || got.KeyN != 1 || got.Key != want.Key || got.Model != want.Model || got.Path != want.Path || got.Stream != stream {
					t.Errorf("got %+v, want %+v stream %v", got, want, stream)
				}
			})
		}
	}
}

func TestSequence(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			_, call := p.start(t, Sequence(Status(503), Fault{}, RateLimited("")), nil)
			var statuses []int
			for range 4 {
				statuses = append(statuses, call(context.Background(), false).status)
			}
			if want := []int{503, 0, 429, 0}; !slices.Equal(statuses, want) {
				t.Errorf("statuses %v, want %v", statuses, want)
			}
		})
	}
}

func TestStatusRefusesNonStatus(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 99, 1000, -429} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Status(%d) did not panic", code)
				}
			}()
			Status(code)
		}()
	}
}

func TestFaultString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    Fault
		want string
	}{
		{Fault{}, "no fault"},
		{RateLimited("7"), `RateLimited("7")`},
		{CutAfterEvents(3), "CutAfterEvents(3)"},
		{Status(503).WithCode("x").WithMessage("m").WithHeader("Retry-After", "2"), `Status(503).WithHeader("Retry-After", "2").WithCode("x").WithMessage("m")`},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}
