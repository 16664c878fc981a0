// Render a form from the API's ui_spec (forms/ui.py) and collect its value. Shared by the citizen
// page (/m/, error paths start with "form.") and the staff workbench (/console/, "data.").
//
// Every field becomes a controller {el, value(), showError(parts, message), clearErrors(),
// relabel(parts)}; objects and arrays nest them. Field paths follow the validation messages of
// the API ("address.detail", "shareholders.0.name"), so a 422 `fields` map lands next to the
// right input. The server is the only judge of validity: the page sends, the API explains.

import { h, uid } from "./dom.js";

// Shanghai's districts (GB/T 2260); other regions are typed as a six-digit code.
const REGIONS = [
  ["310101", "黄浦区"], ["310104", "徐汇区"], ["310105", "长宁区"], ["310106", "静安区"],
  ["310107", "普陀区"], ["310109", "虹口区"], ["310110", "杨浦区"], ["310112", "闵行区"],
  ["310113", "宝山区"], ["310114", "嘉定区"], ["310115", "浦东新区"], ["310116", "金山区"],
  ["310117", "松江区"], ["310118", "青浦区"], ["310120", "奉贤区"], ["310151", "崇明区"],
];
const OTHER_REGION = "__other__";

/** 上海市浦东新区 for 310115; null for a code outside the list (shown as the code). */
export function regionName(code) {
  const found = REGIONS.find(([value]) => value === String(code));
  return found ? `上海市${found[1]}` : null;
}

const hint = (field, key) => (field.hints && field.hints[key] !== undefined ? field.hints[key] : undefined);

function helpText(field) {
  if (field.help) return field.help;
  // Shared components describe their format for developers; their `help` speaks to citizens.
  return field.component ? "" : field.description || "";
}

/** The label, help and error elements around one input; `describe(input)` wires the ARIA. */
function frame(field, { group = false } = {}) {
  const id = uid("f");
  const wrapper = h(group ? "fieldset" : "div", { class: group ? "field field-choices" : "field" });
  const title = field.title || field.name || "";
  const required = field.required ? h("span", { class: "req", "aria-hidden": "true" }, "*") : null;
  const label = group
    ? h("legend", { class: "field-label" }, title, required)
    : h("label", { class: "field-label", for: id }, title, required);
  const help = helpText(field);
  const helpEl = help ? h("p", { class: "field-help", id: `${id}-help` }, help) : null;
  const errorEl = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  wrapper.append(label);
  const describedBy = [helpEl && helpEl.id, errorEl.id].filter(Boolean).join(" ");
  return {
    id,
    wrapper,
    finish(...inputs) {
      for (const input of inputs) {
        input.setAttribute("aria-describedby", describedBy);
        if (field.required && !group) input.setAttribute("aria-required", "true");
      }
      if (group) {
        wrapper.setAttribute("aria-describedby", describedBy);
        if (field.required) wrapper.setAttribute("aria-required", "true");
      }
      if (helpEl) wrapper.append(helpEl);
      wrapper.append(errorEl);
      return wrapper;
    },
    showError(message, inputs) {
      errorEl.textContent = message;
      errorEl.hidden = false;
      wrapper.classList.add("has-error");
      for (const input of inputs) input.setAttribute("aria-invalid", "true");
    },
    clearError(inputs) {
      errorEl.textContent = "";
      errorEl.hidden = true;
      wrapper.classList.remove("has-error");
      for (const input of inputs) input.removeAttribute("aria-invalid");
    },
  };
}

function scalarController(field, f, inputs, read, wrapper) {
  return {
    el: wrapper,
    value: read,
    showError(parts, message) {
      f.showError(message, inputs());
      return true;
    },
    clearErrors() {
      f.clearError(inputs());
    },
    relabel(parts) {
      wrapper.dataset.path = parts.join(".");
    },
    focus() {
      const first = inputs()[0];
      if (first) first.focus();
    },
    hasError: () => wrapper.classList.contains("has-error"),
  };
}

function parseNumber(text, integer) {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) {
    const value = Number(trimmed);
    return integer && !Number.isInteger(value) ? trimmed : value;
  }
  return trimmed; // the API answers with a Chinese type message
}

