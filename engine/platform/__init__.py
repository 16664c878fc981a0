"""Platform services: Redis KV, live status, file uploads, shared-data connectors, demo seed.

The names the HTTP edge (``mobile_api``) uses; it imports nothing else of this package."""

from engine.platform.connectors.builtin import install_shared_data
from engine.platform.files import (
    attach_uploads,
    citizen_owner,
    claim_uploads,
    delete_case_files,
    owned_upload,
    parse_material_files,
    read_file,
    save_upload,
    sweep_expired,
    upload_view,
)
from engine.platform.kv import KV, create_kv
from engine.platform.live import channel, kv_publisher
from engine.platform.seed import seed_demo
from engine.platform.uploads import FileTooLarge, store_from_settings

__all__ = [
    "attach_uploads",
    "channel",
    "citizen_owner",
    "claim_uploads",
    "delete_case_files",
    "owned_upload",
    "parse_material_files",
    "read_file",
    "save_upload",
    "sweep_expired",
    "upload_view",
    "create_kv",
    "FileTooLarge",
    "install_shared_data",
    "KV",
    "kv_publisher",
    "seed_demo",
    "store_from_settings",
]
