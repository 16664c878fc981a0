"""Configuration: one class with annotated UPPERCASE keys, read from ``GOVFLOW_*`` variables.

Secrets have no defaults; a setting that needs one and lacks it fails where it is used,
with a message that names the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, get_type_hints

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "test", "production")
MIN_LOG_RETENTION_DAYS = 183  # audit and access logs: at least six months (engine/accountability/retention.py)


def asset_dir(name: str) -> Path:
    """``web`` or ``processes``: the folder in a source checkout, else the copy that ``pip install .``
    put next to the code as the data package ``govflow_<name>`` (setup.py)."""
    local = PROJECT_ROOT / name
    installed = PROJECT_ROOT / f"govflow_{name}"
    return installed if not local.is_dir() and installed.is_dir() else local


def _default_db_url() -> str:
    return f"sqlite://{PROJECT_ROOT / 'var' / 'govflow.sqlite3'}"


@dataclass
class Settings:
    """Runtime settings. ``Settings.from_env()`` reads ``GOVFLOW_<KEY>`` for every key."""

    ENV: str = "development"
    DATABASE_URL: str = field(default_factory=_default_db_url)
    REDIS_URL: str = ""
    REDIS_PREFIX: str = "govflow:"  # namespaces keys and channels: several deployments can share one Redis
    HOST: str = "127.0.0.1"
    PORT: int = 8000
    WORKERS: int = 1
    PROCESSES_DIR: Path = field(default_factory=lambda: asset_dir("processes"))
    LOG_LEVEL: str = "INFO"
    MAX_BODY_BYTES: int = 1_048_576
    # reverse proxies in front of the API (nginx: 1): client addresses (rate limits per IP) are then
    # read from X-Forwarded-For; 0 = trust no header, use the socket's peer
    PROXIES_COUNT: int = 0
    CORS_ORIGINS: str = ""  # comma-separated origins of mini-program web views; empty = no CORS
    # pages' Content-Security-Policy frame-ancestors: comma-separated origins (https://…) of the
    # mini-program web views allowed to embed the pages; empty = only the app's own origin
    FRAME_ANCESTORS: str = ""
    # Strict-Transport-Security on every response, for a service reached only over HTTPS through a
    # proxy that sends no X-Forwarded-Proto (with PROXIES_COUNT >= 1 the header decides per request)
    HSTS: bool = False
    SCRIPT_TIMEOUT_MS: int = 1000
    # scripts of designer-deployed models run in this many pre-started sandbox processes per API
    # process, each limited to its start-up size plus SANDBOX_MEMORY_MB of address space
    SANDBOX_WORKERS: int = 2
    SANDBOX_MEMORY_MB: int = 512
    JOB_POLL_MS: int = 200
    DEMO_PASSWORD: str = ""
    # personal data: hex master key (>= 32 bytes) for blind indexes and encryption at rest;
    # required in production, development falls back to a fixed, loudly-logged dev key
    PII_KEY: str = ""
    # key rotation: PII_KEY may list `id:hex,id:hex` (oldest first), PII_KEY_FILE holds `id hex` lines;
    # PII_ACTIVE_KEY picks the encrypting key (default: the last); older keys still decrypt
    PII_KEY_FILE: str = ""
    PII_ACTIVE_KEY: str = ""
    # retention (engine/accountability/retention.py): audit and access logs at least 183 days (enforced), case personal data
    AUDIT_RETENTION_DAYS: int = 3 * 365
    ACCESS_LOG_RETENTION_DAYS: int = 3 * 365
    CASE_DATA_RETENTION_DAYS: int = 2 * 365
    AUDIT_ANCHOR_INTERVAL_S: int = 3600  # `govflow worker` appends an audit anchor this often; 0 = never
    # audit sequencing on PostgreSQL: "batch" = actions insert pending records without the chain lock and
    # `govflow worker` chains them every AUDIT_SEQUENCE_INTERVAL_MS; "inline" = chained in the action's
    # transaction under the head lock (SQLite always chains inline: its writers are serialised anyway)
    AUDIT_SEQUENCING: str = "batch"
    AUDIT_SEQUENCE_INTERVAL_MS: int = 200
    AUDIT_UNSEQUENCED_BOUND_S: int = 60  # `audit verify` flags records pending longer than this
    # QR verification writes its access-log rows in batches (engine/accountability/access_buffer.py):
    # at most this many rows / this long in an API process's memory before they are written
    ACCESS_LOG_FLUSH_ROWS: int = 200
    ACCESS_LOG_FLUSH_MS: int = 200
    JURISDICTION: str = "310000"
    # shared-data exchange platform; empty in development = the demo CSVs in processes/demo
    EXCHANGE_URL: str = ""
    EXCHANGE_TOKEN: str = ""
    EXCHANGE_TIMEOUT_MS: int = 3000
    # e-certificate signing keys: a directory of <key_id>.pem; empty in development = one public dev key
    # derived alike by every process (production refuses to start without a directory)
    CERT_KEY_DIR: str = ""
    CERT_ACTIVE_KEY: str = ""
    CERT_ALGORITHM: str = "SM2-SM3"
    # PAdES keys of the PDF documents (engine/documents/keys.py): ca.cert.pem + <department>.key.pem/.cert.pem;
    # empty in development = per-department keys derived from a public seed under a dev CA; production
    # without it answers 503 document_signing_unavailable for the PDFs
    DOC_SIGN_DIR: str = ""
    # BPMN messages between cases (engine/kernel/messages.py): a message no case waits for yet is kept
    # this long for a later receiver, then dropped by `govflow worker`
    MESSAGE_KEEP_DAYS: float = 7
    # external systems that may send messages (POST /api/v1/messages, header X-System-Key):
    # comma-separated `name=key` pairs, each key >= 32 characters; empty = no system may send
    SYSTEM_KEYS: str = field(default="", repr=False)
    QR_TOKEN_TTL_S: int = 180  # lifetime of an e-certificate QR token (健康码-style, refreshed by the holder)
    # citizen identity (mobile_api/wechat.py, mobile_api/auth.py): the WeChat mini-program app; with no
    # appid+secret, development logs in with `dev-<name>` codes and production answers 503
    WECHAT_APPID: str = ""
    WECHAT_SECRET: str = field(default="", repr=False)
    WECHAT_API_BASE: str = "https://api.weixin.qq.com"
    WECHAT_TIMEOUT_MS: int = 5000
    # notifications (engine/platform/notify, docs/notifications.md): the outbox is written with every step
    # (NOTIFY_OUTBOX=0 turns it off); `govflow worker` delivers on the channels listed here that are
    # configured: wechat (subscribe messages: WECHAT_APPID + WECHAT_SECRET), sms (Tencent Cloud SMS)
    NOTIFY_OUTBOX: bool = True
    NOTIFY_CHANNELS: str = "wechat,sms"
    NOTIFY_MAX_ATTEMPTS: int = 5  # tries per delivery before it is marked failed
    NOTIFY_RETRY_BASE_S: float = 30.0  # back-off: base * 2^(attempt-1) seconds
    NOTIFY_LEASE_S: float = 120.0  # a claimed delivery not marked within this is taken as crashed
    NOTIFY_MINIPROGRAM_STATE: str = "formal"  # subscribe/send miniprogram_state: developer|trial|formal
    SMS_SECRET_ID: str = field(default="", repr=False)
    SMS_SECRET_KEY: str = field(default="", repr=False)
    SMS_SDK_APP_ID: str = ""
    SMS_SIGN_NAME: str = ""
    SMS_REGION: str = "ap-guangzhou"
    SMS_ENDPOINT: str = ""  # empty = the SDK's default (sms.tencentcloudapi.com); tests: http://127.0.0.1:PORT
    SMS_TIMEOUT_S: int = 10
    # HS256 signing secret for access tokens (>= 32 chars); required in production, development
    # falls back to a fixed, loudly-logged dev secret
    JWT_SECRET: str = field(default="", repr=False)
    ACCESS_TOKEN_TTL_S: int = 900
    REFRESH_TOKEN_TTL_S: int = 30 * 24 * 3600
    # materials: citizen uploads and window scans (engine/platform/uploads.py, docs/files.md); size limit per file
    UPLOAD_DIR: str = ""  # older name of FILES_DIR
    UPLOAD_MAX_BYTES: int = 10 * 1024 * 1024
    FILES_STORE: str = "disk"  # disk | s3 (any S3-compatible store: MinIO, OSS, COS, AWS)
    FILES_DIR: str = ""  # disk store root; empty = UPLOAD_DIR or var/uploads
    FILES_S3_ENDPOINT: str = ""  # e.g. https://oss-cn-shanghai.aliyuncs.com; empty = AWS
    FILES_S3_BUCKET: str = ""
    FILES_S3_REGION: str = "us-east-1"
    FILES_S3_ACCESS_KEY: str = field(default="", repr=False)
    FILES_S3_SECRET_KEY: str = field(default="", repr=False)
    FILES_S3_PREFIX: str = "govflow/"
    FILES_UPLOAD_TTL_S: int = 24 * 3600  # an upload not attached to an application by then is deleted
    FILES_MAX_PENDING: int = 100  # unattached uploads one citizen may hold at once

    def __post_init__(self) -> None:
        self.ENV = normalize_env(self.ENV)  # fails closed: a typo never means "development"
        for name in ("AUDIT_RETENTION_DAYS", "ACCESS_LOG_RETENTION_DAYS"):  # enforced: the API, worker
            if int(getattr(self, name)) < MIN_LOG_RETENTION_DAYS:       # and purge refuse to start
                raise ValueError(f"GOVFLOW_{name}={getattr(self, name)}: 审计日志和个人信息访问日志至少保存 "
                                 f"{MIN_LOG_RETENTION_DAYS} 天（6 个月）")

    @property
    def is_production(self) -> bool:
        return self.ENV == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"GOVFLOW_{f.name}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(hints[f.name], raw, f.name)
        values.update(overrides)
        return cls(**values)


def normalize_env(raw: Any) -> str:
    """``GOVFLOW_ENV`` trimmed and lower-cased; anything but development/test/production refuses to start
    (``Production`` and ``production `` mean production; ``prod`` is refused, never development)."""
    value = str(raw).strip().lower()
    if value not in ENVIRONMENTS:
        raise ValueError(f"GOVFLOW_ENV={str(raw)[:40]!r} is not one of {', '.join(ENVIRONMENTS)}: refusing to "
                         "start (a misspelt production setting must not run with the public development keys)")
    return value


def env_is_production(env: Any = None, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``env`` or the process's ``GOVFLOW_ENV`` names production, spelt in any case or with
    spaces; an unreadable ``GOVFLOW_ENV`` counts as production (refuse the development shortcuts)."""
    environ = os.environ if environ is None else environ
    for value in (env, environ.get("GOVFLOW_ENV")):
        if value is None or value == "":
            continue
        try:
            if normalize_env(value) == "production":
                return True
        except ValueError:
            return True
    return False


def _coerce(kind: Any, raw: str, name: str) -> Any:
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
        if kind is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        return raw
    except ValueError as exc:
        raise ValueError(f"GOVFLOW_{name}: cannot read {raw!r} as {kind.__name__}") from exc
