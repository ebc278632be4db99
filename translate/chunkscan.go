package translate

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeChunk is the fast path for reading a Chat Completions chunk: a
// small scanner for the fields translation reads, which skips the rest.
// encoding/json spends about two thirds of a translated event's CPU on the
// same work (BenchmarkStream). It handles the chunks providers send and
// gives up (ok false) on anything unusual — a duplicate or differently
// cased key, a value of an unexpected type, an escaped surrogate, invalid
// UTF-8 — and the caller then decodes with encoding/json, which stays the
// reference: FuzzDecodeChunk checks that both agree whenever this one
// answers.
//
// model is the model name seen last: the same name again is not copied.
func decodeChunk(data []byte, c *chatChunk, model string) bool {
	s := scanner{data: data}
	if !s.object(func(key []byte) bool {
		switch string(key) {
		case "model":
			if s.null() {
				return true
			}
			b, ok := s.strBytes()
			if string(b) == model {
				c.Model = model
			} else {
				c.Model = string(b)
			}
			return ok
		case "choices":
			return s.choices(&c.Choices)
		case "usage":
			return s.usage(&c.Usage)
		case "error":
			start := s.ws()
			if !s.skip(0) {
				return false
			}
			c.Error = append(json.RawMessage(nil), s.data[start:s.i]...)
			return true
		}
		return s.other(key, "model", "choices", "usage", "error")
	}) {
		return false
	}
	s.ws()
	return s.i == len(s.data)
}

type scanner struct {
	data []byte
	i    int
}

// maxDepth bounds nesting in skipped values; deeper documents go to
// encoding/json.
const maxDepth = 64

func (s *scanner) ws() int {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return s.i
		}
	}
	return s.i
}

func (s *scanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) null() bool {
	s.ws()
	if hasPrefix(s.data[s.i:], "null") {
		s.i += 4
		return true
	}
	return false
}

// hasPrefix is bytes.HasPrefix without converting the prefix.
func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// other handles a key nobody reads: skipped, unless it matches a known key
// but for case (encoding/json would take it for that field).
func (s *scanner) other(key []byte, known ...string) bool {
	for _, k := range known {
		if strings.EqualFold(string(key), k) {
			return false
		}
	}
	return s.skip(0)
}

// object reads an object, calling field with the scanner at each value.
// Duplicate keys give up, since encoding/json's rule for them (the last
// wins, objects merge) is not worth copying.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.byte('{') {
		return false
	}
	var keys [8][]byte
	n := 0
	if s.byte('}') {
		return true
	}
	for {
		s.ws()
		key, ok := s.rawString()
		if !ok || !s.byte(':') {
			return false
		}
		for _, k := range keys[:min(n, len(keys))] {
			if string(k) == string(key) {
				return false
			}
		}
		if n >= len(keys) {
			return false // a chunk has few keys; this is something else
		}
		keys[n] = key
		n++
		if !field(key) {
			return false
		}
		if s.byte(',') {
			continue
		}
		return s.byte('}')
	}
}

// rawString reads a string with no escapes and returns its bytes; a string
// with escapes or bytes that need checking gives up.
func (s *scanner) rawString() ([]byte, bool) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.data); j++ {
		c := s.data[j]
		if c == '"' {
			s.i = j + 1
			return s.data[start:j], true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return nil, false
		}
	}
	return nil, false
}

// str reads a string value, decoding escapes.
func (s *scanner) str() (string, bool) {
	b, ok := s.strBytes()
	return string(b), ok
}

