// 流程设计器 — the process designer at /designer/: staff login, the deployed processes and their
// versions, one version in the bpmn-js modeler (lanes offer the known departments), 校验 with the
// findings marked on the diagram, 发布新版本, and the heat-map of cases waiting / overdue per step
// (数据运营化). Hash routes: #/processes/<id>/versions/<n>.

import BpmnModeler from "bpmn-js/lib/Modeler";
import DmnModeler from "dmn-js/lib/Modeler";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import "bpmn-js/dist/assets/bpmn-font/css/bpmn.css";
import "dmn-js/dist/assets/dmn-js-shared.css";
import "dmn-js/dist/assets/dmn-js-drd.css";
import "dmn-js/dist/assets/dmn-js-decision-table.css";
import "dmn-js/dist/assets/dmn-js-decision-table-controls.css";
import "dmn-js/dist/assets/dmn-js-literal-expression.css";
import "dmn-js/dist/assets/dmn-font/css/dmn.css";
import "./app.css";

import { api, ApiError, client, onUnauthorized, session } from "./api.js";
import { staffLoginForm } from "/shared/static/staff.js";
import { addDiagram, hasDiagram } from "./layout.js";
import { translateModule } from "./translate.js";
import { formatTime, h, uid } from "/shared/static/dom.js";
import { applyHeat, clearHeat, heatLegend, statsTable } from "./heatmap.js";
import { assignmentRows } from "./rules.js";

const view = document.getElementById("view");
const TYPE_LABELS = {
  "bpmn:Participant": "泳池", "bpmn:Lane": "泳道（部门）", "bpmn:UserTask": "人工任务", "bpmn:ServiceTask": "服务任务",
  "bpmn:ScriptTask": "脚本任务", "bpmn:BusinessRuleTask": "业务规则任务", "bpmn:Task": "任务",
  "bpmn:StartEvent": "开始事件", "bpmn:EndEvent": "结束事件", "bpmn:ExclusiveGateway": "排他网关",
  "bpmn:ParallelGateway": "并行网关", "bpmn:InclusiveGateway": "包容网关", "bpmn:SequenceFlow": "顺序流",
  "bpmn:BoundaryEvent": "边界事件", "bpmn:IntermediateCatchEvent": "中间事件", "bpmn:Process": "流程",
  "bpmn:Collaboration": "协作",
};

const state = {
  modeler: null,
  processes: [],
  departments: null,
  current: null, // {processId, version, name}
  versions: [],
  dirty: false,
  findings: { errors: [], warnings: [] },
  heat: null,
  loading: 0,
  // DMN tables of the open version: name -> {xml (as loaded), changed}; the dmn-js modeler shows `tab`
  dmn: { files: {}, tab: "bpmn", modeler: null },
};
const ui = {};

// ------------------------------------------------------------------ small helpers

function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    el.hidden = true;
  }, 2500);
}

function errorText(exc) {
  if (exc instanceof ApiError) {
    if (exc.status === 403) return "需要流程设计人员权限（designer）才能进行此操作";
    return exc.message;
  }
  return "页面出错，请刷新后重试";
}

function setWho() {
  const staff = session.get()?.staff;
  document.getElementById("who").hidden = !staff;
  document.getElementById("who-name").textContent = staff ? `${staff.name}（${staff.username}）` : "";
}

function show(...children) {
  view.replaceChildren(...children.flat().filter(Boolean));
}

function card(title, ...children) {
  return h("section", { class: "card panel-card" }, h("h2", { class: "card-title" }, title), children);
}

const itemsOf = (body) => body?.items || [];
const processIdOf = (p) => p.process_id;
const versionOf = (v) => v.version;

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] !== "processes" || !parts[1]) return {};
  return { processId: parts[1], version: parts[2] === "versions" && parts[3] ? Number(parts[3]) : null };
}

function routeTo(processId, version) {
  const target = `#/processes/${encodeURIComponent(processId)}${version ? `/versions/${version}` : ""}`;
  if (location.hash === target) route();
  else location.hash = target;
}

// ------------------------------------------------------------------ login

function loginView(notice) {
  document.title = "登录 · 流程设计器";
  state.modeler?.destroy();
  state.modeler = null;
  const login = staffLoginForm({
    client, title: "流程设计人员登录", subtitle: "在线编辑办事流程、校验、发布新版本、查看运行热力图", notice,
    onLoggedIn: () => {
      setWho();
      route();
    },
  });
  show(login.card);
  login.focus();
}

