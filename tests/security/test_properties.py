"""Property tests (hypothesis) for the code that reads hostile input: the form validator, the
ID-number and identifier check characters, access and QR token formats, and the BPMN lint on
random mutations of the real models in processes/.

Each property states what must hold for *every* input: validators answer instead of raising,
check characters catch every single-character error, a token changed anywhere is refused, and
lint turns any broken model into findings (never a crash or an "internal linter failure").
``GOVFLOW_PROPERTY_EXAMPLES`` scales the example counts (``make fuzz`` raises it).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import string
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from engine.accountability.privacy import county_codes, is_valid_id_number, normalise_id
from engine.bpmn.lint import lint_bundle, load_departments
from engine.bpmn.parser import read_folder
from engine.bpmn.validate import validate_paths
from engine.certificates.ids import (
    InvalidIdentifier,
    is_uscc,
    is_valid_identifier,
    make_identifier,
    new_uscc,
    parse_identifier,
)
from engine.certificates.keys import SignatureError, Verifier, generate_signer
from engine.certificates.signing import TokenExpired as QrTokenExpired
from engine.certificates.signing import TokenInvalid as QrTokenInvalid
from engine.certificates.signing import make_qr_token, verify_qr_token
from engine.config import PROJECT_ROOT
from engine.platform.kv import MemoryKV
from forms.keywords import is_gb11643
from forms.validation import validate_data
from mobile_api.auth import BearerError, TokenService

SCALE = float(os.environ.get("GOVFLOW_PROPERTY_EXAMPLES", "1"))
PROCESSES = PROJECT_ROOT / "processes"


def examples(n: int) -> Any:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


# --------------------------------------------------------------------------- the form validator

FORM_FILES = sorted(PROCESSES.glob("*/forms/*.json"))
FORMS = {f"{p.parent.parent.name}/{p.name}": json.loads(p.read_text(encoding="utf-8")) for p in FORM_FILES}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30)


def _field_names(schema: dict[str, Any]) -> list[str]:
    return sorted((schema.get("properties") or {}).keys())


@st.composite
def form_data(draw: st.DrawFn) -> tuple[str, dict[str, Any], Any]:
    """A real form and data for it: random values under its own field names, plus junk keys."""
    name = draw(st.sampled_from(sorted(FORMS)))
    schema = FORMS[name]
    fields = _field_names(schema)
    chosen = draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
    data: Any = {f: draw(json_values) for f in chosen}
    if draw(st.booleans()):
        data.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
    if draw(st.integers(0, 9)) == 0:
        data = draw(json_values)  # not even an object
    return name, schema, data


def test_there_are_real_forms_to_test() -> None:
    assert len(FORMS) >= 15


@given(form_data())
@examples(150)
def test_form_validator_answers_every_input_with_field_messages(case: tuple[str, dict[str, Any], Any]) -> None:
    _, schema, data = case
    errors = validate_data(schema, data)
    assert isinstance(errors, dict)
    for path, message in errors.items():
        assert isinstance(path, str) and path and isinstance(message, str) and message
        assert not message.isascii(), (path, message)  # a Chinese message, never a Python repr
    assert validate_data(schema, copy.deepcopy(data)) == errors  # deterministic


@given(st.sampled_from(sorted(FORMS)), st.integers(1, 400))
@examples(30)
def test_deeply_nested_or_hostile_values_become_an_error_not_a_crash(name: str, depth: int) -> None:
    schema = FORMS[name]
    nested: Any = "x"
    for _ in range(depth):
        nested = {"a": [nested]}
    for data in ({f: nested for f in _field_names(schema)[:3]}, {"\x00": float("nan")},
                 {f: {1, 2} for f in _field_names(schema)[:2]}):
        errors = validate_data(schema, data)
        assert isinstance(errors, dict)
        if schema.get("required") or schema.get("additionalProperties") is False:
            assert errors


@given(st.sampled_from([n for n, s in FORMS.items() if s.get("required")]), st.data())
@examples(60)
def test_a_missing_required_field_is_reported_at_its_own_path(name: str, data: st.DataObject) -> None:
    schema = FORMS[name]
    missing = data.draw(st.sampled_from(sorted(schema["required"])))
    errors = validate_data(schema, {})
    assert missing in errors, (missing, errors)


# --------------------------------------------------------------------------- ID numbers (GB 11643)

_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]


def gb11643_check(body: str) -> str:
    """Independent oracle: ISO 7064 MOD 11-2 as GB 11643 states it."""
    value = (12 - sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


# old and new county codes: 浦东新区 310115 (1992-), 闵行区 310112 (1981-), 宝安区 440306 (1992-),
# 崇文区 110103 (-2010), 南汇县 310225 (1982-2001) … next to any code of the national table
NAMED_REGIONS = ["110101", "110103", "310104", "310112", "310115", "310225", "440106", "440306", "510107",
                 "650102"]
REGIONS = st.sampled_from(NAMED_REGIONS) | st.sampled_from(sorted(county_codes()))
BIRTHS = st.dates(min_value=date(1900, 1, 1), max_value=date.today() - timedelta(days=1))


@st.composite
def id_numbers(draw: st.DrawFn, regions: st.SearchStrategy[str] = REGIONS) -> str:
    """Any valid number: a county code of any year (whether or not it existed at the birth date —
    the code is that of the office that issued the number), any past birth date, the check char."""
    body = f"{draw(regions)}{draw(BIRTHS):%Y%m%d}{draw(st.text('0123456789', min_size=3, max_size=3))}"
    return body + gb11643_check(body)


def with_check(body: str) -> str:
    return body + gb11643_check(body)


@given(id_numbers())
@examples(200)
def test_id_numbers_with_the_right_check_character_are_accepted(number: str) -> None:
    assert is_valid_id_number(number) and is_gb11643(number)
    assert is_valid_id_number(number.lower()) and is_valid_id_number(f" {number[:6]} {number[6:]} ")


@given(id_numbers(), st.integers(0, 17), st.sampled_from("0123456789X"))
@examples(300)
def test_every_single_character_error_in_an_id_number_is_caught(number: str, pos: int, char: str) -> None:
    assume(number[pos] != char and (pos == 17 or char != "X"))
    wrong = number[:pos] + char + number[pos + 1:]
    assert not is_gb11643(wrong)
    assert not is_valid_id_number(wrong)


@given(id_numbers(), st.integers(0, 15))
@examples(150)
def test_swapping_two_adjacent_different_digits_is_caught(number: str, pos: int) -> None:
    assume(number[pos] != number[pos + 1])
    swapped = number[:pos] + number[pos + 1] + number[pos] + number[pos + 2:]
    assert not is_valid_id_number(swapped)


@given(id_numbers(), st.sampled_from("0123456789X"))
@examples(200)
def test_every_wrong_check_character_is_refused(number: str, char: str) -> None:
    assume(char != number[17])
    assert not is_valid_id_number(number[:17] + char) and not is_gb11643(number[:17] + char)


@given(REGIONS, st.integers(1900, date.today().year), st.integers(0, 99), st.integers(0, 99),
       st.text("0123456789", min_size=3, max_size=3))
@examples(300)
def test_impossible_dates_are_refused(region: str, year: int, month: int, day: int, seq: str) -> None:
    try:
        date(year, month, day)
        assume(False)  # a real date: not this property's business
    except ValueError:
        pass
    assert not is_valid_id_number(with_check(f"{region}{year:04d}{month:02d}{day:02d}{seq}"))


@given(REGIONS, st.integers(1, 30_000), st.text("0123456789", min_size=3, max_size=3))
@examples(100)
def test_birth_dates_in_the_future_are_refused(region: str, days: int, seq: str) -> None:
    born = date.today() + timedelta(days=days + 1)  # past any time zone's today
    assume(born.year <= 9999)
    assert not is_valid_id_number(with_check(f"{region}{born:%Y%m%d}{seq}"))


@given(st.text("0123456789", min_size=6, max_size=6), BIRTHS, st.text("0123456789", min_size=3, max_size=3))
@examples(300)
def test_codes_that_never_were_a_county_are_refused(region: str, born: date, seq: str) -> None:
    assume(region not in county_codes())
    number = with_check(f"{region}{born:%Y%m%d}{seq}")
    assert not is_valid_id_number(number) and not is_gb11643(number)


def test_a_pudong_resident_born_in_1955_is_valid() -> None:
    """The issue's case: 浦东新区 (310115) dates from 1992, the holder from 1955."""
    number = with_check("31011519550312123")
    assert is_valid_id_number(number) and is_gb11643(number)
    assert len(county_codes()) > 5000 and "310115" in county_codes() and "310225" in county_codes()
    assert not {"310000", "310100", "999999"} & county_codes()


