// 统计 — service statistics for supervisors and administrators (GET /api/v1/stats/services): the
// period and department, headline figures, charts drawn with ECharts (bundled from npm by
// web/designer/build.mjs into ./build/charts.js): daily volumes, on-time rate by service, 好差评 by
// service and by department; the table of every service, CSV / Excel export, and the overdue cases
// with links to their open task. Route: #/stats?from=YYYY-MM-DD&to=YYYY-MM-DD&department=code.

import { api, session } from "./api.js";
import { errorText, section, toast } from "./ui.js";
import { formatTime, h } from "/shared/static/dom.js";

export const STATS_ROLES = ["supervisor", "admin"];
const LEVELS = ["非常满意", "满意", "基本满意", "不满意", "非常不满意"];
const LEVEL_COLORS = ["#1a7f37", "#5cb85c", "#9aa5b1", "#e6a23c", "#c42b1c"];
const charts = [];

export function canSeeStats() {
  return (session.get()?.staff?.roles || []).some((r) => STATS_ROLES.includes(r));
}

function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
}

function days(value) {
  return value === null || value === undefined ? "—" : value.toFixed(2);
}

function query(params) {
  const q = new URLSearchParams();
  for (const key of ["from", "to", "department"]) if (params[key]) q.set(key, params[key]);
  return q.toString();
}

async function download(params, format) {
  const q = new URLSearchParams(query(params));
  q.set("format", format);
  const token = session.get()?.access_token;
  const response = await fetch(`/api/v1/stats/services?${q}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error("export failed");
  const blob = await response.blob();
  const link = h("a", { href: URL.createObjectURL(blob), download: `事项统计-${params.from || ""}-${params.to || ""}.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function figure(label, value, tone = "") {
  return h("div", { class: `stat-figure ${tone}` }, h("span", { class: "stat-label" }, label),
    h("strong", { class: "stat-value", dataset: { figure: label } }, String(value)));
}

function chartBox(title, id) {
  return h("section", { class: "card stat-chart" }, h("h2", { class: "card-title" }, title),
    h("div", { class: "chart", id, role: "img", "aria-label": title }));
}

function ratingSeries(rows) {
  return LEVELS.map((level, i) => ({ name: level, type: "bar", stack: "rating", color: LEVEL_COLORS[i],
    data: rows.map((r) => r.ratings[level] || 0) }));
}

function byDepartment(items) {
  const out = new Map();
  for (const item of items) {
    const row = out.get(item.department) || { name: item.department_name, ratings: Object.fromEntries(LEVELS.map((l) => [l, 0])) };
    for (const level of LEVELS) row.ratings[level] += item.ratings[level] || 0;
    out.set(item.department, row);
  }
  return [...out.values()];
}

async function drawCharts(body) {
  const echarts = await import("./build/charts.js");
  for (const chart of charts.splice(0)) chart.dispose();
  const draw = (id, option) => {
    const el = document.getElementById(id);
    if (!el) return;
    const chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({ animation: false, textStyle: { fontFamily: "Noto Sans CJK SC, PingFang SC, sans-serif" }, ...option });
    charts.push(chart);
  };
  const grid = { left: 48, right: 16, top: 40, bottom: 56 };
  draw("chart-volume", {
    tooltip: { trigger: "axis" }, legend: { top: 0 }, grid,
    xAxis: { type: "category", data: body.series.map((d) => d.date.slice(5)) }, yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: "受理量", type: "line", color: "#1557b0", data: body.series.map((d) => d.received) },
      { name: "办结量", type: "line", color: "#1a7f37", data: body.series.map((d) => d.completed) },
    ],
  });
  const active = body.items.filter((i) => i.received > 0);
  draw("chart-ontime", {
    tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "—" : `${v}%`) }, grid,
    xAxis: { type: "category", data: active.map((i) => i.service_name), axisLabel: { interval: 0, rotate: 20 } },
    yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
    series: [{ name: "按时办结率", type: "bar", color: "#1557b0", barMaxWidth: 36,
      data: active.map((i) => (i.on_time_rate === null ? null : Math.round(i.on_time_rate * 1000) / 10)) }],
  });
  draw("chart-rating-service", {
    tooltip: { trigger: "axis" }, legend: { top: 0 }, grid,
    xAxis: { type: "category", data: active.map((i) => i.service_name), axisLabel: { interval: 0, rotate: 20 } },
    yAxis: { type: "value", minInterval: 1 }, series: ratingSeries(active),
  });
  const departments = byDepartment(active);
  draw("chart-rating-department", {
    tooltip: { trigger: "axis" }, legend: { top: 0 }, grid,
    xAxis: { type: "category", data: departments.map((d) => d.name) },
    yAxis: { type: "value", minInterval: 1 }, series: ratingSeries(departments),
  });
}

