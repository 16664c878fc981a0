"""Built-in shared-data connectors: population, company names, credit blacklist, birth records.

Each read of a person's data appends an ``access_log`` record (dataset, keyed hash and masked
form of the subject, fields read, purpose, actor, case) that the engine stores with the step.
Clear ID numbers never go into a record or a log line; connectors return only the fields a
process needs (data minimisation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable

from stdnum.cn import ric, uscc

from engine.accountability.privacy import (
    PiiKeys,
    blind_index,
    is_valid_id_number,
    mask_id_number,
    mask_middle,
    normalise_id,
)
from engine.errors import DependencyDown, ModelError
from engine.kernel.connectors import ConnectorContext, ConnectorRegistry
from engine.platform.connectors.shared_data import CsvDataSource, DataSource, normalise_company_name
from engine.store.shared_models import DataAccessLog

if TYPE_CHECKING:
    from engine.kernel.cases import EngineDeps

log = logging.getLogger(__name__)

Clock = Callable[[], "datetime | date"]
CHINA_TZ = timezone(timedelta(hours=8))
POPULATION_FIELDS = ["name", "gender", "birth_date", "region_code", "household_region"]
BIRTH_FIELDS = ["certificate_no", "baby_name", "gender", "birth_date", "birth_time", "birth_weight_g", "hospital",
                "hospital_region", "mother_id_number", "mother_name", "father_id_number", "father_name"]
BLACKLIST_FIELDS = ["reason", "authority", "listed_date"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def today_in_china(clock: Clock) -> date:
    """The clock's date in China (UTC+8): ages change at local midnight, not UTC midnight."""
    now = clock()
    if isinstance(now, datetime):
        return (now.astimezone(CHINA_TZ) if now.tzinfo else now).date()
    return now


def age_on(born: date, on: date) -> int:
    """Full years (a 29 February birthday counts from 1 March in common years)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def jurisdiction_prefix(code: str) -> str:
    """``310000`` -> ``31``, ``310100`` -> ``3101``: the region-code prefix inside a jurisdiction."""
    code = code.strip()
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def _require(params: dict[str, Any], *names: str) -> None:
    if not any(name in params for name in names):
        raise ModelError(f"连接器缺少参数：{' 或 '.join(names)}")


@dataclass
class SharedDataConnectors:
    """The connector functions over one data source; register them with ``register``."""

    source: DataSource
    pii_key: bytes
    jurisdiction: str = "310000"
    clock: Clock = _utcnow

    def __post_init__(self) -> None:
        if not self.pii_key:
            raise ValueError("shared-data connectors need a PII key for blind indexes")
        self._prefix = jurisdiction_prefix(self.jurisdiction)

    # ------------------------------------------------------------------ connectors
    def population_lookup(self, params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        """Population registry by ID number: name, birth date, household, whether local, age."""
        _require(params, "id_number")
        number = normalise_id(params.get("id_number") or "")
        result: dict[str, Any] = {"found": False, "valid": is_valid_id_number(number), "name": None,
                                  "gender": None, "birth_date": None, "region_code": None,
                                  "household_region": None, "local": False, "age": None}
        if not result["valid"]:
            return result
        record = self.source.lookup("population", number)
        self._log(context, params, "population", number, mask_id_number(number),
                  POPULATION_FIELDS if record else [])
        if record is None:
            return result
        result.update({k: record.get(k) or None for k in POPULATION_FIELDS}, found=True)
        born = record.get("birth_date")
        born_on = date.fromisoformat(born) if born else ric.get_birth_date(number)
        household = str(record.get("household_region") or "")
        result.update(birth_date=born_on.isoformat(), age=age_on(born_on, today_in_china(self.clock)),
                      local=bool(household) and household.startswith(self._prefix))
        return result

    def company_name_check(self, params: dict[str, Any], _context: ConnectorContext) -> dict[str, Any]:
        """Is a proposed company name free? Compared without whitespace and company-form suffix."""
        _require(params, "name")
        name = str(params.get("name") or "").strip()
        if not normalise_company_name(name):
            return {"available": False, "conflict_with": None, "reason": "企业名称不能为空"}
        record = self.source.lookup("company_names", name)
        if record is None or record.get("status") == "注销":
            return {"available": True, "conflict_with": None, "reason": None}
        return {"available": False, "conflict_with": record.get("name"), "reason": "与已登记的企业名称相同或近似"}

    def credit_blacklist_check(self, params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        """Is a person (ID number) or company (credit code) on the 失信 list, and why?"""
        _require(params, "subject")
        subject = normalise_id(params.get("subject") or "")
        kind = "person" if is_valid_id_number(subject) else "company" if uscc.is_valid(subject) else None
        result: dict[str, Any] = {"listed": False, "subject_type": kind, "valid": kind is not None,
                                  **{k: None for k in BLACKLIST_FIELDS}}
        if kind is None:
            return result
        record = self.source.lookup("credit_blacklist", subject)
        if kind == "person":
            self._log(context, params, "credit_blacklist", subject, mask_id_number(subject),
                      ["listed", *BLACKLIST_FIELDS] if record else ["listed"])
        if record is not None:
            result.update({k: record.get(k) or None for k in BLACKLIST_FIELDS}, listed=True)
        return result

    def hospital_birth_record(self, params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        """Birth medical certificate (出生医学证明) by certificate number or by the mother's ID number."""
        _require(params, "certificate_no", "mother_id_number")
        certificate = normalise_id(params.get("certificate_no") or "")
        mother = normalise_id(params.get("mother_id_number") or "")
        result: dict[str, Any] = {"found": False, **{k: None for k in BIRTH_FIELDS}}
        if certificate:
            record = self.source.lookup("birth_records", certificate)
            if record is None:
                self._log(context, params, "birth_records", certificate, mask_middle(certificate, 1, 4), [])
        elif is_valid_id_number(mother):
            record = self.source.lookup("birth_records_by_mother", mother)
            if record is None:
                self._log(context, params, "birth_records", mother, mask_id_number(mother), [])
        else:
            return result
        if record is None:
            return result
        result.update({k: record.get(k) or None for k in BIRTH_FIELDS}, found=True)
        cert = normalise_id(result["certificate_no"] or certificate)
        self._log(context, params, "birth_records", cert, mask_middle(cert, 1, 4),
                  ["baby_name", "gender", "birth_date", "birth_time", "birth_weight_g", "hospital"])
        for role in ("mother", "father"):
            number = normalise_id(result[f"{role}_id_number"] or "")
            if number:
                self._log(context, params, "birth_records", number, mask_id_number(number),
                          [f"{role}_name", f"{role}_id_number"])
        return result

    # ------------------------------------------------------------------ wiring
    def register(self, registry: ConnectorRegistry) -> None:
        registry.register("population.lookup", self.population_lookup, personal_data=True,
                          description="人口库查询：按身份证号返回姓名、出生日期、户籍地、是否本地户籍及年龄")
        registry.register("company.name_check", self.company_name_check, personal_data=False,
                          description="企业名称查重：与已登记企业名称比对（忽略空格和“有限公司”等后缀）")
        registry.register("credit.blacklist_check", self.credit_blacklist_check, personal_data=True,
                          description="失信名单核查：按身份证号或统一社会信用代码查询是否被列入失信名单及原因")
        registry.register("hospital.birth_record", self.hospital_birth_record, personal_data=True,
                          description="出生医学证明查询：按证明编号或母亲身份证号返回新生儿出生信息")

    def _log(self, context: ConnectorContext, params: dict[str, Any], dataset: str, subject: str,
             masked: str, fields_read: list[str]) -> None:
        purpose = str(params.get("purpose") or context.purpose or f"办理 {context.service}").strip()
        context.record("access_log", {
            "dataset": dataset, "subject_hash": blind_index(subject, self.pii_key), "subject_masked": masked,
            "fields_read": list(fields_read), "purpose": purpose, "actor": context.actor,
            "department": params.get("department") or None, "case_no": context.case_no or None,
        })


