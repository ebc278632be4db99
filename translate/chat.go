package translate

import (
	"bytes"
	"encoding/json"
)

// chatChunk is a Chat Completions answer: a stream chunk (choices[].delta)
// or a whole completion (choices[].message); both are read alike.
type chatChunk struct {
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *chatUsage   `json:"usage"`
	// Error is set when a provider reports an error inside a 200 answer or
	// a stream (OpenAI, DeepSeek and vLLM send {"error":{...}} mid-stream).
	Error json.RawMessage `json:"error"`
}

type chatChoice struct {
	Index        int        `json:"index"`
	Delta        *chatDelta `json:"delta"`
	Message      *chatDelta `json:"message"`
	FinishReason *string    `json:"finish_reason"`
}

type chatDelta struct {
	Content text `json:"content"`
	// reasoning_content: DeepSeek, GLM, Qwen, Kimi, SiliconFlow;
	// reasoning: vLLM, Groq, OpenRouter, Ollama.
	ReasoningContent text              `json:"reasoning_content"`
	Reasoning        text              `json:"reasoning"`
	Refusal          text              `json:"refusal"`
	ToolCalls        []chatToolCallOut `json:"tool_calls"`
}

type chatToolCallOut struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string    `json:"name"`
		Arguments arguments `json:"arguments"`
	} `json:"function"`
}

type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	// DeepSeek reports cache hits here instead of prompt_tokens_details.
	PromptCacheHitTokens int64 `json:"prompt_cache_hit_tokens"`
}

// text is a content field: a string, null, or (Mistral) an array of parts
// whose "text" parts are the text. Any other value reads as no text.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	switch jsonKind(b) {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if json.Unmarshal(b, &parts) == nil {
			var s []byte
			for _, p := range parts {
				if p.Type == "text" {
					s = append(s, p.Text...)
				}
			}
			*t = text(s)
		}
	}
	return nil
}

// arguments is a tool call's arguments: a JSON string as the spec says, or
// (some Ollama and vLLM versions) the object itself, taken as its text.
type arguments string

func (a *arguments) UnmarshalJSON(b []byte) error {
	switch jsonKind(b) {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = arguments(s)
	case '{', '[':
		*a = arguments(compact(b))
	}
	return nil
}

// upstreamError reads the message and a code out of an in-band error,
// which is an object ({"message","type","code"}) or a bare string.
func upstreamError(raw json.RawMessage) (code, message string) {
	code = "server_error"
	var e struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	}
	switch jsonKind(raw) {
	case '{':
		json.Unmarshal(raw, &e)
	case '"':
		json.Unmarshal(raw, &e.Message)
	}
	if e.Message == "" {
		e.Message = "the provider reported an error"
	}
	if e.Type == "rate_limit_exceeded" || e.Type == "rate_limit_error" ||
		bytes.Contains(e.Code, []byte("rate_limit")) || string(e.Code) == "429" {
		code = "rate_limit_exceeded"
	}
	return code, "the provider reported an error: " + e.Message
}
