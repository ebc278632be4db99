package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"unicode/utf8"
)

// The paths every fuzzer looks up: the routing field, the nested field the
// gateway adds, and one deeper than any real use.
var fuzzPaths = [][]string{{"model"}, {"stream_options", "include_usage"}, {"a", "b", "c"}}

var fuzzSeeds = []string{
	chat,
	`{"model":"a","model":"b"}`,
	`{"model":"a","Model":"b"}`,
	`{"mod\u0065l":"a","x":[1,2,{"model":3}]}`,
	`{"\u212a":1,"model":null}`,
	`{"stream_options":{"include_usage":true},"model":"m"}`,
	`{"stream_options":{"include_usage":true,"include_usage":false}}`,
	`{"stream_options":null,"a":{"b":{"c":[]}}}`,
	`{"a":{"b":{}},"a":1}`,
	"{\n  \"model\": \"x\",\n  \"n\": -1.5e+3\n}",
	`{ }`,
	`[{"model":1}]`,
	`"\ud800\udc00 \ud800"`,
	`{"model":"m",}`,
	"{\"model\":\"\xff\"}",
	`{"a":1} {}`,
	`[[[[[[[[]]]]]]]]`,
	`01`,
}

func kindOf(v any) Kind {
	switch v := v.(type) {
	case object:
		return KindObject
	case []any:
		return KindArray
	case string:
		return KindString
	case json.Number:
		return KindNumber
	case bool:
		if v {
			return KindTrue
		}
		return KindFalse
	case nil:
		return KindNull
	}
	return KindInvalid
}

func isSyntaxError(err error) bool {
	var se *SyntaxError
	return errors.As(err, &se)
}

// FuzzGet: Valid agrees with encoding/json.Valid on UTF-8 input; Get finds what
// encoding/json decodes at the same path, and fails only on invalid input or on
// a duplicate (or case variant) of a key on the path.
func FuzzGet(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := json.Valid(data) && utf8.Valid(data)
		if got := Valid(data); got != valid {
			t.Fatalf("Valid(%q) = %v; encoding/json and utf8 say %v", data, got, valid)
		}
		var tree any
		if valid {
			var err error
			if tree, err = decodeOrdered(data); err != nil {
				t.Fatalf("encoding/json cannot decode %q: %v", data, err)
			}
		}
		for _, path := range fuzzPaths {
			v, found, err := Get(data, path...)
			if !valid {
				if !isSyntaxError(err) {
					t.Fatalf("Get(%q, %q) on invalid input: %v, want *SyntaxError", data, path, err)
				}
				continue
			}
			l := walk(tree, path)
			if l.dup {
				if !errors.Is(err, ErrDuplicateKey) {
					t.Fatalf("Get(%q, %q) = %v, want ErrDuplicateKey", data, path, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Get(%q, %q): %v", data, path, err)
			}
			if found != (l.depth == len(path)) {
				t.Fatalf("Get(%q, %q) found = %v, encoding/json says %v", data, path, found, !found)
			}
			if !found {
				continue
			}
			got, err := decodeOrdered(v.Raw(data))
			if err != nil || !reflect.DeepEqual(got, l.node) || v.Kind != kindOf(l.node) {
				t.Fatalf("Get(%q, %q) = %s (%v); encoding/json decodes %#v", data, path, v.Raw(data), v.Kind, l.node)
			}
			if v.Kind == KindString {
				if s, ok, err := String(data, path...); err != nil || !ok || s != l.node.(string) {
					t.Fatalf("String(%q, %q) = %q, %v, %v; encoding/json decodes %q", data, path, s, ok, err, l.node)
				}
			}
		}
		if !valid {
			return
		}
		// The check as first stated: decode into any with UseNumber and
		// compare the top-level "model" with Get's span, decoded the same way.
		v, found, err := Get(data, "model")
		if err != nil || !found {
			return
		}
		var all, one any
		decode := func(b []byte, v *any) {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(v); err != nil {
				t.Fatal(err)
			}
		}
		decode(data, &all)
		decode(v.Raw(data), &one)
		if m, ok := all.(map[string]any); !ok || !reflect.DeepEqual(m["model"], one) {
			t.Fatalf("Get(%q, model) decodes to %#v, encoding/json's map holds %#v", data, one, all)
		}
	})
}

