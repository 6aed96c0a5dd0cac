// The runner dashboard: one page, routed by the URL's #fragment, reading and acting
// through the JSON API only. Rules kept throughout:
// - job data reaches the page as text (dom.js), never as markup;
// - the API token lives in sessionStorage and travels as an Authorization header
//   (api.js), and is never shown back;
// - every time is RFC 3339 UTC with milliseconds (format.js), the header clock too;
// - every view refreshes itself every few seconds while the tab is visible.
// The views: overview.js, jobs.js (the list and one job), workflow.js (one
// workflow's graph), cron.js, live.js (which
// follows a stream instead, and is stopped when the page moves to another view).

import { busy, notice } from "./actions.js";
import { refusal, token } from "./api.js";
import { cronPage } from "./cron.js";
import { now } from "./format.js";
import { jobList, jobPage } from "./jobs.js";
import { livePage } from "./live.js";
import { overview } from "./overview.js";
import { workflowPage } from "./workflow.js";

const REFRESH_MS = 3000;

let refresh = null;
let leave = null; // what ends the current view's own work (the Live page's stream)
let generation = 0;

function route() {
  const [path, query = ""] = (location.hash.replace(/^#/, "") || "/").split("?");
  const params = new URLSearchParams(query);
  const view = document.getElementById("view");
  const parts = path.split("/").filter(Boolean);
  let name = "overview";
  if (leave) leave();
  leave = null;
  if (parts[0] === "jobs" && parts.length > 1) {
    name = "jobs";
    refresh = jobPage(view, decodeURIComponent(parts.slice(1).join("/")));
  } else if (parts[0] === "jobs") {
    name = "jobs";
    refresh = jobList(view, params);
  } else if (parts[0] === "workflows" && parts.length > 1) {
    name = "jobs";
    refresh = workflowPage(view, decodeURIComponent(parts.slice(1).join("/")));
  } else if (parts[0] === "live") {
    name = "live";
    const live = livePage(view, params);
    refresh = live.refresh;
    leave = live.stop;
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
    document.getElementById("updated").textContent = `updated ${now()}`;
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
  document.addEventListener("runner:refresh", () => refreshNow());
  setInterval(() => {
    if (!document.hidden && busy.count === 0) refreshNow();
  }, REFRESH_MS);
  route();
}

start();
