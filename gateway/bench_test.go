package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
)

// BenchmarkStreamPlan is the gateway's own work on a Chat Completions
// stream before anything is sent: the plan (the body read in one pass:
// model, stream, stream_options) and the first attempt's body (the model
// renamed where routed, include_usage added). Rows for the gateway and a
// keyed preset, with a short prompt and a 64 KiB one.
func BenchmarkStreamPlan(b *testing.B) {
	w := newWorld(b)
	w.env["OPENAI_API_KEY"] = secret("o1")
	cfg := newConfig(b, openaiProvider("A", "a1"),
		config.Model{Name: "pub", Targets: []config.Target{{Provider: "A", Model: "gpt-4.1"}}})
	cfg.Presets = map[string]presetOverride{"openai": {Keys: []string{"env:OPENAI_API_KEY"}}}
	snap := w.compile(cfg)
	call := Call{API: OpenAI, Endpoint: "/chat/completions"}
	for _, size := range []struct {
		name   string
		prompt string
	}{{"small", "Hello!"}, {"64KiB", strings.Repeat("x", 64<<10)}} {
		body := `{"model":"pub","stream":true,"messages":[{"role":"user","content":"` + size.prompt + `"}]}`
		for _, path := range []string{"gateway", "keyed-preset"} {
			b.Run(path+"/"+size.name, func(b *testing.B) {
				r0 := httptestRequest(http.MethodPost, "/v1/chat/completions", body)
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					var p *Plan
					var err error
					r := *r0
					r.Body = io.NopCloser(strings.NewReader(body))
					if path == "gateway" {
						p, err = snap.ModelPlan(&r, call, access.OperatorCaller(), 1<<20)
					} else {
						p, err = snap.PresetPlan(&r, snap.Preset("openai"), "/v1/chat/completions", access.OperatorCaller(), 1<<20)
					}
					if err != nil {
						b.Fatal(err)
					}
					if _, err := p.bodyFor(p.targets[0]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
