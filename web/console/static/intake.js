// 窗口受理 (前台一口受理): a clerk files a case for a walk-in citizen — the service, the citizen's
// name, ID number and phone, the service's application form (rendered from its ui_spec by the
// shared renderer), and scanned materials — as multipart to POST /api/v1/staff/applications,
// then shows the new case number. The server judges everything; the page only checks a chosen
// file's type at once (by its first bytes, as the server does) so a wrong scan is caught early.

import { api } from "./api.js";
import { alertBox, errorText, kv, labelled, section, settleOnEdit, textField, toast } from "./ui.js";
import { formatTime, h, uid } from "/shared/static/dom.js";
import { buildForm } from "/shared/static/form.js";

const MAGIC = [[[0x25, 0x50, 0x44, 0x46, 0x2d], "pdf"], [[0xff, 0xd8, 0xff], "jpg"],
  [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "png"]];
const ACCEPT = ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png";
const TYPE_ERROR = "仅支持 PDF、JPG、PNG 格式的扫描件";
const OTHER = "其他材料";
// Keys of the intake request itself; any other field of a 422 belongs to the application form.
const OWN_FIELDS = new Set(["service", "name", "id_number", "phone", "materials", "material_names", "form"]);

/** "pdf" / "jpg" / "png" when the file's first bytes say so, else null (as engine.platform.uploads). */
export async function sniff(file) {
  const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
  const found = MAGIC.find(([magic]) => magic.every((b, i) => head[i] === b));
  return found ? found[1] : null;
}

function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function limitText(limit) {
  return limit ? `${limit.value} 个${limit.unit}` : "—";
}

/** One material row: its name, what the clerk collects, and the scans chosen for it. */
function materialRow(material, onChange) {
  const files = [];
  const shared = material.source_type === "shared_data";
  const byCertificate = material.source_type === "certificate";
  const inputId = uid("m");
  const input = h("input", { id: inputId, type: "file", accept: ACCEPT, multiple: true, class: "file-input",
    "aria-label": `上传「${material.name}」扫描件` });
  const list = h("ul", { class: "scan-list" });
  const error = h("p", { class: "field-error", role: "alert", hidden: true });
  const note = shared ? "由共享数据获取，无需收取"
    : byCertificate ? "申请人持有有效电子证照的可免提交；无证照的收取扫描件" : material.form || "收取纸质材料扫描件";
  const row = h("li", { class: `intake-material${shared ? " intake-material-shared" : ""}`, dataset: { material: material.name } },
    h("div", { class: "intake-material-head" },
      h("div", {},
        h("p", { class: "material-name" }, material.name,
          h("span", { class: `tag ${material.required ? "tag-red" : ""} tag-small` }, material.required ? "必需" : "非必需")),
        h("p", { class: "material-state" }, note)),
      shared ? null : h("label", { class: "btn btn-ghost btn-small upload-button", for: inputId }, "＋ 上传扫描件"),
      shared ? null : input),
    list, error);

  function render() {
    list.replaceChildren(...files.map((file, i) => h("li", { class: "scan" },
      h("span", { class: "scan-icon", "aria-hidden": "true" }, (file.name.match(/\.(\w+)$/)?.[1] || "").toUpperCase()),
      h("span", { class: "scan-name" }, file.name),
      h("span", { class: "muted small" }, sizeText(file.size)),
      h("button", { type: "button", class: "btn btn-link", "aria-label": `移除 ${file.name}`, onclick: () => {
        files.splice(i, 1);
        render();
        onChange();
      } }, "移除"))));
  }
  input.addEventListener("change", async () => {
    const chosen = [...input.files];
    input.value = "";
    const refused = [];
    for (const file of chosen) {
      if (await sniff(file)) files.push(file);
      else refused.push(file.name);
    }
    error.textContent = refused.length ? `${refused.join("、")}：${TYPE_ERROR}` : "";
    error.hidden = !refused.length;
    row.classList.toggle("has-error", refused.length > 0);
    render();
    onChange();
  });
  return {
    el: row,
    files: () => files.map((file) => [material.name, file]),
    clear() {
      error.hidden = true;
      row.classList.remove("has-error");
    },
  };
}

/** The form for one chosen service: its application form and material rows (``onChange``: the
 * scans chosen changed). */