// FuzzSet: the result is valid, holds raw at the path, and is the input with
// exactly that change, byte for byte outside the edited span and member for
// member once decoded.
func FuzzSet(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s), []byte(`{"x":[1,"y"]}`), uint8(i))
		f.Add([]byte(s), []byte(` "gpt-4o" `), uint8(i))
	}
	f.Add([]byte(chat), []byte(`{"a":}`), uint8(0))
	f.Fuzz(func(t *testing.T, data, raw []byte, sel uint8) {
		path := fuzzPaths[int(sel)%len(fuzzPaths)]
		out, err := Set(data, raw, path...)
		if !Valid(raw) {
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("Set(%q, %q): %v, want ErrInvalidValue", data, raw, err)
			}
			return
		}
		if !Valid(data) {
			if !isSyntaxError(err) {
				t.Fatalf("Set(%q) on invalid input: %v, want *SyntaxError", data, err)
			}
			return
		}
		tree, err2 := decodeOrdered(data)
		if err2 != nil {
			t.Fatal(err2)
		}
		l := walk(tree, path)
		_, rootObject := tree.(object)
		_, parentObject := l.node.(object)
		switch {
		case l.dup:
			if !errors.Is(err, ErrDuplicateKey) {
				t.Fatalf("Set(%q, %q) = %v, want ErrDuplicateKey", data, path, err)
			}
			return
		case !rootObject || (l.depth < len(path) && !parentObject && (l.depth == 0 || l.node != nil)):
			if !errors.Is(err, ErrNotObject) {
				t.Fatalf("Set(%q, %q) = %v, want ErrNotObject", data, path, err)
			}
			return
		case err != nil:
			t.Fatalf("Set(%q, %q, %q): %v", data, raw, path, err)
		}

		// Bytes: only the edited span differs.
		if l.depth == len(path) {
			v, _, _ := Get(data, path...)
			want := append(append(append([]byte{}, data[:v.Start]...), raw...), data[v.End:]...)
			if !bytes.Equal(out, want) {
				t.Fatalf("Set(%q, %q) =\n %q\nwant\n %q", data, raw, out, want)
			}
		} else {
			p, _, _ := Get(data, path[:l.depth]...)
			at, end := p.Start+1, p.Start+1 // after '{'
			if p.Kind == KindNull {
				at, end = p.Start, p.End
			}
			if !bytes.HasPrefix(out, data[:at]) || !bytes.HasSuffix(out, data[end:]) {
				t.Fatalf("Set(%q, %q) = %q changes bytes outside the edit at %d", data, raw, out, at)
			}
		}
		// Members: decoded, the result is the input with raw at path.
		v, err := decodeOrdered(raw)
		if err != nil {
			t.Fatal(err)
		}
		checkEdit(t, data, out, path, replaceOrInsert(path[len(path)-1], v))
		if span, found, err := Get(out, path...); err != nil || !found || !bytes.Equal(span.Raw(out), trimSpace(raw)) {
			t.Fatalf("Get after Set(%q, %q) = %q, %v, %v", data, raw, span.Raw(out), found, err)
		}
	})
}

