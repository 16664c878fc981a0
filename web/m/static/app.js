// 市民服务 H5: dev login, real-name binding, catalogue, one form per service rendered from its
// ui_spec, submission with an Idempotency-Key, live case tracking over server-sent events,
// e-certificates with a QR code refreshed every minute, and the 好差评 rating.
// Hash routes: #/login #/real-name #/services #/services/<slug> #/cases #/cases/<id>
// #/certificates #/me #/messages (messages.js)

import { api, ApiError, followEvents, onUnauthorized, request, restoreSession, session } from "./api.js";
import { accessLogView, loopPanel, markCasesTab, waitingBadge } from "./loop.js";
import { formatTime, h, uid } from "/shared/static/dom.js";
import { buildForm } from "/shared/static/form.js";
import { materialUploads } from "./upload.js";
import { explainPhone, messagesView, refreshBadge, urgeButton } from "./messages.js";
import { caseDocuments, pdfButton } from "./documents.js";

const QR_REFRESH_MS = 60000;
const LEVELS = [[1, "非常满意"], [2, "满意"], [3, "基本满意"], [4, "不满意"], [5, "非常不满意"]];
const OUTCOMES = {
  approve: "准予", approved: "准予", reject: "不予", rejected: "不予", manual: "转人工审核",
};
const DECISION_INPUTS = { found: "人口库有记录", age: "年龄（周岁）", local: "本市户籍" };
const LEVEL_NAMES = { 0: "未实名", 1: "自报实名", 2: "已核验姓名与身份证号", 3: "已人脸核验" };
const CERT_STATES = { "01": "有效", "02": "已暂停", "03": "已撤销", "04": "已注销", "05": "已过期" };

const view = document.getElementById("view");
const titleEl = document.getElementById("page-title");
const backButton = document.getElementById("back");
const tabbar = document.getElementById("tabbar");
const announcer = document.getElementById("announcer");
const toastEl = document.getElementById("toast");

let cleanup = [];
let serviceNames = null;

// ------------------------------------------------------------------ small helpers

/** Replace the view's content, skipping empty parts. */
function show(...nodes) {
  view.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false && n !== ""));
}

function announce(text) {
  announcer.textContent = "";
  setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

let toastTimer = null;
function toast(text) {
  toastEl.textContent = text;
  toastEl.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    toastEl.hidden = true;
  }, 3000);
}

function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function listOf(body, ...keys) {
  if (Array.isArray(body)) return body;
  for (const key of [...keys, "items", "results", "data"]) {
    if (body && Array.isArray(body[key])) return body[key];
  }
  return [];
}

function newKey() {
  if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const departmentOf = (item) => item.department_name || item.department?.name || item.department || "";

function limitText(item) {
  const promised = item.promised_limit || item.promised || {};
  const days = typeof promised === "number" ? promised : promised.value;
  if (item.type === "即办件" || !days) return "即时办结";
  return `承诺${days}个${promised.unit || "工作日"}`;
}

function visitsText(visits) {
  if (visits === 0 || visits === "0") return "一次不用跑";
  if (visits === undefined || visits === null) return "";
  return `最多跑${visits}次`;
}

function tags(item) {
  const type = item.type || "";
  return h("div", { class: "tags" },
    type ? h("span", { class: `tag ${type === "即办件" ? "tag-green" : "tag-blue"}` }, type) : null,
    h("span", { class: "tag tag-plain" }, limitText(item)),
    visitsText(item.visits) ? h("span", { class: `tag ${item.visits === 0 ? "tag-orange" : "tag-plain"}` },
      visitsText(item.visits)) : null);
}

function errorBox(error) {
  const message = error instanceof ApiError ? error.message : "页面出错了，请稍后重试";
  return h("div", { class: "alert alert-error", role: "alert" }, message);
}

function loading(text = "加载中…") {
  return h("p", { class: "loading", role: "status" }, text);
}

function section(title, ...children) {
  const id = uid("s");
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { class: "card-title", id }, title), ...children);
}

async function serviceName(slug) {
  if (!serviceNames) {
    try {
      serviceNames = Object.fromEntries(listOf(await api.get("/services"), "services").map((s) => [s.slug, s.name]));
    } catch {
      serviceNames = {};
    }
  }
  return serviceNames[slug] || slug;
}

function keyValues(rows) {
  return h("dl", { class: "kv" }, rows.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => h("div", { class: "kv-row" }, h("dt", {}, k), h("dd", {}, v))));
}

// ------------------------------------------------------------------ login and real name

