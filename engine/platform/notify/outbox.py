"""The transactional outbox: notification rows written in the transaction of the step that causes them.

``Outbox.on_step`` is a step hook (``EngineDeps.step_hooks``): the case engine calls it inside every
step's transaction (``CaseEngine.commit``, ``start_case``, timers) and writes that do not step a
workflow call it through ``CaseEngine.run_step_hooks`` (a 补正 request, an SLA job, a 催办). What it
writes commits or rolls back with the step: a rolled-back step notifies nobody.

Per step, a citizen's message centre gets one message per event (``application_received``,
``supplement_requested``, ``decision_made``, ``certificate_issued``, ``case_finished`` /
``case_refused``), but only the most significant of them (in the reverse of that order) goes out on
WeChat and SMS, its text carrying what the others say: a 秒批 approval is one 办结 subscribe message
naming the reason and the certificate, not three. Staff get
``task_assigned`` (a new task in a department they belong to), ``sla_warning`` / ``urged`` (the
officer holding the open task, else the department), ``sla_escalated`` (督办中心) and ``cc``
(named colleagues). Every message is in the recipient's message centre; a citizen's also gets a
``NotificationDelivery`` per outside channel that is on and has a template for the event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from engine.accountability.privacy import mask_text
from engine.bpmn.conventions import APPLICANT_LANES
from engine.kernel.cases import OPEN_TASK_STATES, StepWrite
from engine.kernel.sla import CST
from engine.kernel.summary import outcome_of
from engine.platform.notify.catalog import CITIZEN, STAFF, NotificationCatalog, fill
from engine.store.models import Case, Evaluation, HumanTask, StaffUser
from engine.store.notify_models import Notification, NotificationDelivery

log = logging.getLogger("govflow.notify")

CITIZEN_PRIORITY = ("review_decided", "case_refused", "case_finished", "certificate_issued", "decision_made",
                    "supplement_requested", "application_received")
REFUSED_OUTCOMES = {"rejected", "reject", "refused", "denied", "not_approved"}
UNDECIDED = {"manual", "review", "pending"}  # an automatic "decision" that hands the case to an officer
OUTCOME_TEXT = {"approved": "审批通过", "approve": "审批通过", "completed": "已办结", "rejected": "不予批准",
                "reject": "不予批准", "refused": "不予批准", "rectified": "已整改", "escalated": "已转办"}
SUPERVISOR = "supervisor"
PHONE_CONTEXT = b"notification.phone"
FREE_TEXT = {"items", "reason", "opinion"}  # typed by people: ID and phone numbers in them are masked


@dataclass
class Message:
    """One message to be written: event, recipient and the fields its templates are filled from."""

    event: str
    recipient_kind: str
    recipient: str
    case: Case | None
    fields: dict[str, Any] = field(default_factory=dict)
    sender: str | None = None
    phone: str | None = None  # clear text only in memory; stored encrypted on the sms delivery
    outside: bool = True  # also sent on the outside channels (WeChat, SMS), not only the message centre


class Outbox:
    """Turns what a step wrote into notification rows (see the module docstring)."""

    def __init__(self, catalog: NotificationCatalog, *, channels: Iterable[str] = (), pii_keys: Any = None,
                 departments: dict[str, str] | None = None, service_names: dict[str, str] | None = None) -> None:
        self.catalog = catalog
        self.channels = frozenset(channels)
        self.pii_keys = pii_keys
        self.departments = dict(departments or {})
        self.service_names = dict(service_names or {})

    # ------------------------------------------------------------------ the step hook
    async def on_step(self, conn: Any, writes: list[StepWrite], now: datetime) -> None:
        messages: list[Message] = []
        staff_cache: list[StaffUser] | None = None

        async def staff() -> list[StaffUser]:
            nonlocal staff_cache
            if staff_cache is None:
                staff_cache = list(await StaffUser.filter(active=True).using_db(conn))
            return staff_cache

        for write in writes:
            base = self._base_fields(write, now)
            messages.extend(self._citizen_messages(write, base))
            messages.extend(await self._staff_messages(conn, write, base, staff))
            messages.extend(await self._rating_answered(conn, write, now))
        if messages:
            await self.write(conn, messages, now)

    def _base_fields(self, write: StepWrite, now: datetime) -> dict[str, Any]:
        case, data = write.case, write.data or {}
        service = data.get("service") if isinstance(data.get("service"), dict) else {}
        return {"case_id": case.id, "case_no": case.case_no,
                "service_name": service.get("name") or self.service_names.get(case.service, case.service),
                "time": now.astimezone(CST).strftime("%Y-%m-%d %H:%M"), "status_text": "已提交"}

    def _citizen_messages(self, write: StepWrite, base: dict[str, Any]) -> list[Message]:
        case, data, step = write.case, write.data or {}, write.step
        recipient = case.applicant
        if not recipient or "*" in recipient:  # window cases without an account: nobody to tell online
            return []
        kinds = {e["kind"]: e for e in step.events}
        found: dict[str, dict[str, Any]] = {}
        result = outcome_of(data) if data else {}
        if "case_completed" in kinds:
            outcome = str(result.get("outcome") or "completed")
            found["case_refused" if outcome in REFUSED_OUTCOMES else "case_finished"] = {}
        certificates = [payload for kind, payload in write.records if kind == "certificate"]
        if certificates:
            issued = (certificates[-1].get("signed") or {}).get("certificate") or {}
            found["certificate_issued"] = {"certificate_name": issued.get("name") or "电子证照"}
        decisions = [d for d in step.decisions if str(d.get("outcome")) not in UNDECIDED]
        if decisions:
            decision = decisions[-1]
            found["decision_made"] = {"outcome": decision.get("outcome"), "reason": decision.get("reason")}
        supplement = kinds.get("supplement_requested")
        applicant_tasks = [t for t in write.new_tasks if t.lane in APPLICANT_LANES]
        if supplement is not None or applicant_tasks:
            reason = ((supplement or {}).get("detail") or {}).get("opinion")
            found["supplement_requested"] = {"items": reason or "、".join(t.name for t in applicant_tasks)}
        if "case_started" in kinds:
            found["application_received"] = {}
        review = kinds.get("review_decided")
        if review is not None:  # a person reviewed an automatic decision (PIPL Art. 24): the verdict
            detail = review.get("detail") or {}
            found["review_decided"] = {"verdict_label": detail.get("verdict_label") or "",
                                       "reason": detail.get("opinion") or ""}
        events = [e for e in CITIZEN_PRIORITY if e in found and self.catalog.get(e) is not None]
        if not events:
            return []
        fields = dict(base)
        for extra in found.values():  # each message may say what the others do (a reason, a certificate)
            fields.update({k: v for k, v in extra.items() if v})
        outcome = fields.get("outcome") or result.get("outcome")
        if outcome:
            fields["outcome_text"] = OUTCOME_TEXT.get(str(outcome), str(outcome))
        fields.setdefault("outcome_text", "已办结")
        fields["reason"] = fields.get("reason") or result.get("reason") or ""
        if fields.get("certificate_name"):
            fields["certificate_note"] = f"「{fields['certificate_name']}」已签发。"
        phone = _phone_of(data)
        # every event is in the message centre, oldest first; only the most significant one of the
        # step goes out on WeChat / SMS (a 秒批 approval: one 办结 message, not three)
        return [Message(event, CITIZEN, recipient, case, fields, phone=phone, outside=event == events[0])
                for event in reversed(events)]

    async def _rating_answered(self, conn: Any, write: StepWrite, now: datetime) -> list[Message]:
        """A rectification case (差评整改) that ends answers the rating: its evaluator — known only
        through the rated case, never named on the rectification case — is told."""
        case = write.case
        if case.service != "rectification" or not any(e["kind"] == "case_completed" for e in write.step.events):
            return []
        rating = await Evaluation.filter(rectification_case_no=case.case_no).using_db(conn).first()
        rated = await Case.get_or_none(id=rating.case_id, using_db=conn) if rating is not None else None  # type: ignore[attr-defined]
        if rated is None or not rated.applicant or "*" in rated.applicant:
            return []
        fields = {"case_id": rated.id, "case_no": rated.case_no, "rectification_case_no": case.case_no,
                  "service_name": self.service_names.get(rated.service, rated.service),
                  "time": now.astimezone(CST).strftime("%Y-%m-%d %H:%M")}
        return [Message("rating_answered", CITIZEN, rated.applicant, rated, fields)]

    async def _staff_messages(self, conn: Any, write: StepWrite, base: dict[str, Any], staff: Any) -> list[Message]:
        case, out = write.case, []
        if self.catalog.get("task_assigned") is not None:
            for task in write.new_tasks:
                if task.lane in APPLICANT_LANES or not task.department:
                    continue
                for user in await staff():
                    if task.department in (user.departments or []):
                        out.append(Message("task_assigned", STAFF, user.username, case, {
                            **base, "task_name": task.name, "task_id": str(task.id),
                            "department_name": self.departments.get(task.department, task.department)}))
        for event in write.step.events:
            kind, detail = event["kind"], event.get("detail") or {}
            if kind in ("sla_warning", "urged"):
                fields = {**base, "sender_name": detail.get("sender_name") or "", "reason": detail.get("reason") or "请尽快办理"}
                out.extend(Message(kind, STAFF, user, case, {**fields, "task_id": task_id}, sender=event.get("actor"))
                           for user, task_id in (await self._officers(conn, case, staff)).items())
            elif kind == "sla_escalated":
                escalation = next((str(t.id) for t in await HumanTask.filter(
                    case_id=case.id, kind="escalation", state__in=OPEN_TASK_STATES).using_db(conn)), None)
                out.extend(Message(kind, STAFF, u.username, case, {**base, "task_id": escalation})
                           for u in await staff() if SUPERVISOR in (u.departments or []))
            elif kind == "task_completed" and detail.get("cc"):
                fields = {**base, "task_name": event.get("task_name") or "", "opinion": detail.get("opinion") or "",
                          "sender_name": detail.get("sender_name") or event.get("actor") or "",
                          "task_id": event.get("task_id")}
                out.extend(Message("cc", STAFF, str(u), case, fields, sender=event.get("actor"))
                           for u in dict.fromkeys(detail["cc"]) if u != event.get("actor"))
        return [m for m in out if self.catalog.get(m.event) is not None]

    async def _officers(self, conn: Any, case: Case, staff: Any) -> dict[str, str]:
        """Who holds the case now, with the task each holds: the assignees of its open process tasks,
        else everyone in those tasks' departments."""
        tasks = await HumanTask.filter(case_id=case.id, state__in=OPEN_TASK_STATES, kind="bpmn").using_db(conn)
        holders: dict[str, str] = {}
        for task in tasks:
            if task.lane in APPLICANT_LANES:
                continue
            if task.assignee:
                holders.setdefault(task.assignee, str(task.id))
            elif task.department:
                for user in await staff():
                    if task.department in (user.departments or []):
                        holders.setdefault(user.username, str(task.id))
        return holders

    async def certificate_state(self, conn: Any, *, certificate_name: str, case_id: int | None, state_label: str,
                                reason: str, now: datetime) -> None:
        """Tell the holder (the applicant of the case that issued the certificate) that an officer
        suspended, revoked or restored it — in the message centre, in the caller's transaction."""
        case = await Case.get_or_none(id=case_id, using_db=conn) if case_id is not None else None
        if case is None or not case.applicant:
            return
        await self.write(conn, [Message(
            event="certificate_state_changed", recipient_kind=CITIZEN, recipient=case.applicant, case=case,
            fields={"certificate_name": certificate_name, "state_label": state_label, "reason": reason},
            outside=False)], now)

    # ------------------------------------------------------------------ writing
    async def write(self, conn: Any, messages: list[Message], now: datetime) -> None:
        """Store ``messages`` (through ``conn``: in the caller's transaction) and queue their deliveries.
        Messages for the message centre only go in one multi-row INSERT; the few that go out on a
        channel are inserted one by one after them (their deliveries need the new row's id)."""
        plain: list[Notification] = []
        outgoing: list[tuple[Message, Notification, list[str]]] = []
        for message in messages:
            spec = self.catalog.get(message.event)
            if spec is None:
                continue
            fields = {k: mask_text(v) if k in FREE_TEXT and isinstance(v, str) else v
                      for k, v in message.fields.items()}  # an officer's text may quote a number
            page = fill(spec.wechat.page, fields) if spec.wechat and spec.wechat.page else None
            row = Notification(
                event=message.event, recipient_kind=message.recipient_kind, recipient=message.recipient,
                case_id=message.case.id if message.case else None, case_no=message.case.case_no if message.case else None,
                title=fill(spec.title, fields)[:100], body=fill(spec.body, fields), data=_public(fields),
                page=page, sender=message.sender, created_at=now)
            channels = [c for c, template in (("wechat", spec.wechat), ("sms", spec.sms))
                        if c in self.channels and template] if message.recipient_kind == CITIZEN and message.outside else []
            if channels:
                outgoing.append((message, row, channels))
            else:
                plain.append(row)
        if plain:
            await Notification.bulk_create(plain, using_db=conn)
        deliveries = []
        for message, row, channels in outgoing:
            await row.save(using_db=conn)
            if "wechat" in channels:
                deliveries.append(NotificationDelivery(notification_id=row.id, channel="wechat",
                                                       delivery_key=f"{row.id}:wechat", next_at=now, created_at=now))
            if "sms" in channels:
                address = await self._sms_address(conn, message)
                if address:
                    deliveries.append(NotificationDelivery(notification_id=row.id, channel="sms", address_enc=address,
                                                           delivery_key=f"{row.id}:sms", next_at=now, created_at=now))
        if deliveries:
            await NotificationDelivery.bulk_create(deliveries, using_db=conn)

    async def _sms_address(self, conn: Any, message: Message) -> str | None:
        """The phone as ciphertext: from the step's data, else the case's last SMS address."""
        if message.phone and self.pii_keys is not None:
            return self.pii_keys.encrypt(message.phone, context=PHONE_CONTEXT)
        if message.case is None:
            return None
        earlier = await NotificationDelivery.filter(
            channel="sms", notification__case_id=message.case.id, address_enc__isnull=False).using_db(conn) \
            .order_by("-id").first()
        return earlier.address_enc if earlier else None


def _phone_of(data: dict[str, Any]) -> str | None:
    applicant = data.get("applicant") if isinstance(data.get("applicant"), dict) else {}
    form = data.get("form") if isinstance(data.get("form"), dict) else {}
    for value in (applicant.get("phone"), form.get("phone"), form.get("contact_phone")):
        if isinstance(value, str) and value.strip().lstrip("+").isdigit():
            return value.strip()
    return None


def _public(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if isinstance(v, (str, int, float)) or v is None}


__all__ = ["CITIZEN_PRIORITY", "PHONE_CONTEXT", "Message", "Outbox"]
