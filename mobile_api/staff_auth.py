"""Staff login and the staff guard.

Staff tokens are the ordinary access tokens of ``TokenService`` with ``role="staff"`` and the
staff account's id as ``sub``. ``@staff_required(roles=None)`` accepts only those: no token →
401, a citizen's token → 403 ``staff_only``, a disabled or deleted account → 401, a role outside
``roles`` → 403 ``forbidden_role``. Department checks are the engine's (``engine.workbench.staff``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import structlog
from sanic.request import Request
from sanic_ext.extensions.openapi import openapi

from engine.workbench import StaffUser
from engine.workbench import staff as desk
from mobile_api.auth import (
    RATE_LIMITS,
    SECURITY_SCHEME,
    RateRule,
    TokenInvalid,
    auth_state,
    client_ip,
    rate_limit,
    require_principal,
)
from mobile_api.errors import Forbidden, RateLimited

STAFF_ROLE = "staff"
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])

RATE_LIMITS.setdefault("staff_login_per_ip", RateRule(
    30, 60, "password guessing against many staff accounts from one address"))
RATE_LIMITS.setdefault("staff_login_per_user", RateRule(
    10, 300, "password guessing against one account spread over many addresses (before the lockout)"))


class StaffOnly(Forbidden):
    code = "staff_only"
    default_message = "该接口仅供工作人员使用"


class ForbiddenRole(Forbidden):
    code = "forbidden_role"
    default_message = "您的角色无权执行此操作"


class StaffAccountLocked(RateLimited):
    code = "account_locked"
    default_message = desk.AccountLocked.default_message


def staff_profile(staff: StaffUser) -> dict[str, Any]:
    return {"username": staff.username, "name": staff.name, "departments": list(staff.departments or []),
            "roles": list(staff.roles or [])}


async def login(request: Request, username: str, password: str) -> dict[str, Any]:
    """Rate-limit, check the credentials (lockout in the engine), issue a staff access token."""
    await rate_limit(request, "staff_login_per_ip", client_ip(request))
    await rate_limit(request, "staff_login_per_user", username.strip()[:64])
    try:
        staff = await desk.authenticate(request.app.ctx.kv, username, password)
    except desk.AccountLocked as locked:
        raise StaffAccountLocked(retry_after=locked.retry_after) from None
    pair = await auth_state(request.app).tokens.issue(staff.id, role=STAFF_ROLE)
    structlog.get_logger("govflow.auth").info("staff_login", staff=staff.username)
    return {"access_token": pair.access_token, "token_type": "Bearer", "expires_in": pair.expires_in,
            "staff": staff_profile(staff)}


async def require_staff(request: Request, roles: Iterable[str] | None = None) -> StaffUser:
    """The active staff account behind the request's token (see the module docstring)."""
    principal = await require_principal(request)
    if principal.role != STAFF_ROLE:
        raise StaffOnly()
    staff = await desk.find_staff(principal.citizen_id)
    if staff is None or not staff.active:
        raise TokenInvalid()
    if roles is not None and not set(staff.roles or []) & set(roles):
        raise ForbiddenRole()
    return staff


def staff_required(roles: Iterable[str] | None = None) -> Callable[[H], H]:
    """Run the handler only for a staff token (with one of ``roles`` when given); sets
    ``request.ctx.staff``. Put it below the ``openapi`` decorators."""
    allowed = frozenset(roles) if roles is not None else None

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> Any:
            staff = await require_staff(request, allowed)
            request.ctx.staff = staff
            structlog.contextvars.bind_contextvars(staff=staff.username)
            return await handler(request, *args, **kwargs)

        return openapi.secured({SECURITY_SCHEME: []})(guarded)  # type: ignore[return-value]

    return decorate


__all__ = ["STAFF_ROLE", "ForbiddenRole", "StaffAccountLocked", "StaffOnly", "login", "require_staff",
           "staff_profile", "staff_required"]