def register_shared_data_connectors(registry: ConnectorRegistry, source: DataSource, *, pii_key: bytes,
                                    jurisdiction: str = "310000", clock: Clock = _utcnow) -> SharedDataConnectors:
    """Register ``population.lookup``, ``company.name_check``, ``credit.blacklist_check`` and
    ``hospital.birth_record`` over ``source``; returns the connector object (for tests and tools)."""
    connectors = SharedDataConnectors(source, pii_key, jurisdiction, clock)
    connectors.register(registry)
    return connectors


async def write_access_log(conn: Any, case_id: int, payload: dict[str, Any]) -> None:
    """Record writer for kind ``access_log``: one ``DataAccessLog`` row in the step's transaction."""
    await DataAccessLog.create(
        actor=(payload.get("actor") or None), department=(payload.get("department") or None),
        subject_hash=payload["subject_hash"], subject_masked=(payload.get("subject_masked") or "")[:32] or None,
        dataset=str(payload["dataset"])[:64], fields_read=list(payload.get("fields_read") or []),
        case_id=case_id, case_no=(payload.get("case_no") or None), purpose=str(payload.get("purpose") or "")[:200],
        using_db=conn,
    )


class UnconfiguredSource:
    """Stands in when no exchange platform is configured in production: every read is a 503."""

    def lookup(self, dataset: str, key: str) -> dict[str, Any] | None:
        raise DependencyDown("共享数据交换平台未配置（GOVFLOW_EXCHANGE_URL），暂无法查询共享数据")

    def exists(self, dataset: str, key: str) -> bool:
        return self.lookup(dataset, key) is not None


def data_source_from_settings(settings: Any) -> DataSource:
    """The exchange platform when ``EXCHANGE_URL`` is set; the demo CSVs in development."""
    from engine.platform.connectors.http_source import HttpDataSource

    url = str(getattr(settings, "EXCHANGE_URL", "") or "")
    if url:
        timeout_ms = int(getattr(settings, "EXCHANGE_TIMEOUT_MS", 3000) or 3000)
        return HttpDataSource(url, token=str(getattr(settings, "EXCHANGE_TOKEN", "") or "") or None,
                              timeout_s=timeout_ms / 1000)
    if getattr(settings, "is_production", False):
        log.warning("GOVFLOW_EXCHANGE_URL is not set: shared-data connectors will answer 503")
        return UnconfiguredSource()
    return CsvDataSource(settings.PROCESSES_DIR / "demo")


def install_shared_data(deps: "EngineDeps", settings: Any, *, source: DataSource | None = None,
                        keys: PiiKeys | None = None) -> SharedDataConnectors:
    """Wire shared data into an engine: the connectors (on the engine's clock) and the
    ``access_log`` record writer. The one call ``build_engine`` makes."""
    keys = keys or PiiKeys.from_settings(settings)
    connectors = register_shared_data_connectors(
        deps.connectors, source if source is not None else data_source_from_settings(settings),
        pii_key=keys.blind_index_key, jurisdiction=str(getattr(settings, "JURISDICTION", "") or "310000"),
        clock=lambda: deps.clock())
    deps.record_writers["access_log"] = write_access_log
    return connectors


__all__ = ["SharedDataConnectors", "UnconfiguredSource", "age_on", "data_source_from_settings",
           "install_shared_data", "jurisdiction_prefix", "register_shared_data_connectors", "today_in_china",
           "write_access_log"]
