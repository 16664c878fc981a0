"""Connector and certificate policy (item.yaml ``policy``): the lint refuses a model that calls an
undeclared connector or issues an undeclared certificate type, marking the service task; the
engine refuses the same calls at run time when such a model is forced into the database (nothing
issued, nothing read); shared-data look-ups may only be about the applicant or a person the form
names in a declared field."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bpmn.parser import read_folder
from engine.citizen.applications import ApplicationService
from engine.citizen.catalog import Catalog
from engine.designer.deploy import policy_findings
from engine.kernel.cases import CaseEngine
from engine.kernel.policy import (
    CertificateTypeNotAllowed,
    ConnectorNotAllowed,
    ConnectorPolicy,
    LookupSubjectNotAllowed,
    check_call,
    lint_policy,
)
from engine.store.certificate_models import Certificate
from engine.store.models import Case
from engine.store.shared_models import DataAccessLog
from tests.processes.test_senior_card import FORM, SENIOR_CARD, WANG

ROOT = Path(__file__).resolve().parents[3]
SENIOR = ROOT / "processes" / "senior-card"
OTHER_TYPE = "11310000996137268Q003"  # 居住证: not senior-card's to issue
STRANGER = "310110198606200486"  # 李娜, in the demo population registry


def senior_files(**replace: str) -> dict[str, str]:
    files = read_folder(SENIOR)
    name = next(n for n in files if n.endswith(".bpmn"))
    for old, new in replace.items():
        assert old in files[name]
        files[name] = files[name].replace(old, new)
    return files


def test_shipped_items_pass_their_own_policy() -> None:
    catalog = Catalog.load(ROOT / "processes")
    for item in catalog.items(include_platform=True):
        assert not lint_policy(read_folder(item.folder), item.policy), item.slug
    assert catalog.policy_for_process("senior_card") == catalog.get("senior-card").policy
    assert catalog.policy_for_process("nope") is None and catalog.policy_for_service("nope") is None


def test_lint_marks_the_service_task_calling_an_undeclared_connector_or_type() -> None:
    policy = Catalog.load(ROOT / "processes").get("senior-card").policy
    other_type = policy_findings(senior_files(**{f"'{SENIOR_CARD}'": f"'{OTHER_TYPE}'"}), "senior_card",
                                 lambda _pid: policy)
    assert [(f.code, f.element_id, f.severity) for f in other_type] == [
        ("certificate_type_not_allowed", "issue_certificate", "error")]
    assert OTHER_TYPE in other_type[0].message and other_type[0].line
    computed = lint_policy(senior_files(**{f"'{SENIOR_CARD}'": "form['type']"}), policy)
    assert [f.code for _, f in computed] == ["certificate_type_not_allowed"]  # a type must be a literal
    foreign = lint_policy(senior_files(**{'id="population.lookup"': 'id="hospital.birth_record"'}), policy)
    assert [(f.code, f.element_id) for _, f in foreign] == [("connector_not_allowed", "lookup_population")]
    assert policy_findings(senior_files(), "senior_card", lambda _pid: None) == []  # no item: nothing to check


def test_check_call_rules() -> None:
    policy = ConnectorPolicy(frozenset({"population.lookup", "certificate.issue", "credit.blacklist_check"}),
                             frozenset({SENIOR_CARD}), (("legal_representative.id_number", "法定代表人"),))
    data = {"applicant": {"id_number": WANG.id_number}, "form": {"legal_representative": {"id_number": STRANGER}}}
    with pytest.raises(ConnectorNotAllowed):
        check_call(policy, "hospital.birth_record", {}, data)
    with pytest.raises(CertificateTypeNotAllowed):
        check_call(policy, "certificate.issue", {"type_code": OTHER_TYPE}, data)
    assert check_call(policy, "certificate.issue", {"type_code": SENIOR_CARD}, data) is None
    assert check_call(policy, "population.lookup", {"id_number": WANG.id_number.lower()}, data) == "申请人"
    assert check_call(policy, "credit.blacklist_check", {"subject": STRANGER}, data) == "法定代表人"
    assert check_call(policy, "credit.blacklist_check", {"subject": "91310000MA1FL4XQ3B"}, data) is None  # a company
    with pytest.raises(LookupSubjectNotAllowed):
        check_call(policy, "population.lookup", {"id_number": STRANGER}, {"applicant": data["applicant"]})
    # a company certificate is linked only to a legal representative the form names
    issue = {"type_code": SENIOR_CARD, "representative_code": STRANGER}
    assert check_call(policy, "certificate.issue", issue, data) == "法定代表人"
    with pytest.raises(LookupSubjectNotAllowed):
        check_call(policy, "certificate.issue", issue, {"applicant": data["applicant"], "form": {}})


async def _force(engine: CaseEngine, applications: ApplicationService, files: dict[str, str]) -> int:
    """Ship the folder version, then force ``files`` in as a newer live version (no designer, no lint)."""
    await applications.definition_for(applications.catalog.get("senior-card"))
    forced = await engine.deploy(files, deployed_by="intruder")
    assert (await engine.live_definition("senior_card")).id == forced.id
    return forced.id


async def test_engine_refuses_an_undeclared_certificate_type_at_run_time(
        engine: CaseEngine, applications: ApplicationService) -> None:
    forced = await _force(engine, applications, senior_files(**{f"'{SENIOR_CARD}'": f"'{OTHER_TYPE}'"}))
    with pytest.raises(CertificateTypeNotAllowed) as refused:
        await applications.apply("senior-card", FORM, applicant=WANG)
    assert refused.value.code == "certificate_type_not_allowed"
    assert not await Certificate.exists() and not await Case.filter(definition_id=forced).exists()


async def test_engine_refuses_a_look_up_about_someone_else_at_run_time(
        engine: CaseEngine, applications: ApplicationService) -> None:
    await _force(engine, applications, senior_files(**{"value=\"applicant['id_number']\"": f"value=\"'{STRANGER}'\""}))
    with pytest.raises(LookupSubjectNotAllowed):
        await applications.apply("senior-card", FORM, applicant=WANG)
    assert not await DataAccessLog.exists()  # the stranger's record was never read


async def test_engine_refuses_an_undeclared_connector_and_the_shipped_model_still_runs(
        engine: CaseEngine, applications: ApplicationService) -> None:
    shipped = await applications.apply("senior-card", FORM, applicant=WANG)
    assert shipped.status == "completed" and await Certificate.filter(type_code=SENIOR_CARD).count() == 1
    await engine.deploy(senior_files(**{'id="population.lookup"': 'id="credit.blacklist_check"'}))
    with pytest.raises(ConnectorNotAllowed):
        await applications.apply("senior-card", FORM, applicant=WANG)