// ------------------------------------------------------------------ the workspace

function buildWorkspace() {
  ui.processList = h("ul", { class: "process-list", id: "process-list", "aria-label": "流程列表" });
  ui.versionList = h("ul", { class: "version-list", id: "version-list", "aria-label": "版本" });
  ui.title = h("h1", { class: "ws-title", id: "ws-title" }, "请选择左侧的流程");
  ui.dirty = h("span", { class: "tag tag-orange", id: "dirty", hidden: true }, "有未发布的修改");
  ui.validate = h("button", { type: "button", class: "btn btn-ghost btn-small", id: "btn-validate", disabled: true,
    onclick: () => validate() }, "校验");
  ui.deploy = h("button", { type: "button", class: "btn btn-primary btn-small", id: "btn-deploy", disabled: true,
    onclick: () => deploy() }, "发布新版本");
  ui.heatToggle = h("button", { type: "button", class: "btn btn-ghost btn-small", id: "btn-heat", disabled: true,
    "aria-pressed": "false", onclick: () => toggleHeat() }, "热力图");
  ui.download = h("button", { type: "button", class: "btn btn-ghost btn-small", id: "btn-download", disabled: true,
    onclick: () => download() }, "下载 BPMN");
  ui.fit = h("button", { type: "button", class: "btn btn-ghost btn-small", id: "btn-fit", disabled: true,
    title: "缩放以显示整个流程图", onclick: () => fitDiagram(0) }, "全图");
  ui.canvas = h("div", { class: "canvas", id: "canvas", "aria-label": "流程图编辑区" });
  ui.dmnCanvas = h("div", { class: "canvas dmn-canvas", id: "dmn-canvas", "aria-label": "决策表编辑区", hidden: true });
  ui.tabs = h("div", { class: "model-tabs", id: "model-tabs", role: "tablist", hidden: true });
  ui.legend = h("div", { class: "heat-legend", id: "heat-legend", hidden: true });
  ui.props = h("div", { id: "props" }, h("p", { class: "muted small" }, "点击图中的元素查看和修改属性。"));
  ui.findings = h("div", { id: "findings" }, h("p", { class: "muted small" }, "点击“校验”检查流程：泳道对应部门、表单、脚本、定时器、分支条件等。"));
  ui.stats = h("div", { id: "stats" }, h("p", { class: "muted small" }, "点击“热力图”查看各环节在办、超期件数和办理时长。"));
  ui.importFile = h("input", { type: "file", id: "import-file", accept: ".bpmn,.xml,application/xml,text/xml",
    class: "sr-only", onchange: () => importFile(ui.importFile.files[0]) });
  const layout = h("div", { class: "designer-layout" },
    h("aside", { class: "sidebar" },
      h("h2", { class: "side-title" }, "流程"), ui.processList,
      h("div", { class: "side-actions" }, h("label", { class: "btn btn-ghost btn-small btn-block", for: "import-file" },
        "导入 BPMN 文件"), ui.importFile),
      h("h2", { class: "side-title" }, "版本"), ui.versionList),
    h("section", { class: "workspace" },
      h("div", { class: "toolbar" }, h("div", { class: "toolbar-title" }, ui.title, ui.dirty),
        h("div", { class: "toolbar-actions" }, ui.fit, ui.validate, ui.heatToggle, ui.download, ui.deploy)),
      ui.tabs,
      h("div", { class: "canvas-wrap" }, ui.canvas, ui.dmnCanvas, ui.legend)),
    h("aside", { class: "panel" },
      card("元素属性", ui.props), card("校验结果", ui.findings), card("运行数据", ui.stats)));
  show(layout);
  state.modeler = new BpmnModeler({ container: ui.canvas, additionalModules: [translateModule] });
  window.govflowDesigner = state; // for the browser tests and the console
  const bus = state.modeler.get("eventBus");
  bus.on("commandStack.changed", () => {
    state.dirty = true;
    state.bpmnChanged = true;
    ui.dirty.hidden = false;
  });
  bus.on("selection.changed", ({ newSelection }) => renderProps(newSelection[0]));
  bus.on("element.changed", ({ element }) => {
    const selected = state.modeler.get("selection").get()[0];
    if (selected && selected.id === element.id) renderProps(selected);
  });
}

