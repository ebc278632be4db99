package translate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llmproxy/llmproxy/providertest"
)

// streamed is what the SDK made of a translated stream.
type streamed struct {
	events   []responses.ResponseStreamEventUnion
	text     string // the output_text deltas, concatenated
	final    *responses.Response
	terminal string // response.completed, .incomplete or .failed; "" when none came
	err      error
	acc      responses.ResponseAccumulator // the SDK's own accumulation
}

func stream(t *testing.T, c openai.Client, params responses.ResponseNewParams) *streamed {
	t.Helper()
	s := &streamed{}
	st := c.Responses.NewStreaming(context.Background(), params)
	defer st.Close()
	for st.Next() {
		ev := st.Current()
		s.events = append(s.events, ev)
		switch ev.Type {
		case "response.output_text.delta":
			s.text += ev.Delta
		case "response.completed", "response.incomplete", "response.failed":
			r := ev.Response
			s.final, s.terminal = &r, ev.Type
		}
		var ws responses.ResponsesServerEventUnion
		if err := json.Unmarshal([]byte(ev.RawJSON()), &ws); err != nil {
			t.Fatalf("event %s: %v", ev.Type, err)
		}
		if err := s.acc.AddEvent(ws); err != nil {
			t.Fatalf("the SDK's accumulator refused %s: %v", ev.RawJSON(), err)
		}
	}
	s.err = st.Err()
	if s.err == nil {
		checkSequence(t, s.events)
	}
	return s
}

// checkSequence checks the invariants of a whole Responses stream:
// sequence numbers 0, 1, 2…; created and in_progress first; every item
// announced before its deltas, with the same id throughout, and done last;
// one terminal event at the end.
func checkSequence(t *testing.T, events []responses.ResponseStreamEventUnion) {
	t.Helper()
	if len(events) < 3 || events[0].Type != "response.created" || events[1].Type != "response.in_progress" {
		t.Fatalf("stream does not start with created, in_progress: %d events", len(events))
	}
	ids := map[int64]string{}
	done := map[int64]bool{}
	for i, ev := range events {
		if ev.SequenceNumber != int64(i) {
			t.Errorf("event %d (%s) has sequence_number %d", i, ev.Type, ev.SequenceNumber)
		}
		switch ev.Type {
		case "response.created", "response.in_progress":
			if ev.Response.Status != "in_progress" || len(ev.Response.Output) != 0 {
				t.Errorf("%s: status %q, %d items", ev.Type, ev.Response.Status, len(ev.Response.Output))
			}
		case "response.output_item.added":
			if _, ok := ids[ev.OutputIndex]; ok || ev.Item.ID == "" || int(ev.OutputIndex) != len(ids) {
				t.Errorf("output_item.added at index %d (id %q) out of order", ev.OutputIndex, ev.Item.ID)
			}
			ids[ev.OutputIndex] = ev.Item.ID
		case "response.output_item.done":
			if ids[ev.OutputIndex] != ev.Item.ID || done[ev.OutputIndex] {
				t.Errorf("output_item.done at %d: id %q, announced %q", ev.OutputIndex, ev.Item.ID, ids[ev.OutputIndex])
			}
			done[ev.OutputIndex] = true
		case "response.completed", "response.incomplete", "response.failed":
			if i != len(events)-1 {
				t.Errorf("%s is not the last event", ev.Type)
			}
			if len(ev.Response.Output) != len(ids) {
				t.Errorf("%s lists %d items, the stream announced %d", ev.Type, len(ev.Response.Output), len(ids))
			}
			for j, it := range ev.Response.Output {
				if it.ID != ids[int64(j)] {
					t.Errorf("%s item %d id %q, announced %q", ev.Type, j, it.ID, ids[int64(j)])
				}
			}
		default:
			if ev.ItemID == "" || ids[ev.OutputIndex] != ev.ItemID || done[ev.OutputIndex] {
				t.Errorf("%s for item %q at %d (announced %q, done %v)", ev.Type, ev.ItemID, ev.OutputIndex, ids[ev.OutputIndex], done[ev.OutputIndex])
			}
		}
	}
	last := events[len(events)-1].Type
	if last != "response.completed" && last != "response.incomplete" && last != "response.failed" {
		t.Errorf("stream ends with %s", last)
	}
}

