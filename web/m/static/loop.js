// The human loop on the citizen's case page: the 补正 card (the officer's reason and listed items,
// a file picker per item — camera or album — with progress, retry, thumbnails and Chinese size/type
// messages, a note, 提交补正), 撤回申请, 申请人工复核 with a reason and its verdict, the 待您补正
// badge of the case list, and 我的信息被谁查看 (GET /me/access-log, route #/access-log).

import { api, ApiError, refreshTokens, session } from "./api.js";
import { formatTime, h, uid } from "/shared/static/dom.js";

const MAX_BYTES = 10 * 1024 * 1024;
const TYPES = ["image/jpeg", "image/png", "application/pdf"];
const OTHER = "其他材料";

function section(title, ...children) {
  return h("section", { class: "card loop-card" }, h("h2", { class: "card-title" }, title), children);
}

function urgent(card) {
  card.classList.add("loop-card-urgent");
  return card;
}

function errorText(exc) {
  if (exc instanceof ApiError) return Object.values(exc.fields || {})[0] || exc.message;
  return "操作失败，请稍后重试";
}

function sizeText(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** Upload one file (multipart ``file``) with progress; one refresh on an expired token. */
function sendFile(file, onProgress) {
  const once = () => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/uploads");
    const token = session.get()?.access_token;
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(Math.round((event.loaded / event.total) * 100));
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "网络连接失败，请重试"));
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText || "null");
      } catch {
        body = null;
      }
      if (xhr.status === 201 || xhr.status === 200) resolve(body);
      else {
        const err = (body && body.error) || {};
        reject(new ApiError(xhr.status, err.code, err.message || "上传失败，请重试", err.fields));
      }
    };
    const form = new FormData();
    form.append("file", file, file.name || "photo.jpg");
    xhr.send(form);
  });
  return once().catch(async (exc) => {
    if (exc instanceof ApiError && exc.status === 401 && exc.code === "token_expired") {
      await refreshTokens();
      return once();
    }
    throw exc;
  });
}

/** Check type and size before sending: the server checks again (magic bytes), this saves the wait. */
function precheck(file) {
  if (file.size > MAX_BYTES) return `文件过大（${sizeText(file.size)}），单个文件不能超过 10 MB`;
  if (file.type && !TYPES.includes(file.type)) return "仅支持 JPG、PNG 图片或 PDF 文件";
  return null;
}

/** One requested item: pick files (camera or album), each uploads at once with progress. */
function itemUploader(item, onChange) {
  const files = []; // {id?, file, state: uploading|done|failed, el}
  const inputId = uid("up");
  const input = h("input", { type: "file", id: inputId, class: "visually-hidden loop-file",
    accept: "image/*,application/pdf", multiple: true, dataset: { item } });
  const list = h("ul", { class: "loop-files", "aria-live": "polite" });
  const pick = h("label", { class: "btn btn-ghost btn-small loop-pick", for: inputId }, "拍照或选择文件");

  function start(entry) {
    entry.state = "uploading";
    entry.bar.value = 0;
    entry.status.textContent = "上传中…";
    entry.retry.hidden = true;
    onChange();
    sendFile(entry.file, (pct) => {
      entry.bar.value = pct;
      entry.status.textContent = `上传中 ${pct}%`;
    }).then((body) => {
      entry.id = body.id;
      entry.state = "done";
      entry.bar.value = 100;
      entry.status.textContent = `已上传 · ${sizeText(body.size)}`;
      entry.el.dataset.uploadId = body.id;
      entry.el.classList.add("loop-file-done");
      onChange();
    }).catch((exc) => {
      entry.state = "failed";
      entry.status.textContent = errorText(exc);
      entry.retry.hidden = false;
      entry.el.classList.add("loop-file-failed");
      onChange();
    });
  }

  input.addEventListener("change", () => {
    for (const file of [...input.files]) {
      const problem = precheck(file);
      const thumb = file.type.startsWith("image/")
        ? h("img", { class: "loop-thumb", alt: `${item}的照片`, src: URL.createObjectURL(file) })
        : h("span", { class: "loop-thumb loop-thumb-pdf", "aria-hidden": "true" }, "PDF");
      const entry = { file, state: "failed", id: null };
      entry.bar = h("progress", { max: 100, value: 0, "aria-label": `${file.name} 上传进度` });
      entry.status = h("span", { class: "loop-file-status small" });
      entry.retry = h("button", { type: "button", class: "btn-link", hidden: true }, "重试");
      const remove = h("button", { type: "button", class: "btn-link", "aria-label": `删除 ${file.name}` }, "删除");
      entry.el = h("li", { class: "loop-file-row" }, thumb,
        h("div", { class: "loop-file-body" }, h("span", { class: "loop-file-name" }, file.name || "照片"), entry.bar,
          entry.status), entry.retry, remove);
      entry.retry.addEventListener("click", () => {
        entry.el.classList.remove("loop-file-failed");
        start(entry);
      });
      remove.addEventListener("click", () => {
        files.splice(files.indexOf(entry), 1);
        entry.el.remove();
        onChange();
      });
      files.push(entry);
      list.append(entry.el);
      if (problem) {
        entry.status.textContent = problem;
        entry.el.classList.add("loop-file-failed");
      } else start(entry);
    }
    input.value = "";
  });

  return {
    el: h("li", { class: "loop-item", dataset: { item } },
      h("p", { class: "loop-item-name" }, item), list, input, pick),
    ids: () => files.filter((f) => f.state === "done").map((f) => f.id),
    busy: () => files.some((f) => f.state === "uploading"),
  };
}