// FuzzDelete: the result is the input less one contiguous span, and decodes to
// the input without the member.
func FuzzDelete(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		path := fuzzPaths[int(sel)%len(fuzzPaths)]
		out, err := Delete(data, path...)
		if !Valid(data) {
			if !isSyntaxError(err) {
				t.Fatalf("Delete(%q) on invalid input: %v, want *SyntaxError", data, err)
			}
			return
		}
		tree, err2 := decodeOrdered(data)
		if err2 != nil {
			t.Fatal(err2)
		}
		l := walk(tree, path)
		if l.dup {
			if !errors.Is(err, ErrDuplicateKey) {
				t.Fatalf("Delete(%q, %q) = %v, want ErrDuplicateKey", data, path, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Delete(%q, %q): %v", data, path, err)
		}
		if l.depth < len(path) {
			if len(out) != len(data) || &out[0] != &data[0] {
				t.Fatalf("Delete(%q, %q) of an absent member = %q, want the input", data, path, out)
			}
			return
		}
		// One contiguous span removed: the longest common prefix, then the
		// rest of out is the end of data.
		p := 0
		for p < len(out) && out[p] == data[p] {
			p++
		}
		removed := len(data) - len(out)
		if removed <= 0 || !bytes.Equal(out[p:], data[p+removed:]) {
			t.Fatalf("Delete(%q, %q) = %q is not the input less one span", data, path, out)
		}
		checkEdit(t, data, out, path, without(path[len(path)-1]))
		if _, found, err := Get(out, path...); err != nil || found {
			t.Fatalf("Get after Delete(%q, %q): found %v, %v", data, path, found, err)
		}
	})
}

// FuzzQuote: AppendString writes what encoding/json writes (without HTML
// escaping); Unquote reads what encoding/json reads, and refuses what it
// refuses or what is not UTF-8.
func FuzzQuote(f *testing.F) {
	f.Add("plain", []byte(`"plain"`))
	f.Add("<a href=\"x\">\n\t\u2028\x00\xff", []byte(`"\u00e9\ud83d\ude00\ud800\/\b"`))
	f.Add("", []byte(`"x" `))
	f.Fuzz(func(t *testing.T, s string, lit []byte) {
		enc := AppendString(nil, s)
		var buf bytes.Buffer
		e := json.NewEncoder(&buf)
		e.SetEscapeHTML(false)
		if err := e.Encode(s); err != nil {
			t.Fatal(err)
		}
		if std := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(enc, std) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, enc, std)
		}
		if quotedLen(s) != len(enc) {
			t.Fatalf("quotedLen(%q) = %d, AppendString wrote %d bytes", s, quotedLen(s), len(enc))
		}
		// Each invalid byte is one U+FFFD, as encoding/json writes it.
		if back, err := Unquote(enc); err != nil || back != string([]rune(s)) {
			t.Fatalf("Unquote(AppendString(%q)) = %q, %v", s, back, err)
		}

		got, err := Unquote(lit)
		var std string
		stdErr := json.Unmarshal(lit, &std)
		want := stdErr == nil && utf8.Valid(lit) && len(lit) > 0 && lit[0] == '"' && lit[len(lit)-1] == '"'
		if (err == nil) != want {
			t.Fatalf("Unquote(%q) error = %v; encoding/json: %v", lit, err, stdErr)
		}
		if err == nil && got != std {
			t.Fatalf("Unquote(%q) = %q, encoding/json decodes %q", lit, got, std)
		}
		if err != nil && !isSyntaxError(err) {
			t.Fatalf("Unquote(%q): %v, want *SyntaxError", lit, err)
		}
	})
}

