// Small SVG charts drawn with DOM calls (no library, no markup strings): a stacked
// bar chart of counts per minute and a line chart of lateness. Values only ever
// reach attributes and <title> text, never markup.

const NS = "http://www.w3.org/2000/svg";
const W = 560, H = 160, PAD = { left: 44, right: 8, top: 10, bottom: 22 };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A round upper bound for the y axis: 1, 2, 5, 10, 20, 50...
function niceMax(value) {
  if (!(value > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (value <= m * p) return m * p;
  return 10 * p;
}

function frame(ymax, labels, format) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  const innerH = H - PAD.top - PAD.bottom;
  for (const f of [0, 0.5, 1]) {
    const y = PAD.top + innerH * (1 - f);
    root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: PAD.left - 6, y: y + 4, class: "axis", "text-anchor": "end" },
      format(ymax * f)));
  }
  const n = labels.length;
  const step = Math.max(1, Math.ceil(n / 6));
  labels.forEach((label, i) => {
    if (i % step !== 0 && i !== n - 1) return;
    root.append(svg("text", { x: xAt(i, n) , y: H - 6, class: "axis", "text-anchor": "middle" },
      label));
  });
  return root;
}

function xAt(i, n) {
  const innerW = W - PAD.left - PAD.right;
  return PAD.left + innerW * (n <= 1 ? 0.5 : (i + 0.5) / n);
}

function yAt(value, ymax) {
  const innerH = H - PAD.top - PAD.bottom;
  return PAD.top + innerH * (1 - value / ymax);
}

// series: [{key, label, cls}] stacked bottom to top; rows: objects with those keys.
export function stackedBars(rows, series, labels, format = String) {
  const totals = rows.map((r) => series.reduce((s, { key }) => s + (r[key] || 0), 0));
  const ymax = niceMax(Math.max(0, ...totals));
  const root = frame(ymax, labels, format);
  const n = rows.length;
  const bw = Math.max(1, ((W - PAD.left - PAD.right) / Math.max(n, 1)) * 0.72);
  rows.forEach((row, i) => {
    let base = 0;
    for (const { key, label, cls } of series) {
      const v = row[key] || 0;
      if (v <= 0) continue;
      const y0 = yAt(base, ymax), y1 = yAt(base + v, ymax);
      const bar = svg("rect", { x: xAt(i, n) - bw / 2, y: y1, width: bw, height: y0 - y1, class: cls });
      bar.append(svg("title", {}, `${labels[i]}: ${v} ${label}`));
      root.append(bar);
      base += v;
    }
  });
  return root;
}

// series: [{key, label, cls}]; a null value leaves a gap in its line.
export function lines(rows, series, labels, format = String) {
  const values = rows.flatMap((r) => series.map(({ key }) => r[key])).filter((v) => v != null);
  const ymax = niceMax(Math.max(0, ...values));
  const root = frame(ymax, labels, format);
  const n = rows.length;
  for (const { key, label, cls } of series) {
    let d = "";
    let pen = false;
    rows.forEach((row, i) => {
      const v = row[key];
      if (v == null) { pen = false; return; }
      d += `${pen ? "L" : "M"}${xAt(i, n).toFixed(1)},${yAt(v, ymax).toFixed(1)}`;
      pen = true;
      const dot = svg("circle", { cx: xAt(i, n), cy: yAt(v, ymax), r: 2.2, class: cls });
      dot.append(svg("title", {}, `${labels[i]}: ${label} ${format(v)}`));
      root.append(dot);
    });
    if (d) root.append(svg("path", { d, class: `${cls} line` }));
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
