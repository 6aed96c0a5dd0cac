// Small SVG charts drawn with DOM calls (no library, no markup strings): a stacked
// bar chart of counts per minute and a line chart of durations. Values only ever
// reach attributes and <title> text, never markup.
//
// The duration chart keeps the scale of the ordinary values when a few are far
// above them (one job due in the year 2000 starts 27 years late): a value more than
// ten times the median, and above a second, is drawn as a marker on the top edge,
// with its real value in its tooltip, and the chart says how many are not to scale.

import { durationAxis, niceMax, took } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 560, H = 160;
const CHAR = 6; // px per character of a 10 px axis label, generously
const CLIP_RATIO = 10, CLIP_FLOOR = 1000; // ms: below a second nothing is clipped

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Where things go: the left margin fits the widest y label, the right one half an
// x label, so that no label is cut at either edge.
function geometry(n, ymax, yLabel, top = 10) {
  const ticks = [0, 0.5, 1].map((f) => [ymax * f, yLabel(ymax * f)]);
  const left = 10 + CHAR * Math.max(...ticks.map(([, text]) => text.length));
  const g = { n, ymax, ticks, left, right: 3 * CHAR, top, bottom: 22 };
  g.x = (i) => g.left + (W - g.left - g.right) * (n <= 1 ? 0.5 : (i + 0.5) / n);
  g.y = (value) => g.top + (H - g.top - g.bottom) * (1 - Math.min(value, ymax) / ymax);
  return g;
}

function frame(g, labels, name) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "data-chart": name, "data-ymax": g.ymax });
  for (const [value, text] of g.ticks) {
    const y = g.y(value);
    root.append(svg("line", { x1: g.left, x2: W - g.right, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: g.left - 6, y: y + 4, class: "axis y", "text-anchor": "end" }, text));
  }
  const step = Math.max(1, Math.ceil(g.n / 6));
  labels.forEach((label, i) => {
    if (i % step !== 0 && i !== g.n - 1) return;
    root.append(svg("text", { x: g.x(i), y: H - 6, class: "axis x", "text-anchor": "middle" }, label));
  });
  return root;
}

// series: [{key, label, cls}] stacked bottom to top; rows: objects with those keys.
export function stackedBars(rows, series, labels, name = "counts") {
  const totals = rows.map((r) => series.reduce((s, { key }) => s + (r[key] || 0), 0));
  const g = geometry(rows.length, niceMax(Math.max(0, ...totals)), (v) => String(Number(v.toPrecision(3))));
  const root = frame(g, labels, name);
  const bw = Math.max(1, ((W - g.left - g.right) / Math.max(g.n, 1)) * 0.72);
  rows.forEach((row, i) => {
    let base = 0;
    for (const { key, label, cls } of series) {
      const v = row[key] || 0;
      if (v <= 0) continue;
      const y0 = g.y(base), y1 = g.y(base + v);
      const bar = svg("rect", { x: g.x(i) - bw / 2, y: y1, width: bw, height: y0 - y1, class: cls });
      bar.append(svg("title", {}, `${labels[i]}: ${v} ${label}`));
      root.append(bar);
      base += v;
    }
  });
  return root;
}

// The largest value drawn to scale: all of them, unless some are more than
// CLIP_RATIO times the (lower) median and above CLIP_FLOOR.
function clipLimit(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return Infinity;
  const limit = Math.max(CLIP_RATIO * sorted[Math.floor((sorted.length - 1) / 2)], CLIP_FLOOR);
  return sorted[sorted.length - 1] > limit ? limit : Infinity;
}

// Durations in ms, a line per series; a null value leaves a gap in its line.
export function durationLines(rows, series, labels, name = "durations") {
  const values = rows.flatMap((r) => series.map(({ key }) => r[key])).filter((v) => v != null);
  const limit = clipLimit(values);
  const inScale = values.filter((v) => v <= limit);
  const clipped = values.filter((v) => v > limit);
  const axis = durationAxis(Math.max(0, ...inScale));
  const g = geometry(rows.length, axis.top, axis.label, clipped.length ? 24 : 10);
  const root = frame(g, labels, name);
  for (const { key, label, cls } of series) {
    let d = "";
    let pen = false;
    rows.forEach((row, i) => {
      const v = row[key];
      if (v == null) { pen = false; return; }
      const x = g.x(i), y = g.y(v);
      d += `${pen ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
      pen = true;
      const mark = v > limit
        ? svg("polygon", { points: `${x - 5},${y + 2} ${x},${y - 6} ${x + 5},${y + 2}`, class: `${cls} clipped` })
        : svg("circle", { cx: x, cy: y, r: 2.2, class: cls });
      mark.append(svg("title", {}, `${labels[i]}: ${label} ${took(v)}${v > limit ? " (above the scale)" : ""}`));
      root.append(mark);
    });
    if (d) root.append(svg("path", { d, class: `${cls} line` }));
  }
  if (clipped.length) {
    const n = clipped.length;
    root.append(svg("text", { x: W - g.right, y: 12, class: "note", "text-anchor": "end" },
      `▲ ${n} point${n === 1 ? "" : "s"} above ${axis.label(g.ymax)}, not to scale (highest ${took(Math.max(...clipped))})`));
  }
  return root;
}

// A legend as HTML: a swatch and a label per series.
export function legend(series) {
  const box = document.createElement("div");
  box.className = "legend";
  for (const { label, cls } of series) {
    const item = document.createElement("span");
    const sw = document.createElement("i");
    sw.className = `swatch ${cls}`;
    item.append(sw, document.createTextNode(label));
    box.append(item);
  }
  return box;
}
