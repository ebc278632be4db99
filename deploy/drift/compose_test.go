package drift_test

import (
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The subset of the Compose Specification docker-compose.yml uses.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Build           yaml.Node                             `yaml:"build"`
	Image           string                                `yaml:"image"`
	EnvFile         strList                               `yaml:"env_file"`
	Environment     map[string]str                        `yaml:"environment"`
	Volumes         []string                              `yaml:"volumes"`
	Ports           []string                              `yaml:"ports"`
	DependsOn       map[string]struct{ Condition string } `yaml:"depends_on"`
	Healthcheck     *healthcheck                          `yaml:"healthcheck"`
	StopGracePeriod string                                `yaml:"stop_grace_period"`
	ReadOnly        bool                                  `yaml:"read_only"`
}

type healthcheck struct {
	Test    strList `yaml:"test"`
	Disable bool    `yaml:"disable"`
}

// checks reports whether the health check runs a command.
func (h *healthcheck) checks() bool {
	return h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// marker stands for every variable's value when a compose value is
// expanded: what is left once it is removed was written in the file.
const marker = "\x00var\x00"

func markerLookup(string) (string, bool) { return marker, true }

// env is the service's environment with compose's variables expanded to
// marker.
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range s.Environment {
		x, _, err := interpolate(string(v), markerLookup)
		if err != nil {
			t.Fatalf("environment %s: %v", k, err)
		}
		out[k] = x
	}
	return out
}

// buildsRepository reports whether the service is built from the
// repository's own Dockerfile.
func (s composeService) buildsRepository(t *testing.T) bool {
	t.Helper()
	context, file := "", "Dockerfile"
	switch s.Build.Kind {
	case 0:
		return false
	case yaml.ScalarNode:
		context = s.Build.Value
	default:
		var b struct{ Context, Dockerfile string }
		if err := s.Build.Decode(&b); err != nil {
			t.Fatal(err)
		}
		context = b.Context
		if b.Dockerfile != "" {
			file = b.Dockerfile
		}
	}
	return filepath.Clean(filepath.Join(deployDir, context, file)) == filepath.Clean(dockerfile)
}

// compose is docker-compose.yml with what the checks derive from it.
type compose struct {
	composeFile
	replicas []string // the services built from the repository, sorted
	img      image
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	docs := decodeAll[composeFile](t, composePath)
	if len(docs) != 1 {
		t.Fatalf("%s holds %d documents", composePath, len(docs))
	}
	c := compose{composeFile: docs[0], img: readImage(t)}
	for name, s := range c.Services {
		if s.buildsRepository(t) {
			c.replicas = append(c.replicas, name)
		}
	}
	sort.Strings(c.replicas)
	if len(c.replicas) != 3 {
		t.Fatalf("%d services are built from the repository's Dockerfile (%v), want 3 replicas", len(c.replicas), c.replicas)
	}
	return c
}

// config is the configuration file a replica mounts where LLMPROXY_CONFIG
// points, loaded and validated as llmproxy does; it must be mounted
// read-only.
func (c compose) config(t *testing.T, name string) mounted {
	t.Helper()
	s := c.Services[name]
	path := s.env(t)["LLMPROXY_CONFIG"]
	if path == "" {
		t.Fatalf("%s: LLMPROXY_CONFIG is not set: llmproxy would run on its defaults", name)
	}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || parts[1] != path {
			continue
		}
		if len(parts) != 3 || parts[2] != "ro" {
			t.Errorf("%s: %s is not mounted read-only (:ro)", name, path)
		}
		host := filepath.Join(deployDir, parts[0])
		return loadConfig(t, host, readFile(t, host))
	}
	t.Fatalf("%s: nothing is mounted at LLMPROXY_CONFIG=%s", name, path)
	return mounted{}
}

// listenPort is the port a replica's llmproxy listens on, and the
// configuration file must agree with it (the variable would silently
// override the file).
func (c compose) listenPort(t *testing.T, name string) int {
	t.Helper()
	m := c.config(t, name)
	eff := effective("LLMPROXY_LISTEN", c.Services[name].env(t), c.img, m.cfg.Listen)
	if port(t, eff) != port(t, m.cfg.Listen) {
		t.Errorf("%s: llmproxy listens on %s (LLMPROXY_LISTEN), but %s says listen: %s", name, eff, m.where, m.cfg.Listen)
	}
	return port(t, eff)
}

