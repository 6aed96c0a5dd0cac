// How the dashboard writes what it shows: every time as RFC 3339 UTC with
// milliseconds (2026-12-07T03:42:26.123Z, as `runner show` and `runner status`
// print them), whatever the browser's own zone; durations in the largest unit
// that reads well, from milliseconds up to years; no password of a URL.

// [name, milliseconds, shown in this unit from (ms)]: a unit is used once the
// value reaches `from`, so 90 minutes read "1.5 h" and 36 hours "36.0 h".
const UNITS = [
  ["y", 365.25 * 86400000, 365.25 * 86400000],
  ["d", 86400000, 2 * 86400000],
  ["h", 3600000, 3600000],
  ["min", 60000, 60000],
  ["s", 1000, 1000],
  ["ms", 1, 0],
];

function unitFor(ms) {
  return UNITS.find(([, , from]) => Math.abs(ms) >= from) || UNITS[UNITS.length - 1];
}

// A time from the API (RFC 3339 with any offset, or ms since the epoch) as RFC 3339
// UTC with milliseconds; "-" for none, the text itself if it is no time.
export function time(value) {
  if (value == null || value === "") return "-";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString();
}

// The moment now, as every time is shown.
export function now() {
  return new Date().toISOString();
}

// A duration in ms: "850 ms", "2.5 s", "4.0 min", "36.0 h", "12.3 d", "26.9 y".
export function took(ms) {
  if (ms == null) return "-";
  const [name, size] = unitFor(ms);
  if (name === "ms") return `${Math.abs(ms) < 10 && ms !== 0 ? ms.toFixed(1) : Math.round(ms)} ms`;
  return `${(ms / size).toFixed(1)} ${name}`;
}

// How far a time is from now, in words: "in 30.0 min", "5.2 s ago".
export function relative(value) {
  if (value == null || value === "") return "";
  const ms = new Date(value).getTime() - Date.now();
  if (Number.isNaN(ms)) return "";
  const span = took(Math.abs(ms));
  return ms >= 0 ? `in ${span}` : `${span} ago`;
}

// A duration axis up to at least `max` ms: its top, a round number in the unit of
// `max` (50 d, not 1,000,000,000 ms), and how to label a tick (no needless ".0").
export function durationAxis(max) {
  const [name, size] = unitFor(max > 0 ? max : 1);
  const top = niceMax(max / size) * size;
  const label = (ms) => (ms === 0 ? "0" : `${Number((ms / size).toPrecision(3))} ${name}`);
  return { top, label };
}

// A round upper bound: 1, 2, 5, 10, 20, 50...
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (value <= m * p) return m * p;
  return 10 * p;
}

// A password in a URL (scheme://user:secret@host) is never shown, wherever the
// text came from.
export function redact(text) {
  return String(text).replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]*@/gi, "$1***@");
}

export function json(value) {
  return redact(JSON.stringify(value, null, 2));
}
