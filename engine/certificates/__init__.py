"""E-certificates: identifiers, SM2 signing keys, the certificate store, QR tokens, the issuing connector.

The names the HTTP edge (``mobile_api``) uses; it imports nothing else of this package."""

from engine.certificates.connector import install_certificates, keyring_from_settings
from engine.certificates.documents import DocumentKeys
from engine.certificates.qr import qr_png, qr_svg
from engine.certificates.signing import (
    ALGORITHMS,
    HOLDER_CITIZEN_ID,
    HOLDER_CODE_TYPES,
    MAX_QR_TOKEN_LEN,
    CertState,
    SignatureError,
    effective_state,
    make_qr_token,
    verify_qr_token,
)
from engine.certificates.state_cache import STATE_CACHE, StateCache
from engine.certificates.store import Certificate, find_for_holder
from engine.certificates.verifiers import VERIFIER_CACHE

__all__ = [
    "ALGORITHMS",
    "Certificate",
    "CertState",
    "DocumentKeys",
    "effective_state",
    "find_for_holder",
    "HOLDER_CITIZEN_ID",
    "HOLDER_CODE_TYPES",
    "install_certificates",
    "keyring_from_settings",
    "make_qr_token",
    "MAX_QR_TOKEN_LEN",
    "qr_png",
    "qr_svg",
    "SignatureError",
    "STATE_CACHE",
    "StateCache",
    "VERIFIER_CACHE",
    "verify_qr_token",
]
