"""Shared-data connectors over the demo CSVs and a real local HTTP exchange server; access logs."""

from __future__ import annotations

import csv
import importlib.util
import json
import socket
import threading
import time
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import unquote

import httpx
import pytest
from stdnum.cn import ric, uscc

from engine import build_engine
from engine.accountability.privacy import blind_index, is_valid_id_number
from engine.config import PROJECT_ROOT
from engine.errors import DependencyDown, ModelError
from engine.kernel.connectors import ConnectorContext, ConnectorRegistry
from engine.platform.connectors.builtin import (
    install_shared_data,
    register_shared_data_connectors,
    today_in_china,
    write_access_log,
)
from engine.platform.connectors.http_source import HttpDataSource
from engine.platform.connectors.shared_data import CsvDataSource, normalise_company_name
from engine.store.models import Case
from engine.store.shared_models import DataAccessLog
from tests.conftest import model_files

DEMO = PROJECT_ROOT / "processes" / "demo"
KEY = b"test-pii-key-0123456789abcdefghij"
TODAY = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
LOCAL_65, LOCAL_40, NONLOCAL_70 = "310104196103150273", "310110198606200486", "110101195605100718"
LOCAL_59, LOCAL_60_TODAY, LOCAL_95 = "310106196612050927", "310109196611291162", "310101193108081243"
MOTHER, FATHER, BLACKLISTED = "310112199504121645", "32010219930908143X", "310107198107011877"
SINGLE_MOTHER, NOT_IN_REGISTRY = "440106199802142083", "310101198001010034"
MEDIA, CANCELLED, BAD_COMPANY = "91310115069655777U", "913101064878815585", "91310112378818621W"