async function loadProcesses() {
  const body = await api.get("/designer/processes");
  state.processes = itemsOf(body);
  renderProcessList();
}

function renderProcessList() {
  const current = state.current?.processId;
  ui.processList.replaceChildren(...(state.processes.length ? state.processes.map((p) => {
    const id = processIdOf(p);
    const latest = p.latest_version;
    return h("li", {},
      h("a", { href: `#/processes/${encodeURIComponent(id)}`, class: `process-item${id === current ? " active" : ""}`,
        dataset: { processId: id }, "aria-current": id === current ? "page" : null },
      h("span", { class: "process-name" }, p.name || id),
      h("span", { class: "process-meta" }, h("span", { class: "mono" }, id),
        latest ? h("span", { class: "tag tag-small" }, `v${latest}`) : null)));
  }) : [h("li", { class: "muted small" }, "还没有已发布的流程")]));
}

function renderVersions() {
  const { processId, version } = state.current || {};
  ui.versionList.replaceChildren(...state.versions.map((v, index) => {
    const n = versionOf(v);
    return h("li", {},
      h("a", { href: `#/processes/${encodeURIComponent(processId)}/versions/${n}`,
        class: `version-item${n === version ? " active" : ""}`, dataset: { version: n } },
      h("span", { class: "version-no" }, `第 ${n} 版`, index === 0 ? h("span", { class: "tag tag-small tag-green" }, "最新") : null),
      h("span", { class: "version-meta small muted" },
        [formatTime(v.created_at), v.deployed_by].filter(Boolean).join(" · ")),
      v.content_hash ? h("span", { class: "version-hash mono small muted", title: v.content_hash }, v.content_hash.slice(0, 12)) : null));
  }));
}

async function openVersion(processId, version) {
  const body = await api.get(`/designer/processes/${encodeURIComponent(processId)}/versions`);
  state.versions = itemsOf(body).slice().sort((a, b) => versionOf(b) - versionOf(a));
  if (!state.versions.length) throw new ApiError(404, "not_found", "该流程没有版本");
  const wanted = version && state.versions.some((v) => versionOf(v) === version) ? version : versionOf(state.versions[0]);
  let xml = await api.getText(`/designer/processes/${encodeURIComponent(processId)}/versions/${wanted}/bpmn`);
  if (!hasDiagram(xml)) xml = await addDiagram(xml, state.modeler.get("moddle")); // the API adds one; just in case
  const { warnings } = await state.modeler.importXML(xml);
  if (warnings?.length) console.warn("bpmn-js import warnings", warnings);
  const info = state.processes.find((p) => processIdOf(p) === processId) || {};
  state.current = { processId, version: wanted, name: info.name || processId };
  state.dirty = false;
  state.bpmnChanged = false;
  ui.dirty.hidden = true;
  resetDmn(state.versions.find((v) => versionOf(v) === wanted)?.files || []);
  state.findings = { errors: [], warnings: [] };
  state.heat = null;
  ui.heatToggle.setAttribute("aria-pressed", "false");
  ui.legend.hidden = true;
  fitDiagram();
  ui.title.textContent = `${state.current.name} · 第 ${wanted} 版`;
  document.title = `${state.current.name} · 流程设计器`;
  for (const button of [ui.fit, ui.validate, ui.deploy, ui.heatToggle, ui.download]) button.disabled = false;
  renderProcessList();
  renderVersions();
  renderFindings();
  ui.stats.replaceChildren(h("p", { class: "muted small" }, "点击“热力图”查看各环节在办、超期件数和办理时长。"));
  renderProps(null);
  document.body.dataset.loaded = `${processId}@${wanted}`;
}

/**
 * Show the whole diagram beside the palette when that keeps it at ``minScale`` or larger (never
 * above 100 %), else its start at ``minScale``.
 */