function textInput(field) {
  const f = frame(field);
  const widget = field.widget;
  const maxlength = hint(field, "maxlength") ?? field.constraints?.maxLength;
  const isNumber = ["number", "money", "integer"].includes(widget) || ["number", "integer"].includes(field.type);
  const types = { tel: "tel", email: "email", date: "date", datetime: "datetime-local", time: "time" };
  const attrs = {
    id: f.id,
    name: field.path,
    type: types[widget] || "text",
    class: "input",
    placeholder: field.placeholder,
    maxlength: ["date", "datetime", "time"].includes(widget) ? undefined : maxlength,
    inputmode: hint(field, "inputmode") || (isNumber ? (field.type === "integer" ? "numeric" : "decimal") : undefined),
    autocomplete: widget === "tel" ? "tel" : hint(field, "sensitive") || widget === "id-number" ? "off" : undefined,
    spellcheck: "false",
  };
  if (widget === "id-number") attrs.autocapitalize = "characters";
  const input = h("input", attrs);
  if (field.default !== undefined && field.default !== null) input.value = String(field.default);
  if (hint(field, "transform") === "uppercase" || widget === "id-number") {
    input.addEventListener("input", () => {
      const upper = input.value.toUpperCase();
      if (upper !== input.value) input.value = upper;
    });
  }
  const unit = field.unit || (widget === "money" ? "元" : "");
  const box = h("div", { class: unit ? "input-row" : "" }, input, unit ? h("span", { class: "unit" }, unit) : null);
  f.wrapper.append(box);
  const wrapper = f.finish(input);
  const read = () => {
    if (isNumber) return parseNumber(input.value, field.type === "integer");
    const text = input.value.trim();
    return text === "" ? undefined : text;
  };
  return scalarController(field, f, () => [input], read, wrapper);
}

function textareaInput(field) {
  const f = frame(field);
  const maxlength = hint(field, "maxlength") ?? field.constraints?.maxLength;
  const area = h("textarea", {
    id: f.id, name: field.path, class: "input", rows: maxlength && maxlength > 500 ? 5 : 3,
    placeholder: field.placeholder, maxlength,
  });
  if (typeof field.default === "string") area.value = field.default;
  f.wrapper.append(area);
  const wrapper = f.finish(area);
  return scalarController(field, f, () => [area], () => (area.value.trim() === "" ? undefined : area.value.trim()), wrapper);
}

function selectInput(field) {
  const f = frame(field);
  const options = field.options || [];
  const select = h("select", { id: f.id, name: field.path, class: "input" },
    h("option", { value: "" }, field.placeholder || "请选择"),
    options.map((o, i) => h("option", { value: String(i) }, o.label)));
  const preset = options.findIndex((o) => o.value === field.default);
  if (preset >= 0) select.value = String(preset);
  f.wrapper.append(select);
  const wrapper = f.finish(select);
  const read = () => (select.value === "" ? undefined : options[Number(select.value)].value);
  return scalarController(field, f, () => [select], read, wrapper);
}

function radioInput(field) {
  const f = frame(field, { group: true });
  const options = field.options || [];
  const name = uid("r");
  const radios = options.map((o, i) => h("input", {
    type: "radio", name, value: String(i), id: `${f.id}-${i}`, checked: o.value === field.default,
  }));
  f.wrapper.setAttribute("role", "radiogroup");
  f.wrapper.append(h("div", { class: "choices" }, options.map((o, i) =>
    h("label", { class: "choice", for: radios[i].id }, radios[i], h("span", {}, o.label)))));
  const wrapper = f.finish();
  const read = () => {
    const checked = radios.find((r) => r.checked);
    return checked ? options[Number(checked.value)].value : undefined;
  };
  return scalarController(field, f, () => radios, read, wrapper);
}

function checkboxesInput(field) {
  const f = frame(field, { group: true });
  const options = field.item?.options || field.options || [];
  const defaults = Array.isArray(field.default) ? field.default : [];
  const boxes = options.map((o, i) => h("input", {
    type: "checkbox", value: String(i), id: `${f.id}-${i}`, checked: defaults.includes(o.value),
  }));
  f.wrapper.append(h("div", { class: "choices" }, options.map((o, i) =>
    h("label", { class: "choice", for: boxes[i].id }, boxes[i], h("span", {}, o.label)))));
  const wrapper = f.finish();
  const read = () => {
    const values = boxes.filter((b) => b.checked).map((b) => options[Number(b.value)].value);
    return values.length || field.required ? values : undefined;
  };
  return scalarController(field, f, () => boxes, read, wrapper);
}

function switchInput(field) {
  const f = frame(field);
  const input = h("input", {
    id: f.id, name: field.path, type: "checkbox", role: "switch", class: "switch",
    checked: field.default === true,
  });
  const state = h("span", { class: "switch-state", "aria-hidden": "true" });
  const sync = () => {
    state.textContent = input.checked ? "是" : "否";
  };
  input.addEventListener("change", sync);
  sync();
  f.wrapper.classList.add("field-switch");
  f.wrapper.append(h("div", { class: "switch-box" }, state, input));
  const wrapper = f.finish(input);
  return scalarController(field, f, () => [input], () => input.checked, wrapper);
}

