package translate

import (
	"encoding/json"
	"strconv"
	"strings"
)

// converter turns Responses input items into Chat Completions messages.
type converter struct {
	msgs []chatMessage
}

func (c *converter) items(list []json.RawMessage, param string) *apiError {
	for i, raw := range list {
		p := param + "[" + strconv.Itoa(i) + "]"
		it, e := parseObject(raw, p)
		if e != nil {
			return e
		}
		typ, _, e := it.str("type")
		if e != nil {
			return e
		}
		if typ == "" {
			if it.get("role") == nil {
				return missing(p + ".type")
			}
			typ = "message" // EasyInputMessage: {"role", "content"}
		}
		switch typ {
		case "message":
			e = c.message(it)
		case "function_call":
			e = c.functionCall(it)
		case "function_call_output":
			e = c.functionOutput(it)
		case "reasoning":
			// A reasoning item that an SDK replays from an earlier answer.
			// Chat Completions has no way to hand reasoning back (DeepSeek
			// even rejects reasoning_content in input), and dropping it
			// changes nothing the provider could have used.
		case "item_reference":
			return refuse(p+".type", "item_reference points at an item stored by OpenAI; llmproxy keeps none, send the item itself instead")
		default:
			return refuse(p+".type", "%q items cannot be expressed in Chat Completions (function_call and function_call_output can)", typ)
		}
		if e != nil {
			return e
		}
	}
	return nil
}

func (c *converter) message(it object) *apiError {
	role, e := it.needStr("role")
	if e != nil {
		return e
	}
	switch role {
	case "user", "assistant", "system":
	case "developer":
		// developer is OpenAI's newer name for system; other providers
		// know only system.
		role = "system"
	default:
		return refuse(it.path("role"), "%q is not one of user, assistant, system, developer", role)
	}
	// id, status and phase describe an earlier answer; they are not part
	// of what the model reads.
	if e := it.rest("type", "role", "content", "id", "status", "phase"); e != nil {
		return e
	}
	content := it.get("content")
	var msg chatMessage
	msg.Role = role
	switch jsonKind(content) {
	case '"':
		msg.Content = compact(content)
	case '[':
		var parts []json.RawMessage
		if json.Unmarshal(content, &parts) != nil {
			return invalid(it.path("content"), "a string or an array of parts")
		}
		var e *apiError
		if msg.Content, e = c.parts(parts, role, it.path("content")); e != nil {
			return e
		}
	default:
		if content == nil {
			return missing(it.path("content"))
		}
		return invalid(it.path("content"), "a string or an array of parts")
	}
	c.msgs = append(c.msgs, msg)
	return nil
}

