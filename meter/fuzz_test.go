package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/llmproxy/llmproxy/sse"
)

func addFixtureSeeds(f *testing.F, add func(data []byte, format uint8, stream bool)) {
	for _, fx := range fixtures {
		add(fixture(f, fx.file), uint8(fx.format), fx.stream)
	}
	add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\r\n\r\n\n  \n: c\n\ndata: [DONE]"), uint8(OpenAI), true)
	add([]byte(`[{"a":"\\\"}{[","usageMetadata":{"promptTokenCount":3}}]`), uint8(Gemini), false)
}

// FuzzWrap: arbitrary bytes never panic; without strip the output is the
// input; Done is called once; the usage does not depend on how the body is
// cut into reads and equals Parse's; with strip the output does not either;
// Relay gives what Read gives.
func FuzzWrap(f *testing.F) {
	addFixtureSeeds(f, func(data []byte, format uint8, stream bool) {
		f.Add(data, format, stream, false, uint8(7))
		f.Add(data, format, stream, true, uint8(1))
	})
	f.Fuzz(func(t *testing.T, data []byte, format uint8, stream, strip bool, chunk uint8) {
		format %= uint8(Gemini) + 1
		run := func(r io.Reader) ([]byte, Usage, bool) {
			calls := 0
			var got Usage
			var complete bool
			w := Wrap(io.NopCloser(r), Options{Format: Format(format), Stream: stream, StripUsageChunk: strip, MaxBuffer: 1 << 20,
				Done: func(u Usage, c bool) { calls++; got, complete = u, c }})
			out, err := io.ReadAll(w)
			w.Close()
			if err != nil || calls != 1 || !complete {
				t.Fatalf("err %v, Done called %d times, complete %v", err, calls, complete)
			}
			return out, got, complete
		}
		whole, u, _ := run(bytes.NewReader(data))
		cut, u2, _ := run(&chunkReader{data: data, sizes: []int{int(chunk%32) + 1, 1, 5}})
		if !strip && (!bytes.Equal(whole, data) || !bytes.Equal(cut, data)) {
			t.Fatalf("output differs from input")
		}
		if !bytes.Equal(whole, cut) || u != u2 {
			t.Fatalf("reads of other sizes changed the result: %q / %q, %+v / %+v", whole, cut, u, u2)
		}
		if strip && len(whole) > len(data) {
			t.Fatalf("strip added bytes")
		}
		if pu, _ := Parse(Format(format), stream, data); pu != u {
			t.Fatalf("Parse %+v, Wrap %+v", pu, u)
		}
		// Relayed (a body that relays itself, paused, Reads mixed in): as read.
		checkRelay(t, data, Options{Format: Format(format), Stream: stream, StripUsageChunk: strip, MaxBuffer: 1 << 20}, whole, u)
		// A read error mid-way: passed on unchanged, Done once, incomplete.
		boom := errors.New("boom")
		calls := 0
		w := Wrap(io.NopCloser(io.MultiReader(iotest.OneByteReader(bytes.NewReader(data)), iotest.ErrReader(boom))),
			Options{Format: Format(format), Stream: stream, StripUsageChunk: strip, Done: func(_ Usage, c bool) {
				calls++
				if c {
					t.Error("complete after an error")
				}
			}})
		if _, err := io.ReadAll(w); err != boom {
			t.Fatalf("error %v, want boom", err)
		}
		w.Close()
		if calls != 1 {
			t.Fatalf("Done called %d times", calls)
		}
	})
}

// FuzzSSESplit: sseSplit finds the same events as sse.Reader, which the
// meter relies on when it hands sse.Reader one event at a time.
func FuzzSSESplit(f *testing.F) {
	addFixtureSeeds(f, func(data []byte, _ uint8, stream bool) {
		if stream {
			f.Add(data, uint8(3))
		}
	})
	f.Add([]byte("data: a\r\n \t\r\n\n\ndata: b\n\r\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var want [][]byte
		r := sse.NewReader(bytes.NewReader(data))
		var tailErr error
		for {
			ev, err := r.Next()
			if err != nil {
				tailErr = err
				break
			}
			want = append(want, bytes.Clone(ev.Raw))
		}
		var s sseSplit
		var got [][]byte
		size := int(chunk%16) + 1
		for off := 0; off < len(data); off += size {
			s.feed(data[off:min(off+size, len(data))], int64(off))
			for {
				a, b, ok := s.next()
				if !ok {
					break
				}
				got = append(got, data[a:b])
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d events, sse.Reader found %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("event %d: %q, sse.Reader: %q", i, got[i], want[i])
			}
		}
		start, open := s.open()
		if open && !isBlank(data[start:]) != (tailErr == io.ErrUnexpectedEOF) {
			t.Fatalf("open unit %q, sse.Reader ended with %v", data[start:], tailErr)
		}
	})
}

