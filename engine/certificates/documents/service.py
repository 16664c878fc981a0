"""The documents with legal force, as signed PDFs:

    certificate   电子证照          identifier, holder, validity, issuer, a verification QR (long-lived token)
    receipt       受理回执          every case: number, service, applicant, received, promised completion
    supplement    补正告知书        a case asked to supplement: the listed items and the deadline
    refusal       不予许可决定书    a case refused: reason, legal basis, how to appeal

Each is laid out by ``engine.certificates.documents.render`` and PAdES-signed with the key of the department
that issues it (the service's department; ``engine.certificates.documents.keys``). Who may fetch which is the
caller's business (``mobile_api.api.documents``): the holder or applicant, the case's officers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from engine.accountability.audit import log_data_access
from engine.accountability.privacy import blind_index
from engine.certificates.documents import render
from engine.certificates.documents.keys import DocumentKeys
from engine.certificates.qr import qr_png
from engine.certificates.signing import MAX_QR_LIFETIME_S, CertState, Signer, effective_state, make_qr_token
from engine.certificates.store import Certificate
from engine.errors import NotFound
from engine.kernel.cases import CaseEngine, current_data
from engine.kernel.sla import CST
from engine.store.models import Case, CaseEvent, HumanTask

KINDS = {"receipt": "受理回执", "supplement": "补正告知书", "refusal": "不予许可决定书"}
SUPPLEMENT_WORKING_DAYS = 10  # the deadline printed on a 补正告知书 (working days from its date)
# a printed QR outlives the 180 s screen token, up to the longest lifetime a QR token may have (7 days);
# /verify still answers with the register's current state
QR_PAPER_TTL_S = MAX_QR_LIFETIME_S
APPEAL = ("如不服本决定，可以自收到本决定书之日起六十日内依法申请行政复议，"
          "或者自收到本决定书之日起六个月内依法向人民法院提起行政诉讼。")
CHANNELS = {"mobile": "移动端", "window": "政务服务中心窗口", "web": "网上办事大厅"}


class DocumentNotFound(NotFound):
    code = "document_not_found"
    default_message = "该办件没有这份文书"


@dataclass(frozen=True)
class ServiceFacts:
    """What the catalogue says of a service (passed in; the engine's documents do not read YAML)."""

    name: str
    department: str
    legal_basis: tuple[str, ...] = ()
    promised: str = ""


def chinese_date(day: date | datetime) -> str:
    if isinstance(day, datetime):
        day = day.astimezone(CST).date()
    return f"{day.year}年{day.month}月{day.day}日"


def _time(moment: datetime | None) -> str:
    return moment.astimezone(CST).strftime("%Y年%m月%d日 %H:%M") if moment else "—"


async def _signed(doc: render.Document, keys: DocumentKeys, department: str, department_name: str,
                  reason: str) -> bytes:
    key = keys.for_department(department, department_name)

    def build() -> bytes:  # fpdf2 and pyHanko are CPU work: off the event loop
        return render.sign(render.render(doc), key, keys, reason=reason, location=department_name)
    return await asyncio.to_thread(build)


# ------------------------------------------------------------------ e-certificate

async def certificate_pdf(row: Certificate, *, keys: DocumentKeys, qr_signer: Signer, now: datetime,
                          services: dict[str, ServiceFacts], departments: dict[str, str]) -> bytes:
    state = effective_state(row, now.astimezone(CST).date())
    department = await _certificate_department(row, services)
    department_name = departments.get(department, row.issuer_name)
    lines = [("证照名称", row.name), ("证照编号", row.number), ("证照标识", row.identifier),
             ("持证人", row.holder_name), ("证件号码", row.holder_code_masked),
             ("有效期", f"{chinese_date(row.valid_from)} 至 {chinese_date(row.valid_to) if row.valid_to else '长期'}"),
             ("签发日期", chinese_date(row.issue_date)), ("颁证机构", row.issuer_name),
             ("证照状态", state.label)]
    qr = None
    if state is CertState.VALID:
        ttl = QR_PAPER_TTL_S
        if row.valid_to is not None:
            end = datetime.combine(row.valid_to + timedelta(days=1), datetime.min.time(), CST)
            ttl = max(60, min(ttl, int((end - now).total_seconds())))
        qr = qr_png(make_qr_token(row.identifier, state, row.issuer_code, row.issue_date, ttl, qr_signer, now=now))
    doc = render.Document(
        title=row.name, subtitle="电子证照（版式文件）", number=f"证照编号：{row.number}", issuer=row.issuer_name,
        issued_on=chinese_date(row.issue_date), lines=lines, qr_png=qr,
        qr_caption=f"扫码核验（{QR_PAPER_TTL_S // 86400}日内有效，以登记库当前状态为准）" if qr else "",
        paragraphs=["本证照由颁证机构依法签发，与纸质证照具有同等法律效力。核验时请扫描二维码，"
                    "或以证照标识向颁证机构查询。"])
    return await _signed(doc, keys, department, department_name, f"签发{row.name}")


async def _certificate_department(row: Certificate, services: dict[str, ServiceFacts]) -> str:
    if row.case_id is not None:
        case = await Case.get_or_none(id=row.case_id).values("service")
        if case and case["service"] in services:
            return services[case["service"]].department
    return f"issuer-{row.issuer_code}"


# ------------------------------------------------------------------ case documents

async def available(case: Case) -> list[dict[str, str]]:
    """The documents this case has now: 受理回执 always; 补正告知书 after a 补正 request;
    不予许可决定书 when it ended refused."""
    kinds = ["receipt"]
    if await CaseEvent.filter(case_id=case.id, kind="supplement_requested").exists():
        kinds.append("supplement")
    if case.status == "completed" and case.outcome == "rejected":
        kinds.append("refusal")
    return [{"kind": k, "title": KINDS[k]} for k in kinds]


async def find_case(case_id: int) -> Case | None:
    return await Case.get_or_none(id=case_id)


async def officer_may_read(case: Case, departments: list[str], roles: list[str]) -> bool:
    """Staff read a case's documents when one of their departments had a task on it (admins all)."""
    if "admin" in roles:
        return True
    return await HumanTask.filter(case_id=case.id, department__in=departments).exists()


async def case_pdf(engine: CaseEngine, case: Case, kind: str, *, keys: DocumentKeys, facts: ServiceFacts,
                   now: datetime, reader: tuple[str, str | None] | None = None, pii_key: bytes = b"") -> bytes:
    """The signed PDF of ``kind``; a staff ``reader`` (username, department) is access-logged, as the
    document shows the applicant's name."""
    if kind not in {d["kind"] for d in await available(case)}:
        raise DocumentNotFound()
    _, workflow, _ = await engine.load(case.id)
    data = current_data(workflow)
    applicant = data.get("applicant") if isinstance(data.get("applicant"), dict) else {}
    name = str(applicant.get("name") or applicant.get("name_masked") or "申请人")
    id_masked = str(applicant.get("id_masked") or "")
    department_name = engine.deps.departments.get(facts.department, facts.department)
    if reader is not None and applicant.get("id_number"):
        await log_data_access(None, subject_hash=blind_index(str(applicant["id_number"]), pii_key), dataset="办件文书",
                              purpose=f"查看{KINDS[kind]}", actor=reader[0], department=reader[1],
                              subject_masked=id_masked, fields_read=["name", "id_masked"], case_id=case.id,
                              case_no=case.case_no, now=now)
    base = [("办件编号", case.case_no), ("申请事项", facts.name), ("申请人", name), ("证件号码", id_masked)]
    builder = {"receipt": _receipt, "supplement": _supplement, "refusal": _refusal}[kind]
    doc = await builder(engine, case, data, base, facts, department_name, name, now)
    return await _signed(doc, keys, facts.department, department_name, f"出具{KINDS[kind]}")


async def _receipt(engine: CaseEngine, case: Case, data: dict[str, Any], base: list[tuple[str, str]],
                   facts: ServiceFacts, department_name: str, name: str, now: datetime) -> render.Document:
    lines = base + [("收件时间", _time(case.created_at)), ("受理渠道", CHANNELS.get(case.channel, case.channel)),
                    ("受理部门", department_name),
                    ("承诺时限", facts.promised or "—"),
                    ("预计办结", _time(case.due_at) if case.due_at else "即时办结" if case.completed_at else "—")]
    return render.Document(
        title=KINDS["receipt"], number=f"编号：{case.case_no}-HZ", issuer=department_name,
        issued_on=chinese_date(case.created_at), addressee=name, lines=lines,
        paragraphs=[f"你提交的「{facts.name}」申请已收到，办件编号 {case.case_no}。可凭办件编号在政务服务平台查询"
                    "办理进度；需要补正材料的，我们将一次性告知。"])


async def _supplement(engine: CaseEngine, case: Case, data: dict[str, Any], base: list[tuple[str, str]],
                      facts: ServiceFacts, department_name: str, name: str, now: datetime) -> render.Document:
    event = await CaseEvent.filter(case_id=case.id, kind="supplement_requested").order_by("-id").first()
    assert event is not None  # available() checked
    reason = str((event.detail or {}).get("opinion") or "") if isinstance(event.detail, dict) else ""
    items = [part.strip() for part in reason.replace("\n", "；").replace(";", "；").split("；") if part.strip()]
    deadline = engine.deps.calendar.due_after_working_days(event.created_at, SUPPLEMENT_WORKING_DAYS) - timedelta(
        seconds=1)
    lines = base + [("告知时间", _time(event.created_at)), ("办理环节", event.task_name or "—"),
                    ("补正期限", f"{chinese_date(deadline)}前")]
    return render.Document(
        title=KINDS["supplement"], number=f"编号：{case.case_no}-BZ{event.id}", issuer=department_name,
        issued_on=chinese_date(event.created_at), addressee=name, lines=lines,
        paragraphs=[f"你申请的「{facts.name}」（办件编号 {case.case_no}），经审查，申请材料不齐全或者不符合法定形式。"
                    "根据《中华人民共和国行政许可法》第三十二条，现一次性告知需要补正的全部内容如下："],
        items=items or ["（见经办人说明）"], items_title="需要补正的内容",
        keywords={"deadline": deadline})


async def _refusal(engine: CaseEngine, case: Case, data: dict[str, Any], base: list[tuple[str, str]],
                   facts: ServiceFacts, department_name: str, name: str, now: datetime) -> render.Document:
    summary = engine.deps.serializer.load_summary(case.summary) if case.summary else {}
    result = summary.get("result") or {}
    decision = summary.get("decision") or {}
    reason = str(result.get("reason") or decision.get("reason") or "不符合法定条件")
    decided = case.completed_at or now
    lines = base + [("申请时间", _time(case.created_at)), ("决定时间", _time(decided)),
                    ("决定方式", "系统依规则自动决定（秒批）" if case.decided_by == "auto" else "经审查决定")]
    return render.Document(
        title=KINDS["refusal"], number=f"编号：{case.case_no}-BY", issuer=department_name,
        issued_on=chinese_date(decided), addressee=name, lines=lines,
        paragraphs=[f"你申请的「{facts.name}」（办件编号 {case.case_no}），经审查，决定不予许可。理由：{reason}。",
                    APPEAL],
        items=list(facts.legal_basis) or ["《中华人民共和国行政许可法》第三十八条"], items_title="法律依据")


__all__ = ["KINDS", "DocumentNotFound", "ServiceFacts", "available", "case_pdf", "certificate_pdf",
           "chinese_date", "find_case", "officer_may_read"]
