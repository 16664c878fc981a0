"""Connector and certificate policy: what a service item's process may call and issue.

Each service item declares in ``item.yaml``::

    policy:
      connectors: [population.lookup, certificate.issue]    # the connectors its process may call
      certificate_types: ["11310000612852669L001"]          # the certificate types it may issue
      persons:                                              # besides the applicant, whom look-ups may be about
        - {field: legal_representative.id_number, relation: 法定代表人}

The designer's deploy refuses a model that calls anything else (``lint_policy``: findings
``connector_not_allowed`` / ``certificate_type_not_allowed`` on the service task), and the engine
refuses at run time too (``check_call``, before the connector runs), so a model forced into the
database cannot mint a certificate or read a stranger's data either. Shared-data look-ups of a
person may only ask about the case's applicant or a person the form names in a declared field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from engine.accountability.privacy import is_valid_id_number, normalise_id
from engine.errors import ModelError

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
ISSUE_CONNECTOR = "certificate.issue"
# connector -> the parameter naming the person a look-up is about
# (certificate.issue's representative_code: a licence is linked only to a person the form names)
SUBJECT_PARAMS = {"population.lookup": "id_number", "credit.blacklist_check": "subject",
                  "hospital.birth_record": "mother_id_number", "certificate.issue": "representative_code"}

POLICY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["connectors", "certificate_types"], "additionalProperties": False,
    "properties": {
        "connectors": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "certificate_types": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "persons": {"type": "array", "items": {
            "type": "object", "required": ["field", "relation"], "additionalProperties": False,
            "properties": {"field": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"},
                           "relation": {"type": "string", "minLength": 1}}}},
    },
}


class ConnectorNotAllowed(ModelError):
    code = "connector_not_allowed"
    default_message = "流程调用了本事项未授权的接口"


class CertificateTypeNotAllowed(ModelError):
    code = "certificate_type_not_allowed"
    default_message = "流程签发了本事项未授权的证照类型"


class LookupSubjectNotAllowed(ModelError):
    code = "lookup_subject_not_allowed"
    default_message = "共享数据只能查询本办件申请人或申请表中登记的相关人员"


@dataclass(frozen=True)
class ConnectorPolicy:
    connectors: frozenset[str]
    certificate_types: frozenset[str]
    persons: tuple[tuple[str, str], ...] = ()  # (form field path, relation)

    @classmethod
    def from_raw(cls, raw: dict[str, Any] | None) -> ConnectorPolicy:
        """The item's ``policy`` block; an item without one may call nothing."""
        raw = raw or {}
        return cls(frozenset(raw.get("connectors") or ()), frozenset(raw.get("certificate_types") or ()),
                   tuple((p["field"], p["relation"]) for p in raw.get("persons") or ()))

    def subjects(self, data: dict[str, Any]) -> dict[str, str]:
        """Normalised ID number -> relation of the people this case may look up."""
        found: dict[str, str] = {}
        applicant = data.get("applicant")
        if isinstance(applicant, dict) and applicant.get("id_number"):
            found[normalise_id(str(applicant["id_number"]))] = "申请人"
        form = data.get("form")
        for path, relation in self.persons:
            value: Any = form
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str) and value.strip():
                found.setdefault(normalise_id(value), relation)
        return found


def check_call(policy: ConnectorPolicy, name: str, params: dict[str, Any], data: dict[str, Any]) -> str | None:
    """Refuse a call the item's policy does not allow; the relation of the person looked up, if any."""
    if name not in policy.connectors:
        raise ConnectorNotAllowed(f"本事项未授权调用接口 {name}（可用：{'、'.join(sorted(policy.connectors)) or '无'}）")
    if name == ISSUE_CONNECTOR:
        type_code = params.get("type_code")
        if type_code not in policy.certificate_types:
            raise CertificateTypeNotAllowed(f"本事项未授权签发证照类型 {type_code}")
    subject_param = SUBJECT_PARAMS.get(name)
    if subject_param:
        value = normalise_id(str(params.get(subject_param) or ""))
        if is_valid_id_number(value):  # a person (credit codes and empty keys are not people)
            relation = policy.subjects(data).get(value)
            if relation is None:
                raise LookupSubjectNotAllowed()
            return relation
    return None


@dataclass(frozen=True)
class PolicyFinding:
    element_id: str
    line: int | None
    code: str
    message: str


def _literal(expression: str | None) -> str | None:
    """The string a parameter expression is, when it is a plain string literal."""
    text = (expression or "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" and text[0] not in text[1:-1]:
        return text[1:-1]
    return None


def lint_policy(files: dict[str, str], policy: ConnectorPolicy) -> list[tuple[str, PolicyFinding]]:
    """(file, finding) for every service task of the bundle's BPMN files that the policy refuses:
    an undeclared connector, or a certificate type that is undeclared or not a plain literal."""
    found: list[tuple[str, PolicyFinding]] = []
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for file, text in sorted(files.items()):
        if not file.endswith(".bpmn"):
            continue
        try:
            root = etree.fromstring(text.encode("utf-8"), parser)
        except etree.XMLSyntaxError:
            continue  # the linter reports unreadable files
        for task in root.iter(f"{{{BPMN_NS}}}serviceTask"):
            for operator in task.iter(f"{{{SPIFF_NS}}}serviceTaskOperator"):
                name = operator.get("id") or ""
                element_id = task.get("id") or ""
                if name not in policy.connectors:
                    found.append((file, PolicyFinding(element_id, operator.sourceline, "connector_not_allowed",
                                                      f"service task calls connector '{name}', which the service "
                                                      f"item does not declare (allowed: "
                                                      f"{', '.join(sorted(policy.connectors)) or 'none'})")))
                    continue
                if name == ISSUE_CONNECTOR:
                    params = {p.get("id"): p for p in operator.iter(f"{{{SPIFF_NS}}}parameter")}
                    param = params.get("type_code")
                    code = _literal(param.get("value")) if param is not None else None
                    if code is None or code not in policy.certificate_types:
                        shown = code if code is not None else (param.get("value") if param is not None else "(none)")
                        found.append((file, PolicyFinding(
                            element_id, (param if param is not None else operator).sourceline,
                            "certificate_type_not_allowed",
                            f"service task issues certificate type {shown}, which the service item does not "
                            f"declare (allowed: {', '.join(sorted(policy.certificate_types)) or 'none'}; "
                            f"type_code must be a quoted literal)")))
    return found


__all__ = ["CertificateTypeNotAllowed", "ConnectorNotAllowed", "ConnectorPolicy", "LookupSubjectNotAllowed",
           "POLICY_SCHEMA", "PolicyFinding", "SUBJECT_PARAMS", "check_call", "lint_policy"]
