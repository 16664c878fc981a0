// What both pages' API clients share: the error type, Chinese texts per status, a session kept in
// sessionStorage under a page's own key, and reading the API's error body.

export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message || "请求失败，请稍后重试");
    this.status = status;
    this.code = code || "error";
    this.fields = fields || {};
  }
}

export const STATUS_TEXT = {
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

/** A login session in sessionStorage under ``key``; ``extra`` adds page-specific methods. */
export function sessionStore(key, extra = {}) {
  return {
    get() {
      try {
        return JSON.parse(sessionStorage.getItem(key) || "null");
      } catch {
        return null;
      }
    },
    set(value) {
      sessionStorage.setItem(key, JSON.stringify(value));
    },
    clear() {
      sessionStorage.removeItem(key);
    },
    loggedIn() {
      return Boolean(this.get()?.access_token);
    },
    ...extra,
  };
}

/** The API's ``{"error": {code, message, fields}}`` as an ApiError (status text when absent). */
export async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const err = body && typeof body === "object" ? body.error || {} : {};
  return new ApiError(response.status, err.code, err.message || STATUS_TEXT[response.status], err.fields);
}