@given(st.text(max_size=40) | st.text("0123456789Xx -", max_size=24))
@examples(300)
def test_the_form_check_and_the_identity_check_agree(text: str) -> None:
    """The strict form format is the identity check on already-normalised input."""
    if is_gb11643(text):
        assert is_valid_id_number(text)
    if is_valid_id_number(text):
        assert is_gb11643(normalise_id(text))


# --------------------------------------------------------------------------- e-certificate identifiers and USCCs

usccs = st.builds(lambda auth, region, seed: new_uscc(auth, region, __import__("random").Random(seed)),
                  st.sampled_from(["11", "12", "91", "92", "93"]),
                  st.sampled_from(["310000", "110000", "440100"]), st.integers(0, 2**32))
serials = st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=32)


@given(usccs, usccs, serials, st.text("0123456789", min_size=3, max_size=3), st.text("0123456789", min_size=3,
                                                                                        max_size=3))
@examples(150)
def test_identifiers_round_trip_and_every_substitution_is_caught(type_uscc: str, issuer: str, serial: str,
                                                                 suffix: str, version: str) -> None:
    assert is_uscc(type_uscc) and is_uscc(issuer)
    identifier = make_identifier(type_uscc + suffix, issuer, serial, version)
    parts = parse_identifier(identifier)
    assert (parts.type_code, parts.issuer_code, parts.serial, parts.version) == (type_uscc + suffix, issuer,
                                                                                serial, version)
    # one wrong character anywhere after the fixed prefix: MOD 37,36 (or the USCC check) catches it
    prefix = len("1.2.156.3005.2.")
    for pos in range(prefix, len(identifier)):
        if identifier[pos] == ".":
            continue
        replacement = "7" if identifier[pos] != "7" else "8"
        assert not is_valid_identifier(identifier[:pos] + replacement + identifier[pos + 1:]), pos


