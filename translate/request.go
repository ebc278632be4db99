package translate

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
)

// request is a Responses API request translated into Chat Completions.
type request struct {
	chat   []byte // the Chat Completions body
	stream bool
	keep   bool   // keep the answer in the memory store
	owner  string // whose answer it is in the store (WithOwner)
	model  string // as the client named it (already the provider's name)
	echo   echo
	// items is the conversation as Responses items: a stored response's
	// items first, then this request's input. Kept only with a store.
	items []json.RawMessage
}

// echo holds the request parameters a Response repeats back, each as the
// compact JSON the client sent (nil when it sent none).
type echo struct {
	instructions, maxOutputTokens, maxToolCalls, parallelToolCalls, previousResponseID,
	promptCacheKey, safetyIdentifier, temperature, topP, text, toolChoice, tools,
	metadata, user, effort, summary json.RawMessage
}

// chatRequest is the Chat Completions body, fields in the order OpenAI's
// reference lists them.
type chatRequest struct {
	Model             json.RawMessage `json:"model,omitempty"`
	Messages          []chatMessage   `json:"messages"`
	Stream            bool            `json:"stream,omitempty"`
	StreamOptions     *streamOptions  `json:"stream_options,omitempty"`
	Tools             []chatTool      `json:"tools,omitempty"`
	ToolChoice        json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls json.RawMessage `json:"parallel_tool_calls,omitempty"`
	Temperature       json.RawMessage `json:"temperature,omitempty"`
	TopP              json.RawMessage `json:"top_p,omitempty"`
	MaxTokens         json.RawMessage `json:"max_tokens,omitempty"`
	ResponseFormat    json.RawMessage `json:"response_format,omitempty"`
	ReasoningEffort   json.RawMessage `json:"reasoning_effort,omitempty"`
	Metadata          json.RawMessage `json:"metadata,omitempty"`
	User              json.RawMessage `json:"user,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role string `json:"role"`
	// Content is a JSON string, an array of parts, or null (an assistant
	// turn that only calls tools).
	Content    json.RawMessage `json:"content"`
	ToolCalls  []chatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type chatToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type chatTool struct {
	Type     string          `json:"type"`
	Function chatFunctionDef `json:"function"`
}

type chatFunctionDef struct {
	Name        string          `json:"name"`
	Description json.RawMessage `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      json.RawMessage `json:"strict,omitempty"`
}