// TestComposeReplicas: three replicas of the repository's image, each with
// the image's health check, a stop grace period longer than the shutdown
// timeout of the config it mounts, and nothing published of its own.
func TestComposeReplicas(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	wantCheck := append([]string{"CMD"}, c.img.healthcheck...)
	var images []string
	for _, name := range c.replicas {
		s := c.Services[name]
		images = append(images, s.Image)
		if s.Healthcheck != nil && !slices.Equal(s.Healthcheck.Test, wantCheck) {
			t.Errorf("%s: health check %q, want the image's %q", name, s.Healthcheck.Test, wantCheck)
		}
		m := c.config(t, name)
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil {
			t.Errorf("%s: stop_grace_period %q: %v (compose's default, 10s, would cut the drain)", name, s.StopGracePeriod, err)
		} else if grace <= m.cfg.Timeouts.Shutdown {
			t.Errorf("%s: stop_grace_period %s is not longer than timeouts.shutdown %s of %s", name, grace, m.cfg.Timeouts.Shutdown, m.where)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s publishes %v: only the balancer should", name, s.Ports)
		}
		if s.ReadOnly {
			dir := effective("LLMPROXY_DATA_DIR", s.env(t), c.img, m.cfg.DataDir)
			writable := slices.Contains(c.img.volumes, dir)
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				writable = writable || len(parts) >= 2 && parts[1] == dir && (len(parts) == 2 || parts[2] != "ro")
			}
			if !writable {
				t.Errorf("%s: read_only, and its data dir %s is no volume", name, dir)
			}
		}
	}
	if uniq := slices.Compact(slices.Sorted(slices.Values(images))); len(uniq) != 1 || uniq[0] == "" {
		t.Errorf("the replicas do not run one named image: %q", images)
	}
}

// TestComposeSharedState: every replica is given the Redis and PostgreSQL
// URLs, in a form llmproxy accepts, pointing at services it waits for
// until they are healthy.
func TestComposeSharedState(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	for _, name := range c.replicas {
		env := c.Services[name].env(t)
		cfg := c.config(t, name).cfg
		for _, v := range []string{"LLMPROXY_REDIS_URL", "LLMPROXY_DATABASE_URL"} {
			raw := env[v]
			if raw == "" {
				t.Errorf("%s: %s is not set: each replica would keep its own", name, v)
				continue
			}
			// The password is a variable; anything else must pass Validate.
			u := strings.ReplaceAll(raw, marker, "pw")
			cfg.RedisURL, cfg.DatabaseURL = "", ""
			if v == "LLMPROXY_REDIS_URL" {
				cfg.RedisURL = u
			} else {
				cfg.DatabaseURL = u
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("%s: %s: %v", name, v, err)
			}
			host := urlHost(t, u)
			dep, ok := c.Services[host]
			switch {
			case !ok:
				t.Errorf("%s: %s names host %q, which is no service", name, v, host)
			case !dep.Healthcheck.checks():
				t.Errorf("service %s has no health check for depends_on to wait on", host)
			case c.Services[name].DependsOn[host].Condition != "service_healthy":
				t.Errorf("%s does not wait for %s to be healthy (depends_on … condition: service_healthy)", name, host)
			}
		}
	}
}

// TestComposeBalancer: only the balancer is published, on loopback by
// default, and it sends to exactly the replicas, on the port llmproxy
// listens on, checking /health.
func TestComposeBalancer(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	caddy := readCaddyfile(t)
	var published []string
	for name, s := range c.Services {
		if len(s.Ports) > 0 {
			published = append(published, name)
		}
	}
	if len(published) != 1 {
		t.Fatalf("services publishing ports: %v, want the balancer alone", published)
	}
	bal := c.Services[published[0]]
	mountsCaddyfile := false
	for _, v := range bal.Volumes {
		src, _, _ := strings.Cut(v, ":")
		mountsCaddyfile = mountsCaddyfile || filepath.Clean(filepath.Join(deployDir, src)) == filepath.Clean(caddyfilePath)
	}
	if !mountsCaddyfile {
		t.Errorf("the published service %s does not mount %s", published[0], caddyfilePath)
	}
	for _, p := range bal.Ports {
		// As published when .env sets nothing.
		spec, _, err := interpolate(p, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("ports %q: %v", p, err)
		}
		i := strings.LastIndexByte(spec, ':')
		host, cport := spec[:max(i, 0)], spec[i+1:]
		if ip, err := netip.ParseAddrPort(host); err != nil || !ip.Addr().IsLoopback() {
			t.Errorf("ports %q publishes on %q by default, want 127.0.0.1:PORT (a TLS front goes before it)", p, host)
		}
		if !slices.Contains(caddy.sitePorts(t), atoi(t, cport)) {
			t.Errorf("ports %q: container port %s is not where the Caddyfile listens (%v)", p, cport, caddy.sites)
		}
	}

	var want []string
	for _, name := range c.replicas {
		want = append(want, name+":"+itoa(c.listenPort(t, name)))
	}
	got := slices.Sorted(slices.Values(caddy.upstreams))
	if !slices.Equal(got, want) {
		t.Errorf("the Caddyfile's upstreams are %v, want the replicas %v", got, want)
	}
	if caddy.healthURI != "/health" {
		t.Errorf("the Caddyfile's health_uri is %q, want /health", caddy.healthURI)
	}
	// /health says "degraded" with a 200: the check must take it.
	if s := caddy.healthStatus; s != "" && s != "200" && s != "2xx" {
		t.Errorf("health_status %s would take out a replica whose /health answers 200", s)
	}
}