// parts translates content parts. A user message keeps its parts (text
// and images); other roles take text only, joined into one string, the
// form every provider accepts for them.
func (c *converter) parts(parts []json.RawMessage, role, param string) (json.RawMessage, *apiError) {
	var out []chatPart
	var text strings.Builder
	images := false
	for j, raw := range parts {
		p := param + "[" + strconv.Itoa(j) + "]"
		part, e := parseObject(raw, p)
		if e != nil {
			return nil, e
		}
		typ, e := part.needStr("type")
		if e != nil {
			return nil, e
		}
		switch typ {
		case "input_text", "output_text", "text":
			s, e := part.needStr("text")
			if e != nil {
				return nil, e
			}
			// Annotations and logprobs of an earlier answer, and cache
			// breakpoints (a caching hint), are not what the model reads.
			if e := part.rest("type", "text", "annotations", "logprobs", "prompt_cache_breakpoint"); e != nil {
				return nil, e
			}
			out = append(out, chatPart{Type: "text", Text: &s})
			text.WriteString(s)
		case "refusal":
			if role != "assistant" {
				return nil, refuse(p+".type", "refusal parts belong to assistant messages")
			}
			s, e := part.needStr("refusal")
			if e != nil {
				return nil, e
			}
			if e := part.rest("type", "refusal"); e != nil {
				return nil, e
			}
			// What the assistant said when it refused: its text.
			out = append(out, chatPart{Type: "text", Text: &s})
			text.WriteString(s)
		case "input_image":
			if role != "user" {
				return nil, refuse(p+".type", "Chat Completions takes images in user messages only")
			}
			if part.get("file_id") != nil {
				return nil, refuse(p+".file_id", "file ids name files stored by OpenAI; send the image as image_url (https or data URL) instead")
			}
			url, e := part.needStr("image_url")
			if e != nil {
				return nil, e
			}
			detail, _, e := part.str("detail")
			if e != nil {
				return nil, e
			}
			switch detail {
			case "", "auto", "low", "high":
			default:
				return nil, refuse(p+".detail", "%q is not one of auto, low, high", detail)
			}
			if e := part.rest("type", "image_url", "detail", "file_id", "prompt_cache_breakpoint"); e != nil {
				return nil, e
			}
			out = append(out, chatPart{Type: "image_url", ImageURL: &imageURL{URL: url, Detail: detail}})
			images = true
		case "input_file":
			return nil, refuse(p+".type", "files cannot be sent to a provider that has only Chat Completions")
		default:
			return nil, refuse(p+".type", "%q content cannot be expressed in Chat Completions", typ)
		}
	}
	if role == "user" && (images || len(out) > 1) {
		b, _ := json.Marshal(out)
		return b, nil
	}
	return quote(text.String()), nil
}

func (c *converter) functionCall(it object) *apiError {
	callID, e := it.needStr("call_id")
	if e != nil {
		return e
	}
	name, e := it.needStr("name")
	if e != nil {
		return e
	}
	args, e := it.needStr("arguments")
	if e != nil {
		return e
	}
	// namespace and caller (tool namespaces, programmatic calls) would be
	// refused by rest when set.
	if e := it.rest("type", "call_id", "name", "arguments", "id", "status"); e != nil {
		return e
	}
	call := chatToolCall{ID: callID, Type: "function", Function: chatFunction{Name: name, Arguments: args}}
	// Consecutive calls are one assistant turn in Chat Completions, and an
	// answer's text and its calls are one message: merge into the
	// assistant message just before, as providers expect.
	if n := len(c.msgs); n > 0 && c.msgs[n-1].Role == "assistant" {
		last := &c.msgs[n-1]
		if string(last.Content) == `""` {
			last.Content = nil
		}
		last.ToolCalls = append(last.ToolCalls, call)
		return nil
	}
	c.msgs = append(c.msgs, chatMessage{Role: "assistant", ToolCalls: []chatToolCall{call}})
	return nil
}

func (c *converter) functionOutput(it object) *apiError {
	callID, e := it.needStr("call_id")
	if e != nil {
		return e
	}
	if e := it.rest("type", "call_id", "output", "id", "status", "name"); e != nil {
		return e
	}
	out := it.get("output")
	msg := chatMessage{Role: "tool", ToolCallID: callID}
	switch jsonKind(out) {
	case '"':
		msg.Content = compact(out)
	case '[':
		var parts []json.RawMessage
		if json.Unmarshal(out, &parts) != nil {
			return invalid(it.path("output"), "a string or an array of parts")
		}
		var text strings.Builder
		for j, raw := range parts {
			p := it.path("output") + "[" + strconv.Itoa(j) + "]"
			part, e := parseObject(raw, p)
			if e != nil {
				return e
			}
			typ, e := part.needStr("type")
			if e != nil {
				return e
			}
			if typ != "input_text" {
				return refuse(p+".type", "a Chat Completions tool message holds text only")
			}
			s, e := part.needStr("text")
			if e != nil {
				return e
			}
			if e := part.rest("type", "text", "prompt_cache_breakpoint"); e != nil {
				return e
			}
			text.WriteString(s)
		}
		msg.Content = quote(text.String())
	default:
		if out == nil {
			return missing(it.path("output"))
		}
		return invalid(it.path("output"), "a string or an array of parts")
	}
	c.msgs = append(c.msgs, msg)
	return nil
}
