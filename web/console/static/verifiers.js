// 用证方管理 (admins, inside 证照管理): register an institution that verifies certificates with a
// key (name, purpose, hourly quota) — its API key is shown once — see the registered ones, disable
// one. API: GET/POST /admin/verifiers, POST /admin/verifiers/{id}/disable.

import { api } from "./api.js";
import { alertBox, errorText, section, textField, toast } from "./ui.js";
import { formatTime, h } from "/shared/static/dom.js";

export async function verifiersCard({ reload }) {
  const items = (await api.get("/admin/verifiers")).items || [];
  const name = textField("机构名称", { name: "name", required: true, maxlength: 200, placeholder: "如：上海市第一人民医院" });
  const purpose = textField("用证目的", { name: "purpose", required: true, maxlength: 200,
    placeholder: "如：老年人就诊优待身份核验（持证人的访问日志会显示）" });
  const quota = h("input", { class: "input", id: "verifier-quota", type: "number", min: 1, value: 5000,
    "aria-label": "每小时核验额度" });
  const alert = alertBox();
  const keyBox = h("div", { id: "verifier-key", hidden: true, class: "alert" });
  const form = h("form", { class: "verifier-form", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const created = await api.post("/admin/verifiers", { name: name.value(), purpose: purpose.value(),
        quota_per_hour: Number(quota.value) });
      keyBox.replaceChildren(h("strong", {}, `${created.name} 的 API 密钥（只显示这一次，请交给该机构妥善保管）：`),
        h("code", { class: "mono", id: "verifier-key-value" }, created.api_key));
      keyBox.hidden = false;
      toast(`已登记用证方：${created.name}`);
      list.replaceChildren(...rows([...items, created]));
    } catch (exc) {
      if (exc.fields?.name) name.error(exc.fields.name);
      if (exc.fields?.purpose) purpose.error(exc.fields.purpose);
      alert.show(errorText(exc));
    }
  } }, name.el, purpose.el, h("label", { class: "field-label", for: "verifier-quota" }, "每小时核验额度"), quota,
  alert.el, h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary btn-small" }, "登记并发放密钥")));
  const rows = (list) => list.length ? list.map((v) => h("li", { dataset: { id: v.id } },
    h("strong", {}, v.name), ` · ${v.purpose} · 每小时 ${v.quota_per_hour} 次 · `,
    h("span", { class: `tag ${v.active ? "tag-green" : "tag-grey"}` }, v.active ? "启用" : "已停用"),
    h("span", { class: "muted small" }, ` ${formatTime(v.created_at)}`),
    v.active ? h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: async () => {
      if (!window.confirm(`停用「${v.name}」？其密钥将立即失效。`)) return;
      try {
        await api.post(`/admin/verifiers/${v.id}/disable`, {});
        toast(`已停用：${v.name}`);
        await reload();
      } catch (exc) {
        toast(errorText(exc));
      }
    } }, "停用") : null)) : [h("li", { class: "muted small" }, "还没有登记的用证方")];
  const list = h("ul", { class: "cert-results", id: "verifier-list" }, rows(items));
  return section("用证方（登记核验机构）", h("p", { class: "muted small" },
    "登记的医院、银行等机构以密钥扫码核验证照：不受单一地址限流，按本机构额度计数；持证人的访问日志显示机构名称和用证目的。"),
  list, keyBox, form);
}
