package translate

// The Response object, written field by field in the order OpenAI writes
// it. Parameters the client sent are echoed as it sent them; those it left
// out are null where OpenAI would show its own default (temperature,
// top_p): the provider's default is unknown, and null says so.

func (t *translator) appendResponse(b []byte) []byte {
	e := &t.req.echo
	b = append(b, `{"id":`...)
	b = appendString(b, t.id)
	b = append(b, `,"object":"response","created_at":`...)
	b = appendInt(b, t.createdAt)
	b = append(b, `,"status":`...)
	b = appendString(b, t.status)
	b = append(b, `,"background":false,"completed_at":`...)
	if t.ended && t.status == "completed" {
		b = appendInt(b, t.now().Unix())
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"error":`...)
	if t.status == "failed" {
		b = append(b, `{"code":`...)
		b = appendString(b, t.errCode)
		b = append(b, `,"message":`...)
		b = appendString(b, t.errMsg)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"incomplete_details":`...)
	if t.status == "incomplete" {
		b = append(b, `{"reason":`...)
		b = appendString(b, t.reason)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"instructions":`...)
	b = appendRaw(b, e.instructions, "null")
	b = append(b, `,"max_output_tokens":`...)
	b = appendRaw(b, e.maxOutputTokens, "null")
	b = append(b, `,"max_tool_calls":`...)
	b = appendRaw(b, e.maxToolCalls, "null")
	b = append(b, `,"model":`...)
	b = appendString(b, t.model)
	b = append(b, `,"output":[`...)
	if t.ended {
		for i, it := range t.items {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendItem(b, it, false)
		}
	}
	b = append(b, `],"parallel_tool_calls":`...)
	b = appendRaw(b, e.parallelToolCalls, "true")
	b = append(b, `,"previous_response_id":`...)
	b = appendRaw(b, e.previousResponseID, "null")
	b = append(b, `,"prompt_cache_key":`...)
	b = appendRaw(b, e.promptCacheKey, "null")
	b = append(b, `,"reasoning":{"effort":`...)
	b = appendRaw(b, e.effort, "null")
	b = append(b, `,"summary":`...)
	b = appendRaw(b, e.summary, "null")
	b = append(b, `},"safety_identifier":`...)
	b = appendRaw(b, e.safetyIdentifier, "null")
	b = append(b, `,"store":`...)
	if t.req.keep && t.status != "failed" { // a failed answer is not kept
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	b = append(b, `,"temperature":`...)
	b = appendRaw(b, e.temperature, "null")
	b = append(b, `,"text":`...)
	b = appendRaw(b, e.text, `{"format":{"type":"text"}}`)
	b = append(b, `,"tool_choice":`...)
	b = appendRaw(b, e.toolChoice, `"auto"`)
	b = append(b, `,"tools":`...)
	b = appendRaw(b, e.tools, "[]")
	b = append(b, `,"top_logprobs":0,"top_p":`...)
	b = appendRaw(b, e.topP, "null")
	b = append(b, `,"truncation":"disabled","usage":`...)
	if t.ended && t.usage != nil {
		b = appendUsage(b, t.usage)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"user":`...)
	b = appendRaw(b, e.user, "null")
	b = append(b, `,"metadata":`...)
	b = appendRaw(b, e.metadata, "{}")
	return append(b, '}')
}

// appendUsage maps Chat Completions usage onto Responses usage.
func appendUsage(b []byte, u *chatUsage) []byte {
	cached := u.PromptCacheHitTokens
	if u.PromptTokensDetails != nil && u.PromptTokensDetails.CachedTokens > 0 {
		cached = u.PromptTokensDetails.CachedTokens
	}
	var reasoning int64
	if u.CompletionTokensDetails != nil {
		reasoning = u.CompletionTokensDetails.ReasoningTokens
	}
	total := u.TotalTokens
	if total == 0 {
		total = u.PromptTokens + u.CompletionTokens
	}
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.PromptTokens)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, cached)
	b = append(b, `},"output_tokens":`...)
	b = appendInt(b, u.CompletionTokens)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, reasoning)
	b = append(b, `},"total_tokens":`...)
	b = appendInt(b, total)
	return append(b, '}')
}

// appendItem writes an output item: as announced by output_item.added
// (added: empty content and arguments) or as it stands.
func appendItem(b []byte, it *item, added bool) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, it.id)
	switch it.kind {
	case kindMessage:
		b = append(b, `,"type":"message","status":`...)
		b = appendString(b, it.status)
		b = append(b, `,"content":[`...)
		if !added {
			for i, p := range it.parts {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendPart(b, p)
			}
		}
		b = append(b, `],"role":"assistant"}`...)
	case kindCall:
		b = append(b, `,"type":"function_call","status":`...)
		b = appendString(b, it.status)
		b = append(b, `,"arguments":`...)
		if added {
			b = append(b, `""`...)
		} else {
			b = appendString(b, it.args.String())
		}
		b = append(b, `,"call_id":`...)
		b = appendString(b, it.callID)
		b = append(b, `,"name":`...)
		b = appendString(b, it.name)
		b = append(b, '}')
	case kindReasoning:
		// Chat providers show their reasoning whole: it is reasoning_text
		// content (as OpenAI's open-weight models have), not a summary.
		// Its status is optional (OpenAI writes none): written only when
		// the reasoning was cut (incomplete).
		b = append(b, `,"type":"reasoning","summary":[],"content":[`...)
		if !added {
			b = appendReasoningText(b, it.text.String())
		}
		b = append(b, ']')
		if it.status == "incomplete" {
			b = append(b, `,"status":"incomplete"`...)
		}
		b = append(b, '}')
	}
	return b
}

func appendPart(b []byte, p *part) []byte {
	if p.refusal {
		b = append(b, `{"type":"refusal","refusal":`...)
		b = appendString(b, p.text.String())
		return append(b, '}')
	}
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":`...)
	b = appendString(b, p.text.String())
	return append(b, '}')
}

func appendReasoningText(b []byte, text string) []byte {
	b = append(b, `{"type":"reasoning_text","text":`...)
	b = appendString(b, string(text))
	return append(b, '}')
}
