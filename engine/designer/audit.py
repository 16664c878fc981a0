"""Every deploy and migration leaves a row: who, which process, version and hash, when."""

from __future__ import annotations

from typing import Any

from engine.store.designer_models import DesignerAudit


async def record(action: str, *, actor: str, process_id: str, version: int | None,
                 content_hash: str | None = None, detail: dict[str, Any] | None = None,
                 conn: Any = None) -> DesignerAudit:
    return await DesignerAudit.create(action=action, actor=actor, process_id=process_id, version=version,
                                      content_hash=content_hash, detail=detail, using_db=conn)


async def trail(process_id: str, limit: int = 100) -> list[DesignerAudit]:
    return await DesignerAudit.filter(process_id=process_id).order_by("-id").limit(limit)


__all__ = ["record", "trail"]
