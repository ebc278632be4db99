package translate

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/sse"
)

// The translator turns Chat Completions deltas into Responses output items
// and, for a stream, into the Responses events that build them. A
// non-streaming answer goes through the same machine as one chunk, with
// events turned off, so both forms of an answer come out alike.

type itemKind uint8

const (
	kindMessage itemKind = iota
	kindCall
	kindReasoning
)

// part is one content part of a message: output_text or refusal.
type part struct {
	refusal bool
	text    strings.Builder // String does not copy: done events cost no copy
	open    bool
}

type item struct {
	kind   itemKind
	id     string
	index  int    // output_index; -1 until output_item.added
	status string // in_progress, completed, incomplete
	// message
	parts []*part
	// function call
	callID, name string
	args         strings.Builder
	// reasoning
	text strings.Builder
	// madeUp: the empty message of an answer that had no text and no
	// call; shown, never stored for previous_response_id.
	madeUp bool
}

type translator struct {
	quiet bool   // build the Response only, no events
	out   []byte // events ready to be read
	buf   []byte // one event's JSON
	seq   int64  // sequence_number: OpenAI counts from 0

	req       *request
	id        string
	createdAt int64
	model     string // the provider's own name for it, once known
	gotModel  bool
	newID     func(string) string
	now       func() time.Time
	store     *Store

	items   []*item // in output_index order
	msg, rs *item   // the open message or reasoning item
	calls   []*item // open function calls, in the order they began
	byIndex map[int]*item
	usage   *chatUsage
	scratch chatChunk // the chunk being read, reused

	finished bool // finish_reason seen
	ended    bool // the terminal event was written
	status   string
	reason   string // incomplete_details.reason
	errCode  string
	errMsg   string
	final    []byte // the terminal Response
}

func newTranslator(r *request, o *Options, store *Store, quiet bool) *translator {
	return &translator{
		quiet: quiet, req: r, id: o.newID()("resp_"), createdAt: o.now()().Unix(),
		model: r.model, newID: o.newID(), now: o.now(), store: store, status: "in_progress",
	}
}

// start writes response.created and response.in_progress.
func (t *translator) start() {
	if t.quiet {
		return
	}
	for _, typ := range []string{"response.created", "response.in_progress"} {
		t.begin(typ)
		t.buf = append(t.buf, `,"response":`...)
		t.buf = t.appendResponse(t.buf)
		t.flush(typ)
	}
}

// event handles one upstream SSE event; done reports the end of the
// answer ([DONE], or an error the provider sent).
func (t *translator) event(ev sse.Event) (done bool, err error) {
	if len(ev.Data) == 0 {
		return false, nil // a comment or keep-alive
	}
	if string(ev.Data) == "[DONE]" {
		t.end()
		return true, nil
	}
	c := &t.scratch
	if err := parseChunk(ev.Data, c, t.model); err != nil {
		if string(ev.Name) != "error" {
			return true, errBadChunk
		}
		// An error event whose data is plain text: the text is the message.
		*c = chatChunk{Error: quote(string(ev.Data))}
	}
	if string(ev.Name) == "error" && isNull(c.Error) {
		c.Error = json.RawMessage(ev.Data)
	}
	t.chunk(c)
	return t.ended, nil
}

// chunk applies one chunk (or a whole completion).
func (t *translator) chunk(c *chatChunk) {
	if t.ended {
		return
	}
	if !isNull(c.Error) {
		code, msg := upstreamError(c.Error)
		t.fail(code, msg)
		return
	}
	if c.Model != "" && !t.gotModel {
		t.model, t.gotModel = c.Model, true
	}
	if c.Usage != nil {
		t.usage = c.Usage
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 || t.finished {
			continue // llmproxy never asks for n > 1
		}
		d := ch.Delta
		if d == nil {
			d = ch.Message
		}
		if d != nil {
			if d.ReasoningContent != "" {
				t.reasoning(string(d.ReasoningContent))
			} else if d.Reasoning != "" {
				t.reasoning(string(d.Reasoning))
			}
			if d.Content != "" {
				t.text(string(d.Content), false)
			}
			if d.Refusal != "" {
				t.text(string(d.Refusal), true)
			}
			for j := range d.ToolCalls {
				t.toolCall(&d.ToolCalls[j])
			}
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			t.finish(*ch.FinishReason)
		}
	}
}

