// The heat-map (数据运营化 on the process itself): GET /designer/processes/{id}/stats gives per
// element the cases now waiting there, the overdue ones and the durations; the diagram's steps are
// coloured by how many cases wait (or red when some are overdue), with a count badge and a legend.

import { h } from "/shared/static/dom.js";

export const LEVELS = [
  ["gf-heat-1", "#fff3c4", "少量在办"],
  ["gf-heat-2", "#ffd27a", "较多在办"],
  ["gf-heat-3", "#ff9f43", "积压"],
];
const OVERDUE = ["gf-heat-overdue", "#f8a5a0", "有超期件"];
const MARKERS = [...LEVELS.map((l) => l[0]), OVERDUE[0]];

const idOf = (row) => row.element_id;

/** The answer's ``elements`` (element id -> figures) as rows. */
function rowsOf(stats) {
  return Object.entries(stats?.elements || {}).map(([id, row]) => ({ element_id: id, ...row }));
}

/** "1 天 3 小时" / "25 分钟" for a duration in seconds. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(Number(seconds));
  if (s < 60) return `${s} 秒`;
  if (s < 3600) return `${Math.round(s / 60)} 分钟`;
  if (s < 86400) return `${Math.floor(s / 3600)} 小时${Math.round((s % 3600) / 60) ? ` ${Math.round((s % 3600) / 60)} 分` : ""}`;
  return `${Math.floor(s / 86400)} 天${Math.round((s % 86400) / 3600) ? ` ${Math.round((s % 86400) / 3600)} 小时` : ""}`;
}

export function clearHeat(modeler) {
  const canvas = modeler.get("canvas");
  modeler.get("overlays").remove({ type: "heat" });
  modeler.get("elementRegistry").forEach((e) => MARKERS.forEach((m) => canvas.removeMarker(e, m)));
}

/** Colour the diagram from the stats answer; returns {rows, byId, max, stats} for the legend and table. */
export function applyHeat(modeler, stats) {
  clearHeat(modeler);
  const canvas = modeler.get("canvas");
  const overlays = modeler.get("overlays");
  const registry = modeler.get("elementRegistry");
  const rows = rowsOf(stats).filter((r) => idOf(r));
  const byId = new Map(rows.map((r) => [idOf(r), r]));
  const max = Math.max(0, ...rows.map((r) => Number(r.waiting) || 0));
  for (const row of rows) {
    const el = registry.get(idOf(row));
    if (!el || el.waypoints) continue;
    const waiting = Number(row.waiting) || 0;
    const overdue = Number(row.overdue) || 0;
    if (!waiting && !overdue) continue;
    let marker;
    if (overdue) marker = OVERDUE[0];
    else marker = LEVELS[Math.min(LEVELS.length - 1, Math.floor(((waiting - 1) / Math.max(max, 1)) * LEVELS.length))][0];
    canvas.addMarker(el, marker);
    const title = `在办 ${waiting} 件，超期 ${overdue} 件；平均 ${duration(row.avg_seconds)}，P90 ${duration(row.p90_seconds)}`;
    overlays.add(el, "heat", { position: { top: -12, right: 12 }, scale: { min: 1 },
      html: `<span class="heat-badge${overdue ? " heat-badge-overdue" : ""}" data-element-id="${el.id}" title="${title}">`
        + `${waiting}${overdue ? `<small>超期 ${overdue}</small>` : ""}</span>` });
  }
  return { rows, byId, max, stats };
}

export function heatLegend(heat) {
  const totalWaiting = heat.rows.reduce((n, r) => n + (Number(r.waiting) || 0), 0);
  const totalOverdue = heat.rows.reduce((n, r) => n + (Number(r.overdue) || 0), 0);
  return h("div", { class: "legend-inner" },
    h("strong", {}, "热力图"),
    h("span", { class: "small" }, `在办 ${totalWaiting} 件 · 超期 ${totalOverdue} 件`),
    h("ul", { class: "legend-list" }, [...LEVELS, OVERDUE].map(([, color, label]) =>
      h("li", {}, h("span", { class: "swatch", style: `background:${color}` }), label))),
    h("span", { class: "muted small" }, "数字为当前停留在该环节的办件数（统计该流程的全部版本）"));
}

export function statsTable(heat, modeler, focus) {
  const registry = modeler.get("elementRegistry");
  const rows = heat.rows.filter((r) => registry.get(idOf(r)) && !registry.get(idOf(r)).waypoints)
    .sort((a, b) => (Number(b.overdue) || 0) - (Number(a.overdue) || 0) || (Number(b.waiting) || 0) - (Number(a.waiting) || 0));
  if (!rows.length) return h("p", { class: "muted small" }, "统计时段内没有办件数据。");
  return h("table", { class: "stats-table", id: "stats-table" },
    h("thead", {}, h("tr", {}, ["环节", "在办", "超期", "完成", "平均", "P90"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => {
      const el = registry.get(idOf(r));
      return h("tr", { dataset: { elementId: idOf(r) } },
        h("td", {}, h("button", { type: "button", class: "finding-target", onclick: () => focus(idOf(r)) },
          el.businessObject.name || idOf(r))),
        h("td", { class: "num" }, String(r.waiting ?? 0)),
        h("td", { class: `num${Number(r.overdue) ? " text-red" : ""}` }, String(r.overdue ?? 0)),
        h("td", { class: "num" }, String(r.completed ?? 0)),
        h("td", { class: "num" }, duration(r.avg_seconds)),
        h("td", { class: "num" }, duration(r.p90_seconds)));
    })));
}
