"""Small helpers to document endpoints in the OpenAPI document (sanic-ext)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

from sanic_ext.extensions.openapi import openapi

from mobile_api.errors import ERROR_SCHEMA

F = TypeVar("F", bound=Callable[..., Any])


def object_schema(*required: str, **properties: Any) -> dict[str, Any]:
    """A JSON object schema with ``required`` names (left out when none: OpenAPI 3.0 wants no empty list)."""
    return {"type": "object", **({"required": list(required)} if required else {}), "properties": properties}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def error_documenter(texts: Mapping[int, str]) -> Callable[..., Callable[[F], F]]:
    """``error_responses(*statuses)`` for one area: documents each status with the shared error
    schema and the area's own Chinese description of when it happens."""
    def error_responses(*statuses: int) -> Callable[[F], F]:
        def decorate(handler: F) -> F:
            for status in statuses:
                handler = openapi.response(status, json_content(ERROR_SCHEMA), texts[status])(handler)
            return handler
        return decorate
    return error_responses
