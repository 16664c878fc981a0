// 文书 — the signed PDF documents on the citizen page: the e-certificate's 版式文件 (GET
// /certificates/{id}/pdf) and a case's 受理回执 / 补正告知书 / 不予许可决定书 (GET
// /applications/{id}/documents[/kind]). The PDF is fetched with the session's token and opened
// from a blob URL (a plain link would carry no token).

import { ApiError, api, request } from "./api.js";
import { h } from "/shared/static/dom.js";

/** A button that downloads ``path`` (an /api/v1 path) as ``filename``.pdf. */
export function pdfButton(label, path, filename) {
  const status = h("span", { class: "muted small", role: "status" });
  const button = h("button", { type: "button", class: "btn btn-ghost btn-small pdf-button", dataset: { pdf: path } }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "正在生成…";
    try {
      const response = await request("GET", path, { raw: true });
      const url = URL.createObjectURL(await response.blob());
      const link = h("a", { href: url, download: `${filename}.pdf` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      status.textContent = "";
    } catch (exc) {
      status.textContent = exc instanceof ApiError ? exc.message : "下载失败，请稍后重试";
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "pdf-action" }, button, status);
}

/** The 办件文书 card of a case: one download button per document the case has now. */
export async function caseDocuments(caseId, caseNo) {
  let items = [];
  try {
    items = (await api.get(`/applications/${caseId}/documents`)).items || [];
  } catch {
    return "";
  }
  if (!items.length) return "";
  return h("section", { class: "card docs", "aria-label": "办件文书" }, h("h2", { class: "card-title" }, "办件文书"),
    h("p", { class: "muted small" }, "加盖电子签章的 PDF，可打印或提交其他部门"),
    h("div", { class: "doc-buttons" }, items.map((d) => pdfButton(`下载${d.title}`,
      `/applications/${caseId}/documents/${d.kind}`, `${d.title}-${caseNo}`))));
}
