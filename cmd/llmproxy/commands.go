package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/gateway"
)

// versionLines is what `llmproxy version` prints: the version, the commit
// it was built from and the Go that built it (from the build info when the
// binary was not stamped with -ldflags).
func versionLines() string {
	commit, when, dirty := "unknown", "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if dirty {
		commit += " (modified)"
	}
	if when != "" {
		commit += " " + when
	}
	return fmt.Sprintf("llmproxy %s\ncommit %s\n%s %s/%s\n", versionString(), commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// healthURL is where `llmproxy health` asks: the listen address, with an
// unspecified host read as loopback.
func healthURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://127.0.0.1:8080/health"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/health"
}

// health asks a running llmproxy for /health and exits 0 when it answers
// ok: a container health check that needs no shell or curl.
func health(c *cli.Context) error {
	url := c.String("url")
	if url == "" {
		cfg, err := loadConfig(c)
		if err != nil {
			return err
		}
		url = healthURL(cfg.Listen)
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usageError{fmt.Errorf("--url: %v", err)}
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return cli.Exit("llmproxy is not answering at "+url+": "+errors.Unwrap(err).Error(), exitFailure)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	// "degraded" still serves (e.g. on local counters while Redis is
	// away): healthy for a container's check, and printed as it is.
	if resp.StatusCode != http.StatusOK || body.Status != "ok" && body.Status != "degraded" {
		return cli.Exit(fmt.Sprintf("llmproxy at %s is not healthy: HTTP %d, status %q", url, resp.StatusCode, body.Status), exitFailure)
	}
	fmt.Fprintln(c.App.Writer, body.Status)
	return nil
}

// printPresets prints the preset table: the base URL that --preset
// NAME=URL replaces, and the base URL an SDK takes to reach the preset
// through this llmproxy.
func printPresets(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	set, err := cfg.PresetSet()
	if err != nil {
		return err
	}
	self := strings.TrimSuffix(healthURL(cfg.Listen), "/health")
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPATHS\tBASE URL (--preset NAME=URL)\tSDK BASE URL (through llmproxy)\tTRANSPORT\tKEY")
	for _, p := range set.All() {
		path := "/" + p.Name
		for _, a := range p.Aliases {
			path += ", /" + a
		}
		mode := cmp.Or(p.Transport, cfg.Transport)
		key := string(p.Key)
		if len(p.Keys) > 0 {
			key = "on the server (clients send a client key)"
		}
		for i, u := range p.URLs() {
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, path, u, self+"/"+p.Name+p.ClientPath, mode, key)
			} else {
				fmt.Fprintf(tw, "\t\t%s\t\t\t\n", u)
			}
		}
	}
	return tw.Flush()
}

