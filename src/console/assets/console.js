// claude-pool admin console. Served from /assets/console.js (the page's
// Content-Security-Policy allows no other script). Every change is sent with the
// page's CSRF token; every text from the server is set with textContent.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function api(method, url, body) {
  const headers = { "Accept": "application/json", "X-CSRF-Token": csrf() };
  const init = { method, headers, credentials: "same-origin" };
  if (body instanceof URLSearchParams) {
    init.body = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  if (resp.status === 401 && document.body.dataset.page !== "sign-in") {
    location.assign("/");
    throw new Error("signed out");
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const message = (data.error && data.error.message) || `HTTP ${resp.status}`;
    throw new Error(message);
  }
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const fmt = {
  usd: (v) => (v === null || v === undefined ? "—" : `$${Number(v).toFixed(v > 0 && v < 10 ? 3 : 2)}`),
  bytes: (b) => (b ? `${(b / 1048576).toFixed(0)} MiB` : "—"),
  age: (s) => {
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  },
  ms: (v) => (v === null || v === undefined ? "—" : `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`),
  date: (iso) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "—"),
  time: (ms) => new Date(ms).toLocaleTimeString(),
};

function signOutButton() {
  const button = document.getElementById("sign-out");
  if (!button) return;
  button.addEventListener("click", async () => {
    try { await api("POST", "/admin/logout"); } catch (_) { /* signed out anyway */ }
    location.assign("/");
  });
  const page = document.body.dataset.page;
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.dataset.nav === page) a.classList.add("active");
  });
}

function signInPage() {
  const form = document.getElementById("sign-in");
  document.getElementById("sign-in-token").value = csrf();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("sign-in-error");
    error.textContent = "";
    try {
      await api("POST", "/admin/login", new URLSearchParams(new FormData(form)));
      location.assign("/");
    } catch (e) {
      error.textContent = e.message;
      document.getElementById("password").select();
    }
  });
}

function exchangePage() {
  const form = document.getElementById("exchange");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("exchange-error");
    error.textContent = "";
    const value = (id) => document.getElementById(id).value.trim();
    const body = { oauth_token: value("oauth_token") };
    if (value("key_alias")) body.key_alias = value("key_alias");
    if (value("models")) body.models = value("models").split(",").map((m) => m.trim()).filter(Boolean);
    if (value("duration")) body.duration = value("duration");
    if (value("max_budget")) body.max_budget = Number(value("max_budget"));
    if (value("rpm_limit")) body.rpm_limit = Number(value("rpm_limit"));
    try {
      const key = await api("POST", "/auth/exchange", body);
      form.reset();
      showNewKey(key);
    } catch (e) {
      error.textContent = e.message;
    }
  });
  document.getElementById("copy-key").addEventListener("click", async () => {
    const button = document.getElementById("copy-key");
    const text = document.getElementById("new-key").textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(document.getElementById("new-key"));
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      document.execCommand("copy");
    }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
}

function showNewKey(key) {
  document.getElementById("new-key").textContent = key.key;
  const parts = [key.key_alias ? `alias ${key.key_alias}` : "no alias",
    key.models && key.models.length ? `models ${key.models.join(", ")}` : "all models",
    key.expires ? `expires ${fmt.date(key.expires)}` : "no expiry"];
  document.getElementById("new-key-meta").textContent = parts.join(" · ");
  const apiPort = document.querySelector('meta[name="api-port"]').content;
  const base = `http://${location.hostname}:${apiPort}/v1`;
  document.getElementById("new-key-usage").textContent =
    `export OPENAI_BASE_URL=${base}\nexport OPENAI_API_KEY=${key.key}\n\n` +
    `curl $OPENAI_BASE_URL/chat/completions -H "Authorization: Bearer $OPENAI_API_KEY" \\\n` +
    `  -H "Content-Type: application/json" \\\n` +
    `  -d '{"model": "sonnet", "messages": [{"role": "user", "content": "Hello"}]}'`;
  const card = document.getElementById("new-key-card");
  card.hidden = false;
  card.scrollIntoView({ behavior: "smooth", block: "start" });
}

let seenEvents = null;

