"""The Sanic edge of govflow: app factory, blueprints, error mapping, OpenAPI.

``create_app`` is imported on first use, so ``govflow migrate``/``validate`` do not load Sanic.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from mobile_api.app import create_app

        return create_app
    raise AttributeError(f"module 'mobile_api' has no attribute {name!r}")