func (t *translator) add(it *item) {
	it.index = len(t.items)
	it.status = "in_progress"
	t.items = append(t.items, it)
	if t.quiet {
		return
	}
	t.begin("response.output_item.added")
	t.buf = append(t.buf, `,"output_index":`...)
	t.buf = appendInt(t.buf, int64(it.index))
	t.buf = append(t.buf, `,"item":`...)
	t.buf = appendItem(t.buf, it, true)
	t.flush("response.output_item.added")
}

func (t *translator) itemDone(it *item) {
	if it.status == "in_progress" {
		it.status = "completed"
	}
	if t.quiet {
		return
	}
	t.begin("response.output_item.done")
	t.buf = append(t.buf, `,"output_index":`...)
	t.buf = appendInt(t.buf, int64(it.index))
	t.buf = append(t.buf, `,"item":`...)
	t.buf = appendItem(t.buf, it, false)
	t.flush("response.output_item.done")
}

func (t *translator) reasoning(s string) {
	if t.rs == nil {
		t.closeMessage()
		t.closeCalls()
		t.rs = &item{kind: kindReasoning, id: t.newID("rs_")}
		t.add(t.rs)
		t.partEvent("response.content_part.added", t.rs, 0, "", nil)
	}
	t.rs.text.WriteString(s)
	if t.quiet {
		return
	}
	t.begin("response.reasoning_text.delta")
	t.buf = t.ref(t.buf, t.rs, 0)
	t.buf = append(t.buf, `,"delta":`...)
	t.buf = appendString(t.buf, s)
	t.flush("response.reasoning_text.delta")
}

func (t *translator) closeReasoning() {
	it := t.rs
	if it == nil {
		return
	}
	t.rs = nil
	if !t.quiet {
		t.begin("response.reasoning_text.done")
		t.buf = t.ref(t.buf, it, 0)
		t.buf = append(t.buf, `,"text":`...)
		t.buf = appendString(t.buf, it.text.String())
		t.flush("response.reasoning_text.done")
		t.partEvent("response.content_part.done", it, 0, it.text.String(), nil)
	}
	t.itemDone(it)
}

// text adds output text (or refusal text) to the open message.
func (t *translator) text(s string, refusal bool) {
	if t.msg == nil {
		t.closeReasoning()
		t.closeCalls()
		t.msg = &item{kind: kindMessage, id: t.newID("msg_")}
		t.add(t.msg)
	}
	it := t.msg
	var p *part
	if n := len(it.parts); n > 0 && it.parts[n-1].open && it.parts[n-1].refusal == refusal {
		p = it.parts[n-1]
	} else {
		t.closePart(it)
		p = &part{refusal: refusal, open: true}
		it.parts = append(it.parts, p)
		t.partEvent("response.content_part.added", it, len(it.parts)-1, "", p)
	}
	p.text.WriteString(s)
	if t.quiet || s == "" {
		return
	}
	typ := "response.output_text.delta"
	if refusal {
		typ = "response.refusal.delta"
	}
	t.begin(typ)
	t.buf = t.ref(t.buf, it, len(it.parts)-1)
	t.buf = append(t.buf, `,"delta":`...)
	t.buf = appendString(t.buf, s)
	if !refusal {
		t.buf = append(t.buf, `,"logprobs":[]`...)
	}
	t.flush(typ)
}

func (t *translator) closePart(it *item) {
	n := len(it.parts)
	if n == 0 || !it.parts[n-1].open {
		return
	}
	p := it.parts[n-1]
	p.open = false
	if t.quiet {
		return
	}
	if p.refusal {
		t.begin("response.refusal.done")
		t.buf = t.ref(t.buf, it, n-1)
		t.buf = append(t.buf, `,"refusal":`...)
		t.buf = appendString(t.buf, p.text.String())
		t.flush("response.refusal.done")
	} else {
		t.begin("response.output_text.done")
		t.buf = t.ref(t.buf, it, n-1)
		t.buf = append(t.buf, `,"text":`...)
		t.buf = appendString(t.buf, p.text.String())
		t.buf = append(t.buf, `,"logprobs":[]`...)
		t.flush("response.output_text.done")
	}
	t.partEvent("response.content_part.done", it, n-1, "", p)
}

