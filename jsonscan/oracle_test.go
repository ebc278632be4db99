package jsonscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// The oracle: encoding/json's tokenizer, decoding into a tree that keeps what
// a map loses (member order and duplicate keys), so that "every other member is
// unchanged" can be checked as a whole.

type member struct {
	Key string
	Val any
}

// object is a decoded JSON object, members in document order.
type object []member

// decodeOrdered decodes one JSON value with encoding/json (UseNumber): objects
// become object, arrays []any, the rest as encoding/json decodes them into any.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value: %v", err)
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		obj := object{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, member{k.(string), v})
		}
		_, err = dec.Token()
		return obj, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err = dec.Token()
		return arr, err
	}
	return nil, fmt.Errorf("unexpected delimiter %v", d)
}

// lookup is what Get should answer for path in tree, worked out from the
// decoded tree: depth is how many keys were found, node the value of the last
// one found (the tree itself at depth 0), dup whether an object on the path
// holds the key twice or a case variant of it.
type lookup struct {
	depth int
	node  any
	dup   bool
}

func walk(tree any, path []string) lookup {
	l := lookup{node: tree}
	for _, key := range path {
		obj, ok := l.node.(object)
		if !ok {
			return l
		}
		exact, folded := -1, 0
		for i, m := range obj {
			if strings.EqualFold(m.Key, key) {
				folded++
				if m.Key == key {
					exact = i
				}
			}
		}
		if folded > 1 || (folded == 1 && exact < 0) {
			l.dup = true
			return l
		}
		if exact < 0 {
			return l
		}
		l.depth++
		l.node = obj[exact].Val
	}
	return l
}

// edited returns a deep copy of tree with fn applied to the object that holds
// path's last key (created, and its parents, when missing).
func edited(tree any, path []string, fn func(object) object) any {
	if tree == nil {
		tree = object{} // Set replaces a null on the path with an object
	}
	obj := tree.(object)
	out := make(object, len(obj))
	copy(out, obj)
	if len(path) == 1 {
		return fn(out)
	}
	for i, m := range out {
		if m.Key == path[0] {
			out[i].Val = edited(m.Val, path[1:], fn)
			return out
		}
	}
	// Missing: Set creates it as the first member.
	return append(object{{path[0], edited(object{}, path[1:], fn)}}, out...)
}

// replaceOrInsert is the decoded effect of Set(path, v).
func replaceOrInsert(key string, v any) func(object) object {
	return func(obj object) object {
		for i, m := range obj {
			if m.Key == key {
				obj[i].Val = v
				return obj
			}
		}
		return append(object{{key, v}}, obj...)
	}
}

// without is the decoded effect of Delete(path).
func without(key string) func(object) object {
	return func(obj object) object {
		out := object{}
		for _, m := range obj {
			if m.Key != key {
				out = append(out, m)
			}
		}
		return out
	}
}

// trimSpace trims JSON whitespace only (bytes.TrimSpace also trims \v, \f,
// U+0085 and U+00A0, which JSON does not count as whitespace).
func trimSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}