// answer gets the same request both ways.
type answer struct {
	resp *responses.Response
	s    *streamed
}

func both(t *testing.T, c openai.Client, params responses.ResponseNewParams) answer {
	t.Helper()
	resp, err := c.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatalf("Responses.New: %v", err)
	}
	s := stream(t, c, params)
	if s.err != nil || s.final == nil {
		t.Fatalf("Responses.NewStreaming: %v (terminal %q)", s.err, s.terminal)
	}
	return answer{resp, s}
}

func TestSDKText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		o            providertest.OpenAI
		instructions string
		wantUsage    bool
	}{
		{"openai usage chunk", providertest.OpenAI{CachedTokens: 3}, "", true},
		{"instructions", providertest.OpenAI{}, "Answer in one word.", true},
		{"usage on the last chunk", providertest.OpenAI{UsageOnLastChunk: true}, "", true},
		{"no usage", providertest.OpenAI{NoUsage: true}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up, _, c := setup(t, tc.o, Options{})
			params := responses.ResponseNewParams{
				Model: "glm-4.7",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi there")},
			}
			if tc.instructions != "" {
				params.Instructions = openai.String(tc.instructions)
			}
			a := both(t, c, params)
			reqs, bodies := received(t, up)
			if len(reqs) != 2 {
				t.Fatalf("provider got %d requests, want 2", len(reqs))
			}
			for i, r := range []*responses.Response{a.resp, a.s.final} {
				if got := r.OutputText(); got != "Hello from glm" {
					t.Errorf("answer %d: output_text %q", i, got)
				}
				if r.Status != "completed" || !strings.HasPrefix(r.ID, "resp_") || r.Object != "response" || r.Model != "glm-4.7" {
					t.Errorf("answer %d: status %q id %q object %q model %q", i, r.Status, r.ID, r.Object, r.Model)
				}
				if stored(r) || r.CreatedAt == 0 || r.Instructions.OfString != tc.instructions {
					t.Errorf("answer %d: store %v created_at %v instructions %q", i, stored(r), r.CreatedAt, r.Instructions.OfString)
				}
				if reqs[i].URI != "/v1/chat/completions" || reqs[i].Method != "POST" {
					t.Errorf("request %d went to %s %s", i, reqs[i].Method, reqs[i].URI)
				}
				if got := reqs[i].Header.Get("Authorization"); got != "Bearer sk-test-key" {
					t.Errorf("request %d: Authorization %q", i, got)
				}
				msgs := bodies[i].Messages
				if tc.instructions != "" {
					if len(msgs) != 2 || msgs[0].Role != "system" || str(msgs[0].Content) != tc.instructions {
						t.Fatalf("request %d: messages %+v", i, msgs)
					}
					msgs = msgs[1:]
				}
				if len(msgs) != 1 || msgs[0].Role != "user" || str(msgs[0].Content) != "Hi there" {
					t.Errorf("request %d: messages %+v", i, msgs)
				}
				want := providertest.CountTokens(reqs[i].Body, []providertest.Delta{providertest.Text("Hello from glm")})
				u := r.Usage
				if !tc.wantUsage {
					if r.JSON.Usage.Raw() != "null" {
						t.Errorf("answer %d: usage %s without a provider's usage", i, r.JSON.Usage.Raw())
					}
					continue
				}
				if u.InputTokens != int64(want.Prompt) || u.OutputTokens != int64(want.Completion) ||
					u.TotalTokens != int64(want.Prompt+want.Completion) || u.InputTokensDetails.CachedTokens != int64(tc.o.CachedTokens) {
					t.Errorf("answer %d: usage %+v, want %+v cached %d", i, u, want, tc.o.CachedTokens)
				}
			}
			if bodies[0].Stream || bodies[0].StreamOptions != nil {
				t.Errorf("non-streaming request asked for a stream")
			}
			if !bodies[1].Stream || bodies[1].StreamOptions == nil || !bodies[1].StreamOptions.IncludeUsage {
				t.Errorf("streaming request: stream %v options %+v", bodies[1].Stream, bodies[1].StreamOptions)
			}
			if a.s.text != "Hello from glm" {
				t.Errorf("deltas make %q", a.s.text)
			}
		})
	}
}