function loginView() {
  setChrome("登录", { tabs: false });
  const nameId = uid("f");
  const errorId = `${nameId}-error`;
  const input = h("input", {
    id: nameId, class: "input", type: "text", autocomplete: "username", autocapitalize: "none",
    spellcheck: "false", placeholder: "如 wang", maxlength: 60, "aria-describedby": `${nameId}-help ${errorId}`,
  });
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  const button = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "登录");
  const form = h("form", { class: "card", novalidate: true },
    h("div", { class: "brand" }, h("div", { class: "brand-mark", "aria-hidden": "true" }, "政"),
      h("div", {}, h("p", { class: "brand-name" }, "一网通办 · 市民服务"), h("p", { class: "muted" }, "一次登录，全城通办"))),
    h("div", { class: "field" },
      h("label", { class: "field-label", for: nameId }, "登录名（开发模式）"), input,
      h("p", { class: "field-help", id: `${nameId}-help` },
        "正式环境通过微信小程序一键登录。开发模式下输入任意登录名（字母、数字、._-）即可，凭证为 dev-登录名。"),
      error),
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    if (!name) {
      showFieldError(input, error, "请输入登录名");
      return;
    }
    button.disabled = true;
    try {
      const body = await api.post("/auth/miniprogram", { code: `dev-${name}` }, { auth: false });
      session.set({});
      session.saveTokens(body);
      const next = sessionStorage.getItem("govflow.m.next") || "#/services";
      sessionStorage.removeItem("govflow.m.next");
      toast("登录成功");
      navigate(body.citizen && !body.citizen.real_name_bound ? `#/real-name?next=${encodeURIComponent(next)}` : next);
    } catch (exc) {
      const message = exc instanceof ApiError ? exc.fields.code || exc.message : "登录失败，请稍后重试";
      showFieldError(input, error, message);
    } finally {
      button.disabled = false;
    }
  });
  show(form);
}

function showFieldError(input, errorEl, message) {
  errorEl.textContent = message;
  errorEl.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.closest(".field")?.classList.add("has-error");
  input.focus();
}

function realNameView(params) {
  setChrome("实名认证", { back: true });
  const next = params.get("next") || "#/services";
  const fields = {};
  const make = (name, label, attrs, help) => {
    const id = uid("f");
    const input = h("input", { id, name, class: "input", type: "text", "aria-describedby": `${id}-help ${id}-error`,
      "aria-required": "true", ...attrs });
    const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
    fields[name] = { input, error };
    return h("div", { class: "field", dataset: { path: name } },
      h("label", { class: "field-label", for: id }, label, h("span", { class: "req", "aria-hidden": "true" }, "*")),
      input, h("p", { class: "field-help", id: `${id}-help` }, help), error);
  };
  const idInput = { maxlength: 18, autocomplete: "off", spellcheck: "false", autocapitalize: "characters",
    placeholder: "18位公民身份号码" };
  const summary = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "确认认证");
  const form = h("form", { class: "card", novalidate: true },
    h("p", { class: "muted" }, "实名认证后即可在线申办事项。姓名与身份证号加密保存，页面只显示脱敏信息。"),
    make("name", "姓名", { autocomplete: "name", placeholder: "与身份证件一致" }, "请填写身份证上的姓名"),
    make("id_number", "身份证号", idInput, "末位为X的请输入大写X"),
    summary, button);
  fields.id_number.input.addEventListener("input", (e) => {
    e.target.value = e.target.value.toUpperCase();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    summary.hidden = true;
    for (const { input, error } of Object.values(fields)) {
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      input.closest(".field").classList.remove("has-error");
    }
    button.disabled = true;
    try {
      const citizen = await api.post("/me/real-name", {
        name: fields.name.input.value.trim(), id_number: fields.id_number.input.value.trim(),
      });
      session.update({ citizen });
      toast("实名认证成功");
      announce("实名认证成功");
      navigate(next);
    } catch (exc) {
      let placed = false;
      if (exc instanceof ApiError) {
        for (const [path, message] of Object.entries(exc.fields)) {
          const target = fields[path.replace(/^body\./, "")];
          if (target) {
            showFieldError(target.input, target.error, message);
            placed = true;
          }
        }
      }
      if (!placed) {
        summary.textContent = exc instanceof ApiError ? exc.message : "认证失败，请稍后重试";
        summary.hidden = false;
      }
      form.querySelector('[aria-invalid="true"]')?.focus();
    } finally {
      button.disabled = false;
    }
  });
  show(form);
}

// ------------------------------------------------------------------ catalogue

