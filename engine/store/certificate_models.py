"""E-certificate models: issued certificates and their purpose-bound uses (加注件).

The holder's code is personal data: only a keyed hash (for lookup), a masked form and a
ciphertext (filled by the identity module) are stored, never the code in clear — neither in
a column nor inside ``data``.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Certificate(Model):
    """An issued e-certificate with its signature; ``state`` is a ``CertState`` code."""

    id = fields.IntField(primary_key=True)
    identifier = fields.CharField(max_length=128, unique=True)
    type_code = fields.CharField(max_length=21, db_index=True)
    number = fields.CharField(max_length=64)  # 证照编号
    name = fields.CharField(max_length=200)
    issuer_name = fields.CharField(max_length=200)
    issuer_code = fields.CharField(max_length=18)
    holder_name = fields.CharField(max_length=200)
    holder_code_hash = fields.CharField(max_length=64, db_index=True)  # keyed hash (blind index)
    holder_code_masked = fields.CharField(max_length=32)  # e.g. 110***********1234
    holder_code_enc = fields.TextField(null=True)  # ciphertext, filled by the identity module
    holder_code_type = fields.CharField(max_length=3)  # 111 citizen ID number, 001 credit code
    issue_date = fields.DateField()
    valid_from = fields.DateField()
    valid_to = fields.DateField(null=True)
    jurisdiction_code = fields.CharField(max_length=12)
    state = fields.CharField(max_length=2, default="01", db_index=True)
    data = fields.JSONField()  # signed metadata without holder_code (see certificate_store)
    signature = fields.TextField()  # base64
    key_id = fields.CharField(max_length=64)
    algorithm = fields.CharField(max_length=16)
    case_id = fields.IntField(null=True, db_index=True)  # plain int: no FK, modules stay decoupled
    # a company's certificate (001): keyed hash of its legal representative's ID number, so the
    # representative sees the licence in 证照 even when someone else applied (never the plain ID or name)
    representative_hash = fields.CharField(max_length=64, null=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    uses: fields.ReverseRelation["CertificateUse"]

    class Meta:
        table = "certificates"
        indexes = (("holder_code_hash", "type_code"),)


class CertificateUse(Model):
    """One purpose-bound use (加注件) of a certificate by a department, with its reason."""

    id = fields.BigIntField(primary_key=True)
    certificate: fields.ForeignKeyRelation[Certificate] = fields.ForeignKeyField(
        "models.Certificate", related_name="uses", on_delete=fields.RESTRICT)
    case_no = fields.CharField(max_length=40, null=True, db_index=True)
    department = fields.CharField(max_length=32)
    actor = fields.CharField(max_length=64, null=True)
    reason = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "certificate_uses"


class RegisteredVerifier(Model):
    """An institution (用证方) registered by an admin to verify certificates with an API key.

    Only a SHA-256 of the key is stored; ``key_prefix`` (the key's first characters, not secret)
    finds the row. Each verifier has a quota of its own per hour."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    purpose = fields.CharField(max_length=200)
    key_prefix = fields.CharField(max_length=16, unique=True)
    key_hash = fields.CharField(max_length=64)
    quota_per_hour = fields.IntField(default=5000)
    active = fields.BooleanField(default=True)
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "registered_verifiers"
