// The runner dashboard: one page, routed by the URL's #fragment, reading and acting
// through the JSON API only. Rules kept throughout:
// - job data reaches the page as text (textContent / text nodes), never as markup;
// - the API token lives in sessionStorage and travels as an Authorization header
//   (no cookie: a request forged by another site carries nothing), and is never
//   shown back;
// - every view refreshes itself every few seconds while the tab is visible.

import { legend, lines, stackedBars } from "./charts.js";

const REFRESH_MS = 3000;
const TOKEN_KEY = "runner.token";
const STATES = ["scheduled", "running", "retrying", "paused", "succeeded", "failed", "cancelled"];
// Which requests apply from which state (runner/states.py's table, for the buttons;
// the API still decides and its refusal is shown).
const ACTIONS = {
  pause: ["scheduled", "retrying"],
  resume: ["paused"],
  cancel: ["scheduled", "retrying", "paused", "running"],
  retry: ["failed", "cancelled"],
  delete: ["succeeded", "failed", "cancelled", "scheduled", "retrying", "paused"],
};

// ---------------------------------------------------------------- DOM helpers

// el("td", {class: "x", dataset: {count: "k"}}, "text", child...): strings become
// text nodes, so nothing passed here is ever parsed as HTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "onclick") node.addEventListener("click", v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children.flat().filter((c) => c != null).map(
    (c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

// A password in a URL (scheme://user:secret@host) is never shown, wherever the
// text came from.
function redact(text) {
  return String(text).replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]*@/gi, "$1***@");
}

function json(value) {
  return redact(JSON.stringify(value, null, 2));
}

function badge(state) {
  return el("span", { class: `badge s-${String(state).replace(/[^a-z]/g, "")}` }, state ?? "unknown");
}

function time(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(0, 19).replace("T", " ");
}

function relative(iso) {
  if (!iso) return "";
  const s = (new Date(iso).getTime() - Date.now()) / 1000;
  if (Number.isNaN(s)) return "";
  const a = Math.abs(s);
  const span = a < 60 ? `${Math.round(a)} s` : a < 3600 ? `${Math.round(a / 60)} min`
    : a < 172800 ? `${(a / 3600).toFixed(1)} h` : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `in ${span}` : `${span} ago`;
}

function when(iso) {
  return el("span", { title: iso || "" }, time(iso), iso ? el("span", { class: "muted" }, ` (${relative(iso)})`) : null);
}

function took(ms) {
  if (ms == null) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${(ms / 60000).toFixed(1)} min`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

function section(title, ...children) {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}

// ---------------------------------------------------------------- token and API

const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "omit", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `the dashboard's server did not answer (${err.message})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const message = data && typeof data.error === "string" ? data.error : response.statusText;
    throw new ApiError(response.status, redact(message));
  }
  return data;
}

function refusal(err) {
  const status = err.status ? `${err.status}: ` : "";
  const hint = err.status === 401 ? " Paste the API token at the top right to act." : "";
  return `Refused (${status}${err.message}).${hint}`;
}

// ---------------------------------------------------------------- notices

const notice = {
  source: null,
  // `source` "refresh": a failed refresh, cleared by the next one that works.
  show(text, kind = "error", source = "action") {
    notice.source = source;
    const box = document.getElementById("notice");
    box.className = `notice ${kind}`;
    box.replaceChildren(el("span", {}, text),
      el("button", { type: "button", class: "quiet", "aria-label": "dismiss", onclick: () => notice.clear() }, "×"));
    box.hidden = false;
  },
  clear() {
    document.getElementById("notice").hidden = true;
  },
};

// What a request did, in words: the API's message, or the task request's result.
function outcome(label, result) {
  if (result && typeof result.message === "string") return redact(result.message);
  if (result && typeof result.task === "string") {
    const what = result.task === ":all" ? "every task" : `task ${result.task}`;
    return `${label}: ${what}${result.changed ? "" : " (it already was)"}`;
  }
  return `${label}: done`;
}