var weatherSchema = map[string]any{
	"type":                 "object",
	"properties":           map[string]any{"city": map[string]any{"type": "string"}},
	"required":             []string{"city"},
	"additionalProperties": false,
}

func TestSDKFunctionCallRoundTrip(t *testing.T) {
	t.Parallel()
	for _, streaming := range []bool{false, true} {
		name := map[bool]string{false: "unary", true: "stream"}[streaming]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			respond := func(r providertest.FaultRequest) ([]providertest.Delta, string) {
				if strings.Contains(string(r.Body), `"role":"tool"`) {
					return []providertest.Delta{providertest.Text("It is 21°C"), providertest.Text(" in Paris.")}, ""
				}
				return []providertest.Delta{
					providertest.Text("Let me look."),
					providertest.ToolCall(0, "call_w1", "get_weather", `{"city":`),
					providertest.ToolArgs(0, `"Paris"}`),
				}, ""
			}
			up, _, c := setup(t, providertest.OpenAI{Respond: respond}, Options{})
			ask := func(input responses.ResponseInputParam) *responses.Response {
				params := responses.ResponseNewParams{
					Model: "glm-4.7",
					Input: responses.ResponseNewParamsInputUnion{OfInputItemList: input},
					Tools: []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather", weatherSchema, true)},
				}
				if !streaming {
					r, err := c.Responses.New(context.Background(), params)
					if err != nil {
						t.Fatal(err)
					}
					return r
				}
				s := stream(t, c, params)
				if s.err != nil || s.terminal != "response.completed" {
					t.Fatalf("stream: %v, terminal %q", s.err, s.terminal)
				}
				return s.final
			}
			input := responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser)}
			first := ask(input)
			if len(first.Output) != 2 {
				t.Fatalf("first answer has %d items: %s", len(first.Output), first.RawJSON())
			}
			msg, call := first.Output[0], first.Output[1]
			if msg.Type != "message" || first.OutputText() != "Let me look." {
				t.Errorf("first item %q %q", msg.Type, first.OutputText())
			}
			if call.Type != "function_call" || call.Name != "get_weather" || call.CallID != "call_w1" ||
				call.Arguments.OfString != `{"city":"Paris"}` || call.Status != "completed" || !strings.HasPrefix(call.ID, "fc_") {
				t.Fatalf("call item: %s", call.RawJSON())
			}
			// What an agent does: replay the answer, add the tool's output.
			out := responses.ResponseInputItemParamOfFunctionCallOutput("21°C, sunny")
			out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
			fc := call.AsFunctionCall().ToParam()
			m := msg.AsMessage().ToParam()
			input = append(input,
				responses.ResponseInputItemUnionParam{OfOutputMessage: &m},
				responses.ResponseInputItemUnionParam{OfFunctionCall: &fc},
				out)
			second := ask(input)
			if second.OutputText() != "It is 21°C in Paris." || second.Status != "completed" {
				t.Errorf("second answer %q (%s)", second.OutputText(), second.Status)
			}

			_, bodies := received(t, up)
			if len(bodies) != 2 {
				t.Fatalf("provider got %d requests", len(bodies))
			}
			var tools []map[string]any
			json.Unmarshal(bodies[0].Tools, &tools)
			if len(tools) != 1 || tools[0]["type"] != "function" {
				t.Fatalf("tools sent: %s", bodies[0].Tools)
			}
			fn := tools[0]["function"].(map[string]any)
			if fn["name"] != "get_weather" || fn["strict"] != true || fn["parameters"].(map[string]any)["type"] != "object" {
				t.Errorf("function sent: %v", fn)
			}
			msgs := bodies[1].Messages
			if len(msgs) != 3 {
				t.Fatalf("second request has %d messages: %+v", len(msgs), msgs)
			}
			if msgs[0].Role != "user" || str(msgs[0].Content) != "Weather in Paris?" {
				t.Errorf("message 0: %+v", msgs[0])
			}
			// The answer's text and its call are one assistant turn.
			a := msgs[1]
			if a.Role != "assistant" || str(a.Content) != "Let me look." || len(a.ToolCalls) != 1 ||
				a.ToolCalls[0].ID != "call_w1" || a.ToolCalls[0].Type != "function" ||
				a.ToolCalls[0].Function.Name != "get_weather" || a.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` {
				t.Errorf("assistant turn: %+v", a)
			}
			if msgs[2].Role != "tool" || msgs[2].ToolCallID != "call_w1" || str(msgs[2].Content) != "21°C, sunny" {
				t.Errorf("tool message: %+v", msgs[2])
			}
		})
	}
}

func TestSDKParallelCalls(t *testing.T) {
	t.Parallel()
	reply := []providertest.Delta{
		providertest.ToolCall(0, "call_a", "get_weather", `{"city":"Paris"}`),
		providertest.ToolCall(1, "call_b", "get_weather", `{"city":`),
		providertest.ToolArgs(1, `"Oslo"}`),
	}
	_, _, c := setup(t, providertest.OpenAI{Reply: reply}, Options{})
	a := both(t, c, responses.ResponseNewParams{
		Model: "glm-4.7",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Paris and Oslo?")},
		Tools: []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather", weatherSchema, true)},
	})
	for i, r := range []*responses.Response{a.resp, a.s.final} {
		if len(r.Output) != 2 {
			t.Fatalf("answer %d: %d items", i, len(r.Output))
		}
		for j, want := range [][2]string{{"call_a", `{"city":"Paris"}`}, {"call_b", `{"city":"Oslo"}`}} {
			it := r.Output[j]
			if it.Type != "function_call" || it.CallID != want[0] || it.Arguments.OfString != want[1] {
				t.Errorf("answer %d item %d: %s", i, j, it.RawJSON())
			}
		}
		if r.OutputText() != "" {
			t.Errorf("answer %d: output_text %q", i, r.OutputText())
		}
	}
}

func TestSDKStructuredOutput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		format responses.ResponseFormatTextConfigUnionParam
		want   string
	}{
		{"json_schema", func() responses.ResponseFormatTextConfigUnionParam {
			f := responses.ResponseFormatTextConfigParamOfJSONSchema("weather", weatherSchema)
			f.OfJSONSchema.Strict = openai.Bool(true)
			return f
		}(), `{"type":"json_schema","json_schema":{"name":"weather","schema":{"additionalProperties":false,"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"},"strict":true}}`},
		{"json_object", responses.ResponseFormatTextConfigUnionParam{OfJSONObject: &responses.ResponseFormatJSONObjectParam{}},
			`{"type":"json_object"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up, _, c := setup(t, providertest.OpenAI{Reply: []providertest.Delta{providertest.Text(`{"city":`), providertest.Text(`"Paris"}`)}}, Options{})
			a := both(t, c, responses.ResponseNewParams{
				Model: "glm-4.7",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Where?")},
				Text:  responses.ResponseTextConfigParam{Format: tc.format},
			})
			for i, r := range []*responses.Response{a.resp, a.s.final} {
				var v struct{ City string }
				if err := json.Unmarshal([]byte(r.OutputText()), &v); err != nil || v.City != "Paris" {
					t.Errorf("answer %d: %q", i, r.OutputText())
				}
				if r.Text.Format.Type != tc.name {
					t.Errorf("answer %d echoes text.format %s", i, r.Text.RawJSON())
				}
			}
			_, bodies := received(t, up)
			for i, b := range bodies {
				if string(b.ResponseFormat) != tc.want {
					t.Errorf("request %d response_format %s, want %s", i, b.ResponseFormat, tc.want)
				}
			}
		})
	}
}

