// Package jsonscan reads and edits single fields of a JSON request body without
// decoding and re-encoding the whole body.
//
// The gateway routes a request by its "model" field, renames that model for the
// provider, asks for usage in streams ("stream_options":{"include_usage":true})
// and now and then removes a field. Everything else must reach the provider byte
// for byte: re-encoding is slow on long prompts and changes bytes (number
// spellings, escapes, key order) the provider should see exactly as the client
// sent them. jsonscan makes one pass over the body, validates all of it, and
// returns the span of the value it was asked for; an edit splices new bytes into
// a copy and leaves every other byte alone.
//
// It is strict on purpose, because the body is read twice by different parsers:
// once here, to decide where the request may go, and once by the provider. Any
// document the two could read differently is a way to pass llmproxy's checks with
// one model and reach the provider with another. So jsonscan accepts exactly
// RFC 8259 (no comments, trailing commas, NaN, leading zeros or other
// extensions) and refuses invalid UTF-8 inside strings (encoding/json replaces
// it with U+FFFD, Python refuses it). In each object on the looked-up path it
// refuses a second occurrence of the looked-up key, compared after unescaping
// ("mod\u0065l" is "model"; of two, Python and Go keep the last), and any key
// that equals it only when case is ignored: Go's encoding/json reads "Model" or
// "MODEL" into a field tagged "model", so a provider written in Go could route
// on a key that llmproxy did not read (ErrDuplicateKey).
//
// One known leniency, shared with encoding/json: an escaped lone surrogate such
// as "\ud800" is accepted, and decodes to U+FFFD as encoding/json decodes it.
// RFC 8259 §8.2 leaves such strings' meaning unpredictable (Python keeps the
// surrogate, Rust's serde_json refuses it); refusing them would refuse bodies
// that Go, Python and JavaScript accept. It cannot make a key on the path read
// differently: no key worth routing on holds a surrogate.
//
// Duplicate keys are looked for only in the objects on the path (for
// Get(body, "model"), the top-level object), not in every object of the
// document: that would need a set of keys per object, and a duplicate off the
// path cannot change where a request goes.
package jsonscan

import (
	"errors"
	"strconv"
)

// MaxDepth is the deepest nesting of arrays and objects accepted, the same bound
// as encoding/json's: the scanner keeps no recursion, so the limit is about
// agreeing with other parsers, not about the stack.
const MaxDepth = 10000

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of JSON values. The zero Kind is no value.
const (
	KindInvalid Kind = iota
	KindObject
	KindArray
	KindString
	KindNumber
	KindTrue
	KindFalse
	KindNull
)

var kindNames = [...]string{"invalid", "object", "array", "string", "number", "true", "false", "null"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is the span of a JSON value inside a document: data[Start:End], without
// the whitespace around it.
type Value struct {
	Start, End int
	Kind       Kind
}

// Raw returns the bytes of v in data (the document v was found in).
func (v Value) Raw(data []byte) []byte { return data[v.Start:v.End] }

// SyntaxError reports a document that is not exactly one valid JSON value. Its
// message names what was wrong and where, never the document's bytes: a body
// holds prompts and sometimes keys.
type SyntaxError struct {
	Offset int64 // the byte offset at which the error was found
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "jsonscan: " + e.Msg + " at offset " + strconv.FormatInt(e.Offset, 10)
}

var (
	// ErrDuplicateKey is returned for a valid document in which an object on
	// the looked-up path holds the looked-up key more than once, or holds a
	// key that differs from it only in case. Keys are compared after
	// unescaping. A document that is also invalid gets its *SyntaxError.
	ErrDuplicateKey = errors.New("jsonscan: duplicate key on the path")
	// ErrNotObject is returned by Set and SetString when the document or a value
	// on the path that would have to hold the new member is not an object.
	ErrNotObject = errors.New("jsonscan: not an object")
	// ErrInvalidValue is returned by Set when the new value is not exactly one
	// valid JSON value.
	ErrInvalidValue = errors.New("jsonscan: new value is not valid JSON")
	// ErrEmptyPath is returned by the edits, which need at least one key.
	ErrEmptyPath = errors.New("jsonscan: empty path")
)

// Get validates the whole document and returns the value at a path of object
// keys: Get(body, "model"), Get(body, "stream_options", "include_usage"). With
// no keys it returns the document itself.
//
// found is false when a key on the path is absent or a parent on the path is
// not an object. err is non-nil (a *SyntaxError) when data is not exactly one
// valid JSON value, or ErrDuplicateKey when an object on the path holds the
// looked-up key twice.
func Get(data []byte, path ...string) (v Value, found bool, err error) {
	r, err := scan(data, path, nil)
	if err != nil {
		return Value{}, false, err
	}
	if r.found != len(path) {
		return Value{}, false, nil
	}
	return r.val, true, nil
}

// Fields is Get for several members of the top-level object in one pass:
// vals[i] is the value of keys[i], of Kind KindInvalid when the document is
// not an object or has no such member. Each key is held to Get's rules: a
// second occurrence, or a key equal to it only when case is ignored, is
// ErrDuplicateKey. The keys must differ from each other ignoring case.
func Fields(data []byte, keys ...string) (vals []Value, err error) {
	vals = make([]Value, len(keys))
	if err := FieldsInto(vals, data, keys...); err != nil {
		return nil, err
	}
	return vals, nil
}

// FieldsInto is Fields with the values written to vals, which must be as
// long as keys: a caller that looks up a few fields on every request keeps
// them on its stack. On an error vals holds nothing of use.
func FieldsInto(vals []Value, data []byte, keys ...string) error {
	if len(vals) != len(keys) {
		panic("jsonscan: FieldsInto: vals and keys differ in length")
	}
	clear(vals)
	f := &fieldSet{keys: keys, vals: vals}
	_, err := scan(data, nil, f)
	return err
}

// fieldSet is what Fields asks scan for and what it found.
type fieldSet struct {
	keys []string
	vals []Value
	cur  int // the member whose value is being read
}

// String returns the decoded string at path; found is false when the value is
// absent or not a string.
func String(data []byte, path ...string) (s string, found bool, err error) {
	v, found, err := Get(data, path...)
	if err != nil || !found || v.Kind != KindString {
		return "", false, err
	}
	return unquote(data[v.Start+1 : v.End-1]), true, nil
}

// Bool returns the boolean at path; found is false when the value is absent or
// not true or false.
func Bool(data []byte, path ...string) (value, found bool, err error) {
	v, found, err := Get(data, path...)
	if err != nil || !found {
		return false, false, err
	}
	switch v.Kind {
	case KindTrue:
		return true, true, nil
	case KindFalse:
		return false, true, nil
	}
	return false, false, nil
}

// Valid reports whether data is exactly one valid JSON value, with only JSON
// whitespace around it, under the rules in the package comment.
func Valid(data []byte) bool {
	_, err := scan(data, nil, nil)
	return err == nil
}
