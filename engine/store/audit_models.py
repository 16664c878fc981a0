"""Audit models: the tamper-evident audit log (审计日志) and its chain head.

Every record carries the SM3 hash of the previous one (``prev_hash``) and its own ``hash`` over
its content and ``prev_hash``: editing, deleting or reordering any record breaks the chain at
that record (``engine.accountability.audit.verify``). ``AuditHead`` is the one row that serialises
sequencing (locked ``FOR UPDATE`` on PostgreSQL) and remembers the last sequence number and hash, so
a truncated tail is noticed too. ``detail`` is canonical JSON text, exactly the bytes hashed.

A record may be *pending*: inserted by an action without the head lock (``seq``, ``prev_hash`` and
``hash`` NULL, ``created_at`` its insertion time); the sequencer gives it its place in the chain
later (``engine.accountability.audit.sequence``).
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditRecord(Model):
    """One audited action: decision, task action, deployment, certificate, personal-data read."""

    id = fields.BigIntField(primary_key=True)
    seq = fields.BigIntField(unique=True, null=True)  # position in the chain, 1, 2, 3 … without gaps; NULL: pending
    at = fields.DatetimeField()
    kind = fields.CharField(max_length=48, db_index=True)
    actor = fields.CharField(max_length=64, null=True)
    department = fields.CharField(max_length=32, null=True)
    case_no = fields.CharField(max_length=40, null=True, db_index=True)
    subject = fields.CharField(max_length=128, null=True)  # e.g. certificate identifier, process id
    detail = fields.TextField(default="{}")  # canonical JSON (sorted keys), the hashed bytes
    prev_hash = fields.CharField(max_length=64, null=True)  # NULL while pending
    hash = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(null=True)  # wall-clock insertion time (bounds the pending age)

    class Meta:
        table = "audit_log"


class AuditHead(Model):
    """The chain head (a single row, id 1): last sequence number and hash, and where a
    retention purge cut the chain (records up to ``pruned_seq`` deleted, ``pruned_hash`` the
    hash of the last deleted one)."""

    id = fields.IntField(primary_key=True)
    seq = fields.BigIntField(default=0)
    hash = fields.CharField(max_length=64)
    pruned_seq = fields.BigIntField(default=0)
    pruned_hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_head"


__all__ = ["AuditHead", "AuditRecord"]
