"""Deploy a process version from the designer: lint-gated, content-hashed, audited.

A new version is ``pending``: it runs no new case until a second person approves it
(``engine.designer.review``).

Deploying identical content returns the existing version (``created`` False) and changes
nothing but the audit trail; running cases keep the version they started on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.bpmn.lint import Finding, lint_bundle
from engine.bpmn.parser import content_hash
from engine.designer import audit, findings
from engine.designer.bundle import Upload, assemble
from engine.errors import ModelError, SandboxViolation
from engine.kernel.cases import CaseEngine
from engine.kernel.policy import ConnectorPolicy, lint_policy
from engine.store.models import ProcessDefinition


class LintFailed(ModelError):
    code = "lint_failed"
    default_message = "流程模型未通过校验，未部署"


@dataclass
class Deployed:
    definition: ProcessDefinition
    created: bool
    warnings: list[dict[str, Any]] = field(default_factory=list)


def _refusal(errors: list[dict[str, Any]]) -> ModelError:
    fields: dict[str, str] = {}
    for e in errors[:20]:
        fields.setdefault(e["element_id"] or e["file"], e["message"])
    first = errors[0]["message"]
    if any(e["code"] in findings.SANDBOX_CODES for e in errors):
        return SandboxViolation(f"脚本违反安全规则，未部署：{first}", fields=fields, detail=errors)
    return LintFailed(f"流程模型未通过校验，未部署：{first}", fields=fields, detail=errors)


PolicyOf = Callable[[str], ConnectorPolicy | None]


def policy_findings(files: dict[str, str], process_id: str, policy_of: PolicyOf | None) -> list[Finding]:
    """Errors for service tasks the process's service item does not allow (``engine.kernel.policy``)."""
    policy = policy_of(process_id) if policy_of is not None else None
    if policy is None:
        return []
    return [Finding("error", file, f.line, f.element_id, f.message, code=f.code)
            for file, f in lint_policy(files, policy)]


async def deploy(engine: CaseEngine, upload: Upload, *, actor: str,
                 departments: Mapping[str, str] | None, policy_of: PolicyOf | None = None) -> Deployed:
    """Lint the assembled bundle (and check it against its service item's connector policy) and
    store it as a new, pending version (or return the identical one)."""
    assembled = await assemble(upload)
    report = await asyncio.to_thread(lint_bundle, assembled.files, departments=departments)  # off the loop
    errors = [*report.errors, *policy_findings(assembled.files, assembled.process_id, policy_of)]
    if errors:
        raise _refusal([findings.to_dict(f) for f in errors])
    digest = content_hash(assembled.files)
    existing = await ProcessDefinition.get_or_none(process_id=assembled.process_id, content_hash=digest)
    definition = existing or await engine.deploy(assembled.files, process_id=assembled.process_id,
                                                 deployed_by=actor, name=assembled.name,
                                                 review_state="pending")  # four-eyes: engine.designer.review
    created = existing is None and definition.deployed_by == actor and definition.content_hash == digest
    await audit.record("deploy", actor=actor, process_id=definition.process_id, version=definition.version,
                       content_hash=definition.content_hash,
                       detail={"created": created, "files": sorted(assembled.files)})
    return Deployed(definition, created, [findings.to_dict(f) for f in report.warnings])


__all__ = ["Deployed", "LintFailed", "PolicyOf", "deploy", "policy_findings"]