// sampleHeaders are what a typical client sends: an SDK's own headers,
// what a browser or a CDN in front adds, and a credential.
var sampleHeaders = http.Header{
	"Authorization":     {"Bearer sk-client-sample-key-0000"},
	"Content-Type":      {"application/json"},
	"Accept":            {"application/json"},
	"Accept-Encoding":   {"gzip, br"},
	"Accept-Language":   {"de-DE"},
	"User-Agent":        {"OpenAI/Python 1.99.0"},
	"X-Stainless-Os":    {"Linux"},
	"X-Stainless-Lang":  {"python"},
	"Openai-Beta":       {"assistants=v2"},
	"Idempotency-Key":   {"sample-idempotency-key"},
	"X-Forwarded-For":   {"203.0.113.7"},
	"X-Real-Ip":         {"203.0.113.7"},
	"Cf-Connecting-Ip":  {"203.0.113.7"},
	"Cf-Ipcountry":      {"DE"},
	"Cookie":            {"session=abc"},
	"Origin":            {"https://app.example.com"},
	"Referer":           {"https://app.example.com/chat"},
	"Traceparent":       {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	"X-Request-Id":      {"req-123"},
	"Sec-Ch-Ua":         {`"Chromium";v="130"`},
	"Anthropic-Version": {"2023-06-01"},
}

// check validates the configuration without serving and, for a preset or
// a gateway model, shows exactly which request headers would reach the
// upstream for a sample request: the privacy promise, made visible. The
// sample goes through the same code as real requests, down to the
// transport, which records it instead of sending it.
func check(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	// serve reads the secret key when it opens the store: refuse what it
	// refuses.
	if wantsStore(cfg) {
		if _, err := secretKey(); err != nil {
			return err
		}
	}
	rec := &recorder{}
	deps := gateway.Deps{
		Transport: func(string, string) http.RoundTripper { return rec },
		Guarded:   rec,
		Health:    gateway.NewHealth(),
	}
	snap, err := gateway.Compile(cfg, deps)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "configuration OK: %d presets (%d with server-side keys), %d providers, %d model routes, %d client keys\n",
		len(snap.Presets()), countKeyed(snap.Presets()), len(snap.Providers()), len(snap.Routes()), len(snap.Keys().List()))
	for _, warning := range snap.Warnings {
		fmt.Fprintln(w, "warning:", warning)
	}
	if warning := exposure(cfg.Listen, cfg.AuthToken != "", cfg.PresetAuth, snap); warning != "" {
		fmt.Fprintln(w, "warning:", warning)
	}
	var req *http.Request
	var rt http.RoundTripper
	name := c.Args().First()
	switch {
	case c.Args().Len() > 1:
		return usageError{fmt.Errorf("check takes one preset or model name")}
	case name == "":
		return nil
	case snap.Preset(name) != nil:
		prov := snap.Preset(name)
		path := "/v1/chat/completions"
		if prov.Kind == gateway.KindAnthropic {
			path = "/v1/messages"
		}
		req = sampleRequest("/"+name+path, `{"model":"sample-model","messages":[{"role":"user","content":"hi"}]}`)
		caller := (*access.Caller)(nil)
		if prov.Keyed() {
			caller = access.OperatorCaller()
		}
		plan, err := snap.PresetPlan(req, prov, path, caller, cfg.MaxBodyBytes)
		if err != nil {
			return err
		}
		rt = plan
	default:
		model := name
		if !snap.On() {
			return usageError{fmt.Errorf("%q is no preset (llmproxy presets lists them), and the gateway has no models", name)}
		}
		req = sampleRequest("/v1/chat/completions", `{"model":"`+strings.ReplaceAll(model, `"`, ``)+`","messages":[{"role":"user","content":"hi"}]}`)
		call, _ := gateway.ParseCall(req.Method, "/v1/chat/completions", req.Header)
		plan, err := snap.ModelPlan(req, call, access.OperatorCaller(), cfg.MaxBodyBytes)
		if err != nil {
			return err
		}
		rt = plan
	}
	fmt.Fprintf(w, "\nsample request: %s %s with %d headers a client, its browser or a CDN in front might send:\n", req.Method, req.URL.Path, len(sampleHeaders))
	printHeaders(w, sampleHeaders)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	out := rec.last
	if out == nil {
		return errors.New("the sample request was not sent")
	}
	fmt.Fprintf(w, "\nwhat reaches the upstream: %s %s://%s%s\n", out.Method, out.URL.Scheme, out.URL.Host, out.URL.EscapedPath())
	fmt.Fprintf(w, "  Host: %s   (the upstream's; plus one framing header of llmproxy's own: Content-Length)\n", out.URL.Host)
	printHeaders(w, out.Header)
	dropped := []string{}
	for name := range sampleHeaders {
		if _, kept := out.Header[name]; !kept {
			dropped = append(dropped, name)
		}
	}
	slices.Sort(dropped)
	fmt.Fprintf(w, "\ndropped: %s\n", strings.Join(dropped, ", "))
	return nil
}

func countKeyed(ps []*gateway.Provider) int {
	n := 0
	for _, p := range ps {
		if p.Keyed() {
			n++
		}
	}
	return n
}

func sampleRequest(path, body string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "http://llmproxy"+path, strings.NewReader(body))
	req.Header = sampleHeaders.Clone()
	req.RequestURI = ""
	return req
}

// printHeaders prints a header set sorted, credentials masked to their
// last four characters.
func printHeaders(w io.Writer, h http.Header) {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range h[name] {
			if slices.Contains(access.CredentialHeaders, name) {
				scheme, secret, ok := strings.Cut(v, " ")
				if !ok {
					scheme, secret = "", v
				} else {
					scheme += " "
				}
				if len(secret) > 4 {
					v = scheme + "…" + secret[len(secret)-4:]
				}
			}
			fmt.Fprintf(w, "  %s: %s\n", name, v)
		}
	}
}

// recorder is the transport of `llmproxy check`: it keeps the request
// and answers 200 without sending anything.
type recorder struct{ last *http.Request }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.last = req
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{}`)), Request: req}, nil
}

// exposure says, in one warning, what anyone who reaches the port can do
// when llmproxy listens beyond loopback without closing itself, and how
// to close it; "" when it is closed (or on loopback only).
func exposure(listen string, token, presetAuth bool, snap *gateway.Snapshot) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		return ""
	}
	var open []string
	if !presetAuth {
		open = append(open, "relay requests through every preset (with their own provider keys) — and so use llmproxy as an anonymising relay")
	}
	if snap.Keys().Public() && snap.On() {
		open = append(open, "use the gateway's models on your provider keys (gateway.public is true)")
	}
	if len(open) == 0 {
		return ""
	}
	fix := "set an auth token (--auth-token \"$(openssl rand -hex 24)\") and --preset-auth, or listen on 127.0.0.1 behind a TLS front"
	if !token {
		fix = "set an auth token (--auth-token \"$(openssl rand -hex 24)\") with --preset-auth, or listen on 127.0.0.1 behind a TLS front"
	}
	if snap.Keys().Public() && snap.On() {
		fix += "; and drop gateway.public"
	}
	return "llmproxy listens on " + listen + ", beyond this machine, and is open: anyone who reaches the port can " +
		strings.Join(open, ", and ") + ". To close it: " + fix + "."
}