function serviceParts(service, onChange) {
  const form = buildForm(service.form);
  const rows = [...(service.materials || []), { name: OTHER, required: false, source_type: "citizen",
    form: "申请人另行提交的材料" }].map((m) => materialRow(m, onChange));
  return { form, rows };
}

function successView(result, { show, again }) {
  const current = (result.current_steps || []).map((s) => s.department_name ? `${s.name}（${s.department_name}）` : s.name);
  show(h("div", { class: "page-head" }, h("h1", { class: "page-title" }, "窗口受理")),
    h("section", { class: "card intake-done", role: "status" },
      h("div", { class: "done-mark", "aria-hidden": "true" }, "✓"),
      h("h2", { class: "done-title" }, "受理成功，已立案"),
      h("p", { class: "muted" }, "请将办件编号告知申请人，可凭编号查询办理进度。"),
      h("p", { class: "case-no-big mono", dataset: { caseNo: result.case_no } }, result.case_no),
      kv([["事项", result.service_name || result.service], ["办件状态", result.status_label || result.status],
        ["当前环节", current.join("、") || "—"], ["受理时间", formatTime(result.created_at)],
        ["办结时限", result.due_at ? formatTime(result.due_at) : "—"]]),
      h("div", { class: "actions intake-done-actions" },
        h("button", { type: "button", class: "btn btn-primary", onclick: again }, "继续受理下一位"),
        h("a", { class: "btn btn-ghost", href: `#/cases/${result.id}/receipt` }, "打印受理回执"),
        h("a", { class: "btn btn-ghost", href: "#/inbox?status=ready" }, "返回待办"))));
}

