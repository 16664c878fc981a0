// 消息 tab of the citizen H5: the message centre (GET /me/messages) with an unread badge on the
// tab bar and deep links to the case, the subscribe-message choice the mini-program makes with
// wx.requestSubscribeMessage (GET/POST /me/subscriptions), and the note under the phone field of
// an application form saying what will be sent to it.

import { api, ApiError, session } from "./api.js";
import { formatTime, h } from "/shared/static/dom.js";

const KIND_ICONS = {
  application_received: "✉", supplement_requested: "!", decision_made: "⚖", certificate_issued: "▣",
  case_finished: "✓", case_refused: "✕",
};
const PHONE_FIELDS = ["phone", "contact_phone"];
const POLL_MS = 30000;

let badgeTimer = null;

/** Show the unread count on the 消息 tab (hidden at 0); polls while logged in. */
export async function refreshBadge() {
  const badge = document.getElementById("msg-badge");
  if (!badge) return;
  clearTimeout(badgeTimer);
  if (!session.loggedIn()) {
    badge.hidden = true;
    return;
  }
  try {
    const { unread } = await api.get("/me/messages?limit=1");
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.hidden = !unread;
    badge.closest("a").setAttribute("aria-label", unread ? `消息，${unread} 条未读` : "消息");
  } catch {
    badge.hidden = true;
  }
  badgeTimer = setTimeout(refreshBadge, POLL_MS);
}

function messageItem(m, onOpen) {
  const link = h("a", {
    class: `card message${m.read ? "" : " message-unread"}`, href: m.case_id ? `#/cases/${m.case_id}` : "#/messages",
    dataset: { kind: m.kind, id: String(m.id) },
  },
  h("span", { class: "message-icon", "aria-hidden": "true" }, KIND_ICONS[m.kind] || "•"),
  h("div", { class: "message-body" },
    h("p", { class: "message-title" }, m.read ? null : h("span", { class: "sr-only" }, "未读："), m.title),
    h("p", { class: "message-text" }, m.body),
    h("p", { class: "message-meta muted" }, [m.case_no, formatTime(m.created_at)].filter(Boolean).join(" · "))));
  link.addEventListener("click", () => onOpen(m));
  return h("li", {}, link);
}

async function subscriptionsCard() {
  let items;
  try {
    items = (await api.get("/me/subscriptions")).items;
  } catch {
    return null;
  }
  if (!items.length) return null;
  const boxes = items.map((i) => {
    const input = h("input", { type: "checkbox", name: i.template_id, checked: i.accepted });
    return { item: i, input, row: h("label", { class: "check-row" }, input, h("span", {}, i.title)) };
  });
  const status = h("p", { class: "muted", role: "status" });
  const save = h("button", { type: "submit", class: "btn btn-ghost btn-block" }, "保存提醒设置");
  const form = h("form", { class: "card subscriptions" },
    h("h2", { class: "card-title" }, "微信提醒"),
    h("p", { class: "muted" }, "勾选的事项，办理进度将通过微信服务通知提醒您（每勾选一次提醒一次）；"
      + "不勾选也可以在本页查看全部消息。"),
    ...boxes.map((b) => b.row), status, save);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const accept = boxes.filter((b) => b.input.checked).map((b) => b.item.template_id);
      const reject = boxes.filter((b) => !b.input.checked && b.item.accepted).map((b) => b.item.template_id);
      await api.post("/me/subscriptions", { accept, reject });
      status.textContent = "已保存";
    } catch (exc) {
      status.textContent = exc instanceof ApiError ? exc.message : "保存失败，请稍后重试";
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

/** The 消息 page: newest first, unread marked; opening one marks it read and goes to the case. */
export async function messagesView({ show, setChrome, loading, errorBox }) {
  setChrome("消息", { tab: "messages" });
  show(loading());
  let body;
  try {
    body = await api.get("/me/messages?limit=100");
  } catch (exc) {
    show(errorBox(exc));
    return;
  }
  const open = (m) => {
    if (!m.read) api.post(`/me/messages/${m.id}/read`, {}).then(refreshBadge).catch(() => {});
  };
  const markAll = h("button", { type: "button", class: "btn btn-small btn-ghost" }, "全部标为已读");
  markAll.addEventListener("click", async () => {
    markAll.disabled = true;
    await Promise.allSettled(body.items.filter((m) => !m.read).map((m) => api.post(`/me/messages/${m.id}/read`, {})));
    await messagesView({ show, setChrome, loading, errorBox });
    refreshBadge();
  });
  show(
    h("div", { class: "messages-head" },
      h("p", { class: "muted" }, body.unread ? `${body.unread} 条未读` : "没有未读消息"),
      body.unread ? markAll : null),
    body.items.length
      ? h("ul", { class: "message-list", "aria-label": "消息列表" }, body.items.map((m) => messageItem(m, open)))
      : h("p", { class: "muted center" }, "暂无消息。提交申请后，受理、补正、审批结果和办结都会在这里通知您。"),
    await subscriptionsCard());
  refreshBadge();
}

/** Under the phone field of an application form: what will be sent to that number. */
export function explainPhone(formEl) {
  for (const name of PHONE_FIELDS) {
    const input = formEl.querySelector(`[name="${name}"]`);
    if (!input || input.dataset.explained) continue;
    input.dataset.explained = "1";
    const note = h("p", { class: "field-help phone-note", id: `${input.id || name}-sms` },
      "办理进度将以短信通知此号码：申请已提交、需要补正材料（含补正内容）、审批结果（含理由）、"
      + "电子证照签发和办结时各一条；短信不含身份证号等个人信息，号码加密保存。");
    input.closest(".field")?.append(note);
    const described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", [described, note.id].filter(Boolean).join(" "));
  }
}

/** 催办 on a running case that waits for the department (not for the applicant): once a working day. */
// the answer to the last 催办 per case: the case page re-renders on live events (the 催办 itself is
// one), and the citizen must still read what the button said
const urgeAnswers = new Map();

export function urgeButton(detail, current) {
  if (detail.status !== "running" || current.some((c) => c.waiting_for_applicant)) return null;
  const status = h("p", { class: "muted small", role: "status" }, urgeAnswers.get(detail.id) || "");
  const button = h("button", { type: "button", class: "btn btn-ghost btn-block btn-small" }, "催办");
  const say = (text) => {
    urgeAnswers.set(detail.id, text);
    for (const box of document.querySelectorAll(".urge [role=status]")) box.textContent = text;
    status.textContent = text;
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api.post(`/applications/${detail.id}/urge`, {});
      say("已催办，经办人员将收到提醒");
    } catch (exc) {
      say(exc instanceof ApiError ? exc.message : "催办失败，请稍后重试");
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "urge" }, button, status);
}
