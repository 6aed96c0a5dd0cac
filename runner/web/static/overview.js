// The overview: live figures, jobs by state, the last hour in charts, every task
// of the config (with or without jobs, so any can be paused), and the daemons.

import { actionButton } from "./actions.js";
import { api } from "./api.js";
import { durationLines, legend, stackedBars } from "./charts.js";
import { badge, el, redraw, section, table, when } from "./dom.js";
import { limitTable } from "./limits.js";
import { STATES } from "./states.js";
import { time, took } from "./format.js";

async function throughput() {
  const doc = await api("GET", "/api/throughput?minutes=60");
  // One slot per minute of the last hour, whether or not the API sent it.
  const byMinute = new Map((doc.buckets || []).map((b) => [Math.floor(new Date(b.at).getTime() / 60000), b]));
  const now = Math.floor(Date.now() / 60000);
  const rows = [];
  for (let m = now - 59; m <= now; m += 1) rows.push(byMinute.get(m) || { at: new Date(m * 60000).toISOString() });
  return rows;
}

function charts(rows) {
  if (rows instanceof Error) {
    return section("Last hour", el("p", { class: "muted" }, `No throughput figures: ${rows.message}`));
  }
  const labels = rows.map((r) => time(r.at).slice(11, 16)); // HH:MM in UTC, as every time shown
  const done = [{ key: "succeeded", label: "succeeded", cls: "c-ok" }, { key: "failed", label: "failed", cls: "c-bad" }];
  const late = [{ key: "lateness_p50_ms", label: "p50", cls: "c-mid" }, { key: "lateness_p99_ms", label: "p99", cls: "c-warn" }];
  const total = rows.reduce((s, r) => s + (r.succeeded || 0) + (r.failed || 0), 0);
  return el("div", { class: "two" },
    section(`Finished per minute, last hour, UTC (${total})`, stackedBars(rows, done, labels, "finished"), legend(done)),
    section("Lateness: start minus due time", durationLines(rows, late, labels, "lateness"), legend(late)));
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

// Every task the config declares, every task with recorded jobs, every paused one.
function taskNames(doc) {
  const names = [...(doc.configured_tasks || []), ...Object.keys(doc.tasks), ...Object.keys(doc.paused_tasks)];
  return [...new Set(names)].filter((name) => name !== ":all").sort();
}

function taskTable(doc) {
  const names = taskNames(doc);
  if (!names.length) return el("p", { class: "muted" }, "The config declares no task.");
  const head = el("tr", {}, el("th", {}, "task"), STATES.map((s) => el("th", { class: "n" }, s)), el("th", {}, "claims"), el("th", {}, ""));
  const rows = names.map((task) => {
    const counts = doc.tasks[task] || {};
    const paused = doc.paused_tasks[task];
    const path = `/api/tasks/${encodeURIComponent(task)}/`;
    return el("tr", { dataset: { task } },
      el("td", {}, el("a", { href: `#/jobs?task=${encodeURIComponent(task)}` }, task)),
      STATES.map((s) => el("td", { class: `n${counts[s] ? "" : " muted"}` },
        el("span", { dataset: { count: `task:${task}:${s}` } }, String(counts[s] || 0)))),
      el("td", {}, paused
        ? el("span", { title: `paused by ${paused.by ?? "unknown"} at ${time(paused.at)}` }, badge("paused"), ` ${paused.held ?? "?"} held`)
        : el("span", { class: "muted" }, "on")),
      el("td", { class: "actions" }, paused
        ? actionButton("Resume", "POST", `${path}resume`, { action: `resume-task:${task}` })
        : actionButton("Pause", "POST", `${path}pause`, { action: `pause-task:${task}` })));
  });
  return table({}, el("thead", {}, head), el("tbody", {}, rows));
}

// Each queue: due and waiting jobs, running ones, how late its earliest due job is,
// and what is not yet in PostgreSQL (shown once there is more than the default one).
function queueTable(doc) {
  const queues = Object.entries(doc.queues || {});
  const head = el("tr", {}, ["queue", "due now", "waiting", "running", "oldest due is late by", "not yet in PostgreSQL"]
    .map((h, n) => el("th", n ? { class: "n" } : {}, h)));
  const rows = queues.map(([name, q]) => el("tr", { dataset: { queue: name } },
    el("td", {}, el("a", { href: `#/jobs?queue=${encodeURIComponent(name)}` }, name)),
    el("td", { class: "n" }, String(sum(q.due))),
    el("td", { class: "n" }, String(sum(q.waiting))),
    el("td", { class: "n" }, String(q.running)),
    el("td", { class: "n" }, q.oldest_due_lag_ms == null ? "-" : took(q.oldest_due_lag_ms)),
    el("td", { class: "n" }, String(q.unrecorded_entries))));
  return table({}, el("thead", {}, head), el("tbody", {}, rows));
}

function daemonTable(doc) {
  const live = new Set(doc.daemons);
  const byId = new Map((doc.daemon_details || []).map((d) => [d.id, d]));
  const ids = [...new Set([...doc.daemons, ...Object.keys(doc.running_by_daemon || {})])];
  if (!ids.length) return el("p", { class: "muted" }, "No daemon has sent a heartbeat lately.");
  const head = el("tr", {}, ["daemon", "host", "pid", "version", "started", "heartbeat", "running", "pools"].map((h) => el("th", {}, h)));
  const rows = ids.map((id) => {
    const d = byId.get(id) || {};
    return el("tr", { class: live.has(id) ? null : "dead" },
      el("td", {}, id, live.has(id) ? null : el("span", { class: "badge s-failed" }, "not live")),
      el("td", {}, d.host ?? "-"), el("td", {}, d.pid ?? "-"), el("td", {}, d.version ?? "-"),
      el("td", {}, d.started ? when(d.started) : "-"),
      el("td", {}, d.heartbeat_age_ms == null ? "-" : `${took(d.heartbeat_age_ms)} ago`),
      el("td", { class: "n" }, String((doc.running_by_daemon || {})[id] || 0)),
      el("td", { class: "pools" }, poolCells(d.pools || {})));
  });
  return table({}, el("thead", {}, head), el("tbody", {}, rows));
}

// Per kind: slots in use / all, and the threads still held by jobs past their timeout
// (the reason a queue can stall with nothing running), with the oldest one's job.
function poolCells(pools) {
  const kinds = Object.entries(pools);
  if (!kinds.length) return "-";
  return kinds.map(([kind, p]) => {
    const text = `${kind} ${p.in_use ?? "?"}/${(p.in_use ?? 0) + (p.free ?? 0)}`;
    const held = p.held_by_timed_out && p.oldest_held
      ? el("span", { class: "badge s-failed", title: `oldest: job ${p.oldest_held.job_id} since ${time(p.oldest_held.since)}` },
        `${p.held_by_timed_out} held past timeout, oldest ${took(p.oldest_held.age_ms)}`)
      : null;
    return el("div", { class: p.free === 0 ? "full" : null, "data-kind": kind }, text, held ? " " : null, held);
  });
}

// Each webhook sink: where it posts, what it has not delivered, its dead letters
// (with a button sending them all again) and the daemon delivering for it.
function webhookTable(doc) {
  const sinks = doc.webhooks || [];
  const head = el("tr", {}, ["sink", "url", "undelivered", "dead letters", "replaying", "delivered by", ""].map((h) => el("th", {}, h)));
  const rows = sinks.map((s) => el("tr", { dataset: { sink: s.name } },
    el("td", {}, s.name), el("td", {}, el("code", {}, s.url)),
    el("td", { class: "n" }, s.backlog ? String(s.backlog.entries) : "-"),
    el("td", { class: `n${s.dead ? " bad" : " muted"}` }, el("span", { dataset: { count: `webhook:${s.name}:dead` } }, String(s.dead))),
    el("td", { class: "n" }, String(s.replaying)),
    el("td", {}, s.holder ?? el("span", { class: "muted" }, "no daemon")),
    el("td", { class: "actions" }, actionButton("Replay dead letters", "POST", `/api/notify/${encodeURIComponent(s.name)}/replay`,
      { body: { all: true }, action: `replay:${s.name}`, enabled: s.dead > 0, confirm: true }))));
  return table({}, el("thead", {}, head), el("tbody", {}, rows));
}

export function overview(view) {
  return async () => {
    const [doc, rows] = await Promise.all([api("GET", "/api/status"), throughput().catch((e) => e)]);
    redraw(view, ...[
      maintenance(doc),
      liveCards(doc),
      section("Jobs by state (as recorded in PostgreSQL)", stateChips(doc)),
      charts(rows),
      Object.keys(doc.queues || {}).length > 1 ? section("Queues", queueTable(doc)) : null,
      section("Tasks", taskTable(doc)),
      Object.keys(doc.limits || {}).length ? section("Limits: caps, rates, turns", limitTable(doc)) : null,
      section("Live daemons", daemonTable(doc)),
      (doc.webhooks || []).length ? section("Webhooks", webhookTable(doc)) : null,
      el("p", { class: "muted small" }, `Status at ${time(doc.at)}; `, el("code", {}, "runner status"), " shows the same."),
    ].filter((part) => part != null));
  };
}
