// Package config holds llmproxy's settings: their defaults, the YAML file,
// and the checks that reject a bad value at start with a message naming the
// setting. Flags and environment variables are applied on top by the command
// line (flag beats env beats file beats default).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/llmproxy/llmproxy/preset"
)

// Config is every setting of llmproxy. YAML keys are the field tags.
type Config struct {
	// Listen is the address to serve on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AuthToken is the operator's token (path prefix /<token>/…). Empty
	// means no token: generic mode is off and /stats is open.
	AuthToken string `yaml:"auth_token"`
	// PresetAuth makes presets answer only under /<token>/<preset>/….
	PresetAuth bool `yaml:"preset_auth"`
	// Transport is auto (socket, else fetch), socket or fetch. Default auto.
	Transport string `yaml:"transport"`
	// AggressiveFallback also falls back to fetch after the request was sent
	// but before response headers (the body is buffered to be replayable).
	AggressiveFallback bool `yaml:"aggressive_fallback"`
	// UpstreamCA is a PEM file of extra roots trusted for upstream TLS.
	UpstreamCA string `yaml:"upstream_ca"`
	// EgressProxy sends all upstream traffic through socks5:// or http://.
	EgressProxy string `yaml:"egress_proxy"`
	// Debug turns on debug logging (still redacted).
	Debug bool `yaml:"debug"`
	// LogFormat is text, json or auto (text on a terminal, else json).
	LogFormat string `yaml:"log_format"`

	// CORSOrigins lists the origins browsers may call from. Default ["*"].
	CORSOrigins []string `yaml:"cors_origins"`
	// MaxBodyBytes bounds a request body (413 beyond). Default 32 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxHeaderBytes bounds the request headers (431 beyond). Default 1 MiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// KeepSetCookie passes providers' Set-Cookie headers to clients. They
	// are CDN tracking cookies, dropped by default.
	KeepSetCookie bool `yaml:"keep_set_cookie"`
	// Dashboard serves the page at / (presets, features, live numbers).
	// Default true.
	Dashboard bool `yaml:"dashboard"`
	// ForwardSDKHeaders forwards client-SDK fingerprint headers
	// (X-Stainless-*), dropped by default.
	ForwardSDKHeaders bool `yaml:"forward_sdk_headers"`

	// AllowPrivate lets generic mode reach loopback, private, link-local
	// and other internal addresses. The proxy's own address stays blocked.
	AllowPrivate bool `yaml:"allow_private"`
	// AllowedDestinations lists networks (CIDR or single IP) and host names
	// generic mode may reach despite the address guard.
	AllowedDestinations []string `yaml:"allowed_destinations"`

	WebSocket WebSocket `yaml:"websocket"`
	Gemini    Gemini    `yaml:"gemini"`

	Timeouts Timeouts `yaml:"timeouts"`

	// Presets changes built-in presets or adds new ones, by name.
	Presets map[string]preset.Override `yaml:"presets"`
}

// Timeouts are the deadlines of the server and the transports. There is
// deliberately no cap on a whole request: a stream that keeps moving may
// run for hours.
type Timeouts struct {
	// Dial: TCP connect to an upstream. Default 10s.
	Dial time.Duration `yaml:"dial"`
	// TLSHandshake: upstream TLS handshake. Default 10s.
	TLSHandshake time.Duration `yaml:"tls_handshake"`
	// ResponseHeader: from request sent to response headers. A non-streaming
	// completion answers only when the model is done. Default 10m.
	ResponseHeader time.Duration `yaml:"response_header"`
	// UpstreamIdle: longest silence on a response body. Default 5m.
	UpstreamIdle time.Duration `yaml:"upstream_idle"`
	// ReadHeader: for a client to send its request headers. Default 10s.
	ReadHeader time.Duration `yaml:"read_header"`
	// ClientIdle: keep-alive between a client's requests. Default 2m.
	ClientIdle time.Duration `yaml:"client_idle"`
	// Shutdown: on SIGINT/SIGTERM, how long running streams may finish.
	// Default 30s.
	Shutdown time.Duration `yaml:"shutdown"`
}

// WebSocket tunes the WebSocket relay.
type WebSocket struct {
	// ReadLimit bounds one message, each way. Default 32 MiB.
	ReadLimit int64 `yaml:"read_limit"`
	// IdleTimeout closes a session with no message either way. Default 10m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PingInterval pings both sides. Default 30s.
	PingInterval time.Duration `yaml:"ping_interval"`
	// HandshakeTimeout bounds the upstream handshake. Default 30s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
}

// Gemini tunes the stream resume of the gemini preset (and of any preset
// with gemini_resume: true).
type Gemini struct {
	// Resume turns the resume logic on. Default true.
	Resume bool `yaml:"resume"`
	// MaxResumes bounds the continuations of one answer. Default 5.
	MaxResumes int `yaml:"max_resumes"`
	// ResumeDelay is the pause before each continuation. Default 500ms.
	ResumeDelay time.Duration `yaml:"resume_delay"`
	// AttemptIdleTimeout cuts (and resumes) an attempt silent for this long.
	// Default 2m.
	AttemptIdleTimeout time.Duration `yaml:"attempt_idle_timeout"`
	// TotalTimeout: no continuation starts later than this after the
	// request. Default 30m.
	TotalTimeout time.Duration `yaml:"total_timeout"`
	// Prompts are the continuation requests by language: zh, en, ja, ko,
	// es, fr, de, ru, default.
	Prompts map[string]string `yaml:"prompts"`
}

// Default returns the configuration llmproxy runs with when nothing is set.
func Default() *Config {
	return &Config{
		Listen:         "127.0.0.1:8080",
		Dashboard:      true,
		Transport:      "auto",
		LogFormat:      "auto",
		CORSOrigins:    []string{"*"},
		MaxBodyBytes:   32 << 20,
		MaxHeaderBytes: 1 << 20,
		Gemini: Gemini{
			Resume:             true,
			MaxResumes:         5,
			ResumeDelay:        500 * time.Millisecond,
			AttemptIdleTimeout: 2 * time.Minute,
			TotalTimeout:       30 * time.Minute,
		},
		WebSocket: WebSocket{
			ReadLimit:        32 << 20,
			IdleTimeout:      10 * time.Minute,
			PingInterval:     30 * time.Second,
			HandshakeTimeout: 30 * time.Second,
		},
		Timeouts: Timeouts{
			Dial:           10 * time.Second,
			TLSHandshake:   10 * time.Second,
			ResponseHeader: 10 * time.Minute,
			UpstreamIdle:   5 * time.Minute,
			ReadHeader:     10 * time.Second,
			ClientIdle:     2 * time.Minute,
			Shutdown:       30 * time.Second,
		},
	}
}

// SettingError is a bad value for a setting, named by its YAML key.
type SettingError struct {
	Setting string
	Msg     string
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Msg }

func settingErr(setting, format string, args ...any) error {
	return &SettingError{Setting: setting, Msg: fmt.Sprintf(format, args...)}
}

// Load reads a YAML file over the defaults. Unknown keys are errors, so a
// typo does not silently leave a default in place.
func Load(path string) (*Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, settingErr("config", "cannot read the file: %v", errors.Unwrap(err))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
		return nil, settingErr("config", "%v", err)
	}
	return cfg, nil
}
