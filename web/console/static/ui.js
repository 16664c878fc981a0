// Pieces the workbench's views share: the toast, cards, key/value lists, Chinese error texts for
// an operation's refusal, and a modal dialog holding one small form.

import { ApiError } from "./api.js";
import { h, uid } from "/shared/static/dom.js";

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    el.hidden = true;
  }, 2500);
}

export function errorText(exc) {
  return exc instanceof ApiError ? exc.message : "页面出错，请刷新后重试";
}

// 409s that mean "someone else got there first" (as against a rule of the operation, such as
// 需等待加签人签署意见 or 下一环节已开始, whose own message says more).
const TAKEN = new Set(["task_already_claimed", "task_already_completed", "task_not_ready", "conflict"]);

/** Whether ``exc`` says another officer acted on the task first (the page is stale). */
export function isTaken(exc) {
  return exc instanceof ApiError && exc.status === 409 && TAKEN.has(exc.code);
}

/** The text shown for a refused task operation: 409 taken → 已被他人办理，请刷新. */
export function operationError(exc) {
  if (isTaken(exc)) return "已被他人办理，请刷新";
  if (exc instanceof ApiError && exc.status === 403) return exc.message || "无权办理该任务";
  return errorText(exc);
}

/** An error line that may carry a 刷新 button (for 409: the task changed under us). */
export function alertBox() {
  const text = h("span", {});
  const refresh = h("button", { type: "button", class: "btn btn-ghost btn-small alert-action", hidden: true }, "刷新");
  const el = h("div", { class: "alert alert-error", role: "alert", hidden: true }, text, refresh);
  return {
    el,
    show(message, { onRefresh } = {}) {
      text.textContent = message;
      el.hidden = !message;
      refresh.hidden = !onRefresh;
      refresh.onclick = onRefresh || null;
    },
    hide() {
      el.hidden = true;
    },
  };
}

/** Editing a field that was refused takes its message away (the server judges again on submit). */
export function settleOnEdit(form) {
  const settle = (event) => {
    const field = event.target.closest?.(".has-error");
    if (!field) return;
    field.classList.remove("has-error");
    const message = field.querySelector(":scope > .field-error");
    if (message) message.hidden = true;
    for (const input of field.querySelectorAll('[aria-invalid="true"]')) input.removeAttribute("aria-invalid");
  };
  form.addEventListener("input", settle);
  form.addEventListener("change", settle);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", { class: "card-title" }, title), children);
}

export function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => h("div", { class: "kv-row" }, h("dt", {}, k), h("dd", {}, v))));
}

/** A labelled textarea or input with its own error line: {el, input, value(), error(msg), clear()}. */
export function textField(label, { name, multiline = false, required = false, placeholder, maxlength = 500,
  rows = 3, help } = {}) {
  const id = uid("f");
  const input = multiline
    ? h("textarea", { id, name, class: "input", rows, maxlength, placeholder })
    : h("input", { id, name, class: "input", maxlength, placeholder });
  return labelled(label, input, { id, name, required, help });
}

/** Wrap ``input`` (an element with ``id``) in a field with a label, help and an error line. */
export function labelled(label, input, { id = input.id, name, required = false, help } = {}) {
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const helpEl = help ? h("p", { class: "field-help", id: `${id}-help` }, help) : null;
  input.setAttribute("aria-describedby", [helpEl?.id, error.id].filter(Boolean).join(" "));
  if (required) input.setAttribute("aria-required", "true");
  const el = h("div", { class: "field", dataset: { path: name || "" } },
    h("label", { class: "field-label", for: id }, label,
      required ? h("span", { class: "req", "aria-hidden": "true" }, "*") : null),
    input, helpEl, error);
  return fieldController(el, input, error);
}

/** A radio group (fieldset) of [value, label, hint?]: {el, value(), error(), clear()}. */
export function radioField(legend, name, options, { checked, required = true } = {}) {
  const id = uid("r");
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const radios = options.map(([value], i) => h("input", {
    type: "radio", name: id, value, id: `${id}-${i}`, checked: value === checked }));
  const el = h("fieldset", { class: "field field-choices", role: "radiogroup", dataset: { path: name },
    "aria-describedby": error.id, "aria-required": required ? "true" : undefined },
  h("legend", { class: "field-label" }, legend, required ? h("span", { class: "req", "aria-hidden": "true" }, "*") : null),
  h("div", { class: "choices choices-stacked" }, options.map(([, label, hint], i) =>
    h("label", { class: "choice", for: radios[i].id }, radios[i],
      h("span", {}, label, hint ? h("span", { class: "choice-hint" }, hint) : null)))),
  error);
  const c = fieldController(el, radios[0], error, radios);
  c.value = () => radios.find((r) => r.checked)?.value ?? null;
  c.radios = radios;
  return c;
}

function fieldController(el, input, error, inputs = [input]) {
  return {
    el,
    input,
    value: () => input.value.trim(),
    error(message) {
      error.textContent = message;
      error.hidden = false;
      el.classList.add("has-error");
      for (const i of inputs) i.setAttribute("aria-invalid", "true");
    },
    clear() {
      error.hidden = true;
      el.classList.remove("has-error");
      for (const i of inputs) i.removeAttribute("aria-invalid");
    },
  };
}

/**
 * A modal dialog with one form. ``fields`` maps request-body names to controllers (as made by
 * textField / radioField) so a 422's ``fields`` land next to their input. ``submit()`` sends;
 * a refusal is shown inside the dialog (a stale page's 409 with a 刷新 button calling
 * ``refresh``), success closes it and calls ``done(result)``.
 */
export function openDialog({ title, intro, fields = {}, body = [], submitLabel, danger = false, submit, done,
  refresh }) {
  const titleId = uid("d");
  const alert = alertBox();
  const send = h("button", { type: "submit", class: `btn ${danger ? "btn-danger" : "btn-primary"}` }, submitLabel);
  const cancel = h("button", { type: "button", class: "btn btn-ghost" }, "取消");
  const form = h("form", { class: "dialog-form", novalidate: true },
    h("h2", { class: "dialog-title", id: titleId }, title),
    intro ? h("p", { class: "dialog-intro" }, intro) : null,
    alert.el,
    Object.values(fields).map((f) => f.el), body,
    h("div", { class: "actions dialog-actions" }, send, cancel));
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId }, form);
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  cancel.addEventListener("click", close);
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    close();
  });
  for (const f of Object.values(fields)) {
    f.el.addEventListener("input", () => f.clear());
    f.el.addEventListener("change", () => f.clear());
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.hide();
    for (const f of Object.values(fields)) f.clear();
    send.disabled = true;
    try {
      const result = await submit();
      close();
      done?.(result);
    } catch (exc) {
      const unplaced = [];
      for (const [name, message] of Object.entries(exc?.fields || {})) {
        if (fields[name]) fields[name].error(message);
        else unplaced.push(message);
      }
      const placed = Object.values(fields).some((f) => f.el.classList.contains("has-error"));
      const headline = placed && exc.status === 422 ? exc.message : operationError(exc);
      alert.show([headline, ...unplaced].join("；"), {
        onRefresh: isTaken(exc) && refresh ? () => { close(); refresh(); } : undefined,
      });
      send.disabled = false;
      (form.querySelector('[aria-invalid="true"]') || send).focus();
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  (form.querySelector("input:not([type=hidden]), select, textarea") || send).focus();
  return { dialog, close };
}