type chatPart struct {
	Type     string    `json:"type"`
	Text     *string   `json:"text,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// object is a JSON object with its keys in sorted order, so that the first
// refused field reported is always the same one.
type object struct {
	fields map[string]json.RawMessage
	param  string // the object's own path, e.g. "input[2]"
}

func parseObject(raw json.RawMessage, param string) (object, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return object{}, invalid(orTop(param), "an object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return object{}, invalid(orTop(param), "an object")
	}
	return object{fields: m, param: param}, nil
}

func orTop(param string) string {
	if param == "" {
		return "body"
	}
	return param
}

func (o object) path(key string) string {
	if o.param == "" {
		return key
	}
	return o.param + "." + key
}

// get returns a field, nil when it is absent or null.
func (o object) get(key string) json.RawMessage {
	v := o.fields[key]
	if isNull(v) {
		return nil
	}
	return v
}

func (o object) str(key string) (string, bool, *apiError) {
	v := o.get(key)
	if v == nil {
		return "", false, nil
	}
	var s string
	if v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false, invalid(o.path(key), "a string")
	}
	return s, true, nil
}

func (o object) needStr(key string) (string, *apiError) {
	s, ok, err := o.str(key)
	if err == nil && !ok {
		err = missing(o.path(key))
	}
	return s, err
}

// kind checks that a present field has the JSON type want ('"' string,
// '0' number, 'b' boolean, '{' object, '[' array) and returns it compacted.
func (o object) kind(key string, want byte) (json.RawMessage, *apiError) {
	v := o.get(key)
	if v == nil {
		return nil, nil
	}
	if jsonKind(v) != want {
		return nil, invalid(o.path(key), kindName[want])
	}
	return compact(v), nil
}

// rest applies the rule for fields nobody mapped: a field at its zero value
// (null, false, 0, "", [], {}) asks for the default and is ignored; any
// other value would change the answer, so it is refused.
func (o object) rest(known ...string) *apiError {
	keys := make([]string, 0, len(o.fields))
	for k := range o.fields {
		if !slices.Contains(known, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !isZero(o.fields[k]) {
			return refuse(o.path(k), "not supported by llmproxy's translation to Chat Completions")
		}
	}
	return nil
}

var kindName = map[byte]string{'"': "a string", '0': "a number", 'b': "a boolean", '{': "an object", '[': "an array"}

func jsonKind(v []byte) byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0
	}
	switch c := v[0]; {
	case c == '"', c == '{', c == '[':
		return c
	case c == 't', c == 'f':
		return 'b'
	case c == '-' || c >= '0' && c <= '9':
		return '0'
	}
	return 0
}

func isNull(v []byte) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

func isZero(v []byte) bool {
	switch string(compact(v)) {
	case "", "null", "false", "0", `""`, "[]", "{}":
		return true
	}
	if jsonKind(v) == '0' {
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
		return err == nil && f == 0
	}
	return false
}

func compact(v []byte) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return bytes.TrimSpace(v)
	}
	return b.Bytes()
}

func isInteger(v []byte) bool {
	_, err := strconv.ParseInt(string(v), 10, 64)
	return err == nil
}

func quote(s string) json.RawMessage { return appendString(nil, s) }

// includable lists the include values that need nothing from a provider:
// they ask for outputs of built-in tools (refused anyway), for encrypted
// reasoning (a Chat Completions provider has none to give) or for input
// image URLs (not echoed). Logprobs would need a mapping, so they are
// refused.
var includable = []string{
	"code_interpreter_call.outputs",
	"computer_call_output.output.image_url",
	"file_search_call.results",
	"message.input_image.image_url",
	"reasoning.encrypted_content",
	"web_search_call.action.sources",
	"web_search_call.results",
}

// parseRequest translates a Responses API body. store holds the responses
// previous_response_id may name (nil: no store); owner's only.
func parseRequest(body []byte, opts *Options, store *Store, owner string) (*request, *apiError) {
	top, err := parseObject(body, "")
	if err != nil {
		return nil, &apiError{status: 400, code: codeInvalidJSON,
			message: "the request body is not a JSON object"}
	}
	r := &request{owner: owner}
	var c chatRequest

	if m, e := top.kind("model", '"'); e != nil {
		return nil, e
	} else if m != nil {
		c.Model = m
		json.Unmarshal(m, &r.model)
	}
	if v, e := top.kind("stream", 'b'); e != nil {
		return nil, e
	} else {
		r.stream = string(v) == "true"
	}
	if r.stream {
		c.Stream = true
		// The usage chunk is needed for response.completed; it is
		// consumed, never shown.
		c.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if so, e := top.kind("stream_options", '{'); e != nil {
		return nil, e
	} else if so != nil {
		o, _ := parseObject(so, "stream_options")
		// include_obfuscation pads deltas against a length side channel;
		// llmproxy adds no padding, which is what false asks for.
		if e := o.rest("include_obfuscation"); e != nil {
			return nil, e
		}
	}

	// Parameters copied as they are.
	for _, f := range []struct {
		key  string
		kind byte
		to   *json.RawMessage
		echo *json.RawMessage
	}{
		{"temperature", '0', &c.Temperature, &r.echo.temperature},
		{"top_p", '0', &c.TopP, &r.echo.topP},
		{"max_output_tokens", '0', &c.MaxTokens, &r.echo.maxOutputTokens},
		{"parallel_tool_calls", 'b', &c.ParallelToolCalls, &r.echo.parallelToolCalls},
		{"metadata", '{', &c.Metadata, &r.echo.metadata},
		{"user", '"', &c.User, &r.echo.user},
		{"instructions", '"', nil, &r.echo.instructions},
		{"previous_response_id", '"', nil, &r.echo.previousResponseID},
		{"max_tool_calls", '0', nil, &r.echo.maxToolCalls},
		{"prompt_cache_key", '"', nil, &r.echo.promptCacheKey},
		{"safety_identifier", '"', nil, &r.echo.safetyIdentifier},
	} {
		v, e := top.kind(f.key, f.kind)
		if e != nil {
			return nil, e
		}
		if f.to != nil {
			*f.to = v
		}
		*f.echo = v
	}
	for _, k := range []string{"max_output_tokens", "max_tool_calls"} {
		if v := top.get(k); v != nil && !isInteger(compact(v)) {
			return nil, invalid(k, "an integer")
		}
	}

	// store: the Responses default is true, but there is nothing to keep
	// the answer in unless the operator turned the memory store on.
	keep := true
	if v, e := top.kind("store", 'b'); e != nil {
		return nil, e
	} else if string(v) == "false" {
		keep = false
	}
	r.keep = keep && store != nil

	if e := checkValues(top); e != nil {
		return nil, e
	}
	if e := parseText(top, &c, r); e != nil {
		return nil, e
	}
	if e := parseReasoning(top, &c, r, opts); e != nil {
		return nil, e
	}
	if e := parseTools(top, &c, r); e != nil {
		return nil, e
	}
	dropToolOptions(&c)

	// The conversation: instructions, then a stored response's items, then
	// input.
	var conv converter
	if r.echo.instructions != nil {
		var s string
		json.Unmarshal(r.echo.instructions, &s)
		if s != "" {
			// "system", not "developer": every Chat Completions provider
			// takes system; developer is OpenAI's alone.
			conv.msgs = append(conv.msgs, chatMessage{Role: "system", Content: quote(s)})
		}
	}
	if r.echo.previousResponseID != nil {
		var id string
		json.Unmarshal(r.echo.previousResponseID, &id)
		if store == nil {
			return nil, refuse("previous_response_id",
				"llmproxy keeps no conversation for a provider that has only Chat Completions (no prompt text is stored); send the whole conversation in input instead")
		}
		items, ok := store.items(id, owner)
		if !ok {
			return nil, &apiError{status: 400, code: codeNotFound, param: "previous_response_id",
				message: "previous_response_id: response " + strconv.Quote(id) + " not found: llmproxy keeps responses in memory for a limited time only; send the whole conversation in input instead"}
		}
		if e := conv.items(items, "previous_response_id"); e != nil {
			return nil, e
		}
		r.items = append(r.items, items...)
	}
	input := top.get("input")
	switch jsonKind(input) {
	case 0:
		if input != nil {
			return nil, invalid("input", "a string or an array of items")
		}
	case '"':
		var s string
		if json.Unmarshal(input, &s) != nil {
			return nil, invalid("input", "a string or an array of items")
		}
		conv.msgs = append(conv.msgs, chatMessage{Role: "user", Content: quote(s)})
		if r.keep {
			item, _ := json.Marshal(map[string]string{"type": "message", "role": "user", "content": s})
			r.items = append(r.items, item)
		}
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(input, &list) != nil {
			return nil, invalid("input", "a string or an array of items")
		}
		if e := conv.items(list, "input"); e != nil {
			return nil, e
		}
		if r.keep {
			for _, it := range list {
				r.items = append(r.items, compact(it))
			}
		}
	default:
		return nil, invalid("input", "a string or an array of items")
	}
	if len(conv.msgs) == 0 {
		return nil, missing("input")
	}
	c.Messages = conv.msgs
	if !r.keep {
		r.items = nil
	}

	if e := top.rest("model", "stream", "stream_options", "temperature", "top_p",
		"max_output_tokens", "parallel_tool_calls", "metadata", "user", "instructions",
		"previous_response_id", "max_tool_calls", "prompt_cache_key", "safety_identifier",
		"store", "text", "reasoning", "tools", "tool_choice", "input",
		"include", "truncation", "background", "service_tier",
		"prompt_cache_retention", "prompt_cache_options",
		"conversation", "prompt", "context_management", "moderation", "top_logprobs"); e != nil {
		return nil, e
	}
	chat, jerr := json.Marshal(&c)
	if jerr != nil { // only raw values that were validated go in
		return nil, &apiError{status: 400, code: codeInvalidJSON, message: "the request cannot be translated"}
	}
	r.chat = chat
	return r, nil
}

// checkValues handles the fields that are accepted at some values and
// refused at others, and those that are refused outright.
func checkValues(top object) *apiError {
	if v := top.get("include"); v != nil {
		var list []json.RawMessage
		if jsonKind(v) != '[' || json.Unmarshal(v, &list) != nil {
			return invalid("include", "an array of strings")
		}
		for i, it := range list {
			var s string
			p := "include[" + strconv.Itoa(i) + "]"
			if jsonKind(it) != '"' || json.Unmarshal(it, &s) != nil {
				return invalid(p, "a string")
			}
			if !slices.Contains(includable, s) {
				return refuse(p, "%q cannot be produced from a Chat Completions answer", s)
			}
		}
	}
	if s, _, e := top.str("truncation"); e != nil {
		return e
	} else if s != "" && s != "disabled" {
		return refuse("truncation", "%q would drop input items to fit the context window; a Chat Completions provider cannot, so only \"disabled\" is accepted", s)
	}
	if v, e := top.kind("background", 'b'); e != nil {
		return e
	} else if string(v) == "true" {
		return refuse("background", "background responses need a stored response to poll; llmproxy answers in the foreground only")
	}
	if s, _, e := top.str("service_tier"); e != nil {
		return e
	} else if s != "" && s != "auto" && s != "default" {
		return refuse("service_tier", "%q is an OpenAI processing tier that a Chat Completions provider does not have", s)
	}
	for _, f := range []struct{ key, why string }{
		{"conversation", "llmproxy keeps no conversations for a provider that has only Chat Completions; send the whole conversation in input instead"},
		{"prompt", "prompt templates live in OpenAI's dashboard; a Chat Completions provider cannot expand them, send the text in input instead"},
		{"context_management", "server-side compaction is OpenAI's alone"},
		{"moderation", "moderation of input and output is OpenAI's alone"},
		{"top_logprobs", "log probabilities are not translated"},
	} {
		if v, ok := top.fields[f.key]; ok && !isZero(v) {
			return refuse(f.key, "%s", f.why)
		}
	}
	return nil
}

func parseText(top object, c *chatRequest, r *request) *apiError {
	v, e := top.kind("text", '{')
	if v == nil || e != nil {
		return e
	}
	r.echo.text = v
	text, _ := parseObject(v, "text")
	if s, _, e := text.str("verbosity"); e != nil {
		return e
	} else if s != "" && s != "medium" {
		return refuse("text.verbosity", "%q has no Chat Completions equivalent outside OpenAI; only the default \"medium\" is accepted", s)
	}
	if e := text.rest("verbosity", "format"); e != nil {
		return e
	}
	fv, e := text.kind("format", '{')
	if fv == nil || e != nil {
		return e
	}
	format, _ := parseObject(fv, "text.format")
	typ, e := format.needStr("type")
	if e != nil {
		return e
	}
	switch typ {
	case "text":
		return format.rest("type")
	case "json_object":
		c.ResponseFormat = json.RawMessage(`{"type":"json_object"}`)
		return format.rest("type")
	case "json_schema":
		name, e := format.needStr("name")
		if e != nil {
			return e
		}
		schema, e := format.kind("schema", '{')
		if e != nil {
			return e
		}
		if schema == nil {
			return missing("text.format.schema")
		}
		desc, e := format.kind("description", '"')
		if e != nil {
			return e
		}
		strict, e := format.kind("strict", 'b')
		if e != nil {
			return e
		}
		if e := format.rest("type", "name", "schema", "description", "strict"); e != nil {
			return e
		}
		rf, _ := json.Marshal(struct {
			Type       string `json:"type"`
			JSONSchema struct {
				Name        string          `json:"name"`
				Description json.RawMessage `json:"description,omitempty"`
				Schema      json.RawMessage `json:"schema"`
				Strict      json.RawMessage `json:"strict,omitempty"`
			} `json:"json_schema"`
		}{Type: "json_schema", JSONSchema: struct {
			Name        string          `json:"name"`
			Description json.RawMessage `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema"`
			Strict      json.RawMessage `json:"strict,omitempty"`
		}{name, desc, schema, strict}})
		c.ResponseFormat = rf
		return nil
	}
	return refuse("text.format.type", "%q has no Chat Completions response_format", typ)
}

