package resume

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// collect runs the resume logic over a generateContent answer and returns
// one response: every attempt's parts merged, one ending, summed token
// counts. A continuation that fails leaves the partial answer with the
// abnormal ending that cut it, so the client knows it is incomplete; with
// no answer text yet (nothing, or only thoughts), the client gets the error
// itself.
func (s *stream) collect(resp *http.Response) (*http.Response, error) {
	for !s.finished {
		s.step()
	}
	if s.endErr != io.EOF {
		return nil, s.endErr
	}
	var merged map[string]any
	if s.failed == nil || s.answered() {
		merged = s.merge()
	}
	status := http.StatusOK
	if merged == nil {
		if s.failed == nil {
			return nil, io.ErrUnexpectedEOF
		}
		// The status is the refusal's own (or llmproxy's 503 or 504), never
		// the error object's "code": a provider's body may say anything.
		merged, status = s.failed, s.failedStatus
	}
	body := mustJSON(merged)
	resp.StatusCode, resp.Status = status, strconv.Itoa(status)+" "+http.StatusText(status)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}

// merge joins the collected chunks into the last one: all parts in order,
// adjacent answer text in one part. Without any candidate it returns a
// blocked prompt's answer, or nil.
func (s *stream) merge() map[string]any {
	var base *event
	var parts []any
	for _, e := range s.w.events {
		if e.candidate() == nil {
			continue
		}
		base = e
		for _, p := range e.parts() {
			if text, visible := partText(p); visible && len(parts) > 0 {
				if prev, prevVisible := partText(parts[len(parts)-1]); prevVisible {
					m := parts[len(parts)-1].(map[string]any)
					m["text"] = prev + text
					continue
				}
			}
			parts = append(parts, p)
		}
	}
	if base == nil {
		// No candidate: a blocked prompt's answer (promptFeedback's
		// blockReason and usage) is whole as it is.
		for _, e := range s.w.events {
			if e.blockReason() != "" {
				return e.obj
			}
		}
		return nil
	}
	base.setParts(parts)
	if !s.done && s.lastAbnormal != "" {
		base.candidate()["finishReason"] = s.lastAbnormal
	}
	return base.obj
}
