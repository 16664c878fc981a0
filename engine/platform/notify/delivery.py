"""``govflow worker`` delivers the outbox: claim due deliveries, send, mark — with retries.

1. **Claim** (one transaction; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers take disjoint
   rows): a due ``pending`` delivery becomes ``sending`` with ``attempts + 1`` and a lease
   (``next_at = now + NOTIFY_LEASE_S``). A WeChat delivery's first claim uses up one accept of
   the citizen's subscription to that template; without one it is ``skipped`` (no_subscription).
2. **Send** outside any transaction, through the channel (``engine.platform.notify.channels``).
3. **Mark**: ``sent``; or back to ``pending`` after ``NOTIFY_RETRY_BASE_S * 2^(attempts-1)``
   seconds (exponential back-off); or ``failed`` — at once when retrying cannot help (43101),
   after ``NOTIFY_MAX_ATTEMPTS`` tries otherwise.

**Duplicate rule.** The delivery key (``<notification id>:<channel>``) is unique: a notification is
queued once per channel, and a delivery is claimed by one worker at a time. A worker that dies
between send and mark leaves the delivery ``sending``; when its lease ends another claim takes
it as *uncertain* and sends it once more — neither WeChat's ``subscribe/send`` nor Tencent's
``SendSms`` can de-duplicate, so such a crash can cause **at most one more** message, never a
lost one. An uncertain delivery found unmarked again (a second crash on the same message) is
marked ``failed`` (``unknown after two crashes``) instead of being sent a third time. The in-app
message centre is the outbox row itself: exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, Callable

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from engine.platform.notify.catalog import NotificationCatalog
from engine.platform.notify.channels import FAILED, SENT, Channel, Outcome, Outgoing
from engine.store.notify_models import Notification, NotificationDelivery, Subscription

log = logging.getLogger("govflow.notify")


class Deliverer:
    def __init__(self, channels: dict[str, Channel], catalog: NotificationCatalog, *, clock: Callable[[], datetime],
                 max_attempts: int = 5, retry_base_s: float = 30.0, lease_s: float = 120.0, batch: int = 20,
                 concurrency: int = 4) -> None:
        self.channels, self.catalog, self.clock = channels, catalog, clock
        self.max_attempts, self.retry_base_s, self.lease_s = max(1, max_attempts), retry_base_s, lease_s
        self.batch, self.concurrency = batch, max(1, concurrency)

    async def run_due(self) -> int:
        """One pass: claim, send and mark the due deliveries; how many were claimed."""
        claimed = await self._claim(self.clock())
        if not claimed:
            return 0
        notifications = {n.id: n for n in await Notification.filter(id__in=[d.notification_id for d, _ in claimed])}  # type: ignore[attr-defined]
        slots = asyncio.Semaphore(self.concurrency)

        async def one(delivery: NotificationDelivery, attempts: int) -> None:
            async with slots:
                note = notifications[delivery.notification_id]  # type: ignore[attr-defined]
                outgoing = Outgoing(delivery_key=delivery.delivery_key, event=note.event, recipient=note.recipient,
                                    title=note.title, body=note.body, data=dict(note.data or {}), page=note.page,
                                    address_enc=delivery.address_enc)
                try:
                    outcome = await self.channels[delivery.channel].send(outgoing)
                except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the others
                    log.exception("channel %s failed on %s", delivery.channel, delivery.delivery_key)
                    outcome = Outcome("retry", f"{type(exc).__name__}")
                await self._mark(delivery, attempts, outcome)

        await asyncio.gather(*(one(d, a) for d, a in claimed))
        return len(claimed)

    async def _claim(self, now: datetime) -> list[tuple[NotificationDelivery, int]]:
        out: list[tuple[NotificationDelivery, int]] = []
        async with in_transaction() as conn:
            query = NotificationDelivery.filter(Q(status="pending") | Q(status="sending"), next_at__lte=now) \
                .order_by("next_at").limit(self.batch).using_db(conn)
            if conn.capabilities.dialect == "postgres":
                query = query.select_for_update(skip_locked=True)
            for row in await query:
                if row.channel not in self.channels:
                    await self._close(conn, row, "skipped", "channel_off")
                    continue
                uncertain = row.uncertain
                if row.status == "sending":  # its worker died between send and mark (the lease ran out)
                    if row.uncertain:
                        await self._close(conn, row, FAILED, "unknown after two crashes between send and mark")
                        continue
                    uncertain = True
                    log.warning("delivery %s was not marked: sending it once more", row.delivery_key)
                elif row.attempts == 0 and row.channel == "wechat" and not await self._consume(conn, row):
                    await self._close(conn, row, "skipped", "no_subscription")
                    continue
                attempts = row.attempts + 1
                await NotificationDelivery.filter(id=row.id).using_db(conn).update(
                    status="sending", attempts=attempts, uncertain=uncertain,
                    next_at=now + timedelta(seconds=self.lease_s))
                out.append((row, attempts))
        return out

    async def _consume(self, conn: Any, row: NotificationDelivery) -> bool:
        """Use up one accept of the recipient's subscription to the event's template."""
        note = await Notification.filter(id=row.notification_id).using_db(conn).first()  # type: ignore[attr-defined]
        spec = self.catalog.get(note.event) if note else None
        if note is None or spec is None or spec.wechat is None:
            return False
        used = await Subscription.filter(openid=note.recipient, template_id=spec.wechat.template_id,
                                         credits__gt=0).using_db(conn).update(credits=F("credits") - 1)
        return bool(used)

    @staticmethod
    async def _close(conn: Any, row: NotificationDelivery, status: str, error: str) -> None:
        await NotificationDelivery.filter(id=row.id).using_db(conn).update(status=status, last_error=error)
        log.info("delivery %s %s: %s", row.delivery_key, status, error)

    async def _mark(self, row: NotificationDelivery, attempts: int, outcome: Outcome) -> None:
        now = self.clock()
        mine = NotificationDelivery.filter(id=row.id, status="sending", attempts=attempts)
        if outcome.result == SENT:
            await mine.update(status=SENT, sent_at=now, provider_ref=(outcome.ref or "")[:128], last_error=None)
        elif outcome.result == FAILED or attempts >= self.max_attempts:
            await mine.update(status=FAILED, last_error=(outcome.error or "")[:255])
        else:
            backoff = self.retry_base_s * 2 ** (attempts - 1)
            await mine.update(status="pending", last_error=(outcome.error or "")[:255],
                              next_at=now + timedelta(seconds=backoff))
        log.info("delivery %s attempt %d: %s %s", row.delivery_key, attempts, outcome.result, outcome.error or "")

    async def run_forever(self, stop: asyncio.Event, poll_s: float = 0.5) -> None:
        while not stop.is_set():
            try:
                done = await self.run_due()
            except Exception:  # keep the worker alive through a database hiccup
                log.exception("notification pass failed")
                done = 0
            if done >= self.batch:
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
            except asyncio.TimeoutError:
                pass

    async def aclose(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()


async def delivery_counts() -> list[dict[str, Any]]:
    """``[{channel, status, count, attempts}]`` over all deliveries (for ``/metrics``)."""
    from tortoise.functions import Count, Sum

    rows = await NotificationDelivery.all().annotate(count=Count("id"), tries=Sum("attempts")) \
        .group_by("channel", "status").values("channel", "status", "count", "tries")
    return [{"channel": r["channel"], "status": r["status"], "count": int(r["count"] or 0),
             "attempts": int(r["tries"] or 0)} for r in rows]


__all__ = ["Deliverer", "delivery_counts"]
