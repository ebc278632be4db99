// Package drift_test keeps the deployment files in deploy/ true to the code
// they deploy: the variables llmproxy reads, the port it listens on, its
// shutdown timeout, the image's health check, and the placeholders it
// refuses. Every test reads the files as they are in the repository;
// nothing here needs docker, kubectl or a network.
package drift_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llmproxy/llmproxy/config"
)

// Paths from this package's directory.
const (
	root          = "../.."
	deployDir     = "../"
	composePath   = "../docker-compose.yml"
	envExample    = "../.env.example"
	caddyfilePath = "../Caddyfile"
	k8sDir        = "../kubernetes"
	dockerfile    = "../../Dockerfile"
)

// goRuntimeEnv are variables the Go runtime reads, not llmproxy; a
// manifest may set them for the process.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true, "GODEBUG": true, "GOTRACEBACK": true}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// ---------------------------------------------------------------- what llmproxy reads

// llmproxyEnv returns the environment variables llmproxy reads, found in
// its source: the env column of cmd/llmproxy/flags.go's settings table,
// and every Getenv/LookupEnv (os.Getenv, or a getenv parameter such as
// config.ApplySeedEnv's) whose argument is a string literal or constant,
// in cmd/llmproxy and config. The value says where each was found.
func llmproxyEnv(t *testing.T) map[string]string {
	t.Helper()
	found := map[string]string{}
	for _, dir := range []string{"cmd/llmproxy", "config"} {
		files := parseGoDir(t, filepath.Join(root, dir))
		consts := map[string]string{}
		for _, f := range files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if v, ok := stringLit(vs.Values[i]); ok {
								consts[n.Name] = v
							}
						}
					}
				}
			}
		}
		for name, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ValueSpec: // var settings = []setting{{flag, env, key}, …}
					for i, id := range n.Names {
						if id.Name != "settings" || i >= len(n.Values) {
							continue
						}
						lit, ok := n.Values[i].(*ast.CompositeLit)
						if !ok {
							continue
						}
						for _, e := range lit.Elts {
							if row, ok := e.(*ast.CompositeLit); ok && len(row.Elts) == 3 {
								if env, ok := stringLit(row.Elts[1]); ok {
									found[env] = dir + "/" + name + ": settings"
								}
							}
						}
					}
				case *ast.CallExpr:
					var fn string
					switch f := n.Fun.(type) {
					case *ast.Ident:
						fn = f.Name
					case *ast.SelectorExpr:
						fn = f.Sel.Name
					}
					if (strings.EqualFold(fn, "getenv") || strings.EqualFold(fn, "lookupenv")) && len(n.Args) == 1 {
						v, ok := stringLit(n.Args[0])
						if id, isID := n.Args[0].(*ast.Ident); isID {
							v, ok = consts[id.Name]
						}
						if ok {
							found[v] = dir + "/" + name + ": " + fn
						}
					}
				}
				return true
			})
		}
	}
	// The walk must not go blind: one name from each kind of source.
	for _, want := range []string{"LLMPROXY_LISTEN", "LLMPROXY_SECRET_KEY", "PROXY_AUTH_TOKEN"} {
		if found[want] == "" {
			t.Fatalf("the source walk did not find %s (found %v)", want, found)
		}
	}
	return found
}

func parseGoDir(t *testing.T, dir string) map[string]*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	files := map[string]*ast.File{}
	fset := token.NewFileSet()
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(n)] = f
	}
	return files
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// ---------------------------------------------------------------- the image

// image is what the top-level Dockerfile's final stage gives a container.
type image struct {
	env         map[string]string
	volumes     []string
	entrypoint  []string
	healthcheck []string // the CMD of HEALTHCHECK
}

func readImage(t *testing.T) image {
	t.Helper()
	lines := logicalLines(readFile(t, dockerfile), true)
	last := -1
	for i, l := range lines {
		if instr(l) == "FROM" {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("the Dockerfile has no FROM")
	}
	img := image{env: map[string]string{}}
	for _, l := range lines[last+1:] {
		_, args, _ := strings.Cut(l, " ")
		args = strings.TrimSpace(args)
		switch instr(l) {
		case "ENV":
			for _, kv := range strings.Fields(args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %q is not NAME=value", kv)
				}
				img.env[k] = v
			}
		case "VOLUME":
			img.volumes = append(img.volumes, jsonArray(t, args)...)
		case "ENTRYPOINT":
			img.entrypoint = jsonArray(t, args)
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(args, " CMD ")
			if !ok {
				t.Fatalf("Dockerfile: HEALTHCHECK without CMD: %s", args)
			}
			img.healthcheck = jsonArray(t, cmd)
		}
	}
	if len(img.entrypoint) == 0 || len(img.healthcheck) == 0 {
		t.Fatalf("Dockerfile: no ENTRYPOINT or HEALTHCHECK in the final stage: %+v", img)
	}
	return img
}

func instr(line string) string {
	word, _, _ := strings.Cut(line, " ")
	return strings.ToUpper(word)
}

func jsonArray(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &out); err != nil {
		t.Fatalf("Dockerfile: %q is not a JSON array (the exec form): %v", s, err)
	}
	return out
}

// ---------------------------------------------------------------- llmproxy's configuration

// mounted is a configuration file as a container sees it.
type mounted struct {
	where string // for messages
	text  string
	cfg   *config.Config
}

// loadConfig reads a configuration as llmproxy does and validates it.
func loadConfig(t *testing.T, where, text string) mounted {
	t.Helper()
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	return mounted{where: where, text: text, cfg: cfg}
}

// envRefs lists the env:NAME values of a configuration: the variables
// that must be set for llmproxy to start with it.
func (m mounted) envRefs(t *testing.T) []string {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(m.text), &root); err != nil {
		t.Fatal(err)
	}
	var names []string
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if name, ok := strings.CutPrefix(n.Value, "env:"); ok && n.Kind == yaml.ScalarNode {
			names = append(names, name)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return names
}

// effective is a setting as llmproxy sees it in a container: the
// container's variable beats the image's, which beats the file's (flag
// beats env beats file; see cmd/llmproxy/flags.go).
func effective(name string, containerEnv map[string]string, img image, fileValue string) string {
	if v, ok := containerEnv[name]; ok && v != "" {
		return v
	}
	if v, ok := img.env[name]; ok && v != "" {
		return v
	}
	return fileValue
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return n
}

// ---------------------------------------------------------------- YAML

// decodeAll reads every document of a YAML file.
func decodeAll[T any](t *testing.T, path string) []T {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, path)))
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
}

// str is a YAML scalar as text, whatever its tag (compose takes numbers
// and booleans where it means strings).
type str string

func (s *str) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a scalar", n.Line)
	}
	*s = str(n.Value)
	return nil
}

// strList is a string or a list of strings (compose's env_file, a
// healthcheck's test, a command).
type strList []string

func (l *strList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strList{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*l = list
	return nil
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

func urlHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		// Not err: *url.Error prints the whole URL, password included.
		t.Fatal("a URL that does not parse")
	}
	return u.Hostname()
}