// A button that sends one request, then shows the API's answer or its refusal.
// `confirm` makes it two-step (press again within 4 s) for what cannot be undone.
function actionButton(label, method, path, { body, danger, confirm, action, enabled = true, done } = {}) {
  const button = el("button", { type: "button", class: danger ? "danger" : null, disabled: !enabled,
    dataset: { action: action || label.toLowerCase() } }, label);
  let armed = false;
  button.addEventListener("click", async () => {
    if (confirm && !armed) {
      armed = true;
      hold += 1;
      button.textContent = `${label}: press again`;
      button.classList.add("armed");
      setTimeout(() => {
        if (!armed) return;
        armed = false;
        hold -= 1;
        button.textContent = label;
        button.classList.remove("armed");
      }, 4000);
      return;
    }
    if (armed) { armed = false; hold -= 1; }
    button.disabled = true;
    hold += 1;
    try {
      const result = await api(method, path, body);
      notice.show(outcome(label, result), "ok");
      if (done) done(result);
    } catch (err) {
      notice.show(refusal(err));
    } finally {
      hold -= 1;
      button.disabled = false;
      await refreshNow();
    }
  });
  return button;
}

// ---------------------------------------------------------------- overview

async function throughput() {
  const doc = await api("GET", "/api/throughput?minutes=60");
  // One slot per minute of the last hour, whether or not the API sent it.
  const byMinute = new Map((doc.buckets || []).map((b) => [Math.floor(new Date(b.at).getTime() / 60000), b]));
  const now = Math.floor(Date.now() / 60000);
  const rows = [];
  for (let m = now - 59; m <= now; m += 1) rows.push(byMinute.get(m) || { at: new Date(m * 60000).toISOString() });
  return rows;
}

function minuteLabels(rows) {
  return rows.map((r) => new Date(r.at).toISOString().slice(11, 16)); // UTC, as every time shown
}

function charts(rows) {
  if (rows instanceof Error) {
    return section("Last hour", el("p", { class: "muted" }, `No throughput figures: ${rows.message}`));
  }
  const labels = minuteLabels(rows);
  const done = [{ key: "succeeded", label: "succeeded", cls: "c-ok" }, { key: "failed", label: "failed", cls: "c-bad" }];
  const late = [{ key: "lateness_p50_ms", label: "p50", cls: "c-mid" }, { key: "lateness_p99_ms", label: "p99", cls: "c-warn" }];
  const total = rows.reduce((s, r) => s + (r.succeeded || 0) + (r.failed || 0), 0);
  return el("div", { class: "two" },
    section(`Finished per minute, last hour (${total})`, stackedBars(rows, done, labels), legend(done)),
    section("Lateness: start minus due time", lines(rows, late, labels, took), legend(late)));
}

function card(label, value, key, note, warn) {
  return el("div", { class: `card${warn ? " warn" : ""}` },
    el("div", { class: "num", dataset: { count: key } }, String(value)),
    el("div", { class: "label" }, label),
    note ? el("div", { class: "muted small" }, note) : null);
}

function sum(obj) {
  return Object.values(obj || {}).reduce((a, b) => a + (b || 0), 0);
}

function liveCards(doc) {
  const lag = doc.oldest_due_lag_ms;
  const kinds = Object.entries(doc.due || {}).map(([k, n]) => `${k} ${n}`).join(", ");
  return el("div", { class: "cards" },
    card("running now", doc.running, "running"),
    card("due now", sum(doc.due), "due", kinds, sum(doc.due) > 0 && lag > 5000),
    card("oldest due is late by", took(lag), "lag", null, lag > 5000),
    card("waiting in schedule", sum(doc.waiting), "waiting"),
    card("live daemons", doc.daemons.length, "daemons", null, doc.daemons.length === 0),
    card("not yet in PostgreSQL", doc.unrecorded_entries, "unrecorded",
      doc.unrecorded_oldest_age_ms == null ? null : `oldest ${took(doc.unrecorded_oldest_age_ms)}`),
    card("set aside (malformed)", doc.set_aside.jobs + doc.set_aside.events, "set_aside", null,
      doc.set_aside.jobs + doc.set_aside.events > 0));
}

function maintenance(doc) {
  if (doc.maintenance) {
    const since = doc.maintenance_since || {};
    return el("div", { class: "banner warn" },
      el("strong", {}, "Maintenance mode: "),
      `no daemon claims anything, since ${time(since.at)} by ${since.by ?? "unknown"}. `,
      actionButton("Leave maintenance", "DELETE", "/api/maintenance", { action: "maintenance-off" }));
  }
  return el("div", { class: "banner" }, "Maintenance mode is off. ",
    actionButton("Enter maintenance", "POST", "/api/maintenance",
      { action: "maintenance-on", confirm: true, danger: true }));
}

function stateChips(doc) {
  const states = STATES.filter((s) => s in doc.states).concat(Object.keys(doc.states).filter((s) => !STATES.includes(s)));
  if (!states.length) return el("p", { class: "muted" }, "No job recorded yet.");
  return el("div", { class: "chips" }, states.map((s) =>
    el("a", { class: "chip", href: `#/jobs?state=${encodeURIComponent(s)}` },
      badge(s), el("span", { class: "num", dataset: { count: `state:${s}` } }, String(doc.states[s])))));
}

