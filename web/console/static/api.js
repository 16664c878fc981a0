// HTTP client for /api/v1 used by the staff workbench: the staff token in sessionStorage,
// errors as ApiError {status, code, message, fields}. Staff tokens are not refreshed: a 401
// clears the session and the page shows the login form again.

import { ApiError, errorOf, sessionStore, STATUS_TEXT } from "/shared/static/http.js";

export { ApiError };

const BASE = "/api/v1";
const STORE_KEY = "govflow.console.session";

export const session = sessionStore(STORE_KEY);

let unauthorizedHandler = () => {};
/** Called when the login is gone (401 on an authenticated call): the app shows the login page. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Send one request with the staff token; the parsed JSON (null for 204). A FormData body goes as
 * multipart/form-data (the browser writes the boundary), anything else as JSON. */
export async function request(method, path, { body, auth = true } = {}) {
  const headers = new Headers();
  const multipart = body instanceof FormData;
  if (body !== undefined && !multipart) headers.set("Content-Type", "application/json");
  const token = session.get()?.access_token;
  if (auth && token) headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(BASE + path, {
      method, headers, body: body === undefined || multipart ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", STATUS_TEXT[0]);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (auth && error.status === 401) {
      session.clear();
      unauthorizedHandler(error);
    }
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const api = {
  get: (path, options) => request("GET", path, options),
  post: (path, body, options) => request("POST", path, { ...options, body }),
};
