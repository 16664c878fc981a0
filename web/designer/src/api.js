// HTTP client for /api/v1 used by the process designer: the staff token in sessionStorage (its own
// key, so a designer and a workbench login in one browser stay apart), JSON or BPMN XML bodies,
// errors as ApiError {status, code, message, fields} from the shared HTTP core.

import { ApiError, errorOf, sessionStore, STATUS_TEXT } from "/shared/static/http.js";

export { ApiError };

const BASE = "/api/v1";
export const session = sessionStore("govflow.designer.session");

let unauthorizedHandler = () => {};
/** Called when the login is gone (401 on an authenticated call): the page shows the login form. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/**
 * Send one request with the staff token. ``body`` is JSON unless ``xml`` is given (sent as
 * application/xml); ``text: true`` answers the body as text (BPMN XML), otherwise parsed JSON.
 */
export async function request(method, path, { body, xml, auth = true, text = false } = {}) {
  const headers = new Headers();
  let payload;
  if (xml !== undefined) {
    headers.set("Content-Type", "application/xml; charset=utf-8");
    payload = xml;
  } else if (body !== undefined) {
    headers.set("Content-Type", "application/json");
    payload = JSON.stringify(body);
  }
  const token = session.get()?.access_token;
  if (auth && token) headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(BASE + path, { method, headers, body: payload });
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
  const raw = await response.text();
  if (text) return raw;
  return raw ? JSON.parse(raw) : null;
}

export const api = {
  get: (path, options) => request("GET", path, options),
  getText: (path) => request("GET", path, { text: true }),
  post: (path, body, options) => request("POST", path, { ...options, body }),
  postXml: (path, xml) => request("POST", path, { xml }),
};
