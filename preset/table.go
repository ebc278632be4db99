// Package preset holds the table of providers llmproxy knows by a short path
// (/openai → https://api.openai.com, …) and maps a request path onto one.
package preset

// KeyStyle says how a provider expects its API key. llmproxy forwards the key
// as the client sent it; the style is shown on the dashboard and in
// `llmproxy presets` so users know what to send.
type KeyStyle string

const (
	KeyBearer  KeyStyle = "Authorization: Bearer"
	KeyXAPIKey KeyStyle = "x-api-key"
	KeyGoog    KeyStyle = "x-goog-api-key or ?key="
	KeyBot     KeyStyle = "Authorization: Bot"
	KeyPath    KeyStyle = "in the path (/bot<token>/…)"
)

// Preset is one provider reachable under /<Name>/….
type Preset struct {
	// Name is the first path segment; Aliases are other segments that reach
	// the same preset (e.g. /anthropic for /claude).
	Name    string
	Aliases []string
	// Title is the provider's display name.
	Title string
	// BaseURL is where the path after the preset is appended:
	// /openai/v1/models → BaseURL + /v1/models.
	BaseURL string
	// Upstreams, when set, replaces BaseURL with several base URLs used in
	// turn (round robin), e.g. regional endpoints.
	Upstreams []string
	// ClientPath is what a client appends to the preset's URL to get the base
	// URL its SDK expects, e.g. "/v1" for OpenAI-compatible APIs.
	ClientPath string
	// Key is how the provider carries its API key.
	Key KeyStyle
	// Transport overrides the global transport (auto, socket or fetch) for
	// this preset; empty means the global setting.
	Transport string
	// Headers are request headers forwarded besides privacy.PresetHeaders.
	// A trailing "*" allows a prefix.
	Headers []string
	// Defaults are request headers added when the client sent none: a header
	// the provider requires and that carries nothing about the client.
	Defaults map[string]string
	// Resume turns on the Gemini stream resume for this preset.
	Resume bool
	// Keys are server-side provider keys, as configured (a literal or
	// env:NAME each); empty means the client brings its own key.
	Keys []string
}

