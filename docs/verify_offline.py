"""Check an e-certificate QR token offline, with the public keys from ``GET /api/v1/certificates/keys``.

    curl -s http://127.0.0.1:8000/api/v1/certificates/keys > keys.json   # once, while online
    python docs/verify_offline.py keys.json 'eyJ2Ijo...'                 # any time after
    python docs/verify_offline.py keys.json - < token.txt                # token from stdin

Prints one JSON object: ``{"valid": true, "claims": {...}}`` or ``{"valid": false, "code", "message"}``.
Exit status 0 valid, 1 not valid, 2 bad usage or unreadable keys file. No network is used.

Offline, a verifier learns that govflow signed the token a few minutes ago and what the
certificate's state was then (``status``); whether it was revoked since is only known online
(``POST /api/v1/certificates/verify``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not

from engine.certificates.signing import KeyConfigError, SignatureError, Verifier, verify_qr_token


def load_verifier(path: str) -> Verifier:
    """The keys document as ``/keys`` serves it (``{"keys": [{kid, alg, pem}, ...]}``)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return Verifier.from_export({k["kid"]: {"alg": k["alg"], "pem": k["pem"]} for k in document["keys"]})


def check(verifier: Verifier, token: str) -> dict[str, Any]:
    """The verdict for ``token`` now, as a JSON-ready dict."""
    try:
        claims = verify_qr_token(token.strip(), verifier)
    except SignatureError as exc:
        return {"valid": False, "code": exc.code, "message": exc.message}
    out = asdict(claims)
    out["status"] = claims.status.value
    out["status_label"] = claims.status.label
    out["issue_date"] = claims.issue_date.isoformat() if claims.issue_date else None
    return {"valid": claims.status.value == "01", "claims": out}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python docs/verify_offline.py KEYS.json TOKEN|-", file=sys.stderr)
        return 2
    try:
        verifier = load_verifier(argv[0])
    except (OSError, ValueError, KeyError, TypeError, KeyConfigError) as exc:
        print(f"cannot read the keys file: {exc}", file=sys.stderr)
        return 2
    token = sys.stdin.read() if argv[1] == "-" else argv[1]
    verdict = check(verifier, token)
    print(json.dumps(verdict, ensure_ascii=False, indent=2))
    return 0 if verdict["valid"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