func (t *translator) closeMessage() {
	it := t.msg
	if it == nil {
		return
	}
	t.msg = nil
	t.closePart(it)
	t.itemDone(it)
}

// toolCall applies one tool-call fragment. The first fragment of a call
// carries its id and name, the rest pieces of arguments; calls are told
// apart by index (or, from providers that send none, by a new id).
func (t *translator) toolCall(tc *chatToolCallOut) {
	t.closeReasoning()
	t.closeMessage()
	var it *item
	if tc.Index != nil {
		it = t.byIndex[*tc.Index]
	} else if n := len(t.calls); n > 0 {
		if last := t.calls[n-1]; tc.ID == "" || last.callID == "" || last.callID == tc.ID {
			it = last
		}
	}
	if it == nil {
		it = &item{kind: kindCall, id: t.newID("fc_"), index: -1}
		t.calls = append(t.calls, it)
		if tc.Index != nil {
			if t.byIndex == nil {
				t.byIndex = make(map[int]*item)
			}
			t.byIndex[*tc.Index] = it
		}
	}
	if it.callID == "" {
		it.callID = tc.ID
	}
	// Some providers repeat the name in every fragment: set it once.
	if it.name == "" {
		it.name = tc.Function.Name
	}
	args := string(tc.Function.Arguments)
	if it.index < 0 {
		it.args.WriteString(args)
		if it.name != "" {
			t.addCall(it)
		}
		return
	}
	if args == "" {
		return
	}
	it.args.WriteString(args)
	t.argsDelta(it, args)
}

// addCall announces a call once its name is known, with any arguments
// that came before it as one delta.
func (t *translator) addCall(it *item) {
	if it.callID == "" {
		it.callID = t.newID("call_")
	}
	t.add(it) // announced with empty arguments, as OpenAI does
	if it.args.Len() > 0 {
		t.argsDelta(it, it.args.String())
	}
}

func (t *translator) argsDelta(it *item, s string) {
	if t.quiet {
		return
	}
	t.begin("response.function_call_arguments.delta")
	t.buf = t.ref(t.buf, it, -1)
	t.buf = append(t.buf, `,"delta":`...)
	t.buf = appendString(t.buf, s)
	t.flush("response.function_call_arguments.delta")
}

func (t *translator) closeCalls() {
	calls := t.calls
	if len(calls) == 0 {
		return
	}
	t.calls, t.byIndex = nil, nil
	for _, it := range calls {
		if it.index < 0 {
			t.addCall(it) // a call whose name never came
		}
	}
	for _, it := range calls {
		if !t.quiet {
			t.begin("response.function_call_arguments.done")
			t.buf = t.ref(t.buf, it, -1)
			t.buf = append(t.buf, `,"arguments":`...)
			t.buf = appendString(t.buf, it.args.String())
			t.flush("response.function_call_arguments.done")
		}
		t.itemDone(it)
	}
}

// finish handles finish_reason: every open item is done. What the
// Responses status becomes:
//   - length (max_tokens from some providers, model_context_window_exceeded
//     from GLM): incomplete, reason max_output_tokens;
//   - content_filter (sensitive from GLM): incomplete, reason content_filter;
//   - insufficient_system_resource (DeepSeek), network_error (GLM), error:
//     failed, the provider broke off the answer;
//   - anything else (stop, tool_calls, …): completed.
func (t *translator) finish(reason string) {
	t.finished = true
	switch reason {
	case "length", "max_tokens", "model_context_window_exceeded":
		t.status, t.reason = "incomplete", "max_output_tokens"
	case "content_filter", "sensitive":
		t.status, t.reason = "incomplete", "content_filter"
	case "insufficient_system_resource", "network_error", "error":
		t.status, t.errCode = "failed", "server_error"
		t.errMsg = "the provider stopped the answer: finish_reason " + reason
	default:
		t.status = "completed"
	}
	t.closeAll()
}

