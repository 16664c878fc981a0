"""Models for shared data and data-access accountability (filled in by the connectors)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class DataAccessLog(Model):
    """One read of personal data: who, when, for which case and purpose (kept >= 6 months)."""

    id = fields.BigIntField(primary_key=True)
    actor = fields.CharField(max_length=64, null=True)
    department = fields.CharField(max_length=32, null=True)
    subject_hash = fields.CharField(max_length=64, db_index=True)  # keyed hash of the person's ID number
    subject_masked = fields.CharField(max_length=32, null=True)
    dataset = fields.CharField(max_length=64)
    fields_read = fields.JSONField(default=list)
    case_id = fields.IntField(null=True, db_index=True)
    case_no = fields.CharField(max_length=40, null=True)
    purpose = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "data_access_log"
