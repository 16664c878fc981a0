"""The in-app message centre and the citizens' subscribe-message consents.

Messages are the outbox's ``Notification`` rows of one recipient (a citizen's openid, a staff
member's username). Reading a 抄送 (``cc``) message puts a read receipt (``cc_read``) on the case
timeline, where the sender sees it. Consents follow WeChat's one-time subscriptions: each accept
of a template allows one message of it, a reject drops what was left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from engine.errors import NotFound, ValidationFailed
from engine.platform.notify.catalog import NotificationCatalog
from engine.store.models import CaseEvent
from engine.store.notify_models import Notification, Subscription

MAX_PAGE = 100


def message_view(row: Notification) -> dict[str, Any]:
    return {"id": row.id, "kind": row.event, "title": row.title, "body": row.body, "case_id": row.case_id,
            "case_no": row.case_no, "sender": row.sender, "task_id": (row.data or {}).get("task_id"),
            "created_at": row.created_at.isoformat(),
            "read": row.read_at is not None}


async def list_messages(recipient_kind: str, recipient: str, *, limit: int = 50,
                        unread_only: bool = False) -> dict[str, Any]:
    """``{items, unread}``: the newest messages first and how many are unread."""
    query = Notification.filter(recipient_kind=recipient_kind, recipient=recipient)
    unread = await query.filter(read_at__isnull=True).count()
    if unread_only:
        query = query.filter(read_at__isnull=True)
    rows = await query.order_by("-id").limit(max(1, min(limit, MAX_PAGE)))
    return {"items": [message_view(r) for r in rows], "unread": unread}


async def mark_read(recipient_kind: str, recipient: str, message_id: int, now: datetime) -> dict[str, Any]:
    """Mark one's own message read (once; a second call changes nothing). 404 for anyone else's."""
    async with in_transaction() as conn:
        row = await Notification.filter(id=message_id, recipient_kind=recipient_kind,
                                        recipient=recipient).using_db(conn).first()
        if row is None:
            raise NotFound("消息不存在")
        if row.read_at is None:
            marked = await Notification.filter(id=row.id, read_at__isnull=True).using_db(conn).update(read_at=now)
            row.read_at = now
            if marked and row.event == "cc" and row.case_id is not None:  # read receipt for the sender
                await CaseEvent.create(case_id=row.case_id, kind="cc_read", actor=recipient, created_at=now,
                                       detail={"notification_id": row.id, "sender": row.sender}, using_db=conn)
    return message_view(row)


async def subscriptions_of(openid: str, catalog: NotificationCatalog) -> dict[str, Any]:
    """Every citizen event with a WeChat template, and whether a message of it may be sent now."""
    credits = {s.template_id: s.credits for s in await Subscription.filter(openid=openid)}
    return {"items": [{"event": spec.event, "template_id": spec.wechat.template_id, "title": spec.label or spec.title,
                       "accepted": credits.get(spec.wechat.template_id, 0) > 0}
                      for spec in catalog.citizen_templates() if spec.wechat]}


def _ids(body: dict[str, Any], name: str, known: set[str]) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or len(value) > 20 or not all(isinstance(v, str) for v in value):
        raise ValidationFailed("订阅结果填写有误", fields={name: "应为模板 ID 的数组（至多 20 个）"})
    unknown = [v for v in value if v not in known]
    if unknown:
        raise ValidationFailed("订阅结果填写有误", fields={name: f"未知的模板 ID：{'、'.join(unknown[:3])}"})
    return list(dict.fromkeys(value))


async def answer_subscriptions(openid: str, catalog: NotificationCatalog, body: Any, now: datetime) -> dict[str, Any]:
    """Record what ``wx.requestSubscribeMessage`` returned: ``{accept: [...], reject: [...]}``."""
    if not isinstance(body, dict):
        raise ValidationFailed("请求体应为对象")
    known = {spec.wechat.template_id for spec in catalog.citizen_templates() if spec.wechat}
    accept, reject = _ids(body, "accept", known), _ids(body, "reject", known)
    if set(accept) & set(reject):
        raise ValidationFailed("订阅结果填写有误", fields={"accept": "同一模板不能既接受又拒绝"})
    async with in_transaction() as conn:
        for template_id in accept:
            row, created = await Subscription.get_or_create(
                openid=openid, template_id=template_id, defaults={"credits": 1, "last_answer": "accept",
                                                                  "updated_at": now}, using_db=conn)
            if not created:
                await Subscription.filter(id=row.id).using_db(conn).update(
                    credits=F("credits") + 1, last_answer="accept", updated_at=now)
        for template_id in reject:
            await Subscription.update_or_create(
                openid=openid, template_id=template_id, defaults={"credits": 0, "last_answer": "reject",
                                                                  "updated_at": now}, using_db=conn)
    return await subscriptions_of(openid, catalog)


__all__ = ["answer_subscriptions", "list_messages", "mark_read", "message_view", "subscriptions_of"]
