"""Documents with legal force as PAdES-signed PDFs (电子证照版式文件、受理回执、补正告知书、不予许可决定书)."""

from engine.certificates.documents.keys import DocumentKeyError, DocumentKeys, SigningUnavailable
from engine.certificates.documents.render import FontMissing, Verification, verify
from engine.certificates.documents.service import (
    KINDS,
    DocumentNotFound,
    ServiceFacts,
    available,
    case_pdf,
    certificate_pdf,
    find_case,
    officer_may_read,
)

__all__ = ["KINDS", "DocumentKeyError", "DocumentKeys", "DocumentNotFound", "FontMissing", "ServiceFacts",
           "SigningUnavailable", "Verification", "available", "case_pdf", "certificate_pdf", "find_case", "officer_may_read",
           "verify"]
