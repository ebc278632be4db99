package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// stdMembers lists an object's members as encoding/json's Decoder reads them:
// keys unescaped, values as their raw bytes, duplicates kept in order.
func stdMembers(t *testing.T, obj []byte) (keys []string, vals [][]byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%q: not an object to encoding/json: %v %v", obj, tok, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		keys, vals = append(keys, tok.(string)), append(vals, raw)
	}
	return keys, vals
}

func TestMembers(t *testing.T) {
	obj := []byte("{ \"a\" :1 , \"b\\\"c\":\"x}\\\"]\",\"a\":{\"n\":[1,{\"m\":\"]\"}]},\"t\":true,\"f\":false,\"z\":null,\"e\":-1.5e+3,\"s\":[] }")
	var keys []string
	var raws []string
	var kinds []Kind
	for k, v := range Members(obj) {
		s, err := Unquote(k.Literal())
		if err != nil {
			t.Fatal(err)
		}
		keys, raws, kinds = append(keys, s), append(raws, string(v.Raw(obj))), append(kinds, v.Kind)
	}
	wantKeys := []string{"a", `b"c`, "a", "t", "f", "z", "e", "s"}
	wantRaws := []string{"1", `"x}\"]"`, `{"n":[1,{"m":"]"}]}`, "true", "false", "null", "-1.5e+3", "[]"}
	wantKinds := []Kind{KindNumber, KindString, KindObject, KindTrue, KindFalse, KindNull, KindNumber, KindArray}
	if !slices.Equal(keys, wantKeys) || !slices.Equal(raws, wantRaws) || !slices.Equal(kinds, wantKinds) {
		t.Fatalf("got %q %q %v\nwant %q %q %v", keys, raws, kinds, wantKeys, wantRaws, wantKinds)
	}

	// Breaking out of the loop stops the iteration.
	n := 0
	for range Members(obj) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("%d members after break at 2", n)
	}
	for _, s := range []string{`{}`, `{ }`, `[1]`, `"{}"`, ``, `{`} {
		for k := range Members([]byte(s)) {
			t.Errorf("%q: member %q", s, k.Literal())
		}
	}
}

// keyOf is the Key Members would give for a literal.
func keyOf(lit string) Key {
	return Key{lit: []byte(lit), plain: isPlain([]byte(lit[1 : len(lit)-1]))}
}

func TestKeyIs(t *testing.T) {
	for _, c := range []struct {
		lit, name string
		want      bool
	}{
		{`"usage"`, "usage", true},
		{`"Usage"`, "usage", true},
		{`"USAGE"`, "usage", true},
		{`"u\u0073age"`, "usage", true},
		{`"u\u0053age"`, "usage", true},
		{`"uſage"`, "usage", true},    // long s folds to s
		{`"\u212aey"`, "key", true},   // Kelvin sign folds to k
		{`"usage "`, "usage", false},  // no trimming
		{`"usag"`, "usage", false},    // no prefix
		{`"usage_x"`, "usage", false}, // no prefix the other way
		{`"üsage"`, "usage", false},   // no diacritic folding
		{`"prompt\u005ftokens"`, "prompt_tokens", true},
		{`"prompt-tokens"`, "prompt_tokens", false},
		{`"key"`, "\u212aey", true},   // a name may be the one with the Kelvin sign
		{`"ke"`, "\u212a", false},     // longer in bytes, not in runes
		{`"sage"`, "\u017fage", true}, // long s in the name
		{`"usage"`, "USAGE", true},
		{`"k"`, "\xff", false}, // a name that is not UTF-8
		{`"\u212a"`, "k", true},
		{`"\u00e9t\u00e9"`, "\u00c9T\u00c9", true}, // outside ASCII on both sides
	} {
		if got := keyOf(c.lit).Is(c.name); got != c.want {
			t.Errorf("Key(%s).Is(%q) = %v, want %v", c.lit, c.name, got, c.want)
		}
	}
}

// FuzzMembers: on every object Valid accepts, Members yields the members
// encoding/json reads, in order, and Key.Is matches a key to a name exactly
// when encoding/json would decode it into a field of that name.
func FuzzMembers(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "model")
	}
	f.Add([]byte(`{"Usage":1,"u\u0073age":[{"}":"]"}],"uſage":"\\"}`), "usage")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		if !Valid(data) {
			return
		}
		obj := bytes.TrimSpace(data)
		if obj[0] != '{' {
			return
		}
		keys, vals := stdMembers(t, obj)
		i := 0
		for k, v := range Members(obj) {
			if i >= len(keys) {
				t.Fatalf("%q: more members than encoding/json's %d", obj, len(keys))
			}
			s, err := Unquote(k.Literal())
			if err != nil {
				t.Fatalf("%q: key %q: %v", obj, k.Literal(), err)
			}
			if s != keys[i] || !bytes.Equal(v.Raw(obj), vals[i]) {
				t.Fatalf("%q: member %d is %q: %q, encoding/json %q: %q", obj, i, s, v.Raw(obj), keys[i], vals[i])
			}
			if v.Kind != kindOfRaw(t, vals[i]) {
				t.Fatalf("%q: member %d kind %v", obj, i, v.Kind)
			}
			for _, n := range []string{name, keys[i], strings.ToUpper(keys[i]), strings.ToLower(keys[i])} {
				want, ok := stdMatches(keys[i], n)
				if got := k.Is(n); ok && got != want {
					t.Fatalf("Key(%s).Is(%q) = %v, encoding/json %v", k.Literal(), n, got, want)
				}
			}
			i++
		}
		if i != len(keys) {
			t.Fatalf("%q: %d members, encoding/json %d", obj, i, len(keys))
		}
	})
}

func kindOfRaw(t *testing.T, raw []byte) Kind {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(map[string]any); ok {
		return KindObject
	}
	return kindOf(v)
}

// stdMatches reports whether encoding/json decodes the key into a struct
// field tagged name, with such a struct made at run time; ok is false when
// name cannot be a tag (encoding/json would ignore it).
func stdMatches(key, name string) (match, ok bool) {
	if !validTag(name) || name == "-" { // json:"-" leaves the field out
		return false, false
	}
	typ := reflect.StructOf([]reflect.StructField{{Name: "F", Type: reflect.TypeFor[int](), Tag: reflect.StructTag(`json:"` + name + `"`)}})
	doc, err := json.Marshal(map[string]int{key: 1})
	if err != nil {
		return false, false
	}
	v := reflect.New(typ)
	if err := json.Unmarshal(doc, v.Interface()); err != nil {
		return false, false
	}
	return v.Elem().Field(0).Int() == 1, true
}

// validTag is encoding/json's rule for a usable name in a tag.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			return false
		}
	}
	return true
}
