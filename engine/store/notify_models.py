"""Notification models: the outbox (``notification``), its deliveries per channel and the
citizens' WeChat subscribe-message consents.

A ``Notification`` row is written in the transaction of the step that causes it (``engine.platform.notify``):
a rolled-back step leaves none. It is at once the in-app message (message centre: ``read_at``)
and the outbox entry the worker delivers from: one ``NotificationDelivery`` per outside channel
(``wechat``, ``sms``), whose ``delivery_key`` (``<notification id>:<channel>``) is unique, so a
notification is never queued twice on a channel. The phone an SMS goes to is kept only as
ciphertext (``address_enc``) and decrypted by the worker at send time.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Notification(Model):
    """One message to one recipient: a citizen (``recipient_kind='citizen'``, recipient = openid)
    or a staff member (``'staff'``, recipient = username)."""

    id = fields.BigIntField(primary_key=True)
    event = fields.CharField(max_length=40)  # application_received, supplement_requested, ... (notifications.yaml)
    recipient_kind = fields.CharField(max_length=16)  # citizen | staff
    recipient = fields.CharField(max_length=64)
    case_id = fields.IntField(null=True, db_index=True)
    case_no = fields.CharField(max_length=40, null=True)
    title = fields.CharField(max_length=100)
    body = fields.TextField()
    data = fields.JSONField(default=dict)  # template fields (WeChat data / SMS params), no personal data
    page = fields.CharField(max_length=255, null=True)  # deep link (mini-program page / H5 route)
    sender = fields.CharField(max_length=64, null=True)  # who caused it (催办 / 抄送 by a person)
    created_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notification"
        indexes = (("recipient_kind", "recipient", "id"),)


class NotificationDelivery(Model):
    """A notification's delivery on one outside channel: claimed, sent and marked by the worker."""

    id = fields.BigIntField(primary_key=True)
    notification: fields.ForeignKeyRelation[Notification] = fields.ForeignKeyField(
        "models.Notification", related_name="deliveries", on_delete=fields.CASCADE)
    channel = fields.CharField(max_length=16)  # wechat | sms
    delivery_key = fields.CharField(max_length=64, unique=True)  # <notification id>:<channel>
    address_enc = fields.TextField(null=True)  # the phone (ciphertext) for sms
    status = fields.CharField(max_length=16, default="pending")  # pending|sending|sent|failed|skipped
    attempts = fields.IntField(default=0)
    next_at = fields.DatetimeField()  # when a pending delivery is due; a sending one's lease end
    uncertain = fields.BooleanField(default=False)  # reclaimed after a crash between send and mark
    last_error = fields.CharField(max_length=255, null=True)
    provider_ref = fields.CharField(max_length=128, null=True)  # msgid / SerialNo
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notification_delivery"
        indexes = (("status", "next_at"),)


class Subscription(Model):
    """A citizen's answers to ``wx.requestSubscribeMessage`` for one template: each accept allows
    one message (one-time subscription), a reject clears what was left."""

    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=64)
    template_id = fields.CharField(max_length=64)
    credits = fields.IntField(default=0)
    last_answer = fields.CharField(max_length=16, null=True)  # accept | reject
    updated_at = fields.DatetimeField()

    class Meta:
        table = "notification_subscription"
        unique_together = (("openid", "template_id"),)


__all__ = ["Notification", "NotificationDelivery", "Subscription"]