func TestSDKReasoning(t *testing.T) {
	t.Parallel()
	reply := []providertest.Delta{providertest.Reasoning("Let me think"), providertest.Reasoning(" hard."), providertest.Text("42")}
	up, _, c := setup(t, providertest.OpenAI{Reply: reply}, Options{})
	a := both(t, c, responses.ResponseNewParams{
		Model:     "glm-4.7",
		Input:     responses.ResponseNewParamsInputUnion{OfString: openai.String("Meaning of life?")},
		Reasoning: openai.ReasoningParam{Effort: openai.ReasoningEffortHigh},
	})
	for i, r := range []*responses.Response{a.resp, a.s.final} {
		if len(r.Output) != 2 || r.Output[0].Type != "reasoning" || r.Output[1].Type != "message" {
			t.Fatalf("answer %d: %s", i, r.JSON.Output.Raw())
		}
		rs := r.Output[0].AsReasoning()
		if len(rs.Content) != 1 || rs.Content[0].Text != "Let me think hard." || rs.Content[0].Type != "reasoning_text" || !strings.HasPrefix(rs.ID, "rs_") {
			t.Errorf("answer %d reasoning: %s", i, rs.RawJSON())
		}
		if r.OutputText() != "42" || r.Usage.OutputTokensDetails.ReasoningTokens != int64(len("Let me think hard.")) {
			t.Errorf("answer %d: %q, usage %s", i, r.OutputText(), r.Usage.RawJSON())
		}
		if r.Reasoning.Effort != "high" {
			t.Errorf("answer %d echoes reasoning %s", i, r.Reasoning.RawJSON())
		}
	}
	var deltas string
	for _, ev := range a.s.events {
		if ev.Type == "response.reasoning_text.delta" {
			deltas += ev.Delta
		}
		if ev.Type == "response.reasoning_text.done" && ev.Text != "Let me think hard." {
			t.Errorf("reasoning_text.done %q", ev.Text)
		}
	}
	if deltas != "Let me think hard." {
		t.Errorf("reasoning deltas %q", deltas)
	}
	_, bodies := received(t, up)
	for i, b := range bodies {
		if string(b.Reasoning) != `"high"` {
			t.Errorf("request %d reasoning_effort %s", i, b.Reasoning)
		}
	}
}