async function catalogueView() {
  setChrome("办事服务", { tab: "services" });
  show(loading());
  const citizen = session.get()?.citizen;
  let services;
  try {
    services = listOf(await api.get("/services"), "services");
  } catch (exc) {
    show(errorBox(exc));
    return;
  }
  serviceNames = Object.fromEntries(services.map((s) => [s.slug, s.name]));
  const searchId = uid("f");
  const search = h("input", { id: searchId, class: "input search", type: "search", placeholder: "搜索事项名称或部门" });
  const list = h("ul", { class: "service-list", "aria-label": "服务事项" });
  const empty = h("p", { class: "muted center", hidden: true }, "没有找到相关事项");
  const cards = services.map((s) => {
    const li = h("li", {},
      h("a", { class: "card service-card", href: `#/services/${encodeURIComponent(s.slug)}` },
        h("div", { class: "service-head" },
          h("h2", { class: "service-name" }, s.name),
          h("span", { class: "chevron", "aria-hidden": "true" }, "›")),
        h("p", { class: "service-dept" }, departmentOf(s)),
        tags(s)));
    li.dataset.text = `${s.name} ${departmentOf(s)}`;
    return li;
  });
  list.append(...cards);
  search.addEventListener("input", () => {
    const q = search.value.trim();
    let shown = 0;
    for (const li of cards) {
      li.hidden = Boolean(q) && !li.dataset.text.includes(q);
      if (!li.hidden) shown += 1;
    }
    empty.hidden = shown > 0;
  });
  show(
    citizen && !citizen.real_name_bound
      ? h("a", { class: "alert alert-info notice-link", href: "#/real-name?next=%23%2Fservices" }, "您尚未实名认证，认证后即可在线申办 ›")
      : null,
    h("div", { class: "hero" }, h("p", { class: "hero-title" }, "一网通办 · 掌上办"),
      h("p", { class: "hero-sub" }, "一次登录，材料免交，进度实时可查")),
    h("div", { class: "search-box" }, h("label", { for: searchId, class: "sr-only" }, "搜索服务"), search),
    list, empty);
}

// ------------------------------------------------------------------ service detail and form

function materialItem(m) {
  const satisfied = m.satisfied === true || m.status === "satisfied";
  const shared = m.source_type === "shared_data";
  const label = m.label || (shared ? "由共享数据获取" : satisfied ? "已由电子证照自动获取（免提交）" : "需上传");
  const kind = shared ? "shared" : satisfied ? "ok" : "upload";
  return h("li", { class: `material material-${kind}`, dataset: { satisfied: String(satisfied) } },
    h("span", { class: "material-icon", "aria-hidden": "true" }, kind === "ok" ? "✓" : kind === "shared" ? "⇄" : "↑"),
    h("div", { class: "material-body" },
      h("p", { class: "material-name" }, m.name,
        h("span", { class: `tag ${m.required ? "tag-red" : "tag-plain"} tag-small` }, m.required ? "必需" : "非必需")),
      h("p", { class: "material-state" }, label),
      m.reason && !satisfied ? h("p", { class: "material-note" }, m.reason) : null,
      !satisfied && m.form && m.source_type === "citizen" ? h("p", { class: "material-note" }, `材料形式：${m.form}`) : null));
}

