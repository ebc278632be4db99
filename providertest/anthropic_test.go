package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
)

func anthropicClient(t testing.TB, url, key string, opts ...aoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]aoption.RequestOption{
		aoption.WithBaseURL(url), aoption.WithAPIKey(key),
		aoption.WithHTTPClient(testClient(t)), aoption.WithMaxRetries(0),
	}, opts...)...)
}

func messageParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model: anthropic.Model(model), MaxTokens: 1024,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What is the weather in Paris?"))},
	}
}

// blockSummary is a content block as "type:text" (thinking, text) or
// "tool_use:id:name:input".
func blockSummary(b anthropic.ContentBlockUnion) string {
	switch b.Type {
	case "text":
		return "text:" + b.Text
	case "thinking":
		return "thinking:" + b.Thinking
	case "tool_use":
		return "tool_use:" + b.ID + ":" + b.Name + ":" + string(b.Input)
	}
	return b.Type
}

func TestAnthropicMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        Anthropic
		wantBlocks []string
		wantStop   string
	}{
		{name: "default reply", cfg: Anthropic{Name: "claude"}, wantBlocks: []string{"text:Hello from claude"}, wantStop: "end_turn"},
		{
			name:       "thinking, text, tool use",
			cfg:        Anthropic{Reply: []Delta{Reasoning("Look "), Reasoning("it up."), Text("Checking."), ToolCall(0, "toolu_w", "get_weather", `{"city":`), ToolArgs(0, `"Paris"}`)}},
			wantBlocks: []string{"thinking:Look it up.", "text:Checking.", `tool_use:toolu_w:get_weather:{"city":"Paris"}`},
			wantStop:   "tool_use",
		},
		{
			name:       "default tool id, max tokens",
			cfg:        Anthropic{Reply: []Delta{ToolCall(0, "", "f", `{}`)}, FinishReason: FinishLength},
			wantBlocks: []string{"tool_use:toolu_0:f:{}"}, wantStop: "max_tokens",
		},
		{
			name:       "refusal, cache usage",
			cfg:        Anthropic{Reply: []Delta{Text("No.")}, FinishReason: FinishContentFilter, CachedTokens: 7, CacheCreationTokens: 3},
			wantBlocks: []string{"text:No."}, wantStop: "refusal",
		},
		{name: "own stop reason", cfg: Anthropic{Reply: []Delta{Text("…")}, FinishReason: "pause_turn"}, wantBlocks: []string{"text:…"}, wantStop: "pause_turn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := NewAnthropic(t, &tt.cfg, nil)
			c := anthropicClient(t, fake.URL, "sk-ant-test")
			reply := tt.cfg.Reply
			if reply == nil {
				reply = defaultReply(tt.cfg.Name)
			}
			check := func(how string, msg *anthropic.Message, body []byte) {
				t.Helper()
				var blocks []string
				for _, b := range msg.Content {
					blocks = append(blocks, blockSummary(b))
					if b.Type == "thinking" && b.Signature == "" {
						t.Errorf("%s: thinking block without signature", how)
					}
				}
				if !slices.Equal(blocks, tt.wantBlocks) || string(msg.StopReason) != tt.wantStop || string(msg.Model) != "claude-sonnet-4-5" ||
					!strings.HasPrefix(msg.ID, "msg_") || msg.Role != "assistant" {
					t.Errorf("%s: blocks %q stop %q model %q id %q, want %q %q", how, blocks, msg.StopReason, msg.Model, msg.ID, tt.wantBlocks, tt.wantStop)
				}
				want := CountTokens(body, reply)
				u := msg.Usage
				if u.InputTokens != int64(want.Prompt-tt.cfg.CachedTokens-tt.cfg.CacheCreationTokens) || u.OutputTokens != int64(want.Completion) ||
					u.CacheReadInputTokens != int64(tt.cfg.CachedTokens) || u.CacheCreationInputTokens != int64(tt.cfg.CacheCreationTokens) {
					t.Errorf("%s: usage %s, want %+v", how, u.RawJSON(), want)
				}
			}

			msg, err := c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"))
			if err != nil {
				t.Fatal(err)
			}
			check("New", msg, lastBody(t, fake.Server))

			stream := c.Messages.NewStreaming(context.Background(), messageParams("claude-sonnet-4-5"))
			var acc anthropic.Message
			var types []string
			for stream.Next() {
				ev := stream.Current()
				types = append(types, ev.Type)
				if err := acc.Accumulate(ev); err != nil {
					t.Fatalf("accumulate %s: %v", ev.RawJSON(), err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			check("NewStreaming", &acc, lastBody(t, fake.Server))
			// The SDK drops ping events; TestAnthropicWire sees them.
			if len(types) < 4 || types[0] != "message_start" || types[1] != "content_block_start" ||
				!slices.Equal(types[len(types)-2:], []string{"message_delta", "message_stop"}) {
				t.Errorf("events %v", types)
			}
		})
	}
}

func TestAnthropicKeysAndVersion(t *testing.T) {
	t.Parallel()
	const good = "sk-ant-good-1234"
	fake := NewAnthropic(t, &Anthropic{Keys: []string{good}}, nil)
	tests := []struct {
		name       string
		key        string
		opts       []aoption.RequestOption
		wantStatus int
		wantType   string
	}{
		{name: "good key", key: good},
		{name: "wrong key", key: "sk-ant-wrong-9876", wantStatus: 401, wantType: "authentication_error"},
		// The SDK insists on a key, so it gets one and then loses the header.
		{name: "no key", key: "placeholder", opts: []aoption.RequestOption{aoption.WithHeaderDel("x-api-key")}, wantStatus: 401, wantType: "authentication_error"},
		{name: "no version", key: good, opts: []aoption.RequestOption{aoption.WithHeaderDel("anthropic-version")}, wantStatus: 400, wantType: "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := anthropicClient(t, fake.URL, tt.key, tt.opts...)
			_, err := c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"))
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %v, want an API error", err)
			}
			var body struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
				RequestID string `json:"request_id"`
			}
			json.Unmarshal([]byte(apiErr.RawJSON()), &body)
			if apiErr.StatusCode != tt.wantStatus || body.Type != "error" || body.Error.Type != tt.wantType || body.Error.Message == "" || body.RequestID == "" {
				t.Errorf("status %d body %s, want %d %s", apiErr.StatusCode, apiErr.RawJSON(), tt.wantStatus, tt.wantType)
			}
			if tt.key != "" && strings.Contains(apiErr.RawJSON(), tt.key) {
				t.Errorf("error body echoes the key: %s", apiErr.RawJSON())
			}
		})
	}
}