function regionInput(field) {
  const f = frame(field);
  const select = h("select", { id: f.id, name: field.path, class: "input" },
    h("option", { value: "" }, "请选择区县（上海市）"),
    REGIONS.map(([code, name]) => h("option", { value: code }, `上海市${name}`)),
    h("option", { value: OTHER_REGION }, "其他地区（填写行政区划代码）"));
  const otherId = `${f.id}-other`;
  const other = h("input", {
    id: otherId, type: "text", class: "input", inputmode: "numeric", maxlength: 6,
    placeholder: "6位行政区划代码，如 110101",
  });
  const otherBox = h("div", { class: "region-other", hidden: true },
    h("label", { for: otherId, class: "sub-label" }, "行政区划代码"), other);
  select.addEventListener("change", () => {
    otherBox.hidden = select.value !== OTHER_REGION;
    if (!otherBox.hidden) other.focus();
  });
  if (typeof field.default === "string") {
    if (REGIONS.some(([code]) => code === field.default)) select.value = field.default;
    else {
      select.value = OTHER_REGION;
      other.value = field.default;
      otherBox.hidden = false;
    }
  }
  f.wrapper.append(select, otherBox);
  const wrapper = f.finish(select, other);
  const read = () => {
    if (select.value === OTHER_REGION) return other.value.trim() || undefined;
    return select.value || undefined;
  };
  return scalarController(field, f, () => [select, other], read, wrapper);
}

function groupControl(field) {
  const isRoot = field.root === true;
  const bare = isRoot || field.bare === true; // the form itself, or a table row titled by its card
  const wrapper = bare ? h("div", { class: isRoot ? "form-fields" : "row-fields" }) : h("fieldset", { class: "group" });
  const errorId = uid("g");
  const errorEl = h("p", { class: "field-error", id: `${errorId}-error`, hidden: true });
  if (bare && !isRoot) wrapper.append(errorEl);
  if (!bare) {
    wrapper.append(h("legend", { class: "group-title" }, field.title || field.name,
      field.required ? h("span", { class: "req", "aria-hidden": "true" }, "*") : null));
    const help = helpText(field);
    if (help) wrapper.append(h("p", { class: "field-help" }, help));
    wrapper.append(errorEl);
  }
  const children = new Map();
  for (const sub of field.fields || []) {
    const child = control(sub);
    children.set(sub.name, child);
    wrapper.append(child.el);
  }
  return {
    el: wrapper,
    value() {
      const result = {};
      for (const [name, child] of children) {
        const value = child.value();
        if (value !== undefined) result[name] = value;
      }
      // An optional group left empty (e.g. 邮寄地址) is left out.
      if (!isRoot && !field.required && !Object.entries(result).some(([k, v]) => isFilled(v, children.get(k)))) {
        return undefined;
      }
      return result;
    },
    showError(parts, message) {
      if (parts.length) {
        const child = children.get(String(parts[0]));
        if (child) return child.showError(parts.slice(1), message);
      }
      if (isRoot) return false;
      errorEl.textContent = message;
      errorEl.hidden = false;
      wrapper.classList.add("has-error");
      return true;
    },
    clearErrors() {
      errorEl.hidden = true;
      errorEl.textContent = "";
      wrapper.classList.remove("has-error");
      for (const child of children.values()) child.clearErrors();
    },
    relabel(parts) {
      if (!isRoot) wrapper.dataset.path = parts.join(".");
      for (const [name, child] of children) child.relabel([...parts, name]);
    },
    focus() {
      const first = [...children.values()].find((c) => c.hasError && c.hasError()) || children.values().next().value;
      if (first) first.focus();
    },
    hasError() {
      return wrapper.classList.contains("has-error") || [...children.values()].some((c) => c.hasError && c.hasError());
    },
  };
}

// A switch always has a value; it alone does not make an optional group "filled".
function isFilled(value, child) {
  if (child && child.isSwitch) return false;
  return value !== undefined && value !== "" && !(Array.isArray(value) && value.length === 0);
}