// closeAll ends every open item. On an incomplete answer the last item is
// the one that was cut. An answer with neither text nor a call still gets
// its (empty) message, so that output_text is "" and not missing — but not
// one cut while it reasoned: its last item is the reasoning, incomplete,
// as OpenAI answers then. One cut before any output has its empty message
// incomplete.
func (t *translator) closeAll() {
	incomplete := t.status == "incomplete"
	if incomplete {
		var last *item
		switch {
		case t.msg != nil:
			last = t.msg
		case t.rs != nil:
			last = t.rs
		case len(t.calls) > 0:
			last = t.calls[len(t.calls)-1]
		}
		if last != nil {
			last.status = "incomplete"
		}
	}
	t.closeReasoning()
	t.closeCalls()
	if t.msg == nil && t.status != "failed" {
		found := false
		for _, it := range t.items {
			found = found || it.kind != kindReasoning
		}
		if !found && !(incomplete && len(t.items) > 0) {
			t.text("", false)
			t.msg.madeUp = true
			if incomplete {
				t.msg.status = "incomplete"
			}
		}
	}
	t.closeMessage()
}

// end writes the terminal event: at [DONE], or at the clean end of a
// stream after a finish_reason.
func (t *translator) end() {
	if t.ended {
		return
	}
	if !t.finished {
		t.finished = true
		t.status = "completed"
		t.closeAll()
	}
	t.terminal()
}

// fail ends the answer with response.failed: the provider reported an
// error. Items still open are left incomplete.
func (t *translator) fail(code, msg string) {
	if t.ended {
		return
	}
	t.status, t.errCode, t.errMsg = "failed", code, msg
	for _, it := range t.items {
		if it.status == "in_progress" {
			it.status = "incomplete"
		}
	}
	t.terminal()
}

func (t *translator) terminal() {
	t.ended = true
	typ := "response.completed"
	switch t.status {
	case "incomplete":
		typ = "response.incomplete"
	case "failed":
		typ = "response.failed"
	}
	t.final = t.appendResponse(nil)
	if t.req.keep && t.status != "failed" {
		items := make([]json.RawMessage, 0, len(t.req.items)+len(t.items))
		items = append(items, t.req.items...)
		for _, it := range t.items {
			if !it.madeUp { // an empty assistant turn, replayed, is refused by some providers
				items = append(items, appendItem(nil, it, false))
			}
		}
		t.store.put(t.id, t.req.owner, t.final, items)
	}
	if t.quiet {
		return
	}
	t.begin(typ)
	t.buf = append(t.buf, `,"response":`...)
	t.buf = append(t.buf, t.final...)
	t.flush(typ)
}

// begin starts an event's JSON: type and sequence_number come first, as
// in OpenAI's streams.
func (t *translator) begin(typ string) {
	t.buf = append(t.buf[:0], `{"type":"`...)
	t.buf = append(t.buf, typ...)
	t.buf = append(t.buf, `","sequence_number":`...)
	t.buf = appendInt(t.buf, t.seq)
	t.seq++
}

func (t *translator) flush(typ string) {
	t.buf = append(t.buf, '}')
	t.out = sse.AppendEvent(t.out, typ, t.buf, false)
}

// ref appends item_id, output_index and (when ci >= 0) content_index.
func (t *translator) ref(b []byte, it *item, ci int) []byte {
	b = append(b, `,"item_id":`...)
	b = appendString(b, it.id)
	b = append(b, `,"output_index":`...)
	b = appendInt(b, int64(it.index))
	if ci >= 0 {
		b = append(b, `,"content_index":`...)
		b = appendInt(b, int64(ci))
	}
	return b
}

// partEvent writes content_part.added/.done: of a message with its part
// p, of a reasoning item with its text.
func (t *translator) partEvent(typ string, it *item, ci int, reasoning string, p *part) {
	if t.quiet {
		return
	}
	t.begin(typ)
	t.buf = t.ref(t.buf, it, ci)
	t.buf = append(t.buf, `,"part":`...)
	if it.kind == kindReasoning {
		t.buf = appendReasoningText(t.buf, reasoning)
	} else {
		t.buf = appendPart(t.buf, p)
	}
	t.flush(typ)
}
