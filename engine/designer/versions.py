"""Read side of deployed process versions: which exist, which one a request names, and how many
cases still run on each (the designer's lists and the version views)."""

from __future__ import annotations

from engine.errors import NotFound, ValidationFailed
from engine.store.models import Case, ProcessDefinition


async def running_counts(definition_ids: list[int]) -> dict[int, int]:
    """Running cases per definition id (ids without running cases are left out)."""
    counts: dict[int, int] = {}
    for definition_id in await Case.filter(definition_id__in=definition_ids, status="running").values_list(
            "definition_id", flat=True):
        counts[definition_id] = counts.get(definition_id, 0) + 1
    return counts


async def all_versions() -> list[ProcessDefinition]:
    """Every deployed version of every process, by process id then version."""
    return list(await ProcessDefinition.all().order_by("process_id", "version"))


async def versions_of(process_id: str) -> list[ProcessDefinition]:
    """The process's versions, newest first (empty when it was never deployed)."""
    return list(await ProcessDefinition.filter(process_id=process_id).order_by("-version"))


async def definition(process_id: str, version: str) -> ProcessDefinition:
    """Version ``version`` (digits or ``latest``) of the process; 422 for another word, 404 when
    there is no such version."""
    query = ProcessDefinition.filter(process_id=process_id)
    if version == "latest":
        found = await query.order_by("-version").first()
    elif version.isdigit() and len(version) < 10:
        found = await query.filter(version=int(version)).first()
    else:
        raise ValidationFailed("版本号无效", fields={"version": "应为正整数或 latest"})
    if found is None:
        raise NotFound(f"流程 {process_id} 没有版本 {version}")
    return found


__all__ = ["ProcessDefinition", "all_versions", "definition", "running_counts", "versions_of"]
