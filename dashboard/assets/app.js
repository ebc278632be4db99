// llmproxy dashboard. Everything is built with DOM calls and textContent:
// no value (host name, preset, number) is ever parsed as HTML.
"use strict";

const info = JSON.parse(document.getElementById("info").textContent);
const origin = window.location.origin;
const wsOrigin = origin.replace(/^http/, "ws");

const T = {
  en: {
    theme_label: "Theme", theme_dark: "Dark", theme_light: "Light",
    hero_title: "Your private gateway to LLM APIs",
    hero_lead: "Point your client at this server instead of the provider. Requests travel over a connection llmproxy dials itself, carrying only the headers the provider needs; answers stream back the moment they are sent.",
    p1_t: "Your identity stays here.", p1_d: "Your address, browser, CDN, cookie and tracing headers never reach the provider.",
    p2_t: "Only what is needed goes out.", p2_d: "Presets forward an allowlist of headers; llmproxy adds nothing that names itself.",
    p3_t: "Secrets stay secret.", p3_d: "Tokens and keys never appear in logs, errors or statistics.",
    p4_t: "Streams are honest.", p4_d: "Every event arrives as it is sent; a failure is an aborted stream, never a made-up end.",
    features_title: "Features on this server",
    f_transport: "Transport: {0}", f_token: "Auth token", f_preset_auth: "Presets need the token",
    f_generic: "Generic mode", f_websocket: "WebSocket relay", f_resume: "Gemini stream resume",
    f_aggressive: "Aggressive fallback", f_private: "Private destinations allowed", f_egress: "Egress proxy",
    live_title: "Live numbers", token_prompt: "This server has a token. Enter it to see live numbers (kept in this tab only).",
    token_placeholder: "token", token_button: "Show", token_wrong: "Wrong token.",
    live_updated: "updated {0}", live_waiting: "waiting for numbers…", live_failed: "statistics unavailable",
    t_requests: "Requests", t_errors: "Failed requests", t_streams: "Open streams", t_ws: "Open WebSockets",
    t_fallbacks: "Fallbacks to fetch", t_resumes: "Gemini resumes", t_out: "Sent to clients",
    presets_title: "Presets", filter_placeholder: "Filter",
    presets_lead: "Use the base URL in your SDK or client. The path after the preset and the query pass through unchanged.",
    col_preset: "Preset", col_upstream: "Upstream", col_transport: "Transport", col_base: "Base URL on this server",
    col_requests: "Requests", col_errors: "Errors", col_ttfb: "First byte p50",
    copy: "Copy", copied: "Copied {0}", copy_failed: "Copy failed: select the text instead",
    examples_title: "Usage",
    ex_curl: "curl", ex_openai_py: "OpenAI · Python", ex_openai_js: "OpenAI · JavaScript", ex_anthropic: "Anthropic",
    ex_gemini: "Gemini", ex_generic: "Generic mode", ex_ws: "WebSocket",
    note_curl: "Any preset works the same way: replace the provider's base URL with this server's.",
    note_generic: "Generic mode proxies any HTTPS URL for the holder of the token, and refuses private and internal addresses.",
    note_generic_off: "Generic mode is off on this server: it needs an auth token.",
    note_ws: "In a browser, OpenAI's Realtime API takes the key in a subprotocol; prefer a short-lived client secret.",
    note_token: "Replace <token> with this server's token.",
    note_keyed: "The {0} preset holds its provider key on this server: send a client key instead of a provider key.",
    footer_private: "This page loads nothing from any other host.",
    admin_link: "Admin", f_gateway: "Gateway (/v1, routed by model)", f_admin: "Admin panel",
    server_key: "key on the server", server_key_title: "This preset holds the provider's key: clients send a client key.",
    gw_title: "Gateway",
    gw_lead: "One OpenAI-compatible endpoint in front of many providers and keys. Clients send a client key; the providers' keys stay on this server and are shown here only by name and their last four characters.",
    gw_providers_title: "Providers and keys", col_provider: "Provider", col_breaker: "Breaker", col_key: "Key",
    col_masked: "Masked key", col_state: "State", col_attempts: "Attempts", col_failures: "Failures",
    st_ok: "ok", st_cooling: "cooling", st_disabled: "disabled",
    br_closed: "closed", br_open: "open", br_half_open: "probing",
    until: "until {0}", no_keys: "no keys",
    reason_rate_limited: "rate limited", reason_quota: "quota exhausted", reason_refused: "the provider refused the key (HTTP {0})",
    origin_config: "config file", origin_preset: "preset", origin_store: "admin panel",
    gw_usage_title: "Tokens and cost", col_client: "Client key", col_model: "Model", col_provider_key: "Provider key",
    col_input: "Input", col_cached: "Cached", col_cache_write: "Cache writes", col_output: "Output",
    col_reasoning: "Reasoning", col_cost: "Cost", total: "Total", gw_no_usage: "No gateway requests yet.",
    gw_limited_title: "Refused by limits", col_limit: "Limit", col_refused: "Refused",
    gw_no_limited: "No request was refused.", gw_no_providers: "No providers.",
    limit_rpm: "requests per minute", limit_tpm: "tokens per minute", limit_max_parallel: "parallel requests", limit_budget: "budget",
    gw_examples_title: "Connect a client",
    note_gw: "Replace <client key> with a key from client_keys. Any SDK works with this server as its base URL; GET /v1/models lists the models your key may use.",
  },
  zh: {
    theme_label: "主题", theme_dark: "深色", theme_light: "浅色",
    hero_title: "通往大模型 API 的私有网关",
    hero_lead: "把客户端的地址从服务商换成本服务器即可。请求经由 llmproxy 自己建立的连接发出，只携带服务商需要的请求头；回答一产生就流式返回。",
    p1_t: "你的身份留在这里。", p1_d: "你的 IP、浏览器、CDN、Cookie 与追踪头都不会到达服务商。",
    p2_t: "只发出必需的内容。", p2_d: "预设只转发白名单内的请求头；llmproxy 不添加任何暴露自身的信息。",
    p3_t: "密钥始终保密。", p3_d: "令牌与密钥不会出现在日志、错误或统计中。",
    p4_t: "流式传输诚实可靠。", p4_d: "每个事件原样即时到达；出错时连接会被中断，绝不伪造结尾。",
    features_title: "本服务器已启用的功能",
    f_transport: "传输方式：{0}", f_token: "访问令牌", f_preset_auth: "预设需要令牌",
    f_generic: "通用代理模式", f_websocket: "WebSocket 转发", f_resume: "Gemini 断流续写",
    f_aggressive: "激进回退", f_private: "允许访问内网地址", f_egress: "出口代理",
    live_title: "实时数据", token_prompt: "本服务器设置了令牌。输入令牌即可查看实时数据（仅保存在当前标签页）。",
    token_placeholder: "令牌", token_button: "查看", token_wrong: "令牌错误。",
    live_updated: "更新于 {0}", live_waiting: "等待数据…", live_failed: "统计不可用",
    t_requests: "请求数", t_errors: "失败的请求", t_streams: "进行中的流", t_ws: "进行中的 WebSocket",
    t_fallbacks: "回退到 fetch", t_resumes: "Gemini 续写", t_out: "发往客户端",
    presets_title: "预设端点", filter_placeholder: "筛选",
    presets_lead: "在 SDK 或客户端中使用下面的基础地址。预设之后的路径与查询参数原样转发。",
    col_preset: "预设", col_upstream: "上游", col_transport: "传输", col_base: "本服务器上的基础地址",
    col_requests: "请求", col_errors: "错误", col_ttfb: "首字节 p50",
    copy: "复制", copied: "已复制 {0}", copy_failed: "复制失败，请手动选择文本",
    examples_title: "使用示例",
    ex_curl: "curl", ex_openai_py: "OpenAI · Python", ex_openai_js: "OpenAI · JavaScript", ex_anthropic: "Anthropic",
    ex_gemini: "Gemini", ex_generic: "通用模式", ex_ws: "WebSocket",
    note_curl: "所有预设用法相同：把服务商的基础地址换成本服务器的地址即可。",
    note_generic: "通用模式为令牌持有者代理任意 HTTPS 地址，并拒绝内网与私有地址。",
    note_generic_off: "本服务器未开启通用模式：需要先设置访问令牌。",
    note_ws: "在浏览器中，OpenAI Realtime API 通过子协议传递密钥；建议使用短期客户端密钥。",
    note_token: "把 <token> 替换为本服务器的令牌。",
    note_keyed: "{0} 预设的服务商密钥保存在本服务器上：请发送客户端密钥，而不是服务商密钥。",
    footer_private: "本页面不会从任何其他主机加载内容。",
    admin_link: "管理", f_gateway: "网关（/v1，按模型路由）", f_admin: "管理面板",
    server_key: "密钥在服务器上", server_key_title: "此预设持有服务商密钥：客户端发送客户端密钥即可。",
    gw_title: "网关",
    gw_lead: "一个兼容 OpenAI 的入口，背后是多个服务商与密钥。客户端发送客户端密钥；服务商密钥留在本服务器上，这里只显示其名称与末四位。",
    gw_providers_title: "服务商与密钥", col_provider: "服务商", col_breaker: "熔断器", col_key: "密钥",
    col_masked: "脱敏密钥", col_state: "状态", col_attempts: "尝试", col_failures: "失败",
    st_ok: "正常", st_cooling: "冷却中", st_disabled: "已停用",
    br_closed: "闭合", br_open: "断开", br_half_open: "探测中",
    until: "至 {0}", no_keys: "无密钥",
    reason_rate_limited: "触发限流", reason_quota: "额度用尽", reason_refused: "服务商拒绝了该密钥（HTTP {0}）",
    origin_config: "配置文件", origin_preset: "预设", origin_store: "管理面板",
    gw_usage_title: "用量与费用", col_client: "客户端密钥", col_model: "模型", col_provider_key: "服务商密钥",
    col_input: "输入", col_cached: "缓存命中", col_cache_write: "缓存写入", col_output: "输出",
    col_reasoning: "推理", col_cost: "费用", total: "合计", gw_no_usage: "网关尚未处理请求。",
    gw_limited_title: "因限额被拒", col_limit: "限额", col_refused: "被拒次数",
    gw_no_limited: "没有请求被拒绝。", gw_no_providers: "没有服务商。",
    limit_rpm: "每分钟请求数", limit_tpm: "每分钟 token 数", limit_max_parallel: "并发请求数", limit_budget: "预算",
    gw_examples_title: "接入客户端",
    note_gw: "把 <client key> 替换为 client_keys 中的密钥。任何 SDK 都可以把本服务器作为基础地址；GET /v1/models 列出该密钥可用的模型。",
  },
};