// strBytes reads a string value: its bytes in data when it has no escapes,
// else a decoded copy.
func (s *scanner) strBytes() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	j := start
	ascii := true
	for ; j < len(s.data); j++ {
		c := s.data[j]
		if c == '"' || c == '\\' || c < 0x20 {
			break
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if j < len(s.data) && s.data[j] == '"' {
		if !ascii && !utf8.Valid(s.data[start:j]) {
			return nil, false
		}
		s.i = j + 1
		return s.data[start:j], true
	}
	// Escapes: decode into a buffer.
	buf := make([]byte, 0, j-start+16)
	buf = append(buf, s.data[start:j]...)
	for j < len(s.data) {
		c := s.data[j]
		switch {
		case c == '"':
			if !utf8.Valid(buf) {
				return nil, false
			}
			s.i = j + 1
			return buf, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			buf = append(buf, c)
			j++
			continue
		}
		if j+1 >= len(s.data) {
			return nil, false
		}
		switch e := s.data[j+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			if j+6 > len(s.data) {
				return nil, false
			}
			r, err := strconv.ParseUint(string(s.data[j+2:j+6]), 16, 32)
			if err != nil || r >= 0xd800 && r < 0xe000 {
				return nil, false // a surrogate: encoding/json pairs them up
			}
			buf = utf8.AppendRune(buf, rune(r))
			j += 6
			continue
		default:
			return nil, false
		}
		j += 2
	}
	return nil, false
}

// stringInto reads a string or null (which leaves *dst as it is, as
// encoding/json does).
func (s *scanner) stringInto(dst *string) bool {
	if s.null() {
		return true
	}
	v, ok := s.str()
	*dst = v
	return ok
}

// textInto reads a content field: a string or null. An array of parts goes
// to encoding/json.
func (s *scanner) textInto(dst *text) bool {
	if s.null() {
		return true
	}
	v, ok := s.str()
	*dst = text(v)
	return ok
}

func (s *scanner) int(dst *int64) bool {
	s.ws()
	start := s.i
	if s.i < len(s.data) && s.data[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' {
		s.i++
	}
	if s.i < len(s.data) {
		switch s.data[s.i] {
		case '.', 'e', 'E':
			return false // not an integer: encoding/json refuses it too
		}
	}
	digits := s.data[start:s.i]
	if len(digits) == 0 || digits[0] == '-' && len(digits) == 1 ||
		len(digits) > 1 && digits[0] == '0' || len(digits) > 2 && digits[0] == '-' && digits[1] == '0' {
		return false
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	*dst = n
	return err == nil
}

func (s *scanner) intInto(dst *int) bool {
	if s.null() {
		return true
	}
	var n int64
	if !s.int(&n) || int64(int(n)) != n {
		return false
	}
	*dst = int(n)
	return true
}

func (s *scanner) int64Into(dst *int64) bool {
	if s.null() {
		return true
	}
	return s.int(dst)
}

// array reads an array or null; elem is called at each element.
func (s *scanner) array(isNull *bool, elem func() bool) bool {
	if s.null() {
		*isNull = true
		return true
	}
	if !s.byte('[') {
		return false
	}
	if s.byte(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.byte(',') {
			continue
		}
		return s.byte(']')
	}
}

func (s *scanner) choices(dst *[]chatChoice) bool {
	null := false
	list := (*dst)[:0] // the translator reuses one chunk's choices
	if list == nil {
		list = []chatChoice{}
	}
	ok := s.array(&null, func() bool {
		list = append(list, chatChoice{})
		ch := &list[len(list)-1]
		return s.object(func(key []byte) bool {
			switch string(key) {
			case "index":
				return s.intInto(&ch.Index)
			case "delta":
				return s.delta(&ch.Delta)
			case "message":
				return s.delta(&ch.Message)
			case "finish_reason":
				if s.null() {
					ch.FinishReason = nil
					return true
				}
				v, ok := s.str()
				ch.FinishReason = &v
				return ok
			}
			return s.other(key, "index", "delta", "message", "finish_reason")
		})
	})
	if !null {
		*dst = list
	} else {
		*dst = nil
	}
	return ok
}

func (s *scanner) delta(dst **chatDelta) bool {
	if s.null() {
		*dst = nil
		return true
	}
	d := &chatDelta{}
	*dst = d
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "content":
			return s.textInto(&d.Content)
		case "reasoning_content":
			return s.textInto(&d.ReasoningContent)
		case "reasoning":
			return s.textInto(&d.Reasoning)
		case "refusal":
			return s.textInto(&d.Refusal)
		case "tool_calls":
			return s.toolCalls(&d.ToolCalls)
		}
		return s.other(key, "content", "reasoning_content", "reasoning", "refusal", "tool_calls")
	})
}

