package jsonscan

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const chat = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":true}`

func TestGet(t *testing.T) {
	t.Parallel()
	dup := errors.New("dup") // stands for ErrDuplicateKey in the table
	tests := []struct {
		name string
		doc  string
		path []string
		want string // the value's bytes; "" when not found
		kind Kind
		err  error
	}{
		{"model", chat, []string{"model"}, `"gpt-4o-mini"`, KindString, nil},
		{"array", chat, []string{"messages"}, `[{"role":"user","content":"Hello!"}]`, KindArray, nil},
		{"true", chat, []string{"stream"}, `true`, KindTrue, nil},
		{"absent", chat, []string{"temperature"}, "", 0, nil},
		{"no path is the document", " " + chat + "\n", nil, chat, KindObject, nil},
		{"no path, scalar document", ` 12 `, nil, `12`, KindNumber, nil},
		{"spaces around the value", `{ "model" :  "m"  , "x":1}`, []string{"model"}, `"m"`, KindString, nil},
		{"number", `{"temperature":-0.5e1}`, []string{"temperature"}, `-0.5e1`, KindNumber, nil},
		{"null", `{"a":null}`, []string{"a"}, `null`, KindNull, nil},
		{"false", `{"a":false}`, []string{"a"}, `false`, KindFalse, nil},
		{"empty object value", `{"a":{},"b":1}`, []string{"a"}, `{}`, KindObject, nil},
		{"empty array value", `{"a":[ ],"b":1}`, []string{"a"}, `[ ]`, KindArray, nil},
		{"last member", `{"x":[1,{"model":"no"}],"model":"yes"}`, []string{"model"}, `"yes"`, KindString, nil},
		{"prefix of a key", `{"models":1,"mode":2}`, []string{"model"}, "", 0, nil},
		{"key with NUL", `{"model\u0000":1}`, []string{"model"}, "", 0, nil},
		{"empty key", `{"":1,"a":2}`, []string{""}, `1`, KindNumber, nil},
		{"non-ASCII key", `{"modèle":"m"}`, []string{"modèle"}, `"m"`, KindString, nil},
		{"escaped key", `{"mod\u0065l":"m"}`, []string{"model"}, `"m"`, KindString, nil},
		{"all-escaped key", `{"\u006d\u006F\u0064\u0065\u006c":"m"}`, []string{"model"}, `"m"`, KindString, nil},
		{"escaped non-ASCII key", `{"mod\u00e8le":"m"}`, []string{"modèle"}, `"m"`, KindString, nil},
		{"surrogate pair key", `{"\ud83d\ude00":1}`, []string{"😀"}, `1`, KindNumber, nil},
		{"lone surrogate key is U+FFFD", `{"\ud800":1}`, []string{"\ufffd"}, `1`, KindNumber, nil},
		{"escaped quote in key", `{"a\"b":1}`, []string{`a"b`}, `1`, KindNumber, nil},
		{"escaped key is not its spelling", `{"mod\u0065l":"m"}`, []string{`mod\u0065l`}, "", 0, nil},

		{"nested", `{"stream_options":{"include_usage":true}}`, []string{"stream_options", "include_usage"}, `true`, KindTrue, nil},
		{"nested absent", `{"stream_options":{}}`, []string{"stream_options", "include_usage"}, "", 0, nil},
		{"nested parent absent", `{"x":1}`, []string{"stream_options", "include_usage"}, "", 0, nil},
		{"three levels", `{"a":{"x":[],"b":{"c":"deep"}}}`, []string{"a", "b", "c"}, `"deep"`, KindString, nil},
		{"same key at another level", `{"a":{"a":{"a":1}}}`, []string{"a", "a"}, `{"a":1}`, KindObject, nil},
		{"key inside sibling not taken", `{"b":{"c":1},"a":{"d":2}}`, []string{"a", "c"}, "", 0, nil},
		{"parent is an array", `{"a":[{"b":1}]}`, []string{"a", "b"}, "", 0, nil},
		{"parent is a string", `{"a":"b"}`, []string{"a", "b"}, "", 0, nil},
		{"parent is null", `{"stream_options":null}`, []string{"stream_options", "include_usage"}, "", 0, nil},
		{"document is an array", `[{"model":"m"}]`, []string{"model"}, "", 0, nil},
		{"document is a string", `"model"`, []string{"model"}, "", 0, nil},

		{"duplicate", `{"model":"a","model":"b"}`, []string{"model"}, "", 0, dup},
		{"duplicate, escaped", `{"model":"cheap","mod\u0065l":"dear"}`, []string{"model"}, "", 0, dup},
		{"duplicate, both escaped", `{"\u006dodel":1,"m\u006fdel":2}`, []string{"model"}, "", 0, dup},
		{"duplicate, escaped slash", `{"a/b":1,"a\/b":2}`, []string{"a/b"}, "", 0, dup},
		{"duplicate far apart", `{"model":"a","messages":[{"model":"x"}],"stream":true,"model":"b"}`, []string{"model"}, "", 0, dup},
		{"duplicate after a container value", `{"model":{"x":1},"model":2}`, []string{"model"}, "", 0, dup},
		{"case variant", `{"model":"a","Model":"b"}`, []string{"model"}, "", 0, dup},
		{"case variant first", `{"MODEL":"b","model":"a"}`, []string{"model"}, "", 0, dup},
		{"case variant alone", `{"Model":"b"}`, []string{"model"}, "", 0, dup},
		{"case variant escaped", `{"model":"a","\u004dodel":"b"}`, []string{"model"}, "", 0, dup},
		{"Kelvin sign folds to k", `{"kind":1,"\u212aind":2}`, []string{"kind"}, "", 0, dup},
		{"long s folds to s", `{"stream":true,"\u017ftream":false}`, []string{"stream"}, "", 0, dup},
		{"duplicate at depth", `{"stream_options":{"include_usage":true,"include_usage":false}}`, []string{"stream_options", "include_usage"}, "", 0, dup},
		{"duplicate at depth, escaped", `{"a":{"b":{"c":1,"\u0063":2}}}`, []string{"a", "b", "c"}, "", 0, dup},
		{"duplicate parent", `{"a":{"b":1},"a":{"b":2}}`, []string{"a", "b"}, "", 0, dup},
		{"duplicate parent without the child", `{"a":{"b":1},"a":3}`, []string{"a", "b"}, "", 0, dup},
		{"duplicate parent, child absent", `{"a":{},"a":{}}`, []string{"a", "b"}, "", 0, dup},
		{"duplicate off the path", `{"model":"m","x":{"model":1,"model":2}}`, []string{"model"}, `"m"`, KindString, nil},
		{"duplicate in a message", `{"messages":[{"role":"a","role":"b"}],"model":"m"}`, []string{"model"}, `"m"`, KindString, nil},
		{"other key duplicated", `{"x":1,"x":2,"model":"m"}`, []string{"model"}, `"m"`, KindString, nil},
		{"duplicate in a sibling object", `{"a":{"b":1},"c":{"b":1,"b":2}}`, []string{"a", "b"}, `1`, KindNumber, nil},
		{"duplicate below the target", `{"a":{"b":{"c":1,"c":2}}}`, []string{"a", "b"}, `{"c":1,"c":2}`, KindObject, nil},
		{"duplicate in an array on the path", `{"a":[{"b":1,"b":2}]}`, []string{"a", "b"}, "", 0, nil},

		{"invalid document", `{"model":"m",}`, []string{"model"}, "", 0, &SyntaxError{}},
		{"invalid after the value", `{"model":"m"} x`, []string{"model"}, "", 0, &SyntaxError{}},
		{"duplicate in an invalid document", `{"model":1,"model":2`, []string{"model"}, "", 0, &SyntaxError{}},
		{"invalid far from the path", `{"model":"m","messages":[{"content":"\x"}]}`, []string{"model"}, "", 0, &SyntaxError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := []byte(tc.doc)
			v, found, err := Get(doc, tc.path...)
			switch tc.err {
			case nil:
				if err != nil {
					t.Fatalf("Get(%q, %q): %v", tc.doc, tc.path, err)
				}
			case dup:
				if !errors.Is(err, ErrDuplicateKey) {
					t.Fatalf("Get(%q, %q) error = %v, want ErrDuplicateKey", tc.doc, tc.path, err)
				}
			default:
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("Get(%q, %q) error = %v, want *SyntaxError", tc.doc, tc.path, err)
				}
			}
			if err != nil {
				if found {
					t.Errorf("found with an error")
				}
				return
			}
			if found != (tc.want != "") {
				t.Fatalf("Get(%q, %q) found = %v, want %v", tc.doc, tc.path, found, !found)
			}
			if !found {
				return
			}
			if got := string(v.Raw(doc)); got != tc.want || v.Kind != tc.kind {
				t.Errorf("Get(%q, %q) = %s (%v), want %s (%v)", tc.doc, tc.path, got, v.Kind, tc.want, tc.kind)
			}
			// encoding/json finds the same value on the same path.
			var all, one any
			if err := json.Unmarshal(doc, &all); err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.path {
				all = all.(map[string]any)[k]
			}
			if err := json.Unmarshal(v.Raw(doc), &one); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(all, one) {
				t.Errorf("encoding/json decodes %#v at %q, Get's span decodes to %#v", all, tc.path, one)
			}
		})
	}
}

func TestStringAndBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		doc       string
		path      []string
		s         string
		sFound    bool
		b, bFound bool
	}{
		{"plain string", chat, []string{"model"}, "gpt-4o-mini", true, false, false},
		{"escaped string", `{"m":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00"}`, []string{"m"}, "a\"b\\c/d\n\té😀", true, false, false},
		{"lone surrogate", `{"m":"x\ud800y"}`, []string{"m"}, "x\ufffdy", true, false, false},
		{"true", chat, []string{"stream"}, "", false, true, true},
		{"false", `{"a":{"b":false}}`, []string{"a", "b"}, "", false, false, true},
		{"number is neither", `{"a":1}`, []string{"a"}, "", false, false, false},
		{"null is neither", `{"a":null}`, []string{"a"}, "", false, false, false},
		{"string true is not a bool", `{"a":"true"}`, []string{"a"}, "true", true, false, false},
		{"absent", chat, []string{"nope"}, "", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, found, err := String([]byte(tc.doc), tc.path...)
			if err != nil || s != tc.s || found != tc.sFound {
				t.Errorf("String = %q, %v, %v; want %q, %v", s, found, err, tc.s, tc.sFound)
			}
			if found {
				var std string
				v, _, _ := Get([]byte(tc.doc), tc.path...)
				if err := json.Unmarshal(v.Raw([]byte(tc.doc)), &std); err != nil || std != s {
					t.Errorf("encoding/json decodes %q (%v), String %q", std, err, s)
				}
			}
			b, found, err := Bool([]byte(tc.doc), tc.path...)
			if err != nil || b != tc.b || found != tc.bFound {
				t.Errorf("Bool = %v, %v, %v; want %v, %v", b, found, err, tc.b, tc.bFound)
			}
		})
	}
	for _, f := range []func([]byte, ...string) error{
		func(d []byte, p ...string) error { _, _, err := String(d, p...); return err },
		func(d []byte, p ...string) error { _, _, err := Bool(d, p...); return err },
	} {
		if err := f([]byte(`{"model":1,"model":"x"}`), "model"); !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("duplicate: %v, want ErrDuplicateKey", err)
		}
		if err := f([]byte(`{"model":"x"`), "model"); err == nil {
			t.Errorf("truncated document: no error")
		}
	}
}