// TestComposeEnvironment: the replicas are given only variables llmproxy
// (or the Go runtime) reads, their secrets only through the env file, and
// no value in the file looks like a key.
func TestComposeEnvironment(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	known := llmproxyEnv(t)
	for _, name := range c.replicas {
		s := c.Services[name]
		refs := c.config(t, name).envRefs(t)
		for v := range s.Environment {
			if known[v] == "" && !goRuntimeEnv[v] && !slices.Contains(refs, v) {
				t.Errorf("%s: llmproxy reads no %s (not in cmd/llmproxy/flags.go's settings, nor a Getenv, nor an env: of its config)", name, v)
			}
		}
		for _, secret := range append([]string{"AUTH_TOKEN", "ADMIN_PASSWORD", "LLMPROXY_SECRET_KEY"}, refs...) {
			if _, ok := s.Environment[secret]; ok {
				t.Errorf("%s: %s is written in the compose file; it belongs in the env file", name, secret)
			}
		}
		if !slices.Contains(s.EnvFile, ".env") {
			t.Errorf("%s: env_file %v does not read .env, where the secrets are", name, s.EnvFile)
		}
	}
	for name, s := range c.Services {
		for k, raw := range s.Environment {
			v, refs, err := interpolate(string(raw), markerLookup)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, k, err)
			}
			if looksLikeKey(strings.ReplaceAll(v, marker, "")) {
				t.Errorf("%s: %s holds what looks like a key", name, k)
			}
			// A secret with a default could start with the default.
			for _, r := range refs {
				if secretName(r.Name) && r.Op != ":?" {
					t.Errorf("%s: %s uses ${%s%s…}; a secret must be ${%s:?message}, refused when unset", name, k, r.Name, r.Op, r.Name)
				}
			}
		}
	}
}

// secretName reports whether a variable's name says it holds a secret.
func secretName(name string) bool {
	for _, w := range []string{"PASSWORD", "TOKEN", "SECRET", "KEY"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// composeVars lists the variables docker-compose.yml expands, with
// whether compose refuses to start without them.
func composeVars(t *testing.T) map[string]bool {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(readFile(t, composePath)), &root); err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			_, refs, err := interpolate(n.Value, markerLookup)
			if err != nil {
				t.Fatalf("%s line %d: %v", composePath, n.Line, err)
			}
			for _, r := range refs {
				vars[r.Name] = vars[r.Name] || r.Op == ":?" || r.Op == "?"
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return vars
}

// TestEnvExample: .env.example names every variable the compose setup
// needs and nothing llmproxy or compose would not read, and each of its
// values is refused as it stands.
func TestEnvExample(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	m := c.config(t, c.replicas[0])
	refs := m.envRefs(t)
	vars := composeVars(t)
	known := llmproxyEnv(t)
	names, values, err := parseEnvFile(readFile(t, envExample))
	if err != nil {
		t.Fatalf("%s: %v", envExample, err)
	}
	for _, n := range names {
		if known[n] == "" && !slices.Contains(refs, n) {
			if _, ok := vars[n]; !ok {
				t.Errorf("%s: %s is read by neither llmproxy, its config (%s) nor docker-compose.yml", envExample, n, m.where)
			}
		}
	}
	for _, n := range refs {
		if _, ok := values[n]; !ok {
			t.Errorf("%s: %s is missing; %s names env:%s", envExample, n, m.where, n)
		}
	}
	for v, required := range vars {
		if _, ok := values[v]; required && !ok {
			t.Errorf("%s: %s is missing; docker-compose.yml requires it", envExample, v)
		}
	}
	for _, n := range names {
		why := refusal(t, n, values[n], m, vars)
		if why == "" {
			// Not the value: it may be a real one.
			t.Errorf("%s: %s would be accepted: a copied example would start with it", envExample, n)
		}
		if looksLikeKey(values[n]) {
			t.Errorf("%s: %s holds what looks like a real key", envExample, n)
		}
	}
}

// ---------------------------------------------------------------- Caddyfile

type caddyfile struct {
	sites, upstreams        []string
	healthURI, healthStatus string
	reverseProxies          int
}

func readCaddyfile(t *testing.T) caddyfile {
	t.Helper()
	var c caddyfile
	for _, l := range logicalLines(readFile(t, caddyfilePath), false) {
		f := strings.Fields(l)
		switch {
		case f[0] == "reverse_proxy":
			c.reverseProxies++
			for _, u := range f[1:] {
				if u == "{" {
					break
				}
				c.upstreams = append(c.upstreams, u)
			}
		case f[0] == "health_uri" && len(f) == 2:
			c.healthURI = f[1]
		case f[0] == "health_status" && len(f) == 2:
			c.healthStatus = f[1]
		case len(f) == 2 && f[1] == "{" && f[0] != "transport":
			c.sites = append(c.sites, f[0])
		}
	}
	if c.reverseProxies != 1 {
		t.Fatalf("%s has %d reverse_proxy directives, want 1", caddyfilePath, c.reverseProxies)
	}
	return c
}

func (c caddyfile) sitePorts(t *testing.T) []int {
	t.Helper()
	var ports []int
	for _, s := range c.sites {
		ports = append(ports, port(t, s))
	}
	return ports
}