let lang = localStorage.getItem("llmproxy.lang") || (document.documentElement.lang === "zh" ? "zh" : "en");
let lastStats = null;
const missingText = new Set();

function t(key, ...args) {
  let s = T[lang] && T[lang][key];
  if (s === undefined) {
    // A label without a translation is a bug: say so (once), then fall
    // back to English, else to the key itself.
    if (!missingText.has(lang + ":" + key)) {
      missingText.add(lang + ":" + key);
      console.error("llmproxy dashboard: no " + lang + " text for " + key);
    }
    s = T.en[key] || key;
  }
  return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)]));
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// ---- language and theme ----

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
  document.getElementById("lang-switch").textContent = lang === "zh" ? "EN" : "中文";
  applyTheme();
  renderFeatures();
  renderPresets();
  renderTabs();
  renderStats();
  renderGateway();
}

function systemDark() {
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
}

function currentTheme() {
  return document.documentElement.dataset.theme || (systemDark() ? "dark" : "light");
}

function applyTheme() {
  const saved = localStorage.getItem("llmproxy.theme");
  if (saved) document.documentElement.dataset.theme = saved;
  const sw = document.getElementById("theme-switch");
  // The switch names the theme it turns on.
  sw.textContent = currentTheme() === "dark" ? t("theme_light") : t("theme_dark");
  sw.setAttribute("aria-label", t("theme_label"));
}

