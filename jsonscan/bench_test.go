package jsonscan

import (
	"encoding/json"
	"strconv"
	"testing"
)

// benchBodies: the README's chat request, and a 64 KiB one whose size is in
// the message texts, as long conversations are.
var benchBodies = []struct {
	name string
	data []byte
}{
	{"small", []byte(chat)},
	{"64KiB", longRequest(64 << 10)},
}

// longRequest builds a chat request of about size bytes: a system prompt and
// alternating turns of prose with the escapes real text has (newlines, quotes,
// non-ASCII).
func longRequest(size int) []byte {
	const para = "The proxy forwards the body byte for byte; only \"model\" changes.\n" +
		"Les requêtes passent telles quelles — 请求按原样转发。 Tab\there, emoji 😀.\n"
	b := []byte(`{"model":"gpt-4o-mini","stream":true,"temperature":0.7,"messages":[`)
	b = append(b, `{"role":"system","content":"You are a helpful assistant."}`...)
	for turn := 0; len(b) < size-1024; turn++ {
		role := "user"
		if turn%2 == 1 {
			role = "assistant"
		}
		text := ""
		for len(text) < 900 {
			text += strconv.Itoa(turn) + ". " + para
		}
		b = append(b, `,{"role":"`+role+`","content":`...)
		b = AppendString(b, text)
		b = append(b, '}')
	}
	b = append(b, `],"max_tokens":1024}`...)
	return b
}

func BenchmarkGet(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if _, found, err := Get(body.data, "model"); err != nil || !found {
					b.Fatal(found, err)
				}
			}
		})
	}
}

// BenchmarkFields reads what the gateway routes a request by — model,
// stream, stream_options — in one pass, against three calls of Get.
func BenchmarkFields(b *testing.B) {
	keys := []string{"model", "stream", "stream_options"}
	for _, body := range benchBodies {
		b.Run(body.name+"/fields", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if vals, err := Fields(body.data, keys...); err != nil || vals[0].Kind != KindString {
					b.Fatal(vals, err)
				}
			}
		})
		b.Run(body.name+"/get-each", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				for _, key := range keys {
					if _, _, err := Get(body.data, key); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkValid(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if !Valid(body.data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// BenchmarkSet renames the model, as the gateway does for a route.
func BenchmarkSet(b *testing.B) {
	raw := []byte(`"gpt-4o"`)
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if _, err := Set(body.data, raw, "model"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetInsert adds "stream_options":{"include_usage":true}.
func BenchmarkSetInsert(b *testing.B) {
	raw := []byte(`true`)
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if _, err := Set(body.data, raw, "stream_options", "include_usage"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The encoding/json ways to do the same, for comparison.

func BenchmarkStdValid(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if !json.Valid(body.data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

func BenchmarkStdUnmarshalMap(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(body.data, &m); err != nil || m["model"] == nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStdRoundTrip is what Set replaces: decode, change, re-encode (which
// also reorders keys and re-escapes text).
func BenchmarkStdRoundTrip(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(body.data, &m); err != nil {
					b.Fatal(err)
				}
				m["model"] = "gpt-4o"
				if _, err := json.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamRequest is the gateway's work on a Chat Completions stream
// whose client did not ask for usage: read model, stream and stream_options,
// then rename the model and add include_usage. one-pass edits where the
// reading pass found the places (Fields, SetMember, Apply); pass-per-edit
// reads and edits the whole body each time (Fields, Bool, ReplaceString, Set).
func BenchmarkStreamRequest(b *testing.B) {
	yes := []byte("true")
	for _, body := range benchBodies {
		b.Run(body.name+"/one-pass", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				vals, err := Fields(body.data, "model", "stream", "stream_options")
				if err != nil {
					b.Fatal(err)
				}
				usage, err := SetMember(body.data, vals[2], yes, "stream_options", "include_usage")
				if err != nil {
					b.Fatal(err)
				}
				model := StringEdit(vals[0], "upstream-model")
				if usage.Start < model.Start {
					Apply(body.data, usage, model)
				} else {
					Apply(body.data, model, usage)
				}
			}
		})
		b.Run(body.name+"/pass-per-edit", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				vals, err := Fields(body.data, "model", "stream")
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := Bool(body.data, "stream_options", "include_usage"); err != nil {
					b.Fatal(err)
				}
				data := ReplaceString(body.data, vals[0], "upstream-model")
				if _, err := Set(data, yes, "stream_options", "include_usage"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
