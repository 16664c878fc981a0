// 发布审批 (four-eyes publishing): a deployed version is 待审批 until a second person — an admin,
// or a supervisor of a department whose lanes the process uses, never the deployer — approves it
// (optionally from a later time) or rejects it with a reason. The panel shows the open version's
// state, what it changes against the live version (changed/added elements are marked on the
// diagram, removed ones listed) and, for those who may, 批准 / 驳回.

import { h, formatTime } from "/shared/static/dom.js";

export const STATE_LABELS = {
  pending: ["待审批", "tag-orange"],
  live: ["在用", "tag-green"],
  scheduled: ["已批准·待生效", "tag-blue"],
  superseded: ["已取代", "tag-grey"],
  rejected: ["已驳回", "tag-red"],
};
const MARKERS = ["gf-diff-changed", "gf-diff-added"];

export function stateTag(state) {
  const [label, cls] = STATE_LABELS[state] || [state, ""];
  return h("span", { class: `tag tag-small ${cls}`, dataset: { state } }, label);
}

export function clearDiff(modeler) {
  const canvas = modeler.get("canvas");
  modeler.get("elementRegistry").forEach((e) => MARKERS.forEach((m) => canvas.removeMarker(e, m)));
}

/** Mark the diff's changed and added elements on the diagram; the ids that are on it. */
export function markDiff(modeler, diff) {
  clearDiff(modeler);
  const canvas = modeler.get("canvas");
  const registry = modeler.get("elementRegistry");
  const marked = [];
  for (const [ids, marker] of [[diff.changed, "gf-diff-changed"], [diff.added, "gf-diff-added"]]) {
    for (const id of ids || []) {
      if (registry.get(id)) {
        canvas.addMarker(id, marker);
        marked.push(id);
      }
    }
  }
  return marked;
}

function idList(title, ids, names, cls) {
  if (!ids?.length) return null;
  return h("div", { class: `diff-group ${cls}` }, h("div", { class: "small muted" }, `${title}（${ids.length}）`),
    h("ul", { class: "diff-list" }, ids.map((id) => h("li", { dataset: { elementId: id } },
      h("span", { class: "mono small" }, id), names?.[id] && names[id] !== id ? ` ${names[id]}` : ""))));
}

/**
 * The review card for version ``version`` (an item of GET …/versions). ``api`` is the designer's
 * client, ``modeler`` the bpmn-js modeler showing that version, ``onDecided`` reloads the page.
 */
export async function renderReview(container, { api, modeler, processId, version, toast, onDecided }) {
  clearDiff(modeler);
  const base = `/designer/processes/${encodeURIComponent(processId)}/versions/${version.version}`;
  const children = [h("p", { class: "review-state" }, "状态：", stateTag(version.state))];
  if (version.reviewed_by) {
    const verb = version.state === "rejected" ? "驳回" : "批准";
    children.push(h("p", { class: "small muted" }, `${version.reviewed_by} ${verb}于 ${formatTime(version.reviewed_at)}`,
      version.review_note ? `：${version.review_note}` : ""));
  }
  if (version.effective_at) children.push(h("p", { class: "small muted" }, `生效时间：${formatTime(version.effective_at)}`));
  if (version.state === "pending") {
    try {
      const diff = await api.get(`${base}/diff`);
      const marked = markDiff(modeler, diff);
      const total = diff.changed.length + diff.added.length + diff.removed.length;
      children.push(h("div", { class: "review-diff", id: "review-diff", dataset: { marked: marked.join(" ") } },
        h("p", { class: "small" }, diff.against_version
          ? `与在用第 ${diff.against_version} 版相比：${total ? `${total} 处元素变化（图中已标出）` : "流程图元素没有变化"}`
          : "该流程还没有在用版本：这是首个版本"),
        diff.against_version ? [
          idList("修改", diff.changed, diff.names, "diff-changed"),
          idList("新增", diff.added, diff.names, "diff-added"),
          idList("删除", diff.removed, diff.names, "diff-removed"),
          diff.files_changed?.length ? h("p", { class: "small" }, `表单/决策表变化：${diff.files_changed.join("、")}`) : null,
        ] : null));
    } catch (exc) {
      children.push(h("p", { class: "small muted" }, `差异暂不可用：${exc.message || exc}`));
    }
  }
  if (version.may_review) {
    const note = h("textarea", { id: "review-note", rows: 2, placeholder: "审批意见（驳回时必填）", "aria-label": "审批意见" });
    const when = h("input", { type: "datetime-local", id: "review-effective", "aria-label": "生效时间" });
    const decide = async (action) => {
      const body = { note: note.value };
      if (action === "approve" && when.value) body.effective_at = new Date(when.value).toISOString();
      try {
        await api.post(`${base}/${action}`, body);
        toast(action === "approve" ? `已批准第 ${version.version} 版` : `已驳回第 ${version.version} 版`);
        await onDecided();
      } catch (exc) {
        toast(exc.message || "操作失败");
      }
    };
    children.push(h("div", { class: "review-form" },
      h("label", { class: "small", for: "review-note" }, "审批意见"), note,
      h("label", { class: "small", for: "review-effective" }, "生效时间（不填则批准后立即生效）"), when,
      h("div", { class: "review-actions" },
        h("button", { type: "button", class: "btn btn-primary btn-small", id: "btn-approve",
          onclick: () => decide("approve") }, "批准发布"),
        h("button", { type: "button", class: "btn btn-ghost btn-small", id: "btn-reject",
          onclick: () => decide("reject") }, "驳回"))));
  } else if (version.state === "pending") {
    children.push(h("p", { class: "small muted" }, "待另一人审批：管理员或流程所涉部门的负责人，部署人本人不能审批。"));
  }
  container.replaceChildren(...children.flat().filter(Boolean));
}