func TestSDKIncomplete(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ finish, reason string }{
		{providertest.FinishLength, "max_output_tokens"},
		{providertest.FinishContentFilter, "content_filter"},
		{"sensitive", "content_filter"}, // GLM's word for it
	} {
		t.Run(tc.finish, func(t *testing.T) {
			t.Parallel()
			up, _, c := setup(t, providertest.OpenAI{FinishReason: tc.finish}, Options{})
			a := both(t, c, responses.ResponseNewParams{
				Model:           "glm-4.7",
				Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Tell me everything")},
				MaxOutputTokens: openai.Int(16),
			})
			if a.s.terminal != "response.incomplete" {
				t.Errorf("stream ends with %q", a.s.terminal)
			}
			for i, r := range []*responses.Response{a.resp, a.s.final} {
				if r.Status != "incomplete" || r.IncompleteDetails.Reason != tc.reason || r.MaxOutputTokens != 16 {
					t.Errorf("answer %d: status %q details %s max %d", i, r.Status, r.IncompleteDetails.RawJSON(), r.MaxOutputTokens)
				}
				if r.OutputText() != "Hello from glm" || r.Output[0].Status != "incomplete" {
					t.Errorf("answer %d: %q item status %q", i, r.OutputText(), r.Output[0].Status)
				}
			}
			_, bodies := received(t, up)
			for i, b := range bodies {
				if string(b.MaxTokens) != "16" {
					t.Errorf("request %d max_tokens %s", i, b.MaxTokens)
				}
			}
		})
	}
}

