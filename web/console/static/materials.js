// The application on the task page: the form the citizen filled in (personal values masked; 显示
// reveals one value, logged for the citizen) and the materials with their files — applicant
// uploads, window scans, 补正 files. A file is fetched only when the officer opens it (each open is
// an access-log row the citizen sees): images in a viewer with zoom and rotate, PDFs in the
// browser's own PDF viewer.

import { api, ApiError, session } from "./api.js";
import { errorText, section, toast } from "./ui.js";
import { h } from "/shared/static/dom.js";
import { regionName } from "/shared/static/form.js";

const SOURCES = { applicant: "申请人上传", window: "窗口收件", supplement: "补正材料" };
const STATUS = {
  satisfied: ["已获取", "tag-green"], received: ["已收到", "tag-green"], to_follow: ["容缺后补", "tag-orange"],
  not_provided: ["未提交", ""], missing: ["缺少", "tag-red"],
};

function sizeText(bytes) {
  if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** The file's bytes as an object URL (staff token in the header; never a URL with a token). */
async function fileUrl(file) {
  const token = session.get()?.access_token;
  let response;
  try {
    response = await fetch(file.url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  } catch {
    throw new ApiError(0, "network", "网络连接失败，请重试");
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw new ApiError(response.status, body?.error?.code, body?.error?.message || "文件打开失败");
  }
  return URL.createObjectURL(await response.blob());
}

/** A modal viewer: images with zoom in/out, rotate and reset; PDFs in an iframe (browser viewer). */
function openViewer(file, url) {
  let scale = 1;
  let angle = 0;
  const isPdf = file.content_type === "application/pdf";
  const img = isPdf ? null : h("img", { class: "viewer-image", src: url, alt: `${file.name}（${SOURCES[file.source] || ""}）` });
  const apply = () => {
    if (img) img.style.transform = `rotate(${angle}deg) scale(${scale})`;
  };
  const tool = (label, onclick) => h("button", { type: "button", class: "btn btn-ghost btn-small", onclick }, label);
  const close = () => {
    overlay.remove();
    URL.revokeObjectURL(url);
    document.removeEventListener("keydown", onKey);
  };
  const onKey = (event) => {
    if (event.key === "Escape") close();
  };
  const tools = h("div", { class: "viewer-tools" },
    isPdf ? null : [
      tool("放大", () => { scale = Math.min(5, scale * 1.25); apply(); }),
      tool("缩小", () => { scale = Math.max(0.2, scale / 1.25); apply(); }),
      tool("向左旋转", () => { angle -= 90; apply(); }),
      tool("向右旋转", () => { angle += 90; apply(); }),
      tool("复原", () => { scale = 1; angle = 0; apply(); }),
    ],
    h("a", { class: "btn btn-ghost btn-small", href: url, target: "_blank", rel: "noopener" }, "新窗口打开"),
    h("button", { type: "button", class: "btn btn-primary btn-small viewer-close", onclick: close }, "关闭"));
  const stage = h("div", { class: "viewer-stage" },
    isPdf ? h("iframe", { class: "viewer-pdf", src: url, title: file.name }) : img);
  const overlay = h("div", { class: "viewer", role: "dialog", "aria-modal": "true", "aria-label": `查看材料：${file.name}` },
    h("div", { class: "viewer-head" },
      h("p", { class: "viewer-title" },
        h("span", { class: "viewer-name", title: file.name }, file.name),
        h("span", { class: "muted small viewer-info" }, ` · ${SOURCES[file.source] || file.source} · ${sizeText(file.size)}`)),
      tools),
    stage);
  if (img) {
    stage.addEventListener("wheel", (event) => {
      event.preventDefault();
      scale = Math.min(5, Math.max(0.2, scale * (event.deltaY < 0 ? 1.1 : 1 / 1.1)));
      apply();
    }, { passive: false });
  }
  document.addEventListener("keydown", onKey);
  document.body.append(overlay);
  overlay.querySelector(".viewer-close").focus();
}

function fileRow(file) {
  const open = h("button", { type: "button", class: "btn btn-ghost btn-small file-open",
    "aria-label": `查看 ${file.name}` }, file.content_type === "application/pdf" ? "查看 PDF" : "查看图片");
  open.addEventListener("click", async () => {
    open.disabled = true;
    try {
      openViewer(file, await fileUrl(file));
    } catch (exc) {
      toast(errorText(exc));
    } finally {
      open.disabled = false;
    }
  });
  return h("li", { class: "file-row", dataset: { fileId: file.id, source: file.source } },
    h("span", { class: `file-icon ${file.content_type === "application/pdf" ? "file-pdf" : "file-img"}`, "aria-hidden": "true" },
      file.content_type === "application/pdf" ? "PDF" : "IMG"),
    h("span", { class: "file-meta" }, h("span", { class: "file-name", title: file.name }, file.name),
      h("span", { class: "muted small" }, `${SOURCES[file.source] || file.source} · ${sizeText(file.size)}`)),
    open);
}

function materialRow(m) {
  const [label, cls] = STATUS[m.status] || [m.label || "", ""];
  const how = m.status === "satisfied" ? (m.label || "已获取") : null;
  return h("li", { class: "material material-files", dataset: { material: m.name } },
    h("p", { class: "material-name" }, m.name,
      m.required ? h("span", { class: "tag tag-red tag-small" }, "必需") : null,
      label ? h("span", { class: `tag ${cls} tag-small`, dataset: { status: m.status } }, label) : null),
    how ? h("p", { class: "muted small" }, how) : null,
    (m.files || []).length ? h("ul", { class: "file-list" }, m.files.map(fileRow)) : null);
}

/** 申请材料 with their files (falls back to the names when the API sends no files). */
export function materialsSection(detail) {
  const materials = detail.materials || [];
  return section("申请材料", materials.length
    ? h("ul", { class: "materials materials-files", "aria-label": "申请材料清单" }, materials.map(materialRow))
    : h("p", { class: "muted" }, "本事项无需提交材料"));
}

/** 申请表: the citizen's answers, masked values with a 显示 button (logged). */
export function applicationSection(detail) {
  const rows = detail.application?.fields || [];
  if (!rows.length) return null;
  const taskId = detail.task.id;
  const list = h("dl", { class: "app-fields" }, rows.map((row) => {
    const region = row.path.endsWith("region_code") ? regionName(row.value) : null;  // 310115 → 上海市浦东新区
    const shown = region ? `${region}（${row.value}）` : row.value;
    const value = h("span", { class: "app-value", dataset: { path: row.path } }, shown || "—");
    const reveal = row.masked ? h("button", { type: "button", class: "btn-reveal", "aria-label": `显示完整的${row.label}` }, "显示") : null;
    reveal?.addEventListener("click", async () => {
      reveal.disabled = true;
      try {
        const body = await fetchReveal(taskId, row.path);
        value.textContent = body.value;
        reveal.remove();
        toast("已显示完整信息（已留痕）");
      } catch (exc) {
        reveal.disabled = false;
        toast(errorText(exc));
      }
    });
    return h("div", { class: "app-field" },
      h("dt", {}, row.group && !row.label.startsWith(row.group) ? `${row.group} · ${row.label}` : row.label),
      h("dd", {}, value, reveal));
  }));
  return section("申请表", list,
    h("p", { class: "muted small" }, "身份证号、电话、姓名、详细地址已脱敏；点“显示”查看完整信息，将记入申请人的个人信息查询记录。"));
}

function fetchReveal(taskId, path) {
  return api.post(`/staff/tasks/${encodeURIComponent(taskId)}/reveal`, { field: path });
}