@given(st.text(max_size=200) | st.text("0123456789.ABCXYZ", max_size=120))
@examples(300)
def test_parsing_any_text_as_an_identifier_fails_cleanly(text: str) -> None:
    try:
        parse_identifier(text)
    except InvalidIdentifier as exc:
        assert exc.code == "invalid_certificate_identifier" and not exc.message.isascii()


@given(usccs, st.integers(0, 17), st.sampled_from("0123456789ABCDEFGHJKLMNPQRTUWXY"))
@examples(200)
def test_every_single_character_error_in_a_credit_code_is_caught(code: str, pos: int, char: str) -> None:
    assume(code[pos] != char)
    assert not is_uscc(code[:pos] + char + code[pos + 1:])


# --------------------------------------------------------------------------- access tokens

SECRET = "property-test-secret-0123456789abcdefghij"


def _segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


def _same_bytes(a: str, b: str) -> bool:
    """True when two tokens decode to the same bytes (base64url's last character has spare bits)."""
    try:
        return a.count(".") == b.count(".") and _segments(a) == _segments(b)
    except (ValueError, TypeError):
        return False


@given(st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_\-]{1,40}\.[A-Za-z0-9_\-]{0,200}\.[A-Za-z0-9_\-]{0,60}",
                                            fullmatch=True))
@examples(300)
def test_any_text_as_an_access_token_is_refused_with_a_bearer_error(text: str) -> None:
    service = TokenService(SECRET, MemoryKV())
    with pytest.raises(BearerError):
        asyncio.run(service.verify(text))


