package jsonscan

// The edits never change data: each returns a new document made of data's
// bytes with one span replaced, inserted or removed, allocated once.

// Set returns a new document in which the value at path is raw, which must be
// one valid JSON value. A value already at path is replaced in place; otherwise
// raw is inserted as the first member of the innermost object on the path that
// exists, inside new objects for the keys still missing:
// Set(`{"x":1}`, `true`, "a", "b") gives `{"a":{"b":true},"x":1}`.
// Every other byte stays as it was.
//
// A null on the path counts as a missing object and is replaced:
// Set(`{"stream_options":null}`, `true`, "stream_options", "include_usage")
// gives `{"stream_options":{"include_usage":true}}`. Any other value on the
// path that is not an object, or a document that is not one, is ErrNotObject:
// Set replaces only the value at the end of the path. A document that Get
// would refuse, Set refuses the same way.
func Set(data, raw []byte, path ...string) ([]byte, error) {
	if !Valid(raw) {
		return nil, ErrInvalidValue
	}
	return set(data, raw, "", false, path)
}

// SetString is Set with the value s, encoded as AppendString encodes it.
func SetString(data []byte, s string, path ...string) ([]byte, error) {
	return set(data, nil, s, true, path)
}

// ReplaceString returns a new document in which the value v (found in data
// by Get or Fields) is the string s, encoded as AppendString encodes it:
// SetString for a value whose place is known, without another pass.
func ReplaceString(data []byte, v Value, s string) []byte {
	out := make([]byte, 0, len(data)-(v.End-v.Start)+quotedLen(s))
	out = append(out, data[:v.Start]...)
	out = AppendString(out, s)
	return append(out, data[v.End:]...)
}

// An Edit is one change to a document: data[Start:End] becomes New (an
// insertion when Start == End). Apply makes several edits in one copy.
type Edit struct {
	Start, End int
	New        []byte
}

// Apply returns a new document: data with each edit made, allocated once.
// The edits must be in order of Start and must not overlap.
func Apply(data []byte, edits ...Edit) []byte {
	size := len(data)
	for _, e := range edits {
		size += len(e.New) - (e.End - e.Start)
	}
	out := make([]byte, 0, size)
	at := 0
	for _, e := range edits {
		out = append(out, data[at:e.Start]...)
		out = append(out, e.New...)
		at = e.End
	}
	return append(out, data[at:]...)
}

// StringEdit is ReplaceString as an Edit: the value v becomes the string s.
func StringEdit(v Value, s string) Edit {
	return Edit{Start: v.Start, End: v.End, New: AppendString(make([]byte, 0, quotedLen(s)), s)}
}

// SetMember is the change Set(data, raw, key, path...) makes, as an Edit,
// for a document Fields has read with v the value of its top-level member
// key (Kind KindInvalid when there is none): only v is scanned again, not
// the whole document. data must be a document Fields took without error;
// the errors are Set's (ErrInvalidValue, ErrNotObject, ErrDuplicateKey for
// a key of path twice inside v).
func SetMember(data []byte, v Value, raw []byte, key string, path ...string) (Edit, error) {
	if !Valid(raw) {
		return Edit{}, ErrInvalidValue
	}
	appendRaw := func(out []byte) []byte { return append(out, raw...) }
	switch {
	case v.Kind == KindInvalid:
		// No such member: the first member of the document, which must be
		// an object.
		at := skipSpace(data, 0)
		if at >= len(data) || data[at] != '{' {
			return Edit{}, ErrNotObject
		}
		at++
		out := make([]byte, 0, quotedLen(key)+1+membersLen(path, len(raw))+3)
		out = append(AppendString(out, key), ':')
		if len(path) == 0 {
			out = append(out, raw...)
		} else {
			out = append(appendMembers(append(out, '{'), path, appendRaw), '}')
		}
		if data[skipSpace(data, at)] != '}' {
			out = append(out, ',')
		}
		return Edit{Start: at, End: at, New: out}, nil
	case len(path) == 0:
		return Edit{Start: v.Start, End: v.End, New: raw}, nil
	case v.Kind == KindNull:
		// A null on the path counts as a missing object, as in Set.
		out := make([]byte, 0, membersLen(path, len(raw))+2)
		out = append(out, '{')
		out = appendMembers(out, path, appendRaw)
		return Edit{Start: v.Start, End: v.End, New: append(out, '}')}, nil
	case v.Kind != KindObject:
		return Edit{}, ErrNotObject
	}
	inner, err := set(v.Raw(data), raw, "", false, path)
	if err != nil {
		return Edit{}, err
	}
	return Edit{Start: v.Start, End: v.End, New: inner}, nil
}

