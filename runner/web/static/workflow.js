// One workflow (as `runner workflow WF`): its graph drawn in layers, each job below
// the jobs it depends on, from the API's JSON as SVG built here (no library, no CDN);
// the requests that apply to the whole of it; and the jobs that need a look
// (failed, cancelled, running). A layer wider than SPREAD jobs is one box that counts
// its jobs by state, so a graph of 10,000 jobs draws as fast as one of ten.

import { actionButton } from "./actions.js";
import { api } from "./api.js";
import { badge, el, redraw, section, table } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const SPREAD = 12;
const BOX_W = 160;
const BOX_H = 42;
const GAP_X = 20;
const GAP_Y = 46;
const SHOWN = 50; // jobs listed under the graph
const LOOK = ["failed", "cancelled", "running", "paused", "retrying"];

function svg(tag, attrs = {}, ...texts) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  for (const text of texts) node.append(text instanceof Node ? text : document.createTextNode(String(text)));
  return node;
}

// Each job's layer: 0 for a job that depends on none of the workflow's, else one
// more than the deepest of those it depends on (a walk with its own stack, so a
// chain of 10,000 needs no deep recursion).
export function layersOf(jobs) {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const depth = new Map();
  for (const job of jobs) {
    const stack = [job.id];
    while (stack.length) {
      const id = stack[stack.length - 1];
      if (depth.has(id)) { stack.pop(); continue; }
      const deps = (byId.get(id).depends_on || []).filter((d) => byId.has(d));
      const missing = deps.filter((d) => !depth.has(d) && !stack.includes(d));
      if (missing.length) { stack.push(...missing); continue; }
      depth.set(id, deps.length ? 1 + Math.max(...deps.map((d) => depth.get(d) ?? 0)) : 0);
      stack.pop();
    }
  }
  const layers = [];
  for (const job of jobs) (layers[depth.get(job.id)] ||= []).push(job);
  return layers.filter(Boolean);
}

function counts(jobs) {
  const by = {};
  for (const j of jobs) by[j.state] = (by[j.state] || 0) + 1;
  return Object.entries(by).sort().map(([s, n]) => `${s} ${n}`).join(" · ");
}

function shortId(id) {
  return id.length > 16 ? `…${id.slice(-15)}` : id;
}

function jobBox(job, x, y) {
  const link = svg("a", { href: `#/jobs/${encodeURIComponent(job.id)}`, "data-node": job.id,
    "data-state": job.state });
  link.append(svg("rect", { x, y, width: BOX_W, height: BOX_H, rx: 6, class: `node s-${job.state}` }),
    svg("text", { x: x + 8, y: y + 17, class: "name" }, job.task ?? "?"),
    svg("text", { x: x + 8, y: y + 33, class: "sub" }, `${job.state} · ${shortId(job.id)}`),
    svg("title", {}, `${job.id}: ${job.task} ${job.state}`));
  return link;
}

function layerBox(jobs, n, x, y, width) {
  const box = svg("g", { "data-layer": String(n) });
  box.append(svg("rect", { x, y, width, height: BOX_H, rx: 6, class: "node layer" }),
    svg("text", { x: x + 8, y: y + 17, class: "name" }, `${jobs.length} jobs`),
    svg("text", { x: x + 8, y: y + 33, class: "sub" }, counts(jobs)));
  return box;
}

// The graph: boxes by layer, and a line from each box to each box that waits on it
// (once per pair of boxes, however many jobs link them).
export function graph(jobs) {
  const layers = layersOf(jobs);
  const widest = Math.max(1, ...layers.map((l) => (l.length > SPREAD ? 3 : l.length)));
  const width = widest * (BOX_W + GAP_X) + GAP_X;
  const height = layers.length * (BOX_H + GAP_Y) + GAP_Y / 2;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "graph",
    role: "img", "aria-label": `the workflow's ${jobs.length} jobs in ${layers.length} layers` });
  const place = new Map(); // job id -> [box key, center x, top y]
  const boxes = [];
  layers.forEach((layer, n) => {
    const y = GAP_Y / 2 + n * (BOX_H + GAP_Y);
    if (layer.length > SPREAD) {
      const w = 3 * BOX_W + 2 * GAP_X;
      const x = (width - w) / 2;
      boxes.push(layerBox(layer, n, x, y, w));
      for (const job of layer) place.set(job.id, [`layer:${n}`, x + w / 2, y]);
      return;
    }
    const start = (width - layer.length * (BOX_W + GAP_X) + GAP_X) / 2;
    layer.forEach((job, i) => {
      const x = start + i * (BOX_W + GAP_X);
      boxes.push(jobBox(job, x, y));
      place.set(job.id, [`job:${job.id}`, x + BOX_W / 2, y]);
    });
  });
  const drawn = new Set();
  for (const job of jobs) {
    const [to, x2, y2] = place.get(job.id);
    for (const dep of job.depends_on || []) {
      if (!place.has(dep)) continue;
      const [from, x1, top] = place.get(dep);
      if (drawn.has(`${from}>${to}`)) continue;
      drawn.add(`${from}>${to}`);
      root.append(svg("line", { x1, y1: top + BOX_H, x2, y2, class: "edge" }));
    }
  }
  root.append(...boxes);
  return el("div", { class: "scroll graph-box" }, root);
}

function buttons(id) {
  const path = `/api/workflows/${encodeURIComponent(id)}`;
  const make = (label, action, opts = {}) => actionButton(label, "POST", `${path}/${action}`,
    { action: `workflow-${action}`, danger: opts.danger, confirm: opts.confirm });
  return el("div", { class: "buttons" }, make("Pause all", "pause"), make("Resume all", "resume"),
    make("Cancel all", "cancel", { danger: true, confirm: true }), make("Retry failed", "retry"));
}

function needingLook(jobs) {
  const shown = jobs.filter((j) => LOOK.includes(j.state)).slice(0, SHOWN);
  if (!shown.length) return el("p", { class: "muted" }, "No job failed, was cancelled or is running.");
  return table({ class: "jobs" }, el("thead", {}, el("tr", {}, ["job", "task", "state", "error"].map((h) => el("th", {}, h)))),
    el("tbody", {}, shown.map((j) => el("tr", {},
      el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(j.id)}`, class: "mono" }, j.id)),
      el("td", {}, j.task ?? "-"), el("td", {}, badge(j.state)), el("td", {}, j.error ?? "")))));
}

export function workflowPage(view, id) {
  return async () => {
    let doc;
    try {
      doc = await api("GET", `/api/workflows/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.status !== 400 && err.status !== 404) throw err;
      redraw(view, el("h1", {}, "Workflow ", el("span", { class: "mono" }, id)), el("p", {}, err.message));
      return;
    }
    const states = Object.entries(doc.states).sort().map(([s, n]) => el("span", { class: "chip", dataset: { count: `wf:${s}` } }, badge(s), String(n)));
    redraw(view,
      el("h1", {}, "Workflow ", el("span", { class: "mono" }, doc.workflow)),
      el("div", { class: "chips" }, states),
      buttons(doc.workflow),
      section(`Graph (${doc.jobs.length} jobs)`, graph(doc.jobs)),
      section("Needing a look", needingLook(doc.jobs)));
  };
}