// FuzzJSONSplit: on valid JSON, jsonSplit finds the objects of a top-level
// array (or the top-level object) that encoding/json finds.
func FuzzJSONSplit(f *testing.F) {
	addFixtureSeeds(f, func(data []byte, format uint8, stream bool) {
		if !stream {
			f.Add(data, uint8(5))
		}
	})
	f.Add([]byte(`[{"a":"\\"},{"b":["}",{"c":1}]},3,"x",{}]`), uint8(1))
	split := func(data []byte, size int) [][]byte {
		var s jsonSplit
		var got [][]byte
		for off := 0; off < len(data); off += size {
			s.feed(data[off:min(off+size, len(data))], int64(off))
			for {
				a, b, ok := s.next()
				if !ok {
					break
				}
				got = append(got, data[a:b])
			}
		}
		return got
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		size := int(chunk%40) + 1
		// The input as text inside chunks: strings of any content, escapes
		// included, never end a chunk early.
		text, _ := json.Marshal(string(data))
		first := `{"t":` + string(text) + `}`
		second := `{"u":[` + string(text) + `,{"v":` + string(text) + `}]}`
		got := split([]byte("[ "+first+"\r\n,"+second+"]"), size)
		if len(got) != 2 || string(got[0]) != first || string(got[1]) != second {
			t.Fatalf("chunks %q", got)
		}

		got = split(data, size)
		if !json.Valid(data) {
			return // anything goes, as long as it does not panic
		}
		var want [][]byte
		var arr []json.RawMessage
		var obj map[string]json.RawMessage
		switch {
		case json.Unmarshal(data, &arr) == nil:
			for _, e := range arr {
				if e[0] == '{' {
					want = append(want, e)
				}
			}
		case json.Unmarshal(data, &obj) == nil:
			want = append(want, bytes.TrimSpace(data))
		}
		if len(got) != len(want) {
			t.Fatalf("%d chunks, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("chunk %d: %q, want %q", i, got[i], want[i])
			}
		}
	})
}

// FuzzDecodeFast: where jsonscan takes a document, the usage it finds is
// the usage encoding/json finds, for every format, streamed or not.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"usage":{"prompt_tokens":3,"completion_tokens":4}}`,
		`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":1}}}`,
		`{"choices":[ ],"usage":null,"x_groq":{"usage":{"prompt_tokens":1}}}`,
		`{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}`,
		`{"type":"message_delta","usage":{"output_tokens":"7"}}`,
		`{"response":{"usage":{"input_tokens":5,"output_tokens":6,"input_tokens_details":{"cached_tokens":2}}}}`,
		`{"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3.0,"thoughtsTokenCount":2}}`,
		`{"Usage":{"prompt_tokens":3}}`,
		`{"usage":{"prompt_tokens":3},"usage":{"prompt_tokens":5}}`,
		`{"usage":[1,2]}`,
		`[{"usage":{}}]`,
		`{"usage":{"PROMPT_TOKENS":3,"prompt\u005ftokens":4,"completion_toKens":5}}`,
		`{"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":2},"prompt_tokens_details":{"CACHED_TOKENS":null}}}`,
		`{"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":2},"prompt_tokens_details":null,"prompt_tokens_details":[]}}`,
		`{"usage":{"prompt_tokens":{"x":[1,"}"]},"completion_tokens":"1e2","prompt_cache_hit_tokens":1.5e300}}`,
		`{"usage":{"input_tokens":25,"output_tokens_details":{"thinking_tokens":4},"output_tokens":9,"cache_read_input_tokens":" 3"}}`,
		`{"usageMetadata":{"promptTokenCount":-9,"thoughtsTokenCount":true,"toolUsePromptTokenCount":"12"}}`,
		// Usage in both places a document may hold it: which one wins
		// (Responses), or that both count (Anthropic).
		`{"usage":{"input_tokens":1,"output_tokens":2},"response":{"usage":{"input_tokens":5,"output_tokens":6}}}`,
		`{"message":{"usage":{"input_tokens":25,"cache_read_input_tokens":4}},"usage":{"output_tokens":9}}`,
		`{"response":{"usage":null},"usage":{"input_tokens":1},"message":[{"usage":{"input_tokens":7}}]}`,
		`{"response":"usage","message":{"usage":{"input_tokens":1},"usage":{"input_tokens":2}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []Format{OpenAI, OpenAIResponses, Anthropic, Gemini} {
			for _, stream := range []bool{false, true} {
				fast := newMeter(Options{Format: format, Stream: stream})
				slow := newMeter(Options{Format: format, Stream: stream})
				only, ok := fast.decodeFast(data)
				if !ok {
					continue
				}
				slowOnly := slow.decodeSlow(data)
				if fast.u != slow.u || fast.known != slow.known || fast.anth.usage() != slow.anth.usage() {
					t.Fatalf("%v stream=%v %q: fast %+v known=%v, encoding/json %+v known=%v", format, stream, data, fast.u, fast.known, slow.u, slow.known)
				}
				if stream && only != slowOnly {
					t.Fatalf("%v %q: usage-only chunk fast=%v encoding/json=%v", format, data, only, slowOnly)
				}
			}
		}
	})
}
