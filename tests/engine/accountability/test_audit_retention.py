"""Retention on an injected clock: finished cases past their retention lose their personal data
(the shell and statistics stay), old access-log rows and the old audit prefix go, the chain still
verifies from its cut, the purge is audited, and the logs' six-month minimum is enforced."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine.accountability import audit
from engine.accountability.retention import MIN_LOG_DAYS, RetentionPolicy, RetentionTooShort, purge
from engine.config import Settings
from engine.kernel.cases import current_data
from engine.store.audit_models import AuditHead, AuditRecord
from engine.store.models import Case, CaseEvent
from engine.store.shared_models import DataAccessLog
from tests.processes.conftest import Clock, application_service
from tests.processes.test_senior_card import FORM, UNKNOWN, WANG

POLICY = RetentionPolicy(audit_days=MIN_LOG_DAYS, access_log_days=MIN_LOG_DAYS, case_data_days=365)


def test_logs_are_kept_at_least_six_months() -> None:
    with pytest.raises(RetentionTooShort, match="183"):
        RetentionPolicy(audit_days=182, access_log_days=400, case_data_days=30)
    with pytest.raises(ValueError, match="ACCESS_LOG"):  # the settings themselves refuse it: nothing starts
        Settings.from_env({"GOVFLOW_ACCESS_LOG_RETENTION_DAYS": "90"})
    defaults = RetentionPolicy.from_settings(Settings())
    assert defaults.audit_days >= MIN_LOG_DAYS and defaults.access_log_days >= MIN_LOG_DAYS


async def test_purge_anonymises_expired_cases_and_prunes_logs(engine, settings) -> None:  # noqa: ANN001
    real_now = datetime.now(timezone.utc)
    clock = Clock(real_now - timedelta(days=3 * 365))
    engine.deps.clock = clock
    apps = application_service(engine, settings)
    old = await apps.apply("senior-card", FORM, applicant=WANG)  # approved at once, three years ago
    await CaseEvent.create(case_id=old.id, kind="comment", actor="mca01", department="mca",
                           detail={"opinion": "申请人电话 13816612345，身份证 310104196103150273"},
                           created_at=clock.now)
    clock.now = real_now
    recent = await apps.apply("senior-card", FORM, applicant=WANG)
    running = await apps.apply("senior-card", {**FORM, "phone": "13800138000"}, applicant=UNKNOWN)
    assert (old.status, recent.status, running.status) == ("completed", "completed", "running")
    before_logs = await DataAccessLog.all().count()
    old_audit = await AuditRecord.filter(at__lt=real_now - timedelta(days=MIN_LOG_DAYS)).count()
    assert old_audit > 0

    dry = await purge(engine, POLICY, now=real_now + timedelta(days=1), dry_run=True)
    assert dry.cases == [old.case_no] and dry.audit_records == old_audit
    assert (await Case.get(id=old.id)).purged_at is None and await AuditRecord.all().count() > old_audit

    report = await purge(engine, POLICY, now=real_now + timedelta(days=1))
    assert report.cases == [old.case_no] and report.access_logs == 0 and report.audit_records == old_audit

    shell = await Case.get(id=old.id)
    assert shell.purged_at is not None and shell.applicant is None
    assert (shell.case_no, shell.service, shell.status) == (old.case_no, "senior-card", "completed")
    _, workflow, _ = await engine.load(old.id)  # still a loadable case, without personal data
    data = current_data(workflow)
    assert data["purged"] and data["decision"]["outcome"] == "approve" and data["service"]["slug"] == "senior-card"
    assert "applicant" not in data and "form" not in data and "person" not in data
    state_text = engine.deps.serializer.decode(shell.state)
    assert WANG.id_number not in state_text and WANG.name not in state_text and "13816612345" not in state_text
    note = await CaseEvent.get(case_id=old.id, kind="comment")
    assert "13816612345" not in note.detail["opinion"] and "310104196103150273" not in note.detail["opinion"]
    untouched = await Case.get(id=recent.id)
    assert untouched.purged_at is None and untouched.applicant == WANG.openid
    assert "applicant" in current_data((await engine.load(running.id))[1])
    assert await DataAccessLog.all().count() == before_logs  # younger than six months: kept

    # the chain verifies from its cut, and the purge of each case is in it
    head = await AuditHead.get(id=1)
    assert head.pruned_seq == old_audit and not await AuditRecord.filter(seq__lte=old_audit).exists()
    result = await audit.verify(key=engine.deps.pii_keys.audit_key)
    assert result.ok, result.describe()
    purged = await AuditRecord.filter(kind="retention.purge").order_by("seq")
    assert [r.case_no for r in purged][:1] == [old.case_no] and '"what":"audit_log"' in purged[-1].detail

    # half a year later the access log goes too; a second purge leaves nothing to anonymise
    later = await purge(engine, POLICY, now=real_now + timedelta(days=MIN_LOG_DAYS + 10))
    assert later.cases == [] and later.access_logs == before_logs and await DataAccessLog.all().count() == 0
    assert (await audit.verify()).ok


async def test_a_forged_cut_without_a_purge_record_is_detected(db: str) -> None:
    for i in range(5):
        await audit.record(None, "task.claim", actor=f"a{i}")
    await audit.sequence()  # batch mode: chain the pending records (inline: nothing left to do)
    victim = await AuditRecord.get(seq=2)
    await AuditRecord.filter(seq__lte=2).delete()
    await AuditHead.filter(id=1).update(pruned_seq=2, pruned_hash=victim.hash)  # pretend a purge happened
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 3 and "retention.purge" in result.reason