// An answer cut by max_output_tokens while the model still reasoned ends
// with its reasoning, incomplete, as OpenAI's does: no empty message is
// made up after it (it would be the last item, and completed). One cut
// before any output has its empty message, incomplete. Neither is stored
// with a made-up assistant turn for previous_response_id.
func TestSDKIncompleteWhileReasoning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		reply    []providertest.Delta
		wantType string
	}{
		{"reasoning", []providertest.Delta{providertest.Reasoning("Let me "), providertest.Reasoning("think")}, "reasoning"},
		{"nothing", []providertest.Delta{}, "message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := NewStore(time.Minute, 0)
			_, _, c := setup(t, providertest.OpenAI{Reply: tc.reply, FinishReason: providertest.FinishLength}, Options{Store: store})
			a := both(t, c, responses.ResponseNewParams{
				Model:           "glm-4.7",
				Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Think hard")},
				MaxOutputTokens: openai.Int(16),
			})
			if a.s.terminal != "response.incomplete" {
				t.Errorf("stream ends with %q", a.s.terminal)
			}
			rebuilt, err := a.s.acc.ReconstructedResponse()
			if err != nil {
				t.Fatalf("accumulator: %v", err)
			}
			for i, r := range []*responses.Response{a.resp, a.s.final, rebuilt} {
				if r.Status != "incomplete" || r.IncompleteDetails.Reason != "max_output_tokens" {
					t.Errorf("answer %d: status %q details %s", i, r.Status, r.IncompleteDetails.RawJSON())
				}
				if len(r.Output) != 1 || r.Output[0].Type != tc.wantType || r.Output[0].Status != "incomplete" || r.OutputText() != "" {
					t.Errorf("answer %d output: %s", i, r.JSON.Output.Raw())
					continue
				}
				if tc.wantType == "reasoning" {
					if rs := r.Output[0].AsReasoning(); rs.Status != "incomplete" || len(rs.Content) != 1 || rs.Content[0].Text != "Let me think" {
						t.Errorf("answer %d reasoning: %s", i, rs.RawJSON())
					}
				}
			}
			for i, id := range []string{a.resp.ID, a.s.final.ID} {
				items, ok := store.items(id, "")
				if !ok {
					t.Fatalf("answer %d was not kept", i)
				}
				for _, it := range items {
					if strings.Contains(string(it), `"role":"assistant"`) {
						t.Errorf("answer %d stored a made-up assistant turn: %s", i, it)
					}
				}
			}
		})
	}
}

// An upstream that breaks off its stream: the SDK must see an error, and
// no terminal event may have been made up.
func TestSDKCutStream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault providertest.Fault
	}{
		{"reset after two chunks", providertest.CutAfterEvents(2)},
		{"reset before the first byte", providertest.CutBeforeFirstByte()},
		{"clean close without finish_reason", providertest.EndEarly(3)},
		{"clean close with no chunk", providertest.EndEarly(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := tc.fault
			_, _, c := setup(t, providertest.OpenAI{Fault: func(providertest.FaultRequest) providertest.Fault { return f }}, Options{})
			params := responses.ResponseNewParams{
				Model: "glm-4.7",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")},
			}
			s := stream(t, c, params)
			if s.err == nil {
				t.Errorf("the SDK saw no error (terminal %q, %d events)", s.terminal, len(s.events))
			}
			if s.terminal != "" {
				t.Errorf("a terminal %s was made up", s.terminal)
			}
			// Not streaming: the half answer is no answer.
			if _, err := c.Responses.New(context.Background(), params); err == nil {
				t.Errorf("Responses.New succeeded on a cut answer")
			}
		})
	}
}