func TestAnthropicBadRequests(t *testing.T) {
	t.Parallel()
	fake := NewAnthropic(t, &Anthropic{Models: []string{"claude-haiku-4-5"}}, nil)
	hc := testClient(t)
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantType, want   string
	}{
		{"no max_tokens", "/v1/messages", `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", "max_tokens"},
		{"no model", "/v1/messages", `{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", "model"},
		{"no messages", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":5}`, 400, "invalid_request_error", "messages"},
		{"unknown model", "/v1/messages", `{"model":"claude-2","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 404, "not_found_error", "claude-2"},
		{"invalid JSON", "/v1/messages", `{`, 400, "invalid_request_error", "JSON"},
		{"unknown path", "/v1/complete", `{}`, 404, "not_found_error", ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("POST", fake.URL+tt.path, strings.NewReader(tt.body))
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Type, Message string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || body.Error.Type != tt.wantType || !strings.Contains(body.Error.Message, tt.want) {
			t.Errorf("%s: %d %+v, want %d %s %q", tt.name, resp.StatusCode, body.Error, tt.wantStatus, tt.wantType, tt.want)
		}
	}
}

func TestAnthropicCountTokensAndModels(t *testing.T) {
	t.Parallel()
	fake := NewAnthropic(t, nil, nil)
	c := anthropicClient(t, fake.URL, "sk-ant-test")
	count, err := c.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("How many tokens is this?"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := CountTokens(lastBody(t, fake.Server), nil).Prompt; count.InputTokens != int64(want) || want == 0 {
		t.Errorf("count_tokens %d, want %d", count.InputTokens, want)
	}
	page, err := c.Models.List(context.Background(), anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"claude-sonnet-4-5", "claude-haiku-4-5"}) || page.HasMore {
		t.Errorf("models %v has_more %v", ids, page.HasMore)
	}
	if m, err := c.Models.Get(context.Background(), "claude-haiku-4-5", anthropic.ModelGetParams{}); err != nil || m.ID != "claude-haiku-4-5" {
		t.Errorf("get: %v %v", m, err)
	}
}
