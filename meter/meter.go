// Package meter counts token usage passively from provider answers as they
// stream to the client. It reads the numbers of an answer's "usage" object
// (Gemini: "usageMetadata") and nothing else: no prompt or completion text is
// kept beyond the event or chunk being looked at, logged or stored.
//
// The meter sits on the hot path of every gateway response, so it is built to
// cost little: bytes go to the client as the provider sent them (only
// Options.StripUsageChunk holds an event back, and never past its end), events
// are found with a byte scan, and JSON is decoded only for the few events that
// carry a usage object.
package meter

import (
	"io"
	"sync"
)

// Usage is the token count of one answer. The parts are included in their
// whole: CachedInput and CacheWrite in Input, Reasoning in Output, whatever
// the provider's own convention (see the mapping per Format). Each count is
// clamped to [0, MaxCount], and a part never exceeds its whole.
type Usage struct {
	Input       int64 // input/prompt tokens, cached and cache-write ones included
	CachedInput int64 // of Input, read from the provider's prompt cache
	CacheWrite  int64 // of Input, written to the prompt cache (Anthropic cache_creation_input_tokens), billed as input at a premium
	Output      int64 // output/completion tokens, reasoning included
	Reasoning   int64 // of Output, reasoning/thinking tokens
}

// MaxCount bounds every count read from an answer (about 10^12), so that a
// broken or hostile upstream cannot overflow a sum or a budget.
const MaxCount = 1 << 40

// Total returns Input + Output: every token the answer was billed for. It is
// OpenAI's total_tokens, Gemini's totalTokenCount (prompt + tool-use prompt +
// candidates + thoughts), and for Anthropic input + cache read + cache write +
// output. CachedInput, CacheWrite and Reasoning are parts of these, not added.
func (u Usage) Total() int64 { return u.Input + u.Output }

// IsZero reports whether no token was counted.
func (u Usage) IsZero() bool { return u == Usage{} }

// Add adds o to u, field by field.
func (u *Usage) Add(o Usage) {
	u.Input += o.Input
	u.CachedInput += o.CachedInput
	u.CacheWrite += o.CacheWrite
	u.Output += o.Output
	u.Reasoning += o.Reasoning
}

// Format is the API family an answer belongs to: where its usage lives.
type Format uint8

const (
	// OpenAI is Chat Completions, legacy Completions and Embeddings, and the
	// OpenAI-compatible providers: "usage" with prompt_tokens,
	// completion_tokens and their details.
	OpenAI Format = iota
	// OpenAIResponses is the Responses API: the response's "usage" with
	// input_tokens and output_tokens.
	OpenAIResponses
	// Anthropic is the Messages API: "usage" with input_tokens, the cache
	// fields and output_tokens.
	Anthropic
	// Gemini is generateContent and streamGenerateContent: "usageMetadata".
	Gemini
)

func (f Format) String() string {
	switch f {
	case OpenAI:
		return "openai"
	case OpenAIResponses:
		return "openai-responses"
	case Anthropic:
		return "anthropic"
	case Gemini:
		return "gemini"
	}
	return "unknown"
}

// DefaultMaxBuffer is Options.MaxBuffer's default.
const DefaultMaxBuffer = 8 << 20

