package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// checkEdit re-parses an edit's result with encoding/json: it must be valid
// and equal, member by member and in order, to the original with only the
// expected change made.
func checkEdit(t *testing.T, before, after []byte, path []string, change func(object) object) {
	t.Helper()
	if !json.Valid(after) || !Valid(after) {
		t.Fatalf("result is not valid JSON: %s", after)
	}
	b, err := decodeOrdered(before)
	if err != nil {
		t.Fatal(err)
	}
	a, err := decodeOrdered(after)
	if err != nil {
		t.Fatal(err)
	}
	if want := edited(b, path, change); !reflect.DeepEqual(a, want) {
		t.Errorf("decoded result\n %#v\nwant\n %#v", a, want)
	}
}

func TestSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		raw  string
		path []string
		want string // the exact result, or "" for an error
		err  error
	}{
		{"replace string", chat, `"gpt-4o"`, []string{"model"},
			`{"model":"gpt-4o","messages":[{"role":"user","content":"Hello!"}],"stream":true}`, nil},
		{"replace with longer value", chat, `{"a":[1,2,3]}`, []string{"stream"},
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":{"a":[1,2,3]}}`, nil},
		{"replace a container", chat, `[]`, []string{"messages"},
			`{"model":"gpt-4o-mini","messages":[],"stream":true}`, nil},
		{"replace keeps the spacing around", "{ \"model\" :\n \"a\" ,\"x\": 1 }", `"b"`, []string{"model"},
			"{ \"model\" :\n \"b\" ,\"x\": 1 }", nil},
		{"replace keeps the key's spelling", `{"mod\u0065l":"a"}`, `"b"`, []string{"model"},
			`{"mod\u0065l":"b"}`, nil},
		{"replace nested", `{"stream_options":{"include_usage":false,"x":1},"y":2}`, `true`, []string{"stream_options", "include_usage"},
			`{"stream_options":{"include_usage":true,"x":1},"y":2}`, nil},
		{"raw with whitespace kept", `{"a":1}`, " 2 ", []string{"a"}, `{"a": 2 }`, nil},
		{"insert first", chat, `{"include_usage":true}`, []string{"stream_options"},
			`{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":true}`, nil},
		{"insert into empty", `{}`, `1`, []string{"a"}, `{"a":1}`, nil},
		{"insert into spaced empty", "{ \n }", `1`, []string{"a"}, "{\"a\":1 \n }", nil},
		{"insert before spaced member", "{\n  \"x\": 1\n}", `1`, []string{"a"}, "{\"a\":1,\n  \"x\": 1\n}", nil},
		{"create one missing object", chat, `true`, []string{"stream_options", "include_usage"},
			`{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":true}`, nil},
		{"create two missing objects", `{"x":1}`, `null`, []string{"a", "b", "c"}, `{"a":{"b":{"c":null}},"x":1}`, nil},
		{"insert into existing parent", `{"stream_options":{"x":1},"model":"m"}`, `true`, []string{"stream_options", "include_usage"},
			`{"stream_options":{"include_usage":true,"x":1},"model":"m"}`, nil},
		{"insert into existing empty parent", `{"model":"m","stream_options":{}}`, `true`, []string{"stream_options", "include_usage"},
			`{"model":"m","stream_options":{"include_usage":true}}`, nil},
		{"insert deep, one level exists", `{"a":{"z":0}}`, `1`, []string{"a", "b", "c"}, `{"a":{"b":{"c":1},"z":0}}`, nil},
		{"key is escaped on insert", `{}`, `1`, []string{"a\"b\n<"}, `{"a\"b\n<":1}`, nil},
		{"duplicate off the path is fine", `{"x":{"k":1,"k":2}}`, `1`, []string{"model"}, `{"model":1,"x":{"k":1,"k":2}}`, nil},

		{"null parent replaced", `{"model":"m", "stream_options" : null ,"x":1}`, `true`, []string{"stream_options", "include_usage"},
			`{"model":"m", "stream_options" : {"include_usage":true} ,"x":1}`, nil},
		{"null grandparent replaced", `{"a":null}`, `1`, []string{"a", "b", "c"}, `{"a":{"b":{"c":1}}}`, nil},
		{"null in an existing parent replaced", `{"a":{"b":null}}`, `1`, []string{"a", "b", "c"}, `{"a":{"b":{"c":1}}}`, nil},
		{"null at the end is just replaced", `{"a":null}`, `1`, []string{"a"}, `{"a":1}`, nil},
		{"parent is a string", `{"stream_options":"x"}`, `true`, []string{"stream_options", "include_usage"}, "", ErrNotObject},
		{"parent is false", `{"a":{"b":false}}`, `true`, []string{"a", "b", "c"}, "", ErrNotObject},
		{"document is null", `null`, `1`, []string{"a"}, "", ErrNotObject},
		{"parent is an array", `{"a":[]}`, `true`, []string{"a", "b"}, "", ErrNotObject},
		{"document is an array", `[1]`, `1`, []string{"a"}, "", ErrNotObject},
		{"document is a string", `"s"`, `1`, []string{"a"}, "", ErrNotObject},
		{"empty path", chat, `1`, nil, "", ErrEmptyPath},
		{"invalid value", chat, `{"a":}`, []string{"model"}, "", ErrInvalidValue},
		{"two values", chat, `1 2`, []string{"model"}, "", ErrInvalidValue},
		{"empty value", chat, ``, []string{"model"}, "", ErrInvalidValue},
		{"value with invalid UTF-8", chat, "\"\xff\"", []string{"model"}, "", ErrInvalidValue},
		{"duplicate on the path", `{"model":"a","model":"b"}`, `"c"`, []string{"model"}, "", ErrDuplicateKey},
		{"case variant on the path", `{"Model":"a"}`, `"c"`, []string{"model"}, "", ErrDuplicateKey},
		{"duplicate parent", `{"a":{},"a":{}}`, `1`, []string{"a", "b"}, "", ErrDuplicateKey},
		{"invalid document", `{"model":"a",}`, `"c"`, []string{"model"}, "", &SyntaxError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := []byte(tc.doc)
			got, err := Set(doc, []byte(tc.raw), tc.path...)
			if string(doc) != tc.doc {
				t.Fatalf("Set changed its input")
			}
			if tc.want == "" {
				var se *SyntaxError
				if _, wantSyntax := tc.err.(*SyntaxError); wantSyntax && errors.As(err, &se) {
					return
				}
				if err == nil || !errors.Is(err, tc.err) {
					t.Fatalf("Set = %s, %v; want error %v", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Set =\n %s\nwant\n %s", got, tc.want)
			}
			v, err := decodeOrdered([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			checkEdit(t, doc, got, tc.path, replaceOrInsert(tc.path[len(tc.path)-1], v))
			if span, found, err := Get(got, tc.path...); err != nil || !found || string(span.Raw(got)) != string(trimSpace([]byte(tc.raw))) {
				t.Errorf("Get after Set = %s, %v, %v", span.Raw(got), found, err)
			}
		})
	}
}

func TestSetString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, s, lit string
	}{
		{"plain", "gpt-4o", `"gpt-4o"`},
		{"empty", "", `""`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"slash stays", "a/b", `"a/b"`},
		{"short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"other controls", "\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"DEL stays", "\x7f", "\"\x7f\""},
		{"HTML stays", "<script>&amp;</script>", `"<script>&amp;</script>"`},
		{"unicode stays", "héllo 中文 😀", `"héllo 中文 😀"`},
		{"line separators escaped", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"invalid UTF-8 replaced", "a\xffb\xc3", `"a\ufffdb\ufffd"`},
		{"literal U+FFFD stays", "\ufffd", "\"\ufffd\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(AppendString([]byte("x"), tc.s)); got != "x"+tc.lit {
				t.Errorf("AppendString(%q) = %s, want %s", tc.s, got[1:], tc.lit)
			}
			if n := quotedLen(tc.s); n != len(tc.lit) {
				t.Errorf("quotedLen(%q) = %d, want %d", tc.s, n, len(tc.lit))
			}
			// encoding/json without HTML escaping writes the same bytes.
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(tc.s); err != nil {
				t.Fatal(err)
			}
			if std := strings.TrimSuffix(buf.String(), "\n"); std != tc.lit {
				t.Errorf("encoding/json writes %s, the table %s", std, tc.lit)
			}
			doc := []byte(chat)
			got, err := SetString(doc, tc.s, "model")
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"model":` + tc.lit + chat[len(`{"model":"gpt-4o-mini"`):]; string(got) != want {
				t.Errorf("SetString = %s, want %s", got, want)
			}
			checkEdit(t, doc, got, []string{"model"}, replaceOrInsert("model", string([]rune(tc.s))))
			back, found, err := String(got, "model")
			if err != nil || !found || back != string([]rune(tc.s)) {
				t.Errorf("String after SetString = %q, %v, %v", back, found, err)
			}
		})
	}
	// Inserting, and creating parents, goes through the same encoder.
	got, err := SetString([]byte(`{"x":1}`), "<&>", "a", "b")
	if err != nil || string(got) != `{"a":{"b":"<&>"},"x":1}` {
		t.Errorf("SetString insert = %s, %v", got, err)
	}
	if _, err := SetString([]byte(`{"model":1,"model":2}`), "x", "model"); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("SetString on a duplicate: %v", err)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		path []string
		want string // the exact result, or "" for an error
		err  error
	}{
		{"first", `{"a":1,"b":2,"c":3}`, []string{"a"}, `{"b":2,"c":3}`, nil},
		{"middle", `{"a":1,"b":2,"c":3}`, []string{"b"}, `{"a":1,"c":3}`, nil},
		{"last", `{"a":1,"b":2,"c":3}`, []string{"c"}, `{"a":1,"b":2}`, nil},
		{"only", `{"a":1}`, []string{"a"}, `{}`, nil},
		{"only, spaced", `{ "a" : 1 }`, []string{"a"}, `{  }`, nil},
		{"first, spaced", `{"a": 1, "b": 2, "c": 3}`, []string{"a"}, `{"b": 2, "c": 3}`, nil},
		{"middle, spaced", `{"a": 1, "b": 2, "c": 3}`, []string{"b"}, `{"a": 1, "c": 3}`, nil},
		{"last, spaced", `{"a": 1, "b": 2 , "c": 3 }`, []string{"c"}, `{"a": 1, "b": 2 }`, nil},
		{"first, pretty", "{\n  \"a\": 1,\n  \"b\": 2\n}", []string{"a"}, "{\n  \"b\": 2\n}", nil},
		{"last, pretty", "{\n  \"a\": 1,\n  \"b\": 2\n}", []string{"b"}, "{\n  \"a\": 1\n}", nil},
		{"container value", chat, []string{"messages"}, `{"model":"gpt-4o-mini","stream":true}`, nil},
		{"escaped key", `{"x":0,"mod\u0065l":"m","y":1}`, []string{"model"}, `{"x":0,"y":1}`, nil},
		{"nested last", `{"stream_options":{"x":1,"include_usage":true},"y":2}`, []string{"stream_options", "include_usage"},
			`{"stream_options":{"x":1},"y":2}`, nil},
		{"nested only", `{"stream_options":{"include_usage":true},"y":2}`, []string{"stream_options", "include_usage"},
			`{"stream_options":{},"y":2}`, nil},
		{"duplicate off the path is fine", `{"a":1,"x":{"a":1,"a":2}}`, []string{"a"}, `{"x":{"a":1,"a":2}}`, nil},

		{"duplicate", `{"a":1,"a":2}`, []string{"a"}, "", ErrDuplicateKey},
		{"case variant", `{"a":1,"A":2}`, []string{"a"}, "", ErrDuplicateKey},
		{"duplicate nested", `{"s":{"u":1,"\u0075":2}}`, []string{"s", "u"}, "", ErrDuplicateKey},
		{"empty path", `{"a":1}`, nil, "", ErrEmptyPath},
		{"invalid document", `{"a":1,}`, []string{"a"}, "", &SyntaxError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := []byte(tc.doc)
			got, err := Delete(doc, tc.path...)
			if string(doc) != tc.doc {
				t.Fatalf("Delete changed its input")
			}
			if tc.want == "" {
				var se *SyntaxError
				if _, wantSyntax := tc.err.(*SyntaxError); wantSyntax && errors.As(err, &se) {
					return
				}
				if err == nil || !errors.Is(err, tc.err) {
					t.Fatalf("Delete = %s, %v; want error %v", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Delete =\n %s\nwant\n %s", got, tc.want)
			}
			checkEdit(t, doc, got, tc.path, without(tc.path[len(tc.path)-1]))
			if _, found, err := Get(got, tc.path...); err != nil || found {
				t.Errorf("Get after Delete: found %v, %v", found, err)
			}
		})
	}
}

// TestDeleteAbsent: nothing to delete gives back the same slice, not a copy.
func TestDeleteAbsent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		doc  string
		path []string
	}{
		{"absent key", chat, []string{"temperature"}},
		{"absent parent", chat, []string{"stream_options", "include_usage"}},
		{"parent not an object", chat, []string{"model", "x"}},
		{"document not an object", `[1]`, []string{"a"}},
		{"array on the path", `{"a":[{"b":1}]}`, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := []byte(tc.doc)
			got, err := Delete(doc, tc.path...)
			if err != nil || len(got) != len(doc) || &got[0] != &doc[0] {
				t.Errorf("Delete = %s, %v; want the input itself", got, err)
			}
		})
	}
}

// TestEditAllocs: Set allocates only its result; Get nothing, even for a key
// with escapes. Counted, not timed.
func TestEditAllocs(t *testing.T) {
	doc := []byte(chat)
	raw := []byte(`"gpt-4o"`)
	escaped := []byte(`{"mod\u0065l":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":true}`)
	for _, tc := range []struct {
		name string
		max  float64
		fn   func()
	}{
		{"Get", 0, func() { _, _, _ = Get(doc, "model") }},
		{"Get escaped key", 0, func() { _, _, _ = Get(escaped, "model") }},
		{"Get nested", 0, func() { _, _, _ = Get(doc, "stream_options", "include_usage") }},
		{"Bool", 0, func() { _, _, _ = Bool(doc, "stream") }},
		{"Valid", 0, func() { _ = Valid(doc) }},
		{"Set", 1, func() { _, _ = Set(doc, raw, "model") }},
		{"Set insert", 1, func() { _, _ = Set(doc, []byte("true"), "stream_options", "include_usage") }},
		{"SetString", 1, func() { _, _ = SetString(doc, "gpt-4o", "model") }},
		{"Delete", 1, func() { _, _ = Delete(doc, "stream") }},
	} {
		if n := testing.AllocsPerRun(100, tc.fn); n > tc.max {
			t.Errorf("%s: %v allocations, want at most %v", tc.name, n, tc.max)
		}
	}
}