// Builtin returns the built-in table. Every entry points at the provider's own
// API host, never at a third-party relay.
func Builtin() []Preset {
	return []Preset{
		{Name: "openai", Title: "OpenAI", BaseURL: "https://api.openai.com", ClientPath: "/v1", Key: KeyBearer},
		{Name: "claude", Aliases: []string{"anthropic"}, Title: "Anthropic Claude", BaseURL: "https://api.anthropic.com", Key: KeyXAPIKey,
			Headers:  []string{"Anthropic-Dangerous-Direct-Browser-Access"},
			Defaults: map[string]string{"Anthropic-Version": "2023-06-01"}},
		{Name: "gemini", Aliases: []string{"google"}, Title: "Google Gemini", BaseURL: "https://generativelanguage.googleapis.com", Key: KeyGoog, Resume: true},
		{Name: "groq", Title: "Groq", BaseURL: "https://api.groq.com", ClientPath: "/openai/v1", Key: KeyBearer},
		{Name: "openrouter", Title: "OpenRouter", BaseURL: "https://openrouter.ai", ClientPath: "/api/v1", Key: KeyBearer},
		{Name: "xai", Aliases: []string{"grok"}, Title: "xAI Grok", BaseURL: "https://api.x.ai", ClientPath: "/v1", Key: KeyBearer},
		{Name: "together", Title: "Together AI", BaseURL: "https://api.together.xyz", ClientPath: "/v1", Key: KeyBearer},
		{Name: "fireworks", Title: "Fireworks AI", BaseURL: "https://api.fireworks.ai", ClientPath: "/inference/v1", Key: KeyBearer},
		{Name: "cerebras", Title: "Cerebras", BaseURL: "https://api.cerebras.ai", ClientPath: "/v1", Key: KeyBearer},
		{Name: "cohere", Title: "Cohere", BaseURL: "https://api.cohere.com", ClientPath: "/compatibility/v1", Key: KeyBearer},
		{Name: "sambanova", Title: "SambaNova", BaseURL: "https://api.sambanova.ai", ClientPath: "/v1", Key: KeyBearer},
		{Name: "novita", Title: "Novita AI", BaseURL: "https://api.novita.ai", ClientPath: "/v3/openai", Key: KeyBearer},
		{Name: "huggingface", Aliases: []string{"hf"}, Title: "Hugging Face", BaseURL: "https://router.huggingface.co", ClientPath: "/v1", Key: KeyBearer,
			Headers: []string{"X-Use-Cache", "X-Wait-For-Model"}},
		{Name: "github", Title: "GitHub Models", BaseURL: "https://models.github.ai", ClientPath: "/inference", Key: KeyBearer,
			Headers: []string{"X-Github-Api-Version"}},
		{Name: "chutes", Title: "Chutes", BaseURL: "https://llm.chutes.ai", ClientPath: "/v1", Key: KeyBearer},
		{Name: "friendli", Title: "FriendliAI", BaseURL: "https://api.friendli.ai", ClientPath: "/serverless/v1", Key: KeyBearer},
		{Name: "poe", Title: "Poe", BaseURL: "https://api.poe.com", ClientPath: "/v1", Key: KeyBearer},
		{Name: "portkey", Title: "Portkey", BaseURL: "https://api.portkey.ai", ClientPath: "/v1", Key: KeyBearer,
			Headers: []string{"X-Portkey-*"}},
		{Name: "targon", Title: "Targon", BaseURL: "https://api.targon.com", ClientPath: "/v1", Key: KeyBearer},
		{Name: "telegram", Title: "Telegram Bot API", BaseURL: "https://api.telegram.org", Key: KeyPath},
		// Discord rejects requests without a User-Agent naming the bot, so the
		// client's own passes here (and only here).
		{Name: "discord", Title: "Discord", BaseURL: "https://discord.com", ClientPath: "/api", Key: KeyBot,
			Headers: []string{"User-Agent", "X-Audit-Log-Reason"}},
		{Name: "deepinfra", Title: "DeepInfra", BaseURL: "https://api.deepinfra.com", ClientPath: "/v1/openai", Key: KeyBearer},
		{Name: "mistral", Title: "Mistral AI", BaseURL: "https://api.mistral.ai", ClientPath: "/v1", Key: KeyBearer},
		{Name: "deepseek", Title: "DeepSeek", BaseURL: "https://api.deepseek.com", ClientPath: "/v1", Key: KeyBearer},
		{Name: "perplexity", Title: "Perplexity", BaseURL: "https://api.perplexity.ai", Key: KeyBearer},
		{Name: "siliconflow", Title: "SiliconFlow", BaseURL: "https://api.siliconflow.cn", ClientPath: "/v1", Key: KeyBearer},
		{Name: "moonshot", Aliases: []string{"kimi"}, Title: "Moonshot AI (Kimi)", BaseURL: "https://api.moonshot.cn", ClientPath: "/v1", Key: KeyBearer},
		{Name: "zhipu", Aliases: []string{"glm"}, Title: "Zhipu AI (GLM)", BaseURL: "https://open.bigmodel.cn", ClientPath: "/api/paas/v4", Key: KeyBearer},
		{Name: "dashscope", Aliases: []string{"qwen"}, Title: "Alibaba DashScope (Qwen)", BaseURL: "https://dashscope.aliyuncs.com", ClientPath: "/compatible-mode/v1", Key: KeyBearer},
		{Name: "nvidia", Title: "NVIDIA NIM", BaseURL: "https://integrate.api.nvidia.com", ClientPath: "/v1", Key: KeyBearer},
		{Name: "hyperbolic", Title: "Hyperbolic", BaseURL: "https://api.hyperbolic.xyz", ClientPath: "/v1", Key: KeyBearer},
	}
}
