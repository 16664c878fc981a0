// HTTP client for /api/v1 used by the staff workbench: the staff token in sessionStorage,
// errors as ApiError {status, code, message, fields}. Staff tokens are not refreshed: a 401
// clears the session and the page shows the login form again.

const BASE = "/api/v1";
const STORE_KEY = "govflow.console.session";

export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message || "请求失败，请稍后重试");
    this.status = status;
    this.code = code || "error";
    this.fields = fields || {};
  }
}

const STATUS_TEXT = {
  0: "网络连接失败，请检查网络后重试",
  401: "登录已失效，请重新登录",
  403: "无权访问",
  404: "内容不存在或已删除",
  409: "操作冲突，请刷新后重试",
  413: "提交的内容过大",
  422: "填写有误，请检查标注的字段",
  429: "操作过于频繁，请稍后再试",
  503: "服务暂时不可用，请稍后再试",
};

export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
    } catch {
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(STORE_KEY);
  },
  loggedIn() {
    return Boolean(this.get()?.access_token);
  },
};

let unauthorizedHandler = () => {};
/** Called when the login is gone (401 on an authenticated call): the app shows the login page. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const err = body && typeof body === "object" ? body.error || {} : {};
  return new ApiError(response.status, err.code, err.message || STATUS_TEXT[response.status], err.fields);
}

/** Send one request with the staff token; the parsed JSON (null for 204). */
export async function request(method, path, { body, auth = true } = {}) {
  const headers = new Headers();
  if (body !== undefined) headers.set("Content-Type", "application/json");
  const token = session.get()?.access_token;
  if (auth && token) headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(BASE + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
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
