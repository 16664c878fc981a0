// 工作台 — the staff workbench: login, the inbox (待办 / 我的 / 已办 with due badges), one task
// (case summary, materials, timeline, the task form from its ui_spec, and the operations its
// `actions` allow: claim / unclaim / complete, 退回 转办 加签 撤回 (ops.js), comment), and window
// intake for clerks (intake.js). Hash routes: #/inbox?status=ready&due=overdue, #/tasks/<id>, #/intake.

import { api, ApiError, client, onUnauthorized, session } from "./api.js";
import { staffLoginForm } from "/shared/static/staff.js";
import { intakeView } from "./intake.js";
import { applicationSection, materialsSection } from "./materials.js";
import { casesView } from "./cases.js";
import { CERT_ROLES, certificatesView } from "./certificates.js";
import { canSeeStats, statsView } from "./stats.js";
import { caseDocumentsSection } from "./documents.js";
import { delegationView } from "./delegation.js";
import { errorText, kv, section, toast } from "./ui.js";
import { commentForm, workCard } from "./work.js";
import { rectificationCard, supplementRounds } from "./loop.js";
import { installBell, refreshBell, urgeButton } from "./messages.js";
import { formatTime, h } from "/shared/static/dom.js";

const view = document.getElementById("view");
const STATUS_TABS = [["ready", "待办"], ["mine", "我的"], ["waiting", "待补正"], ["done", "已办"]];
const DUE_FILTERS = [["overdue", "已超期", "red"], ["today", "今日到期", "orange"], ["soon", "即将到期", "yellow"]];
const STATE_LABELS = { ready: "待认领", claimed: "已认领", completed: "已办结", cancelled: "已取消", waiting: "待补正" };
const KIND_TAGS = { cosign: "加签", supplement: "补正", escalation: "督办", review: "复核" };
const CHANNELS = { mobile: "移动端", window: "窗口", web: "网上办事大厅" };
const PAGE_SIZE = 20;

let serviceNames = null;
let renderToken = 0;

// ------------------------------------------------------------------ small helpers

function shanghaiDate(date) {
  return date.toLocaleDateString("zh-CN", { timeZone: "Asia/Shanghai" });
}

/** The API counts no further than 1000 (so the inbox stays fast with a large backlog): 999+. */
const COUNT_CAP = 1000;
function countLabel(n) {
  return (n ?? 0) >= COUNT_CAP ? "999+" : String(n ?? 0);
}

/** The due badge of an open task: 已超期 / 今日到期 / 即将到期 (24 小时内), as the API counts them. */
export function dueOf(task, now = new Date()) {
  if (!task.due_at || !["ready", "claimed"].includes(task.state)) return null;
  const due = new Date(task.due_at);
  if (task.overdue || due < now) return DUE_FILTERS[0];
  if (shanghaiDate(due) === shanghaiDate(now)) return DUE_FILTERS[1];
  if (due - now <= 24 * 3600 * 1000) return DUE_FILTERS[2];
  return null;
}

function dueBadge(task) {
  const due = dueOf(task);
  return due ? h("span", { class: `badge badge-${due[2]}`, dataset: { due: due[0] } }, due[1]) : null;
}

