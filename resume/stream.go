package resume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// stream is the body the client reads. Each Read drives the state machine
// until there is output: read an upstream chunk, decide, write what the
// client may see; at the end of an attempt, finish or continue.
type stream struct {
	t      *Transport
	o      Options
	req    *http.Request  // the first request, body buffered
	reqObj map[string]any // its decoded body
	ctx    context.Context
	start  time.Time
	w      writer

	mu     sync.Mutex // guards body and closed against Close from another goroutine
	body   io.ReadCloser
	closed bool
	rd     reader
	// The idle timer cuts the current attempt's body when a read waits
	// longer than the idle timeout; one timer serves every attempt.
	timer    *time.Timer
	idleWait bool      // a read is waiting: the timer may cut
	idleAt   time.Time // …once this moment has come (a late firing of an earlier wait does not)
	idleHit  bool      // the timer cut the current attempt

	resumes      int             // continuations so far
	visible      strings.Builder // the answer text the client has
	functionCall bool            // a function call went out: no continuing
	done         bool            // the answer ended (normally or terminally)
	resumeReason string          // why the current attempt must be continued
	lastAbnormal string          // the last ending held back
	failed       map[string]any  // the error event the stream ended with
	failedStatus int             // …and the HTTP status it stands for
	finished     bool
	endErr       error

	// Per attempt.
	answerResumed  bool     // a continuation's answer text started
	pending        []*event // a continuation's first chunks, held to trim a repeat
	pendingChecked bool
	usageBase      usage // token counts of the attempts before this one
	lastUsage      usage // this attempt's latest (cumulative) counts
	responseID     string
}

// attach makes body the current attempt's.
func (s *stream) attach(body io.ReadCloser) {
	s.mu.Lock()
	s.body = body
	s.idleHit = false
	s.mu.Unlock()
	switch s.w.framing {
	case sseFraming:
		s.rd = newSSEReader(body)
	case array:
		s.rd = newArrayReader(body)
	case unary:
		s.rd = &unaryReader{r: body}
	}
	s.answerResumed, s.pending, s.pendingChecked = false, nil, s.resumes == 0
	s.resumeReason = ""
}

func (s *stream) Read(p []byte) (int, error) {
	for s.w.buf.Len() == 0 {
		if s.finished {
			return 0, s.endErr
		}
		s.step()
	}
	return s.w.buf.Read(p)
}

// Close stops everything: the current attempt's connection closes at once.
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.body != nil {
		s.body.Close()
	}
	return nil
}

func (s *stream) finish(err error) {
	s.finished, s.endErr = true, err
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	s.mu.Unlock()
}

// next reads the next chunk of the current attempt, cutting the attempt
// when it stays silent for the idle timeout.
func (s *stream) next() (*event, error) {
	s.mu.Lock()
	s.idleWait, s.idleAt = true, time.Now().Add(s.o.IdleTimeout)
	if s.timer == nil {
		s.timer = time.AfterFunc(s.o.IdleTimeout, s.idle)
	} else {
		s.timer.Reset(s.o.IdleTimeout)
	}
	s.mu.Unlock()
	e, err := s.rd.next()
	if r, ok := s.rd.(*sseReader); ok && r.crlf() {
		s.w.crlf = true // events of our own end their lines as the upstream's do
	}
	s.mu.Lock()
	s.timer.Stop()
	s.idleWait = false
	if s.idleHit && err != nil {
		err = errIdle
	}
	s.mu.Unlock()
	return e, err
}

// idle cuts the attempt whose read has waited for the idle timeout: the
// body current when the timer fires, whichever attempt it belongs to.
func (s *stream) idle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.idleWait || time.Now().Before(s.idleAt) || s.body == nil {
		return // a firing for a read that has ended
	}
	s.idleHit = true
	s.body.Close()
}

