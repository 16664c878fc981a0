// Assignment rules of a user task, shown in the designer's properties card (read from the model's
// spiffworkflow:properties; the linter checks them, engine.workbench.assignment enforces them):
// distinctSigners — 会签 instances need different people; recuseFrom — 回避 of earlier steps.

import { h } from "/shared/static/dom.js";

const attr = (el, name) => el?.[name] ?? el?.$attrs?.[name] ?? null;
const kids = (el) => [...(el?.values || []), ...(el?.$children || [])];

/** name -> value of a business object's spiffworkflow:property entries. */
export function spiffProperties(bo) {
  const found = {};
  for (const block of kids(bo.extensionElements)) {
    if (!String(block.$type || "").endsWith("properties")) continue;
    for (const prop of kids(block)) {
      const name = attr(prop, "name");
      if (name) found[name] = String(attr(prop, "value") ?? "").trim();
    }
  }
  return found;
}

/** The rows the properties card shows for a user task's assignment rules. */
export function assignmentRows(bo) {
  if (bo.$type !== "bpmn:UserTask") return [];
  const props = spiffProperties(bo);
  const multi = String(bo.loopCharacteristics?.$type || "") === "bpmn:MultiInstanceLoopCharacteristics";
  const rows = [];
  if (multi) {
    const distinct = (props.distinctSigners || "").toLowerCase();
    const text = distinct === "true" ? "是：每份会签须由不同人员签署"
      : distinct === "false" ? "否：同一人可签署多份" : "未设置（distinctSigners）";
    rows.push(h("div", { class: "prop-row", id: "prop-distinct-signers" },
      h("span", { class: "prop-key" }, "会签不同人员"), h("span", {}, text)));
  }
  if (props.recuseFrom) {
    rows.push(h("div", { class: "prop-row", id: "prop-recuse" }, h("span", { class: "prop-key" }, "回避"),
      h("span", {}, `不得由办理过 ${props.recuseFrom} 的人员办理`)));
  }
  return rows;
}
