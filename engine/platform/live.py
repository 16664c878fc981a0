"""Live case status: after every committed step the engine publishes on ``case:<id>``.

API processes subscribe for server-sent events; with Redis the message reaches a client
connected to any process, whichever process (API or job worker) made the step.
"""

from __future__ import annotations

import json
from typing import Awaitable, Callable

from engine.platform.kv import KV

Publisher = Callable[[int, str, list[str]], Awaitable[None]]


def channel(case_id: int) -> str:
    return f"case:{case_id}"


def kv_publisher(kv: KV) -> Publisher:
    async def publish(case_id: int, status: str, events: list[str]) -> None:
        await kv.publish(channel(case_id), json.dumps({"case_id": case_id, "status": status, "events": events},
                                                      ensure_ascii=False))
    return publish