function fitDiagram(minScale = 0.75) {
  const canvas = state.modeler.get("canvas");
  canvas.zoom("fit-viewport");
  const { inner, outer } = canvas.viewbox();
  if (!inner.width || !outer.width) return;
  const PALETTE = 80;
  const fit = Math.min(1, (outer.width - PALETTE - 30) / inner.width, (outer.height - 60) / inner.height);
  const scale = Math.max(minScale, fit);
  const top = scale === fit ? (outer.height / scale - inner.height) / 2 : 30 / scale;
  canvas.viewbox({ x: inner.x - PALETTE / scale, y: inner.y - top, width: outer.width / scale, height: outer.height / scale });
}

/** A BPMN file from disk (e.g. drawn elsewhere, maybe without a diagram): opened unsaved, deployable as its process. */
async function importFile(file) {
  if (!file) return;
  if (state.dirty && !window.confirm("当前修改尚未发布，确定要打开其他文件吗？")) return;
  try {
    let xml = await file.text();
    if (!hasDiagram(xml)) xml = await addDiagram(xml, state.modeler.get("moddle"));
    await state.modeler.importXML(xml);
  } catch {
    toast("无法读取该文件：请选择 BPMN 2.0 XML 文件");
    return;
  } finally {
    ui.importFile.value = "";
  }
  const definitions = state.modeler.getDefinitions();
  const process = definitions.rootElements.find((e) => e.$type === "bpmn:Process" && e.isExecutable)
    || definitions.rootElements.find((e) => e.$type === "bpmn:Process");
  const processId = process?.id || "";
  state.current = { processId, version: null, name: process?.name || processId, imported: true };
  state.versions = [];
  state.dirty = true;
  state.bpmnChanged = true;
  resetDmn([]);
  ui.dirty.hidden = false;
  state.findings = { errors: [], warnings: [] };
  state.heat = null;
  ui.legend.hidden = true;
  ui.title.textContent = `${state.current.name}（导入的文件，未发布）`;
  for (const button of [ui.fit, ui.validate, ui.deploy, ui.download]) button.disabled = false;
  ui.heatToggle.disabled = true;
  renderProcessList();
  renderVersions();
  renderFindings();
  renderProps(null);
  fitDiagram();
  document.body.dataset.loaded = `${processId}@imported`;
}

// ------------------------------------------------------------------ DMN tables (dmn-js)

/** The version's DMN files become tabs beside 流程图; their XML is fetched when a tab opens. */
function resetDmn(files) {
  state.dmn.files = Object.fromEntries(files.filter((n) => n.endsWith(".dmn")).map((n) => [n, { xml: null, edited: null, changed: false }]));
  state.dmn.loaded = null;
  showTab("bpmn");
}

function renderTabs() {
  const names = Object.keys(state.dmn.files);
  ui.tabs.hidden = !names.length;
  const tab = (key, label) => {
    const active = state.dmn.tab === key;
    return h("button", { type: "button", role: "tab", class: `model-tab${active ? " active" : ""}`,
      "aria-selected": active ? "true" : "false", dataset: { tab: key }, onclick: () => showTab(key) }, label,
    key !== "bpmn" && state.dmn.files[key].changed ? h("span", { class: "tag tag-small tag-orange" }, "已修改") : null);
  };
  ui.tabs.replaceChildren(tab("bpmn", "流程图"), ...names.map((n) => tab(n, `决策表 ${n}`)));
}

function dmnModeler() {
  if (state.dmn.modeler) return state.dmn.modeler;
  const zh = { additionalModules: [translateModule] }; // per view: dmn-js replaces `common.additionalModules`
  const modeler = new DmnModeler({ container: ui.dmnCanvas, drd: zh, decisionTable: zh, literalExpression: zh });
  const watched = new WeakSet();
  modeler.on("views.changed", () => {
    const viewer = modeler.getActiveViewer();
    if (!viewer || watched.has(viewer)) return;
    watched.add(viewer);
    viewer.get("eventBus").on("elements.changed", () => {
      const entry = state.dmn.files[state.dmn.loaded];
      if (state.dmn.importing || !entry) return;
      entry.changed = true;
      state.dirty = true;
      ui.dirty.hidden = false;
      renderTabs();
    });
  });
  state.dmn.modeler = modeler;
  return modeler;
}

/** Keep the XML of the table on screen when it was edited (before another one replaces it or a deploy). */
async function keepDmnEdits() {
  const entry = state.dmn.files[state.dmn.loaded];
  if (entry?.changed) entry.edited = (await state.dmn.modeler.saveXML({ format: true })).xml;
}