/** The 补正 card: what the officer asked for, one uploader per item, a note, 提交补正. */
function supplementCard(d, ctx) {
  const s = d.supplement;
  const items = [...(s.items || []), OTHER];
  const error = h("p", { class: "field-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "提交补正");
  const refresh = () => {
    const busy = uploaders.some((u) => u.busy());
    button.disabled = busy;
    button.textContent = busy ? "文件上传中…" : "提交补正";
  };
  const uploaders = items.map((item) => itemUploader(item, refresh));
  const noteId = uid("f");
  const note = h("textarea", { id: noteId, class: "input", rows: 3, maxlength: 500, name: "note",
    placeholder: "说明补充或更正了什么（必填）" });
  const form = h("form", { class: "loop-supplement", novalidate: true },
    h("p", { class: "loop-reason" }, h("strong", {}, "补正原因："), s.reason || "请按要求补充材料"),
    h("p", { class: "muted small" }, [s.requested_at ? `${formatTime(s.requested_at)} 提出` : "",
      s.due_at ? `请于 ${formatTime(s.due_at)} 前补正` : ""].filter(Boolean).join("　")),
    h("p", { class: "field-label" }, `需补正的材料（${(s.items || []).length} 项）`),
    h("ol", { class: "loop-items", "aria-label": "需补正的材料" }, uploaders.map((u) => u.el)),
    h("div", { class: "field" }, h("label", { class: "field-label", for: noteId }, "补正说明"), note),
    error, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!note.value.trim()) {
      error.textContent = "请填写补正说明";
      error.hidden = false;
      note.focus();
      return;
    }
    const materials = {};
    items.forEach((item, i) => {
      const ids = uploaders[i].ids();
      if (ids.length) materials[item] = ids;
    });
    const missing = (s.items || []).filter((item) => !materials[item]);
    if (missing.length && !form.dataset.confirmed) {
      error.textContent = `以下材料尚未上传：${missing.join("、")}。如确认无需上传，请再次点击提交。`;
      error.hidden = false;
      form.dataset.confirmed = "1";
      return;
    }
    button.disabled = true;
    try {
      await api.post(`/applications/${d.id}/supplement`, { note: note.value.trim(), materials });
      ctx.toast("补正材料已提交，等待工作人员审核");
      ctx.reload();
    } catch (exc) {
      error.textContent = errorText(exc);
      error.hidden = false;
      button.disabled = false;
    }
  });
  return urgent(section("补正材料", h("p", { class: "alert alert-info loop-wait" }, "工作人员要求您补正材料，补正期间暂停计时"), form));
}

/** A reason box that opens under a button: 撤回申请 and 申请人工复核. */
function reasonAction({ label, title, placeholder, required, danger, send, ctx, done }) {
  const open = h("button", { type: "button", class: `btn ${danger ? "btn-ghost loop-danger" : "btn-ghost"} btn-block` }, label);
  const id = uid("f");
  const reason = h("textarea", { id, class: "input", rows: 3, maxlength: 500, placeholder });
  const error = h("p", { class: "field-error", role: "alert", hidden: true });
  const confirm = h("button", { type: "submit", class: `btn ${danger ? "btn-danger" : "btn-primary"} btn-block` }, `确认${label}`);
  const cancel = h("button", { type: "button", class: "btn btn-ghost btn-block" }, "取消");
  const form = h("form", { class: "loop-reason-form", hidden: true, novalidate: true },
    h("div", { class: "field" }, h("label", { class: "field-label", for: id }, title), reason), error, confirm, cancel);
  open.addEventListener("click", () => {
    form.hidden = false;
    open.hidden = true;
    reason.focus();
  });
  cancel.addEventListener("click", () => {
    form.hidden = true;
    open.hidden = false;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (required && !reason.value.trim()) {
      error.textContent = `请填写${title}`;
      error.hidden = false;
      return;
    }
    confirm.disabled = true;
    try {
      await send(reason.value.trim());
      ctx.toast(done);
      ctx.reload();
    } catch (exc) {
      error.textContent = errorText(exc);
      error.hidden = false;
      confirm.disabled = false;
    }
  });
  return h("div", { class: "loop-action" }, open, form);
}

