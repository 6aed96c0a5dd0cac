// Buttons that change something, and the notice that says what came of it.
// While a request is in flight, or a button waits for its second press, `busy`
// holds the views' self-refresh (redrawing would drop the button); once done, the
// button asks the page to refresh with a "runner:refresh" event.

import { api, refusal } from "./api.js";
import { el } from "./dom.js";
import { redact } from "./format.js";

export const busy = { count: 0 };

export const notice = {
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

// Buttons waiting for their second press, by request (method and path: never one
// job's arming shown on another's button): the arming outlives a redraw
// (a refresh already under way when the first press came replaces the button), so
// the second press goes to the button drawn in its place. One arming holds `busy`
// once, until it is pressed or runs out.
const ARMED_MS = 4000;
const armed = new Map();

function arm(key) {
  busy.count += 1;
  armed.set(key, setTimeout(() => {
    disarm(key);
    document.dispatchEvent(new Event("runner:refresh"));  // redrawn unarmed
  }, ARMED_MS));
}

function disarm(key) {
  if (!armed.has(key)) return;
  clearTimeout(armed.get(key));
  armed.delete(key);
  busy.count -= 1;
}

function showArmed(button, label) {
  button.textContent = `${label}: press again`;
  button.classList.add("armed");
}

// A button that sends one request, then shows the API's answer or its refusal.
// `confirm` makes it two-step (press again within 4 s) for what cannot be undone.
export function actionButton(label, method, path, { body, danger, confirm, action, enabled = true, done } = {}) {
  const key = `${method} ${path}`;
  const button = el("button", { type: "button", class: danger ? "danger" : null, disabled: !enabled,
    dataset: { action: action || label.toLowerCase() } }, label);
  if (confirm && armed.has(key)) showArmed(button, label);
  button.addEventListener("click", async () => {
    if (confirm && !armed.has(key)) {
      arm(key);
      showArmed(button, label);
      return;
    }
    disarm(key);
    button.disabled = true;
    busy.count += 1;
    try {
      const result = await api(method, path, body);
      notice.show(outcome(label, result), "ok");
      if (done) done(result);
    } catch (err) {
      notice.show(refusal(err));
    } finally {
      busy.count -= 1;
      button.disabled = false;
      document.dispatchEvent(new Event("runner:refresh"));
    }
  });
  return button;
}
