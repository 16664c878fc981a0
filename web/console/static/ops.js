// Approval operations on the task page, offered as the task detail's `actions` say
// (claim, unclaim, complete, return, supplement_request, transfer, add_signer, sign, withdraw, comment):
// 退回 (to an earlier step, or 补正 back to the applicant), 转办, 加签, 加签意见 (the signer's own
// side task), 撤回 (one's own last completion). Each asks in a dialog and posts to
// /api/v1/staff/tasks/{id}/<operation>.

import { api, ApiError } from "./api.js";
import { itemsField } from "./loop.js";
import { labelled, openDialog, radioField, textField, toast } from "./ui.js";
import { h, uid } from "/shared/static/dom.js";

const SUPPLEMENT = "__applicant__";

/** A choice among the task department's other staff (the detail's `colleagues`). */
function colleagueField(detail, me, label) {
  const colleagues = (detail.colleagues || []).filter((c) => c.username !== me);
  const select = h("select", { id: uid("f"), class: "input" },
    h("option", { value: "" }, colleagues.length ? "请选择本部门同事" : "本部门暂无其他工作人员"),
    colleagues.map((c) => h("option", { value: c.username }, `${c.name}（${c.username}）`)));
  const field = labelled(label, select, { name: "to", required: true });
  field.value = () => select.value;
  field.nameOf = (username) => colleagues.find((c) => c.username === username)?.name || username;
  return field;
}

function required(field, message) {
  if (field.value()) return true;
  field.error(message);
  return false;
}

/** A refusal the page found before sending (an empty required input): shown like the API's 422. */
function missing() {
  return new ApiError(422, "validation_failed", "请完成标注的必填项");
}

function returnDialog(detail, ctx, actions) {
  const { task } = detail;
  const targets = actions.has("return") ? detail.return_targets || [] : [];
  const options = targets.map((t) => [t.step, `退回到「${t.name}」`, "该环节重新待办，由办理过的部门再次办理"]);
  if (actions.has("supplement_request")) {
    options.push([SUPPLEMENT, "退回申请人补正", "计时暂停，申请人补正材料后回到您的待办"]);
  }
  const to = radioField("退回到", "to_step", options, { checked: options.length === 1 ? options[0][0] : undefined });
  const reason = textField("退回理由", { name: "reason", multiline: true, required: true,
    placeholder: "写明需要重新办理或补正的内容（记入办件时间线，申请人可见）" });
  const items = itemsField(); // 补正: the listed items the applicant supplies one by one
  const showItems = () => items.show(to.value() === SUPPLEMENT);
  to.radios.forEach((r) => r.addEventListener("change", showItems));
  showItems();
  openDialog({
    title: "退回", intro: `「${task.name}」· ${task.case_no}`, fields: { to_step: to, reason, items },
    submitLabel: "确认退回", danger: true, refresh: ctx.reload,
    async submit() {
      const ok = [required(to, "请选择退回到哪里"), required(reason, "请填写退回理由")].every(Boolean);
      if (!ok) throw missing();
      const body = { reason: reason.value() };
      if (to.value() !== SUPPLEMENT) body.to_step = to.value();
      else if (items.value().length) body.items = items.value();
      return api.post(`/staff/tasks/${task.id}/return`, body);
    },
    done() {
      ctx.toInbox(to.value() === SUPPLEMENT ? "已退回申请人补正" : "已退回");
    },
  });
}

function transferDialog(detail, ctx) {
  const { task } = detail;
  const to = colleagueField(detail, ctx.me, "转办给");
  const reason = textField("转办说明", { name: "reason", multiline: true, placeholder: "选填，记入办件时间线" });
  openDialog({
    title: "转办", intro: `把「${task.name}」交给本部门的另一位同事办理。`, fields: { to, reason },
    submitLabel: "确认转办", refresh: ctx.reload,
    async submit() {
      if (!required(to, "请选择接收人")) throw missing();
      const body = { to: to.value() };
      if (reason.value()) body.reason = reason.value();
      return api.post(`/staff/tasks/${task.id}/transfer`, body);
    },
    done() {
      ctx.toInbox(`已转办给 ${to.nameOf(to.value())}`);
    },
  });
}

function signerDialog(detail, ctx) {
  const { task } = detail;
  const user = colleagueField(detail, ctx.me, "加签人");
  const position = radioField("加签位置", "position", [
    ["before", "在我之前", "加签人签署意见后，本任务才能办结"],
    ["after", "在我之后", "本任务办结后，再请加签人签署意见"],
  ], { checked: "before" });
  const opinion = textField("加签说明", { name: "opinion", multiline: true, placeholder: "选填，请加签人重点关注的内容" });
  openDialog({
    title: "加签", intro: `请本部门同事对「${task.name}」签署意见。`, fields: { user, position, opinion },
    submitLabel: "确认加签", refresh: ctx.reload,
    async submit() {
      if (!required(user, "请选择加签人")) throw missing();
      const body = { user: user.value(), position: position.value() };
      if (opinion.value()) body.opinion = opinion.value();
      return api.post(`/staff/tasks/${task.id}/add-signer`, body);
    },
    done() {
      toast(`已请 ${user.nameOf(user.value())} 加签`);
      ctx.reload();
    },
  });
}

