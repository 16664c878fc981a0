"""Cases filed at the window for a citizen who had no account yet (前台一口受理).

The window files such a case for ``window:<blind index prefix>`` — stable per ID number and free of
personal data. When the citizen later binds their real name (``engine.citizen.identity``), the
cases filed for that ID number become theirs (``claim_window_cases``).
"""

from __future__ import annotations

from tortoise.transactions import in_transaction

from engine.accountability.privacy import PiiKeys, blind_index
from engine.kernel.cases import utcnow
from engine.store.identity_models import Citizen
from engine.store.models import Case, CaseEvent

PLACEHOLDER_PREFIX = "window:"


def placeholder_openid(id_number: str, pii_keys: PiiKeys) -> str:
    """The stand-in applicant of a case filed for a citizen without an account."""
    return PLACEHOLDER_PREFIX + blind_index(id_number, pii_keys.blind_index_key)[:24]


async def claim_window_cases(citizen: Citizen) -> int:
    """Cases filed at the window for the ID number ``citizen`` has just bound become theirs: the
    placeholder applicant is replaced by their openid (their case list and, through the same blind
    index, their certificates) and each case notes it on its timeline. Returns how many."""
    if not citizen.id_hash:
        return 0
    placeholder = PLACEHOLDER_PREFIX + citizen.id_hash[:24]  # = placeholder_openid(id_number)
    if not await Case.filter(applicant=placeholder).exists():  # nearly every binding: one read, no transaction
        return 0
    async with in_transaction() as conn:
        ids = await Case.filter(applicant=placeholder).using_db(conn).values_list("id", flat=True)
        if not ids:
            return 0
        await Case.filter(id__in=ids, applicant=placeholder).using_db(conn).update(applicant=citizen.openid)
        await CaseEvent.bulk_create([
            CaseEvent(case_id=case_id, kind="applicant_bound", actor=f"citizen:{citizen.id}",
                      detail={"opinion": "申请人实名认证后认领窗口办件"}, created_at=utcnow())
            for case_id in ids], using_db=conn)
    return len(ids)


__all__ = ["PLACEHOLDER_PREFIX", "claim_window_cases", "placeholder_openid"]