func TestSDKUpstreamErrorsPassThrough(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fault  providertest.Fault
		status int
		msg    string
	}{
		{"429", providertest.RateLimited("7"), 429, "Rate limit reached for glm-4.7 on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 7s."},
		{"500", providertest.Status(500), 500, "The server had an error while processing your request. Sorry about that!"},
		{"503", providertest.Status(503), 503, "The engine is currently overloaded, please try again later."},
		{"400 context length", providertest.ContextLengthExceeded(), 400, "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := tc.fault
			up, _, c := setup(t, providertest.OpenAI{Fault: func(providertest.FaultRequest) providertest.Fault { return f }}, Options{})
			params := responses.ResponseNewParams{Model: "glm-4.7", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")}}
			_, err := c.Responses.New(context.Background(), params)
			e := sdkError(t, err)
			if e.StatusCode != tc.status || e.Message != tc.msg || e.Response.Header.Get("X-Proxy-Error") != "" {
				t.Errorf("got %d %q (X-Proxy-Error %q)", e.StatusCode, e.Message, e.Response.Header.Get("X-Proxy-Error"))
			}
			if tc.status == 429 && e.Response.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After %q", e.Response.Header.Get("Retry-After"))
			}
			s := stream(t, c, params)
			if e := sdkError(t, s.err); e.StatusCode != tc.status || e.Message != tc.msg {
				t.Errorf("stream: %d %q", e.StatusCode, e.Message)
			}
			if n := len(up.Requests()); n != 2 {
				t.Errorf("provider got %d requests", n)
			}
		})
	}
}

// A refused field reaches the SDK as an API error that names it.
func TestSDKRefusal(t *testing.T) {
	t.Parallel()
	up, _, c := setup(t, providertest.OpenAI{}, Options{})
	_, err := c.Responses.New(context.Background(), responses.ResponseNewParams{
		Model: "glm-4.7",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("News?")},
		Tools: []responses.ToolUnionParam{
			responses.ToolParamOfFunction("get_weather", weatherSchema, true),
			responses.ToolParamOfWebSearch(responses.WebSearchToolTypeWebSearch),
		},
	})
	e := sdkError(t, err)
	if e.StatusCode != 400 || e.Param != "tools[1].type" || e.Code != "unsupported_parameter" ||
		e.Type != "invalid_request_error" || !strings.Contains(e.Message, "web_search") ||
		e.Response.Header.Get("X-Proxy-Error") != "true" {
		t.Errorf("got %d param %q code %q type %q: %s", e.StatusCode, e.Param, e.Code, e.Type, e.Message)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("provider got %d requests", n)
	}
}

