"""The designer's audit trail: who deployed or migrated which process version, when."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class DesignerAudit(Model):
    """One deploy (new version or identical no-op) or case migration by a designer."""

    id = fields.BigIntField(primary_key=True)
    action = fields.CharField(max_length=16)  # deploy | migrate
    process_id = fields.CharField(max_length=128, db_index=True)
    version = fields.IntField(null=True)  # deployed version, or the target version of a migration
    content_hash = fields.CharField(max_length=64, null=True)
    actor = fields.CharField(max_length=64)
    detail = fields.JSONField(null=True)  # deploy: {created}; migrate: {from_version, moved, refused}
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "designer_audit"
