// 办件查询 and 受理回执 for the window: find a case by its number or the applicant's ID number
// (an ID-number search is logged for the applicant), open its task, print its acceptance receipt
// (case number, items received, promised date, a QR code to follow the case).
// Hash routes: #/cases (#/cases?q=<case number>)  #/cases/<id>/receipt

import { api } from "./api.js";
import { errorText, kv } from "./ui.js";
import { formatTime, h } from "/shared/static/dom.js";

function searchForm(query, onSearch) {
  const input = h("input", { id: "case-query", name: "q", class: "input", value: query || "", required: true,
    autocomplete: "off", placeholder: "办件编号或 18 位身份证号", maxlength: "40" });
  const form = h("form", { class: "case-search", role: "search" },
    h("label", { for: "case-query" }, "办件编号或申请人身份证号"),
    h("div", { class: "case-search-row" }, input, h("button", { type: "submit", class: "btn btn-primary" }, "查询")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSearch(input.value.trim()); // not into the URL: an ID number must not land in the history
  });
  return form;
}

function resultRow(c) {
  return h("li", { class: "case-row", dataset: { caseNo: c.case_no } },
    h("div", { class: "case-row-main" },
      h("p", { class: "case-row-title" }, h("span", { class: "mono" }, c.case_no), " · ", c.service_name),
      h("p", { class: "muted small" }, [c.status_label, c.applicant_id, `受理 ${formatTime(c.created_at)}`,
        c.due_at ? `时限 ${formatTime(c.due_at)}` : null].filter(Boolean).join(" · "))),
    h("div", { class: "case-row-actions" },
      c.task_id ? h("a", { class: "btn btn-ghost btn-small", href: `#/tasks/${c.task_id}` }, "办理") : null,
      h("a", { class: "btn btn-ghost btn-small", href: `#/cases/${c.id}/receipt` }, "受理回执")));
}

async function searchView({ show, params, isCurrent }) {
  document.title = "办件查询 · 工作台";
  const results = h("div", { class: "case-search-results" });
  const run = async (query) => {
    if (!query) return;
    results.replaceChildren(h("p", { class: "muted" }, "正在查询…"));
    let body;
    try {
      body = await api.get(`/staff/cases?q=${encodeURIComponent(query)}`);
    } catch (exc) {
      if (isCurrent()) results.replaceChildren(h("p", { class: "alert alert-error", role: "alert" }, errorText(exc)));
      return;
    }
    if (!isCurrent()) return;
    results.replaceChildren(body.items.length
      ? h("ul", { class: "case-results", "aria-label": "查询结果" }, body.items.map(resultRow))
      : h("p", { class: "muted", role: "status" }, "未找到办件，请核对编号或身份证号"));
  };
  const query = params.get("q") || ""; // a case number from a link
  show(h("div", { class: "page-head" }, h("h1", { class: "page-title" }, "办件查询")),
    h("section", { class: "card" }, searchForm(query, run), results));
  await run(query);
}

async function receiptView({ show, id, isCurrent }) {
  document.title = "受理回执 · 工作台";
  const r = await api.get(`/staff/cases/${encodeURIComponent(id)}/receipt`);
  if (!isCurrent()) return;
  const qr = h("div", { class: "receipt-qr", "aria-label": "扫码查询办件进度" });
  qr.innerHTML = r.qr_svg; // server-made SVG of one path (engine.certificates.qr), no script or text from input
  show(h("div", { class: "page-head no-print" },
    h("a", { class: "back", href: "#/cases" }, "‹ 办件查询"),
    h("button", { type: "button", class: "btn btn-primary", onclick: () => window.print() }, "打印回执")),
  h("article", { class: "card receipt", "aria-labelledby": "receipt-title" },
    h("h1", { id: "receipt-title", class: "receipt-title" }, "受理回执"),
    h("p", { class: "receipt-no" }, "办件编号：", h("strong", { class: "mono", dataset: { caseNo: r.case_no } }, r.case_no)),
    kv([["事项", r.service_name], ["申请人", [r.applicant_name, r.applicant_id].filter(Boolean).join("　") || "—"],
      ["受理部门", r.department_name || "—"], ["受理时间", formatTime(r.received_at)],
      ["承诺办结", r.promised_date ? `${r.promised_date}前${r.promised_days ? `（${r.promised_days} 个工作日）` : ""}` : "即办"],
      ["受理人", r.clerk || "—"]]),
    h("h2", { class: "receipt-sub" }, "收取材料"),
    h("table", { class: "receipt-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "材料"), h("th", { scope: "col" }, "收取情况"))),
      h("tbody", {}, r.materials.map((m) => h("tr", {}, h("td", {}, m.name), h("td", {}, m.how))))),
    h("div", { class: "receipt-foot" }, qr,
      h("p", {}, "请妥善保管本回执。可扫描二维码或在“市民服务”中凭办件编号查询办理进度。",
        h("br"), h("span", { class: "muted small mono" }, r.track_url)))));
}

/** #/cases and #/cases/<id>/receipt. */
export async function casesView({ show, parts, params, isCurrent }) {
  if (parts[1] && parts[2] === "receipt") {
    try {
      await receiptView({ show, id: parts[1], isCurrent });
    } catch (exc) {
      if (isCurrent()) show(h("div", { class: "card" }, h("p", { class: "alert alert-error", role: "alert" }, errorText(exc))));
    }
    return;
  }
  await searchView({ show, params, isCurrent });
}
