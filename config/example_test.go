package config_test

// The documented example (deploy/config.example.yaml) is part of the
// interface: these tests keep it loadable, valid, compilable and complete,
// so that it cannot silently fall behind the settings.

import (
	"errors"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
)

const examplePath = "../deploy/config.example.yaml"

// refuse is the transport of the compiled example: compiling must send
// nothing, so any use of it is an error the test reports.
type refuse struct{ t *testing.T }

var _ http.RoundTripper = refuse{}

func (r refuse) RoundTrip(req *http.Request) (*http.Response, error) {
	r.t.Errorf("compiling the example sent a request to %s", req.URL.Host)
	return nil, errors.New("no network in this test")
}

// fakeEnv answers every env:NAME the example names with a distinct
// made-up secret, and "" for anything else, recording what was asked.
type fakeEnv struct {
	named map[string]string
	mu    sync.Mutex
	asked map[string]bool
}

func newFakeEnv(t *testing.T, text string) *fakeEnv {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatal(err)
	}
	e := &fakeEnv{named: map[string]string{}, asked: map[string]bool{}}
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if name, ok := strings.CutPrefix(n.Value, "env:"); ok && n.Kind == yaml.ScalarNode {
			e.named[name] = "fake-" + strings.ToLower(name) + "-0123456789abcdef"
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return e
}

func (e *fakeEnv) getenv(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.asked[name] = true
	return e.named[name]
}

func readExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestExampleLoadsValidatesAndCompiles reads the example as llmproxy
// does (the strict loader, Validate) and compiles it into a gateway
// snapshot with the environment its comments ask for.
func TestExampleLoadsValidatesAndCompiles(t *testing.T) {
	t.Parallel()
	text := readExample(t)
	cfg, err := config.Load(examplePath)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	env := newFakeEnv(t, text)
	snap, err := gateway.Compile(cfg, gateway.Deps{
		Transport: func(string, string) http.RoundTripper { return refuse{t} },
		Guarded:   refuse{t},
		Health:    gateway.NewHealth(),
		Getenv:    env.getenv,
	})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	// A warning (no client credential, a budget that cannot count a
	// model's cost, …) means the example teaches a mistake.
	for _, w := range snap.Warnings {
		t.Errorf("warning: %s", w)
	}

	// Every env:NAME in the file sits where llmproxy resolves it: an
	// env: string anywhere else would be sent or compared literally.
	if len(env.named) == 0 {
		t.Fatal("the example names no env:NAME secret")
	}
	for name := range env.named {
		if !env.asked[name] {
			t.Errorf("env:%s is never read: it is not in a keys list or a client key", name)
		}
	}

	// What the example promises in its comments.
	if !snap.On() {
		t.Error("the gateway has no providers")
	}
	if p := snap.Preset("openai"); p == nil || !p.Keyed() {
		t.Error("the openai preset holds no server-side key")
	}
	if snap.Preset("vllm") == nil {
		t.Error("the new preset's alias /vllm does not reach it")
	}
	kinds := map[gateway.Kind]bool{}
	for _, p := range snap.Providers() {
		kinds[p.Kind] = true
	}
	for _, k := range []gateway.Kind{gateway.KindOpenAI, gateway.KindAnthropic, gateway.KindGemini} {
		if !kinds[k] {
			t.Errorf("no provider of kind %s", k)
		}
	}
	if names := cfg.Providers["anthropic"].KeyNames; !slices.Equal(names, []string{"main", "backup"}) {
		t.Errorf("the anthropic provider's keys are named %q, want main and backup", names)
	}
	var brain *gateway.Route
	for _, r := range snap.Routes() {
		if r.Name == "super-brain" {
			brain = r
		}
	}
	if brain == nil || brain.Strategy != gateway.Strategy("fallback") || brain.Info.Pricing == nil || brain.Info.DisplayName == "" {
		t.Errorf("super-brain is not a priced fallback route with metadata: %+v", brain)
	}
	keys := snap.Keys().List()
	if len(keys) != len(cfg.ClientKeys) || len(keys) == 0 {
		t.Fatalf("%d client keys compiled from %d", len(keys), len(cfg.ClientKeys))
	}
	var limited bool
	for _, k := range keys {
		if k.Budget != nil && !k.Expires.IsZero() && k.RPM > 0 {
			limited = true
		}
	}
	if !limited {
		t.Error("no client key shows a budget, an expiry and a limit together")
	}
}

