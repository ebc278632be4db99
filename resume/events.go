package resume

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/llmproxy/llmproxy/sse"
)

// framing is how a stream carries its chunks.
type framing int

const (
	sseFraming framing = iota // alt=sse: "data: {…}" events separated by a blank line
	array                     // no alt: one JSON array streamed element by element
	unary                     // generateContent: one JSON object
)

// event is one upstream chunk: its raw bytes (to relay unchanged when
// nothing about it changes) and its decoded JSON object.
type event struct {
	raw   []byte         // the whole SSE event or array element, as received
	json  []byte         // the JSON payload (for SSE: the data lines joined)
	obj   map[string]any // nil when the payload is not a JSON object
	dirty bool           // obj was changed: encode it instead of relaying raw
}

func decodeObject(payload []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // token counts stay integers when re-encoded
	var obj map[string]any
	if dec.Decode(&obj) != nil {
		return nil
	}
	return obj
}

// encode returns the event's JSON payload, re-encoded if it was changed.
func (e *event) encode() []byte {
	if !e.dirty {
		return e.json
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(e.obj)
	return bytes.TrimRight(b.Bytes(), "\n")
}

// reader splits an upstream body into events.
type reader interface {
	next() (*event, error) // io.EOF at a clean end of the stream
}

// sseReader reads SSE events with the shared sse reader. A stream that ends
// without the blank line after its last event was cut, and says so with
// io.ErrUnexpectedEOF.
type sseReader struct {
	r *sse.Reader
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: sse.NewReaderSize(r, 16<<10)}
}

func (r *sseReader) next() (*event, error) {
	ev, err := r.r.Next()
	if err != nil {
		return nil, err
	}
	// The event is kept (held back, stitched): copy it out of the reader.
	e := &event{raw: bytes.Clone(ev.Raw)}
	if ev.Data != nil {
		e.json = bytes.Clone(ev.Data)
		e.obj = decodeObject(e.json)
	}
	return e, nil
}

// crlf reports whether the upstream separates lines with CRLF.
func (r *sseReader) crlf() bool { return r.r.CRLF() }

// arrayReader reads the elements of a streamed JSON array. A stream cut
// before the closing bracket fails with the decoder's error.
type arrayReader struct {
	dec     *json.Decoder
	started bool
}

func newArrayReader(r io.Reader) *arrayReader {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return &arrayReader{dec: dec}
}

func (r *arrayReader) next() (*event, error) {
	if !r.started {
		tok, err := r.dec.Token()
		if err != nil {
			return nil, cut(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return nil, errors.New("gemini stream: not a JSON array")
		}
		r.started = true
	}
	if !r.dec.More() {
		if _, err := r.dec.Token(); err != nil { // the closing bracket
			return nil, cut(err)
		}
		return nil, io.EOF
	}
	var raw json.RawMessage
	if err := r.dec.Decode(&raw); err != nil {
		return nil, cut(err)
	}
	return &event{raw: raw, json: raw, obj: decodeObject(raw)}, nil
}

// cut turns the end of input inside a JSON value into ErrUnexpectedEOF.
func cut(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writer frames events for the client the way the upstream framed them.
type writer struct {
	framing framing
	crlf    bool
	started bool // array: the opening bracket went out
	buf     bytes.Buffer
	events  []*event // unary: the chunks, merged into one answer at the end
}

func (w *writer) event(e *event) {
	switch w.framing {
	case unary:
		w.events = append(w.events, e)
	case sseFraming:
		if !e.dirty {
			w.buf.Write(e.raw)
			return
		}
		w.buf.WriteString("data: ")
		w.buf.Write(e.encode())
		if w.crlf {
			w.buf.WriteString("\r\n\r\n")
		} else {
			w.buf.WriteString("\n\n")
		}
	case array:
		if !w.started {
			w.buf.WriteString("[")
			w.started = true
		} else {
			w.buf.WriteString(",\r\n")
		}
		w.buf.Write(e.encode())
	}
}

// object writes a JSON object of llmproxy's own (an error) as an event.
func (w *writer) object(obj map[string]any) {
	w.event(&event{obj: obj, dirty: true})
}

// end closes the framing (the array's bracket).
func (w *writer) end() {
	if w.framing == array {
		if !w.started {
			w.buf.WriteString("[")
		}
		w.buf.WriteString("]")
	}
}