async function loadServiceNames() {
  if (serviceNames) return serviceNames;
  try {
    const body = await api.get("/services", { auth: false });
    serviceNames = Object.fromEntries((body.items || []).map((s) => [s.slug, s.name]));
  } catch {
    serviceNames = {};
  }
  return serviceNames;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/inbox";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}

function setWho() {
  const staff = session.get()?.staff;
  document.getElementById("who").hidden = !staff;
  document.getElementById("who-name").textContent = staff ? `${staff.name}（${staff.username}）` : "";
}

const INTAKE_ROLES = ["clerk", "admin"];

function canIntake() {
  return (session.get()?.staff?.roles || []).some((r) => INTAKE_ROLES.includes(r));
}

function canManageCertificates() {
  return (session.get()?.staff?.roles || []).some((r) => CERT_ROLES.includes(r));
}

/** The top bar's links: 待办 always, 窗口受理 for clerks; the current one marked. */
function setNav(current) {
  const nav = document.getElementById("nav");
  nav.hidden = !session.loggedIn();
  nav.querySelector('[data-nav="intake"]').hidden = !canIntake();
  nav.querySelector('[data-nav="certificates"]').hidden = !canManageCertificates();
  nav.querySelector('[data-nav="stats"]').hidden = !canSeeStats();
  for (const link of nav.querySelectorAll("a")) {
    const here = link.dataset.nav === (["intake", "cases", "certificates", "stats", "delegation"].includes(current) ? current : "inbox");
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function show(...children) {
  view.replaceChildren(...children.flat().filter(Boolean));
}

// ------------------------------------------------------------------ login

function loginView(notice) {
  document.title = "登录 · 工作台";
  setNav("");
  const login = staffLoginForm({
    client, title: "工作人员登录", subtitle: "政务服务事项办理、审批与督办", notice,
    onLoggedIn: () => {
      setWho();
      if (!location.hash || location.hash === "#/login") location.hash = "#/inbox";
      else route();
    },
  });
  show(login.card);
  login.focus();
}

// ------------------------------------------------------------------ inbox

function inboxHref(status, due, page) {
  const q = new URLSearchParams({ status });
  if (due) q.set("due", due);
  if (page && page > 1) q.set("page", String(page));
  return `#/inbox?${q}`;
}

async function inboxView(params, token) {
  document.title = "待办 · 工作台";
  const status = STATUS_TABS.some(([k]) => k === params.get("status")) ? params.get("status") : "ready";
  const due = DUE_FILTERS.some(([k]) => k === params.get("due")) ? params.get("due") : "";
  const page = Math.max(1, Number(params.get("page")) || 1);
  const q = new URLSearchParams({ status, page: String(page), size: String(PAGE_SIZE) });
  if (due) q.set("due", due);
  const [body, names] = await Promise.all([api.get(`/staff/tasks?${q}`), loadServiceNames()]);
  if (token !== renderToken) return;
  const counts = body.counts || {};

  const shownTabs = STATUS_TABS.filter(([key]) => key !== "waiting" || counts.waiting !== undefined);
  const tabs = h("nav", { class: "tabs", "aria-label": "任务分类" }, shownTabs.map(([key, label]) =>
    h("a", { href: inboxHref(key, "", 1), class: "tab", dataset: { status: key },
      "aria-current": key === status ? "page" : undefined },
    label, h("span", { class: "count" }, countLabel(counts[key])))));
  const chips = h("nav", { class: "chips", "aria-label": "到期筛选" },
    h("a", { href: inboxHref(status, "", 1), class: "chip", "aria-current": due ? undefined : "page" }, "全部"),
    DUE_FILTERS.map(([key, label, color]) => h("a", {
      href: inboxHref(status, key, 1), class: `chip chip-${color}`, dataset: { due: key },
      "aria-current": key === due ? "page" : undefined,
    }, label, h("span", { class: "count" }, countLabel(counts[key])))));

  const items = body.items || [];
  let list;
  if (!items.length) {
    list = h("p", { class: "empty" }, { done: "暂无已办任务", waiting: "暂无等待申请人补正的任务" }[status]
      || "暂无任务，休息一下吧");
  } else {
    list = h("table", { class: "tasks" },
      h("thead", {}, h("tr", {}, ["到期", "办件编号", "事项", "任务", "办理部门", "到期时间", "状态"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((t) => {
        const href = `#/tasks/${t.id}`;
        const row = h("tr", { class: "task-row", dataset: { taskId: t.id, state: t.state } },
          h("td", { class: "col-due" }, dueBadge(t) || h("span", { class: "muted" }, "—")),
          h("td", { class: "mono" }, t.case_no),
          h("td", {}, names[t.service] || t.service),
          h("td", {}, h("a", { href, class: "task-link" }, t.name),
            KIND_TAGS[t.kind] ? h("span", { class: "tag tag-small tag-blue" }, KIND_TAGS[t.kind]) : null,
            t.on_behalf_of ? h("span", { class: "tag tag-small tag-orange behalf", title: "代理：您代其办理" },
              `代 ${t.on_behalf_of_name || t.on_behalf_of}`) : null),
          h("td", {}, t.department_name || t.department || "—"),
          h("td", { class: "mono" }, t.due_at ? formatTime(t.due_at) : "无时限"),
          h("td", {}, h("span", { class: `state state-${t.state}` }, STATE_LABELS[t.state] || t.state),
            t.state === "claimed" && t.assignee ? h("span", { class: "muted small" }, ` ${t.assignee_name || t.assignee}`) : null));
        row.addEventListener("click", (event) => {
          if (!(event.target instanceof HTMLAnchorElement)) location.hash = href;
        });
        return row;
      })));
  }
  const pages = Math.max(1, Math.ceil((body.total || 0) / PAGE_SIZE));
  const pager = pages > 1 ? h("div", { class: "pager" },
    h("a", { class: "btn btn-ghost btn-small", href: inboxHref(status, due, page - 1), hidden: page <= 1 }, "上一页"),
    h("span", { class: "muted" }, `第 ${page} / ${pages} 页，共 ${countLabel(body.total)} 条`),
    h("a", { class: "btn btn-ghost btn-small", href: inboxHref(status, due, page + 1), hidden: page >= pages }, "下一页"))
    : h("p", { class: "muted small total" }, `共 ${countLabel(body.total)} 条`);
  show(h("div", { class: "page-head" }, h("h1", { class: "page-title" }, "我的工作台"),
    h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => route() }, "刷新")),
  h("section", { class: "card inbox" }, tabs, chips, list, pager));
}

// ------------------------------------------------------------------ one task

/** Who acted, as people read it: 王芳（市场监督管理局）, 申请人 · 市场监督管理局, 系统 — never citizen:1. */
function timelineWho(e) {
  const who = e.actor_label || e.actor_name || "";  // 代理: 李四（…） 代 张三
  const where = e.department_name && !who.includes(e.department_name) ? e.department_name : "";
  return [who, where].filter(Boolean).join(" · ");
}

function timelineList(events) {
  if (!events.length) return h("p", { class: "muted" }, "暂无办理记录");
  return h("ol", { class: "timeline" }, [...events].reverse().map((e, i) =>
    h("li", { class: `tl-item${i === events.length - 1 ? " tl-last" : ""}` },
      h("span", { class: "tl-dot", "aria-hidden": "true" }),
      h("div", { class: "tl-row" },
        h("span", { class: "tl-title" }, e.action, e.step ? ` · ${e.step}` : ""),
        h("time", { class: "tl-time", datetime: e.at }, formatTime(e.at))),
      e.actor_name || e.actor_label || e.department_name ? h("p", { class: "tl-meta" }, timelineWho(e)) : null,
      e.opinion ? h("p", { class: "tl-opinion" }, e.opinion) : null)));
}

async function taskView(taskId, token) {
  const [detail, names] = await Promise.all([api.get(`/staff/tasks/${encodeURIComponent(taskId)}`), loadServiceNames()]);
  if (token !== renderToken) return;
  const { task, case: c } = detail;
  document.title = `${task.name} · 工作台`;
  const me = session.get()?.staff?.username;

  const header = h("section", { class: "card task-header" },
    h("div", { class: "task-title-row" },
      h("h1", { class: "task-title" }, task.name),
      h("span", { class: `state state-${task.state}`, dataset: { state: task.state } }, STATE_LABELS[task.state] || task.state),
      dueBadge(task), urgeButton(task, dueOf(task)?.[0] === "overdue"),
      task.on_behalf_of ? h("span", { class: "tag tag-orange behalf" }, `代 ${task.on_behalf_of_name || task.on_behalf_of}`)
        : null),
    kv([
      ["办件编号", h("span", { class: "mono case-no" }, c.case_no)],
      ["事项", c.service_name || names[c.service] || c.service],
      ["申请人", [c.applicant_name, c.applicant_id].filter(Boolean).join("　") || "—"],
      ["办件状态", c.status_label || c.status],
      ["受理渠道", CHANNELS[c.channel] || c.channel],
      ["申请时间", formatTime(c.created_at)],
      ["办件时限", c.due_at ? formatTime(c.due_at) : "无"],
      ["办理部门", task.department_name || task.department],
      ["任务时限", task.due_at ? formatTime(task.due_at) : "无时限"],
      [task.kind === "cosign" ? "加签人" : "认领人", task.assignee_name || task.assignee || "—"],
    ]));

  const materials = materialsSection(detail);
  const timeline = section("办理记录", timelineList(detail.timeline || []));
  const supplements = supplementRounds(detail);

  const ctx = {
    me,
    reload: () => route(),
    toInbox(message) {
      toast(message);
      location.hash = "#/inbox?status=ready";
    },
  };
  const actions = new Set(detail.actions || []);
  const work = workCard(detail, actions, ctx);

  show(h("div", { class: "page-head" },
    h("a", { class: "back", href: "#/inbox?status=ready" }, "‹ 返回待办"),
    h("span", { class: "muted small" }, `${c.service_name || names[c.service] || c.service} · ${c.case_no}`)),
  h("div", { class: "task-layout" },
    h("div", { class: "col-main" }, header, rectificationCard(detail), applicationSection(detail), work, actions.has("comment") ? section("批注", commentForm(task, ctx)) : null),
    h("div", { class: "col-side" }, supplements, materials, caseDocumentsSection(c.id, c.case_no), timeline)));
}

// ------------------------------------------------------------------ router

async function route() {
  renderToken += 1;
  const token = renderToken;
  setWho();
  installBell();
  refreshBell();
  if (!session.loggedIn()) {
    loginView();
    return;
  }
  const { parts, params } = parseHash();
  try {
    setNav(parts[0]);
    if (parts[0] === "tasks" && parts[1]) await taskView(parts[1], token);
    else if (parts[0] === "intake" && canIntake()) await intakeView({ show, isCurrent: () => token === renderToken });
    else if (parts[0] === "cases") await casesView({ show, parts, params, isCurrent: () => token === renderToken });
    else if (parts[0] === "certificates" && canManageCertificates()) {
      await certificatesView({ show, params, isCurrent: () => token === renderToken });
    }
    else if (parts[0] === "delegation") await delegationView({ show, isCurrent: () => token === renderToken });
    else if (parts[0] === "stats" && canSeeStats()) {
      await statsView(Object.fromEntries(params), { show, isCurrent: () => token === renderToken });
    }
    else await inboxView(params, token);
    if (token === renderToken) window.scrollTo(0, 0);
  } catch (exc) {
    if (token !== renderToken || (exc instanceof ApiError && exc.status === 401)) return;
    show(h("div", { class: "card" }, h("p", { class: "alert alert-error", role: "alert" }, errorText(exc)),
      h("a", { class: "btn btn-ghost btn-small", href: "#/inbox?status=ready" }, "返回待办")));
  }
}

onUnauthorized(() => loginView("登录已失效，请重新登录"));
document.getElementById("logout").addEventListener("click", () => {
  session.clear();
  serviceNames = null;
  location.hash = "#/inbox";
  loginView();
  setWho();
});
window.addEventListener("hashchange", route);
route();
