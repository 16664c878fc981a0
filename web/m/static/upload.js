// Material uploads at apply time (材料上传): per material, take a photo (camera) or choose images /
// PDFs; each file is checked here (type, 10 MB) with a Chinese message, sent to POST /api/v1/uploads
// with a progress bar, shown as a thumbnail, and can be retried or removed. The application then
// names the upload ids per material: {"<material name>": ["<id>", …]}.

import { refreshTokens, session } from "./api.js";
import { h, uid } from "/shared/static/dom.js";

const MAX_BYTES = 10 * 1024 * 1024;
const TYPES = { "image/jpeg": "JPG", "image/png": "PNG", "application/pdf": "PDF" };
const ACCEPT = "image/*,application/pdf";
const MAX_FILES = 20;

/** Why a chosen file cannot be sent, in Chinese; null when it can. */
export function fileProblem(file) {
  const type = file.type || "";
  const byName = /\.(jpe?g|png|pdf)$/i.test(file.name || "");
  if (!(type in TYPES) && !(type === "" && byName) && !/^image\/(heic|heif|webp)$/.test(type)) {
    return "仅支持 JPG、PNG 图片或 PDF 文件";
  }
  if (/^image\/(heic|heif|webp)$/.test(type)) return "请在相机设置中选择“兼容性最佳”（JPG）后重新拍摄，或选择 JPG/PNG 图片";
  if (file.size > MAX_BYTES) return `文件为 ${(file.size / 1048576).toFixed(1)} MB，超过 10 MB，请压缩后重新上传`;
  if (file.size === 0) return "文件为空，请重新选择";
  return null;
}

/** POST one file with progress; refreshes the token once on 401. Resolves the upload body. */
function send(file, onProgress, retried = false) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/uploads");
    const token = session.get()?.access_token;
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onerror = () => reject({ status: 0, message: "网络连接失败，请检查网络后重试" });
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText || "null");
      } catch {
        body = null;
      }
      if (xhr.status === 201) return resolve(body);
      const error = body?.error || {};
      if (xhr.status === 401 && error.code === "token_expired" && !retried) {
        refreshTokens().then(() => send(file, onProgress, true).then(resolve, reject), reject);
        return;
      }
      const fallback = { 413: "文件超过 10 MB，请压缩后重新上传", 415: "仅支持 JPG、PNG 图片或 PDF 文件",
        429: "上传过于频繁，请稍后再试" }[xhr.status] || "上传失败，请重试";
      reject({ status: xhr.status, code: error.code, message: error.message || fallback });
    };
    const form = new FormData();
    form.append("file", file, file.name || "photo.jpg");
    xhr.send(form);
  });
}

/** One chosen file: thumbnail, progress, state; retry on failure, remove any time. */
function fileTile(file, onChange, onRemove) {
  const isPdf = file.type === "application/pdf" || /\.pdf$/i.test(file.name || "");
  const preview = isPdf ? null : URL.createObjectURL(file);
  const thumb = isPdf
    ? h("span", { class: "upload-thumb upload-thumb-pdf", "aria-hidden": "true" }, "PDF")
    : h("img", { class: "upload-thumb", src: preview, alt: `${file.name || "照片"} 缩略图` });
  const bar = h("span", { class: "upload-bar-fill" });
  const progress = h("span", { class: "upload-bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": "0", "aria-label": "上传进度" }, bar);
  const state = h("span", { class: "upload-state", "aria-live": "polite" }, "等待上传");
  const retry = h("button", { type: "button", class: "upload-link upload-retry", hidden: true }, "重试");
  const remove = h("button", { type: "button", class: "upload-link upload-remove", "aria-label": `移除 ${file.name || "文件"}` }, "移除");
  const el = h("li", { class: "upload-tile", dataset: { state: "pending" } }, thumb,
    h("span", { class: "upload-info" }, h("span", { class: "upload-name" }, file.name || "照片"),
      h("span", { class: "upload-size muted" }, `${(file.size / 1024).toFixed(0)} KB`), progress, state),
    h("span", { class: "upload-actions" }, retry, remove));
  const tile = { el, id: null, busy: false, failed: false };

  const setState = (name, text) => {
    el.dataset.state = name;
    state.textContent = text;
    onChange();
  };
  const start = async () => {
    const problem = fileProblem(file);
    if (problem) {
      tile.failed = true;
      progress.hidden = true;
      setState("error", problem);
      return;
    }
    tile.busy = true;
    tile.failed = false;
    retry.hidden = true;
    progress.hidden = false;
    setState("uploading", "正在上传 0%");
    try {
      const body = await send(file, (fraction) => {
        const pct = Math.round(fraction * 100);
        bar.style.width = `${pct}%`;
        progress.setAttribute("aria-valuenow", String(pct));
        state.textContent = `正在上传 ${pct}%`;
      });
      tile.id = body.id;
      tile.busy = false;
      bar.style.width = "100%";
      setState("done", "已上传");
    } catch (error) {
      tile.busy = false;
      tile.failed = true;
      retry.hidden = !(error.status === 0 || error.status >= 500 || error.status === 429 || error.status === 401);
      setState("error", error.message);
    }
  };
  retry.addEventListener("click", start);
  remove.addEventListener("click", () => {
    if (preview) URL.revokeObjectURL(preview);
    el.remove();
    onRemove(tile);
  });
  tile.start = start;
  return tile;
}

