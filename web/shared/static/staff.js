// What the two staff pages (the workbench /console/ and the designer /designer/) share: an /api/v1
// client that carries the staff token of the page's own session (each page keeps its own key, so a
// designer and a workbench login in one browser stay apart), and the staff login form. Staff tokens
// are not refreshed: a 401 clears the session and the page shows the login form again.

import { h, uid } from "./dom.js";
import { ApiError, errorOf, sessionStore, STATUS_TEXT } from "./http.js";

const BASE = "/api/v1";

/**
 * An API client for one page: ``{session, onUnauthorized, request, api}``. ``request`` sends JSON,
 * a FormData body as multipart (the browser writes the boundary), or ``xml`` as application/xml;
 * it answers parsed JSON (null for 204), or the text with ``text: true``; errors are ApiError.
 */
export function staffClient(storeKey) {
  const session = sessionStore(storeKey);
  let unauthorizedHandler = () => {};

  async function request(method, path, { body, xml, auth = true, text = false } = {}) {
    const headers = new Headers();
    let payload = body;
    if (xml !== undefined) {
      headers.set("Content-Type", "application/xml; charset=utf-8");
      payload = xml;
    } else if (body !== undefined && !(body instanceof FormData)) {
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

  return {
    session,
    /** Called when the login is gone (401 on an authenticated call): the page shows the login form. */
    onUnauthorized(handler) {
      unauthorizedHandler = handler;
    },
    request,
    api: {
      get: (path, options) => request("GET", path, options),
      getText: (path) => request("GET", path, { text: true }),
      post: (path, body, options) => request("POST", path, { ...options, body }),
      postXml: (path, xml) => request("POST", path, { xml }),
    },
  };
}

/**
 * The staff login card: ``title`` and ``subtitle`` name the page, ``notice`` (optional) says why the
 * login is asked again. On success the session holds the token and ``onLoggedIn()`` runs; a refusal
 * is shown in Chinese above the fields. Answers ``{card, focus}``.
 */
export function staffLoginForm({ client, title, subtitle, notice, onLoggedIn }) {
  const userId = uid("f");
  const passId = uid("f");
  const user = h("input", { id: userId, name: "username", class: "input", autocomplete: "username", required: true });
  const pass = h("input", { id: passId, name: "password", type: "password", class: "input",
    autocomplete: "current-password", required: true });
  const alert = h("p", { class: "alert alert-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "登录");
  const form = h("form", { class: "login-form", novalidate: true },
    h("h1", { class: "login-title" }, title),
    h("p", { class: "muted login-sub" }, subtitle),
    notice ? h("p", { class: "alert alert-info" }, notice) : null,
    alert,
    h("div", { class: "field" }, h("label", { class: "field-label", for: userId }, "用户名"), user),
    h("div", { class: "field" }, h("label", { class: "field-label", for: passId }, "密码"), pass),
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.hidden = true;
    button.disabled = true;
    try {
      const body = await client.api.post("/staff/login", { username: user.value.trim(), password: pass.value },
        { auth: false });
      client.session.set({ access_token: body.access_token, staff: body.staff });
      onLoggedIn();
    } catch (exc) {
      alert.textContent = exc.status === 422 ? "请填写用户名和密码"
        : exc instanceof ApiError ? exc.message : "页面出错，请刷新后重试";
      alert.hidden = false;
      pass.select();
    } finally {
      button.disabled = false;
    }
  });
  return {
    card: h("div", { class: "login-page" }, h("div", { class: "card login-card" }, form)),
    focus: () => user.focus(),
  };
}