def rows(name: str) -> list[dict[str, str]]:
    with (DEMO / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def context() -> ConnectorContext:
    return ConnectorContext(case_no="SENIOR-20261129-TEST0001", service="senior", actor="clerk01", purpose="办理 senior")


def connectors_over(source: Any, clock: Any = lambda: TODAY) -> ConnectorRegistry:
    registry = ConnectorRegistry()
    register_shared_data_connectors(registry, source, pii_key=KEY, clock=clock)
    return registry


@pytest.fixture(scope="module")
def source() -> CsvDataSource:
    return CsvDataSource(DEMO)


@pytest.fixture
def registry(source: CsvDataSource) -> ConnectorRegistry:
    return connectors_over(source)


# ---------------------------------------------------------------------------- demo data
def test_demo_data_is_valid_and_consistent() -> None:
    people = rows("population.csv")
    assert len(people) >= 60 and len({p["id_number"] for p in people}) == len(people)
    for p in people:
        assert ric.is_valid(p["id_number"]), p["id_number"]
        assert ric.get_birth_date(p["id_number"]).isoformat() == p["birth_date"]
        assert (int(p["id_number"][16]) % 2 == 1) == (p["gender"] == "男")
        assert p["phone"] == "" or (len(p["phone"]) == 11 and p["phone"].startswith("1"))
    ages = [today_in_china(lambda: TODAY).year - int(p["birth_date"][:4]) for p in people]
    assert min(ages) < 18 and max(ages) >= 90 and sum(60 <= a <= 95 for a in ages) >= 15
    assert {p["household_region"][:2] == "31" for p in people} == {True, False}
    by_id = {p["id_number"]: p for p in people}
    assert NOT_IN_REGISTRY not in by_id and is_valid_id_number(NOT_IN_REGISTRY)
    for birth in rows("birth_records.csv"):
        assert birth["mother_id_number"] in by_id and birth["father_id_number"] in {"", *by_id}
    companies = rows("companies.csv")
    assert all(uscc.is_valid(c["uscc"]) for c in companies)
    for item in rows("credit_blacklist.csv"):
        valid = ric.is_valid if item["subject_type"] == "person" else uscc.is_valid
        assert valid(item["subject"])


def test_demo_staff_cover_every_department() -> None:
    import yaml

    staff = rows("staff.csv")
    names = {s["username"] for s in staff}
    assert {"clerk01", "clerk02", "mca01", "mca02", "mca_sup", "designer01", "admin"} <= names
    departments = [d["code"] for d in yaml.safe_load((PROJECT_ROOT / "processes" / "departments.yaml").read_text())]
    for code in departments:
        roles = {r for s in staff if code in s["departments"].split("|") for r in s["roles"].split("|")}
        assert {"officer", "supervisor"} <= roles, code


def test_generator_reproduces_the_committed_files() -> None:
    spec = importlib.util.spec_from_file_location("demo_generate", DEMO / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    gen = module.Generator()
    gen.population()
    assert gen.people == rows("population.csv")
    assert gen.staff() == rows("staff.csv")


# ---------------------------------------------------------------------------- connectors
@pytest.mark.parametrize("number, age, local", [
    (LOCAL_65, 65, True), (LOCAL_40, 40, True), (NONLOCAL_70, 70, False), (LOCAL_59, 59, True),
    (LOCAL_60_TODAY, 60, True), (LOCAL_95, 95, True), (SINGLE_MOTHER, 28, False)])
def test_population_lookup_fixed_people(registry: ConnectorRegistry, number: str, age: int, local: bool) -> None:
    ctx = context()
    person = registry.call("population.lookup", {"id_number": number.lower()}, ctx)
    assert person["found"] and person["age"] == age and person["local"] is local
    assert set(person) == {"found", "valid", "name", "gender", "birth_date", "region_code", "household_region",
                           "local", "age"}  # no phone: only what processes need
    [(kind, log)] = ctx.records
    assert kind == "access_log" and log["subject_hash"] == blind_index(number, KEY)
    assert log["subject_masked"] == number[:3] + "*" * 11 + number[-4:]
    assert log["dataset"] == "population" and "name" in log["fields_read"]
    assert (log["actor"], log["case_no"], log["purpose"]) == ("clerk01", "SENIOR-20261129-TEST0001", "办理 senior")
    assert number not in repr(ctx.records) and number.lower() not in repr(ctx.records)


def test_population_lookup_not_found_invalid_and_missing(registry: ConnectorRegistry) -> None:
    ctx = context()
    absent = registry.call("population.lookup", {"id_number": NOT_IN_REGISTRY, "purpose": "核验身份"}, ctx)
    assert absent["found"] is False and absent["valid"] is True and absent["age"] is None
    [(_, log)] = ctx.records  # the query itself is logged: who asked about whom
    assert log["fields_read"] == [] and log["purpose"] == "核验身份" and NOT_IN_REGISTRY not in repr(ctx.records)
    invalid = registry.call("population.lookup", {"id_number": "310104196103150274"}, ctx)
    assert invalid["found"] is False and invalid["valid"] is False and len(ctx.records) == 1
    with pytest.raises(ModelError, match="id_number"):
        registry.call("population.lookup", {}, ctx)


def test_age_turns_at_shanghai_midnight(source: CsvDataSource) -> None:
    before = connectors_over(source, lambda: datetime(2026, 11, 28, 15, 59, tzinfo=timezone.utc))
    after = connectors_over(source, lambda: datetime(2026, 11, 28, 16, 0, tzinfo=timezone.utc))
    assert before.call("population.lookup", {"id_number": LOCAL_60_TODAY}, context())["age"] == 59
    assert after.call("population.lookup", {"id_number": LOCAL_60_TODAY}, context())["age"] == 60
    on_date = connectors_over(source, lambda: date(2026, 12, 5))
    assert on_date.call("population.lookup", {"id_number": LOCAL_59}, context())["age"] == 60


def test_company_name_check(registry: ConnectorRegistry) -> None:
    assert normalise_company_name(" 上海东方明珠 文化传媒有限责任公司") == "上海东方明珠文化传媒"
    ctx = context()
    for name in ["上海东方明珠文化传媒有限公司", "上海东方明珠文化传媒有限责任公司", "上海 东方明珠文化传媒",
                 "上海东方明珠文化传媒股份有限公司", "上海东方明珠文化传媒公司", "上海东方明珠文化传媒\u3000有限公司"]:
        result = registry.call("company.name_check", {"name": name}, ctx)
        assert result == {"available": False, "conflict_with": "上海东方明珠文化传媒有限公司",
                          "reason": "与已登记的企业名称相同或近似"}, name
    assert registry.call("company.name_check", {"name": "上海云帆信息科技有限公司"}, ctx)["available"] is True
    assert registry.call("company.name_check", {"name": "上海旧日贸易有限公司"}, ctx)["available"] is True  # 注销
    assert registry.call("company.name_check", {"name": "  "}, ctx)["available"] is False
    assert ctx.records == []  # company names are not personal data


def test_credit_blacklist(registry: ConnectorRegistry) -> None:
    ctx = context()
    person = registry.call("credit.blacklist_check", {"subject": BLACKLISTED}, ctx)
    assert person["listed"] and person["subject_type"] == "person" and "拒不履行" in person["reason"]
    company = registry.call("credit.blacklist_check", {"subject": BAD_COMPANY.lower()}, ctx)
    assert company["listed"] and company["subject_type"] == "company" and "农民工工资" in company["reason"]
    clean = registry.call("credit.blacklist_check", {"subject": LOCAL_65}, ctx)
    assert clean["listed"] is False and clean["reason"] is None
    assert registry.call("credit.blacklist_check", {"subject": MEDIA}, ctx)["listed"] is False
    assert registry.call("credit.blacklist_check", {"subject": "nonsense"}, ctx)["valid"] is False
    assert [p["fields_read"] for _, p in ctx.records] == [["listed", "reason", "authority", "listed_date"], ["listed"]]
    assert BLACKLISTED not in repr(ctx.records) and LOCAL_65 not in repr(ctx.records)


def test_hospital_birth_record(registry: ConnectorRegistry) -> None:
    ctx = context()
    by_cert = registry.call("hospital.birth_record", {"certificate_no": "q312600001"}, ctx)
    assert by_cert["found"] and by_cert["baby_name"] == "周小雨" and by_cert["birth_time"] == "08:35"
    assert by_cert["mother_id_number"] == MOTHER and by_cert["father_id_number"] == FATHER
    assert [p["subject_masked"] for _, p in ctx.records] == ["Q*****0001", "310***********1645", "320***********143X"]
    assert {p["subject_hash"] for _, p in ctx.records} >= {blind_index(MOTHER, KEY), blind_index(FATHER, KEY)}
    assert MOTHER not in repr(ctx.records) and FATHER not in repr(ctx.records)
    ctx = context()
    by_mother = registry.call("hospital.birth_record", {"mother_id_number": SINGLE_MOTHER}, ctx)
    assert by_mother["certificate_no"] == "Q312600002" and by_mother["father_id_number"] is None
    assert len(ctx.records) == 2 and SINGLE_MOTHER not in repr(ctx.records)  # baby + mother, no father
    ctx = context()
    assert registry.call("hospital.birth_record", {"mother_id_number": LOCAL_95}, ctx)["found"] is False
    assert registry.call("hospital.birth_record", {"certificate_no": "Q999999999"}, ctx)["found"] is False
    assert len(ctx.records) == 2 and LOCAL_95 not in repr(ctx.records)
    with pytest.raises(ModelError):
        registry.call("hospital.birth_record", {"baby": "x"}, ctx)


def test_csv_source_errors(source: CsvDataSource, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ModelError, match="未知的共享数据集"):
        source.lookup("tax_records", LOCAL_65)
    assert source.exists("population", LOCAL_65) and not source.exists("population", NOT_IN_REGISTRY)
    assert source.lookup("companies", CANCELLED.lower())["status"] == "注销"
    copy = source.lookup("population", LOCAL_65)
    copy["name"] = "改名"  # callers get copies, never the index
    assert source.lookup("population", LOCAL_65)["name"] == "王建国"
    with pytest.raises(DependencyDown, match="population.csv"):
        CsvDataSource(tmp_path).lookup("population", LOCAL_65)


# ---------------------------------------------------------------------------- HTTP exchange source
def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def refused_url() -> str:
    """A local port nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def exchange(source: CsvDataSource) -> Iterator[str]:
    """A real exchange platform on 127.0.0.1 serving the demo rows; needs the bearer token."""
    release = threading.Event()

    class Exchange(Quiet):
        def do_GET(self) -> None:  # noqa: N802
            parts = self.path.strip("/").split("/")
            if self.headers.get("Authorization") != "Bearer s3cret":
                return self.reply(401, {"error": "unauthorized"})
            if parts[:1] == ["slow"]:
                release.wait(10)
                return self.reply(200, {})
            if len(parts) != 4 or parts[0] != "datasets" or parts[2] != "records":
                return self.reply(400, {"error": "bad path"})
            record = source.lookup(unquote(parts[1]), unquote(parts[3]))
            return self.reply(200, record) if record else self.reply(404, {"error": "not found"})

    server, url = serve(Exchange)
    yield url
    release.set()
    server.shutdown()
    server.server_close()


def test_http_source_against_a_real_server(exchange: str, caplog: pytest.LogCaptureFixture) -> None:
    with HttpDataSource(exchange, token="s3cret", timeout_s=2) as http:
        with caplog.at_level("INFO", logger="httpx"):
            assert http.lookup("population", LOCAL_65)["name"] == "王建国"
        assert LOCAL_65 not in caplog.text and "310***********0273" in caplog.text  # httpx logs URLs
        assert http.lookup("population", NOT_IN_REGISTRY) is None and not http.exists("population", NOT_IN_REGISTRY)
        assert http.lookup("company_names", "上海东方明珠文化传媒有限责任公司")["uscc"] == MEDIA
        with pytest.raises(ModelError):
            http.lookup("tax_records", LOCAL_65)
        registry = connectors_over(http)  # the same connectors, unchanged, over HTTP
        csv_registry = connectors_over(CsvDataSource(DEMO))
        for name, params in [("population.lookup", {"id_number": NONLOCAL_70}),
                             ("hospital.birth_record", {"mother_id_number": MOTHER}),
                             ("credit.blacklist_check", {"subject": BAD_COMPANY})]:
            assert registry.call(name, params, context()) == csv_registry.call(name, params, context())
    with HttpDataSource(exchange, token="wrong", timeout_s=2) as http, pytest.raises(DependencyDown, match="401"):
        http.lookup("population", LOCAL_65)


def test_http_source_failures_are_dependency_down(exchange: str) -> None:
    class Broken(Quiet):
        def do_GET(self) -> None:  # noqa: N802
            self.reply(500, {"error": "boom"})

    server, url = serve(Broken)
    try:
        with HttpDataSource(url, timeout_s=2) as http, pytest.raises(DependencyDown, match="HTTP 500") as info:
            http.lookup("population", LOCAL_65)
        assert info.value.kind == "unavailable" and "共享数据交换平台" in info.value.message
    finally:
        server.shutdown()
        server.server_close()
    with HttpDataSource(refused_url(), timeout_s=2) as http, pytest.raises(DependencyDown, match="无法连接"):
        http.lookup("population", LOCAL_65)
    started = time.monotonic()
    with HttpDataSource(f"{exchange}/slow", token="s3cret", timeout_s=0.3) as http:
        with pytest.raises(DependencyDown, match="超时"):
            http.lookup("population", LOCAL_65)
    assert time.monotonic() - started < 5  # bounded by the timeout, not by the server


def test_http_source_transport_is_injectable() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"not json")

    with HttpDataSource("https://exchange.example/api/", token="t", transport=httpx.MockTransport(handle)) as http:
        with pytest.raises(DependencyDown, match="无法识别"):
            http.lookup("company_names", "上海 云帆信息科技有限公司")
    assert seen[0].url.path == "/api/datasets/company_names/records/上海云帆信息科技"
    assert seen[0].headers["Authorization"] == "Bearer t"


# ---------------------------------------------------------------------------- in the engine
async def test_engine_case_reads_population_and_stores_access_logs_with_the_case(db: str, settings) -> None:  # noqa: ANN001

    engine = build_engine(settings, connectors=ConnectorRegistry())
    register_shared_data_connectors(engine.deps.connectors, CsvDataSource(DEMO), pii_key=KEY, clock=lambda: TODAY)
    engine.deps.record_writers["access_log"] = write_access_log
    definition = await engine.deploy(model_files("population_lookup"))
    result = await engine.start_case(definition, service="senior-card", data={"id_number": LOCAL_65},
                                     applicant="dev-wang", actor="citizen:dev-wang")
    assert result.status == "running" and result.data["eligible"] is True and result.data["person"]["age"] == 65
    [log] = await DataAccessLog.all()
    assert (log.case_id, log.case_no, log.dataset) == (result.id, result.case_no, "population")
    assert log.subject_masked == "310***********0273" and log.subject_hash == blind_index(LOCAL_65, KEY)
    assert (log.purpose, log.department, log.actor) == ("核验老年人优待证申请人年龄和户籍", "window", "citizen:dev-wang")
    assert "birth_date" in log.fields_read
    [task] = result.ready_tasks
    done = await engine.complete_task(task.id, {}, actor="clerk01")
    assert done.status == "completed" and done.data["credit"]["listed"] is False
    logs = await DataAccessLog.filter(case_id=result.id).order_by("id")
    assert [(x.dataset, x.actor, x.case_no) for x in logs] == [
        ("population", "citizen:dev-wang", result.case_no), ("credit_blacklist", "clerk01", result.case_no)]
    stored = [(x.subject_hash, x.subject_masked, x.purpose, json.dumps(x.fields_read)) for x in logs]
    assert LOCAL_65 not in repr(stored)


async def test_engine_step_fails_as_dependency_down_and_stores_nothing(db: str, settings) -> None:  # noqa: ANN001

    engine = build_engine(settings, connectors=ConnectorRegistry())
    with HttpDataSource(refused_url(), timeout_s=1) as down:
        install_shared_data(engine.deps, settings, source=down)
        definition = await engine.deploy(model_files("population_lookup"))
        with pytest.raises(DependencyDown):
            await engine.start_case(definition, service="senior-card", data={"id_number": LOCAL_65})
    assert await Case.all().count() == 0 and await DataAccessLog.all().count() == 0


async def test_install_shared_data_wires_connectors_writer_and_engine_clock(db: str, settings) -> None:  # noqa: ANN001

    engine = build_engine(settings, connectors=ConnectorRegistry())
    install_shared_data(engine.deps, settings)  # development: demo CSVs and the fixed dev key
    assert {"population.lookup", "company.name_check", "credit.blacklist_check",
            "hospital.birth_record"} <= set(engine.deps.connectors.names())
    assert engine.deps.record_writers["access_log"] is write_access_log
    engine.deps.clock = lambda: datetime(2026, 12, 5, 4, 0, tzinfo=timezone.utc)
    person = engine.deps.connectors.call("population.lookup", {"id_number": LOCAL_59}, context())
    assert person["age"] == 60 and person["local"] is True