// ---- copy ----

let toastTimer;
function toast(msg) {
  const n = document.getElementById("toast");
  n.textContent = msg;
  n.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => n.classList.remove("show"), 2500);
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    // Old browsers, or a page not served over HTTPS: a hidden text area.
    const ta = el("textarea", { value: text, readOnly: true });
    ta.className = "offscreen";
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand && document.execCommand("copy");
    ta.remove();
    if (!ok) { toast(t("copy_failed")); return; }
  }
  document.body.dataset.copied = text;
  toast(t("copied", text));
}

// ---- features ----

function renderFeatures() {
  const f = info.features;
  const list = document.getElementById("features");
  list.replaceChildren();
  const items = [
    [t("f_transport", f.transport), true],
    [t("f_token"), f.token],
    [t("f_preset_auth"), f.preset_auth],
    [t("f_generic"), f.generic],
    [t("f_websocket"), f.websocket],
    [t("f_resume"), f.gemini_resume],
    [t("f_aggressive"), f.aggressive_fallback],
    [t("f_private"), f.allow_private],
    [t("f_egress"), f.egress_proxy],
    [t("f_gateway"), f.gateway],
    [t("f_admin"), f.admin],
  ];
  for (const [label, on] of items) list.append(el("li", { class: on ? "on" : "off", text: label }));
}

