"""The one error tree of govflow. Every error carries a stable machine ``code``, a Chinese
``message`` and a ``kind`` — what went wrong, in words no transport owns. The HTTP edge maps
kinds to statuses in one table (``mobile_api.errors.STATUS_BY_KIND``); the CLI prints the
message and exits non-zero. ``docs/errors.md`` lists every code (``tools/error_codes.py`` writes it; a test
keeps it current).

    GovflowError                kind internal
    ├── BadRequest              kind bad_request       the request itself is unreadable (bad token text…)
    ├── Invalid                 kind invalid           the data breaks a rule; ``fields`` names paths
    │   ├── ValidationFailed    validation_failed      data does not match a form
    │   ├── ModelError          invalid_model          a BPMN/DMN model is unreadable or breaks lint rules
    │   │   └── SandboxViolation                       a script or expression breaks sandbox rules
    │   └── ScriptError         script_error           a script failed while a case ran
    ├── Unauthenticated         kind unauthenticated   who is asking is not established
    ├── Forbidden               kind forbidden         known, but not allowed (role, department, owner)
    ├── NotFound                kind not_found         not there, or not yours
    ├── MethodNotAllowed        kind method_not_allowed
    ├── Conflict                kind conflict          stale version, task not ready or already done
    │   └── TaskNotReady
    ├── TooLarge                kind too_large
    ├── UnsupportedType         kind unsupported_type
    ├── RateLimited             kind rate_limited      ``retry_after`` seconds
    └── DependencyDown          kind unavailable       a dependency (database, Redis, exchange) is down

Domain errors live beside the code that raises them and subclass one of these.
"""

from __future__ import annotations

import math
from typing import Any

KINDS = ("internal", "bad_request", "invalid", "unauthenticated", "forbidden", "not_found",
         "method_not_allowed", "conflict", "too_large", "unsupported_type", "rate_limited", "unavailable")


class GovflowError(Exception):
    kind = "internal"
    code = "internal"
    default_message = "系统内部错误"

    def __init__(self, message: str | None = None, *, fields: dict[str, str] | None = None,
                 detail: Any = None) -> None:
        self.message = message or self.default_message
        self.fields = fields or {}
        self.detail = detail
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class BadRequest(GovflowError):
    kind = "bad_request"
    code = "bad_request"
    default_message = "请求无效"


class Invalid(GovflowError):
    kind = "invalid"
    code = "invalid"
    default_message = "提交的内容不符合要求"


class ValidationFailed(Invalid):
    code = "validation_failed"
    default_message = "提交的数据不符合要求"


class ModelError(Invalid):
    code = "invalid_model"
    default_message = "流程模型无效"


class SandboxViolation(ModelError):
    code = "sandbox_violation"
    default_message = "脚本违反安全规则"


class ScriptError(Invalid):
    code = "script_error"
    default_message = "流程脚本执行失败"


class Unauthenticated(GovflowError):
    kind = "unauthenticated"
    code = "unauthorized"
    default_message = "未登录或登录已失效"


class Forbidden(GovflowError):
    kind = "forbidden"
    code = "forbidden"
    default_message = "无权执行此操作"


class NotFound(GovflowError):
    kind = "not_found"
    code = "not_found"
    default_message = "对象不存在"


class MethodNotAllowed(GovflowError):
    kind = "method_not_allowed"
    code = "method_not_allowed"
    default_message = "不支持该请求方法"

    def __init__(self, message: str | None = None, *, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.allowed = list(allowed or [])


class Conflict(GovflowError):
    kind = "conflict"
    code = "conflict"
    default_message = "数据已被他人修改，请刷新后重试"


class TaskNotReady(Conflict):
    code = "task_not_ready"
    default_message = "该任务当前不可办理（已办结或尚未到达）"


class TooLarge(GovflowError):
    kind = "too_large"
    code = "payload_too_large"
    default_message = "请求体过大"


class UnsupportedType(GovflowError):
    kind = "unsupported_type"
    code = "unsupported_media_type"
    default_message = "不支持的内容类型"


class RateLimited(GovflowError):
    kind = "rate_limited"
    code = "rate_limited"
    default_message = "操作过于频繁，请稍后再试"

    def __init__(self, message: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class DependencyDown(GovflowError):
    kind = "unavailable"
    code = "dependency_unavailable"
    default_message = "依赖服务暂不可用，请稍后重试"


__all__ = ["KINDS", "BadRequest", "Conflict", "DependencyDown", "Forbidden", "GovflowError", "Invalid",
           "MethodNotAllowed", "ModelError", "NotFound", "RateLimited", "SandboxViolation", "ScriptError",
           "TaskNotReady", "TooLarge", "Unauthenticated", "UnsupportedType", "ValidationFailed"]