func (s *stream) step() {
	e, err := s.next()
	if err == nil {
		s.handle(e)
		return
	}
	// The attempt is over.
	s.flushPending()
	switch {
	case contextDone(s.ctx):
		s.finish(s.ctx.Err()) // the client left: stop everything
		return
	case s.done && errors.Is(err, io.EOF):
		s.w.end()
		s.finish(io.EOF)
		return
	case s.done:
		// The answer had ended; the connection broke before the stream's
		// own end. Nothing is missing but the framing.
		s.w.end()
		s.finish(io.EOF)
		return
	case s.functionCall:
		// A function call went out and the stream broke without an ending:
		// it cannot be continued, and no end may be made up.
		s.finish(io.ErrUnexpectedEOF)
		return
	}
	reason := s.resumeReason
	switch {
	case reason != "":
	case errors.Is(err, errIdle):
		reason = "idle_timeout"
	case errors.Is(err, io.EOF):
		reason = "no_finish_reason"
	default:
		reason = "connection_lost"
	}
	s.resume(reason)
}

// handle takes one chunk of the current attempt.
func (s *stream) handle(e *event) {
	if e.obj == nil {
		s.w.event(e) // an SSE comment or anything not JSON: pass it on
		return
	}
	if eo := e.errorObject(); eo != nil {
		code, _ := eo["code"].(interface{ Int64() (int64, error) })
		var n int64
		if code != nil {
			n, _ = code.Int64()
		}
		if n >= 400 && n < 500 {
			// The client's problem: pass Google's error on, after the text
			// that came before it.
			s.flushPending()
			s.w.event(e)
			s.done = true
			return
		}
		s.resumeReason = fmt.Sprintf("upstream_error_%d", n)
		return
	}
	if e.blockReason() != "" {
		s.flushPending()
		s.w.event(e) // a blocked prompt: retrying would not help
		s.done = true
		return
	}
	if id, ok := e.obj["responseId"].(string); ok {
		if s.responseID == "" {
			s.responseID = id
		} else if id != s.responseID {
			e.obj["responseId"] = s.responseID // one stream, one id
			e.dirty = true
		}
	}
	if u := e.usage(); u != nil {
		s.lastUsage = u
		e.addUsage(s.usageBase)
	}
	if s.resumes > 0 {
		s.dropThoughtsBeforeAnswer(e)
		if !s.pendingChecked {
			s.pending = append(s.pending, e)
			if pendingText(s.pending) >= overlapWindow || e.finishReason() != "" {
				s.flushPending()
			}
			return
		}
	}
	s.decide(e)
}

// dropThoughtsBeforeAnswer removes a continuation's thoughts until its
// answer resumes: the client saw the thinking already.
func (s *stream) dropThoughtsBeforeAnswer(e *event) {
	if s.answerResumed {
		return
	}
	parts := e.parts()
	kept := parts[:0:0]
	for _, p := range parts {
		if !s.answerResumed && isThought(p) {
			continue
		}
		if text, visible := partText(p); visible && text != "" || isFunctionCall(p) {
			s.answerResumed = true
		}
		kept = append(kept, p)
	}
	if len(kept) != len(parts) {
		e.setParts(kept)
	}
}

func pendingText(events []*event) int {
	n := 0
	for _, e := range events {
		for _, p := range e.parts() {
			if text, visible := partText(p); visible {
				n += len(text)
			}
		}
	}
	return n
}

// flushPending drops the part of a continuation's opening that repeats the
// end of what the client has, then releases the held chunks.
func (s *stream) flushPending() {
	if s.pendingChecked {
		return
	}
	s.pendingChecked = true
	var text strings.Builder
	for _, e := range s.pending {
		for _, p := range e.parts() {
			if t, visible := partText(p); visible {
				text.WriteString(t)
			}
		}
	}
	if k := overlap(s.visible.String(), text.String()); k > 0 {
		trimFront(s.pending, k)
	}
	pending := s.pending
	s.pending = nil
	for _, e := range pending {
		if e.hasContent() {
			s.decide(e)
		}
	}
}

// trimFront removes k bytes of visible text from the start of events.
func trimFront(events []*event, k int) {
	for _, e := range events {
		if k == 0 {
			return
		}
		parts := e.parts()
		kept := parts[:0:0]
		for _, p := range parts {
			text, visible := partText(p)
			if k == 0 || !visible {
				kept = append(kept, p)
				continue
			}
			cut := min(k, len(text))
			k -= cut
			if rest := text[cut:]; rest != "" {
				m := p.(map[string]any)
				m["text"] = rest
				kept = append(kept, m)
			}
		}
		e.setParts(kept)
	}
}

