"""Citizen identity: login, real-name binding with encrypted storage, and the WeChat client
against a real local fake WeChat server (tests/fakes/wechat_server.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from stdnum.cn import ric

from engine.accountability.privacy import PiiKeys, blind_index, decrypt
from engine.citizen import identity
from engine.citizen.identity import (
    DevRealNameVerifier,
    IdentityConflict,
    RealNameAlreadyBound,
    RealNameNotConfigured,
    bind_real_name,
    citizen_view,
    find_by_id_number,
    login,
    read_identity,
)
from engine.config import Settings
from engine.errors import DependencyDown, ValidationFailed
from engine.store.db import db_connection
from engine.store.identity_models import LEVEL_NONE, LEVEL_VERIFIED, Citizen
from engine.store.shared_models import DataAccessLog
from mobile_api.errors import status_of
from mobile_api.wechat import (
    DevWeChatClient,
    InvalidCode,
    RiskyUser,
    UnconfiguredWeChat,
    WeChatClient,
    WeChatNotConfigured,
    WeChatRateLimited,
    wechat_client_from_settings,
)
from tests.fakes.wechat_server import APPID, SECRET, SESSION_KEY_PREFIX, FakeWeChat

KEYS = PiiKeys(b"t" * 32)
VERIFIER = DevRealNameVerifier(env="development")


def make_id(first17: str) -> str:
    """A GB 11643-valid number from its first 17 digits."""
    return first17 + ric.calc_check_digit(first17 + "0")  # stdnum expects a placeholder check char


ZHANG_ID = make_id("11010519491231002")  # ...002X
LI_ID = make_id("31010419610315027")


def with_wrong_check_digit(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


# --------------------------------------------------------------------------- login

async def test_login_creates_once_then_fetches(db: str) -> None:
    first = await login("o-alice")
    assert first.real_name_level == LEVEL_NONE and first.id_hash is None and first.unionid is None
    again = await login("o-alice", "u-alice")
    assert again.id == first.id and again.unionid == "u-alice"
    assert await Citizen.all().count() == 1
    other = await login("o-bob")
    assert other.id != first.id


@pytest.mark.parametrize("openid", ["", None, "x" * 65, 42])
async def test_login_refuses_a_missing_or_odd_openid(db: str, openid: object) -> None:
    with pytest.raises(ValidationFailed):
        await login(openid)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real name

async def test_binding_a_valid_number_reaches_level_2_and_shows_only_masked_values(db: str) -> None:
    citizen = await bind_real_name(await login("o-zhang"), " 张三丰 ", ZHANG_ID.lower(), pii_keys=KEYS,
                                   verifier=VERIFIER)
    assert citizen.real_name_level == LEVEL_VERIFIED and citizen.evidence_id.startswith("dev-")
    assert citizen.verified_at is not None
    view = citizen_view(citizen)
    assert view == {"id": citizen.id, "real_name_level": 2, "real_name_bound": True, "name_masked": "张**",
                    "id_masked": "110***********002X", "verified_at": citizen.verified_at.isoformat()}
    assert ZHANG_ID not in str(view) and "三丰" not in str(view)


async def test_the_stored_row_holds_no_clear_name_or_id_number_in_any_column(db: str) -> None:
    citizen = await bind_real_name(await login("o-zhang"), "张三丰", ZHANG_ID, pii_keys=KEYS, verifier=VERIFIER)
    rows = await db_connection().execute_query_dict("SELECT * FROM citizens")
    assert len(rows) == 1
    row = rows[0]
    assert {"openid", "id_hash", "id_enc", "id_masked", "name_enc", "name_masked", "evidence_id"} <= set(row)
    hidden = [ZHANG_ID, ZHANG_ID.lower(), ZHANG_ID[:17], ZHANG_ID[3:14], "张三丰", "三丰"]
    for column, value in row.items():
        for secret in hidden:
            assert secret not in str(value), f"{column} contains {secret!r}"
    assert row["id_hash"] == blind_index(ZHANG_ID, KEYS.blind_index_key)
    assert row["id_enc"].startswith("v2:k0:") and row["name_enc"].startswith("v2:k0:")  # key id travels along
    # ciphertexts are bound to their row and column: copied elsewhere they do not decrypt
    with pytest.raises(ValueError):
        decrypt(row["id_enc"], KEYS.encryption_key, context=f"citizen:{citizen.id + 1}:id_number".encode())
    with pytest.raises(ValueError):
        decrypt(row["id_enc"], KEYS.encryption_key, context=f"citizen:{citizen.id}:name".encode())


async def test_blind_index_finds_the_person_without_the_number_stored(db: str) -> None:
    citizen = await bind_real_name(await login("o-zhang"), "张三丰", ZHANG_ID, pii_keys=KEYS, verifier=VERIFIER)
    found = await find_by_id_number(f" {ZHANG_ID[:6]} {ZHANG_ID[6:].lower()} ", pii_keys=KEYS)
    assert found is not None and found.id == citizen.id
    assert await find_by_id_number(LI_ID, pii_keys=KEYS) is None
    assert await find_by_id_number(ZHANG_ID, pii_keys=PiiKeys(b"o" * 32)) is None  # another key, another index


async def test_invalid_check_digit_is_a_422_on_id_number(db: str) -> None:
    citizen = await login("o-zhang")
    with pytest.raises(ValidationFailed) as caught:
        await bind_real_name(citizen, "张三", with_wrong_check_digit(ZHANG_ID), pii_keys=KEYS, verifier=VERIFIER)
    assert caught.value.kind == "invalid" and set(caught.value.fields) == {"id_number"}
    assert (await Citizen.get(id=citizen.id)).id_hash is None


@pytest.mark.parametrize(("name", "number", "fields"), [
    (123, ZHANG_ID, {"name"}), ("张三", 110105194912310020, {"id_number"}), ("", "", {"name", "id_number"}),
    ("张三1", ZHANG_ID, {"name"}), ("张" * 51, ZHANG_ID, {"name"}), ("张三", "11010519491231002", {"id_number"}),
    (None, None, {"name", "id_number"}),
])
async def test_wrong_types_and_shapes_name_every_bad_field(db: str, name: object, number: object,
                                                           fields: set[str]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await bind_real_name(await login("o-x"), name, number, pii_keys=KEYS, verifier=VERIFIER)
    assert set(caught.value.fields) == fields


async def test_minority_names_with_separator_are_accepted(db: str) -> None:
    citizen = await bind_real_name(await login("o-m"), "阿卜杜·热合曼", LI_ID, pii_keys=KEYS, verifier=VERIFIER)
    assert citizen.name_masked == "阿******"


async def test_the_same_number_for_a_second_openid_is_a_conflict(db: str) -> None:
    await bind_real_name(await login("o-first"), "张三", ZHANG_ID, pii_keys=KEYS, verifier=VERIFIER)
    second = await login("o-second")
    with pytest.raises(IdentityConflict) as caught:
        await bind_real_name(second, "张三", ZHANG_ID, pii_keys=KEYS, verifier=VERIFIER)
    assert caught.value.kind == "conflict" and caught.value.code == "identity_already_bound"
    assert "已绑定" in caught.value.message
    assert (await Citizen.get(id=second.id)).id_hash is None


async def test_rebinding_the_same_person_is_idempotent_and_another_number_is_refused(db: str) -> None:
    citizen = await bind_real_name(await login("o-zhang"), "张三", ZHANG_ID, pii_keys=KEYS, verifier=VERIFIER)
    evidence, verified_at = citizen.evidence_id, citizen.verified_at
    again = await bind_real_name(await login("o-zhang"), "张三", ZHANG_ID.lower(), pii_keys=KEYS, verifier=VERIFIER)
    assert again.id == citizen.id and again.evidence_id == evidence and again.verified_at == verified_at
    with pytest.raises(RealNameAlreadyBound) as caught:
        await bind_real_name(again, "李四", LI_ID, pii_keys=KEYS, verifier=VERIFIER)
    assert caught.value.kind == "conflict" and caught.value.code == "real_name_already_bound"


async def test_decrypting_is_logged_with_actor_and_purpose(db: str) -> None:
    citizen = await bind_real_name(await login("o-zhang"), "张三丰", ZHANG_ID, pii_keys=KEYS, verifier=VERIFIER)
    assert await DataAccessLog.all().count() == 0  # binding and viewing decrypt nothing
    real = await read_identity(citizen, pii_keys=KEYS, actor="citizen:1", purpose="提交申请：老年人优待证")
    assert real.id_number == ZHANG_ID and real.name == "张三丰"
    assert ZHANG_ID not in repr(real) and "张三丰" not in repr(real)
    entry = await DataAccessLog.get()
    assert entry.actor == "citizen:1" and entry.purpose == "提交申请：老年人优待证" and entry.dataset == "citizen"
    assert entry.subject_hash == citizen.id_hash and entry.subject_masked == "110***********002X"
    with pytest.raises(ValueError):
        await read_identity(citizen, pii_keys=KEYS, actor="", purpose="")


def test_development_helpers_cannot_be_built_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError):
        DevRealNameVerifier(env="production")
    with pytest.raises(RuntimeError):
        DevWeChatClient(env="production")
    monkeypatch.setenv("GOVFLOW_ENV", "production")  # even when a caller passes the wrong env
    with pytest.raises(RuntimeError):
        DevWeChatClient(env="development")
    with pytest.raises(RuntimeError):
        DevRealNameVerifier(env="development")


async def test_production_without_a_verifier_refuses_binding(db: str) -> None:
    verifier = identity.real_name_verifier_from_settings(Settings(ENV="production"))
    with pytest.raises(RealNameNotConfigured) as caught:
        await bind_real_name(await login("o-z"), "张三", ZHANG_ID, pii_keys=KEYS, verifier=verifier)
    assert caught.value.kind == "unavailable"
    assert (await Citizen.get(openid="o-z")).id_hash is None


# --------------------------------------------------------------------------- WeChat client

@pytest.fixture
def wechat() -> Iterator[FakeWeChat]:
    with FakeWeChat(hang_s=3) as server:
        yield server
    assert server.problems == []


def client_for(server: FakeWeChat, **kwargs: object) -> WeChatClient:
    return WeChatClient(server.url, APPID, SECRET, **kwargs)  # type: ignore[arg-type]


async def test_client_keeps_one_connection_to_wechat_across_logins(wechat: FakeWeChat) -> None:
    """One client per app, its connection kept alive: a login does not pay a TCP set-up to WeChat."""
    client = client_for(wechat)
    try:
        for n in range(3):
            await client.jscode2session(f"ok-user{n}")
    finally:
        await client.aclose()
    assert len(wechat.requests) == 3
    assert len({r.client_port for r in wechat.requests}) == 1


async def test_client_exchanges_a_code_with_the_fake_server(wechat: FakeWeChat) -> None:
    client = client_for(wechat)
    try:
        session = await client.jscode2session("ok-alice")
        no_union = await client.jscode2session("nounion-bob")
    finally:
        await client.aclose()
    assert (session.openid, session.unionid) == ("o-alice", "u-alice")
    assert session.session_key == SESSION_KEY_PREFIX + "alice" and SESSION_KEY_PREFIX not in repr(session)
    assert no_union.unionid is None
    sent = wechat.requests[0]
    assert sent.path == "/sns/jscode2session"
    assert sent.params == {"appid": APPID, "secret": SECRET, "js_code": "ok-alice",
                           "grant_type": "authorization_code"}
    assert SECRET not in repr(client)


@pytest.mark.parametrize(("code", "error", "status"), [
    ("bad-1", InvalidCode, 401), ("used-1", InvalidCode, 401), ("slow-1", WeChatRateLimited, 429),
    ("risky-1", RiskyUser, 403), ("busy-1", DependencyDown, 503), ("garbage-1", DependencyDown, 503),
    ("http500-1", DependencyDown, 503), ("hang-1", DependencyDown, 503),
])
async def test_client_maps_wechat_errors(wechat: FakeWeChat, code: str, error: type[Exception],
                                         status: int) -> None:
    client = client_for(wechat, timeout_s=0.3)
    try:
        with pytest.raises(error) as caught:
            await client.jscode2session(code)
    finally:
        await client.aclose()
    assert status_of(caught.value) == status  # type: ignore[arg-type]
    if isinstance(caught.value, WeChatRateLimited):
        assert caught.value.retry_after > 0


async def test_client_reports_an_unreachable_wechat_as_dependency_down() -> None:
    client = WeChatClient("http://127.0.0.1:1", APPID, SECRET, timeout_s=1)
    try:
        with pytest.raises(DependencyDown):
            await client.jscode2session("ok-alice")
    finally:
        await client.aclose()


async def test_client_refuses_odd_codes_without_calling_wechat(wechat: FakeWeChat) -> None:
    client = client_for(wechat)
    try:
        for code in ("", "   ", "x" * 129, None, 12):
            with pytest.raises(InvalidCode):
                await client.jscode2session(code)  # type: ignore[arg-type]
    finally:
        await client.aclose()
    assert wechat.requests == []


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_httpx_request_log_never_shows_secret_or_code(wechat: FakeWeChat) -> None:
    httpx_log, collect = logging.getLogger("httpx"), _Collect()
    level = httpx_log.level
    httpx_log.addHandler(collect)
    httpx_log.setLevel(logging.DEBUG)
    client = client_for(wechat)
    try:
        await client.jscode2session("ok-carol")
    finally:
        await client.aclose()
        httpx_log.removeHandler(collect)
        httpx_log.setLevel(level)
    text = "\n".join(collect.lines)
    assert "jscode2session" in text  # httpx did log the request...
    assert SECRET not in text and "ok-carol" not in text and SESSION_KEY_PREFIX not in text  # ...redacted


async def test_dev_client_maps_dev_codes_and_refuses_others() -> None:
    client = DevWeChatClient(env="development")
    session = await client.jscode2session("dev-alice")
    assert session.openid == "dev-alice" and session.unionid is None
    for code in ("alice", "dev-", "dev-a b", "dev-" + "a" * 41):
        with pytest.raises(InvalidCode):
            await client.jscode2session(code)


def test_client_choice_follows_settings() -> None:
    def settings(**kw: object) -> SimpleNamespace:
        base = {"ENV": "development", "WECHAT_APPID": "", "WECHAT_SECRET": "", "WECHAT_API_BASE": "http://x",
                "WECHAT_TIMEOUT_MS": 1000}
        return SimpleNamespace(**{**base, **kw})

    assert isinstance(wechat_client_from_settings(settings()), DevWeChatClient)
    assert isinstance(wechat_client_from_settings(settings(WECHAT_APPID="a", WECHAT_SECRET="s")), WeChatClient)
    assert isinstance(wechat_client_from_settings(settings(ENV="production")), UnconfiguredWeChat)
    assert isinstance(wechat_client_from_settings(settings(ENV="production", WECHAT_APPID="a")), UnconfiguredWeChat)


async def test_unconfigured_wechat_answers_503_not_configured() -> None:
    with pytest.raises(WeChatNotConfigured) as caught:
        await UnconfiguredWeChat().jscode2session("dev-alice")
    assert caught.value.kind == "unavailable" and caught.value.code == "wechat_not_configured"


# --------------------------------------------------------------------------- region codes (issue #14)

@pytest.mark.parametrize("first17", [
    "31011519550312123",  # 浦东新区 (1992-), born 1955: the code of the office that issued the number
    "31011219400101002",  # 闵行区 (1981-), born 1940
    "44030619520706001",  # 深圳市宝安区 (1992-), born 1952
    "11010319450101001",  # 崇文区: abolished in 2010, its numbers stay valid
    "31022519380101002",  # 南汇县 (1982-2001)
])
async def test_seniors_whose_county_code_is_younger_than_they_are_bind(db: str, first17: str) -> None:
    number = make_id(first17)
    citizen = await bind_real_name(await login(f"o-{first17}"), "王秀英", number, pii_keys=KEYS, verifier=VERIFIER)
    assert citizen.real_name_level == LEVEL_VERIFIED
    assert (await find_by_id_number(number, pii_keys=KEYS)).id == citizen.id


@pytest.mark.parametrize("number", [
    make_id("31999919550312123"),  # no county ever had 319999
    make_id("31000019550312123"),  # a province code is no county code
    make_id("31011519550230123"),  # 30 February
    make_id("31011519551301123"),  # month 13
    make_id("31011518990101123"),  # born before 1900
    make_id("31011520990101123"),  # born in the future
])
async def test_unknown_codes_and_impossible_dates_are_refused_with_the_usual_message(db: str, number: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await bind_real_name(await login("o-x"), "王秀英", number, pii_keys=KEYS, verifier=VERIFIER)
    assert caught.value.fields == {"id_number": "身份证号不正确，请检查后重新输入"}