// TestMatchKey checks the key comparison against its definition: exact is ==
// on the decoded key, fold is strings.EqualFold on it.
func TestMatchKey(t *testing.T) {
	t.Parallel()
	keys := []string{`model`, `Model`, `MODEL`, `mod\u0065l`, `mod\u0045l`, `models`, `mode`, ``,
		`\u212a`, `k`, `K`, `\u017f`, `s`, `S`, `straße`, `STRASSE`, `\u00df`, `ẞ`, `é`, `É`, `\u00c9`,
		`\ud800`, `\ufffd`, `\ud83d\ude00`, `😀`, `a\"b`, `a\\b`, `\/`, `/`, `ǅ`, `ǆ`, `Ǆ`}
	paths := []string{"model", "k", "K", "s", "ſ", "K", "é", "É", "\ufffd", "😀", `a"b`, `a\b`, "/", "", "ǅ", "ǆ", "\xff", "mod\xffl"}
	for _, k := range keys {
		lit := []byte(`"` + k + `"`)
		var decoded string
		if err := json.Unmarshal(lit, &decoded); err != nil {
			t.Fatalf("key %s: %v", k, err)
		}
		_, simple, err := scanString(lit, 0)
		if err != nil {
			t.Fatalf("key %s: %v", k, err)
		}
		for _, p := range paths {
			exact, fold := matchKey(lit[1:len(lit)-1], simple, p)
			wantFold := strings.EqualFold(decoded, p) && !strings.Contains(p, "\xff")
			if exact != (decoded == p) || fold != wantFold {
				t.Errorf("matchKey(%s, %q) = %v, %v; want %v, %v", k, p, exact, fold, decoded == p, wantFold)
			}
		}
	}
}