@given(st.integers(1, 10**9), st.sampled_from(["citizen", "staff"]), st.data())
@examples(150)
def test_an_access_token_changed_anywhere_is_refused(sub: int, role: str, data: st.DataObject) -> None:
    async def run() -> None:
        service = TokenService(SECRET, MemoryKV())
        token = (await service.issue(sub, role)).access_token
        principal = await service.verify(token)
        assert (principal.citizen_id, principal.role) == (sub, role)
        pos = data.draw(st.integers(0, 10**6)) % len(token)  # SM2 signatures vary in length
        char = data.draw(st.sampled_from(string.ascii_letters + string.digits + "-_."))
        assume(token[pos] != char)
        changed = token[:pos] + char + token[pos + 1:]
        try:
            await service.verify(changed)
        except BearerError:
            return
        assert _same_bytes(changed, token), (pos, char)  # accepted only if it is the same token

    asyncio.run(run())


# --------------------------------------------------------------------------- certificate QR tokens

_SIGNERS = {alg: generate_signer(alg, key_id=f"prop-{alg.lower()}") for alg in ("Ed25519", "SM2-SM3")}
_VERIFIER = Verifier([s.public_key() for s in _SIGNERS.values()])
_NOW = 1_790_000_000  # a fixed clock: the token (and so the examples) are the same every run
_CERT_ID = make_identifier(new_uscc("11", "310000") + "001", new_uscc("11", "310000"), "1")


@given(st.text(max_size=400) | st.from_regex(r"[A-Za-z0-9_\-]{0,300}\.[A-Za-z0-9_\-]{0,120}", fullmatch=True))
@examples(300)
def test_any_text_as_a_qr_token_is_refused_with_a_signature_error(text: str) -> None:
    with pytest.raises(SignatureError):
        verify_qr_token(text, _VERIFIER)


@given(st.sampled_from(sorted(_SIGNERS)), st.data())
@examples(120)
def test_a_qr_token_changed_anywhere_is_refused(alg: str, data: st.DataObject) -> None:
    parts = parse_identifier(_CERT_ID)
    token = make_qr_token(_CERT_ID, "01", parts.issuer_code, date(2026, 1, 1), 600, _SIGNERS[alg], now=_NOW)
    assert verify_qr_token(token, _VERIFIER, _NOW).identifier == _CERT_ID
    pos = data.draw(st.integers(0, 10**6)) % len(token)  # SM2 signatures vary in length
    char = data.draw(st.sampled_from(string.ascii_letters + string.digits + "-_."))
    assume(token[pos] != char)
    changed = token[:pos] + char + token[pos + 1:]
    try:
        verify_qr_token(changed, _VERIFIER, _NOW)
    except (QrTokenInvalid, QrTokenExpired, SignatureError):
        return
    assert _same_bytes(changed, token), (pos, char)


# --------------------------------------------------------------------------- BPMN lint on mutated real models

MODEL_FOLDERS = sorted(p for p in PROCESSES.iterdir() if p.is_dir() and any(p.glob("*.bpmn")))
DEPARTMENTS = load_departments(PROCESSES / "departments.yaml")
_REFS = ("id", "sourceRef", "targetRef", "attachedToRef", "processRef", "default", "name", "calculatedFormKey",
         "formKey", "decisionRef", "errorRef", "messageRef", "signalRef", "isExecutable", "cancelActivity")


