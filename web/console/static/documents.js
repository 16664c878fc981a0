// 办件文书 on the workbench's task page: the case's signed PDFs (受理回执, 补正告知书, 不予许可决定书)
// for the officers of its departments (GET /api/v1/staff/cases/{id}/documents[/kind]; each
// download is access-logged). Fetched with the staff token and opened from a blob URL.

import { api, session } from "./api.js";
import { section, toast } from "./ui.js";
import { h } from "/shared/static/dom.js";

async function download(path, filename) {
  const token = session.get()?.access_token;
  const response = await fetch(`/api/v1${path}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(String(response.status));
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: `${filename}.pdf` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** The section (filled in when the list arrives), or nothing when the case has none. */
export function caseDocumentsSection(caseId, caseNo) {
  const body = h("div", { class: "doc-buttons" }, h("p", { class: "muted small" }, "加载中…"));
  const el = section("办件文书", body);
  el.classList.add("case-documents");
  api.get(`/staff/cases/${caseId}/documents`).then(({ items }) => {
    body.replaceChildren(...(items || []).map((d) => h("button", {
      type: "button", class: "btn btn-ghost btn-small", dataset: { kind: d.kind },
      onclick: (event) => {
        event.currentTarget.disabled = true;
        const button = event.currentTarget;
        download(`/staff/cases/${caseId}/documents/${d.kind}`, `${d.title}-${caseNo}`)
          .catch(() => toast("文书下载失败，请稍后重试")).finally(() => { button.disabled = false; });
      },
    }, `${d.title} PDF`)));
  }).catch(() => el.remove());
  return el;
}
