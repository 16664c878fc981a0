// 证照管理: officers of the department that issued a certificate find it (by 证照标识 or the
// holder's ID number / credit code), see its history (签发, 暂停, 恢复, 吊销 with who and why) and
// suspend, restore or revoke it with a reason. QR verification answers the new state at once.
// API: GET /staff/certificates?q=, GET /staff/certificates/{id}, POST …/{id}/suspend|revoke|restore.

import { api, session } from "./api.js";
import { verifiersCard } from "./verifiers.js";
import { alertBox, errorText, kv, section, textField, toast } from "./ui.js";
import { formatTime, h } from "/shared/static/dom.js";

export const CERT_ROLES = ["officer", "supervisor", "admin"];
const STATE_CLASS = { "01": "tag-green", "02": "tag-orange", "03": "tag-red", "04": "tag-grey", "05": "tag-grey" };
const ACTIONS = [
  ["suspend", "暂停", ["01"], false],
  ["restore", "恢复", ["02"], false],
  ["revoke", "吊销", ["01", "02"], true],
];
const STATE_NAMES = { "01": "有效", "02": "暂停", "03": "吊销", "04": "注销", "05": "过期" };

function stateTag(cert) {
  return h("span", { class: `tag ${STATE_CLASS[cert.state] || ""}`, dataset: { state: cert.state } },
    cert.state_label || STATE_NAMES[cert.state] || cert.state);
}

function historyList(items) {
  if (!items?.length) return h("p", { class: "muted small" }, "暂无记录");
  return h("ol", { class: "cert-history", id: "cert-history" }, items.map((e) => {
    const what = e.kind === "certificate.issue" ? "签发"
      : `${STATE_NAMES[e.from] || e.from || ""} → ${STATE_NAMES[e.to] || e.to || ""}`;
    return h("li", { dataset: { to: e.to || "" } },
      h("span", { class: "mono small" }, formatTime(e.at)), " ", h("strong", {}, what), " ",
      h("span", { class: "muted" }, e.actor || ""), e.reason ? h("span", {}, `：${e.reason}`) : null);
  }));
}

async function detailCard(id, { reload }) {
  const cert = await api.get(`/staff/certificates/${id}`);
  const alert = alertBox();
  const reason = textField("原因", { name: "reason", multiline: true, rows: 2, required: true,
    placeholder: "将记入审计与证照历史", maxlength: 200 });
  const buttons = ACTIONS.filter(([, , from]) => from.includes(cert.state)).map(([action, label, , danger]) =>
    h("button", { type: "button", class: `btn btn-small ${danger ? "btn-danger" : "btn-ghost"}`,
      dataset: { action }, onclick: async () => {
        if (!reason.value().trim()) {
          reason.error("请填写原因");
          return;
        }
        if (danger && !window.confirm(`确认吊销「${cert.name}」？吊销后不能恢复。`)) return;
        try {
          await api.post(`/staff/certificates/${id}/${action}`, { reason: reason.value() });
          toast(`已${label}：${cert.name}`);
          await reload();
        } catch (exc) {
          alert.show(errorText(exc));
        }
      } }, label));
  return section(`${cert.name}`,
    h("div", { class: "cert-detail", id: "cert-detail", dataset: { id: cert.id, state: cert.state } },
      kv([["状态", stateTag(cert)], ["证照标识", h("span", { class: "mono small" }, cert.identifier)],
        ["证照编号", cert.number], ["持证人", `${cert.holder_name}（${cert.holder_code_masked}）`],
        ["颁证机构", cert.issuer_name], ["签发日期", cert.issue_date], ["有效期至", cert.valid_to || "长期"]]),
      h("h3", { class: "card-subtitle" }, "历史"), historyList(cert.history),
      buttons.length ? [h("h3", { class: "card-subtitle" }, "变更状态"), reason.el, alert.el,
        h("div", { class: "actions" }, buttons)] : h("p", { class: "muted small" }, "该证照已吊销或注销，状态不能再变更。")));
}

/** The 证照管理 view (#/certificates?q=…&id=…). */
export async function certificatesView({ show, isCurrent, params }) {
  document.title = "证照管理 · 工作台";
  const q = params.get("q") || "";
  const id = params.get("id");
  const input = h("input", { class: "input", id: "cert-q", name: "q", value: q, maxlength: 128,
    placeholder: "证照标识，或持证人公民身份号码 / 统一社会信用代码", "aria-label": "证照标识或持证人证件号码" });
  const form = h("form", { class: "cert-search", role: "search", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/certificates?q=${encodeURIComponent(input.value.trim())}`;
  } }, input, h("button", { type: "submit", class: "btn btn-primary btn-small" }, "查找"));
  const parts = [section("证照管理", h("p", { class: "muted small" },
    "只显示本部门签发的证照。按持证人查找会记入个人信息访问日志。"), form)];
  if (q) {
    let items = [];
    try {
      items = (await api.get(`/staff/certificates?q=${encodeURIComponent(q)}`)).items || [];
    } catch (exc) {
      parts.push(h("p", { class: "alert alert-error", role: "alert" }, errorText(exc)));
    }
    parts.push(section(`查找结果（${items.length}）`, items.length
      ? h("ul", { class: "cert-results", id: "cert-results" }, items.map((c) => h("li", {},
        h("a", { href: `#/certificates?q=${encodeURIComponent(q)}&id=${c.id}`, dataset: { id: c.id } },
          h("strong", {}, c.name), " ", stateTag(c), " ", h("span", { class: "muted small" },
            `${c.holder_name} · ${c.issue_date} · ${c.identifier.slice(-24)}`)))))
      : h("p", { class: "muted small" }, "没有找到本部门签发的证照")));
  }
  const reload = async () => {
    if (isCurrent()) await certificatesView({ show, isCurrent, params });
  };
  if (id) parts.push(await detailCard(id, { reload }));
  if ((session.get()?.staff?.roles || []).includes("admin")) parts.push(await verifiersCard({ reload }));
  if (isCurrent()) show(...parts);
}
