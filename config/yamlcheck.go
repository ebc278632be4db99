package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// checkNode walks a YAML document against the Go type it decodes into,
// before decoding, to say what the decoder would not: an unknown key
// names the key meant ("did you mean transport?"), a boolean may be
// written yes/no/on/off (rewritten to true/false in the node), and a
// duration written as a bare number asks for its unit.
func checkNode(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case t == durationType:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
			if v, _ := strconv.Atoi(n.Value); v != 0 {
				return fmt.Errorf("line %d: %s: a duration needs a unit: write %ss (or %sm, %sms)", n.Line, path, n.Value, n.Value, n.Value)
			}
		}
		return nil
	case t == timeType:
		return nil
	case t.Kind() == reflect.Bool:
		if n.Kind == yaml.ScalarNode {
			switch strings.ToLower(n.Value) {
			case "yes", "on", "y":
				n.Value, n.Tag, n.Style = "true", "!!bool", 0
			case "no", "off", "n":
				n.Value, n.Tag, n.Style = "false", "!!bool", 0
			}
		}
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) && n.Kind != yaml.MappingNode {
		return nil // a type with a short form of its own (a budget as "5/day")
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder says what is wrong
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			f, ok := fields[key.Value]
			if !ok {
				return unknownKey(key, path, fields)
			}
			if err := checkNode(val, f, join(path, key.Value)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkNode(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, item := range n.Content {
			if err := checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML keys to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		out[tag] = f.Type
	}
	return out
}

func unknownKey(key *yaml.Node, path string, fields map[string]reflect.Type) error {
	where := "at the top level"
	if path != "" {
		where = "in " + path
	}
	msg := fmt.Sprintf("line %d: unknown key %q %s", key.Line, key.Value, where)
	if best := closest(key.Value, fields); best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Errorf("%s", msg)
}

// closest returns the known key nearest to s, if it is near enough to be
// a typo: an edit distance of at most a third of its length (at least 1,
// at most 3), or the same key in another case or with '-' for '_'.
func closest(s string, fields map[string]reflect.Type) string {
	norm := strings.ReplaceAll(strings.ToLower(s), "-", "_")
	best, bestD := "", 4
	for k := range fields {
		if k == norm {
			return k
		}
		d := editDistance(norm, k)
		if d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	if limit := min(max(len(s)/3, 1), 3); bestD > limit {
		return ""
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (adjacent swaps count
// once: "transprot" is one edit from "transport").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