function withdrawDialog(detail, ctx) {
  const { task } = detail;
  openDialog({
    title: "撤回已办", intro: `撤回后「${task.name}」回到您的名下重新办理，下一环节的待办随之取消。`
      + "下一环节已开始办理的不能撤回。",
    submitLabel: "确认撤回", danger: true, refresh: ctx.reload,
    submit: () => api.post(`/staff/tasks/${task.id}/withdraw`),
    done() {
      toast("已撤回，任务回到您的待办");
      ctx.reload();
    },
  });
}

// [operation, the actions that offer it, label, dialog]
const DIALOGS = [
  ["return", ["return", "supplement_request"], "退回", returnDialog],
  ["transfer", ["transfer"], "转办", transferDialog],
  ["add_signer", ["add_signer"], "加签", signerDialog],
];

/** The buttons of the open task's operations (退回 转办 加签) that ``actions`` allow. */
export function operationButtons(detail, actions, ctx) {
  return DIALOGS.filter(([, offered]) => offered.some((a) => actions.has(a))).map(([name, , label, open]) =>
    h("button", { type: "button", class: "btn btn-ghost", dataset: { op: name },
      onclick: () => open(detail, ctx, actions) }, label));
}

/** 撤回 on a task this officer completed, when allowed. */
export function withdrawButton(detail, actions, ctx) {
  if (!actions.has("withdraw")) return null;
  return h("button", { type: "button", class: "btn btn-ghost", dataset: { op: "withdraw" },
    onclick: () => withdrawDialog(detail, ctx) }, "撤回");
}

/** The added signer's form on their side task: 同意 / 不同意 and the opinion → POST …/sign. */
export function signForm(detail, ctx) {
  const { task } = detail;
  const decision = radioField("签署结论", "decision", [["approve", "同意"], ["reject", "不同意"]], { checked: "approve" });
  const opinion = textField("加签意见", { name: "opinion", multiline: true, required: true, rows: 4,
    placeholder: "写明您的意见（记入办件时间线）" });
  const alert = ctx.alert();
  const send = h("button", { type: "submit", class: "btn btn-primary" }, "提交加签意见");
  const form = h("form", { class: "task-form sign-form", novalidate: true },
    h("p", { class: "alert alert-info" }, "同事请您对本事项签署意见，提交后记入办件时间线。"),
    alert.el, decision.el, opinion.el, h("div", { class: "actions" }, send));
  for (const f of [decision, opinion]) f.el.addEventListener("input", () => f.clear());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.hide();
    decision.clear();
    opinion.clear();
    if (!required(opinion, "请填写加签意见")) {
      opinion.input.focus();
      return;
    }
    send.disabled = true;
    try {
      await api.post(`/staff/tasks/${task.id}/sign`, { decision: decision.value(), opinion: opinion.value() });
      ctx.toInbox("加签意见已提交");
    } catch (exc) {
      const fields = exc.fields || {};
      if (fields.opinion) opinion.error(fields.opinion);
      if (fields.decision) decision.error(fields.decision);
      ctx.showError(alert, exc);
      send.disabled = false;
    }
  });
  return form;
}

/**
 * A walk-in citizen's 补正 taken at the window (the clerk's side task of kind `supplement`): what
 * was asked, what the citizen brought → POST …/complete {data: {note, materials}, opinion}. The
 * held task then goes back to the officer who asked.
 */
export function supplyForm(detail, ctx) {
  const { task } = detail;
  const rounds = detail.supplements || [];
  const asked = rounds[rounds.length - 1];
  const note = textField("补正说明", { name: "note", multiline: true, required: true,
    placeholder: "申请人补交了什么（记入办件时间线，经办人可见）" });
  const names = textField("补交材料", { name: "materials", maxlength: 200, placeholder: "材料名称，多份用顿号分隔",
    help: "例如：住所使用证明（补正）、租赁合同" });
  const alert = ctx.alert();
  const send = h("button", { type: "submit", class: "btn btn-primary" }, "提交补正");
  const form = h("form", { class: "task-form supply-form", novalidate: true },
    h("div", { class: "alert alert-info supply-reason" },
      h("span", {}, h("strong", {}, "补正要求："), asked?.reason || "—",
        asked?.requested_by ? h("span", { class: "muted small" }, `（${asked.requested_by_name || asked.requested_by}）`) : null)),
    alert.el, note.el, names.el, h("div", { class: "actions" }, send));
  for (const f of [note, names]) f.el.addEventListener("input", () => f.clear());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.hide();
    note.clear();
    if (!required(note, "请填写补正说明")) {
      note.input.focus();
      return;
    }
    const materials = names.value().split(/[、,，;；]/).map((n) => n.trim()).filter(Boolean).map((name) => ({ name }));
    const data = { note: note.value(), ...(materials.length ? { materials } : {}) };
    send.disabled = true;
    try {
      await api.post(`/staff/tasks/${task.id}/complete`, { data, opinion: note.value() });
      ctx.toInbox("补正已提交，办件回到经办人");
    } catch (exc) {
      ctx.showError(alert, exc);
      send.disabled = false;
    }
  });
  return form;
}
