// The Live page: job transitions as they happen, newest on top, from GET /api/events
// (Server-Sent Events). EventSource cannot send the Authorization header, so the
// stream is read with fetch() and its events parsed here. A dropped connection is
// retried every few seconds with the last event's id (Last-Event-ID): the server
// resumes right after it, so nothing is missed or shown twice while the stream
// still holds it ([events] keep). Filters live in the #fragment, as on the Jobs
// page; Pause holds the list still while the stream goes on (new rows are kept
// and shown on Resume). Every string from the feed becomes text (dom.js).

import { ApiError, refusal, token } from "./api.js";
import { badge, el, redraw } from "./dom.js";
import { redact, time } from "./format.js";
import { STATES } from "./states.js";

const KEPT = 500; // rows shown at most; older ones drop off the bottom
const RETRY_MS = 3000;
const SHOWN_CHARS = 160; // of a result or an error

function filters(params) {
  const state = el("select", { name: "state" }, el("option", { value: "" }, "any state"),
    STATES.map((s) => el("option", { value: s, selected: params.get("state") === s }, s)));
  const task = el("input", { name: "task", placeholder: "any task", value: params.get("task") || "", spellcheck: "false" });
  const form = el("form", { class: "filters" }, el("label", {}, "Task ", task), el("label", {}, "State ", state),
    el("button", { type: "submit" }, "Filter"), el("a", { href: "#/live", class: "quiet" }, "clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) q.set(k, String(v).trim());
    location.hash = `#/live${q.toString() ? `?${q}` : ""}`;
  });
  state.addEventListener("change", () => form.requestSubmit());
  return form;
}

function short(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return redact(text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text);
}

function row(t) {
  const outcome = "error" in t ? el("span", { class: "error-text" }, short(t.error))
    : "result" in t ? el("span", { class: "mono small" }, short(t.result)) : null;
  return el("tr", { dataset: { job: t.job_id, state: t.to_state } },
    el("td", { class: "mono small" }, time(t.at)),
    el("td", {}, t.task ?? "-"),
    el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(t.job_id)}`, class: "mono" }, t.job_id)),
    el("td", {}, t.from_state ? badge(t.from_state) : el("span", { class: "muted" }, "new"), " → ", badge(t.to_state)),
    el("td", { class: "n" }, String(t.attempt)),
    el("td", { class: "muted small" }, t.by ?? ""),
    el("td", {}, outcome));
}

function gapRow() {
  return el("tr", { class: "gap" }, el("td", { colspan: "7", class: "muted" },
    "Some events may be missing here: the connection was away longer than the stream keeps them ([events] keep)."));
}

// "event: x\ndata: {...}\nid: y" blocks, as the server writes them; comments skipped.
function parse(block) {
  const fields = {};
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const name = at < 0 ? line : line.slice(0, at);
    fields[name] = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
  }
  if (!("data" in fields)) return null;
  return { name: fields.event || "message", id: fields.id, data: JSON.parse(fields.data) };
}

export function livePage(view, params) {
  const rows = el("tbody", { id: "live-rows" });
  const status = el("span", { class: "badge", dataset: { live: "connecting" } }, "connecting");
  const note = el("span", { class: "muted small" });
  const pause = el("button", { type: "button", dataset: { action: "pause-view" } }, "Pause");
  const clear = el("button", { type: "button", class: "quiet" }, "Clear");
  const head = el("tr", {}, ["time", "task", "job", "transition", "attempt", "by", "result or error"].map((h) => el("th", {}, h)));
  redraw(view, el("h1", {}, "Live"), filters(params),
    el("div", { class: "buttons live-bar" }, status, pause, clear, note),
    el("div", { class: "scroll" }, el("table", { class: "jobs live" }, el("thead", {}, head), rows)));

  const query = new URLSearchParams();
  for (const k of ["task", "state"]) if (params.get(k)) query.set(k, params.get(k));
  const held = []; // rows that came while paused, oldest first
  let lastId = null;
  let paused = false;
  let stopped = false;
  let controller = null;
  let refused = false;
  let refusedWith = null; // the token a refusal came with: retry once another is pasted
  let wake = null; // ends the wait before a retry (a token was pasted)

  function show(state, text) {
    status.dataset.live = state;
    status.className = `badge${state === "live" ? " ok" : ""}`;
    status.textContent = state;
    note.textContent = text || (paused ? `paused: ${held.length} new` : "");
  }

  function add(node) {
    if (paused) {
      held.push(node);
      if (held.length > KEPT) held.shift();
      note.textContent = `paused: ${held.length} new`;
      return;
    }
    rows.prepend(node);
    while (rows.childElementCount > KEPT) rows.lastElementChild.remove();
  }

  function dispatch(event) {
    if (!event) return;
    if (event.name === "transition") {
      lastId = event.id;
      add(row(event.data));
    } else if (event.name === "gap") {
      add(gapRow(event.data));
    } else if (event.name === "error") {
      note.textContent = redact(String(event.data.error || "the server ended the feed"));
    }
  }

  async function connect() {
    const headers = { Accept: "text/event-stream" };
    const t = token.get();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (lastId) headers["Last-Event-ID"] = lastId;
    controller = new AbortController();
    const response = await fetch(`/api/events${query.toString() ? `?${query}` : ""}`,
      { headers, credentials: "omit", cache: "no-store", signal: controller.signal });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new ApiError(response.status, redact(data && data.error ? data.error : response.statusText));
    }
    refused = false;
    show("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        dispatch(parse(buffer.slice(0, end)));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  async function run() {
    while (!stopped) {
      let why = "the server closed the stream";
      try {
        await connect();
      } catch (err) {
        if (stopped) return;
        refused = err.status === 401 || err.status === 403;
        refusedWith = token.get();
        why = err.status ? refusal(err) : `the server did not answer (${err.message})`;
      }
      if (stopped) return;
      show(refused ? "refused" : "reconnecting", `${why}; ${refused ? "waiting for a token" : `retrying in ${RETRY_MS / 1000} s`}`);
      await new Promise((resolve) => {
        wake = resolve;
        if (!refused) setTimeout(resolve, RETRY_MS);
      });
      wake = null;
    }
  }

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.dataset.action = paused ? "resume-view" : "pause-view";
    if (!paused) for (const node of held.splice(0)) add(node);
    note.textContent = paused ? `paused: ${held.length} new` : "";
  });
  clear.addEventListener("click", () => {
    rows.replaceChildren();
    held.length = 0;
  });

  run();
  return {
    // The page's periodic refresh: nothing to fetch (the stream brings it), but a
    // token pasted after a refusal reconnects at once.
    refresh: async () => {
      if (refused && token.get() !== refusedWith && wake) wake();
    },
    stop: () => {
      stopped = true;
      if (controller) controller.abort();
      if (wake) wake();
    },
  };
}