function renderPool(p) {
  const status = document.getElementById("pool-status");
  status.textContent = p.draining ? "draining" : p.ready ? "ready" : p.serving ? "serving" : "not ready";
  status.className = `pill ${p.ready && !p.draining ? "ok" : "bad"}`;
  document.getElementById("pool-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  const stat = (label, value, cls) => el("div", { class: `stat ${cls || ""}` },
    el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  const c = p.counts;
  document.getElementById("pool-stats").replaceChildren(
    stat("busy", c.busy, c.busy ? "busy" : ""),
    stat("idle", c.idle),
    stat("starting", c.starting),
    stat("spare (ready for new conversations)", p.spare),
    stat("released for spares", p.spare_releases),
    stat(`workers (min ${p.min_workers}, max ${p.max_workers})`, c.busy + c.idle + c.starting + c.stopping),
    stat("queued", p.queue_depth, p.queue_depth ? "warn" : ""),
    stat("awaiting tool results", p.parked_turns, p.parked_turns ? "busy" : ""),
    stat("sessions", p.sessions),
    stat("TTFT p50", fmt.ms(p.ttft && p.ttft.p50_ms)),
    stat("TTFT p99", fmt.ms(p.ttft && p.ttft.p99_ms)),
    stat("turns", p.turns_started),
    stat("failed turns", p.turns_failed, p.turns_failed ? "warn" : ""),
    stat("restarts", p.restarts, p.restarts ? "warn" : ""),
    stat("failed starts", p.spawn_failures, p.spawn_failures ? "warn" : ""),
  );
  const rows = p.workers.map((w) => el("tr", { "data-worker": String(w.id), class: `state-${w.state}` },
    el("td", {}, w.id),
    el("td", {}, el("span", { class: `state ${w.state}` }, w.state)),
    el("td", { class: "mono", title: w.session ? `${w.session} (${w.session_key || "no key"})` : "" },
      w.session ? `${w.session_key || ""} · ${w.session.slice(0, 8)}` : "—"),
    el("td", { class: "mono" }, w.credential),
    el("td", {}, w.profile),
    el("td", {}, w.turns),
    el("td", {}, fmt.bytes(w.rss_bytes)),
    el("td", {}, fmt.age(w.age_seconds)),
    el("td", { class: "mono" }, w.pid || "—")));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 9, class: "muted" }, "no workers")));
  document.querySelector("#workers tbody").replaceChildren(...rows);
  const fresh = seenEvents === null ? new Set() : new Set(p.events.map((e) => `${e.at_ms}-${e.worker}-${e.kind}`).filter((k) => !seenEvents.has(k)));
  seenEvents = new Set(p.events.map((e) => `${e.at_ms}-${e.worker}-${e.kind}`));
  const items = p.events.slice(0, 30).map((e) => {
    const key = `${e.at_ms}-${e.worker}-${e.kind}`;
    return el("li", { class: `event ${e.kind}${fresh.has(key) ? " new" : ""}`, "data-kind": e.kind },
      el("span", { class: "when" }, fmt.time(e.at_ms)),
      el("span", { class: "what" }, `worker ${e.worker} ${e.kind.replace("_", " ")}`),
      e.detail ? el("span", { class: "detail" }, e.detail) : null);
  });
  if (!items.length) items.push(el("li", { class: "muted" }, "nothing yet"));
  document.getElementById("events").replaceChildren(...items);
}

function renderKeys(keys) {
  const rows = keys.map((k) => {
    const status = k.revoked ? "revoked" : k.blocked ? "blocked" : k.active ? "active" : "expired";
    const actions = el("td", { class: "actions" });
    if (!k.revoked) {
      const revoke = el("button", { type: "button", class: "danger small", "data-action": "revoke" }, "Revoke");
      revoke.addEventListener("click", () => confirmRevoke(actions, k));
      actions.append(revoke);
    }
    const budget = k.effective_budget === null ? "no budget" : fmt.usd(k.effective_budget);
    return el("tr", { "data-token": k.token, class: `key-${status}` },
      el("td", {}, k.key_alias || el("span", { class: "muted" }, "—")),
      el("td", { class: "mono" }, k.key_name),
      el("td", {}, k.models.length ? k.models.join(", ") : "all"),
      el("td", {}, `${fmt.usd(k.spend)} / ${budget}`),
      el("td", {}, k.expires ? fmt.date(k.expires) : "never"),
      el("td", { class: "mono" }, k.credential_fingerprint || "server"),
      el("td", {}, k.last_used ? fmt.date(k.last_used) : "never"),
      el("td", {}, el("span", { class: `state ${status}` }, status)),
      actions);
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 9, class: "muted" }, "no keys")));
  document.querySelector("#keys tbody").replaceChildren(...rows);
}

function confirmRevoke(cell, key) {
  const name = key.key_alias || key.key_name;
  const yes = el("button", { type: "button", class: "danger small", "data-action": "confirm-revoke" }, `Revoke ${name}`);
  const no = el("button", { type: "button", class: "small", "data-action": "cancel" }, "Cancel");
  yes.addEventListener("click", async () => {
    try {
      await api("DELETE", `/admin/keys/${encodeURIComponent(key.token)}`);
      document.getElementById("keys-error").textContent = "";
    } catch (e) {
      document.getElementById("keys-error").textContent = e.message;
    }
    loadKeys({ force: true });
  });
  no.addEventListener("click", () => loadKeys({ force: true }));
  cell.replaceChildren(el("span", { class: "confirm" }, "Sure? "), yes, no);
}

// What the key table shows now, so a refresh that brings nothing new leaves the
// rows (and a button the operator is about to press) in place.
let shownKeys = null;

// Redraws the key table. A periodic or filter refresh never redraws under an open
// revoke confirmation (a request in flight when it opened included) and skips
// unchanged data; `force` is for the confirmation's own buttons.
async function loadKeys({ force = false } = {}) {
  const filter = document.getElementById("key-filter").value.trim();
  try {
    const data = await api("GET", `/admin/api/keys?alias=${encodeURIComponent(filter)}`);
    const shown = JSON.stringify(data.keys);
    if (!force && (shown === shownKeys || document.querySelector("#keys .confirm"))) return;
    shownKeys = shown;
    renderKeys(data.keys);
  } catch (e) {
    document.getElementById("keys-error").textContent = e.message;
  }
}

async function loadPool() {
  try {
    renderPool(await api("GET", "/admin/api/pool"));
  } catch (e) {
    const status = document.getElementById("pool-status");
    status.textContent = "unreachable";
    status.className = "pill bad";
  }
}

function adminPage() {
  loadPool();
  loadKeys();
  setInterval(loadPool, 1000);
  setInterval(() => loadKeys(), 5000);
  let timer = null;
  document.getElementById("key-filter").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => loadKeys(), 200);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  signOutButton();
  const page = document.body.dataset.page;
  if (page === "sign-in") signInPage();
  if (page === "home") exchangePage();
  if (page === "admin") adminPage();
});