// Options say how to read an answer. The zero value reads a non-streaming
// OpenAI JSON body and reports to nobody.
type Options struct {
	// Format of the answer; default OpenAI.
	Format Format
	// Stream: the body is text/event-stream. Otherwise a single JSON value;
	// for Gemini also a streamed JSON array of chunks (streamGenerateContent
	// without alt=sse), told apart by its first byte.
	Stream bool
	// StripUsageChunk (OpenAI streams only; ignored otherwise): llmproxy asked
	// the provider for usage with stream_options.include_usage although the
	// client did not, so the usage-only chunk (the event whose JSON has
	// "choices": [] and a non-null "usage") is dropped from what the client
	// receives, byte for byte as if the option had not been sent. Events with
	// content are never dropped (a provider that puts usage on its last
	// content chunk shows it to the client), "data: [DONE]" is kept. Each
	// event is then passed on once it is complete (its blank line read), not
	// as its bytes arrive.
	StripUsageChunk bool
	// MaxBuffer bounds the bytes kept to read usage from: a non-streaming
	// body, one event of a stream, one chunk of a Gemini array. Default
	// DefaultMaxBuffer (8 MiB). Anything longer is passed on whole but its
	// usage counts as unknown (an event that long is never dropped).
	MaxBuffer int
	// RequireEnd: a stream (SSE, or a Gemini JSON array) must end with its
	// format's last event — "[DONE]" or a finish_reason (OpenAI),
	// response.completed/incomplete/failed (Responses), message_stop
	// (Anthropic), a finishReason (Gemini), or an error event. One that
	// the provider ends cleanly without it was cut short: the read that
	// meets the end returns io.ErrUnexpectedEOF instead of io.EOF (and Done
	// says incomplete), so the proxy aborts the client's connection rather
	// than pass a cut answer off as a whole one.
	RequireEnd bool
	// Done, if not nil, is called exactly once: at the end of the body, on
	// Close, or when a read fails, with the usage seen so far and whether the
	// body ended cleanly (io.EOF). It runs on the goroutine that read the end
	// or called Close.
	Done func(u Usage, complete bool)
}

// Wrap returns a body that passes body's bytes through (unchanged, except
// for StripUsageChunk) and reads usage on the way. Read errors pass through
// unchanged. Close closes body; Close may be called while a Read is blocked
// in another goroutine (to abort it).
func Wrap(body io.ReadCloser, opts Options) io.ReadCloser {
	m := newMeter(opts)
	m.body = body
	return m
}

// Parse reads usage from a whole answer held in memory: a non-streaming JSON
// body, or a whole SSE stream when stream is true (a Gemini JSON array when
// it is false). ok reports whether a usage object was found.
func Parse(f Format, stream bool, data []byte) (u Usage, ok bool) {
	m := newMeter(Options{Format: f, Stream: stream, MaxBuffer: len(data) + 1})
	if _, whole := m.split.(*bodySplit); whole {
		m.decode(data) // no need to copy what is already in memory
	} else {
		m.scan(data)
		m.end()
	}
	return m.u, m.known
}

var _ io.ReadCloser = (*meter)(nil)

// meter is the wrapped body. Read runs on one goroutine; Close may run on
// another, so the scan state is guarded by mu (never held across a Read of
// the underlying body, which Close must be able to interrupt).
type meter struct {
	body   io.ReadCloser
	f      Format
	stream bool
	strip  bool
	max    int
	done   func(Usage, bool)

	requireEnd bool // see Options.RequireEnd
	sawEnd     bool // the format's last event went by

	split splitter
	pos   int64 // without strip: the offset of the next byte to scan

	mu     sync.Mutex
	ended  bool   // Done was called (or is due): scanning stopped
	cur    []byte // without strip: the open unit's bytes read so far
	over   bool   // the open unit starting at overAt outgrew max
	overAt int64

	// With strip: bytes read and not yet returned. buf[:ready] may go out
	// (buf[:off] already did), buf[ready:] is an event held until complete.
	buf     []byte
	base    int64 // logical offset of buf[0]
	ready   int
	off     int
	scanned int
	err     error // the underlying read's error, returned once buf is drained

	pending error // Relay over Reads: an error that came with bytes put stopped at

	usageState
}

func newMeter(opts Options) *meter {
	m := &meter{
		f:      opts.Format,
		stream: opts.Stream,
		strip:  opts.StripUsageChunk && opts.Stream && opts.Format == OpenAI,
		// A Gemini body may be a streamed array; it is told by its first
		// byte, so the check is armed for Gemini bodies of either kind.
		requireEnd: opts.RequireEnd && (opts.Stream || opts.Format == Gemini),
		max:        opts.MaxBuffer,
		done:       opts.Done,
	}
	if m.max <= 0 {
		m.max = DefaultMaxBuffer
	}
	switch {
	case m.stream:
		m.split = &sseSplit{}
	case m.f == Gemini:
		m.split = &jsonSplit{}
	default:
		m.split = &bodySplit{}
	}
	return m
}