// The stream, as the SDK accumulates it, is the non-streaming answer.
func TestSDKStreamEqualsUnary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		reply  []providertest.Delta
		finish string
	}{
		{"text", []providertest.Delta{providertest.Text("Hello"), providertest.Text(", "), providertest.Text("world")}, ""},
		{"reasoning and text", []providertest.Delta{providertest.Reasoning("Hmm."), providertest.Text("Yes.")}, ""},
		{"text and calls", []providertest.Delta{
			providertest.Text("Checking."),
			providertest.ToolCall(0, "call_1", "get_weather", `{"city":"Rome"}`),
			providertest.ToolCall(1, "call_2", "get_weather", `{"ci`),
			providertest.ToolArgs(1, `ty":"Bern"}`),
		}, ""},
		{"cut by length", []providertest.Delta{providertest.Reasoning("Long"), providertest.Text("and on and")}, providertest.FinishLength},
		{"empty answer", []providertest.Delta{providertest.Text("")}, ""},
		{"cut while reasoning", []providertest.Delta{providertest.Reasoning("Long")}, providertest.FinishLength},
		{"cut before any output", []providertest.Delta{}, providertest.FinishLength},
		{"unicode", []providertest.Delta{providertest.Text("héllo <b>&</b> \u2028 \"q\" \\ 世界"), providertest.Text("🙂\n")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := providertest.OpenAI{Reply: tc.reply, FinishReason: tc.finish, CachedTokens: 2}
			up := fake(t, o)
			base := strings.TrimSuffix(up.BaseURL(), "/")
			// Two proxies with the same id counter and clock: both answers
			// must come out with the same bytes.
			unary := newProxy(t, base, fixedOptions()).client(t)
			streaming := newProxy(t, base, fixedOptions()).client(t)
			params := responses.ResponseNewParams{
				Model: "glm-4.7",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Go")},
				Tools: []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather", weatherSchema, true)},
			}
			r, err := unary.Responses.New(context.Background(), params)
			if err != nil {
				t.Fatal(err)
			}
			s := stream(t, streaming, params)
			if s.err != nil || s.final == nil {
				t.Fatalf("stream: %v", s.err)
			}
			if got, want := s.final.JSON.Output.Raw(), r.JSON.Output.Raw(); got != want {
				t.Errorf("output differs:\nstream %s\nunary  %s", got, want)
			}
			if s.final.OutputText() != r.OutputText() || s.text != r.OutputText() {
				t.Errorf("output_text: stream %q, deltas %q, unary %q", s.final.OutputText(), s.text, r.OutputText())
			}
			if s.final.Status != r.Status || s.final.ID != r.ID || s.final.IncompleteDetails.Reason != r.IncompleteDetails.Reason {
				t.Errorf("status %q/%q id %q/%q", s.final.Status, r.Status, s.final.ID, r.ID)
			}
			// The request bodies differ (stream, stream_options), and so
			// do their prompt tokens; the rest of the usage must not.
			su, ru := s.final.Usage, r.Usage
			if su.OutputTokens != ru.OutputTokens || su.OutputTokensDetails.ReasoningTokens != ru.OutputTokensDetails.ReasoningTokens ||
				su.InputTokensDetails.CachedTokens != ru.InputTokensDetails.CachedTokens {
				t.Errorf("usage: stream %s, unary %s", su.RawJSON(), ru.RawJSON())
			}
			reqs := up.Requests()
			for i, u := range []responses.ResponseUsage{ru, su} {
				want := providertest.CountTokens(reqs[i].Body, tc.reply)
				if u.InputTokens != int64(want.Prompt) || u.TotalTokens != int64(want.Prompt+want.Completion) {
					t.Errorf("usage %d: %s, want %+v", i, u.RawJSON(), want)
				}
			}
			// The SDK's accumulator agrees.
			snap := s.acc.Snapshot()
			if snap.TerminalEvent != s.terminal || snap.OutputText() != r.OutputText() || snap.ResponseID != r.ID {
				t.Errorf("accumulator: %q %q %q", snap.TerminalEvent, snap.OutputText(), snap.ResponseID)
			}
			rebuilt, err := s.acc.ReconstructedResponse()
			if err != nil || rebuilt.JSON.Output.Raw() != r.JSON.Output.Raw() {
				t.Errorf("accumulator's response: %v", err)
			}
			for _, o := range snap.Output {
				if o.Type == "function_call" {
					it := r.Output[o.OutputIndex]
					if o.Arguments != it.Arguments.OfString || o.CallID != it.CallID || o.Name != it.Name {
						t.Errorf("accumulated call %+v, unary %s", o, it.RawJSON())
					}
				}
			}
		})
	}
}

// stored is the Response's store field, which the SDK does not model.
func stored(r *responses.Response) bool {
	var v struct{ Store bool }
	json.Unmarshal([]byte(r.RawJSON()), &v)
	return v.Store
}
