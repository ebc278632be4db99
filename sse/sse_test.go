package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReader(t *testing.T) {
	t.Parallel()
	for _, eol := range []string{"\n", "\r\n"} {
		in := "data: {\"a\":1}" + eol + eol +
			": comment" + eol + eol +
			eol + // a stray blank line
			"event: delta" + eol + "id: 7" + eol + "data: {\"b\":" + eol + "data:2}" + eol + eol +
			"data" + eol + eol
		// One byte at a time: events split across reads come out whole.
		r := NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 16)
		e, err := r.Next()
		if err != nil || string(e.Data) != `{"a":1}` || string(e.Raw) != "data: {\"a\":1}"+eol+eol || e.Name != nil {
			t.Fatalf("first event %q %q %v", e.Raw, e.Data, err)
		}
		if r.CRLF() != (eol == "\r\n") {
			t.Errorf("CRLF() = %v with %q", r.CRLF(), eol)
		}
		if e, err = r.Next(); err != nil || e.Data != nil || string(e.Raw) != ": comment"+eol+eol {
			t.Fatalf("comment %q %q %v", e.Raw, e.Data, err)
		}
		if e, err = r.Next(); err != nil || string(e.Data) != "{\"b\":\n2}" || string(e.Name) != "delta" {
			t.Fatalf("named multi-line event %q %q %q %v", e.Raw, e.Name, e.Data, err)
		}
		if e, err = r.Next(); err != nil || e.Data == nil || len(e.Data) != 0 {
			t.Fatalf("empty data field: %q %v", e.Data, err)
		}
		if _, err = r.Next(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
	}
}

func TestReaderCutAndErrors(t *testing.T) {
	t.Parallel()
	r := NewReader(strings.NewReader("data: 1\n\ndata: {\"half\""))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("half an event: %v, want ErrUnexpectedEOF", err)
	}
	boom := errors.New("boom")
	r = NewReader(io.MultiReader(strings.NewReader("data: 1\n"), iotest.ErrReader(boom)))
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	r = NewReaderSize(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 16)
	r.MaxEvent = 64
	if _, err := r.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("oversized event: %v", err)
	}
	r = NewReaderSize(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 16)
	if e, err := r.Next(); err != nil || len(e.Data) != 100 {
		t.Errorf("long line across the buffer: %d %v", len(e.Data), err)
	}
}

func TestCloneOutlivesNext(t *testing.T) {
	t.Parallel()
	r := NewReader(strings.NewReader("event: a\ndata: one\n\ndata: two\n\n"))
	e, _ := r.Next()
	kept := e.Clone()
	r.Next()
	if string(kept.Data) != "one" || string(kept.Name) != "a" || string(kept.Raw) != "event: a\ndata: one\n\n" {
		t.Errorf("clone changed: %q", kept.Raw)
	}
}

func TestAppendEventRoundTrip(t *testing.T) {
	t.Parallel()
	for _, crlf := range []bool{false, true} {
		b := AppendEvent(nil, "response.created", []byte("{\"x\":1}\nsecond"), crlf)
		b = AppendEvent(b, "", []byte("[DONE]"), crlf)
		r := NewReader(bytes.NewReader(b))
		e, err := r.Next()
		if err != nil || string(e.Name) != "response.created" || string(e.Data) != "{\"x\":1}\nsecond" {
			t.Fatalf("crlf=%v: %q %v", crlf, b, err)
		}
		if e, err = r.Next(); err != nil || string(e.Data) != "[DONE]" || e.Name != nil {
			t.Fatalf("crlf=%v second: %q %v", crlf, e.Raw, err)
		}
		if r.CRLF() != crlf {
			t.Errorf("crlf=%v read back as %v", crlf, r.CRLF())
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\n"), uint8(16))
	f.Add([]byte("event: x\r\ndata: 1\r\ndata: 2\r\n\r\n: c\n\n"), uint8(4))
	f.Add([]byte("data"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		r := NewReaderSize(bytes.NewReader(in), int(size)+16)
		r.MaxEvent = 1 << 16
		var raw []byte
		for range len(in) + 1 {
			e, err := r.Next()
			if err != nil {
				// A clean end means every byte that was not a blank
				// line came out in some event.
				if err == io.EOF && nonSpace(raw) != nonSpace(in) {
					t.Fatalf("clean EOF, but events hold %d of the input's %d non-space bytes", nonSpace(raw), nonSpace(in))
				}
				return
			}
			if len(e.Raw) == 0 || !bytes.HasSuffix(e.Raw, []byte("\n")) {
				t.Fatalf("event without its terminator: %q", e.Raw)
			}
			// Raw is a contiguous piece of the input (after skipped blank lines).
			if !bytes.Contains(in, e.Raw) {
				t.Fatalf("raw %q is not from the input", e.Raw)
			}
			raw = append(raw, e.Raw...)
		}
		t.Fatalf("more events than bytes")
	})
}

func nonSpace(b []byte) int {
	n := 0
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			n++
		}
	}
	return n
}
