// llmproxy admin panel: the few live parts of server-rendered pages.
// Everything is built with DOM calls and textContent: no value (a name, a
// reason, a number) is ever parsed as HTML.
"use strict";

const M = JSON.parse(document.getElementById("i18n").textContent);

function t(key, ...args) {
  let i = 0;
  return (M[key] || key).replace(/%v/g, () => String(args[i++]));
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
}

// ---- theme (the dashboard's switch and storage) ----

function systemDark() {
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
}
function currentTheme() {
  return document.documentElement.dataset.theme || (systemDark() ? "dark" : "light");
}
function applyTheme() {
  const saved = localStorage.getItem("llmproxy.theme");
  if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
  // The switch names the theme it turns on.
  document.getElementById("theme-switch").textContent = currentTheme() === "dark" ? t("theme_light") : t("theme_dark");
}
document.getElementById("theme-switch").addEventListener("click", () => {
  const next = currentTheme() === "dark" ? "light" : "dark";
  localStorage.setItem("llmproxy.theme", next);
  document.documentElement.dataset.theme = next;
  applyTheme();
});
if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
applyTheme();
// The dashboard keeps the language in localStorage; keep the two in step.
localStorage.setItem("llmproxy.lang", document.documentElement.lang === "zh-CN" ? "zh" : "en");

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
    // A page not served over HTTPS has no clipboard API: a hidden text area.
    const ta = el("textarea", { class: "offscreen", readonly: "" });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand && document.execCommand("copy");
    ta.remove();
    if (!ok) { toast(t("copy_failed")); return; }
  }
  document.body.dataset.copied = "yes";
  toast(t("copied"));
}

document.querySelectorAll("[data-copy-from]").forEach((b) => {
  b.addEventListener("click", () => copy(document.getElementById(b.dataset.copyFrom).textContent.trim()));
});

// ---- forms ----

document.querySelectorAll("form[data-confirm]").forEach((f) => {
  f.addEventListener("submit", (e) => {
    if (!window.confirm(f.dataset.confirm)) e.preventDefault();
  });
});

document.querySelectorAll("select[data-autosubmit]").forEach((s) => {
  s.addEventListener("change", () => s.form.requestSubmit());
});

// "Add another": copy the last row, with the next index in its ids.
document.querySelectorAll("[data-add-row]").forEach((b) => {
  b.addEventListener("click", () => {
    const box = document.getElementById(b.dataset.addRow);
    const rows = box.querySelectorAll(".row");
    const last = rows[rows.length - 1];
    if (!last) return;
    const n = rows.length;
    const row = last.cloneNode(true);
    row.querySelectorAll("[id]").forEach((x) => { x.id = x.id.replace(/-\d+$/, "-" + n); });
    row.querySelectorAll("label[for]").forEach((x) => { x.htmlFor = x.htmlFor.replace(/-\d+$/, "-" + n); });
    row.querySelectorAll("input").forEach((x) => { x.value = ""; x.removeAttribute("aria-invalid"); });
    row.querySelectorAll("select").forEach((x) => { x.selectedIndex = 0; });
    box.append(row);
    const first = row.querySelector("input, select");
    if (first) first.focus();
  });
});

// ---- providers: live key health ----