function arrayControl(field) {
  const item = field.item || { type: "string", widget: "text", title: field.title };
  const min = field.constraints?.minItems ?? 0;
  const max = field.constraints?.maxItems ?? Infinity;
  const itemTitle = item.title || field.title || "项目";
  const wrapper = h("fieldset", { class: "group array" });
  const errorEl = h("p", { class: "field-error", id: `${uid("a")}-error`, hidden: true });
  wrapper.append(h("legend", { class: "group-title" }, field.title || field.name,
    field.required ? h("span", { class: "req", "aria-hidden": "true" }, "*") : null));
  const help = helpText(field);
  if (help) wrapper.append(h("p", { class: "field-help" }, help));
  wrapper.append(errorEl);
  const list = h("div", { class: "rows" });
  const add = h("button", { type: "button", class: "btn btn-ghost btn-add" }, `＋ 添加${itemTitle}`);
  wrapper.append(list, add);
  const rows = [];
  let prefix = [field.name];

  function makeRow() {
    const child = control({ ...item, name: undefined, required: true, bare: true, title: itemTitle });
    const headingId = uid("row");
    const heading = h("h4", { class: "row-title", id: headingId });
    const remove = h("button", { type: "button", class: "btn btn-link btn-remove" }, "删除");
    const el = h("div", { class: "row-card", role: "group", "aria-labelledby": headingId },
      h("div", { class: "row-head" }, heading, remove), child.el);
    const row = { child, el, heading, remove };
    remove.addEventListener("click", () => {
      const index = rows.indexOf(row);
      if (index < 0 || rows.length <= min) return;
      rows.splice(index, 1);
      row.el.remove();
      refresh();
      (rows[index] || rows[index - 1])?.child.focus?.();
      if (!rows.length) add.focus();
    });
    rows.push(row);
    list.append(row.el);
    refresh();
    return row;
  }

  function refresh() {
    rows.forEach((row, i) => {
      row.heading.textContent = `${itemTitle} ${i + 1}`;
      row.remove.setAttribute("aria-label", `删除${itemTitle} ${i + 1}`);
      row.remove.disabled = rows.length <= min;
      row.child.relabel([...prefix, i]);
    });
    add.disabled = rows.length >= max;
  }

  add.addEventListener("click", () => {
    const row = makeRow();
    row.child.focus?.();
  });
  const initial = Array.isArray(field.default) ? field.default.length : 0;
  for (let i = 0; i < Math.max(min, field.required ? 1 : 0, initial); i += 1) makeRow();

  return {
    el: wrapper,
    value() {
      const values = rows.map((row) => row.child.value()).map((v) => (v === undefined && item.type === "object" ? {} : v));
      const kept = item.type === "object" ? values : values.filter((v) => v !== undefined);
      return kept.length || field.required ? kept : undefined;
    },
    showError(parts, message) {
      if (parts.length && /^\d+$/.test(String(parts[0]))) {
        const row = rows[Number(parts[0])];
        if (row) return row.child.showError(parts.slice(1), message);
      }
      errorEl.textContent = message;
      errorEl.hidden = false;
      wrapper.classList.add("has-error");
      return true;
    },
    clearErrors() {
      errorEl.hidden = true;
      errorEl.textContent = "";
      wrapper.classList.remove("has-error");
      for (const row of rows) row.child.clearErrors();
    },
    relabel(parts) {
      prefix = parts;
      wrapper.dataset.path = parts.join(".");
      refresh();
    },
    focus() {
      (rows[0]?.child || add).focus();
    },
    hasError() {
      return wrapper.classList.contains("has-error") || rows.some((r) => r.child.hasError && r.child.hasError());
    },
  };
}

/** The controller for one field of a ui_spec. */
export function control(field) {
  const widget = field.widget || "text";
  if (field.type === "object" || widget === "group" || widget === "address") return groupControl(field);
  if (field.type === "array") {
    if (widget === "checkboxes" && (field.item?.options || field.options)) return checkboxesInput(field);
    return arrayControl(field);
  }
  if (widget === "switch" || field.type === "boolean") {
    if (field.options && widget === "radio") return radioInput(field);
    const c = switchInput(field);
    c.isSwitch = true;
    return c;
  }
  if (widget === "region") return regionInput(field);
  if (field.options && widget === "radio") return radioInput(field);
  if (field.options) return selectInput(field);
  if (widget === "textarea") return textareaInput(field);
  return textInput(field);
}

/** Strip the request-body prefix from an error path: "form.address.detail" -> ["address", "detail"]. */
export function errorParts(path) {
  let text = String(path || "");
  text = text.replace(/^\$\.?/, "").replace(/^\/+/, "").replace(/\//g, ".");
  if (text === "form" || text === "data") return [];
  text = text.replace(/^(form|data)\./, "");
  text = text.replace(/\[(\d+)\]/g, ".$1");
  return text ? text.split(".").filter(Boolean) : [];
}

/**
 * Build the form of `spec` (ui_spec). Returns {el, value(), showErrors(fields) -> unplaced
 * messages, clearErrors(), focusFirstError()}.
 */
export function buildForm(spec) {
  const root = groupControl({ root: true, fields: spec.fields || [] });
  root.relabel([]);
  return {
    el: root.el,
    value: () => root.value() || {},
    clearErrors: () => root.clearErrors(),
    showErrors(fields) {
      const unplaced = [];
      for (const [path, message] of Object.entries(fields || {})) {
        const parts = errorParts(path);
        if (!parts.length || !root.showError(parts, message)) unplaced.push(message);
      }
      return unplaced;
    },
    focusFirstError() {
      const first = root.el.querySelector('[aria-invalid="true"]') || root.el.querySelector(".has-error");
      if (first) {
        first.scrollIntoView({ block: "center" });
        if (typeof first.focus === "function") first.focus();
      }
    },
  };
}
