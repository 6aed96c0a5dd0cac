// Each task with a cap, a rate or a fair key: what runs against its cap, what waits
// on each limit, the rate it is allowed and the rate it starts at now, and its
// busiest key values. The rate now is counted between two polls of the status.

import { el, table } from "./dom.js";
import { time } from "./format.js";

const seen = new Map(); // task -> {at: ms, starts}, from the previous poll

function rateNow(task, figures, at) {
  const before = seen.get(task);
  seen.set(task, { at, starts: figures.rate_starts });
  if (!before || at <= before.at || figures.rate_starts < before.starts) return null;
  return ((figures.rate_starts - before.starts) * 1000) / (at - before.at);
}

function running(figures, cap, perKey) {
  if (!cap) return String(figures.running);
  return perKey ? `${figures.running} (≤ ${cap} a key)` : `${figures.running} / ${cap}`;
}

function keyList(task, figures) {
  if (!figures.keys.length) return el("span", { class: "muted" }, "-");
  return figures.keys.map((k) => el("div", { dataset: { limitKey: `${task}:${k.key}` } },
    el("code", {}, k.key), `: ${k.running} running, ${k.waiting.cap + k.waiting.rate + k.waiting.turn} waiting`));
}

export function limitTable(doc) {
  const at = new Date(doc.at).getTime();
  const head = el("tr", {}, ["task", "running", "waiting: slot", "rate", "turn", "rate allowed", "rate now", "next start", "busiest keys"]
    .map((h, n) => el("th", n && n < 7 ? { class: "n" } : {}, h)));
  const rows = Object.entries(doc.limits || {}).map(([task, f]) => {
    const now = f.rate_per_s ? rateNow(task, f, at) : null;
    return el("tr", { dataset: { limit: task } },
      el("td", {}, task, f.fair_key ? el("span", { class: "muted small" }, ` turns by ${f.fair_key}`) : null),
      el("td", { class: "n", dataset: { count: `limit:${task}:running` } }, running(f, f.concurrency, f.concurrency_key)),
      ["cap", "rate", "turn"].map((why) => el("td", { class: `n${f.waiting[why] ? "" : " muted"}`, dataset: { count: `limit:${task}:${why}` } },
        String(f.waiting[why]))),
      el("td", { class: "n" }, f.rate_per_s ? `${f.rate_per_s}/s${f.rate_key ? " a key" : ""}` : "-"),
      el("td", { class: "n", dataset: { count: `limit:${task}:rate_now` } }, now == null ? "-" : `${now.toFixed(1)}/s`),
      el("td", {}, f.next_start ? time(f.next_start) : "-"),
      el("td", {}, keyList(task, f)));
  });
  return table({}, el("thead", {}, head), el("tbody", {}, rows));
}
