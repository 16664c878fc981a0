// Why an operation of the open task is not available now — the task detail's `blocked`
// (operation → Chinese reason): a button is shown disabled with its reason beside it, never
// silently left out (加签 pending, 会签 by different people, 回避, nothing to 退回 to …).

import { h, uid } from "/shared/static/dom.js";

const LABELS = {
  claim: "认领", complete: "办结", return: "退回", transfer: "转办", withdraw: "撤回", sign: "签署意见",
};

/** The reason ``action`` is blocked, or null. */
export function blockedReason(detail, action) {
  return detail.blocked?.[action] || null;
}

/**
 * ``button`` disabled with the reason for ``action`` (``aria-describedby`` points at it), and the
 * reason's element to place next to it; ``[button, null]`` when the action is not blocked.
 */
export function withReason(detail, action, button) {
  const reason = blockedReason(detail, action);
  if (!reason) return [button, null];
  const id = uid("why");
  button.disabled = true;
  button.setAttribute("aria-describedby", id);
  button.title = reason;
  const note = h("p", { class: "blocked-reason small", id, dataset: { blocked: action } },
    h("strong", {}, `暂不能${LABELS[action] || action}：`), reason);
  return [button, note];
}

/** Reasons for ``actions`` that have no button of their own on the page (e.g. 退回, 转办); a reason
 * already shown (``shown``: actions whose reason is on the page) is not repeated. */
export function reasonList(detail, actions, shown = []) {
  const said = new Set(shown.map((a) => blockedReason(detail, a)).filter(Boolean));
  const rows = actions.map((a) => [a, blockedReason(detail, a)]).filter(([, reason]) => reason && !said.has(reason));
  if (!rows.length) return null;
  return h("ul", { class: "blocked-reasons small" }, ...rows.map(([a, reason]) =>
    h("li", { dataset: { blocked: a } }, h("strong", {}, `不能${LABELS[a] || a}：`), reason)));
}