@st.composite
def mutated_bundles(draw: st.DrawFn) -> tuple[str, dict[str, str], list[str]]:
    """A real bundle (model, DMN, forms) with 1-4 random structural or textual mutations."""
    folder = draw(st.sampled_from(MODEL_FOLDERS))
    files = read_folder(folder)
    models = sorted(n for n in files if n.endswith((".bpmn", ".dmn")))
    name = draw(st.sampled_from(models))
    root = etree.fromstring(files[name].encode("utf-8"))
    done: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        elements = list(root.iter(etree.Element))
        target = draw(st.sampled_from(elements))
        kind = draw(st.sampled_from(["drop", "duplicate", "attr", "text", "move", "retag"]))
        parent = target.getparent()
        if kind == "drop" and parent is not None:
            parent.remove(target)
        elif kind == "duplicate" and parent is not None:
            parent.append(copy.deepcopy(target))
        elif kind == "attr":
            attr = draw(st.sampled_from(_REFS))
            value = draw(st.sampled_from(["", "missing_ref", "start", "end", "x" * 300, "true", "false", "1 2",
                                          "${a}", "<&>", "Lane_samr"]) | st.text(max_size=20))
            try:
                if draw(st.booleans()) and attr in target.attrib:
                    del target.attrib[attr]
                else:
                    target.set(attr, value)
            except ValueError:  # text XML cannot hold (control characters)
                continue
        elif kind == "text":
            value = draw(st.sampled_from(["", "1 +", "import os", "__import__('os').system('id')", "PT-1S",
                                          "open('/etc/passwd')", "x" * 2000, "None", "\"PT0S\"", "R/PT1S"])
                         | st.text(max_size=30))
            try:
                target.text = value
            except ValueError:
                continue
        elif kind == "move" and parent is not None and len(elements) > 2:
            other = draw(st.sampled_from(elements))
            if other is not target and target not in other.iterancestors():
                try:
                    parent.remove(target)
                    other.append(target)
                except ValueError:
                    continue
        elif kind == "retag":
            namespace = etree.QName(target).namespace
            local = draw(st.sampled_from(["task", "userTask", "scriptTask", "exclusiveGateway", "parallelGateway",
                                          "endEvent", "startEvent", "sequenceFlow", "lane", "boundaryEvent",
                                          "unknownThing"]))
            target.tag = f"{{{namespace}}}{local}" if namespace else local
        done.append(f"{kind} {etree.QName(target).localname}#{target.get('id')}")
    text = etree.tostring(root, encoding="unicode")
    if draw(st.integers(0, 9)) == 0:  # sometimes not even well-formed XML any more
        cut = draw(st.integers(0, len(text)))
        text = text[:cut]
    mutated = {**files, name: text}
    if draw(st.integers(0, 7)) == 0:  # and sometimes a form is broken too
        form_names = [n for n in files if n.endswith(".json")]
        if form_names:
            mutated[draw(st.sampled_from(form_names))] = draw(st.sampled_from(["{", "[]", '{"type": 7}', ""]))
    return folder.name, mutated, done


def test_lint_accepts_the_unmutated_models() -> None:
    for folder in MODEL_FOLDERS:
        report = lint_bundle(read_folder(folder), departments=DEPARTMENTS)
        assert report.ok, (folder.name, [f.one_line() for f in report.errors])


@given(mutated_bundles())
@examples(120)
def test_lint_turns_any_mutation_of_a_real_model_into_findings(bundle: tuple[str, dict[str, str], list[str]]) -> None:
    folder, files, mutations = bundle
    report = lint_bundle(files, departments=DEPARTMENTS)  # must not raise
    internal = [f.one_line() for f in report.findings if "internal linter failure" in f.message]
    assert not internal, (folder, mutations, internal)
    for finding in report.findings:
        assert finding.severity in {"error", "warning"} and finding.message and finding.file


@given(mutated_bundles())
@examples(25)
def test_govflow_validate_answers_a_line_per_mutated_file(tmp_path_factory: pytest.TempPathFactory,
                                                          bundle: tuple[str, dict[str, str], list[str]]) -> None:
    folder, files, _ = bundle
    target: Path = tmp_path_factory.mktemp(folder)
    for name, text in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    lines = validate_paths([target], departments=DEPARTMENTS)
    assert lines and all(line.text for line in lines)
    assert not any("cannot be validated" in line.text for line in lines), [line.text for line in lines]


@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda p: p.name)
def test_a_dangling_flow_in_each_real_model_is_an_error(folder: Path) -> None:
    """The mutations above are not all harmless: the plainest one is always reported."""
    files = read_folder(folder)
    [name] = [n for n in files if n.endswith(".bpmn")]
    root = etree.fromstring(files[name].encode("utf-8"))
    flow = next(el for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "sequenceFlow")
    flow.set("targetRef", "no_such_element")
    report = lint_bundle({**files, name: etree.tostring(root, encoding="unicode")}, departments=DEPARTMENTS)
    assert report.errors, folder.name
