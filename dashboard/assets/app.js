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
    t_requests: "Requests", t_errors: "Upstream errors", t_streams: "Open streams", t_ws: "Open WebSockets",
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
    footer_private: "This page loads nothing from any other host.",
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
    t_requests: "请求数", t_errors: "上游错误", t_streams: "进行中的流", t_ws: "进行中的 WebSocket",
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
    footer_private: "本页面不会从任何其他主机加载内容。",
  },
};

let lang = localStorage.getItem("llmproxy.lang") || (document.documentElement.lang === "zh" ? "zh" : "en");
let lastStats = null;
let currentTab = "curl";

function t(key, ...args) {
  const s = (T[lang] && T[lang][key]) || T.en[key] || key;
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
    const errors = s ? (s.upstream_errors || 0) + ((s.responses && s.responses["5xx"]) || 0) : (lastStats ? 0 : "–");
    const ttfb = s && s.latency_first_byte && s.latency_first_byte.samples ? fmtMs(s.latency_first_byte.p50_ms) : "–";
    const name = el("td", {},
      el("div", { class: "pname", text: "/" + p.name }),
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

function examples() {
  const auth = info.features.preset_auth ? "/<token>" : "";
  const o = origin + auth;
  const wo = wsOrigin + auth;
  return {
    curl: {
      code: `curl ${o}/openai/v1/chat/completions \\
  -H "Authorization: Bearer $OPENAI_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "gpt-4o-mini", "stream": true,
       "messages": [{"role": "user", "content": "Hello!"}]}'`,
      note: t("note_curl"),
    },
    openai_py: {
      code: `from openai import OpenAI

client = OpenAI(base_url="${o}/openai/v1", api_key="sk-...")
stream = client.chat.completions.create(
    model="gpt-4o-mini", stream=True,
    messages=[{"role": "user", "content": "Hello!"}])
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="")`,
      note: t("note_curl"),
    },
    openai_js: {
      code: `import OpenAI from "openai";

const client = new OpenAI({ baseURL: "${o}/openai/v1", apiKey: process.env.OPENAI_API_KEY });
const stream = await client.chat.completions.create({
  model: "gpt-4o-mini", stream: true,
  messages: [{ role: "user", content: "Hello!" }],
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? "");`,
      note: t("note_curl"),
    },
    anthropic: {
      code: `import anthropic

client = anthropic.Anthropic(base_url="${o}/claude", api_key="sk-ant-...")
message = client.messages.create(
    model="claude-sonnet-4-5", max_tokens=512,
    messages=[{"role": "user", "content": "Hello!"}])
print(message.content[0].text)`,
      note: t("note_curl"),
    },
    gemini: {
      code: `from google import genai
from google.genai import types

client = genai.Client(api_key="...", http_options=types.HttpOptions(base_url="${o}/gemini"))
for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="Hello!"):
    print(chunk.text, end="")`,
      note: info.features.gemini_resume ? t("f_resume") + " ✓" : t("note_curl"),
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

const tabKeys = [["curl", "ex_curl"], ["openai_py", "ex_openai_py"], ["openai_js", "ex_openai_js"],
  ["anthropic", "ex_anthropic"], ["gemini", "ex_gemini"], ["generic", "ex_generic"], ["ws", "ex_ws"]];

function renderTabs() {
  const tabs = document.getElementById("tabs");
  tabs.replaceChildren();
  for (const [key, label] of tabKeys) {
    const b = el("button", { type: "button", class: "tab", text: t(label) });
    b.setAttribute("role", "tab");
    b.dataset.tab = key;
    b.setAttribute("aria-selected", String(key === currentTab));
    b.addEventListener("click", () => { currentTab = key; renderTabs(); });
    tabs.append(b);
  }
  const ex = examples()[currentTab];
  document.getElementById("example-code").textContent = ex.code;
  document.getElementById("example-note").textContent = ex.note;
}

// ---- live numbers ----

function renderStats() {
  const box = document.getElementById("totals");
  box.replaceChildren();
  if (!lastStats) return;
  const c = lastStats.totals;
  const sum = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
  const tiles = [
    [t("t_requests"), c.requests], [t("t_errors"), c.upstream_errors], [t("t_streams"), c.open_streams],
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
