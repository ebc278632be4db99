package resume

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzArrayReader: the reader of Gemini's streamed JSON array, on any
// input, never panics and always ends; every element it returns is valid
// JSON; and it reports a clean end (io.EOF) only once it has read the
// closing bracket of a whole array, whose elements are exactly the ones it
// returned. Input arrives one byte per read, as a slow stream would.
func FuzzArrayReader(f *testing.F) {
	for _, s := range []string{
		`[{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}` + "\r\n" + `,{"a":1}]`,
		`[]`, `[`, `[{"a":1}`, `[{"a":1},`, `[1,2,3]`, `[1 2]`, `{"a":1}`, `[{"a":"\u00e9"}]x`, `[[[]]]`,
		`["]"]`, `[1,]`, ` [ {"a" : [1, {"b": null}]} ] `, `[{"a":1}}`, "[\"\xff\"]", `[1e999]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		r := newArrayReader(iotest.OneByteReader(bytes.NewReader(input)))
		var elems []json.RawMessage
		for range len(input) + 2 {
			e, err := r.next()
			if err == nil {
				if !json.Valid(e.raw) || !bytes.Equal(e.raw, e.json) {
					t.Fatalf("element %q is not valid JSON (input %q)", e.raw, input)
				}
				var probe map[string]any // stays nil for null
				if (json.Unmarshal(e.raw, &probe) == nil && probe != nil) != (e.obj != nil) {
					t.Fatalf("element %q: obj = %v, want it decoded exactly when it is an object", e.raw, e.obj)
				}
				elems = append(elems, bytes.Clone(e.raw))
				continue
			}
			if !errors.Is(err, io.EOF) {
				return // cut or malformed: an error, never a clean end
			}
			if err != io.EOF {
				t.Fatalf("clean end reported as %v", err)
			}
			read := input[:r.dec.InputOffset()]
			var whole []json.RawMessage
			if json.Unmarshal(read, &whole) != nil {
				t.Fatalf("clean end after %q, which is not a whole JSON array (input %q)", read, input)
			}
			if len(whole) != len(elems) {
				t.Fatalf("clean end after %d elements; the array read holds %d (input %q)", len(elems), len(whole), input)
			}
			for i := range whole {
				var a, b bytes.Buffer
				json.Compact(&a, whole[i])
				json.Compact(&b, elems[i])
				if !bytes.Equal(a.Bytes(), b.Bytes()) {
					t.Fatalf("element %d = %q, the array holds %q", i, elems[i], whole[i])
				}
			}
			return
		}
		t.Fatalf("more reads than input bytes without an end (input %q)", input)
	})
}
