// The job list (filters and pages, as `runner jobs`) and one job's page (its data,
// the requests it allows, and its history, as `runner show`).

import { actionButton } from "./actions.js";
import { api } from "./api.js";
import { badge, el, redraw, section, table, when } from "./dom.js";
import { json, redact, time, took } from "./format.js";
import { ACTIONS, STATES } from "./states.js";

const SINCE = [["", "any time"], ["15m", "last 15 min"], ["1h", "last hour"], ["6h", "last 6 h"], ["24h", "last day"], ["7d", "last week"]];

function jobFilters(params) {
  const state = el("select", { name: "state" }, el("option", { value: "" }, "any state"),
    STATES.map((s) => el("option", { value: s, selected: params.get("state") === s }, s)));
  const task = el("input", { name: "task", placeholder: "any task", value: params.get("task") || "", spellcheck: "false" });
  const queue = el("input", { name: "queue", placeholder: "any queue", value: params.get("queue") || "", spellcheck: "false" });
  const since = el("select", { name: "since" },
    SINCE.map(([v, l]) => el("option", { value: v, selected: (params.get("since") || "") === v }, l)));
  const form = el("form", { class: "filters" }, el("label", {}, "State ", state), el("label", {}, "Task ", task),
    el("label", {}, "Queue ", queue),
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
  const head = el("tr", {}, ["job", "task", "queue", "state", "attempt", "due", "created", "updated"].map((h) => el("th", {}, h)));
  return table({ class: "jobs" }, el("thead", {}, head), el("tbody", {}, jobs.map((j) =>
    el("tr", {},
      el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(j.id)}`, class: "mono" }, j.id)),
      el("td", {}, j.task ?? "-"), el("td", {}, j.queue ?? "default"), el("td", {}, badge(j.state)), el("td", { class: "n" }, String(j.attempt)),
      el("td", {}, when(j.due_at)), el("td", {}, time(j.created_at)), el("td", {}, time(j.updated_at))))));
}

export function jobList(view, params) {
  const results = el("div", {});
  redraw(view, el("h1", {}, "Jobs"), jobFilters(params), results);
  return async () => {
    const q = new URLSearchParams();
    for (const k of ["state", "task", "queue", "since", "after"]) if (params.get(k)) q.set(k, params.get(k));
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
    redraw(results, jobRows(page.jobs), pager);
  };
}

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
      el("div", { class: "when" }, el("time", { datetime: time(h.at) }, time(h.at)),
        gap == null ? null : el("span", { class: "muted" }, ` +${took(gap)}`)),
      el("div", {}, h.from_state ? badge(h.from_state) : el("span", { class: "muted" }, "new"), " → ", badge(h.to_state),
        el("span", { class: "muted" }, `  #${h.seq} · attempt ${h.attempt}${h.daemon ? ` · ${h.daemon}` : ""}`)),
      Object.keys(detail).length ? el("div", { class: "detail muted" }, Object.entries(detail).map(
        ([k, v]) => redact(`${k} ${typeof v === "string" ? v : JSON.stringify(v)}`)).join(" · ")) : null);
  }));
}

export function jobPage(view, id) {
  return async () => {
    let doc;
    try {
      doc = await api("GET", `/api/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      redraw(view, el("h1", {}, "Job ", el("span", { class: "mono" }, id)),
        el("p", {}, err.message), el("a", { href: "#/jobs" }, "← all jobs"));
      return;
    }
    const data = el("dl", { class: "fields" },
      field("task", el("a", { href: `#/jobs?task=${encodeURIComponent(doc.task ?? "")}` }, doc.task ?? "-")),
      field("queue", el("a", { href: `#/jobs?queue=${encodeURIComponent(doc.queue ?? "default")}` }, doc.queue ?? "default")),
      doc.priority ? field("priority", String(doc.priority)) : null,
      field("state", el("span", { dataset: { field: "state" } }, badge(doc.state))),
      field("attempt", String(doc.attempt)),
      doc.workflow ? field("workflow", el("a", { href: `#/workflows/${encodeURIComponent(doc.workflow)}`, class: "mono", dataset: { field: "workflow" } }, doc.workflow)) : null,
      doc.depends_on?.length ? field("after", el("span", {}, doc.depends_on.map((d, i) => [i ? ", " : "",
        el("a", { href: `#/jobs/${encodeURIComponent(d)}`, class: "mono" }, d)]).flat())) : null,
      field("due at", when(doc.due_at)),
      field("error", doc.error == null ? "-" : el("pre", { class: "payload error", dataset: { field: "error" } }, redact(doc.error))),
      field("result", doc.result == null ? "-" : payload(doc.result, "result")),
      doc.extra ? field("extra", payload(doc.extra, "extra")) : null);
    redraw(view,
      el("p", {}, el("a", { href: "#/jobs" }, "← all jobs")),
      el("h1", {}, "Job ", el("span", { class: "mono" }, doc.id), " ", badge(doc.state)),
      jobButtons(doc),
      el("div", { class: "two" },
        section("Data", data, el("h3", {}, "args"), payload(doc.args, "args"), el("h3", {}, "kwargs"), payload(doc.kwargs, "kwargs")),
        section("History", timeline(doc.history || []))));
  };
}