async function showTab(key) {
  if (key !== "bpmn") {
    const entry = state.dmn.files[key];
    try {
      const modeler = dmnModeler();
      if (state.dmn.loaded !== key) {
        await keepDmnEdits();
        const { processId, version } = state.current;
        if (entry.xml === null) {
          entry.xml = await api.getText(`/designer/processes/${encodeURIComponent(processId)}/versions/${version}`
            + `/file?name=${encodeURIComponent(key)}`);
        }
        state.dmn.importing = true;
        ui.dmnCanvas.hidden = false;
        try {
          await modeler.importXML(entry.edited ?? entry.xml);
          const table = modeler.getViews().find((v) => v.type === "decisionTable");
          if (table) await modeler.open(table);
        } finally {
          state.dmn.importing = false;
        }
        state.dmn.loaded = key;
      }
    } catch (exc) {
      toast(errorText(exc));
      return;
    }
  }
  state.dmn.tab = key;
  ui.canvas.hidden = key !== "bpmn";
  ui.dmnCanvas.hidden = key === "bpmn";
  ui.legend.hidden = key !== "bpmn" || !state.heat;
  if (key === "bpmn") state.modeler.get("canvas").resized();
  renderTabs();
}

/** The edited DMN files: name -> XML. */
async function dmnEdits() {
  await keepDmnEdits();
  return Object.fromEntries(Object.entries(state.dmn.files).filter(([, e]) => e.changed && e.edited).map(([n, e]) => [n, e.edited]));
}

// ------------------------------------------------------------------ properties (lanes → departments)

async function departments() {
  if (state.departments) return state.departments;
  try {
    state.departments = itemsOf(await api.get("/designer/departments"));
  } catch {
    state.departments = [];
  }
  return state.departments;
}

function renderProps(element) {
  if (!element || !state.modeler) {
    ui.props.replaceChildren(h("p", { class: "muted small" }, "点击图中的元素查看和修改属性。"));
    return;
  }
  const bo = element.businessObject;
  const modeling = state.modeler.get("modeling");
  const nameId = uid("p");
  const name = h("input", { id: nameId, class: "input input-small", value: bo.name || "", name: "name" });
  name.addEventListener("change", () => modeling.updateLabel(element, name.value.trim() || null));
  const rows = [
    h("div", { class: "prop-row" }, h("span", { class: "prop-key" }, "类型"), h("span", {}, TYPE_LABELS[bo.$type] || bo.$type)),
    h("div", { class: "prop-row" }, h("span", { class: "prop-key" }, "标识"), h("span", { class: "mono" }, bo.id)),
    h("div", { class: "field" }, h("label", { class: "field-label", for: nameId }, "名称"), name),
  ];
  if (bo.$type === "bpmn:Lane") {
    const selectId = uid("p");
    const select = h("select", { id: selectId, class: "input input-small", name: "department" },
      h("option", { value: "" }, "请选择部门"));
    rows.push(h("div", { class: "field" }, h("label", { class: "field-label", for: selectId }, "办理部门"), select,
      h("p", { class: "muted small" }, "泳道名称须为已登记的部门（代码或中文名），人工任务由该部门办理。")));
    departments().then((list) => {
      for (const d of list) {
        const selected = bo.name === d.code || bo.name === d.name;
        select.append(h("option", { value: d.code, selected }, `${d.name}（${d.code}）`));
      }
      if (!list.length) select.append(h("option", { value: "", disabled: true }, "部门列表不可用"));
    });
    select.addEventListener("change", () => {
      const d = (state.departments || []).find((x) => x.code === select.value);
      if (d) modeling.updateLabel(element, d.name);
    });
  }
  const lane = laneOf(element);
  if (lane) {
    const dept = (state.departments || []).find((d) => d.code === lane.name || d.name === lane.name);
    rows.push(h("div", { class: "prop-row" }, h("span", { class: "prop-key" }, "办理部门"),
      h("span", { id: "prop-lane" }, dept ? `${dept.name}（${dept.code}）` : lane.name || lane.id)));
  }
  rows.push(...assignmentRows(bo));
  const found = [...state.findings.errors.map((f) => ["error", f]), ...state.findings.warnings.map((f) => ["warning", f])]
    .filter(([, f]) => elementIdOf(f) === bo.id);
  for (const [kind, f] of found) rows.push(h("p", { class: `finding finding-${kind}` }, f.message));
  const heat = state.heat?.byId.get(bo.id);
  if (heat) rows.push(h("p", { class: "small" }, `在办 ${heat.waiting ?? 0} 件 · 超期 ${heat.overdue ?? 0} 件`));
  ui.props.replaceChildren(...rows);
}