async function serviceView(params, slug) {
  setChrome("事项详情", { back: true, tab: "services" });
  show(loading());
  let item;
  try {
    item = await api.get(`/services/${encodeURIComponent(slug)}`);
  } catch (exc) {
    show(errorBox(exc));
    return;
  }
  setChrome(item.name, { back: true, tab: "services" });
  const citizen = session.get()?.citizen;
  const needLevel = item.real_name_level ?? 0;
  const bound = citizen && citizen.real_name_bound && (citizen.real_name_level ?? 0) >= needLevel;

  const guide = h("details", { class: "guide" }, h("summary", {}, "办事指南"),
    keyValues([
      ["办件类型", item.type],
      ["承诺时限", limitText(item)],
      ["法定时限", item.legal_limit ? `${item.legal_limit.value}个${item.legal_limit.unit || "工作日"}` : null],
      ["跑动次数", visitsText(item.visits)],
      ["收费标准", item.fees],
      ["实施部门", departmentOf(item)],
    ]),
    Array.isArray(item.legal_basis) && item.legal_basis.length
      ? h("div", { class: "basis" }, h("p", { class: "kv-title" }, "设定依据"), h("ul", {}, item.legal_basis.map((b) => h("li", {}, b))))
      : null);
  const header = h("section", { class: "card service-header" },
    h("h2", { class: "service-title" }, item.name),
    h("p", { class: "service-dept" }, departmentOf(item)),
    tags(item),
    item.summary ? h("p", { class: "summary" }, item.summary) : null,
    guide);

  const materials = listOf(item.materials, "materials");
  const uploads = bound && materials.length ? materialUploads(materials, materialItem) : null;
  const materialsCard = section("申请材料", uploads ? uploads.el
    : materials.length ? h("ul", { class: "materials", "aria-label": "申请材料清单" }, materials.map(materialItem))
      : h("p", { class: "muted" }, "无需提交材料"));

  const spec = item.form || { fields: [] };
  const built = buildForm(spec);
  const summary = h("div", { class: "alert alert-error", role: "alert", tabindex: "-1", hidden: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "提交申请");
  const formEl = h("form", { class: "card app-form", novalidate: true, "aria-labelledby": "form-title" },
    h("h2", { class: "card-title", id: "form-title" }, spec.title || "填写申请表"),
    spec.description ? h("p", { class: "muted" }, spec.description) : null,
    built.el, summary);
  explainPhone(formEl);
  const actions = h("div", { class: "submit-bar" },
    bound ? submit : h("a", { class: "btn btn-primary btn-block", href: `#/real-name?next=${encodeURIComponent(location.hash)}` },
      "实名认证后申办"));
  if (bound) formEl.append(actions);

  let idempotencyKey = null;
  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!bound) return;
    built.clearErrors();
    summary.hidden = true;
    if (uploads?.busy()) {
      summary.textContent = "材料正在上传，请等待上传完成后再提交";
      summary.hidden = false;
      summary.focus();
      return;
    }
    uploads?.showErrors({});
    submit.disabled = true;
    submit.textContent = "正在提交…";
    // Same key while retrying after a network failure; a new one for a changed form.
    idempotencyKey = idempotencyKey || newKey();
    try {
      const created = await api.post("/applications",
        { service: slug, form: built.value(), ...(uploads?.value() ? { materials: uploads.value() } : {}) },
        { headers: { "Idempotency-Key": idempotencyKey } });
      idempotencyKey = null;
      const id = created.id ?? created.case?.id ?? created.application?.id;
      toast(`已提交，办件编号 ${created.case_no || created.case?.case_no || ""}`);
      navigate(`#/cases/${id}`);
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.status === 0 || exc.status >= 500) {
        summary.textContent = exc instanceof ApiError ? `${exc.message}（可直接重新提交，不会重复申请）` : "提交失败，请重试";
      } else {
        idempotencyKey = null;
        uploads?.showErrors(exc.fields);
        const unplaced = built.showErrors(exc.fields);
        const count = Object.keys(exc.fields).length;
        summary.textContent = count
          ? [`${exc.message}`, ...unplaced].join("；")
          : exc.message;
      }
      summary.hidden = false;
      if (Object.keys(exc.fields || {}).length) built.focusFirstError();
      else summary.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "提交申请";
    }
  });

  show(
    header,
    materialsCard,
    bound ? null : h("a", { class: "alert alert-info notice-link", href: `#/real-name?next=${encodeURIComponent(location.hash)}` },
      `本事项需先完成实名认证（${LEVEL_NAMES[needLevel] || "实名"}） ›`),
    formEl);
}

// ------------------------------------------------------------------ cases

function statusBadge(detail) {
  const cls = { completed: "badge-green", running: "badge-blue", failed: "badge-red", withdrawn: "badge-grey" }[detail.status] || "badge-blue";
  return h("span", { class: `badge ${cls}`, "data-status": detail.status }, detail.status_label || detail.status);
}

async function casesView() {
  setChrome("我的办件", { tab: "cases" });
  show(loading());
  let cases;
  try {
    cases = listOf(await api.get("/applications"), "applications", "cases");
  } catch (exc) {
    show(errorBox(exc));
    return;
  }
  if (!cases.length) {
    show(h("div", { class: "empty" }, h("p", {}, "暂无办件"),
      h("a", { class: "btn btn-primary", href: "#/services" }, "去办事")));
    return;
  }
  const names = await Promise.all(cases.map((c) => (c.service_name ? c.service_name : serviceName(c.service))));
  markCasesTab(cases);
  show(h("ul", { class: "service-list", "aria-label": "我的办件" }, cases.map((c, i) =>
    h("li", {}, h("a", { class: "card service-card", href: `#/cases/${c.id}` },
      h("div", { class: "service-head" }, h("h2", { class: "service-name" }, names[i]), waitingBadge(c), statusBadge(c)),
      h("p", { class: "service-dept" }, `办件编号 ${c.case_no || c.id}`),
      h("p", { class: "muted small" }, `申请时间 ${formatTime(c.created_at)}`))))));
}

const outcomeClass = (outcome) => (/reject/.test(outcome || "") ? "no" : outcome === "manual" ? "wait" : "ok");

