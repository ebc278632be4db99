package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

type validCase struct {
	name string
	doc  string
	ok   bool
}

// grammar holds one table per rule of RFC 8259. For every document that is
// valid UTF-8, encoding/json.Valid is asked too and must agree.
var grammar = map[string][]validCase{
	"whitespace": {
		{"space tab CR LF around", " \t\r\n1 \t\r\n", true},
		{"between tokens", "[ 1 ,\n2\t]", true},
		{"empty document", "", false},
		{"only whitespace", " \n ", false},
		{"vertical tab", "\v1", false},
		{"form feed", "1\f", false},
		{"byte order mark", "\ufeff{}", false},
		{"no-break space", "\u00a01", false},
		{"NUL after value", "1\x00", false},
	},
	"one value": {
		{"two values", "1 2", false},
		{"two objects", "{}{}", false},
		{"value then garbage", `{"a":1}x`, false},
		{"scalar at top", `"s"`, true},
		{"null at top", "null", true},
	},
	"literals": {
		{"true", "true", true},
		{"false", "false", true},
		{"null", "null", true},
		{"capitalised", "True", false},
		{"truncated", "tru", false},
		{"longer word", "truex", false},
		{"nul", "nul", false},
		{"NaN", "NaN", false},
		{"Infinity", "Infinity", false},
		{"minus Infinity", "-Infinity", false},
		{"undefined", "undefined", false},
		{"in array", "[true,false,null]", true},
		{"glued in array", "[truefalse]", false},
	},
	"numbers": {
		{"zero", "0", true},
		{"minus zero", "-0", true},
		{"integer", "1234567890", true},
		{"negative", "-12", true},
		{"fraction", "0.5", true},
		{"exponent", "1e10", true},
		{"exponent upper", "1E10", true},
		{"exponent plus", "1e+10", true},
		{"exponent minus", "1.5e-10", true},
		{"huge", "1e999999", true},
		{"long", strings.Repeat("9", 400), true},
		{"leading zero", "01", false},
		{"minus leading zero", "-01", false},
		{"double zero", "00", false},
		{"leading plus", "+1", false},
		{"bare minus", "-", false},
		{"minus space", "- 1", false},
		{"leading dot", ".5", false},
		{"trailing dot", "1.", false},
		{"dot exponent", "1.e5", false},
		{"bare exponent", "1e", false},
		{"exponent sign only", "1e+", false},
		{"hex", "0x10", false},
		{"double minus", "--1", false},
		{"two dots", "1.2.3", false},
		{"comma decimal", "[1,5]", true},
		{"in object", `{"a":-0.0e-0}`, true},
		{"leading zero in array", "[01]", false},
	},
	"strings": {
		{"empty", `""`, true},
		{"plain", `"hello"`, true},
		{"all short escapes", `"\" \\ \/ \b \f \n \r \t"`, true},
		{"unicode escape", `"\u00e9\u4E2D"`, true},
		{"surrogate pair", `"\ud83d\ude00"`, true},
		{"lone high surrogate", `"\ud800"`, true}, // accepted, as encoding/json does
		{"lone low surrogate", `"\udc00x"`, true},
		{"unterminated", `"abc`, false},
		{"unterminated after escape", `"abc\`, false},
		{"single quotes", `'a'`, false},
		{"escape x", `"\x41"`, false},
		{"escape a", `"\a"`, false},
		{"escape zero", `"\0"`, false},
		{"escape apostrophe", `"\'"`, false},
		{"escaped newline", "\"\\\n\"", false},
		{"short unicode escape", `"\u12"`, false},
		{"unicode escape bad hex", `"\u12G4"`, false},
		{"unicode escape at end", `"\u`, false},
		{"upper U", `"\U0041"`, false},
		{"raw tab", "\"a\tb\"", false},
		{"raw newline", "\"a\nb\"", false},
		{"raw NUL", "\"a\x00b\"", false},
		{"raw 0x1f", "\"\x1f\"", false},
		{"raw DEL", "\"\x7f\"", true},
		{"non-ASCII", `"héllo 中文 😀"`, true},
		{"U+2028", "\"\u2028\"", true},
		{"key not a string", `{a:1}`, false},
		{"number key", `{1:1}`, false},
	},
	"structure": {
		{"empty object", "{}", true},
		{"empty array", "[]", true},
		{"two spaced empties", "{ } [ ]", false},
		{"spaced empty object", "{ \n }", true},
		{"nested", `{"a":[{"b":{}},[],[[]]]}`, true},
		{"trailing comma object", `{"a":1,}`, false},
		{"trailing comma array", `[1,]`, false},
		{"leading comma", `[,1]`, false},
		{"double comma", `[1,,2]`, false},
		{"missing comma", `[1 2]`, false},
		{"missing colon", `{"a" 1}`, false},
		{"double colon", `{"a"::1}`, false},
		{"missing value", `{"a":}`, false},
		{"key without value", `{"a"}`, false},
		{"unclosed object", `{"a":1`, false},
		{"unclosed array", `[1`, false},
		{"mismatched close", `[1}`, false},
		{"mismatched close object", `{"a":1]`, false},
		{"extra close", `[1]]`, false},
		{"close only", `]`, false},
		{"comment line", "{} // c", false},
		{"comment block", "/* c */ {}", false},
		{"semicolon", `{"a":1;"b":2}`, false},
		{"duplicate keys are valid", `{"a":1,"a":2}`, true},
	},
}

func TestValidGrammar(t *testing.T) {
	t.Parallel()
	for rule, cases := range grammar {
		for _, tc := range cases {
			t.Run(rule+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				doc := []byte(tc.doc)
				if got := Valid(doc); got != tc.ok {
					t.Errorf("Valid(%q) = %v, want %v", tc.doc, got, tc.ok)
				}
				if !utf8.Valid(doc) {
					t.Fatalf("table case %q is not UTF-8: it belongs in TestValidUTF8", tc.doc)
				}
				if std := json.Valid(doc); std != tc.ok {
					t.Errorf("encoding/json.Valid(%q) = %v, the table says %v", tc.doc, std, tc.ok)
				}
				_, _, err := Get(doc)
				var se *SyntaxError
				if tc.ok != (err == nil) || (err != nil && !errors.As(err, &se)) {
					t.Errorf("Get(%q) error = %v, want a *SyntaxError exactly when invalid", tc.doc, err)
				}
			})
		}
	}
}

