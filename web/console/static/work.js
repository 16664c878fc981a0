// The task page's work card — the task form with 办结, 认领 / 释放 and the operation buttons of
// ops.js; the added signer's 加签意见 form; a window 补正; or what the task waits for — and the
// 批注 form.
// What is offered follows the task detail's `actions`; the server checks every rule again.

import { api } from "./api.js";
import { reviewCard } from "./loop.js";
import { operationButtons, signForm, supplyForm, withdrawButton } from "./ops.js";
import { blockedReason, reasonList, withReason } from "./reasons.js";
import { alertBox, errorText, isTaken, operationError, section, settleOnEdit, toast } from "./ui.js";
import { formatTime, h, uid } from "/shared/static/dom.js";
import { buildForm } from "/shared/static/form.js";

/**
 * The card for ``detail``'s task. ``ctx``: {me, reload(), toInbox(message)}.
 */
export function workCard(detail, actions, ctx) {
  const { task } = detail;
  const open = ["ready", "claimed"].includes(task.state);
  const othersClaim = task.state === "claimed" && task.assignee !== ctx.me;
  const showError = (box, exc) => box.show(operationError(exc), { onRefresh: isTaken(exc) ? ctx.reload : undefined });
  const opsCtx = { ...ctx, alert: alertBox, showError };
  if (task.kind === "cosign" && open) {
    return section("加签意见", actions.has("sign") ? signForm(detail, opsCtx)
      : h("p", { class: "alert alert-info" }, `等待 ${task.assignee || "加签人"} 签署意见`));
  }
  if (task.kind === "review") return reviewCard(detail, actions, opsCtx); // 人工复核: uphold or overturn
  if (task.kind === "supplement" && open && actions.has("complete")) {
    return section("窗口补正", supplyForm(detail, opsCtx));
  }
  if (task.state === "waiting") {
    return section("任务办理", h("p", { class: "alert alert-info" },
      "已退回申请人补正，等待补正材料（计时暂停）；申请人补正后任务回到您的名下。"));
  }
  if (!open) {
    const done = task.state === "completed"
      ? `已于 ${formatTime(task.completed_at)} 由 ${task.completed_by || "—"} 办结` : "该任务已取消";
    return section("任务办理", h("div", { class: "done-row" }, h("p", { class: "alert alert-info" }, done),
      withdrawButton(detail, actions, opsCtx)), reasonList(detail, ["withdraw"]));
  }
  return completeForm(detail, actions, opsCtx, othersClaim);
}

/** The task form with 办理意见, 办结, 认领 / 释放 and the operation buttons. */
function completeForm(detail, actions, ctx, othersClaim) {
  const { task } = detail;
  const alert = alertBox();
  const form = detail.form ? buildForm(detail.form) : null;
  const opinionId = uid("f");
  const opinion = h("textarea", { id: opinionId, name: "opinion", class: "input", rows: 3, maxlength: 500,
    placeholder: "写入办件时间线（选填）", "aria-describedby": `${opinionId}-error` });
  const opinionError = h("p", { class: "field-error", id: `${opinionId}-error`, hidden: true });
  const opinionField = h("div", { class: "field", dataset: { path: "opinion" } },
    h("label", { class: "field-label", for: opinionId }, "办理意见"), opinion, opinionError);
  const clearErrors = () => {
    alert.hide();
    form?.clearErrors();
    opinionError.hidden = true;
    opinionField.classList.remove("has-error");
    opinion.removeAttribute("aria-invalid");
  };
  const canComplete = actions.has("complete");
  // 办结 never silently disappears: while it is blocked (加签 pending, 会签 by another person, 回避)
  // it stays, disabled, with the reason beside it
  const [complete, completeWhy] = withReason(detail, "complete",
    h("button", { type: "submit", class: "btn btn-primary", disabled: !canComplete }, "办结"));
  const showComplete = canComplete || (!othersClaim && blockedReason(detail, "complete"));
  const claimAction = actions.has("unclaim") ? "unclaim" : actions.has("claim") ? "claim" : null;
  const claim = claimAction ? h("button", { type: "button", class: "btn btn-ghost", dataset: { op: claimAction } },
    claimAction === "unclaim" ? "释放" : "认领") : null;
  claim?.addEventListener("click", async () => {
    claim.disabled = true;
    try {
      await api.post(`/staff/tasks/${task.id}/${claimAction}`);
      toast(claimAction === "unclaim" ? "已释放，任务回到部门待认领" : "已认领");
      await ctx.reload();
    } catch (exc) {
      ctx.showError(alert, exc);
      claim.disabled = false;
    }
  });
  const ops = operationButtons(detail, actions, ctx);
  const el = h("form", { class: "task-form", novalidate: true },
    alert.el,
    othersClaim ? h("p", { class: "alert alert-info" }, `该任务已由 ${task.assignee} 认领`) : null,
    form ? form.el : h("p", { class: "muted" }, "本任务无需填写表单"),
    opinionField,
    h("div", { class: "actions" }, showComplete ? complete : null, claim,
      ops.length ? h("span", { class: "actions-sep", "aria-hidden": "true" }) : null, ops),
    othersClaim ? null : completeWhy,
    othersClaim ? null : reasonList(detail, ["claim", "return", "transfer"], showComplete ? ["complete"] : []));
  settleOnEdit(el);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (!canComplete) return; // Enter in a field: the button says why 办结 is not possible now
    complete.disabled = true;
    const body = { data: form ? form.value() : {} };
    const text = opinion.value.trim();
    if (text) body.opinion = text;
    try {
      await api.post(`/staff/tasks/${task.id}/complete`, body);
      toast("已办结");
      location.hash = "#/inbox?status=ready";
    } catch (exc) {
      const fields = { ...(exc.fields || {}) };
      if (fields.opinion) {
        opinionError.textContent = fields.opinion;
        opinionError.hidden = false;
        opinionField.classList.add("has-error");
        opinion.setAttribute("aria-invalid", "true");
        delete fields.opinion;
      }
      const unplaced = form ? form.showErrors(fields) : Object.values(fields);
      const headline = exc.status === 422 ? errorText(exc) : operationError(exc);
      alert.show([headline, ...unplaced].join("；"), { onRefresh: isTaken(exc) ? ctx.reload : undefined });
      form?.focusFirstError();
      complete.disabled = false;
    }
  });
  return section("任务办理", el);
}


/** 批注: a note on the case timeline. */
export function commentForm(task, ctx) {
  const noteId = uid("f");
  const note = h("textarea", { id: noteId, class: "input", rows: 2, maxlength: 500, placeholder: "批注内容，记入办件时间线" });
  const noteError = h("p", { class: "field-error", hidden: true });
  const noteButton = h("button", { type: "submit", class: "btn btn-ghost btn-small" }, "发表批注");
  const noteForm = h("form", { class: "comment-form", novalidate: true },
    h("div", { class: "field" }, h("label", { class: "sr-only", for: noteId }, "批注"), note, noteError),
    noteButton);
  noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    noteError.hidden = true;
    noteButton.disabled = true;
    try {
      await api.post(`/staff/tasks/${task.id}/comment`, { text: note.value });
      toast("批注已记录");
      await ctx.reload();
    } catch (exc) {
      noteError.textContent = exc.fields?.text || operationError(exc);
      noteError.hidden = false;
      noteButton.disabled = false;
    }
  });
  return noteForm;
}
