"""Engine errors. Each carries a stable machine ``code`` and a Chinese ``message``; the API
layer maps them to HTTP statuses through ``status_code``.

    GovflowError (500, internal)
    ├── ModelError (422, invalid_model)          a BPMN/DMN model is unreadable or breaks lint rules
    │   └── SandboxViolation (422, sandbox_violation)  a script or expression breaks sandbox rules
    ├── ScriptError (422, script_error)          a script failed while a case ran
    ├── NotFound (404, not_found)
    ├── Conflict (409, conflict)                 stale case version, task not ready / already done
    │   └── TaskNotReady (409, task_not_ready)
    ├── ValidationFailed (422, validation_failed) data does not match a form; ``fields`` names paths
    └── DependencyDown (503, dependency_unavailable)
"""

from __future__ import annotations

from typing import Any


class GovflowError(Exception):
    status_code = 500
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


class ModelError(GovflowError):
    status_code = 422
    code = "invalid_model"
    default_message = "流程模型无效"


class SandboxViolation(ModelError):
    code = "sandbox_violation"
    default_message = "脚本违反安全规则"


class ScriptError(GovflowError):
    status_code = 422
    code = "script_error"
    default_message = "流程脚本执行失败"


class NotFound(GovflowError):
    status_code = 404
    code = "not_found"
    default_message = "对象不存在"


class Conflict(GovflowError):
    status_code = 409
    code = "conflict"
    default_message = "数据已被他人修改，请刷新后重试"


class TaskNotReady(Conflict):
    code = "task_not_ready"
    default_message = "该任务当前不可办理（已办结或尚未到达）"


class ValidationFailed(GovflowError):
    status_code = 422
    code = "validation_failed"
    default_message = "提交的数据不符合要求"


class DependencyDown(GovflowError):
    status_code = 503
    code = "dependency_unavailable"
    default_message = "依赖服务暂不可用，请稍后重试"
