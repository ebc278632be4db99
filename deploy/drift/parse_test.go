package drift_test

// The small readers these tests need for formats that have no parser in
// go.mod: compose's variable syntax, the .env files this directory writes,
// line-oriented files (Dockerfile, Caddyfile) and Kubernetes quantities.
// Each reads only the subset the deploy files use and refuses the rest,
// so that a file outside that subset fails the tests instead of being
// misread.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// logicalLines splits a line-oriented file into its instructions: blank
// lines and whole-line # comments dropped, each line trimmed. With
// continuation, a line ending in a backslash is joined to the next, as
// Dockerfile instructions are (comment lines inside one are skipped, as
// Docker does).
func logicalLines(text string, continuation bool) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for raw := range strings.SplitSeq(text, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if continuation && strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return out
}

// varRef is one variable a compose value refers to: ${Name}, or
// ${Name<Op><Arg>} with Op one of :- - :? ? :+ +.
type varRef struct {
	Name, Op, Arg string
}

// interpolate expands compose's variable syntax (the Compose
// Specification's "Interpolation" section) in s: $$ is a literal $, $NAME
// and ${NAME} the variable; ${NAME:-default} gives default when NAME is
// unset or empty (- when unset); ${NAME:?message} is an error when unset
// or empty (? when unset); ${NAME:+alt} gives alt when set and not empty
// (+ when set). Arguments are expanded in turn. lookup says whether a
// variable is set and to what. A $ followed by anything else is an error,
// as in compose.
func interpolate(s string, lookup func(string) (string, bool)) (string, []varRef, error) {
	var b strings.Builder
	var refs []varRef
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if i+1 == len(s) {
			return "", nil, errors.New("a $ at the end (write $$ for a literal $)")
		}
		switch c := s[i+1]; {
		case c == '$':
			b.WriteByte('$')
			i += 2
		case c == '{':
			end := closingBrace(s, i+1)
			if end < 0 {
				return "", nil, errors.New("${ without its }")
			}
			ref, err := splitRef(s[i+2 : end])
			if err != nil {
				return "", nil, err
			}
			refs = append(refs, ref)
			v, inner, err := expand(ref, lookup)
			if err != nil {
				return "", nil, err
			}
			refs = append(refs, inner...)
			b.WriteString(v)
			i = end + 1
		case nameStart(c):
			j := i + 1
			for j < len(s) && nameChar(s[j]) {
				j++
			}
			ref := varRef{Name: s[i+1 : j]}
			refs = append(refs, ref)
			v, _ := lookup(ref.Name)
			b.WriteString(v)
			i = j
		default:
			return "", nil, fmt.Errorf("$%c is not a variable (write $$ for a literal $)", c)
		}
	}
	return b.String(), refs, nil
}

// closingBrace is the index of the } that closes the { at open, counting
// the braces of nested ${…} in between; -1 when there is none.
func closingBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func splitRef(inner string) (varRef, error) {
	j := 0
	for j < len(inner) && nameChar(inner[j]) {
		j++
	}
	name, rest := inner[:j], inner[j:]
	if name == "" || !nameStart(name[0]) {
		return varRef{}, fmt.Errorf("${%s}: not a variable name", inner)
	}
	for _, op := range []string{":-", ":?", ":+", "-", "?", "+"} {
		if arg, ok := strings.CutPrefix(rest, op); ok {
			return varRef{Name: name, Op: op, Arg: arg}, nil
		}
	}
	if rest != "" {
		return varRef{}, fmt.Errorf("${%s}: unknown operator", inner)
	}
	return varRef{Name: name}, nil
}

func expand(ref varRef, lookup func(string) (string, bool)) (string, []varRef, error) {
	v, set := lookup(ref.Name)
	arg := func() (string, []varRef, error) { return interpolate(ref.Arg, lookup) }
	switch ref.Op {
	case ":-":
		if v == "" {
			return arg()
		}
	case "-":
		if !set {
			return arg()
		}
	case ":?", "?":
		if !set || ref.Op == ":?" && v == "" {
			msg, _, err := arg()
			if err != nil {
				return "", nil, err
			}
			return "", nil, fmt.Errorf("%s is required: %s", ref.Name, msg)
		}
	case ":+":
		if v != "" {
			return arg()
		}
		return "", nil, nil
	case "+":
		if set {
			return arg()
		}
		return "", nil, nil
	}
	return v, nil, nil
}

func nameStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func nameChar(c byte) bool { return nameStart(c) || c >= '0' && c <= '9' }

// validEnvName reports whether s is a variable name in the sense of POSIX
// (letters, digits, underscore, not starting with a digit).
func validEnvName(s string) bool {
	if s == "" || !nameStart(s[0]) {
		return false
	}
	for i := range len(s) {
		if !nameChar(s[i]) {
			return false
		}
	}
	return true
}

// parseEnvFile reads the .env format this directory writes: NAME=value
// lines, # comment lines and blank lines. Quotes, export, spaces around =
// and trailing comments are refused rather than guessed at: compose, the
// shell and Kubernetes' --from-env-file read them differently.
func parseEnvFile(text string) (names []string, values map[string]string, err error) {
	values = map[string]string{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("line %d: not NAME=value", n+1)
		case !validEnvName(name):
			return nil, nil, fmt.Errorf("line %d: %q is not a variable name", n+1, name)
		case strings.ContainsAny(value, "\"'`\\$") || strings.Contains(value, " #"):
			return nil, nil, fmt.Errorf("line %d: %s: quotes, $, backslashes and comments after a value are read differently by compose and the shell", n+1, name)
		case strings.TrimSpace(value) != value:
			return nil, nil, fmt.Errorf("line %d: %s: spaces around the value", n+1, name)
		case strings.ContainsFunc(value, func(r rune) bool { return r < ' ' || r == 0x7f }):
			return nil, nil, fmt.Errorf("line %d: %s: a control character in the value", n+1, name)
		}
		if _, dup := values[name]; dup {
			return nil, nil, fmt.Errorf("line %d: %s is set twice", n+1, name)
		}
		names = append(names, name)
		values[name] = value
	}
	return names, values, nil
}

// parseQuantity reads a Kubernetes resource quantity as the deploy files
// write them: an integer with an optional binary (Ki Mi Gi Ti) or decimal
// (k M G T) suffix, or m for thousandths. It returns thousandths of the
// unit, so that 100m and 1 compare (CPU), and bytes compare ×1000.
func parseQuantity(s string) (int64, error) {
	mult := map[string]int64{
		"m": 1, "": 1000,
		"k": 1000 * 1e3, "M": 1000 * 1e6, "G": 1000 * 1e9, "T": 1000 * 1e12,
		"Ki": 1000 << 10, "Mi": 1000 << 20, "Gi": 1000 << 30, "Ti": 1000 << 40,
	}
	return scaled(s, mult)
}

// parseGoMemLimit reads GOMEMLIMIT as the Go runtime does for the forms
// the deploy files use: bytes, or an integer with B, KiB, MiB, GiB or TiB.
func parseGoMemLimit(s string) (int64, error) {
	return scaled(s, map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40})
}

func scaled(s string, mult map[string]int64) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	m, ok := mult[s[i:]]
	if i == 0 || !ok {
		return 0, fmt.Errorf("%q: not an integer with a known suffix", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/m {
		return 0, fmt.Errorf("%q: out of range", s)
	}
	return n * m, nil
}