func parseReasoning(top object, c *chatRequest, r *request, opts *Options) *apiError {
	v, e := top.kind("reasoning", '{')
	if v == nil || e != nil {
		return e
	}
	reasoning, _ := parseObject(v, "reasoning")
	effort, e := reasoning.kind("effort", '"')
	if e != nil {
		return e
	}
	if effort != nil {
		if opts.NoReasoningEffort {
			return refuse("reasoning.effort", "this provider takes no reasoning_effort")
		}
		c.ReasoningEffort = effort
		r.echo.effort = effort
	}
	// summary asks OpenAI to summarize its hidden reasoning. A Chat
	// Completions provider shows its reasoning whole (reasoning_content),
	// and that is what the reasoning item carries; there is no summary.
	summary, e := reasoning.kind("summary", '"')
	if e != nil {
		return e
	}
	r.echo.summary = summary
	if _, e := reasoning.kind("generate_summary", '"'); e != nil {
		return e
	}
	return reasoning.rest("effort", "summary", "generate_summary")
}

func parseTools(top object, c *chatRequest, r *request) *apiError {
	v, e := top.kind("tools", '[')
	if e != nil {
		return e
	}
	if v != nil {
		r.echo.tools = v
		var list []json.RawMessage
		json.Unmarshal(v, &list)
		for i, raw := range list {
			p := "tools[" + strconv.Itoa(i) + "]"
			t, e := parseObject(raw, p)
			if e != nil {
				return e
			}
			typ, e := t.needStr("type")
			if e != nil {
				return e
			}
			if typ != "function" {
				return refuse(p+".type", "%q is a built-in tool of OpenAI's Responses API; a provider with only Chat Completions can call function tools only", typ)
			}
			name, e := t.needStr("name")
			if e != nil {
				return e
			}
			fn := chatFunctionDef{Name: name}
			if fn.Description, e = t.kind("description", '"'); e != nil {
				return e
			}
			if fn.Parameters, e = t.kind("parameters", '{'); e != nil {
				return e
			}
			// strict is passed as given: Responses treats a missing strict
			// as true, Chat Completions as false, and many providers
			// reject the field, so llmproxy does not add it.
			if fn.Strict, e = t.kind("strict", 'b'); e != nil {
				return e
			}
			if e := t.rest("type", "name", "description", "parameters", "strict"); e != nil {
				return e
			}
			c.Tools = append(c.Tools, chatTool{Type: "function", Function: fn})
		}
	}
	tc := top.get("tool_choice")
	if tc == nil {
		return nil
	}
	r.echo.toolChoice = compact(tc)
	switch jsonKind(tc) {
	case '"':
		var s string
		json.Unmarshal(tc, &s)
		switch s {
		case "auto", "none", "required":
			c.ToolChoice = quote(s)
		default:
			return refuse("tool_choice", "%q is not one of auto, none, required", s)
		}
	case '{':
		o, _ := parseObject(tc, "tool_choice")
		typ, e := o.needStr("type")
		if e != nil {
			return e
		}
		if typ != "function" {
			return refuse("tool_choice.type", "%q cannot be chosen on a provider that has only Chat Completions (function tools only)", typ)
		}
		name, e := o.needStr("name")
		if e != nil {
			return e
		}
		if e := o.rest("type", "name"); e != nil {
			return e
		}
		c.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": name}})
	default:
		return invalid("tool_choice", "a string or an object")
	}
	return nil
}

// dropToolOptions leaves out tool_choice and parallel_tool_calls when no
// tool is sent: with nothing to call they change no answer, and OpenAI and
// several compatible providers reject them alone ("only allowed when tools
// are specified").
func dropToolOptions(c *chatRequest) {
	if len(c.Tools) == 0 {
		c.ToolChoice, c.ParallelToolCalls = nil, nil
	}
}
