package providertest

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Delta is one piece of a scripted answer. In a stream each Delta is one
// chunk (OpenAI), one content_block_delta (Anthropic) or one chunk
// (Gemini). Set one field, most easily with Text, Reasoning, ToolCall or
// ToolArgs; a Delta with several goes out as reasoning, then text, then the
// tool call.
type Delta struct {
	Text      string         // answer text
	Reasoning string         // reasoning_content (DeepSeek, GLM, Qwen), thinking (Anthropic), a thought part (Gemini)
	Tool      *ToolCallDelta // a piece of a tool call
}

// ToolCallDelta is a piece of a tool call. The first piece of a call (the
// first with its Index) carries ID and Name; later ones only more
// Arguments, as OpenAI streams them. Give a call's pieces one after another:
// Anthropic and Gemini have no way to interleave calls.
type ToolCallDelta struct {
	Index     int    // which call of the answer, from 0
	ID        string // first piece only; default "call_<Index>" (OpenAI), "toolu_<Index>" (Anthropic); Gemini sends none
	Name      string // function name; first piece only
	Arguments string // a piece of the arguments, which together make a JSON object
}

// Text is a Delta of answer text.
func Text(s string) Delta { return Delta{Text: s} }

// Reasoning is a Delta of reasoning text.
func Reasoning(s string) Delta { return Delta{Reasoning: s} }

// ToolCall is the first piece of tool call index: its id, function name and
// the start of its arguments.
func ToolCall(index int, id, name, args string) Delta {
	return Delta{Tool: &ToolCallDelta{Index: index, ID: id, Name: name, Arguments: args}}
}

// ToolArgs is a later piece of tool call index: more of its arguments.
func ToolArgs(index int, args string) Delta {
	return Delta{Tool: &ToolCallDelta{Index: index, Arguments: args}}
}

// Finish reasons, in OpenAI's words; each fake says them in its own
// (Anthropic end_turn, max_tokens, tool_use, refusal; Gemini STOP,
// MAX_TOKENS, STOP, SAFETY). Any other value is sent as it is, so a test can
// send e.g. Anthropic's "pause_turn" or Gemini's "MALFORMED_FUNCTION_CALL".
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Tokens is the usage a fake reports for one answer. Counts are
// deterministic so that tests can predict them: see CountTokens.
type Tokens struct {
	Prompt     int // ceil(len(request body) / 4)
	Completion int // runes of the answer's text, reasoning and tool-call arguments
	Reasoning  int // runes of the reasoning (part of Completion)
}

// CountTokens is the usage every fake reports for an answer of reply to a
// request with this body (as the fake received it, e.g. from
// Server.Requests). How each provider spells it:
//
//   - OpenAI: prompt_tokens = Prompt, completion_tokens = Completion,
//     completion_tokens_details.reasoning_tokens = Reasoning,
//     prompt_tokens_details.cached_tokens = CachedTokens;
//   - Anthropic: input_tokens = Prompt − CachedTokens − CacheCreationTokens
//     (at least 0; Anthropic counts cache reads and writes apart),
//     output_tokens = Completion;
//   - Gemini: promptTokenCount = Prompt (it includes
//     cachedContentTokenCount = CachedTokens), candidatesTokenCount =
//     Completion − Reasoning, thoughtsTokenCount = Reasoning.
func CountTokens(body []byte, reply []Delta) Tokens {
	t := Tokens{Prompt: (len(body) + 3) / 4}
	for _, d := range reply {
		t.Reasoning += utf8.RuneCountInString(d.Reasoning)
		t.Completion += utf8.RuneCountInString(d.Text) + utf8.RuneCountInString(d.Reasoning)
		if d.Tool != nil {
			t.Completion += utf8.RuneCountInString(d.Tool.Arguments)
		}
	}
	return t
}

// defaultReply is what a fake answers when nothing is scripted.
func defaultReply(name string) []Delta {
	return []Delta{Text("Hello"), Text(" from "), Text(name)}
}

// script is the answer to one request.
type script struct {
	deltas []Delta
	finish string // in OpenAI's words, or verbatim
	tokens Tokens
}

// makeScript settles the answer: the Respond hook's, else the configured
// one, else the default; the finish reason defaults to tool_calls when the
// answer calls a tool and stop otherwise.
func makeScript(fr FaultRequest, respond func(FaultRequest) ([]Delta, string), reply []Delta, finish, name string) script {
	deltas := reply
	if respond != nil {
		deltas, finish = respond(fr)
	}
	if deltas == nil {
		deltas = defaultReply(name)
	}
	deltas = split(deltas)
	if finish == "" {
		finish = FinishStop
		for _, d := range deltas {
			if d.Tool != nil {
				finish = FinishToolCalls
				break
			}
		}
	}
	return script{deltas: deltas, finish: finish, tokens: CountTokens(fr.Body, deltas)}
}

// split breaks Deltas with several fields set into one Delta per field.
func split(in []Delta) []Delta {
	var out []Delta
	for _, d := range in {
		n := 0
		if d.Reasoning != "" {
			n++
		}
		if d.Text != "" {
			n++
		}
		if d.Tool != nil {
			n++
		}
		if n <= 1 {
			out = append(out, d)
			continue
		}
		if d.Reasoning != "" {
			out = append(out, Reasoning(d.Reasoning))
		}
		if d.Text != "" {
			out = append(out, Text(d.Text))
		}
		if d.Tool != nil {
			out = append(out, Delta{Tool: d.Tool})
		}
	}
	return out
}

type blockKind int

const (
	blockText blockKind = iota
	blockReasoning
	blockTool
)

// block is a run of Deltas of one kind: an Anthropic content block, a
// Responses output item.
type block struct {
	kind   blockKind
	pieces []string
	tool   ToolCallDelta // for blockTool: Index, ID, Name, and Arguments all together
}

func (b *block) text() string { return strings.Join(b.pieces, "") }

// blocks groups split Deltas into runs of one kind; a tool call's pieces
// join the block of its Index. idPrefix makes the default call id.
func blocks(deltas []Delta, idPrefix string) []*block {
	var out []*block
	tools := map[int]*block{}
	for _, d := range deltas {
		var last *block
		if len(out) > 0 {
			last = out[len(out)-1]
		}
		switch {
		case d.Tool != nil:
			if b := tools[d.Tool.Index]; b != nil {
				b.pieces = append(b.pieces, d.Tool.Arguments)
				b.tool.Arguments += d.Tool.Arguments
				continue
			}
			b := &block{kind: blockTool, pieces: []string{d.Tool.Arguments}, tool: *d.Tool}
			if b.tool.ID == "" {
				b.tool.ID = fmt.Sprintf("%s%d", idPrefix, d.Tool.Index)
			}
			tools[d.Tool.Index] = b
			out = append(out, b)
		case d.Reasoning != "":
			if last != nil && last.kind == blockReasoning {
				last.pieces = append(last.pieces, d.Reasoning)
				continue
			}
			out = append(out, &block{kind: blockReasoning, pieces: []string{d.Reasoning}})
		default:
			if last != nil && last.kind == blockText {
				last.pieces = append(last.pieces, d.Text)
				continue
			}
			out = append(out, &block{kind: blockText, pieces: []string{d.Text}})
		}
	}
	return out
}

// argsObject is a tool call's arguments as a JSON object, for the formats
// that carry them parsed (Anthropic's input, Gemini's args); arguments that
// are not a JSON object become {}.
func argsObject(args string) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(args), &obj) != nil || obj == nil {
		return json.RawMessage("{}")
	}
	return json.RawMessage(args)
}

// mustJSON marshals values the fakes build themselves, which cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