// ---- presets ----

function token() { return sessionStorage.getItem("llmproxy.token") || ""; }

function baseURL(p, forCopy) {
  let prefix = "";
  if (info.features.preset_auth) prefix = "/" + (forCopy && token() ? token() : "<token>");
  return origin + prefix + "/" + p.name + (p.client_path || "");
}

function renderPresets() {
  const tbody = document.querySelector("#presets tbody");
  const filter = document.getElementById("filter").value.trim().toLowerCase();
  tbody.replaceChildren();
  for (const p of info.presets) {
    const hay = [p.name, p.title, ...(p.aliases || []), ...p.hosts].join(" ").toLowerCase();
    if (filter && !hay.includes(filter)) continue;
    const s = lastStats && lastStats.routes ? lastStats.routes[p.name] : null;
    const requests = s ? s.requests : (lastStats ? 0 : "–");
    const errors = s ? (s.failed || 0) : (lastStats ? 0 : "–");
    const ttfb = s && s.latency_first_byte && s.latency_first_byte.samples ? fmtMs(s.latency_first_byte.p50_ms) : "–";
    const pname = el("div", { class: "pname", text: "/" + p.name });
    if (p.server_keys) pname.append(el("span", { class: "badge key-badge", text: t("server_key"), title: t("server_key_title") }));
    const name = el("td", {},
      pname,
      el("div", { class: "title", text: p.title }),
      p.aliases && p.aliases.length ? el("div", { class: "aliases", text: p.aliases.map((a) => "/" + a).join(" ") }) : null);
    const transport = el("td", { text: p.transport });
    if (p.resume && info.features.gemini_resume) transport.append(el("span", { class: "badge", text: "resume" }));
    const copyButton = el("button", { type: "button", class: "button copy", text: t("copy") });
    copyButton.dataset.preset = p.name;
    copyButton.addEventListener("click", () => copy(baseURL(p, true)));
    tbody.append(el("tr", { "data-preset": p.name },
      name,
      el("td", { class: "host", text: p.hosts.join(" ") }),
      transport,
      el("td", {}, el("div", { class: "base" }, el("code", { text: baseURL(p, false) }), copyButton)),
      el("td", { class: "num requests", "data-label": t("col_requests"), text: String(requests) }),
      el("td", { class: "num errors" + (errors > 0 ? " bad" : ""), "data-label": t("col_errors"), text: String(errors) }),
      el("td", { class: "num ttfb", "data-label": t("col_ttfb"), text: ttfb })));
  }
}

function fmtMs(ms) {
  if (ms < 1) return "<1 ms";
  return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
}

function fmtBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

// ---- examples ----

// presetByName finds a preset by its name or an alias.
function presetByName(name) {
  return info.presets.find((p) => p.name === name || (p.aliases || []).includes(name));
}

// keyed says how a preset example authenticates: a preset that holds its
// provider's key on this server takes a client key instead.
function keyed(name, providerKey) {
  const p = presetByName(name);
  if (p && p.server_keys) return { client: true, key: "<client key>", note: t("note_keyed", "/" + p.name) };
  return { client: false, key: providerKey, note: t("note_curl") };
}

