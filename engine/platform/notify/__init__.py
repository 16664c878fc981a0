"""Notifications: a transactional outbox written with every step, delivered by ``govflow worker``
on WeChat subscribe messages and SMS, and an in-app message centre (docs/notifications.md)."""

from __future__ import annotations

import logging
from typing import Any

from engine.platform.notify.catalog import CITIZEN, STAFF, EventSpec, NotificationCatalog
from engine.platform.notify.delivery import Deliverer, delivery_counts
from engine.platform.notify.messages import (
    answer_subscriptions,
    list_messages,
    mark_read,
    subscriptions_of,
)
from engine.platform.notify.outbox import Message, Outbox
from engine.platform.notify.reminders import UrgeTooSoon, urge

log = logging.getLogger("govflow.notify")


def enabled_channels(settings: Any) -> list[str]:
    """The outside channels that are asked for (``NOTIFY_CHANNELS``) and configured."""
    wanted = {c.strip() for c in str(settings.NOTIFY_CHANNELS or "").split(",") if c.strip()}
    on = []
    if "wechat" in wanted and settings.WECHAT_APPID and settings.WECHAT_SECRET:
        on.append("wechat")
    if "sms" in wanted and settings.SMS_SECRET_ID and settings.SMS_SECRET_KEY and settings.SMS_SDK_APP_ID:
        on.append("sms")
    return on


def install_notifications(deps: Any, settings: Any, service_names: dict[str, str] | None = None) -> Outbox | None:
    """Add the outbox as a step hook (``EngineDeps.step_hooks``) unless ``NOTIFY_OUTBOX`` is off.
    ``service_names``: slug → the item's Chinese name for message texts (the slug stands in)."""
    if not settings.NOTIFY_OUTBOX:
        return None
    catalog = NotificationCatalog.load(settings.PROCESSES_DIR / "notifications.yaml")
    names = dict(service_names or {})
    outbox = Outbox(catalog, channels=enabled_channels(settings), pii_keys=deps.pii_keys,
                    departments=deps.departments, service_names=names)
    deps.step_hooks.append(outbox.on_step)
    deps.notifications = outbox
    return outbox


def deliverer_from_settings(settings: Any, *, clock: Any, pii_keys: Any) -> Deliverer:
    """The worker's deliverer over the channels that are on; says once which are off and why."""
    from engine.platform.notify.channels import channels_from_settings

    catalog = NotificationCatalog.load(settings.PROCESSES_DIR / "notifications.yaml")
    channels = channels_from_settings(settings, catalog, pii_keys)
    if "wechat" not in channels:
        log.warning("notifications: WeChat subscribe messages are off (GOVFLOW_WECHAT_APPID / _SECRET not set "
                    "or wechat not in GOVFLOW_NOTIFY_CHANNELS); the message centre still gets every message")
    if "sms" not in channels:
        log.warning("notifications: SMS is off (GOVFLOW_SMS_SECRET_ID / _SECRET_KEY / _SDK_APP_ID not set "
                    "or sms not in GOVFLOW_NOTIFY_CHANNELS)")
    return Deliverer(channels, catalog, clock=clock, max_attempts=settings.NOTIFY_MAX_ATTEMPTS,
                     retry_base_s=settings.NOTIFY_RETRY_BASE_S, lease_s=settings.NOTIFY_LEASE_S)


__all__ = ["CITIZEN", "STAFF", "Deliverer", "EventSpec", "deliverer_from_settings", "delivery_counts", "Message", "NotificationCatalog", "Outbox", "UrgeTooSoon",
           "answer_subscriptions", "enabled_channels", "install_notifications", "list_messages", "mark_read",
           "subscriptions_of", "urge"]
