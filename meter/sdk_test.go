package meter

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicstream "github.com/anthropics/anthropic-sdk-go/packages/ssestream"
	"github.com/openai/openai-go/v3"
	openaistream "github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"
	"google.golang.org/genai"

	"github.com/llmproxy/llmproxy/sse"
)

// TestFixturesAgreeWithSDKs reads every fixture with the provider's official
// SDK, which is the oracle twice over: the fixture has the shape the SDK
// expects, and the meter's mapping agrees with the SDK's fields.
func TestFixturesAgreeWithSDKs(t *testing.T) {
	t.Parallel()
	sdk := map[string]func(t *testing.T, data []byte) Usage{
		"openai_chat_stream.sse":        openAIStreamUsage,
		"openai_compat_stream.sse":      openAIStreamUsage,
		"openai_chat.json":              openAIChatUsage,
		"deepseek_chat.json":            deepSeekUsage,
		"openai_embeddings.json":        openAIEmbeddingsUsage,
		"responses_stream.sse":          responsesStreamUsage,
		"responses.json":                responsesUsageSDK,
		"anthropic_stream.sse":          anthropicStreamUsage,
		"anthropic_thinking_stream.sse": anthropicStreamUsage,
		"anthropic.json":                anthropicMessageUsage,
		"gemini_stream.sse":             geminiStreamUsage,
		"gemini_array.json":             geminiArrayUsage,
		"gemini_unary.json":             geminiUnaryUsage,
	}
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			t.Parallel()
			read, ok := sdk[fx.file]
			if !ok {
				t.Fatal("no SDK reader for this fixture")
			}
			data := fixture(t, fx.file)
			want := read(t, data)
			if want != fx.want {
				t.Errorf("SDK reads %+v, the table says %+v", want, fx.want)
			}
			if got, _ := Parse(fx.format, fx.stream, data); got != want {
				t.Errorf("meter reads %+v, the SDK %+v", got, want)
			}
		})
	}
}

func sseResponse(data []byte) *http.Response {
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"text/event-stream"}},
		Body:       io.NopCloser(bytes.NewReader(data)),
	}
}

func fromOpenAI(u openai.CompletionUsage) Usage {
	return Usage{
		Input:       u.PromptTokens,
		CachedInput: u.PromptTokensDetails.CachedTokens,
		Output:      u.CompletionTokens,
		Reasoning:   u.CompletionTokensDetails.ReasoningTokens,
	}
}

func openAIStreamUsage(t *testing.T, data []byte) Usage {
	s := openaistream.NewStream[openai.ChatCompletionChunk](openaistream.NewDecoder(sseResponse(data)), nil)
	var u Usage
	for s.Next() {
		if c := s.Current(); c.JSON.Usage.Valid() {
			u = fromOpenAI(c.Usage)
		}
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	return u
}

func openAIChatUsage(t *testing.T, data []byte) Usage {
	var c openai.ChatCompletion
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return fromOpenAI(c.Usage)
}

// deepSeekUsage: the SDK keeps fields it does not know in ExtraFields;
// DeepSeek documents prompt_cache_hit_tokens as the cached part of
// prompt_tokens.
func deepSeekUsage(t *testing.T, data []byte) Usage {
	var c openai.ChatCompletion
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	u := fromOpenAI(c.Usage)
	hit, ok := c.Usage.JSON.ExtraFields["prompt_cache_hit_tokens"]
	if !ok {
		t.Fatal("no prompt_cache_hit_tokens")
	}
	if err := json.Unmarshal([]byte(hit.Raw()), &u.CachedInput); err != nil {
		t.Fatal(err)
	}
	return u
}

func openAIEmbeddingsUsage(t *testing.T, data []byte) Usage {
	var e openai.CreateEmbeddingResponse
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	return Usage{Input: e.Usage.PromptTokens}
}

func fromResponses(u responses.ResponseUsage) Usage {
	return Usage{
		Input:       u.InputTokens,
		CachedInput: u.InputTokensDetails.CachedTokens,
		Output:      u.OutputTokens,
		Reasoning:   u.OutputTokensDetails.ReasoningTokens,
	}
}

func responsesStreamUsage(t *testing.T, data []byte) Usage {
	s := openaistream.NewStream[responses.ResponseStreamEventUnion](openaistream.NewDecoder(sseResponse(data)), nil)
	var u Usage
	for s.Next() {
		if ev := s.Current(); ev.Type == "response.completed" {
			u = fromResponses(ev.AsResponseCompleted().Response.Usage)
		}
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	return u
}

func responsesUsageSDK(t *testing.T, data []byte) Usage {
	var r responses.Response
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return fromResponses(r.Usage)
}

// fromAnthropic: the SDK keeps Anthropic's convention (input_tokens without
// the cache); Usage.Input has them all.
func fromAnthropic(u anthropic.Usage) Usage {
	return Usage{
		Input:       u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		CachedInput: u.CacheReadInputTokens,
		CacheWrite:  u.CacheCreationInputTokens,
		Output:      u.OutputTokens,
		Reasoning:   u.OutputTokensDetails.ThinkingTokens,
	}
}

// anthropicStreamUsage uses the SDK's own accumulation of a stream.
func anthropicStreamUsage(t *testing.T, data []byte) Usage {
	s := anthropicstream.NewStream[anthropic.MessageStreamEventUnion](anthropicstream.NewDecoder(sseResponse(data)), nil)
	var msg anthropic.Message
	for s.Next() {
		if err := msg.Accumulate(s.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	return fromAnthropic(msg.Usage)
}

func anthropicMessageUsage(t *testing.T, data []byte) Usage {
	var m anthropic.Message
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return fromAnthropic(m.Usage)
}

func fromGemini(t *testing.T, r *genai.GenerateContentResponse) Usage {
	m := r.UsageMetadata
	if m == nil {
		t.Fatal("no usageMetadata")
	}
	// The SDK's own sum: totalTokenCount = prompt + tool-use prompt + candidates + thoughts.
	if m.PromptTokenCount+m.ToolUsePromptTokenCount+m.CandidatesTokenCount+m.ThoughtsTokenCount != m.TotalTokenCount {
		t.Errorf("fixture's totalTokenCount %d is not the sum of its parts", m.TotalTokenCount)
	}
	return Usage{
		Input:       int64(m.PromptTokenCount + m.ToolUsePromptTokenCount),
		CachedInput: int64(m.CachedContentTokenCount),
		Output:      int64(m.CandidatesTokenCount + m.ThoughtsTokenCount),
		Reasoning:   int64(m.ThoughtsTokenCount),
	}
}

func geminiStreamUsage(t *testing.T, data []byte) Usage {
	r := sse.NewReader(bytes.NewReader(data))
	var last genai.GenerateContentResponse
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ev.Data, &last); err != nil {
			t.Fatal(err)
		}
	}
	return fromGemini(t, &last)
}

func geminiArrayUsage(t *testing.T, data []byte) Usage {
	var chunks []*genai.GenerateContentResponse
	if err := json.Unmarshal(data, &chunks); err != nil || len(chunks) == 0 {
		t.Fatal(err)
	}
	return fromGemini(t, chunks[len(chunks)-1])
}

func geminiUnaryUsage(t *testing.T, data []byte) Usage {
	var r genai.GenerateContentResponse
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return fromGemini(t, &r)
}