function examples() {
  const auth = info.features.preset_auth ? "/<token>" : "";
  const o = origin + auth;
  const wo = wsOrigin + auth;
  const oa = keyed("openai", "sk-...");
  const an = keyed("claude", "sk-ant-...");
  const ge = keyed("gemini", "...");
  const resume = info.features.gemini_resume ? t("f_resume") + " ✓" : "";
  return {
    curl: {
      code: `curl ${o}/openai/v1/chat/completions \\
  -H "Authorization: Bearer ${oa.client ? oa.key : "$OPENAI_API_KEY"}" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "gpt-4o-mini", "stream": true,
       "messages": [{"role": "user", "content": "Hello!"}]}'`,
      note: oa.note,
    },
    openai_py: {
      code: `from openai import OpenAI

client = OpenAI(base_url="${o}/openai/v1", api_key="${oa.key}")
stream = client.chat.completions.create(
    model="gpt-4o-mini", stream=True,
    messages=[{"role": "user", "content": "Hello!"}])
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="")`,
      note: oa.note,
    },
    openai_js: {
      code: `import OpenAI from "openai";

const client = new OpenAI({ baseURL: "${o}/openai/v1", apiKey: ${oa.client ? `"${oa.key}"` : "process.env.OPENAI_API_KEY"} });
const stream = await client.chat.completions.create({
  model: "gpt-4o-mini", stream: true,
  messages: [{ role: "user", content: "Hello!" }],
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? "");`,
      note: oa.note,
    },
    anthropic: {
      code: `import anthropic

client = anthropic.Anthropic(base_url="${o}/claude", api_key="${an.key}")
message = client.messages.create(
    model="claude-sonnet-4-5", max_tokens=512,
    messages=[{"role": "user", "content": "Hello!"}])
print(message.content[0].text)`,
      note: an.note,
    },
    gemini: {
      code: `from google import genai
from google.genai import types

client = genai.Client(api_key="${ge.key}", http_options=types.HttpOptions(base_url="${o}/gemini"))
for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="Hello!"):
    print(chunk.text, end="")`,
      note: ge.client ? [ge.note, resume].filter(Boolean).join(" ") : (resume || t("note_curl")),
    },
    generic: {
      code: `curl "${origin}/<token>/https/api.example.com/v1/things?limit=10"
# the Workers scripts' spelling works too:
curl "${origin}/<token>/https://api.example.com/v1/things"`,
      note: info.features.generic ? t("note_generic") + " " + t("note_token") : t("note_generic_off"),
    },
    ws: {
      code: `const ws = new WebSocket("${wo}/openai/v1/realtime?model=gpt-realtime", [
  "realtime",
  "openai-insecure-api-key." + EPHEMERAL_KEY,
  "openai-beta.realtime-v1",
]);
ws.onmessage = (event) => console.log(JSON.parse(event.data).type);

// any WebSocket, through generic mode:
// new WebSocket("${wsOrigin}/<token>/wss/echo.websocket.org")`,
      note: t("note_ws"),
    },
  };
}

// gatewayExamples: the gateway is one endpoint at this server's root for
// every SDK (OpenAI at /v1, Anthropic's /v1/messages, Gemini's /v1beta),
// and takes a client key wherever each SDK puts its API key.
function gatewayExamples() {
  const note = t("note_gw");
  return {
    curl: {
      code: `curl ${origin}/v1/chat/completions \\
  -H "Authorization: Bearer <client key>" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "gpt-4o-mini", "stream": true,
       "messages": [{"role": "user", "content": "Hello!"}]}'

# the models your key may use:
curl ${origin}/v1/models -H "Authorization: Bearer <client key>"`,
      note,
    },
    openai_py: {
      code: `from openai import OpenAI

client = OpenAI(base_url="${origin}/v1", api_key="<client key>")
stream = client.chat.completions.create(
    model="gpt-4o-mini", stream=True,
    messages=[{"role": "user", "content": "Hello!"}])
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="")`,
      note,
    },
    openai_js: {
      code: `import OpenAI from "openai";

const client = new OpenAI({ baseURL: "${origin}/v1", apiKey: "<client key>" });
const stream = await client.chat.completions.create({
  model: "gpt-4o-mini", stream: true,
  messages: [{ role: "user", content: "Hello!" }],
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? "");`,
      note,
    },
    anthropic: {
      code: `import anthropic

client = anthropic.Anthropic(base_url="${origin}", api_key="<client key>")
message = client.messages.create(
    model="claude-sonnet-4-5", max_tokens=512,
    messages=[{"role": "user", "content": "Hello!"}])
print(message.content[0].text)`,
      note,
    },
    gemini: {
      code: `from google import genai
from google.genai import types

client = genai.Client(api_key="<client key>", http_options=types.HttpOptions(base_url="${origin}"))
for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="Hello!"):
    print(chunk.text, end="")`,
      note,
    },
  };
}

