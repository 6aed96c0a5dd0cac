// Job states in their usual order, and which requests apply from which state
// (runner/states.py's table, for enabling buttons; the API still decides, and its
// refusal is shown).

export const STATES = ["blocked", "scheduled", "running", "retrying", "paused", "succeeded", "failed", "cancelled"];

export const ACTIONS = {
  pause: ["scheduled", "retrying", "blocked"],
  resume: ["paused"],
  cancel: ["blocked", "scheduled", "retrying", "paused", "running"],
  retry: ["failed", "cancelled"],
  delete: ["succeeded", "failed", "cancelled", "scheduled", "retrying", "paused", "blocked"],
};
