"""Identity models: the citizen behind a mini-program login and their real-name binding.

An openid alone is never an identity: ``real_name_level`` says how far the person behind it
has been verified, ``evidence_id`` names the verification that established it. The name and
the ID number are personal data: stored only as AES-GCM ciphertext (``*_enc``), a masked form
for display (``*_masked``) and, for the ID number, a keyed hash (``id_hash``, blind index) to
find a person without the number. Neither ever appears in clear in a column.

Refresh-token families live in the key-value store (``mobile_api.auth``), not here.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

# Real-name levels (实名等级): what the platform knows about the person behind an openid.
LEVEL_NONE = 0  # openid only: anonymous, may browse but not apply
LEVEL_DECLARED = 1  # name and a well-formed ID number declared, not checked against an authority
LEVEL_VERIFIED = 2  # name and ID number checked against an authority (公安人口库 / 网证)
LEVEL_FACE = 3  # as 2, plus a live face comparison
REAL_NAME_LEVELS = (LEVEL_NONE, LEVEL_DECLARED, LEVEL_VERIFIED, LEVEL_FACE)


class Citizen(Model):
    """A citizen account: one per mini-program openid, with its real-name binding."""

    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=64, unique=True)
    unionid = fields.CharField(max_length=64, null=True, db_index=True)
    real_name_level = fields.SmallIntField(default=LEVEL_NONE)  # one of REAL_NAME_LEVELS
    name_enc = fields.TextField(null=True)  # ciphertext, bound to this row (engine.citizen.identity)
    name_masked = fields.CharField(max_length=64, null=True)  # e.g. 张**
    id_hash = fields.CharField(max_length=64, unique=True, null=True)  # blind index of the ID number
    id_enc = fields.TextField(null=True)  # ciphertext, bound to this row
    id_masked = fields.CharField(max_length=32, null=True)  # e.g. 110***********1234
    evidence_id = fields.CharField(max_length=128, null=True)  # the verifier's reference
    verified_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "citizens"

    def __str__(self) -> str:  # never the name or the ID number
        return f"Citizen({self.id}, level={self.real_name_level})"


__all__ = ["LEVEL_DECLARED", "LEVEL_FACE", "LEVEL_NONE", "LEVEL_VERIFIED", "REAL_NAME_LEVELS", "Citizen"]