function utcText(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

function setState(node, prefix, state) {
  node.className = node.className.split(" ").filter((c) => !c.startsWith("state-")).join(" ") + " state-" + state;
  node.textContent = t(prefix + state);
}

let healthTimer;
async function pollHealth() {
  const status = document.getElementById("health-status");
  try {
    const r = await fetch("/admin/api/health", { cache: "no-store", credentials: "same-origin" });
    if (r.status === 401) {
      status.textContent = t("session_ended");
      clearInterval(healthTimer);
      return;
    }
    if (!r.ok) throw new Error(String(r.status));
    const report = await r.json();
    for (const p of report.providers || []) {
      const breaker = document.querySelector(`dd.breaker[data-provider="${CSS.escape(p.name)}"]`);
      if (breaker) {
        setState(breaker.querySelector(".breaker-state"), "breaker_", p.breaker);
        breaker.querySelector(".breaker-until").textContent = p.breaker_until ? t("until", utcText(p.breaker_until)) : "";
      }
      (p.keys || []).forEach((k, i) => {
        const row = document.querySelector(`tr[data-key-of="${CSS.escape(p.name)}"][data-key-index="${i}"]`);
        if (!row || row.dataset.keyName !== k.name) return;
        const state = row.querySelector(".key-state");
        if (!state) return;
        setState(state, "state_", k.state);
        row.querySelector(".key-until").textContent = k.until ? t("until", utcText(k.until)) : "";
        row.querySelector(".key-reason").textContent = k.reason || "";
        row.querySelector(".key-requests").textContent = String(k.requests);
        row.querySelector(".key-failures").textContent = String(k.failures);
        const form = row.querySelector(".enable-form");
        if (form) form.hidden = k.state === "ok";
      });
    }
    status.textContent = t("live_updated", new Date().toLocaleTimeString());
    document.body.dataset.healthPolls = String(Number(document.body.dataset.healthPolls || 0) + 1);
  } catch (e) {
    status.textContent = t("live_failed");
  }
}

if (document.body.dataset.page === "providers" && document.getElementById("health-status")) {
  pollHealth();
  healthTimer = setInterval(pollHealth, 3000);
}

// ---- usage: the chart, drawn here as SVG ----

const usageData = document.getElementById("usage-data");
if (usageData) {
  const data = JSON.parse(usageData.textContent);
  const metric = document.getElementById("usage-metric");
  const group = document.getElementById("usage-group");
  const draw = () => drawChart(data, metric.value, group.value);
  metric.addEventListener("change", draw);
  group.addEventListener("change", draw);
  window.addEventListener("resize", draw);
  draw();
}

function fmtNum(n, metric, currency) {
  if (metric === "n") return (n / 1e9).toFixed(n >= 1e11 ? 0 : 2) + (currency ? " " + currency.toUpperCase() : "");
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(0) + "k";
  return String(Math.round(n));
}

function drawChart(data, metric, by) {
  const box = document.getElementById("usage-chart");
  const legend = document.getElementById("usage-legend");
  box.replaceChildren();
  legend.replaceChildren();
  let rows = data.rows;
  let currency = "";
  if (metric === "n") {
    // One currency at a time: the one spent most.
    const per = {};
    for (const r of rows) if (r.u) per[r.u] = (per[r.u] || 0) + r.n;
    currency = Object.keys(per).sort((a, b) => per[b] - per[a])[0] || "";
    rows = rows.filter((r) => r.u === currency);
  }
  // The seven largest groups by name, the rest as "other".
  const totals = {};
  for (const r of rows) totals[r[by]] = (totals[r[by]] || 0) + r[metric];
  const names = Object.keys(totals).filter((n) => totals[n] > 0).sort((a, b) => totals[b] - totals[a]);
  const shown = names.slice(0, 7);
  const other = names.length > 7;
  const series = other ? [...shown, "\u0000other"] : shown;
  const index = {};
  series.forEach((n, i) => { index[n] = i; });
  const days = data.days;
  const dayIndex = {};
  days.forEach((d, i) => { dayIndex[d] = i; });
  const stacks = days.map(() => new Array(series.length).fill(0));
  for (const r of rows) {
    const di = dayIndex[r.d];
    if (di === undefined) continue;
    const si = r[by] in index ? index[r[by]] : index["\u0000other"];
    if (si === undefined) continue;
    stacks[di][si] += r[metric];
  }
  const max = Math.max(0, ...stacks.map((s) => s.reduce((a, b) => a + b, 0)));

  const W = Math.max(300, box.clientWidth || 800);
  const H = W < 500 ? 220 : 260;
  const left = 56, right = 8, top = 10, bottom = 26;
  const plotW = W - left - right, plotH = H - top - bottom;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "presentation" });
  box.append(root);
  if (max === 0) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, t("chart_empty")));
    box.dataset.bars = "0";
    return;
  }
  for (const f of [0, 0.5, 1]) {
    const y = top + plotH - f * plotH;
    root.append(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: f === 0 ? "axis" : "grid-line" }));
    root.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, fmtNum(max * f, metric, currency)));
  }
  const slot = plotW / days.length;
  const barW = Math.max(1, Math.min(36, slot * 0.7));
  const every = Math.ceil(days.length / Math.max(1, Math.floor(plotW / 56)));
  let bars = 0;
  days.forEach((d, di) => {
    const x = left + di * slot + (slot - barW) / 2;
    let y = top + plotH;
    stacks[di].forEach((v, si) => {
      if (v <= 0) return;
      const h = (v / max) * plotH;
      y -= h;
      const rect = svg("rect", { x, y, width: barW, height: Math.max(h, 0.5), class: "bar s" + si });
      const label = series[si] === "\u0000other" ? t("other") : (series[si] || "–");
      rect.append(svg("title", {}, `${d} · ${label}: ${fmtNum(v, metric, currency)}`));
      root.append(rect);
      bars++;
    });
    if (di % every === 0) {
      root.append(svg("text", { x: left + di * slot + slot / 2, y: H - 8, "text-anchor": "middle" }, d.slice(5)));
    }
  });
  box.dataset.bars = String(bars);
  series.forEach((n, i) => {
    legend.append(el("span", {}, el("span", { class: "swatch s" + i }), n === "\u0000other" ? t("other") : (n || "–")));
  });
}
