package drift_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestInterpolate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SET": "v", "EMPTY": ""}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	for _, tc := range []struct {
		name, in, want string
		refs           []string
		err            bool
	}{
		{name: "plain", in: "redis:6379", want: "redis:6379"},
		{name: "escaped dollar", in: "a$$b", want: "a$b"},
		{name: "bare", in: "x$SET-y", want: "xv-y", refs: []string{"SET"}},
		{name: "braced", in: "${SET}", want: "v", refs: []string{"SET"}},
		{name: "unset is empty", in: "<${NOPE}>", want: "<>", refs: []string{"NOPE"}},
		{name: "default when empty", in: "${EMPTY:-d}", want: "d", refs: []string{"EMPTY"}},
		{name: "dash keeps empty", in: "${EMPTY-d}", want: "", refs: []string{"EMPTY"}},
		{name: "default when unset", in: "${NOPE-d}", want: "d", refs: []string{"NOPE"}},
		{name: "nested default", in: "${NOPE:-${SET}x}", want: "vx", refs: []string{"NOPE", "SET"}},
		{name: "required and set", in: "${SET:?why}", want: "v", refs: []string{"SET"}},
		{name: "required and empty", in: "${EMPTY:?why}", err: true},
		{name: "question allows empty", in: "${EMPTY?why}", want: "", refs: []string{"EMPTY"}},
		{name: "required and unset", in: "${NOPE?why}", err: true},
		{name: "alt when set", in: "${SET:+alt}", want: "alt", refs: []string{"SET"}},
		{name: "alt when empty", in: "${EMPTY:+alt}", want: "", refs: []string{"EMPTY"}},
		{name: "plus when empty but set", in: "${EMPTY+alt}", want: "alt", refs: []string{"EMPTY"}},
		{name: "unterminated", in: "${SET", err: true},
		{name: "trailing dollar", in: "a$", err: true},
		{name: "dollar digit", in: "$1", err: true},
		{name: "bad name", in: "${1A}", err: true},
		{name: "bad operator", in: "${SET=x}", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, refs, err := interpolate(tc.in, lookup)
			if tc.err {
				if err == nil {
					t.Fatalf("%q: no error, got %q", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%q = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			var names []string
			for _, r := range refs {
				names = append(names, r.Name)
			}
			if !slices.Equal(names, tc.refs) {
				t.Errorf("%q refers to %v, want %v", tc.in, names, tc.refs)
			}
		})
	}
}

// escape is what a compose file writes for a literal s.
func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func FuzzInterpolate(f *testing.F) {
	for _, s := range []string{"", "a$$b", "${A:-${B:?x}}", "$A$B", "${A:+${A}}", "redis://:${P:?set P}@redis:6379/0", "${", "}${}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lookup := func(name string) (string, bool) { return strings.ToLower(name), len(name)%2 == 0 }
		// Anything: an answer or an error, never a panic or a hang.
		got, refs, err := interpolate(s, lookup)
		if err == nil && !strings.Contains(s, "$") && (got != s || len(refs) != 0) {
			t.Fatalf("%q has no $ but became %q with %v", s, got, refs)
		}
		// A literal written the compose way comes back unchanged.
		back, refs, err := interpolate(escape(s), lookup)
		if err != nil || back != s || len(refs) != 0 {
			t.Fatalf("escape(%q) = %q: %q, %v, %v", s, escape(s), back, refs, err)
		}
	})
}

func TestParseEnvFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      bool
	}{
		{name: "names and comments", in: "# c\n\nA=1\nB_2=\n", want: map[string]string{"A": "1", "B_2": ""}},
		{name: "crlf", in: "A=x\r\n", want: map[string]string{"A": "x"}},
		{name: "value with equals", in: "U=redis://h?a=b", want: map[string]string{"U": "redis://h?a=b"}},
		{name: "no equals", in: "A\n", err: true},
		{name: "export", in: "export A=1\n", err: true},
		{name: "quoted", in: "A=\"1\"\n", err: true},
		{name: "trailing comment", in: "A=1 # one\n", err: true},
		{name: "dollar", in: "A=$B\n", err: true},
		{name: "space after equals", in: "A= 1\n", err: true},
		{name: "twice", in: "A=1\nA=2\n", err: true},
		{name: "digit first", in: "1A=1\n", err: true},
		{name: "carriage return inside", in: "A=0\r0\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, got, err := parseEnvFile(tc.in)
			if tc.err != (err != nil) {
				t.Fatalf("%q: error %v", tc.in, err)
			}
			if !tc.err && !maps.Equal(got, tc.want) {
				t.Errorf("%q = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"", "A=1\n# c\nB=\n", "A=1\r\nB=2", "A\n", "x=y=z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, values, err := parseEnvFile(s)
		if err != nil {
			return
		}
		if len(names) != len(values) {
			t.Fatalf("%d names, %d values", len(names), len(values))
		}
		// Written back one NAME=value a line, it reads the same.
		var b strings.Builder
		for _, n := range names {
			if !validEnvName(n) || strings.ContainsAny(values[n], "\r\n") {
				t.Fatalf("%q: name %q, value %q", s, n, values[n])
			}
			b.WriteString(n + "=" + values[n] + "\n")
		}
		names2, values2, err := parseEnvFile(b.String())
		if err != nil || !slices.Equal(names, names2) || !maps.Equal(values, values2) {
			t.Fatalf("%q: written back as %q, read %v %v, %v", s, b.String(), names2, values2, err)
		}
	})
}

func TestLogicalLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in     string
		continuation bool
		want         []string
	}{
		{name: "comments and blanks", in: "# a\n\n  x y  \n\t# b\nz", want: []string{"x y", "z"}},
		{name: "no continuation", in: "a \\\nb", want: []string{`a \`, "b"}},
		{name: "continuation", in: "ENV A=1 \\\n    B=2\nUSER x", continuation: true, want: []string{"ENV A=1  B=2", "USER x"}},
		{name: "comment inside continuation", in: "RUN a \\\n# why\n  b", continuation: true, want: []string{"RUN a  b"}},
		{name: "continued to the end", in: "RUN a \\", continuation: true, want: []string{"RUN a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := logicalLines(tc.in, tc.continuation); !slices.Equal(got, tc.want) {
				t.Errorf("%q = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzLogicalLines(f *testing.F) {
	f.Add("FROM x\nENV A=1 \\\n  B=2\n# c\n", true)
	f.Add("{\n\tauto_https off\n}\n:8080 {\n}", false)
	f.Fuzz(func(t *testing.T, s string, continuation bool) {
		lines := logicalLines(s, continuation)
		if len(lines) > strings.Count(s, "\n")+1 {
			t.Fatalf("%d lines out of %d", len(lines), strings.Count(s, "\n")+1)
		}
		for _, l := range lines {
			if l == "" || l != strings.TrimSpace(l) || strings.Contains(l, "\n") || strings.HasPrefix(l, "#") {
				t.Fatalf("%q gave the line %q", s, l)
			}
			if !continuation && !strings.Contains(s, l) {
				t.Fatalf("%q gave %q, which it does not hold", s, l)
			}
		}
	})
}

func TestQuantities(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		gomem    bool
		want     int64
		err      bool
	}{
		{name: "milli cpu", in: "100m", want: 100},
		{name: "whole cpu", in: "1", want: 1000},
		{name: "mebibytes", in: "512Mi", want: 512 << 20 * 1000},
		{name: "megabytes", in: "64M", want: 64e6 * 1000},
		{name: "fraction refused", in: "0.5", err: true},
		{name: "unknown suffix", in: "5X", err: true},
		{name: "empty", in: "", err: true},
		{name: "overflow", in: "9223372036854775807Gi", err: true},
		{name: "gomemlimit MiB", in: "450MiB", gomem: true, want: 450 << 20},
		{name: "gomemlimit bytes", in: "1024", gomem: true, want: 1024},
		{name: "gomemlimit Mi is not Go's", in: "450Mi", gomem: true, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parse := parseQuantity
			if tc.gomem {
				parse = parseGoMemLimit
			}
			got, err := parse(tc.in)
			if tc.err != (err != nil) || got != tc.want {
				t.Errorf("%q = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func FuzzQuantity(f *testing.F) {
	for _, s := range []string{"100m", "1", "512Mi", "450MiB", "", "9223372036854775807Ti"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (int64, error){parseQuantity, parseGoMemLimit} {
			if n, err := parse(s); err == nil && (n < 0 || s == "" || s[0] < '0' || s[0] > '9') {
				t.Fatalf("%q = %d", s, n)
			}
		}
	})
}