// The two example blocks: the presets' and the gateway's, each with its
// own tabs and copy button.
const exampleBlocks = [
  { tabs: "tabs", code: "example-code", note: "example-note", current: "curl", build: examples,
    keys: [["curl", "ex_curl"], ["openai_py", "ex_openai_py"], ["openai_js", "ex_openai_js"],
      ["anthropic", "ex_anthropic"], ["gemini", "ex_gemini"], ["generic", "ex_generic"], ["ws", "ex_ws"]] },
  { tabs: "gw-tabs", code: "gw-example-code", note: "gw-example-note", current: "curl", build: gatewayExamples,
    keys: [["curl", "ex_curl"], ["openai_py", "ex_openai_py"], ["openai_js", "ex_openai_js"],
      ["anthropic", "ex_anthropic"], ["gemini", "ex_gemini"]] },
];

function renderTabs() {
  for (const block of exampleBlocks) renderBlock(block);
}

function renderBlock(block) {
  const tabs = document.getElementById(block.tabs);
  tabs.replaceChildren();
  for (const [key, label] of block.keys) {
    const b = el("button", { type: "button", class: "tab", text: t(label) });
    b.setAttribute("role", "tab");
    b.dataset.tab = key;
    b.setAttribute("aria-selected", String(key === block.current));
    b.addEventListener("click", () => { block.current = key; renderBlock(block); });
    tabs.append(b);
  }
  const ex = block.build()[block.current];
  document.getElementById(block.code).textContent = ex.code;
  document.getElementById(block.note).textContent = ex.note;
}

// ---- gateway: providers and their keys, tokens and cost, refusals ----

function locale() { return lang === "zh" ? "zh-CN" : "en-US"; }

function fmtInt(n) { return Number(n || 0).toLocaleString(locale()); }

// fmtClock shows a time as HH:MM:SS on the viewer's clock.
function fmtClock(iso) {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "";
  const two = (n) => String(n).padStart(2, "0");
  return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
}

// fmtMoney shows an amount with at least two decimals and, below one
// unit, three significant digits (token prices are fractions of a cent),
// never more decimals than the nano-units it was counted in.
function fmtMoney(amount, currency) {
  const digits = amount >= 1 || amount <= 0 ? 2 : Math.min(9, Math.max(2, 2 - Math.floor(Math.log10(amount))));
  try {
    return new Intl.NumberFormat(locale(), {
      style: "currency", currency: String(currency || "").toUpperCase(),
      minimumFractionDigits: 2, maximumFractionDigits: digits,
    }).format(amount);
  } catch (e) {
    // Not an ISO 4217 code (Intl refuses it): the number and the name.
    return amount.toFixed(digits).replace(/(\.\d\d\d*?)0+$/, "$1") + " " + currency;
  }
}