// TestValidUTF8: encoding/json.Valid accepts invalid UTF-8 inside strings (and
// Unmarshal turns it into U+FFFD); jsonscan refuses it. The std column pins
// that difference, so a change in encoding/json shows up here.
func TestValidUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		ok   bool
		std  bool // what encoding/json.Valid says
	}{
		{"two-byte", "\"\xc3\xa9\"", true, true},
		{"three-byte", "\"\xe4\xb8\xad\"", true, true},
		{"four-byte", "\"\xf0\x9f\x98\x80\"", true, true},
		{"literal U+FFFD", "\"\xef\xbf\xbd\"", true, true},
		{"max code point", "\"\xf4\x8f\xbf\xbf\"", true, true},
		{"lone continuation", "\"\x80\"", false, true},
		{"truncated two-byte", "\"\xc3\"", false, true},
		{"truncated four-byte", "\"\xf0\x9f\x98\"", false, true},
		{"overlong slash", "\"\xc0\xaf\"", false, true},
		{"overlong NUL", "\"\xc0\x80\"", false, true},
		{"overlong three-byte", "\"\xe0\x80\xaf\"", false, true},
		{"UTF-8 surrogate", "\"\xed\xa0\x80\"", false, true},
		{"above U+10FFFF", "\"\xf4\x90\x80\x80\"", false, true},
		{"byte FF", "\"\xff\"", false, true},
		{"byte FE", "\"a\xfeb\"", false, true},
		{"Latin-1", "\"caf\xe9\"", false, true},
		{"in a key", "{\"\xff\":1}", false, true},
		{"in a nested value", "{\"a\":[\"ok\",\"\xc3\x28\"]}", false, true},
		{"outside a string", "[1,\xff]", false, false},
		{"UTF-8 outside a string", "[1,\xc3\xa9]", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := []byte(tc.doc)
			if got := Valid(doc); got != tc.ok {
				t.Errorf("Valid(%q) = %v, want %v", tc.doc, got, tc.ok)
			}
			if std := json.Valid(doc); std != tc.std {
				t.Errorf("encoding/json.Valid(%q) = %v, the table says %v", tc.doc, std, tc.std)
			}
			if tc.ok && !utf8.Valid(doc) {
				t.Errorf("Valid accepted %q, which is not UTF-8", tc.doc)
			}
		})
	}
}