function itemsTable(items) {
  const head = ["事项", "部门", "受理", "办结", "在办", "秒批", "不予许可", "按时", "超期", "按时办结率", "平均用时（工作日）",
    "90%用时", "补正", "差评率"];
  return h("div", { class: "table-wrap" }, h("table", { class: "table stats-table" },
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((i) => h("tr", { dataset: { service: i.service } },
      h("th", { scope: "row" }, i.service_name), h("td", {}, i.department_name),
      [i.received, i.completed, i.in_progress, i.auto_decided, i.refused, i.on_time, i.overdue]
        .map((n) => h("td", { class: "num" }, String(n))),
      h("td", { class: "num" }, percent(i.on_time_rate)), h("td", { class: "num" }, days(i.avg_working_days)),
      h("td", { class: "num" }, days(i.p90_working_days)), h("td", { class: "num" }, String(i.supplements)),
      h("td", { class: "num" }, percent(i.bad_rating_rate)))))));
}

function overdueList(cases) {
  if (!cases.length) return h("p", { class: "muted" }, "本期没有超期在办的办件");
  return h("ul", { class: "list overdue-list", "aria-label": "超期在办办件" }, cases.map((c) =>
    h("li", { class: "list-item", dataset: { caseNo: c.case_no } },
      h("div", { class: "item-main" },
        c.task_id ? h("a", { href: `#/tasks/${encodeURIComponent(c.task_id)}`, class: "item-title" }, c.case_no)
          : h("span", { class: "item-title" }, c.case_no),
        h("span", { class: "muted" }, ` ${c.service_name}${c.task_name ? ` · ${c.task_name}` : ""}`)),
      h("span", { class: "badge badge-red" }, `超期 ${c.overdue_days} 天`),
      h("span", { class: "muted" }, `时限 ${formatTime(c.due_at)}`))));
}

function filters(params, body) {
  const staff = session.get()?.staff || {};
  const admin = (staff.roles || []).includes("admin");
  const known = new Map(body.items.map((i) => [i.department, i.department_name]));
  const codes = admin ? [...known.keys()] : staff.departments || [];
  const from = h("input", { type: "date", class: "input", name: "from", value: body.from, "aria-label": "开始日期" });
  const to = h("input", { type: "date", class: "input", name: "to", value: body.to, "aria-label": "结束日期" });
  const department = h("select", { class: "input", name: "department", "aria-label": "部门" },
    h("option", { value: "" }, admin ? "全部部门" : "本部门全部"),
    codes.map((code) => h("option", { value: code, selected: code === params.department }, known.get(code) || code)));
  const form = h("form", { class: "stats-filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/stats?${query({ from: from.value, to: to.value, department: department.value })}`;
  } },
  h("label", { class: "filter" }, "受理日期 ", from, " 至 ", to), h("label", { class: "filter" }, "部门 ", department),
  h("button", { type: "submit", class: "btn btn-primary btn-small" }, "查询"),
  h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => download({ ...params, from: body.from, to: body.to }, "csv")
    .catch(() => toast("导出失败，请稍后重试")) }, "导出 CSV"),
  h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => download({ ...params, from: body.from, to: body.to }, "xlsx")
    .catch(() => toast("导出失败，请稍后重试")) }, "导出 Excel"));
  return form;
}

/** Render the page into ``show``; ``isCurrent()`` is false once the user navigated away. */
export async function statsView(params, { show, isCurrent }) {
  document.title = "统计 · 工作台";
  let body;
  try {
    body = await api.get(`/stats/services?${query(params)}`);
  } catch (exc) {
    if (isCurrent()) show(h("section", { class: "card" }, h("p", { class: "alert alert-error" }, errorText(exc))));
    return;
  }
  if (!isCurrent()) return;
  const t = body.totals;
  show(
    h("div", { class: "page-head" }, h("h1", { class: "page-title" }, "事项统计"),
      h("p", { class: "muted" }, `${body.from} 至 ${body.to} 受理的办件（北京时间）`)),
    filters(params, body),
    h("section", { class: "stat-figures", "aria-label": "汇总" },
      figure("受理量", t.received), figure("办结量", t.completed), figure("在办量", t.in_progress),
      figure("秒批量", t.auto_decided), figure("按时办结率", percent(t.on_time_rate), "good"),
      figure("超期", t.overdue, t.overdue ? "bad" : ""), figure("差评率", percent(t.bad_rating_rate))),
    h("div", { class: "stat-grid" },
      chartBox("每日受理与办结", "chart-volume"), chartBox("按时办结率（按事项）", "chart-ontime"),
      chartBox("好差评（按事项）", "chart-rating-service"), chartBox("好差评（按部门）", "chart-rating-department")),
    section("各事项明细", itemsTable(body.items)),
    section(`超期在办（${body.overdue_cases.length}）`, overdueList(body.overdue_cases)));
  await drawCharts(body);
}
