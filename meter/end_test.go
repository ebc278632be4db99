package meter

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// A stream the provider ends cleanly but without its last event was cut:
// with RequireEnd the reader says so (io.ErrUnexpectedEOF), so the proxy
// aborts the client's connection instead of passing a cut answer off as a
// whole one. Whole streams still end with io.EOF.
func TestRequireEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file   string
		format Format
		stream bool
		// keep returns how many bytes of the whole stream a provider that
		// stops early sends: everything before its last event(s).
		cutAt func(data []byte) int
	}{
		{"openai_chat_stream.sse", OpenAI, true, func(d []byte) int { return bytes.Index(d, []byte(`"finish_reason":"`)) }},
		{"openai_compat_stream.sse", OpenAI, true, func(d []byte) int { return bytes.Index(d, []byte(`"finish_reason":"`)) }},
		{"responses_stream.sse", OpenAIResponses, true, func(d []byte) int { return bytes.Index(d, []byte("event: response.completed")) }},
		{"anthropic_stream.sse", Anthropic, true, func(d []byte) int { return bytes.Index(d, []byte("event: message_delta")) }},
		{"gemini_stream.sse", Gemini, true, func(d []byte) int { return bytes.Index(d, []byte(`"finishReason"`)) }},
		{"gemini_array.json", Gemini, false, func(d []byte) int { return bytes.Index(d, []byte(`"finishReason"`)) }},
	} {
		for _, strip := range []bool{false, true} {
			name := tc.file
			if strip {
				if tc.format != OpenAI {
					continue
				}
				name += "/strip"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				data, err := os.ReadFile(filepath.Join("testdata", tc.file))
				if err != nil {
					t.Fatal(err)
				}
				// Whole: a clean end.
				if err, complete := readAll(data, tc.format, tc.stream, strip); err != nil || !complete {
					t.Fatalf("whole stream: err %v, complete %v", err, complete)
				}
				// Cut before the line that holds the last event: an error.
				cut := tc.cutAt(data)
				if cut <= 0 {
					t.Fatal("fixture has no last event to cut")
				}
				cut = bytes.LastIndexByte(data[:cut], '\n') + 1 // at a line boundary, as a clean stop
				if err, complete := readAll(data[:cut], tc.format, tc.stream, strip); !errors.Is(err, io.ErrUnexpectedEOF) || complete {
					t.Errorf("cut stream: err %v, complete %v; want io.ErrUnexpectedEOF, incomplete", err, complete)
				}
				// Without RequireEnd the same cut passes as before.
				var got bytes.Buffer
				body := Wrap(io.NopCloser(bytes.NewReader(data[:cut])), Options{Format: tc.format, Stream: tc.stream})
				if _, err := io.Copy(&got, body); err != nil {
					t.Errorf("without RequireEnd: %v", err)
				}
			})
		}
	}
}

// An error event ends a stream honestly: no cut reported after it.
func TestRequireEndAcceptsErrorEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		format Format
		data   string
	}{
		{"anthropic", Anthropic, "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n"},
		{"responses", OpenAIResponses, "event: response.created\ndata: {}\n\nevent: response.failed\ndata: {\"type\":\"response.failed\"}\n\n"},
		{"gemini", Gemini, "data: {\"candidates\":[]}\n\ndata: {\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}\n\n"},
		{"openai done only", OpenAI, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err, complete := readAll([]byte(tc.data), tc.format, true, false); err != nil || !complete {
				t.Errorf("err %v complete %v", err, complete)
			}
		})
	}
}

func readAll(data []byte, f Format, stream, strip bool) (error, bool) {
	var complete, called bool
	body := Wrap(io.NopCloser(iotest.HalfReader(bytes.NewReader(data))), Options{
		Format: f, Stream: stream, StripUsageChunk: strip, RequireEnd: true,
		Done: func(_ Usage, c bool) { complete, called = c, true },
	})
	_, err := io.Copy(io.Discard, body)
	body.Close()
	if !called {
		return errors.New("Done was not called"), false
	}
	return err, complete
}

// The model's text may name a format's last event ("data: [DONE]",
// message_stop, response.completed, an error event): a stream cut right
// after such text was still cut. The last event is read from the event's
// structure — its event: and data: lines, quoted keys — not from words.
func TestRequireEndIgnoresTextThatNamesTheEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		format Format
		data   string
	}{
		{"openai [DONE] in text", OpenAI,
			"data: {\"choices\":[{\"delta\":{\"content\":\"An SSE stream ends with data: [DONE]\"},\"finish_reason\":null}]}\n\n"},
		{"openai finish_reason in text", OpenAI,
			"data: {\"choices\":[{\"delta\":{\"content\":\"\\\"finish_reason\\\": \\\"stop\\\"\"},\"finish_reason\":null}]}\n\n"},
		{"anthropic message_stop in text", Anthropic,
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"The last event is message_stop\"}}\n\n"},
		{"anthropic event: error in text", Anthropic,
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"event: error\"}}\n\n"},
		{"anthropic, no event lines, message_stop in text", Anthropic,
			"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"message_stop\"}}\n\n"},
		{"responses completed in text", OpenAIResponses,
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"then response.completed and response.failed\"}\n\n"},
		{"gemini finishReason in text", Gemini,
			"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\\"finishReason\\\": {\\\"error\\\" \\\"blockReason\\\"\"}]}}]}\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err, complete := readAll([]byte(tc.data), tc.format, true, false); !errors.Is(err, io.ErrUnexpectedEOF) || complete {
				t.Errorf("err %v, complete %v; want io.ErrUnexpectedEOF, incomplete", err, complete)
			}
		})
	}
}

// Last events that come in less usual forms still end a stream: without
// event: lines (the data's type says it), with CRLF line ends, and a
// Gemini answer to a blocked prompt, which has a blockReason and no
// candidates (so no finishReason).
func TestRequireEndLastEventForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		format Format
		stream bool
		data   string
	}{
		{"anthropic, data lines alone", Anthropic, true,
			"data: {\"type\":\"message_start\"}\n\ndata: {\"type\":\"message_stop\"}\n\n"},
		{"responses, data lines alone", OpenAIResponses, true,
			"data: {\"type\":\"response.created\"}\n\ndata: {\"type\":\"response.completed\",\"response\":{}}\n\n"},
		{"anthropic, CRLF", Anthropic, true,
			"event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\nevent: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n"},
		{"openai [DONE], CRLF, no space", OpenAI, true, "data:[DONE]\r\n\r\n"},
		{"openai [DONE] and a trailing space", OpenAI, true, "data: [DONE] \n\n"},
		{"gemini blocked prompt, sse", Gemini, true,
			"data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},\"usageMetadata\":{\"promptTokenCount\":3}}\n\n"},
		{"gemini blocked prompt, array", Gemini, false,
			"[{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":3}}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err, complete := readAll([]byte(tc.data), tc.format, tc.stream, false); err != nil || !complete {
				t.Errorf("err %v, complete %v; want a clean end", err, complete)
			}
		})
	}
}
