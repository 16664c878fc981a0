"""Citizen identity endpoints: mini-program login, token refresh, logout, me, real-name binding."""

from __future__ import annotations

from sanic import Blueprint


def blueprint() -> Blueprint:
    return Blueprint("auth")
