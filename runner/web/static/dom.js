// Building the page: every string passed here becomes a text node or an attribute
// value, never markup, so job data, task and schedule names cannot turn into
// elements whatever they hold.

import { relative, time } from "./format.js";

// el("td", {class: "x", dataset: {count: "k"}}, "text", child...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "onclick") node.addEventListener("click", v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children.flat().filter((c) => c != null).map(
    (c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

// A view redrawn while a mouse button or a finger is down would take the pressed
// button away, and the click with it: the press lands on the old button, the
// release on the new one. So a redraw then waits until the click has had its turn
// (the click is dispatched with the release, before the next task), or at most
// PRESS_HOLD_MS if the release never comes (the pointer left the window).
const PRESS_HOLD_MS = 3000;
const held = new Map(); // node -> the children of its latest redraw, held back
let pressed = null;     // the timer that gives up waiting for the release

function released() {
  if (pressed == null) return;
  clearTimeout(pressed);
  pressed = setTimeout(() => {
    pressed = null;
    for (const [node, children] of held) node.replaceChildren(...children);
    held.clear();
  });
}

document.addEventListener("pointerdown", () => {
  clearTimeout(pressed);
  pressed = setTimeout(released, PRESS_HOLD_MS);
}, true);
for (const type of ["pointerup", "pointercancel"]) document.addEventListener(type, released, true);
window.addEventListener("blur", released);

// node.replaceChildren(...children), unless a press is under way: then once it ends.
export function redraw(node, ...children) {
  if (pressed == null) node.replaceChildren(...children);
  else held.set(node, children);
}

export function badge(state) {
  return el("span", { class: `badge s-${String(state).replace(/[^a-z]/g, "")}` }, state ?? "unknown");
}

export function section(title, ...children) {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}

// A table that scrolls sideways inside its panel on a narrow screen, rather than
// making the whole page wider than the window.
export function table(attrs, ...children) {
  return el("div", { class: "scroll" }, el("table", attrs, ...children));
}

// A time as RFC 3339 UTC, and how far it is from now.
export function when(value) {
  if (value == null || value === "") return "-";
  const iso = time(value);
  return el("span", {}, el("time", { datetime: iso, title: String(value) }, iso),
    el("span", { class: "muted" }, ` (${relative(value)})`));
}