// maxEmptyReads bounds consecutive (0, nil) reads from the underlying body,
// as bufio does: Read itself never returns (0, nil).
const maxEmptyReads = 100

func (m *meter) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := m.pending; err != nil {
		// An error that came with the bytes a Relay over Reads stopped at.
		m.pending = nil
		return 0, err
	}
	if m.strip {
		return m.readHeld(p)
	}
	var n int
	var err error
	for empty := 0; ; empty++ {
		n, err = m.body.Read(p)
		if n > 0 || err != nil {
			break
		}
		if empty == maxEmptyReads {
			err = io.ErrNoProgress
			break
		}
	}
	m.mu.Lock()
	var fire bool
	var u Usage
	if !m.ended {
		if n > 0 {
			m.scan(p[:n])
		}
		if err != nil {
			u, fire = m.end(), true
			err = m.cut(err)
		}
	}
	m.mu.Unlock()
	if fire && m.done != nil {
		m.done(u, err == io.EOF)
	}
	return n, err
}

// Close closes the underlying body. Before the end of the body it reports
// the usage seen so far, as incomplete.
func (m *meter) Close() error {
	m.mu.Lock()
	var fire bool
	var u Usage
	if !m.ended {
		u, fire = m.end(), true
	}
	m.mu.Unlock()
	err := m.body.Close()
	if fire && m.done != nil {
		m.done(u, false)
	}
	return err
}

// scan reads b, the next bytes of the body, without keeping them beyond
// the unit (event, chunk, body) still open at its end.
func (m *meter) scan(b []byte) {
	base := m.pos
	m.pos += int64(len(b))
	m.split.feed(b, base)
	for {
		s, e, ok := m.split.next()
		if !ok {
			break
		}
		switch {
		case m.over && m.overAt == s:
		case s >= base:
			m.unit(b[s-base:e-base], false)
		default:
			m.cur = append(m.cur, b[:e-base]...)
			m.unit(m.cur, false)
		}
		m.cur, m.over = m.cur[:0], false
	}
	s, open := m.split.open()
	switch {
	case !open:
		m.cur, m.over = m.cur[:0], false
	case m.over && m.overAt == s:
	default:
		if s >= base {
			m.cur, m.over = m.cur[:0], false
		}
		from := max(s-base, 0)
		if len(m.cur)+int(int64(len(b))-from) > m.max {
			m.cur, m.over, m.overAt = m.cur[:0], true, s
			return
		}
		m.cur = append(m.cur, b[from:]...)
	}
}

// cut turns a clean end without the format's last event into
// io.ErrUnexpectedEOF when the end is required.
func (m *meter) cut(err error) error {
	if err == io.EOF && m.requireEnd && !m.sawEnd {
		return io.ErrUnexpectedEOF
	}
	return err
}

// tail returns the open unit when it is whole as far as the body went (an
// event missing only its blank line, a non-streaming body), else nil.
func (m *meter) tail() []byte {
	s, open := m.split.open()
	if !open || (m.over && m.overAt == s) {
		return nil
	}
	if _, isJSON := m.split.(*jsonSplit); isJSON {
		return nil // a chunk cut before its closing brace cannot be decoded
	}
	if m.strip {
		return m.buf[s-m.base:]
	}
	return m.cur
}

// end stops scanning and returns the usage seen. With strip, readHeld has
// handled the tail already (or, on Close, the client never got it).
func (m *meter) end() Usage {
	m.ended = true
	if !m.strip {
		if t := m.tail(); t != nil {
			m.unit(t, true)
		}
	}
	m.cur = nil
	m.finishGemini()
	return m.u
}
