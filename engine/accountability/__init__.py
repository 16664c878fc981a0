"""SM3-chained audit log, the citizen's access log, retention and privacy (masking, sealing, ID checks).

The names the HTTP edge (``mobile_api``) uses; it imports nothing else of this package."""

from engine.accountability.access_buffer import AccessLogBuffer
from engine.accountability.access_log import citizen_access_log, name_case
from engine.accountability.audit import log_data_access
from engine.accountability.privacy import PiiKeys, blind_index, mask_name, mask_text
from engine.accountability.retention import RetentionPolicy, purge

__all__ = [
    "AccessLogBuffer",
    "blind_index",
    "citizen_access_log",
    "log_data_access",
    "mask_name",
    "mask_text",
    "name_case",
    "PiiKeys",
    "purge",
    "RetentionPolicy",
]