/** The result (when done) or the automatic decision (秒批) so far, with the reason and its basis. */
function outcomeCard(d) {
  const decision = d.decision;
  const result = d.result || {};
  const done = d.status !== "running";
  if (!decision && !(done && (result.outcome || result.reason))) return "";
  const outcome = done ? result.outcome || decision?.outcome : decision.outcome;
  const reason = (done ? result.reason : null) || decision?.reason;
  const byOfficer = ["officer", "review"].includes(result.decided_by) || (decision && decision.outcome === "manual");
  const inputs = decision && decision.inputs && typeof decision.inputs === "object" ? Object.entries(decision.inputs) : [];
  const value = (v) => (v === true ? "是" : v === false ? "否" : v === null || v === undefined ? "—" : String(v));
  return section(done ? "办理结果" : "自动审核结论",
    h("p", { class: `result result-${outcomeClass(outcome)}` },
      h("strong", { class: "result-outcome" }, OUTCOMES[outcome] || d.status_label),
      decision ? h("span", { class: `tag ${byOfficer ? "tag-blue" : "tag-green"}` }, byOfficer ? "人工审核" : "秒批") : null),
    reason ? h("p", { class: "result-reason" }, reason) : null,
    decision && decision.reason && decision.reason !== reason
      ? h("p", { class: "decision-reason muted small" }, `系统自动核验：${decision.reason}`) : null,
    inputs.length ? h("details", { class: "guide" }, h("summary", {}, "自动审核依据"),
      keyValues([...inputs.map(([k, v]) => [DECISION_INPUTS[k] || k, value(v)]), ["适用规则", decision.rule]]),
      h("p", { class: "muted small" }, "该结论由系统依据部门共享数据自动作出；如有异议，可向实施部门申请人工复核。"))
      : null);
}

function timeline(steps) {
  return h("ol", { class: "timeline", "aria-label": "办理进度" }, steps.map((s, i) => {
    const title = s.step || s.action;
    const meta = [s.step && s.action !== s.step ? s.action : null, s.department_name].filter(Boolean).join(" · ");
    return h("li", { class: `tl-item${i === steps.length - 1 ? " tl-last" : ""}` },
      h("span", { class: "tl-dot", "aria-hidden": "true" }),
      h("div", { class: "tl-body" },
        h("div", { class: "tl-row" }, h("p", { class: "tl-title" }, title),
          h("time", { class: "tl-time", datetime: s.at || "" }, formatTime(s.at))),
        meta ? h("p", { class: "tl-meta" }, meta) : null,
        s.opinion ? h("p", { class: "tl-opinion" }, s.opinion) : null));
  }));
}

function sanitizeSvg(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  if (!svg || svg.nodeName.toLowerCase() !== "svg" || doc.querySelector("parsererror")) return null;
  const allowed = new Set(["svg", "path", "rect", "g", "title", "desc"]);
  for (const el of [...svg.querySelectorAll("*")]) {
    if (!allowed.has(el.localName)) el.remove();
  }
  for (const el of [svg, ...svg.querySelectorAll("*")]) {
    for (const attr of [...el.attributes]) {
      if (/^on/i.test(attr.name) || /href$/i.test(attr.name)) el.removeAttribute(attr.name);
    }
  }
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  return document.importNode(svg, true);
}

function digest(text) {
  let hash = 5381;
  for (let i = 0; i < text.length; i += 1) hash = ((hash * 33) ^ text.charCodeAt(i)) >>> 0;
  return hash.toString(16);
}

