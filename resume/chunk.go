package resume

import (
	"encoding/json"
	"strconv"
	"strings"
)

// The parts of a GenerateContentResponse the resume logic reads and edits.
// Everything else in a chunk (safety ratings, thought signatures, model
// version, …) is carried along untouched.

func (e *event) candidate() map[string]any {
	if e.obj == nil {
		return nil
	}
	cands, _ := e.obj["candidates"].([]any)
	if len(cands) == 0 {
		return nil
	}
	c, _ := cands[0].(map[string]any)
	return c
}

func (e *event) parts() []any {
	c := e.candidate()
	if c == nil {
		return nil
	}
	content, _ := c["content"].(map[string]any)
	if content == nil {
		return nil
	}
	parts, _ := content["parts"].([]any)
	return parts
}

func (e *event) setParts(parts []any) {
	c := e.candidate()
	if c == nil {
		return
	}
	content, _ := c["content"].(map[string]any)
	if content == nil {
		return
	}
	if len(parts) == 0 {
		delete(content, "parts")
	} else {
		content["parts"] = parts
	}
	e.dirty = true
}

func (e *event) finishReason() string {
	c := e.candidate()
	if c == nil {
		return ""
	}
	s, _ := c["finishReason"].(string)
	return s
}

// clearFinish removes the candidate's ending, which the client must not see.
func (e *event) clearFinish() {
	if c := e.candidate(); c != nil {
		delete(c, "finishReason")
		delete(c, "finishMessage")
		e.dirty = true
	}
}

func (e *event) blockReason() string {
	if e.obj == nil {
		return ""
	}
	pf, _ := e.obj["promptFeedback"].(map[string]any)
	s, _ := pf["blockReason"].(string)
	return s
}

// errorObject returns the {"error":{…}} Google sends in a stream that fails.
func (e *event) errorObject() map[string]any {
	if e.obj == nil {
		return nil
	}
	o, _ := e.obj["error"].(map[string]any)
	return o
}

// hasContent reports whether the chunk still says anything once edited.
func (e *event) hasContent() bool {
	if len(e.parts()) > 0 || e.finishReason() != "" || e.blockReason() != "" {
		return true
	}
	_, usage := e.obj["usageMetadata"]
	return usage
}

// partText returns a part's text and whether it is visible answer text
// (not a thought).
func partText(p any) (string, bool) {
	m, _ := p.(map[string]any)
	if m == nil {
		return "", false
	}
	text, ok := m["text"].(string)
	if !ok {
		return "", false
	}
	thought, _ := m["thought"].(bool)
	return text, !thought
}

func isThought(p any) bool {
	m, _ := p.(map[string]any)
	thought, _ := m["thought"].(bool)
	return thought
}

func isFunctionCall(p any) bool {
	m, _ := p.(map[string]any)
	_, ok := m["functionCall"]
	return ok
}

// usage is a chunk's usageMetadata token counts.
type usage map[string]int64

func (e *event) usage() usage {
	if e.obj == nil {
		return nil
	}
	m, _ := e.obj["usageMetadata"].(map[string]any)
	if m == nil {
		return nil
	}
	u := usage{}
	for k, v := range m {
		if n, ok := v.(json.Number); ok && strings.HasSuffix(k, "Count") {
			if i, err := n.Int64(); err == nil {
				u[k] = i
			}
		}
	}
	return u
}

// addUsage adds base to the chunk's token counts, so that the counts the
// client sees cover every attempt.
func (e *event) addUsage(base usage) {
	if len(base) == 0 || e.obj == nil {
		return
	}
	m, _ := e.obj["usageMetadata"].(map[string]any)
	if m == nil {
		return
	}
	cur := e.usage()
	for k, v := range base {
		m[k] = json.Number(strconv.FormatInt(cur[k]+v, 10))
	}
	e.dirty = true
}

func (u usage) add(o usage) usage {
	out := usage{}
	for k, v := range u {
		out[k] = v
	}
	for k, v := range o {
		out[k] += v
	}
	return out
}

// Finish reasons (google.ai.generativelanguage FinishReason).
const (
	finishStop = "STOP"
)

// terminal endings are the model's verdict: passed through, never retried.
var terminal = map[string]bool{
	"MAX_TOKENS": true, "SAFETY": true, "RECITATION": true, "BLOCKLIST": true,
	"PROHIBITED_CONTENT": true, "SPII": true, "IMAGE_SAFETY": true, "LANGUAGE": true,
}
