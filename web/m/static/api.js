// HTTP client for /api/v1: tokens in sessionStorage, one refresh on 401 token_expired,
// errors as ApiError {status, code, message, fields}, and server-sent events read with fetch
// (EventSource cannot send the Authorization header).

import { ApiError, errorOf, sessionStore, STATUS_TEXT } from "/shared/static/http.js";

export { ApiError };

const BASE = "/api/v1";
const STORE_KEY = "govflow.m.session";
// The refresh token is kept across tabs and reloads, as the mini-program keeps it (wx.setStorageSync);
// the short-lived access token stays in this tab's sessionStorage. Logout or a refused refresh drops both.
const REFRESH_KEY = "govflow.m.refresh";

function storedRefresh() {
  try {
    return localStorage.getItem(REFRESH_KEY);
  } catch {
    return null;
  }
}

export const session = sessionStore(STORE_KEY, {
  update(partial) {
    this.set({ ...(this.get() || {}), ...partial });
  },
  /** Store a login or refresh answer. */
  saveTokens(body) {
    const partial = { access_token: body.access_token, refresh_token: body.refresh_token };
    if (body.expires_in) partial.expires_at = Date.now() + body.expires_in * 1000;
    if (body.citizen) partial.citizen = body.citizen;
    this.update(partial);
    try {
      if (body.refresh_token) localStorage.setItem(REFRESH_KEY, body.refresh_token);
    } catch {
      // storage refused (private mode): the login lasts as long as this tab
    }
  },
  clear() {
    sessionStorage.removeItem(STORE_KEY);
    try {
      localStorage.removeItem(REFRESH_KEY);
    } catch {
      // nothing kept
    }
  },
});

/** A new tab or a reload: log in again from the kept refresh token. True when logged in. */
export async function restoreSession() {
  if (session.loggedIn()) return true;
  if (!storedRefresh()) return false;
  try {
    await refreshTokens();
    return session.loggedIn();
  } catch (exc) {
    if (exc instanceof ApiError && exc.status !== 0) session.clear();
    return false;
  }
}

let unauthorizedHandler = () => {};
/** Called when the login is gone (refresh failed or refused): the app shows the login page. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

let refreshing = null;

/** Exchange the refresh token for a new pair; concurrent callers share one request. */
export function refreshTokens() {
  if (!refreshing) {
    refreshing = (async () => {
      const refresh = storedRefresh() || session.get()?.refresh_token; // the newest of any tab
      if (!refresh) throw new ApiError(401, "unauthorized", STATUS_TEXT[401]);
      let response;
      try {
        response = await fetch(`${BASE}/auth/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: refresh }),
        });
      } catch {
        throw new ApiError(0, "network", STATUS_TEXT[0]);
      }
      if (!response.ok) throw await errorOf(response);
      session.saveTokens(await response.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

function lostLogin(error) {
  if (error.status === 401) {
    session.clear();
    unauthorizedHandler(error);
  }
  return error;
}

/**
 * Send one request with the access token; on 401 token_expired refresh once and send again.
 * Returns the parsed JSON (null for 204), or the Response when `raw` is set.
 */
export async function request(method, path, { body, headers, raw = false, signal, auth = true } = {}) {
  const send = () => {
    const h = new Headers(headers || {});
    if (body !== undefined) h.set("Content-Type", "application/json");
    const token = session.get()?.access_token;
    if (auth && token) h.set("Authorization", `Bearer ${token}`);
    return fetch(BASE + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    }).catch((exc) => {
      if (exc && exc.name === "AbortError") throw exc;
      throw new ApiError(0, "network", STATUS_TEXT[0]);
    });
  };
  let response = await send();
  if (response.status === 401 && auth) {
    const error = await errorOf(response.clone());
    if (error.code !== "token_expired") throw lostLogin(error);
    try {
      await refreshTokens();
    } catch (exc) {
      throw lostLogin(exc instanceof ApiError ? exc : error);
    }
    response = await send();
  }
  if (!response.ok) {
    const error = await errorOf(response);
    throw auth ? lostLogin(error) : error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const api = {
  get: (path, options) => request("GET", path, options),
  post: (path, body, options) => request("POST", path, { ...options, body }),
};

/** Split a server-sent event stream into events (WHATWG rules: event/data/id/retry, comments). */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.reset();
    this.lastEventId = "";
    this.retry = null;
  }

  reset() {
    this.type = "";
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop();
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (this.data.length) {
        this.onEvent({ type: this.type || "message", data: this.data.join("\n"), id: this.lastEventId });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

/**
 * Follow a server-sent event stream with the Authorization header, reconnecting while
 * `keepGoing()` says so. Handlers: onOpen(), onEvent({type, data, id}), onError(ApiError).
 * Returns {close()}.
 */
export function followEvents(path, { onOpen, onEvent, onError, keepGoing = () => true }) {
  const controller = new AbortController();
  let closed = false;
  let lastEventId = "";
  let delay = 1000;

  async function connectOnce() {
    const headers = { Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    const response = await request("GET", path, { headers, raw: true, signal: controller.signal });
    if (!response.body || !response.body.getReader) throw new ApiError(0, "no_stream", "浏览器不支持实时推送");
    onOpen && onOpen();
    delay = 1000;
    const parser = new SseParser((event) => {
      lastEventId = event.id || lastEventId;
      onEvent(event);
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder("utf-8");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    if (parser.retry) delay = parser.retry;
  }

  (async () => {
    while (!closed) {
      try {
        await connectOnce();
      } catch (exc) {
        if (closed || (exc && exc.name === "AbortError")) return;
        onError && onError(exc);
        if (exc instanceof ApiError && [401, 403, 404].includes(exc.status)) return;
        delay = Math.min(delay * 2, 30000);
      }
      if (closed || !keepGoing()) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  })();

  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}
