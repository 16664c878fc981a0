"""Service statistics (统计) for supervisors and administrators (``engine.workbench.stats``):

    GET /stats/services?from=&to=&department=&format=json|csv|xlsx

Supervisors see the services of their own departments (another department → 403
``stats_department_forbidden``), administrators every department. CSV is UTF-8 with a BOM so Excel
opens it; XLSX has one sheet with the same columns.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json, raw
from sanic_ext.extensions.openapi import openapi

from engine.errors import ValidationFailed
from engine.kernel import CST
from engine.workbench import stats
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.staff_auth import staff_required

error_responses = error_documenter({
    401: "未登录、凭证无效或已过期", 403: "非督办人员或管理员，或查看外部门的统计", 422: "日期或格式参数无效",
    503: "依赖服务暂不可用"})
_INT, _STR = {"type": "integer"}, {"type": "string"}
_RATE = {"type": "number", "nullable": True}
ITEM_SCHEMA = _obj(*stats.COLUMNS, service=_STR, service_name=_STR, department=_STR, department_name=_STR,
                   received=_INT, completed=_INT, in_progress=_INT, auto_decided=_INT, refused=_INT,
                   on_time=_INT, overdue=_INT, on_time_rate=_RATE, avg_working_days=_RATE,
                   p90_working_days=_RATE, supplements=_INT,
                   ratings={"type": "object", "additionalProperties": _INT,
                            "description": "好差评各等级的数量（非常满意 … 非常不满意）"},
                   bad_rating_rate=_RATE)
STATS_SCHEMA = _obj(
    "from", "to", "items", "series", "overdue_cases", "totals",
    **{"from": _STR, "to": _STR}, items={"type": "array", "items": ITEM_SCHEMA},
    series={"type": "array", "description": "每日受理量与办结量（北京时间）",
            "items": _obj("date", "received", "completed", date=_STR, received=_INT, completed=_INT)},
    overdue_cases={"type": "array", "description": "超期在办的办件（最多 100 件，超期最久的在前）",
                   "items": _obj("case_id", "case_no", "service", "due_at", "overdue_days", case_id=_INT,
                                 case_no=_STR, service=_STR, service_name=_STR, department=_STR, created_at=_STR,
                                 due_at=_STR, overdue_days={"type": "number"},
                                 task_id={**_STR, "nullable": True}, task_name={**_STR, "nullable": True})},
    totals={"type": "object", "additionalProperties": True})
FORMATS = {"json", "csv", "xlsx"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def blueprint() -> Blueprint:
    bp = Blueprint("stats", url_prefix="/stats")

    @bp.get("/services")
    @openapi.summary("Service statistics / 事项统计")
    @openapi.description(
        "按受理日期统计各事项：受理量、办结量、在办量、秒批量、不予许可量、按时办结与超期、按时办结率、办理用时"
        "（工作日，平均与 90 分位）、补正次数、好差评各等级与差评率；另有每日受理/办结序列和超期在办清单。"
        "督办人员只能看本部门（department 缺省为全部本部门），管理员可看全部。format=csv 为带 BOM 的 UTF-8，"
        "format=xlsx 为 Excel 工作簿。")
    @openapi.parameter("from", str, "query", description="开始日期 YYYY-MM-DD（含），缺省为结束日期前 29 天")
    @openapi.parameter("to", str, "query", description="结束日期 YYYY-MM-DD（含），缺省为今天（北京时间）")
    @openapi.parameter("department", str, "query", description="部门编码")
    @openapi.parameter("format", str, "query", description="json | csv | xlsx")
    @openapi.response(200, {**json_content(STATS_SCHEMA), "text/csv": {"schema": {"type": "string"}},
                            XLSX: {"schema": {"type": "string", "format": "binary"}}}, "统计结果")
    @error_responses(401, 403, 422, 503)
    @staff_required(sorted(stats.STAT_ROLES))
    async def service_stats(request: Request) -> HTTPResponse:
        fmt = request.args.get("format") or "json"
        if fmt not in FORMATS:
            raise ValidationFailed("导出格式无效", fields={"format": "应为 json / csv / xlsx 之一"})
        department = request.args.get("department") or None
        if department is not None and len(department) > 32:
            raise ValidationFailed("部门编码无效", fields={"department": "部门编码过长"})
        engine = request.app.ctx.engine
        now = engine.deps.clock()
        start, end = stats.window(request.args.get("from"), request.args.get("to"), now.astimezone(CST).date())
        staff = request.ctx.staff
        departments = stats.visible_departments(list(staff.roles or []), list(staff.departments or []), department)
        services = {item.slug: stats.ServiceInfo(item.slug, item.name, item.department)
                    for item in request.app.ctx.catalog.items(include_platform=True)}
        result = await stats.service_stats(services, dict(engine.deps.departments), departments=departments,
                                           start=start, end=end, now=now, calendar=engine.deps.calendar)
        name = f"govflow-stats-{start.isoformat()}-{end.isoformat()}"
        if fmt == "csv":
            return raw(stats.to_csv(result["items"]), content_type="text/csv; charset=utf-8",
                       headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
        if fmt == "xlsx":
            return raw(stats.to_xlsx(result["items"], start, end), content_type=XLSX,
                       headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
        return json(result)

    return bp