/** A certificate's QR code (SVG) fetched with the access token, refreshed every minute. */
function qrWidget(cert) {
  const box = h("div", { class: "qr-box", role: "img", "aria-label": `${cert.name || "电子证照"}二维码`, "aria-busy": "true" });
  const status = h("p", { class: "qr-status muted small", "aria-live": "off" }, "正在生成二维码…");
  const refreshButton = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "刷新二维码");
  const el = h("div", { class: "qr", dataset: { certificate: String(cert.id), refreshes: "0" } }, box, status, refreshButton);
  let nextAt = Date.now() + QR_REFRESH_MS;
  let count = 0;
  let busy = false;
  let stopped = false;

  async function refresh() {
    if (busy || stopped) return;
    busy = true;
    box.setAttribute("aria-busy", "true");
    try {
      const response = await request("GET", `/certificates/${cert.id}/qrcode?format=svg`, { raw: true });
      const text = await response.text();
      const svg = sanitizeSvg(text);
      if (!svg) throw new ApiError(0, "bad_svg", "二维码生成失败");
      box.replaceChildren(svg);
      count += 1;
      el.dataset.refreshes = String(count);
      el.dataset.digest = digest(text);
      const expires = Number(response.headers.get("X-QR-Expires-At"));
      if (expires) el.dataset.expiresAt = String(expires);
      nextAt = Date.now() + QR_REFRESH_MS;
      tick();
    } catch (exc) {
      status.textContent = exc instanceof ApiError ? exc.message : "二维码加载失败";
      nextAt = Date.now() + 10000;
    } finally {
      busy = false;
      box.setAttribute("aria-busy", "false");
    }
  }

  function tick() {
    const left = Math.max(0, Math.ceil((nextAt - Date.now()) / 1000));
    if (count) status.textContent = `二维码 ${left} 秒后自动刷新，截图无效`;
    if (left <= 0) refresh();
  }

  const timer = setInterval(tick, 1000);
  const onVisible = () => {
    if (document.visibilityState === "visible") tick();
  };
  document.addEventListener("visibilitychange", onVisible);
  refreshButton.addEventListener("click", () => refresh());
  refresh();
  return {
    el,
    stop() {
      stopped = true;
      clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}

function certificateCard(cert, { withQr = true } = {}) {
  const qr = withQr ? qrWidget(cert) : null;
  if (qr) cleanup.push(() => qr.stop());
  const card = h("article", { class: "cert", "aria-label": cert.name || "电子证照" },
    h("div", { class: "cert-head" },
      h("p", { class: "cert-name" }, cert.name || "电子证照"),
      h("span", { class: "badge badge-light" }, cert.state_label || CERT_STATES[cert.state] || cert.state || "有效")),
    keyValues([
      ["持证人", cert.holder_name],
      ["证件号码", cert.holder_code_masked],
      ["证照编号", cert.number],
      ["发证机关", cert.issuer_name],
      ["发证日期", cert.issue_date],
      ["有效期至", cert.valid_to || cert.valid_until],
    ]),
    qr ? qr.el : null,
    cert.id ? pdfButton("下载电子证照 PDF", `/certificates/${cert.id}/pdf`, `${cert.name || "电子证照"}-${cert.number || cert.id}`) : null);
  return card;
}

function ratingForm(caseId, onDone) {
  const name = uid("rate");
  const radios = LEVELS.map(([level, label]) => {
    const id = `${name}-${level}`;
    return h("label", { class: "rate-option", for: id },
      h("input", { type: "radio", name, id, value: String(level) }),
      h("span", {}, label));
  });
  const commentId = uid("f");
  const comment = h("textarea", { id: commentId, class: "input", rows: 3, maxlength: 500, placeholder: "说说您的办事体验（选填）" });
  const error = h("p", { class: "field-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "提交评价");
  const form = h("form", { class: "rating", novalidate: true },
    h("fieldset", { class: "field field-choices" },
      h("legend", { class: "field-label" }, "您对本次办理满意吗？"),
      h("div", { class: "rate-options", role: "radiogroup" }, radios)),
    h("div", { class: "field" }, h("label", { class: "field-label", for: commentId }, "评价内容"), comment),
    error, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const checked = form.querySelector("input[type=radio]:checked");
    error.hidden = true;
    if (!checked) {
      error.textContent = "请选择评价等级";
      error.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      const result = await api.post(`/applications/${caseId}/evaluation`, {
        level: Number(checked.value), comment: comment.value.trim(),
      });
      toast("感谢您的评价");
      onDone(result);
    } catch (exc) {
      error.textContent = exc instanceof ApiError ? Object.values(exc.fields)[0] || exc.message : "评价提交失败";
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function ratingResult(evaluation) {
  const label = evaluation.label || LEVELS.find(([l]) => l === evaluation.level)?.[1] || "";
  return h("div", { class: "rated" },
    h("p", {}, "您的评价：", h("strong", { class: "rated-label" }, label)),
    evaluation.rectification_case_no
      ? h("p", { class: "muted small" }, `我们已启动整改（整改单号 ${evaluation.rectification_case_no}），将在1个工作日内与您联系。`)
      : h("p", { class: "muted small" }, "感谢您的评价，您的身份信息将严格保密。"));
}

async function caseView(params, id) {
  setChrome("办件详情", { back: true, tab: "cases" });
  show(loading());
  let detail = null;
  let stream = null;
  let closed = false;
  let reloadTimer = null;
  let lastStatus = null;
  let rendered = { certs: "", evaluation: null, docs: "" };
  const live = h("p", { class: "live", "aria-live": "off" });
  const setLive = (state) => {
    live.className = `live live-${state}`;
    live.textContent = { on: "实时更新中", off: "", retry: "连接中断，正在重连…", done: "" }[state] || "";
  };

  const parts = {
    header: h("section", { class: "card case-header" }),
    current: h("div"),
    loop: h("div", { class: "loop" }),
    outcome: h("div"),
    timeline: section("办理进度"),
    certs: h("div"),
    docs: h("div"),
    rating: h("div"),
  };
  const timelineBody = h("div");
  parts.timeline.append(timelineBody);

  async function load() {
    try {
      detail = await api.get(`/applications/${id}`);
    } catch (exc) {
      if (!detail) show(errorBox(exc));
      return;
    }
    if (closed) return;
    await paint();
    if (detail.status !== "running") {
      stream?.close();
      stream = null;
      setLive("done");
    }
  }

  function scheduleLoad() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, 150);
  }

  async function paint() {
    const d = detail;
    const name = d.service_name || (await serviceName(d.service));
    parts.header.replaceChildren(
      h("div", { class: "service-head" }, h("h2", { class: "service-title" }, name), statusBadge(d)),
      keyValues([
        ["办件编号", d.case_no],
        ["申请时间", formatTime(d.created_at)],
        ["承诺办结", d.due_at ? formatTime(d.due_at) : null],
        ["办结时间", d.completed_at ? formatTime(d.completed_at) : null],
      ]),
      live);
    const current = listOf(d.current_steps);
    parts.current.replaceChildren(current.length && d.status === "running" ? section("当前环节",
      h("ul", { class: "current" }, current.map((c) => h("li", { class: c.waiting_for_applicant ? "current-me" : "" },
        h("p", { class: "current-name" }, c.waiting_for_applicant ? `${c.name}（等待您处理）` : c.name),
        h("p", { class: "muted small" }, [c.department_name, c.due_at ? `${formatTime(c.due_at)} 前完成` : ""].filter(Boolean).join("　"))))),
      d.sla_paused ? h("p", { class: "muted small" }, "等待补正期间暂停计时") : null, urgeButton(d, current)) : "");
    const outcome = outcomeCard(d);
    if (outcome && listOf(d.certificates).length) {
      outcome.append(h("button", { type: "button", class: "btn btn-ghost btn-block btn-small jump",
        onclick: () => (parts.certs.firstElementChild || parts.certs).scrollIntoView({ block: "start" }) }, "查看电子证照"));
    }
    parts.outcome.replaceChildren(outcome);
    const loopKey = JSON.stringify([d.supplement?.task_id, d.actions, d.review?.status, d.status]);
    if (loopKey !== rendered.loop) { // rebuilt only when it changes: uploads in progress survive live updates
      rendered.loop = loopKey;
      parts.loop.replaceChildren(...loopPanel(d, {
        reload: () => load(), toast,
        later(fn, ms) {
          const timer = setTimeout(() => { rendered.loop = null; fn(); }, ms);
          cleanup.push(() => clearTimeout(timer));
        },
      }));
    }
    timelineBody.replaceChildren(timeline(listOf(d.steps)));
    const certs = listOf(d.certificates);
    const certKey = certs.map((c) => c.id).join(",");
    if (certKey !== rendered.certs) {
      rendered.certs = certKey;
      parts.certs.replaceChildren(certs.length ? section("电子证照", certs.map((c) => certificateCard(c))) : "");
    }
    const docsKey = `${d.status}:${listOf(d.steps).length}`;
    if (docsKey !== rendered.docs) {
      rendered.docs = docsKey;
      caseDocuments(id, d.case_no).then((card) => parts.docs.replaceChildren(card));
    }
    const evaluationKey = d.evaluation ? `${d.evaluation.level}` : d.status === "running" ? "running" : "open";
    if (evaluationKey !== rendered.evaluation) {
      rendered.evaluation = evaluationKey;
      let body = "";
      if (d.evaluation) body = section("服务评价", ratingResult(d.evaluation));
      else if (d.status !== "running") {
        body = section("服务评价", ratingForm(id, (result) => {
          detail.evaluation = result;
          rendered.evaluation = null;
          paint();
        }));
      }
      parts.rating.replaceChildren(body);
    }
    if (lastStatus !== null && lastStatus !== d.status) announce(`办件状态：${d.status_label || d.status}`);
    lastStatus = d.status;
    if (!view.contains(parts.header)) {
      show(parts.header, parts.current, parts.loop, parts.outcome, parts.timeline, parts.certs, parts.docs, parts.rating);
    }
  }

  cleanup.push(() => {
    closed = true;
    clearTimeout(reloadTimer);
    stream?.close();
  });

  await load();
  if (closed || !detail || detail.status !== "running") return;
  stream = followEvents(`/applications/${id}/events`, {
    onOpen() {
      setLive("on");
      scheduleLoad(); // whatever happened before the stream opened
    },
    onEvent(event) {
      if (event.type === "status" || event.type === "message") {
        try {
          const data = JSON.parse(event.data);
          if (data && data.status && detail && data.status !== detail.status) detail.status_hint = data.status;
        } catch {
          // not JSON: reload anyway
        }
        scheduleLoad();
      }
    },
    onError(exc) {
      if (closed) return;
      setLive(exc instanceof ApiError && [401, 403, 404].includes(exc.status) ? "off" : "retry");
    },
    keepGoing: () => !closed && detail && detail.status === "running",
  });
}

// ------------------------------------------------------------------ certificates and me

async function certificatesView() {
  setChrome("我的证照", { tab: "certificates" });
  show(loading());
  let certs;
  try {
    certs = listOf(await api.get("/certificates"), "certificates");
  } catch (exc) {
    show(errorBox(exc));
    return;
  }
  if (!certs.length) {
    show(h("div", { class: "empty" }, h("p", {}, "暂无电子证照"),
      h("p", { class: "muted small" }, "办结的事项所发证照会自动归集到这里")));
    return;
  }
  let shown = null;
  const cards = certs.map((cert) => {
    const holder = h("div", { class: "cert-qr-slot" });
    const button = h("button", { type: "button", class: "btn btn-primary btn-block", "aria-expanded": "false" }, "亮证（出示二维码）");
    button.addEventListener("click", () => {
      if (shown) {
        shown.qr.stop();
        shown.holder.replaceChildren();
        shown.button.setAttribute("aria-expanded", "false");
        shown.button.textContent = "亮证（出示二维码）";
        if (shown.button === button) {
          shown = null;
          return;
        }
      }
      const qr = qrWidget(cert);
      holder.replaceChildren(qr.el);
      button.setAttribute("aria-expanded", "true");
      button.textContent = "收起二维码";
      shown = { qr, holder, button };
    });
    const card = certificateCard(cert, { withQr: false });
    card.append(holder, button);
    return h("li", { class: "card" }, card);
  });
  cleanup.push(() => shown?.qr.stop());
  show(h("ul", { class: "service-list", "aria-label": "我的电子证照" }, cards));
}

async function meView() {
  setChrome("我的", { tab: "me" });
  show(loading());
  let citizen;
  try {
    citizen = await api.get("/me");
    session.update({ citizen });
  } catch (exc) {
    show(errorBox(exc));
    return;
  }
  const logout = h("button", { type: "button", class: "btn btn-ghost btn-block" }, "退出登录");
  logout.addEventListener("click", async () => {
    try {
      await api.post("/auth/logout");
    } catch {
      // the local session ends anyway
    }
    session.clear();
    navigate("#/login");
  });
  show(
    section("我的账号", keyValues([
      ["实名状态", citizen.real_name_bound ? LEVEL_NAMES[citizen.real_name_level] || "已实名" : "未实名"],
      ["姓名", citizen.name_masked],
      ["身份证号", citizen.id_masked],
      ["认证时间", citizen.verified_at ? formatTime(citizen.verified_at) : null],
    ]), citizen.real_name_bound ? null : h("a", { class: "btn btn-primary btn-block", href: "#/real-name?next=%23%2Fme" }, "去实名认证")),
    h("nav", { class: "card menu", "aria-label": "我的服务" },
      h("a", { href: "#/cases" }, "我的办件", h("span", { "aria-hidden": "true" }, "›")),
      h("a", { href: "#/certificates" }, "我的证照", h("span", { "aria-hidden": "true" }, "›")),
      h("a", { href: "#/access-log" }, "我的信息被谁查看", h("span", { "aria-hidden": "true" }, "›"))),
    logout);
}

// ------------------------------------------------------------------ router and chrome

function setChrome(title, { back = false, tab = null, tabs = true } = {}) {
  titleEl.textContent = title;
  document.title = `${title} - 市民服务`;
  backButton.hidden = !back;
  tabbar.hidden = !tabs;
  document.body.classList.toggle("no-tabs", !tabs);
  for (const link of tabbar.querySelectorAll("a")) {
    if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

const ROUTES = [
  [/^\/login$/, loginView, { public: true }],
  [/^\/real-name$/, realNameView],
  [/^\/services$/, catalogueView],
  [/^\/services\/([^/]+)$/, serviceView],
  [/^\/cases$/, casesView],
  [/^\/cases\/(\d+)$/, caseView],
  [/^\/certificates$/, certificatesView],
  [/^\/me$/, meView],
  [/^\/access-log$/, () => accessLogView({ show, setChrome, loading, errorBox })],
  [/^\/messages$/, () => messagesView({ show, setChrome, loading, errorBox })],
];

async function render() {
  for (const fn of cleanup) fn();
  cleanup = [];
  const raw = location.hash.replace(/^#/, "") || "/services";
  const [path, query] = raw.split("?");
  const params = new URLSearchParams(query || "");
  const match = ROUTES.map(([re, fn, opts]) => [path.match(re), fn, opts || {}]).find(([m]) => m);
  if (!match) {
    navigate("#/services");
    return;
  }
  const [m, fn, opts] = match;
  if (!opts.public && !session.loggedIn() && !(await restoreSession())) {
    sessionStorage.setItem("govflow.m.next", `#${raw}`);
    navigate("#/login");
    return;
  }
  window.scrollTo(0, 0);
  try {
    await fn(params, ...m.slice(1).map(decodeURIComponent));
  } catch (exc) {
    show(errorBox(exc));
  }
  refreshBadge();
  view.focus({ preventScroll: true });
}

onUnauthorized(() => {
  if (!location.hash.startsWith("#/login")) {
    sessionStorage.setItem("govflow.m.next", location.hash || "#/services");
    toast("登录已失效，请重新登录");
    navigate("#/login");
  }
});

backButton.addEventListener("click", () => {
  if (history.length > 1) history.back();
  else navigate("#/services");
});
window.addEventListener("hashchange", render);
render();