function taskTable(doc) {
  const names = [...new Set([...Object.keys(doc.tasks), ...Object.keys(doc.paused_tasks)])].sort();
  if (!names.length) return el("p", { class: "muted" }, "No task has jobs yet.");
  const head = el("tr", {}, el("th", {}, "task"), STATES.map((s) => el("th", { class: "n" }, s)), el("th", {}, "claims"), el("th", {}, ""));
  const rows = names.map((task) => {
    const counts = doc.tasks[task] || {};
    const paused = doc.paused_tasks[task];
    const path = `/api/tasks/${encodeURIComponent(task)}/`;
    return el("tr", {},
      el("td", {}, el("a", { href: `#/jobs?task=${encodeURIComponent(task)}` }, task)),
      STATES.map((s) => el("td", { class: `n${counts[s] ? "" : " muted"}` },
        el("span", { dataset: { count: `task:${task}:${s}` } }, String(counts[s] || 0)))),
      el("td", {}, paused
        ? el("span", { title: `paused by ${paused.by ?? "unknown"} at ${paused.at ?? "?"}` }, badge("paused"), ` ${paused.held ?? "?"} held`)
        : el("span", { class: "muted" }, "on")),
      el("td", { class: "actions" }, paused
        ? actionButton("Resume", "POST", `${path}resume`, { action: `resume-task:${task}` })
        : actionButton("Pause", "POST", `${path}pause`, { action: `pause-task:${task}` })));
  });
  return el("table", {}, el("thead", {}, head), el("tbody", {}, rows));
}

function daemonTable(doc) {
  const live = new Set(doc.daemons);
  const byId = new Map((doc.daemon_details || []).map((d) => [d.id, d]));
  const ids = [...new Set([...doc.daemons, ...Object.keys(doc.running_by_daemon || {})])];
  if (!ids.length) return el("p", { class: "muted" }, "No daemon has sent a heartbeat lately.");
  const head = el("tr", {}, ["daemon", "host", "pid", "version", "started", "heartbeat", "running"].map((h) => el("th", {}, h)));
  const rows = ids.map((id) => {
    const d = byId.get(id) || {};
    return el("tr", { class: live.has(id) ? null : "dead" },
      el("td", {}, id, live.has(id) ? null : el("span", { class: "badge s-failed" }, "not live")),
      el("td", {}, d.host ?? "-"), el("td", {}, d.pid ?? "-"), el("td", {}, d.version ?? "-"),
      el("td", {}, d.started ? when(d.started) : "-"),
      el("td", {}, d.heartbeat_age_ms == null ? "-" : `${took(d.heartbeat_age_ms)} ago`),
      el("td", { class: "n" }, String((doc.running_by_daemon || {})[id] || 0)));
  });
  return el("table", {}, el("thead", {}, head), el("tbody", {}, rows));
}

function overview(view) {
  return async () => {
    const [doc, rows] = await Promise.all([api("GET", "/api/status"), throughput().catch((e) => e)]);
    view.replaceChildren(
      maintenance(doc),
      liveCards(doc),
      section("Jobs by state (as recorded in PostgreSQL)", stateChips(doc)),
      charts(rows),
      section("Tasks", taskTable(doc)),
      section("Live daemons", daemonTable(doc)),
      el("p", { class: "muted small" }, `Status at ${time(doc.at)} UTC; `, el("code", {}, "runner status"), " shows the same."));
  };
}

// ---------------------------------------------------------------- job list

const SINCE = [["", "any time"], ["15m", "last 15 min"], ["1h", "last hour"], ["6h", "last 6 h"], ["24h", "last day"], ["7d", "last week"]];

function jobFilters(params) {
  const state = el("select", { name: "state" }, el("option", { value: "" }, "any state"),
    STATES.map((s) => el("option", { value: s, selected: params.get("state") === s }, s)));
  const task = el("input", { name: "task", placeholder: "any task", value: params.get("task") || "", spellcheck: "false" });
  const since = el("select", { name: "since" },
    SINCE.map(([v, l]) => el("option", { value: v, selected: (params.get("since") || "") === v }, l)));
  const form = el("form", { class: "filters" }, el("label", {}, "State ", state), el("label", {}, "Task ", task),
    el("label", {}, "Created ", since), el("button", { type: "submit" }, "Filter"),
    el("a", { href: "#/jobs", class: "quiet" }, "clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, String(v));
    location.hash = `#/jobs${q.toString() ? `?${q}` : ""}`;
  });
  state.addEventListener("change", () => form.requestSubmit());
  since.addEventListener("change", () => form.requestSubmit());
  return form;
}