function laneOf(element) {
  const registry = state.modeler.get("elementRegistry");
  const lanes = registry.filter((e) => e.type === "bpmn:Lane");
  return lanes.map((l) => l.businessObject).find((l) => (l.flowNodeRef || []).includes(element.businessObject));
}

// ------------------------------------------------------------------ validate / deploy

const elementIdOf = (f) => f.element_id ?? null;

async function exportXml() {
  const editing = state.modeler.get("directEditing");
  if (editing.isActive()) editing.complete(); // a name still being typed on the canvas belongs to the export
  const { xml } = await state.modeler.saveXML({ format: true });
  return xml;
}

function markFindings() {
  const canvas = state.modeler.get("canvas");
  const overlays = state.modeler.get("overlays");
  const registry = state.modeler.get("elementRegistry");
  overlays.remove({ type: "finding" });
  registry.forEach((e) => {
    canvas.removeMarker(e, "gf-error");
    canvas.removeMarker(e, "gf-warning");
  });
  const marked = new Map();
  for (const [kind, list] of [["error", state.findings.errors], ["warning", state.findings.warnings]]) {
    for (const f of list) {
      const id = elementIdOf(f);
      const el = id && registry.get(id);
      if (!el) continue;
      canvas.addMarker(el, `gf-${kind}`);
      const entry = marked.get(id) || { kind, messages: [] };
      if (kind === "error") entry.kind = "error";
      entry.messages.push(f.message);
      marked.set(id, entry);
    }
  }
  for (const [id, { kind, messages }] of marked) {
    const el = registry.get(id);
    if (el.waypoints) continue; // flows: the marker colours the line
    overlays.add(el, "finding", { position: { top: -10, left: -10 }, scale: { min: 1 },
      html: `<span class="finding-badge finding-badge-${kind}" title="${escapeHtml(messages.join("\n"))}">${kind === "error" ? "!" : "?"}</span>` });
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function renderFindings(result) {
  const { errors, warnings } = state.findings;
  if (!result) {
    ui.findings.replaceChildren(h("p", { class: "muted small" }, "点击“校验”检查流程：泳道对应部门、表单、脚本、定时器、分支条件等。"));
    return;
  }
  const registry = state.modeler.get("elementRegistry");
  const item = (kind, f) => {
    const id = elementIdOf(f);
    const el = id && registry.get(id);
    const label = el ? (el.businessObject.name || id) : id;
    return h("li", { class: `finding finding-${kind}`, dataset: { elementId: id || "" } },
      label ? h("button", { type: "button", class: "finding-target", onclick: () => focusElement(id) }, label) : null,
      h("span", {}, f.message), f.line ? h("span", { class: "muted small" }, ` （第 ${f.line} 行）`) : null);
  };
  ui.findings.replaceChildren(
    h("p", { class: `alert ${errors.length ? "alert-error" : "alert-success"}`, id: "validate-summary" },
      errors.length ? `发现 ${errors.length} 个错误，${warnings.length} 个提醒` : `校验通过${warnings.length ? `，${warnings.length} 个提醒` : ""}`),
    h("ul", { class: "finding-list" }, errors.map((f) => item("error", f)), warnings.map((f) => item("warning", f))));
}

function focusElement(id) {
  const registry = state.modeler.get("elementRegistry");
  const el = registry.get(id);
  if (!el) return;
  state.modeler.get("selection").select(el);
  state.modeler.get("canvas").scrollToElement(el);
}

async function validate() {
  ui.validate.disabled = true;
  try {
    const result = await api.postXml("/designer/validate", await exportXml());
    for (const [name, xml] of Object.entries(await dmnEdits())) {
      const table = await api.postXml("/designer/validate", xml);
      const tagged = (list) => (list || []).map((f) => ({ ...f, message: `${name}：${f.message}` }));
      result.errors = [...(result.errors || []), ...tagged(table.errors)];
      result.warnings = [...(result.warnings || []), ...tagged(table.warnings)];
      result.valid = result.valid && table.valid;
    }
    state.findings = { errors: result.errors || [], warnings: result.warnings || [] };
    markFindings();
    renderFindings(result);
    toast(result.valid ? "校验通过" : `校验未通过：${state.findings.errors.length} 个错误`);
    return result;
  } catch (exc) {
    toast(errorText(exc));
    return null;
  } finally {
    ui.validate.disabled = false;
  }
}

async function deploy() {
  ui.deploy.disabled = true;
  try {
    const result = await validate();
    if (!result) return;
    if (!result.valid) {
      toast("请先修正校验错误再发布");
      return;
    }
    const edits = await dmnEdits();
    let body;
    if (Object.keys(edits).length && !state.current.imported) {
      // changed tables go as files; the BPMN only when it was edited too (else the stored one is kept)
      body = await api.post("/designer/processes", { process_id: state.current.processId, files: edits,
        ...(state.bpmnChanged ? { bpmn: await exportXml() } : {}) });
    } else {
      body = await api.postXml("/designer/processes", await exportXml());
    }
    const processId = body.process_id;
    toast(body.created ? `已发布 ${processId} 第 ${body.version} 版` : `内容未变化，仍为第 ${body.version} 版`);
    await loadProcesses();
    state.current = null; // reload even when the route stays the same
    state.dirty = false; // what was edited is now that version
    routeTo(processId, body.version);
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 422 && Object.keys(exc.fields).length) {
      // refused by the server's lint: its fields name the elements (or files) at fault
      state.findings = { errors: Object.entries(exc.fields).map(([id, message]) => ({ element_id: id, message })),
        warnings: [] };
      markFindings();
      renderFindings({ valid: false });
      toast(exc.message);
    } else {
      toast(errorText(exc));
    }
  } finally {
    ui.deploy.disabled = false;
  }
}

function download() {
  exportXml().then((xml) => {
    const url = URL.createObjectURL(new Blob([xml], { type: "application/xml" }));
    const a = h("a", { href: url, download: `${state.current.processId}.bpmn` });
    document.body.append(a);
    a.click();
    a.remove();
    URL.revokeObjectURL(url);
  });
}

// ------------------------------------------------------------------ heat-map

async function toggleHeat() {
  if (state.heat) {
    clearHeat(state.modeler);
    state.heat = null;
    ui.heatToggle.setAttribute("aria-pressed", "false");
    ui.legend.hidden = true;
    return;
  }
  ui.heatToggle.disabled = true;
  try {
    const { processId } = state.current;
    const stats = await api.get(`/designer/processes/${encodeURIComponent(processId)}/stats`);
    state.heat = applyHeat(state.modeler, stats);
    ui.heatToggle.setAttribute("aria-pressed", "true");
    ui.legend.replaceChildren(heatLegend(state.heat));
    ui.legend.hidden = false;
    ui.stats.replaceChildren(statsTable(state.heat, state.modeler, focusElement));
  } catch (exc) {
    toast(errorText(exc));
  } finally {
    ui.heatToggle.disabled = false;
  }
}

// ------------------------------------------------------------------ router

async function route() {
  if (!session.loggedIn()) {
    loginView();
    return;
  }
  setWho();
  if (!state.modeler) {
    buildWorkspace();
    try {
      await Promise.all([loadProcesses(), departments()]);
    } catch (exc) {
      toast(errorText(exc));
      return;
    }
  }
  const { processId, version } = parseHash();
  const target = processId || (state.processes[0] && processIdOf(state.processes[0]));
  if (!target) return;
  if (state.current && state.current.processId === target && (!version || state.current.version === version)) return;
  if (state.dirty && !window.confirm("当前修改尚未发布，确定要离开吗？")) return;
  state.loading += 1;
  document.body.dataset.busy = "1";
  try {
    await openVersion(target, version);
  } catch (exc) {
    toast(errorText(exc));
  } finally {
    state.loading -= 1;
    if (!state.loading) delete document.body.dataset.busy;
  }
}

onUnauthorized(() => loginView("登录已失效，请重新登录"));
document.getElementById("logout").addEventListener("click", () => {
  session.clear();
  state.current = null;
  setWho();
  loginView("已退出登录");
});
window.addEventListener("hashchange", route);
route();