func TestValidDepth(t *testing.T) {
	t.Parallel()
	nest := func(open, close string, depth int, inner string) []byte {
		return []byte(strings.Repeat(open, depth) + inner + strings.Repeat(close, depth))
	}
	tests := []struct {
		name string
		doc  []byte
		ok   bool
	}{
		{"arrays at the limit", nest("[", "]", MaxDepth, ""), true},
		{"arrays past the limit", nest("[", "]", MaxDepth+1, ""), false},
		{"objects at the limit", nest(`{"a":`, "}", MaxDepth-1, "{}"), true},
		{"objects past the limit", nest(`{"a":`, "}", MaxDepth, "{}"), false},
		{"mixed past the limit", nest(`[{"a":`, "}]", MaxDepth/2, "[]"), false},
		{"far past, unclosed", []byte(strings.Repeat("[", 1<<20)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Valid(tc.doc); got != tc.ok {
				t.Errorf("Valid = %v, want %v", got, tc.ok)
			}
			if std := json.Valid(tc.doc); std != tc.ok {
				t.Errorf("encoding/json.Valid = %v, the table says %v", std, tc.ok)
			}
		})
	}
	// The path is followed at any depth the grammar allows.
	deep := nest(`{"a":`, "}", MaxDepth-1, `{"model":"m"}`)
	path := append(make([]string, 0, MaxDepth), strings.Split(strings.Repeat("a", MaxDepth-1), "")...)
	path = append(path, "model")
	if s, found, err := String(deep, path...); err != nil || !found || s != "m" {
		t.Errorf("String at depth %d = %q, %v, %v", MaxDepth, s, found, err)
	}
}

// TestSyntaxError: errors carry an offset and a fixed message, never bytes of
// the document, which may hold a prompt or a key.
func TestSyntaxError(t *testing.T) {
	t.Parallel()
	const secret = "sk-SECRETSECRET"
	tests := []struct {
		name   string
		doc    string
		offset int64
	}{
		{"bad literal", `{"k":"` + secret + `", "x": ` + secret + `}`, 29},
		{"bad escape", `{"k":"` + secret + `\q"}`, 22},
		{"control char", "{\"k\":\"" + secret + "\x01\"}", 21},
		{"invalid UTF-8", "{\"k\":\"" + secret + "\xff\"}", 21},
		{"after value", `{"k":"` + secret + `"}` + secret, 23},
		{"truncated", `{"k":"` + secret, 21},
		{"key not string", `{` + secret + `:1}`, 1},
		{"missing colon", `{"` + secret + `" 1}`, 19},
		{"bad number", `[-` + secret + `]`, 2},
		{"bad separator", `["` + secret + `" "x"]`, 19},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Get([]byte(tc.doc), "k")
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want *SyntaxError", err, err)
			}
			if se.Offset != tc.offset {
				t.Errorf("offset %d, want %d", se.Offset, tc.offset)
			}
			for _, leak := range []string{secret, "SECRET", "sk-"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q repeats document content", err)
				}
			}
		})
	}
}

// TestSpecial: the eight-bytes-at-a-time test in scanString agrees with the
// byte table: true exactly when some byte is not plain.
func TestSpecial(t *testing.T) {
	t.Parallel()
	check := func(w uint64) {
		want := false
		for k := 0; k < 8; k++ {
			want = want || !plain[byte(w>>(8*k))]
		}
		if got := special(w); got != want {
			t.Fatalf("special(%#016x) = %v, want %v", w, got, want)
		}
	}
	const filler = 0x6161616161616161 // "aaaaaaaa"
	for k := 0; k < 8; k++ {
		for c := 0; c < 256; c++ {
			check(filler&^(0xff<<(8*k)) | uint64(c)<<(8*k))
			check(uint64(c) << (8 * k)) // beside NULs
			check(^uint64(0)&^(0xff<<(8*k)) | uint64(c)<<(8*k))
		}
	}
	// Pairs of bytes at every two positions, from the values where borrows
	// and boundaries are: around 0x20, '"', '\\', 0x80.
	edge := []uint64{0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0x81, 0xa2, 0xdc, 0xff}
	for i := 0; i < 8; i++ {
		for j := 0; j < 8; j++ {
			for _, a := range edge {
				for _, b := range edge {
					w := uint64(filler)
					w = w&^(0xff<<(8*i)) | a<<(8*i)
					w = w&^(0xff<<(8*j)) | b<<(8*j)
					check(w)
				}
			}
		}
	}
}