export async function intakeView({ show, isCurrent }) {
  document.title = "窗口受理 · 工作台";
  const catalogue = await api.get("/services", { auth: false });
  if (!isCurrent()) return;
  const services = (catalogue.items || []).filter((s) => (s.channels || []).includes("window"));

  const serviceId = uid("f");
  const serviceSelect = h("select", { id: serviceId, class: "input", name: "service" },
    h("option", { value: "" }, "请选择办理事项"),
    services.map((s) => h("option", { value: s.slug }, `${s.name}（${s.department_name}）`)));
  const serviceField = labelled("办理事项", serviceSelect, { name: "service", required: true });
  serviceField.value = () => serviceSelect.value;
  const name = textField("申请人姓名", { name: "name", required: true, maxlength: 50 });
  const idNumber = textField("申请人身份证号", { name: "id_number", required: true, maxlength: 18,
    help: "核对身份证原件；已在掌上办实名的群众，办件自动归入其账号" });
  idNumber.input.setAttribute("autocomplete", "off");
  idNumber.input.classList.add("mono");
  const phone = textField("申请人手机号", { name: "phone", maxlength: 15, help: "选填，用于通知办理结果" });
  phone.input.setAttribute("inputmode", "tel");
  const own = { service: serviceField, name, id_number: idNumber, phone };

  const formBox = h("div", { class: "intake-form" }, h("p", { class: "muted" }, "请先选择办理事项"));
  const materialsBox = h("div", {}, h("p", { class: "muted" }, "请先选择办理事项"));
  const materialsError = h("p", { class: "field-error", role: "alert", hidden: true });
  const info = h("div", {}, h("p", { class: "muted" }, "选择事项后显示办理时限、部门和收费"));
  const alert = alertBox();
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-large", disabled: true }, "受理并立案");
  let parts = null;
  let loading = 0;

  serviceSelect.addEventListener("change", async () => {
    serviceField.clear();
    parts = null;
    submit.disabled = true;
    const slug = serviceSelect.value;
    const mine = ++loading;
    if (!slug) {
      formBox.replaceChildren(h("p", { class: "muted" }, "请先选择办理事项"));
      materialsBox.replaceChildren(h("p", { class: "muted" }, "请先选择办理事项"));
      return;
    }
    formBox.replaceChildren(h("p", { class: "loading-inline muted" }, "申请表加载中…"));
    try {
      const service = await api.get(`/services/${encodeURIComponent(slug)}`, { auth: false });
      if (mine !== loading) return;
      parts = serviceParts(service, () => {
        // a refusal of the earlier scans no longer holds
        materialsError.hidden = true;
        alert.hide();
      });
      formBox.replaceChildren(service.form.description ? h("p", { class: "field-help form-intro" }, service.form.description)
        : "", parts.form.el);
      materialsBox.replaceChildren(h("ul", { class: "intake-materials", "aria-label": "收件材料" },
        parts.rows.map((r) => r.el)));
      info.replaceChildren(kv([["实施部门", service.department_name], ["事项类型", service.type],
        ["法定时限", limitText(service.legal_limit)], ["承诺时限", limitText(service.promised_limit)],
        ["到场次数", service.visits === undefined ? "" : `${service.visits} 次`], ["收费", service.fees]]),
      service.summary ? h("p", { class: "muted small service-summary" }, service.summary) : null);
      submit.disabled = false;
    } catch (exc) {
      formBox.replaceChildren(h("p", { class: "alert alert-error" }, errorText(exc)));
    }
  });

  const form = h("form", { class: "intake", novalidate: true },
    section("办理事项", serviceField.el),
    section("申请人信息", h("div", { class: "grid-3" }, name.el, idNumber.el, phone.el)),
    section("申请表", formBox),
    section("收件材料", h("p", { class: "field-help" }, "扫描件支持 PDF、JPG、PNG；同一材料可上传多页"),
      materialsBox, materialsError),
    h("div", { class: "card submit-bar" }, alert.el, h("div", { class: "actions" }, submit,
      h("span", { class: "muted small" }, "立案后进入与掌上申办相同的审批流程"))));

  settleOnEdit(form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!parts) return;
    alert.hide();
    materialsError.hidden = true;
    for (const f of Object.values(own)) f.clear();
    parts.form.clearErrors();
    for (const r of parts.rows) r.clear();
    const body = new FormData();
    body.append("service", serviceSelect.value);
    body.append("name", name.value());
    body.append("id_number", idNumber.value());
    if (phone.value()) body.append("phone", phone.value());
    body.append("form", JSON.stringify(parts.form.value()));
    const scans = parts.rows.flatMap((r) => r.files());
    scans.forEach(([material, file], i) => {
      // The file's own name may carry personal data: the server gets a neutral one.
      const ext = (file.name.match(/\.[A-Za-z0-9]{1,5}$/) || [""])[0].toLowerCase();
      body.append("materials", file, `scan-${i + 1}${ext}`);
      body.append("material_names", material);
    });
    submit.disabled = true;
    try {
      const result = await api.post("/staff/applications", body);
      toast("受理成功");
      successView(result, { show, again: () => intakeView({ show, isCurrent: () => true }) });
    } catch (exc) {
      const fields = exc.fields || {};
      const formError = Object.keys(fields).some((k) => !OWN_FIELDS.has(k)) || /^申请表/.test(exc.message);
      const unplaced = [];
      if (formError) {
        unplaced.push(...parts.form.showErrors(fields));
      } else {
        for (const [key, message] of Object.entries(fields)) {
          if (own[key]) own[key].error(message);
          else if (key === "materials" || key === "material_names") {
            materialsError.textContent = message;
            materialsError.hidden = false;
          } else unplaced.push(message);
        }
      }
      if ([413, 415].includes(exc.status)) {
        materialsError.textContent = exc.message;
        materialsError.hidden = false;
      }
      alert.show([errorText(exc), ...unplaced].join("；"));
      submit.disabled = false;
      const first = form.querySelector('[aria-invalid="true"]') || (materialsError.hidden ? alert.el : materialsError);
      first.scrollIntoView({ block: "center" });
      if (first.matches("input, select, textarea")) first.focus();
    }
  });

  show(h("div", { class: "page-head" },
    h("div", {}, h("h1", { class: "page-title" }, "窗口受理"),
      h("p", { class: "muted small" }, "前台一口受理：为到窗口办事的群众立案，与掌上申办进入同一流程"))),
  h("div", { class: "task-layout" },
    h("div", { class: "col-main" }, form),
    h("div", { class: "col-side" }, section("事项信息", info),
      section("受理须知", h("ol", { class: "notes" },
        h("li", {}, "核对申请人身份证原件，姓名、证号与证件一致。"),
        h("li", {}, "材料扫描件须清晰完整，每份材料可上传多页。"),
        h("li", {}, "可由电子证照、共享数据获取的材料无需收取纸质件。"),
        h("li", {}, "立案后将办件编号告知申请人。"))))));
  serviceSelect.focus();
}
