// The JSON API, as the dashboard calls it. The token lives in sessionStorage and
// travels as an Authorization header (no cookie: a request forged by another site
// carries nothing); it is never shown back.

import { redact } from "./format.js";

const TOKEN_KEY = "runner.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "omit", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `the dashboard's server did not answer (${err.message})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const message = data && typeof data.error === "string" ? data.error : response.statusText;
    throw new ApiError(response.status, redact(message));
  }
  return data;
}

// A refused request in words, with what to do about a missing token.
export function refusal(err) {
  const status = err.status ? `${err.status}: ` : "";
  const hint = err.status === 401 ? " Paste the API token at the top right to act." : "";
  return `Refused (${status}${err.message}).${hint}`;
}
