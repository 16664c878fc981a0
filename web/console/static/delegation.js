// 代理 (absence delegation): an officer going away names a colleague of their department who, from
// 开始 until 结束, sees the officer's tasks in their own inbox (marked 代 张三) and handles them —
// signing as themselves 代 the officer. Lists the delegations one set (cancel while scheduled or
// active) and those one stands in for. API: GET/POST /staff/delegations, POST …/{id}/cancel.

import { api } from "./api.js";
import { alertBox, errorText, labelled, section, textField, toast } from "./ui.js";
import { formatTime, h, uid } from "/shared/static/dom.js";

const STATE_TAGS = { active: "tag-green", scheduled: "tag-blue", ended: "tag-grey", cancelled: "tag-grey" };

/** "2026-12-07T09:00" in Beijing time (the API reads a time without a zone as 北京时间). */
function localInput(date) {
  const cst = new Date(date.getTime() + 8 * 3600 * 1000);
  return cst.toISOString().slice(0, 16);
}

function delegationRow(d, { cancel }) {
  const open = d.state === "active" || d.state === "scheduled";
  return h("li", { class: "delegation", dataset: { id: d.id, state: d.state } },
    h("strong", {}, cancel ? `代理人：${d.delegate_name}（${d.delegate}）` : `代 ${d.officer_name}（${d.officer}）`),
    ` · ${formatTime(d.from)} 至 ${formatTime(d.to)}`, d.reason ? ` · ${d.reason}` : "", " ",
    h("span", { class: `tag ${STATE_TAGS[d.state] || "tag-grey"}` }, d.state_label),
    cancel && open ? h("button", { type: "button", class: "btn btn-ghost btn-small delegation-cancel",
      onclick: () => cancel(d) }, "取消代理") : null);
}

export async function delegationView({ show, isCurrent }) {
  document.title = "代理 · 工作台";
  const [mine, peers] = await Promise.all([api.get("/staff/delegations"), api.get("/staff/colleagues")]);
  if (!isCurrent()) return;
  const reload = () => delegationView({ show, isCurrent });
  const cancel = async (d) => {
    if (!window.confirm(`取消 ${d.delegate_name} 的代理？取消后其不再能看到和办理您的任务。`)) return;
    try {
      await api.post(`/staff/delegations/${d.id}/cancel`, {});
      toast("已取消代理");
      await reload();
    } catch (exc) {
      toast(errorText(exc));
    }
  };
  const colleagues = peers.items || [];
  const pick = h("select", { class: "input", id: uid("f"), name: "delegate" },
    h("option", { value: "" }, "请选择同部门的工作人员"),
    colleagues.map((c) => h("option", { value: c.username }, `${c.name}（${c.username}）`)));
  const delegate = labelled("代理人", pick, { name: "delegate", required: true,
    help: "代理人须与您同属一个部门；会签、回避按代理人本人核对" });
  const now = new Date();
  const fromInput = h("input", { class: "input", id: uid("f"), type: "datetime-local", name: "from",
    value: localInput(now) });
  const toInput = h("input", { class: "input", id: uid("f"), type: "datetime-local", name: "to",
    value: localInput(new Date(now.getTime() + 7 * 24 * 3600 * 1000)) });
  const from = labelled("开始时间（北京时间）", fromInput, { name: "from", required: true });
  const to = labelled("结束时间（北京时间）", toInput, { name: "to", required: true, help: "到时自动结束，最长 90 天" });
  const reason = textField("事由", { name: "reason", maxlength: 200, placeholder: "如：休假、外出培训" });
  const alert = alertBox();
  const form = h("form", { class: "delegation-form", onsubmit: async (event) => {
    event.preventDefault();
    alert.hide();
    try {
      const made = await api.post("/staff/delegations", { delegate: pick.value, from: fromInput.value,
        to: toInput.value, reason: reason.value() || undefined });
      toast(`已设置代理：${made.delegate_name}，${made.state_label}`);
      await reload();
    } catch (exc) {
      for (const [name, field] of Object.entries({ delegate, from, to, reason })) {
        if (exc.fields?.[name]) field.error(exc.fields[name]);
      }
      alert.show(errorText(exc));
    }
  } }, delegate.el, from.el, to.el, reason.el, alert.el,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "设置代理")));
  const given = mine.given || [];
  const received = mine.received || [];
  show(h("div", { class: "page-head" }, h("h1", { class: "page-title" }, "代理")),
    section("设置代理", h("p", { class: "muted small" },
      "外出、休假期间，代理人可在其待办中看到并办理您名下的任务（显示“代 您的姓名”），办理记录同时记载代理人和您；"
      + "设置与取消均记入审计。"), form),
    section("我设置的代理", given.length ? h("ul", { class: "cert-results", id: "delegations-given" },
      given.map((d) => delegationRow(d, { cancel }))) : h("p", { class: "muted small" }, "还没有设置代理")),
    section("我担任代理人", received.length ? h("ul", { class: "cert-results", id: "delegations-received" },
      received.map((d) => delegationRow(d, {}))) : h("p", { class: "muted small" }, "目前没有人委托您代理")));
}