func (s *scanner) toolCalls(dst *[]chatToolCallOut) bool {
	null := false
	list := []chatToolCallOut{}
	ok := s.array(&null, func() bool {
		list = append(list, chatToolCallOut{})
		tc := &list[len(list)-1]
		return s.object(func(key []byte) bool {
			switch string(key) {
			case "index":
				if s.null() {
					tc.Index = nil
					return true
				}
				var n int64
				if !s.int(&n) || int64(int(n)) != n {
					return false
				}
				i := int(n)
				tc.Index = &i
				return true
			case "id":
				return s.stringInto(&tc.ID)
			case "function":
				if s.null() {
					return true
				}
				return s.object(func(key []byte) bool {
					switch string(key) {
					case "name":
						return s.stringInto(&tc.Function.Name)
					case "arguments":
						if s.null() {
							return true
						}
						v, ok := s.str()
						tc.Function.Arguments = arguments(v)
						return ok
					}
					return s.other(key, "name", "arguments")
				})
			}
			return s.other(key, "index", "id", "function")
		})
	})
	if !null {
		*dst = list
	} else {
		*dst = nil
	}
	return ok
}

func (s *scanner) usage(dst **chatUsage) bool {
	if s.null() {
		*dst = nil
		return true
	}
	u := &chatUsage{}
	*dst = u
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "prompt_tokens":
			return s.int64Into(&u.PromptTokens)
		case "completion_tokens":
			return s.int64Into(&u.CompletionTokens)
		case "total_tokens":
			return s.int64Into(&u.TotalTokens)
		case "prompt_cache_hit_tokens":
			return s.int64Into(&u.PromptCacheHitTokens)
		case "prompt_tokens_details":
			if s.null() {
				u.PromptTokensDetails = nil
				return true
			}
			u.PromptTokensDetails = &struct {
				CachedTokens int64 `json:"cached_tokens"`
			}{}
			return s.object(func(key []byte) bool {
				if string(key) == "cached_tokens" {
					return s.int64Into(&u.PromptTokensDetails.CachedTokens)
				}
				return s.other(key, "cached_tokens")
			})
		case "completion_tokens_details":
			if s.null() {
				u.CompletionTokensDetails = nil
				return true
			}
			u.CompletionTokensDetails = &struct {
				ReasoningTokens int64 `json:"reasoning_tokens"`
			}{}
			return s.object(func(key []byte) bool {
				if string(key) == "reasoning_tokens" {
					return s.int64Into(&u.CompletionTokensDetails.ReasoningTokens)
				}
				return s.other(key, "reasoning_tokens")
			})
		}
		return s.other(key, "prompt_tokens", "completion_tokens", "total_tokens", "prompt_cache_hit_tokens",
			"prompt_tokens_details", "completion_tokens_details")
	})
}

// skip passes over one value, checking its syntax as strictly as
// encoding/json does.
func (s *scanner) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	s.ws()
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; {
	case c == '"':
		_, ok := s.strBytes()
		return ok
	case c == '{':
		s.i++
		if s.byte('}') {
			return true
		}
		for {
			s.ws()
			if _, ok := s.strBytes(); !ok || !s.byte(':') || !s.skip(depth+1) {
				return false
			}
			if s.byte(',') {
				continue
			}
			return s.byte('}')
		}
	case c == '[':
		s.i++
		if s.byte(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			if s.byte(',') {
				continue
			}
			return s.byte(']')
		}
	case c == 't', c == 'f', c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if hasPrefix(s.data[s.i:], lit) {
				s.i += len(lit)
				return true
			}
		}
		return false
	default:
		return s.number()
	}
}

// number passes over a number (RFC 8259 §6).
func (s *scanner) number() bool {
	d := s.data
	i := s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	s.i = i
	return true
}

// parseChunk decodes a chunk or a whole completion into c, which it resets
// first (keeping the room of its choices): the fast path, else
// encoding/json.
func parseChunk(data []byte, c *chatChunk, model string) error {
	*c = chatChunk{Choices: c.Choices[:0]}
	if decodeChunk(data, c, model) {
		return nil
	}
	*c = chatChunk{}
	return json.Unmarshal(data, c)
}