/** The upload area of one material: two pickers (camera, album/files) and the file tiles. */
function materialUploader(material, onChange) {
  const tiles = [];
  const list = h("ul", { class: "upload-list", "aria-label": `「${material.name}」已选文件` });
  const error = h("p", { class: "field-error upload-error", role: "alert", hidden: true });
  const cameraId = uid("camera");
  const pickId = uid("pick");
  const add = (files) => {
    error.hidden = true;
    for (const file of files) {
      if (tiles.length >= MAX_FILES) {
        error.textContent = `每项材料最多上传 ${MAX_FILES} 个文件`;
        error.hidden = false;
        break;
      }
      const tile = fileTile(file, onChange, (gone) => {
        tiles.splice(tiles.indexOf(gone), 1);
        onChange();
      });
      tiles.push(tile);
      list.append(tile.el);
      tile.start();
    }
    onChange();
  };
  const input = (id, attrs) => {
    const el = h("input", { type: "file", id, class: "sr-only upload-input", accept: ACCEPT, ...attrs,
      dataset: { material: material.name } });
    el.addEventListener("change", () => {
      add([...el.files]);
      el.value = "";
    });
    return el;
  };
  const el = h("div", { class: "uploader", dataset: { material: material.name } },
    h("div", { class: "upload-buttons" },
      input(cameraId, { capture: "environment", "aria-label": `拍照上传「${material.name}」` }),
      h("label", { for: cameraId, class: "btn btn-ghost btn-small upload-button" }, "拍照"),
      input(pickId, { multiple: true, "aria-label": `从相册或文件选择「${material.name}」` }),
      h("label", { for: pickId, class: "btn btn-ghost btn-small upload-button" }, "从相册/文件选择")),
    h("p", { class: "muted small upload-hint" }, "支持 JPG、PNG、PDF，单个不超过 10 MB；照片的拍摄位置等信息会被去除"),
    list, error);
  return {
    el,
    ids: () => tiles.filter((t) => t.id).map((t) => t.id),
    busy: () => tiles.some((t) => t.busy),
    failed: () => tiles.some((t) => t.failed),
    showError(message) {
      error.textContent = message;
      error.hidden = !message;
    },
  };
}

/** Whether the citizen uploads this material (not an e-certificate they hold, not shared data). */
export function uploadable(material) {
  const satisfied = material.satisfied === true || material.status === "satisfied";
  return !satisfied && material.source_type !== "shared_data" && material.source?.type !== "shared_data";
}

/**
 * The materials list with an uploader under every material the citizen provides.
 * ``render(material)`` draws one material's row (the page's own look).
 * Returns {el, value(), busy(), failed(), showErrors(fields)}.
 */
export function materialUploads(materials, render) {
  const uploaders = new Map();
  const status = h("p", { class: "muted small upload-summary", "aria-live": "polite" });
  const refresh = () => {
    const count = [...uploaders.values()].reduce((n, u) => n + u.ids().length, 0);
    const busy = [...uploaders.values()].some((u) => u.busy());
    status.textContent = busy ? "材料正在上传…" : count ? `已上传 ${count} 个文件` : "";
  };
  const rows = materials.map((m) => {
    const row = render(m);
    if (uploadable(m)) {
      const uploader = materialUploader(m, refresh);
      uploaders.set(m.name, uploader);
      (row.querySelector(".material-body") || row).append(uploader.el);
    }
    return row;
  });
  return {
    el: h("div", {}, h("ul", { class: "materials", "aria-label": "申请材料清单" }, rows), status),
    value() {
      const out = {};
      for (const [name, uploader] of uploaders) {
        const ids = uploader.ids();
        if (ids.length) out[name] = ids;
      }
      return Object.keys(out).length ? out : undefined;
    },
    busy: () => [...uploaders.values()].some((u) => u.busy()),
    showErrors(fields) {
      for (const [name, uploader] of uploaders) uploader.showError(fields?.[`materials.${name}`] || "");
      const first = [...uploaders.entries()].find(([name]) => fields?.[`materials.${name}`]);
      if (first) first[1].el.scrollIntoView({ block: "center" });
    },
  };
}
