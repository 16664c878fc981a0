// The human loop on the task page: the listed items of a 补正 request (in the 退回 dialog), the 补正
// rounds beside the case (reason, items, due date, the applicant's note and files per item), the
// review task's uphold / overturn form, and a rectification task's rating, comment, original case
// and masked phone with an audited reveal.

import { api, session } from "./api.js";
import { alertBox, errorText, kv, labelled, radioField, section, textField, toast } from "./ui.js";
import { formatTime, h, uid } from "/shared/static/dom.js";

const OUTCOME = { approved: "准予", approve: "准予", rejected: "不予", reject: "不予", manual: "转人工" };

function sizeText(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round((bytes || 0) / 1024))} KB`;
}

/**
 * 补正事项: one line per item the applicant must supply (shown to them one by one, each with its
 * own upload). A controller like ui.js's fields: {el, value() → [items], error(), clear()}.
 */
export function itemsField() {
  const list = h("ol", { class: "loop-items-edit" });
  const add = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "＋ 添加一项");
  const rows = [];
  function addRow(value = "") {
    const id = uid("item");
    const input = h("input", { id, class: "input loop-item-input", maxlength: 100, value,
      placeholder: "例如：白底免冠证件照（近6个月）", "aria-label": `补正事项 ${rows.length + 1}` });
    const remove = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-label": "删除此项" }, "删除");
    const row = h("li", { class: "loop-item-row" }, input, remove);
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(input), 1);
      row.remove();
    });
    rows.push(input);
    list.append(row);
    return input;
  }
  add.addEventListener("click", () => addRow().focus());
  addRow();
  const anchor = h("div", { id: uid("f"), class: "loop-items-box", tabindex: "-1" }, list, add);
  const field = labelled("需补正的材料或信息（逐项列出）", anchor, {
    name: "items", help: "申请人会逐项看到并上传；至多 10 项" });
  field.value = () => rows.map((r) => r.value.trim()).filter(Boolean);
  field.show = (visible) => {
    field.el.hidden = !visible;
  };
  return field;
}

/** Open a case file with the staff token (a plain link would carry none): a new tab shows the blob. */
async function openFile(f) {
  const win = window.open("", "_blank"); // opened in the click, so no popup blocker
  try {
    const response = await fetch(f.url, { headers: { Authorization: `Bearer ${session.get()?.access_token || ""}` } });
    if (!response.ok) throw new Error(String(response.status));
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    if (win) win.location.href = url;
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch {
    win?.close();
    toast("文件打开失败，请稍后重试");
  }
}

function fileLine(f) {
  const label = `${f.name || "文件"}（${f.content_type === "application/pdf" ? "PDF" : "图片"}，${sizeText(f.size)}）`;
  const open = f.url ? h("button", { type: "button", class: "btn-link loop-open", title: label }, label)
    : h("span", { class: "loop-open-text", title: label }, label);
  if (f.url) open.addEventListener("click", () => openFile(f));
  return h("li", { class: "loop-file", dataset: { fileId: f.id } }, open);
}

/** The 补正 rounds of the case: request beside answer. */
export function supplementRounds(detail) {
  const rounds = detail.supplements || [];
  if (!rounds.length) return null;
  return section("补正记录", h("ol", { class: "supplements loop-rounds" }, rounds.map((r, i) => {
    const answer = r.answer;
    const files = answer?.files || [];
    const byItem = (item) => files.filter((f) => f.material === item);
    const extra = files.filter((f) => !(r.items || []).includes(f.material));
    return h("li", { class: "supplement loop-round", dataset: { round: String(i + 1) } },
      h("div", { class: "loop-request" },
        h("p", {}, h("span", { class: "tl-title" }, `第 ${i + 1} 次补正 · 理由：`), r.reason || "—"),
        h("p", { class: "tl-meta" }, [r.requested_by_name || r.requested_by, formatTime(r.requested_at),
          r.due_at ? `限 ${formatTime(r.due_at)} 前` : ""].filter(Boolean).join(" · ")),
        (r.items || []).length ? h("ul", { class: "loop-requested" }, r.items.map((item) =>
          h("li", { dataset: { item } }, h("span", { class: "loop-item-label" }, item),
            answer ? (byItem(item).length ? h("ul", { class: "loop-files" }, byItem(item).map(fileLine))
              : h("span", { class: "muted small" }, "（未上传文件）")) : null))) : null),
      answer ? h("div", { class: "loop-answer supplement-done" },
        h("p", {}, h("span", { class: "tl-title" }, "申请人补正："), answer.note || "—"),
        extra.length ? h("ul", { class: "loop-files" }, extra.map(fileLine)) : null,
        answer.form && Object.keys(answer.form).length ? h("p", { class: "small" }, "更正信息：",
          Object.entries(answer.form).map(([k, v]) => `${k}：${typeof v === "object" ? JSON.stringify(v) : v}`).join("；")) : null,
        h("p", { class: "tl-meta" }, `已补正 · ${formatTime(r.supplied_at)}`))
        : h("p", { class: "muted" }, "等待申请人补正"));
  })));
}

/** The review task's card: the decision under review, the citizen's reason, uphold / overturn. */
export function reviewCard(detail, actions, ctx) {
  const r = detail.review || {};
  const task = detail.task;
  const decision = r.decision || {};
  const facts = kv([
    ["原决定", `${OUTCOME[r.outcome] || OUTCOME[decision.outcome] || "—"}${decision.rule ? `（规则 ${decision.rule}）` : ""}`],
    ["决定理由", r.result?.reason || decision.reason],
    ["申请人复核理由", r.citizen_reason],
    ["申请时间", r.requested_at ? formatTime(r.requested_at) : null],
  ]);
  const open = ["ready", "claimed"].includes(task.state);
  if (!open || !actions.has("complete")) {
    const d = r.decided;
    return section("人工复核", facts, d ? h("p", { class: "alert alert-info loop-decided" },
      `复核结论：${d.verdict_label || d.verdict}（${OUTCOME[d.outcome] || ""}）：${d.opinion || ""}`)
      : h("p", { class: "alert alert-info" }, task.state === "completed" ? "已复核" : "该任务不可办理"));
  }
  const flip = r.outcome === "approved" ? "撤销原决定，改为不予（已发证照将被撤销）"
    : "撤销原决定，改为准予（签发电子证照）";
  const verdict = radioField("复核结论", "verdict", [["uphold", "维持原决定", "结论不变，向申请人说明理由"], ["overturn", flip]]);
  const reason = textField("复核理由", { name: "reason", multiline: true, required: true,
    placeholder: "写明复核依据，申请人可见" });
  const alert = alertBox();
  const send = h("button", { type: "submit", class: "btn btn-primary" }, "提交复核结论");
  const form = h("form", { class: "loop-review-form", novalidate: true }, alert.el, verdict.el, reason.el,
    h("div", { class: "actions" }, send));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.hide();
    verdict.clear();
    reason.clear();
    if (!verdict.value()) verdict.error("请选择维持或撤销原决定");
    if (!reason.value()) reason.error("请填写复核理由");
    if (!verdict.value() || !reason.value()) return;
    send.disabled = true;
    try {
      await api.post(`/staff/tasks/${task.id}/complete`, { data: { verdict: verdict.value(), reason: reason.value() } });
      ctx.toInbox(verdict.value() === "overturn" ? "已撤销原决定" : "已维持原决定");
    } catch (exc) {
      for (const [name, message] of Object.entries(exc?.fields || {})) {
        if (name === "verdict") verdict.error(message);
        if (name === "reason") reason.error(message);
      }
      alert.show(errorText(exc));
      send.disabled = false;
    }
  });
  const card = section("人工复核", facts, form);
  card.classList.add("loop-review-card");
  return card;
}

/** A rectification task's facts: rating, comment, original case, masked phone with 查看完整号码. */
export function rectificationCard(detail) {
  const r = detail.rectification;
  if (!r) return null;
  const o = r.original || {};
  const phone = h("span", { class: "mono loop-phone" }, r.phone_masked || "未留电话");
  const reveal = r.phone_masked ? h("button", { type: "button", class: "btn btn-ghost btn-small" }, "查看完整号码") : null;
  reveal?.addEventListener("click", async () => {
    reveal.disabled = true;
    try {
      const body = await api.post(`/staff/tasks/${detail.task.id}/reveal-phone`);
      phone.textContent = body.phone;
      reveal.remove();
      toast("已记录查看：申请人可在“我的信息被谁查看”中看到");
    } catch (exc) {
      toast(errorText(exc));
      reveal.disabled = false;
    }
  });
  return section("差评信息", kv([
    ["评价等级", h("span", { class: "badge badge-red loop-level" }, r.level || "—")],
    ["评价内容", h("span", { class: "loop-comment" }, r.comment || "（未填写）")],
    ["原办件", o.case_no ? h("span", { class: "mono" }, o.case_no) : r.case_no],
    ["事项", o.service_name],
    ["办理结果", o.result?.outcome ? `${OUTCOME[o.result.outcome] || o.result.outcome}${o.result.reason ? `：${o.result.reason}` : ""}` : o.status_label],
    ["申请时间", o.created_at ? formatTime(o.created_at) : null],
    ["办结时间", o.completed_at ? formatTime(o.completed_at) : null],
    ["责任部门", r.department_name],
    ["联系电话", h("span", { class: "loop-phone-row" }, phone, reveal)],
  ]), h("p", { class: "muted small" }, "查看完整号码会记入个人信息访问记录；评价人账号信息保密。"));
}