// TestExampleHasEverySetting walks config.Config's YAML keys, nested
// structs, map entries (providers, models, presets) and list items
// (client_keys, targets) included, and wants each in the example at its
// own place, with a comment at its first appearance.
func TestExampleHasEverySetting(t *testing.T) {
	t.Parallel()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(readExample(t)), &root); err != nil {
		t.Fatal(err)
	}
	want := settingPaths(reflect.TypeFor[config.Config](), "")
	if len(want) < 80 { // the walk itself must not go blind
		t.Fatalf("only %d settings found in config.Config: %v", len(want), want)
	}
	seen := map[string]bool{}      // path → present
	commented := map[string]bool{} // path → has a comment somewhere
	walkExample(root.Content[0], reflect.TypeFor[config.Config](), "", seen, commented)
	for _, p := range want {
		switch {
		case !seen[p]:
			t.Errorf("setting %s is missing from %s", p, examplePath)
		case !commented[p]:
			t.Errorf("setting %s has no comment in %s", p, examplePath)
		}
	}
}

// A field of a test-only type makes sure the walk sees every shape the
// real configuration uses.
func TestSettingPathsWalk(t *testing.T) {
	t.Parallel()
	type leafStruct struct{ When time.Time }
	type inner struct {
		A     string  `yaml:"a"`
		Skip  string  `yaml:"-"`
		Ptr   *inner2 `yaml:"ptr"`
		NoTag int
	}
	type outer struct {
		In    inner             `yaml:"in"`
		ByKey map[string]inner2 `yaml:"by_key"`
		List  []inner2          `yaml:"list"`
		Any   map[string]any    `yaml:"any"`
		Time  time.Time         `yaml:"time"`
		Leaf  leafStruct        `yaml:"leaf,omitempty"`
	}
	got := settingPaths(reflect.TypeFor[outer](), "")
	want := []string{"any", "by_key", "by_key.*.b", "in", "in.a", "in.notag", "in.ptr", "in.ptr.b",
		"leaf", "leaf.when", "list", "list[].b", "time"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("paths\n got %v\nwant %v", got, want)
	}
}

type inner2 struct {
	B int `yaml:"b"`
}

// yamlName is a field's YAML key as go.yaml.in/yaml/v3 reads it.
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return "", false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, true
}

// settingPaths lists every YAML key under t: "a.b" for nested structs,
// "a.*.b" inside maps, "a[].b" inside lists.
func settingPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := yamlName(f)
		if !ok {
			continue
		}
		p := join(prefix, name)
		out = append(out, p)
		if st, suffix := structBelow(f.Type); st != nil {
			out = append(out, settingPaths(st, p+suffix)...)
		}
	}
	return out
}

// structBelow finds the struct a field holds (through pointers, maps and
// slices), with the path suffix that leads to it; nil for leaves, which
// include structs without YAML keys of their own such as time.Time.
func structBelow(t reflect.Type) (reflect.Type, string) {
	suffix := ""
	for {
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Map:
			t, suffix = t.Elem(), suffix+".*"
		case reflect.Slice:
			t, suffix = t.Elem(), suffix+"[]"
		case reflect.Struct:
			if t.PkgPath() == "time" {
				return nil, ""
			}
			return t, suffix
		default:
			return nil, ""
		}
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// walkExample marks the setting paths present in the example's node tree
// (and those with a comment), following the type as the decoder would.
func walkExample(n *yaml.Node, t reflect.Type, prefix string, seen, commented map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.StructField{}
		for i := range t.NumField() {
			if name, ok := yamlName(t.Field(i)); ok {
				fields[name] = t.Field(i)
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			f, ok := fields[key.Value]
			if !ok {
				continue // the strict loader refuses it; the other test says so
			}
			p := join(prefix, key.Value)
			seen[p] = true
			if key.HeadComment+key.LineComment+val.HeadComment+val.LineComment != "" {
				commented[p] = true
			}
			walkExample(val, f.Type, p, seen, commented)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			walkExample(n.Content[i], t.Elem(), prefix+".*", seen, commented)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			walkExample(item, t.Elem(), prefix+"[]", seen, commented)
		}
	}
}

// LOAD_BALANCING_STRATEGY takes every strategy the gateway knows: config
// keeps its own list (it cannot import gateway), which must not fall
// behind.
func TestSeedStrategiesAreTheGateways(t *testing.T) {
	for _, st := range gateway.Strategies {
		c := config.Default()
		env := map[string]string{"DEFAULT_OPENAI_PROVIDER": "https://a.example", "LOAD_BALANCING_STRATEGY": string(st)}
		if err := c.ApplySeedEnv(func(name string) string { return env[name] }); err != nil {
			t.Errorf("LOAD_BALANCING_STRATEGY=%s: %v", st, err)
		} else if got := c.Models["*"].Strategy; got != string(st) {
			t.Errorf("LOAD_BALANCING_STRATEGY=%s: strategy %s", st, got)
		}
	}
}
