// The console's notifications: the bell in the top bar (新待办, 即将超期, 超期督办, 催办, 抄送 —
// GET /staff/messages, read receipts for 抄送 when opened), the 催办 button supervisors get on an
// overdue or 督办 task (POST /staff/tasks/{id}/urge), and the 抄送 picker of the complete form
// (GET /staff/colleagues; the names go with POST /staff/tasks/{id}/complete as `cc`).

import { api, ApiError, session } from "./api.js";
import { errorText, toast } from "./ui.js";
import { formatTime, h, uid } from "/shared/static/dom.js";

const KINDS = { task_assigned: "新待办", sla_warning: "即将超期", sla_escalated: "超期督办", urged: "催办", cc: "抄送" };
const POLL_MS = 30000;
const SUPERVISOR_ROLES = ["supervisor", "admin"];

let pollTimer = null;

function bellIcon() {
  const icon = h("span", { class: "bell-icon", "aria-hidden": "true" });
  icon.innerHTML = '<svg viewBox="0 0 24 24" width="18" height="18" fill="currentColor">'
    + '<path d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 '
    + '0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z"/></svg>';
  return icon;
}

/** Put the bell into the top bar (once); it refreshes itself every 30 s while logged in. */
export function installBell() {
  const who = document.getElementById("who");
  if (!who || document.getElementById("bell")) return;
  const count = h("span", { id: "bell-count", class: "bell-count", hidden: true });
  const button = h("button", { type: "button", id: "bell", class: "btn btn-topbar bell", "aria-haspopup": "true",
    "aria-expanded": "false", "aria-controls": "bell-panel", "aria-label": "消息" },
  bellIcon(), count);
  const panel = h("div", { id: "bell-panel", class: "bell-panel card", role: "region", "aria-label": "消息", hidden: true });
  const wrap = h("div", { class: "bell-wrap" }, button, panel);
  who.prepend(wrap);
  button.addEventListener("click", async () => {
    const open = panel.hidden;
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) await fillPanel(panel);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      panel.hidden = true;
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });
  refreshBell();
}

/** Update the unread count on the bell. */
export async function refreshBell() {
  const count = document.getElementById("bell-count");
  const button = document.getElementById("bell");
  if (!count || !button) return;
  clearTimeout(pollTimer);
  const loggedIn = session.loggedIn();
  button.closest(".bell-wrap").hidden = !loggedIn;
  if (!loggedIn) return;
  try {
    const { unread } = await api.get("/staff/messages?limit=1");
    count.textContent = unread > 99 ? "99+" : String(unread);
    count.hidden = !unread;
    button.setAttribute("aria-label", unread ? `消息，${unread} 条未读` : "消息");
  } catch {
    count.hidden = true;
  }
  pollTimer = setTimeout(refreshBell, POLL_MS);
}

async function fillPanel(panel) {
  panel.replaceChildren(h("p", { class: "muted", role: "status" }, "加载中…"));
  let body;
  try {
    body = await api.get("/staff/messages?limit=30");
  } catch (exc) {
    panel.replaceChildren(h("p", { class: "alert alert-error" }, errorText(exc)));
    return;
  }
  const items = body.items.map((m) => {
    const href = m.task_id ? `#/tasks/${m.task_id}` : "#/inbox?status=ready";
    const link = h("a", { href, class: `bell-item${m.read ? "" : " bell-unread"}`, dataset: { kind: m.kind, id: String(m.id) } },
      h("span", { class: `tag tag-small bell-kind bell-kind-${m.kind}` }, KINDS[m.kind] || m.kind),
      h("span", { class: "bell-title" }, m.read ? null : h("span", { class: "sr-only" }, "未读："), m.title),
      h("span", { class: "bell-body" }, m.body),
      h("time", { class: "bell-time muted small", datetime: m.created_at }, formatTime(m.created_at)));
    link.addEventListener("click", () => {
      panel.hidden = true;
      document.getElementById("bell")?.setAttribute("aria-expanded", "false");
      if (!m.read) api.post(`/staff/messages/${m.id}/read`).then(refreshBell).catch(() => {});
    });
    return h("li", {}, link);
  });
  panel.replaceChildren(
    h("p", { class: "bell-head" }, h("strong", {}, "消息"), h("span", { class: "muted small" },
      body.unread ? `${body.unread} 条未读` : "没有未读消息")),
    items.length ? h("ul", { class: "bell-list" }, items) : h("p", { class: "muted" }, "暂无消息"));
}

function isSupervisor() {
  return (session.get()?.staff?.roles || []).some((r) => SUPERVISOR_ROLES.includes(r));
}

/** 催办 for supervisors on an open task that is overdue or a 督办 task; null otherwise. */
export function urgeButton(task, overdue) {
  const open = ["ready", "claimed"].includes(task.state);
  if (!open || !isSupervisor() || !(overdue || task.kind === "escalation")) return null;
  const button = h("button", { type: "button", class: "btn btn-ghost btn-small urge", dataset: { op: "urge" } }, "催办");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api.post(`/staff/tasks/${task.id}/urge`, { reason: "办件已超期，请尽快办理" });
      toast("已催办，经办人员将收到提醒");
    } catch (exc) {
      toast(exc instanceof ApiError ? exc.message : "催办失败，请稍后重试");
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** The 抄送 picker of the complete form: colleagues of one's departments; ``value()`` the usernames. */
export function ccField() {
  const id = uid("f");
  const list = h("div", { class: "cc-list", role: "group", "aria-labelledby": id });
  const details = h("details", { class: "field cc-field", dataset: { path: "cc" } },
    h("summary", { id, class: "field-label" }, "抄送（选填）"),
    h("p", { class: "muted small" }, "办结后，勾选的同事会在消息中收到抄送，阅读后办理记录中留下“抄送已阅”。"),
    list);
  let loaded = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) return;
    loaded = true;
    try {
      const { items } = await api.get("/staff/colleagues");
      list.replaceChildren(...(items.length ? items.map((c) => h("label", { class: "cc-option" },
        h("input", { type: "checkbox", name: "cc", value: c.username }), ` ${c.name}（${c.username}）`))
        : [h("p", { class: "muted small" }, "本部门没有其他同事")]));
    } catch (exc) {
      loaded = false;
      list.replaceChildren(h("p", { class: "alert alert-error" }, errorText(exc)));
    }
  });
  return {
    el: details,
    value: () => [...list.querySelectorAll('input[name="cc"]:checked')].map((i) => i.value),
  };
}