function jobRows(jobs) {
  if (!jobs.length) return el("p", { class: "muted" }, "No jobs match.");
  const head = el("tr", {}, ["job", "task", "state", "attempt", "due (UTC)", "created", "updated"].map((h) => el("th", {}, h)));
  return el("table", { class: "jobs" }, el("thead", {}, head), el("tbody", {}, jobs.map((j) =>
    el("tr", {},
      el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(j.id)}`, class: "mono" }, j.id)),
      el("td", {}, j.task ?? "-"), el("td", {}, badge(j.state)), el("td", { class: "n" }, String(j.attempt)),
      el("td", {}, when(j.due_at)), el("td", {}, time(j.created_at)), el("td", {}, time(j.updated_at))))));
}

function jobList(view, params) {
  const results = el("div", {});
  view.replaceChildren(el("h1", {}, "Jobs"), jobFilters(params), results);
  return async () => {
    const q = new URLSearchParams();
    for (const k of ["state", "task", "since", "after"]) if (params.get(k)) q.set(k, params.get(k));
    q.set("limit", "50");
    const page = await api("GET", `/api/jobs?${q}`);
    const pager = el("div", { class: "pager" });
    if (params.get("after")) {
      const first = new URLSearchParams(params);
      first.delete("after");
      pager.append(el("a", { href: `#/jobs?${first}` }, "← first page"));
    }
    if (page.next_cursor) {
      const next = new URLSearchParams(params);
      next.set("after", page.next_cursor);
      pager.append(el("a", { href: `#/jobs?${next}` }, "next page →"));
    }
    results.replaceChildren(jobRows(page.jobs), pager);
  };
}

// ---------------------------------------------------------------- one job

function jobButtons(doc) {
  const path = `/api/jobs/${encodeURIComponent(doc.id)}`;
  const make = (label, action, opts = {}) => actionButton(label, opts.method || "POST",
    opts.method ? path : `${path}/${action}`,
    { action, danger: opts.danger, confirm: opts.confirm, enabled: ACTIONS[action].includes(doc.state), done: opts.done });
  return el("div", { class: "buttons" },
    make("Pause", "pause"), make("Resume", "resume"), make("Cancel", "cancel", { danger: true }),
    make("Retry", "retry"),
    make("Delete", "delete", { method: "DELETE", danger: true, confirm: true, done: () => { location.hash = "#/jobs"; } }));
}

function field(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function payload(value, key) {
  return el("pre", { class: "payload", dataset: { field: key } }, json(value));
}

function timeline(history) {
  if (!history.length) return el("p", { class: "muted" }, "Nothing recorded in PostgreSQL yet.");
  let previous = null;
  return el("ol", { class: "timeline" }, history.map((h) => {
    const at = new Date(h.at).getTime();
    const gap = previous == null ? null : at - previous;
    previous = at;
    const detail = { ...(h.detail || {}) };
    delete detail.args;
    delete detail.kwargs;
    return el("li", { class: `s-${String(h.to_state).replace(/[^a-z]/g, "")}` },
      el("div", { class: "when" }, time(h.at), gap == null ? null : el("span", { class: "muted" }, ` +${took(gap)}`)),
      el("div", {}, h.from_state ? badge(h.from_state) : el("span", { class: "muted" }, "new"), " → ", badge(h.to_state),
        el("span", { class: "muted" }, `  #${h.seq} · attempt ${h.attempt}${h.daemon ? ` · ${h.daemon}` : ""}`)),
      Object.keys(detail).length ? el("div", { class: "detail muted" }, Object.entries(detail).map(
        ([k, v]) => redact(`${k} ${typeof v === "string" ? v : JSON.stringify(v)}`)).join(" · ")) : null);
  }));
}

function jobPage(view, id) {
  return async () => {
    let doc;
    try {
      doc = await api("GET", `/api/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      view.replaceChildren(el("h1", {}, "Job ", el("span", { class: "mono" }, id)),
        el("p", {}, err.message), el("a", { href: "#/jobs" }, "← all jobs"));
      return;
    }
    const data = el("dl", { class: "fields" },
      field("task", el("a", { href: `#/jobs?task=${encodeURIComponent(doc.task ?? "")}` }, doc.task ?? "-")),
      field("state", el("span", { dataset: { field: "state" } }, badge(doc.state))),
      field("attempt", String(doc.attempt)),
      field("due at", when(doc.due_at)),
      field("error", doc.error == null ? "-" : el("pre", { class: "payload error", dataset: { field: "error" } }, redact(doc.error))),
      field("result", doc.result == null ? "-" : payload(doc.result, "result")),
      doc.extra ? field("extra", payload(doc.extra, "extra")) : null);
    view.replaceChildren(
      el("p", {}, el("a", { href: "#/jobs" }, "← all jobs")),
      el("h1", {}, "Job ", el("span", { class: "mono" }, doc.id), " ", badge(doc.state)),
      jobButtons(doc),
      el("div", { class: "two" },
        section("Data", data, el("h3", {}, "args"), payload(doc.args, "args"), el("h3", {}, "kwargs"), payload(doc.kwargs, "kwargs")),
        section("History", timeline(doc.history || []))));
  };
}

// ---------------------------------------------------------------- cron

function cronPage(view) {
  return async () => {
    const docs = await api("GET", "/api/cron");
    const body = docs.length ? el("table", {},
      el("thead", {}, el("tr", {}, ["schedule", "when", "task", "policies", "last fire", "next fires"].map((h) => el("th", {}, h)))),
      el("tbody", {}, docs.map((d) => el("tr", {},
        el("td", {}, el("strong", {}, d.name)),
        el("td", {}, el("code", {}, d.schedule), el("div", { class: "muted small" }, d.timezone)),
        el("td", {}, el("a", { href: `#/jobs?task=${encodeURIComponent(d.task)}` }, d.task)),
        el("td", { class: "small" }, `misfire ${d.misfire ?? "-"}`, el("br"), `overlap ${d.overlap ?? "-"}`),
        el("td", {}, d.last
          ? [when(d.last.tick), el("div", {}, el("a", { href: `#/jobs/${encodeURIComponent(d.last.job_id)}`, class: "mono small" }, d.last.job_id), " ", badge(d.last.state ?? "expired"))]
          : el("span", { class: "muted" }, "never fired")),
        el("td", {}, (d.next || []).map((n, i) => el("div", { class: i ? "muted small" : null }, when(n))))))))
      : el("p", { class: "muted" }, "No cron schedules in the config.");
    view.replaceChildren(el("h1", {}, "Cron schedules"), section(`${docs.length} schedule${docs.length === 1 ? "" : "s"}`, body));
  };
}

// ---------------------------------------------------------------- routing and refresh

let refresh = null;
let hold = 0; // > 0 while a request is in flight or a button awaits its second press
let generation = 0;

function route() {
  const [path, query = ""] = (location.hash.replace(/^#/, "") || "/").split("?");
  const params = new URLSearchParams(query);
  const view = document.getElementById("view");
  const parts = path.split("/").filter(Boolean);
  let name = "overview";
  if (parts[0] === "jobs" && parts.length > 1) {
    name = "jobs";
    refresh = jobPage(view, decodeURIComponent(parts.slice(1).join("/")));
  } else if (parts[0] === "jobs") {
    name = "jobs";
    refresh = jobList(view, params);
  } else if (parts[0] === "cron") {
    name = "cron";
    refresh = cronPage(view);
  } else {
    refresh = overview(view);
  }
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("here", a.dataset.nav === name);
  document.title = `runner · ${name}`;
  generation += 1;
  notice.clear();
  refreshNow();
}

async function refreshNow() {
  const mine = generation;
  const current = refresh;
  try {
    await current();
    if (mine !== generation) return;
    document.getElementById("updated").textContent = `updated ${new Date().toTimeString().slice(0, 8)}`;
    document.body.dataset.loaded = String(Date.now());
    if (notice.source === "refresh") notice.clear();
  } catch (err) {
    if (mine !== generation) return;
    document.getElementById("updated").textContent = "not updated";
    notice.show(err.status ? refusal(err) : String(err.message || err), "error", "refresh");
  }
}

function showToken() {
  const has = Boolean(token.get());
  document.getElementById("token-form").hidden = has;
  document.getElementById("token-set").hidden = !has;
}

function start() {
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token-input");
    const value = input.value.trim();
    input.value = "";
    if (value) token.set(value);
    showToken();
    notice.clear();
    refreshNow();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    token.forget();
    showToken();
  });
  showToken();
  window.addEventListener("hashchange", route);
  setInterval(() => {
    if (!document.hidden && hold === 0) refreshNow();
  }, REFRESH_MS);
  route();
}

start();