// fmtCost shows cost_nanos ({currency: nano-units}) as money, one
// amount per currency.
function fmtCost(nanos) {
  const parts = Object.entries(nanos || {}).filter(([, n]) => n > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (!parts.length) return "–";
  return parts.map(([currency, n]) => fmtMoney(n / 1e9, currency)).join(" + ");
}

// reasonText translates the reasons the gateway gives (gateway/health.go,
// gateway/attempt.go); any other is shown as it is.
function reasonText(reason) {
  if (!reason) return "";
  if (reason === "rate limited") return t("reason_rate_limited");
  if (reason === "quota exhausted") return t("reason_quota");
  const m = /^the provider refused the key \(HTTP (\d{3})\)$/.exec(reason);
  if (m) return t("reason_refused", m[1]);
  return reason;
}

function originText(origin) {
  const key = { config: "origin_config", preset: "origin_preset", store: "origin_store" }[origin];
  return key ? t(key) : origin || "";
}

const limitKeys = { rpm: "limit_rpm", tpm: "limit_tpm", max_parallel: "limit_max_parallel", budget: "limit_budget" };

// stateBadge is a coloured label; kind picks the colour (good, warn, bad).
function stateBadge(text, kind, state) {
  const b = el("span", { class: "state " + kind, text });
  b.dataset.state = state;
  return b;
}

function emptyRow(columns, text) {
  return el("tr", { class: "empty" }, el("td", { class: "muted", colSpan: columns, text }));
}

function renderGateway() {
  const section = document.getElementById("gateway");
  const providers = (lastStats && lastStats.providers) || [];
  section.hidden = !(info.features.gateway || providers.length > 0);
  document.getElementById("gw-examples").hidden = !info.features.gateway;
  if (section.hidden) return;
  renderProviders(providers);
  renderUsage((lastStats && lastStats.usage) || []);
  renderLimited((lastStats && lastStats.limited) || []);
}

function renderProviders(providers) {
  const tbody = document.querySelector("#gw-providers tbody");
  tbody.replaceChildren();
  if (!lastStats) { tbody.append(emptyRow(7, t("live_waiting"))); return; }
  if (!providers.length) { tbody.append(emptyRow(7, t("gw_no_providers"))); return; }
  for (const p of providers) {
    const keys = p.keys && p.keys.length ? p.keys : [null];
    const span = keys.length;
    const about = [p.kind, originText(p.origin)].filter(Boolean).join(" · ");
    const provider = el("td", { class: "provider", rowSpan: span },
      el("div", { class: "pname", text: p.name }),
      about ? el("div", { class: "title", text: about }) : null,
      p.hosts && p.hosts.length ? el("div", { class: "host", text: p.hosts.join(" ") }) : null);
    const breakerKind = { closed: "good", open: "bad", half_open: "warn" }[p.breaker] || "warn";
    const breakerLabel = { closed: "br_closed", open: "br_open", half_open: "br_half_open" }[p.breaker];
    const breaker = el("td", { class: "breaker", rowSpan: span },
      stateBadge(breakerLabel ? t(breakerLabel) : String(p.breaker || ""), breakerKind, p.breaker || ""));
    if (p.breaker === "open" && p.breaker_until) {
      breaker.append(el("div", { class: "until", text: t("until", fmtClock(p.breaker_until)), title: new Date(p.breaker_until).toLocaleString(locale()) }));
    }
    keys.forEach((k, i) => {
      const tr = el("tr", { class: i === 0 ? "group" : "", "data-provider": p.name });
      if (i === 0) tr.append(provider, breaker);
      if (!k) {
        tr.append(el("td", { class: "muted", colSpan: 5, text: t("no_keys") }));
        tbody.append(tr);
        return;
      }
      tr.dataset.key = k.name;
      const kind = { ok: "good", cooling: "warn", disabled: "bad" }[k.state] || "warn";
      const label = { ok: "st_ok", cooling: "st_cooling", disabled: "st_disabled" }[k.state];
      const state = el("td", { class: "key-state" }, stateBadge(label ? t(label) : String(k.state || ""), kind, k.state || ""));
      if (k.state === "cooling" && k.until) {
        state.append(el("span", { class: "until", text: t("until", fmtClock(k.until)), title: new Date(k.until).toLocaleString(locale()) }));
      }
      if (k.reason) state.append(el("div", { class: "reason", text: reasonText(k.reason) }));
      tr.append(
        el("td", { class: "key-name", text: k.name }),
        el("td", {}, el("code", { class: "masked", text: k.masked })),
        state,
        el("td", { class: "num attempts", text: fmtInt(k.requests) }),
        el("td", { class: "num failures" + (k.failures > 0 ? " bad" : ""), text: fmtInt(k.failures) }));
      tbody.append(tr);
    });
  }
}

// Token columns of the usage table, in order; cache writes only show when
// some row has them (Anthropic's prompt caching).
const tokenColumns = ["input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"];

function renderUsage(rows) {
  const table = document.getElementById("gw-usage");
  const tbody = table.querySelector("tbody");
  const tfoot = table.querySelector("tfoot");
  tbody.replaceChildren();
  tfoot.replaceChildren();
  const writes = rows.some((r) => r.cache_write_tokens > 0);
  table.querySelector("th.cache-write").hidden = !writes;
  const columns = writes ? 11 : 10;
  if (!lastStats) { tbody.append(emptyRow(columns, t("live_waiting"))); return; }
  if (!rows.length) { tbody.append(emptyRow(columns, t("gw_no_usage"))); return; }
  const numbers = (r) => {
    const cells = [el("td", { class: "num requests", text: fmtInt(r.requests) })];
    for (const c of tokenColumns) {
      if (c === "cache_write_tokens" && !writes) continue;
      cells.push(el("td", { class: "num " + c, text: fmtInt(r[c]) }));
    }
    cells.push(el("td", { class: "num cost", text: fmtCost(r.cost_nanos) }));
    return cells;
  };
  const total = { requests: 0, cost_nanos: {} };
  for (const c of tokenColumns) total[c] = 0;
  for (const r of rows) {
    tbody.append(el("tr", { "data-client": r.client, "data-model": r.model },
      el("td", { class: "client", text: r.client }),
      el("td", { class: "model", text: r.model }),
      el("td", { text: r.provider }),
      el("td", { text: r.provider_key || "–" }),
      ...numbers(r)));
    total.requests += r.requests || 0;
    for (const c of tokenColumns) total[c] += r[c] || 0;
    for (const [cur, n] of Object.entries(r.cost_nanos || {})) total.cost_nanos[cur] = (total.cost_nanos[cur] || 0) + n;
  }
  if (rows.length > 1) {
    tfoot.append(el("tr", { class: "total" }, el("td", { colSpan: 4, text: t("total") }), ...numbers(total)));
  }
}

function renderLimited(rows) {
  const tbody = document.querySelector("#gw-limited tbody");
  tbody.replaceChildren();
  if (!lastStats) { tbody.append(emptyRow(3, t("live_waiting"))); return; }
  if (!rows.length) { tbody.append(emptyRow(3, t("gw_no_limited"))); return; }
  for (const r of rows) {
    const limit = el("td", { class: "limit" }, el("code", { text: r.limit }));
    if (limitKeys[r.limit]) limit.append(" ", el("span", { class: "muted", text: t(limitKeys[r.limit]) }));
    tbody.append(el("tr", { "data-client": r.client, "data-limit": r.limit },
      el("td", { class: "client", text: r.client }),
      limit,
      el("td", { class: "num refused bad", text: fmtInt(r.refused) })));
  }
}

// ---- live numbers ----

function renderStats() {
  const box = document.getElementById("totals");
  box.replaceChildren();
  if (!lastStats) return;
  const c = lastStats.totals;
  const sum = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
  const tiles = [
    [t("t_requests"), c.requests], [t("t_errors"), c.failed], [t("t_streams"), c.open_streams],
    [t("t_ws"), c.open_websockets], [t("t_fallbacks"), sum(c.fallbacks)], [t("t_resumes"), c.gemini_resumes],
    [t("t_out"), fmtBytes(c.bytes_out)],
  ];
  for (const [label, value] of tiles) {
    box.append(el("div", { class: "stat" }, el("div", { class: "value", text: String(value) }), el("div", { class: "label", text: label })));
  }
}

let polling = false;
async function poll() {
  const status = document.getElementById("live-status");
  const form = document.getElementById("token-form");
  if (info.features.token && !token()) {
    form.hidden = false;
    status.textContent = "";
    return;
  }
  if (polling) return;
  polling = true;
  try {
    const headers = {};
    if (token()) headers.Authorization = "Bearer " + token();
    const r = await fetch("/stats", { headers, cache: "no-store" });
    if (r.status === 401) {
      sessionStorage.removeItem("llmproxy.token");
      form.hidden = false;
      status.textContent = t("token_wrong");
      return;
    }
    if (!r.ok) throw new Error(String(r.status));
    lastStats = await r.json();
    form.hidden = true;
    status.textContent = t("live_updated", new Date().toLocaleTimeString());
    renderStats();
    renderPresets();
    renderGateway();
  } catch (e) {
    status.textContent = t("live_failed");
  } finally {
    polling = false;
  }
}

// ---- wiring ----

document.getElementById("version").textContent = /^v?\d/.test(info.version || "") ? "v" + info.version.replace(/^v/, "") : (info.version || "");
document.getElementById("lang-switch").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("llmproxy.lang", lang);
  applyLanguage();
});
document.getElementById("theme-switch").addEventListener("click", () => {
  const next = currentTheme() === "dark" ? "light" : "dark";
  localStorage.setItem("llmproxy.theme", next);
  document.documentElement.dataset.theme = next;
  applyTheme();
});
if (window.matchMedia) {
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
}
document.getElementById("filter").addEventListener("input", renderPresets);
document.getElementById("copy-example").addEventListener("click", () => copy(document.getElementById("example-code").textContent));
document.getElementById("gw-copy-example").addEventListener("click", () => copy(document.getElementById("gw-example-code").textContent));
document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = document.getElementById("token-input").value.trim();
  if (!v) return;
  sessionStorage.setItem("llmproxy.token", v);
  document.getElementById("token-input").value = "";
  poll();
});

applyLanguage();
poll();
setInterval(poll, 3000);
