"""Retention (数据保存期限): how long logs and case personal data are kept, and the purge.

``RetentionPolicy`` reads the settings and refuses to keep the audit log or the access log for
less than ``MIN_LOG_DAYS`` (about six months). ``purge`` (``govflow purge``, on an injected
clock in tests) then:

* anonymises finished cases whose completion is older than ``CASE_DATA_RETENTION_DAYS``: the
  workflow data keeps only non-personal statistics (service, decision outcome and rule, result
  outcome), the applicant reference is cleared, timeline opinions and rating comments are masked,
  and ``purged_at`` is set; the case shell (number, service, status, channel, dates, tasks,
  timeline) stays for statistics and SLA reports;
* deletes access-log rows older than their retention;
* cuts the audit chain before its retention: records up to the last one older than the limit
  are deleted and the chain head remembers where (``pruned_seq``/``pruned_hash``), so
  ``govflow audit verify`` still proves the rest.

Everything the purge does is itself audited (``retention.purge``), each case in the same
transaction as its anonymisation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.config import MIN_LOG_RETENTION_DAYS
from engine.store.models import Case
from engine.store.shared_models import DataAccessLog

MIN_LOG_DAYS = MIN_LOG_RETENTION_DAYS  # 六个月: the audit and access logs are never kept for less
FINISHED = ("completed", "failed", "withdrawn")
KEPT_DATA = {"service": ("slug", "name", "department", "type", "version"),
             "decision": ("outcome", "rule", "table"), "result": ("outcome", "decided_by")}


class RetentionTooShort(ValueError):
    """A configured retention below the legal minimum."""


@dataclass(frozen=True)
class RetentionPolicy:
    audit_days: int
    access_log_days: int
    case_data_days: int

    def __post_init__(self) -> None:
        for name, days in (("GOVFLOW_AUDIT_RETENTION_DAYS", self.audit_days),
                           ("GOVFLOW_ACCESS_LOG_RETENTION_DAYS", self.access_log_days)):
            if days < MIN_LOG_DAYS:
                raise RetentionTooShort(f"{name}={days}: 审计日志和个人信息访问日志至少保存 {MIN_LOG_DAYS} 天（6 个月）")
        if self.case_data_days < 1:
            raise RetentionTooShort(f"GOVFLOW_CASE_DATA_RETENTION_DAYS={self.case_data_days}: 至少 1 天")

    @classmethod
    def from_settings(cls, settings: Any) -> "RetentionPolicy":
        return cls(audit_days=int(settings.AUDIT_RETENTION_DAYS),
                   access_log_days=int(settings.ACCESS_LOG_RETENTION_DAYS),
                   case_data_days=int(settings.CASE_DATA_RETENTION_DAYS))


@dataclass
class PurgeReport:
    dry_run: bool
    cases: list[str] = field(default_factory=list)  # case numbers anonymised (or due, in a dry run)
    access_logs: int = 0
    audit_records: int = 0
    files: int = 0  # stored material files deleted with their cases

    def describe(self) -> str:
        verb = "将清理" if self.dry_run else "已清理"
        return (f"{verb}：办件个人信息 {len(self.cases)} 件（材料文件 {self.files} 份），访问日志 {self.access_logs} 条，"
                f"审计记录 {self.audit_records} 条")


def anonymised_data(data: dict[str, Any]) -> dict[str, Any]:
    """Only the statistics of a case's data survive: which service, how it was decided."""
    kept: dict[str, Any] = {"purged": True}
    for key, allowed in KEPT_DATA.items():
        value = data.get(key)
        if isinstance(value, dict):
            kept[key] = {k: value[k] for k in allowed if k in value and not isinstance(value[k], (dict, list))}
    return kept


class CaseAnonymiser(Protocol):
    """What ``purge`` needs of the case engine: rewrite one finished case without personal data."""

    async def anonymise(self, case: Case, now: datetime, actor: str) -> bool: ...


async def purge(engine: CaseAnonymiser, policy: RetentionPolicy, *, now: datetime | None = None,
                dry_run: bool = False, actor: str = "system", batch: int = 200,
                remove_files: Callable[[int], Awaitable[int]] | None = None) -> PurgeReport:
    """Apply ``policy`` at ``now`` (the engine's clock by default). ``remove_files(case_id)`` deletes
    an anonymised case's material files (``engine.platform.files.delete_case_files`` on the
    configured store) and says how many stored objects went."""
    now = now or engine.deps.clock()
    report = PurgeReport(dry_run=dry_run)
    case_cutoff = now - timedelta(days=policy.case_data_days)
    last_id = 0
    while True:
        due = await Case.filter(status__in=FINISHED, completed_at__lt=case_cutoff, purged_at__isnull=True,
                                id__gt=last_id).order_by("id").limit(batch)
        for case in due:
            if dry_run or await engine.anonymise(case, now, actor):
                report.cases.append(case.case_no)
                if remove_files is not None and not dry_run:
                    report.files += await remove_files(case.id)
        if len(due) < batch:
            break
        last_id = due[-1].id

    log_cutoff = now - timedelta(days=policy.access_log_days)
    old_logs = DataAccessLog.filter(created_at__lt=log_cutoff)
    report.access_logs = await old_logs.count()
    if report.access_logs and not dry_run:
        async with in_transaction() as conn:
            deleted = await DataAccessLog.filter(created_at__lt=log_cutoff).using_db(conn).delete()
            report.access_logs = int(deleted)
            await audit.record(conn, "retention.purge", actor=actor, now=now, detail={
                "what": "access_log", "before": audit.format_at(log_cutoff), "deleted": int(deleted)})

    report.audit_records = await audit.prune_before(now - timedelta(days=policy.audit_days), now, actor, dry_run)
    return report


__all__ = ["MIN_LOG_DAYS", "PurgeReport", "RetentionPolicy", "RetentionTooShort", "anonymised_data", "purge"]