// FuzzFields: Fields finds in one pass what Get finds key by key, and
// refuses what Get refuses for any of the keys.
func FuzzFields(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"stream":true,"model":"m","stream_options":{"include_usage":true}}`))
	f.Add([]byte(`{"stream":true,"Stream":false,"model":"m"}`))
	f.Add([]byte(`{"stream_options":{"model":1},"model":{"stream":2}}`))
	keys := []string{"model", "stream", "stream_options"}
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := Fields(data, keys...)
		// FieldsInto gives the same into room that held something else.
		room := []Value{{Kind: KindString, Start: 1, End: 2}, {Kind: KindTrue}, {Kind: KindObject, End: 9}}
		if ierr := FieldsInto(room, data, keys...); (ierr == nil) != (err == nil) || err == nil && !slices.Equal(room, vals) {
			t.Fatalf("%q: FieldsInto gives %+v, %v; Fields %+v, %v", data, room, ierr, vals, err)
		}
		var dup bool
		var syntax error
		for i, key := range keys {
			v, found, gerr := Get(data, key)
			switch {
			case errors.Is(gerr, ErrDuplicateKey):
				dup = true
			case gerr != nil:
				syntax = gerr
			case err == nil && found && vals[i] != v:
				t.Fatalf("%q: Fields gives %s %+v, Get %+v", data, key, vals[i], v)
			case err == nil && !found && vals[i].Kind != KindInvalid:
				t.Fatalf("%q: Fields finds %s %+v, Get nothing", data, key, vals[i])
			}
		}
		switch {
		case syntax != nil:
			if !isSyntaxError(err) {
				t.Fatalf("%q: Get refuses it (%v), Fields gives %v", data, syntax, err)
			}
		case dup:
			if !errors.Is(err, ErrDuplicateKey) {
				t.Fatalf("%q: a duplicate for Get, Fields gives %v", data, err)
			}
		case err != nil:
			t.Fatalf("%q: Fields: %v, Get takes it", data, err)
		case vals[0].Kind != KindInvalid:
			// Replacing the value found is SetString at its path.
			const s = "new \"model\" ✓"
			want, serr := SetString(data, s, "model")
			if got := ReplaceString(data, vals[0], s); serr != nil || !bytes.Equal(got, want) {
				t.Fatalf("%q: ReplaceString gives %q, SetString %q (%v)", data, got, want, serr)
			}
		}
	})
}

// FuzzSetMember: the edit SetMember makes from what Fields found is the
// document Set makes from the whole, or Set's error.
func FuzzSetMember(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s), []byte(`true`), uint8(i))
		f.Add([]byte(s), []byte(` {"x":[1,"y"]} `), uint8(i))
	}
	f.Add([]byte(`{"stream_options":null,"model":"m"}`), []byte(`true`), uint8(0))
	f.Add([]byte(` { } `), []byte(`true`), uint8(0))
	f.Add([]byte(`[{"stream_options":{}}]`), []byte(`true`), uint8(0))
	f.Fuzz(func(t *testing.T, data, raw []byte, sel uint8) {
		path := fuzzPaths[int(sel)%len(fuzzPaths)]
		if len(path) == 0 {
			return
		}
		vals, err := Fields(data, path[0])
		if err != nil {
			return // SetMember's documents are those Fields takes
		}
		want, werr := Set(data, raw, path...)
		e, err := SetMember(data, vals[0], raw, path[0], path[1:]...)
		switch {
		case werr != nil:
			for _, class := range []error{ErrInvalidValue, ErrNotObject, ErrDuplicateKey} {
				if errors.Is(werr, class) && !errors.Is(err, class) {
					t.Fatalf("SetMember(%q, %q, %q): %v, Set: %v", data, raw, path, err, werr)
				}
			}
			if err == nil {
				t.Fatalf("SetMember(%q, %q, %q) takes it, Set: %v", data, raw, path, werr)
			}
		case err != nil:
			t.Fatalf("SetMember(%q, %q, %q): %v, Set takes it", data, raw, path, err)
		default:
			if got := Apply(data, e); !bytes.Equal(got, want) {
				t.Fatalf("SetMember(%q, %q, %q) gives\n %q\nSet\n %q", data, raw, path, got, want)
			}
		}
	})
}

// FuzzApply: edits of a model and of a member together are the two edits
// made one after the other.
func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "gpt-4o")
	}
	f.Add([]byte(`{"stream_options":{"include_usage":false},"model":"m","stream":true}`), "x\"y")
	f.Add([]byte(`{"model":"m"}`), "")
	f.Fuzz(func(t *testing.T, data []byte, model string) {
		vals, err := Fields(data, "model", "stream_options")
		if err != nil || vals[0].Kind != KindString {
			return
		}
		usage, err := SetMember(data, vals[1], []byte(`true`), "stream_options", "include_usage")
		if err != nil {
			return
		}
		edits := []Edit{StringEdit(vals[0], model), usage}
		if edits[1].Start < edits[0].Start {
			edits[0], edits[1] = edits[1], edits[0]
		}
		got := Apply(data, edits...)
		want, err := Set(ReplaceString(data, vals[0], model), []byte(`true`), "stream_options", "include_usage")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q: Apply gives\n %q\none by one\n %q (%v)", data, got, want, err)
		}
	})
}