function reviewState(review) {
  if (review.status === "pending") {
    return h("div", { class: "loop-review loop-review-pending" },
      h("p", {}, h("span", { class: "badge badge-blue" }, "人工复核中"), `　${formatTime(review.requested_at)} 申请`),
      review.reason ? h("p", { class: "muted small" }, `您的理由：${review.reason}`) : null,
      h("p", { class: "muted small" }, "工作人员复核后，结论会显示在这里。"));
  }
  return h("div", { class: "loop-review loop-review-decided" },
    h("p", {}, h("strong", { class: "loop-verdict" }, `复核结论：${review.verdict_label || review.verdict}`),
      review.outcome ? `（${review.outcome === "approved" ? "准予" : "不予"}）` : ""),
    review.decision_reason ? h("p", { class: "loop-verdict-reason" }, review.decision_reason) : null,
    h("p", { class: "muted small" }, formatTime(review.decided_at)));
}

/**
 * The loop's part of a case page. ``ctx``: {reload(), toast(text), later(fn, ms)} — ``later``
 * schedules a check that the page cancels when it goes away.
 */
export function loopPanel(d, ctx) {
  const actions = new Set(d.actions || []);
  const parts = [];
  if (d.supplement && actions.has("supplement")) parts.push(supplementCard(d, ctx));
  const more = [];
  if (d.review) more.push(reviewState(d.review));
  if (actions.has("review")) {
    more.push(reasonAction({
      label: "申请人工复核", title: "复核理由", required: true,
      placeholder: "说明您对自动审核结论的异议，工作人员将人工复核（个人信息保护法第二十四条）",
      send: (reason) => api.post(`/applications/${d.id}/review-request`, { reason }), ctx,
      done: "已申请人工复核",
    }));
  }
  if (actions.has("withdraw")) {
    more.push(reasonAction({
      label: "撤回申请", title: "撤回原因（选填）", required: false, danger: true,
      placeholder: "例如：信息填写有误，重新申请",
      send: (reason) => api.post(`/applications/${d.id}/withdraw`, reason ? { reason } : {}), ctx,
      done: "申请已撤回",
    }));
  }
  if (more.length) parts.push(section(d.review ? "人工复核" : "其他操作", more));
  if (d.review && d.review.status === "pending") ctx.later(() => ctx.reload(), 4000); // the stream ended with the case
  return parts;
}

/** The 待您补正 mark of a case in the list. */
export function waitingBadge(c) {
  return c.waiting_for_applicant ? h("span", { class: "badge badge-red loop-waiting", "data-waiting": "true" }, "待您补正") : null;
}

/** How many of the listed cases wait for the citizen (the tab's badge). */
export function markCasesTab(cases) {
  const tab = document.querySelector('#tabbar a[data-tab="cases"]');
  if (!tab) return;
  tab.querySelector(".loop-tab-badge")?.remove();
  const waiting = cases.filter((c) => c.waiting_for_applicant).length;
  if (waiting) tab.append(h("span", { class: "loop-tab-badge", "aria-label": `${waiting} 件待您补正` }, String(waiting)));
}

/** 我的信息被谁查看: who read my personal data, for which case and why. */
export async function accessLogView({ show, setChrome, loading, errorBox }) {
  setChrome("我的信息被谁查看", { back: true, tab: "me" });
  show(loading());
  let log;
  try {
    log = await api.get("/me/access-log?size=50");
  } catch (exc) {
    show(errorBox(exc));
    return;
  }
  const items = log.items || [];
  if (!items.length) {
    show(h("div", { class: "empty" }, h("p", {}, "暂无查询记录"), h("p", { class: "muted small" }, "完成实名认证后，部门读取您的个人信息都会记录在这里")));
    return;
  }
  show(h("p", { class: "muted small loop-log-intro" }, `共 ${log.total} 条记录：哪个部门、为哪个办件、出于什么目的读取了您的信息`),
    h("ul", { class: "service-list loop-log", "aria-label": "个人信息查询记录" }, items.map((e) =>
      h("li", { class: "card loop-log-row" },
        h("div", { class: "service-head" }, h("p", { class: "service-name" }, e.department_name || e.department || "系统"),
          h("time", { class: "muted small", datetime: e.at }, formatTime(e.at))),
        h("p", { class: "loop-log-purpose" }, e.purpose),
        h("p", { class: "muted small" }, [e.dataset_label, (e.fields || []).join("、"), e.actor ? `查看人 ${e.actor}` : "",
          e.case_no ? `办件 ${e.case_no}` : ""].filter(Boolean).join(" · "))))));
}