// decide relays a chunk, holding back an ending that is not the model's
// verdict.
func (s *stream) decide(e *event) {
	for _, p := range e.parts() {
		if text, visible := partText(p); visible {
			s.visible.WriteString(text)
		}
		if isFunctionCall(p) {
			s.functionCall = true
		}
	}
	switch fr := e.finishReason(); {
	case fr == "":
		s.w.event(e)
	case fr == finishStop && s.answered():
		s.w.event(e)
		s.done = true
	case terminal[fr]:
		s.w.event(e) // MAX_TOKENS, SAFETY, …: the model's verdict stands
		s.done = true
	case s.functionCall:
		s.w.event(e) // cannot continue after a function call: pass it on
		s.done = true
	default:
		// Cut short (OTHER, MALFORMED_FUNCTION_CALL, STOP after only
		// thinking, …): the client must not see this ending.
		reason := strings.ToLower(fr)
		if fr == finishStop {
			reason = "stop_without_answer"
		}
		s.resumeReason, s.lastAbnormal = reason, fr
		e.clearFinish()
		if len(e.parts()) > 0 {
			s.w.event(e)
		}
	}
}

// answered reports whether the client has an answer: visible text or a
// function call. Thoughts alone are not one.
func (s *stream) answered() bool {
	return s.visible.Len() > 0 || s.functionCall
}

// resume asks for the rest of the answer, until an attempt starts or the
// limits end the stream with an error event in Google's format.
func (s *stream) resume(reason string) {
	s.mu.Lock()
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		s.finish(errors.New("resume: body closed"))
		return
	}
	for {
		if s.resumes >= s.o.MaxResumes {
			s.fail(503, googleError(503, "UNAVAILABLE", fmt.Sprintf(
				"llmproxy: the answer was cut off and %d continuations did not complete it", s.o.MaxResumes)))
			return
		}
		if time.Since(s.start) > s.o.TotalTimeout {
			s.fail(504, googleError(504, "DEADLINE_EXCEEDED", "llmproxy: the answer was cut off and the time allowed for continuing it is over"))
			return
		}
		s.resumes++
		if s.t.OnResume != nil {
			s.t.OnResume(s.req, reason, s.resumes, len([]rune(s.visible.String())))
		}
		select {
		case <-time.After(s.o.Delay):
		case <-s.ctx.Done():
			s.finish(s.ctx.Err())
			return
		}
		s.usageBase = s.usageBase.add(s.lastUsage)
		s.lastUsage = nil

		resp, err := s.t.Next.RoundTrip(s.continuation())
		switch {
		case contextDone(s.ctx):
			if err == nil {
				resp.Body.Close()
			}
			s.finish(s.ctx.Err())
			return
		case err != nil:
			reason = "continuation_failed"
			continue
		case resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Encoding") == "":
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				resp.Body.Close()
				s.finish(errors.New("resume: body closed"))
				return
			}
			s.attach(resp.Body)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			// 400/401/403/404/429: another try will not help.
			s.fail(resp.StatusCode, upstreamError(resp.StatusCode, body))
			return
		}
		reason = fmt.Sprintf("http_%d", resp.StatusCode)
	}
}

// fail ends the stream with an error event in Google's format; status is
// the HTTP status it stands for (a unary answer's, when nothing came).
func (s *stream) fail(status int, errObj map[string]any) {
	s.w.object(errObj)
	s.w.end()
	s.failed, s.failedStatus = errObj, status
	s.finish(io.EOF)
}

// unaryReader reads a generateContent answer: one JSON object.
type unaryReader struct {
	r    io.Reader
	done bool
}

func (u *unaryReader) next() (*event, error) {
	if u.done {
		return nil, io.EOF
	}
	u.done = true
	body, err := io.ReadAll(u.r)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	return &event{raw: body, json: body, obj: decodeObject(body)}, nil
}