// membersLen is the length of appendMembers' output for keys and a value of
// n bytes.
func membersLen(keys []string, n int) int {
	for _, k := range keys {
		n += quotedLen(k) + 3 // ':' '{' '}'
	}
	return n
}

// set puts raw, or s encoded when quote is set, at path.
func set(data, raw []byte, s string, quote bool, path []string) ([]byte, error) {
	if len(path) == 0 {
		return nil, ErrEmptyPath
	}
	r, err := scan(data, path, nil)
	if err != nil {
		return nil, err
	}
	size := len(raw)
	if quote {
		size = quotedLen(s)
	}
	appendValue := func(out []byte) []byte {
		if quote {
			return AppendString(out, s)
		}
		return append(out, raw...)
	}

	if r.found == len(path) {
		out := make([]byte, 0, len(data)-(r.val.End-r.val.Start)+size)
		out = append(out, data[:r.val.Start]...)
		out = appendValue(out)
		return append(out, data[r.val.End:]...), nil
	}
	// Insert "k1":{"k2":…raw}, for the keys still missing, as the first
	// member of the innermost object on the path, or in place of a null on
	// the path: OpenAI reads "stream_options":null as no options, so adding
	// include_usage there must not fail the request.
	inNull := r.val.Kind == KindNull && r.found > 0
	if r.val.Kind != KindObject && !inNull {
		return nil, ErrNotObject
	}
	missing := path[r.found:]
	size += len(data) + 2 // a comma before the old first member, or braces for null
	for _, k := range missing {
		size += quotedLen(k) + 3 // ':' '{' '}'
	}
	out := make([]byte, 0, size)
	if inNull {
		out = append(out, data[:r.val.Start]...)
		out = append(out, '{')
		out = appendMembers(out, missing, appendValue)
		out = append(out, '}')
		return append(out, data[r.val.End:]...), nil
	}
	at := r.val.Start + 1 // just after '{'
	out = append(out, data[:at]...)
	out = appendMembers(out, missing, appendValue)
	if data[skipSpace(data, at)] != '}' {
		out = append(out, ',')
	}
	return append(out, data[at:]...), nil
}

// appendMembers appends "k1":{"k2":{"k3":value}} for keys k1 k2 k3.
func appendMembers(out []byte, keys []string, appendValue func([]byte) []byte) []byte {
	for j, k := range keys {
		if j > 0 {
			out = append(out, '{')
		}
		out = AppendString(out, k)
		out = append(out, ':')
	}
	out = appendValue(out)
	for range keys[1:] {
		out = append(out, '}')
	}
	return out
}

// Delete removes the member at path with the comma that separates it from its
// neighbour: the one after it, or for the last member the one before it, with
// the whitespace between. Pretty-printed objects stay pretty:
//
//	{"a": 1, "b": 2, "c": 3} → {"a": 1, "c": 3}   (delete "b")
//	{"a": 1, "b": 2}         → {"a": 1}           (delete "b")
//
// When there is no such member, Delete returns data itself and no error. A
// document that Get would refuse, Delete refuses the same way.
func Delete(data []byte, path ...string) ([]byte, error) {
	if len(path) == 0 {
		return nil, ErrEmptyPath
	}
	r, err := scan(data, path, nil)
	if err != nil {
		return nil, err
	}
	if r.found != len(path) {
		return data, nil
	}
	start, end := r.key, r.val.End
	if j := skipSpace(data, end); data[j] == ',' {
		end = skipSpace(data, j+1) // up to the next member's key
	} else if k := skipSpaceBack(data, start); data[k-1] == ',' {
		start = skipSpaceBack(data, k-1) // from the end of the previous member's value
	}
	out := make([]byte, 0, len(data)-(end-start))
	out = append(out, data[:start]...)
	return append(out, data[end:]...), nil
}

func skipSpaceBack(data []byte, i int) int {
	for i > 0 && isSpace(data[i-1]) {
		i--
	}
	return i
}
