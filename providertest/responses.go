package providertest

import (
	"fmt"
	"time"
)

// responses answers POST /responses (OpenAI's Responses API) with the
// scripted reply: a reasoning item per run of reasoning (as a summary), a
// message item per run of text, a function_call item per tool call.
// FinishLength and FinishContentFilter make the response "incomplete", as
// OpenAI does for max_output_tokens and content_filter.
func (h *openAIHandler) responses(a *answer, fr FaultRequest, req openAIRequest, sc script) {
	id := fmt.Sprintf("resp_fake%06d", fr.N)
	bs := blocks(sc.deltas, "call_")
	items := make([]map[string]any, len(bs))
	for i, b := range bs {
		items[i] = responseItem(id, i, b, "completed")
	}
	status, terminal := "completed", "response.completed"
	var incomplete any
	switch sc.finish {
	case FinishLength:
		status, terminal, incomplete = "incomplete", "response.incomplete", map[string]string{"reason": "max_output_tokens"}
	case FinishContentFilter:
		status, terminal, incomplete = "incomplete", "response.incomplete", map[string]string{"reason": "content_filter"}
	}
	var usage any
	if !h.cfg.NoUsage {
		t := sc.tokens
		usage = map[string]any{
			"input_tokens":          t.Prompt,
			"input_tokens_details":  map[string]int{"cached_tokens": h.cfg.CachedTokens},
			"output_tokens":         t.Completion,
			"output_tokens_details": map[string]int{"reasoning_tokens": t.Reasoning},
			"total_tokens":          t.Prompt + t.Completion,
		}
	}
	created := time.Now().Unix()
	response := func(status string, output []map[string]any, usage, incomplete any) map[string]any {
		return map[string]any{
			"id": id, "object": "response", "created_at": created, "status": status,
			"error": nil, "incomplete_details": incomplete, "instructions": nil,
			"max_output_tokens": nil, "model": req.Model, "output": output,
			"parallel_tool_calls": true, "previous_response_id": nil,
			"reasoning": map[string]any{"effort": nil, "summary": nil}, "store": true,
			"temperature": 1.0, "text": map[string]any{"format": map[string]string{"type": "text"}},
			"tool_choice": "auto", "tools": []any{}, "top_p": 1.0, "truncation": "disabled",
			"usage": usage, "user": nil, "metadata": map[string]any{},
		}
	}
	if !req.Stream {
		a.body("application/json", mustJSON(response(status, items, usage, incomplete)))
		return
	}

	var events [][]byte
	ev := func(typ string, fields map[string]any) {
		fields["type"] = typ
		fields["sequence_number"] = len(events)
		events = append(events, sse(typ, mustJSON(fields)))
	}
	ev("response.created", map[string]any{"response": response("in_progress", []map[string]any{}, nil, nil)})
	ev("response.in_progress", map[string]any{"response": response("in_progress", []map[string]any{}, nil, nil)})
	for i, b := range bs {
		itemID := items[i]["id"]
		ev("response.output_item.added", map[string]any{"output_index": i, "item": responseItem(id, i, &block{kind: b.kind, tool: ToolCallDelta{ID: b.tool.ID, Name: b.tool.Name}}, "in_progress")})
		at := func(m map[string]any) map[string]any {
			m["item_id"], m["output_index"] = itemID, i
			return m
		}
		switch b.kind {
		case blockText:
			ev("response.content_part.added", at(map[string]any{"content_index": 0, "part": outputText("")}))
			for _, p := range b.pieces {
				ev("response.output_text.delta", at(map[string]any{"content_index": 0, "delta": p, "logprobs": []any{}}))
			}
			ev("response.output_text.done", at(map[string]any{"content_index": 0, "text": b.text(), "logprobs": []any{}}))
			ev("response.content_part.done", at(map[string]any{"content_index": 0, "part": outputText(b.text())}))
		case blockReasoning:
			ev("response.reasoning_summary_part.added", at(map[string]any{"summary_index": 0, "part": summaryText("")}))
			for _, p := range b.pieces {
				ev("response.reasoning_summary_text.delta", at(map[string]any{"summary_index": 0, "delta": p}))
			}
			ev("response.reasoning_summary_text.done", at(map[string]any{"summary_index": 0, "text": b.text()}))
			ev("response.reasoning_summary_part.done", at(map[string]any{"summary_index": 0, "part": summaryText(b.text())}))
		case blockTool:
			for _, p := range b.pieces {
				ev("response.function_call_arguments.delta", at(map[string]any{"delta": p}))
			}
			ev("response.function_call_arguments.done", at(map[string]any{"arguments": b.tool.Arguments, "name": b.tool.Name}))
		}
		ev("response.output_item.done", map[string]any{"output_index": i, "item": items[i]})
	}
	end := len(events)
	ev(terminal, map[string]any{"response": response(status, items, usage, incomplete)})
	a.stream("text/event-stream", events, end)
}

// responseItem is output item i of response id for a block.
func responseItem(id string, i int, b *block, status string) map[string]any {
	switch b.kind {
	case blockReasoning:
		summary := []any{}
		if len(b.pieces) > 0 {
			summary = append(summary, summaryText(b.text()))
		}
		return map[string]any{"id": fmt.Sprintf("rs_%s_%d", id, i), "type": "reasoning", "summary": summary}
	case blockTool:
		return map[string]any{
			"id": fmt.Sprintf("fc_%s_%d", id, i), "type": "function_call", "status": status,
			"call_id": b.tool.ID, "name": b.tool.Name, "arguments": b.tool.Arguments,
		}
	}
	content := []any{}
	if len(b.pieces) > 0 {
		content = append(content, outputText(b.text()))
	}
	return map[string]any{
		"id": fmt.Sprintf("msg_%s_%d", id, i), "type": "message", "status": status,
		"role": "assistant", "content": content,
	}
}

func outputText(s string) map[string]any {
	return map[string]any{"type": "output_text", "text": s, "annotations": []any{}, "logprobs": []any{}}
}

func summaryText(s string) map[string]any {
	return map[string]any{"type": "summary_text", "text": s}
}
