// The cron schedules, as `runner cron`: each one's next fires and its last.

import { api } from "./api.js";
import { badge, el, redraw, section, table, when } from "./dom.js";

function lastFire(last) {
  if (!last) return el("span", { class: "muted" }, "never fired");
  return [when(last.tick), el("div", {},
    el("a", { href: `#/jobs/${encodeURIComponent(last.job_id)}`, class: "mono small" }, last.job_id), " ",
    badge(last.state ?? "expired"))];
}

function schedules(docs) {
  if (!docs.length) return el("p", { class: "muted" }, "No cron schedules in the config.");
  const head = el("tr", {}, ["schedule", "when", "task", "policies", "last fire", "next fires"].map((h) => el("th", {}, h)));
  return table({}, el("thead", {}, head), el("tbody", {}, docs.map((d) => el("tr", {},
    el("td", {}, el("strong", {}, d.name)),
    el("td", {}, el("code", {}, d.schedule), el("div", { class: "muted small" }, d.timezone)),
    el("td", {}, el("a", { href: `#/jobs?task=${encodeURIComponent(d.task)}` }, d.task)),
    el("td", { class: "small" }, `misfire ${d.misfire ?? "-"}`, el("br"), `overlap ${d.overlap ?? "-"}`),
    el("td", {}, lastFire(d.last)),
    el("td", {}, (d.next || []).map((n, i) => el("div", { class: i ? "muted small" : null }, when(n))))))));
}

export function cronPage(view) {
  return async () => {
    const docs = await api("GET", "/api/cron");
    redraw(view, el("h1", {}, "Cron schedules"),
      section(`${docs.length} schedule${docs.length === 1 ? "" : "s"} (times in UTC)`, schedules(docs)));
  };
}
