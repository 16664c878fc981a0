"""Shared data sources: other departments' registries, read by key (data sharing, not data islands).

A ``DataSource`` answers ``lookup(dataset, key)`` for a fixed set of datasets. ``CsvDataSource``
serves the development demo files under ``processes/demo/``; ``HttpDataSource``
(``engine.platform.connectors.http_source``) the exchange platform's REST API. Connectors see only the
protocol, so the same process model runs on either.
"""

from __future__ import annotations

import csv
import re
import threading
import unicodedata
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from engine.accountability.privacy import normalise_id
from engine.errors import DependencyDown, ModelError

# Company-form suffixes that do not distinguish one name from another (longest first).
COMPANY_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "公司")
_SPACE = re.compile(r"\s+")


def normalise_company_name(name: str) -> str:
    """Comparable form of a company name: full-width folded, no whitespace, no company-form suffix."""
    text = _SPACE.sub("", unicodedata.normalize("NFKC", name or "")).casefold()
    for suffix in COMPANY_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[: -len(suffix)]
    return text


# dataset -> how its keys are normalised (queries and index use the same function)
DATASET_KEYS: dict[str, Callable[[str], str]] = {
    "population": normalise_id,              # by citizen ID number
    "companies": normalise_id,               # by unified social credit code
    "company_names": normalise_company_name,  # by normalised registered name
    "credit_blacklist": normalise_id,        # by ID number or credit code of the listed subject
    "birth_records": normalise_id,           # by birth certificate number
    "birth_records_by_mother": normalise_id,  # by the mother's ID number: her most recent birth
}
DATASETS = frozenset(DATASET_KEYS)


def check_dataset(dataset: str, known: frozenset[str] | set[str] = DATASETS) -> None:
    if dataset not in known:
        raise ModelError(f"未知的共享数据集 {dataset!r}（可用：{'、'.join(sorted(known))}）")


def normalise_key(dataset: str, key: Any) -> str:
    check_dataset(dataset)
    return DATASET_KEYS[dataset](str(key or ""))


@runtime_checkable
class DataSource(Protocol):
    """Read-only access to shared datasets; ``None`` when no record has the key."""

    def lookup(self, dataset: str, key: str) -> dict[str, Any] | None: ...

    def exists(self, dataset: str, key: str) -> bool: ...


class CsvDataSource:
    """The demo CSV files, indexed in memory on first use (a few hundred rows: no database)."""

    FILES = {"population": "population.csv", "companies": "companies.csv",
             "credit_blacklist": "credit_blacklist.csv", "birth_records": "birth_records.csv"}

    def __init__(self, demo_dir: Path | str) -> None:
        self.demo_dir = Path(demo_dir)
        self._indexes: dict[str, dict[str, dict[str, str]]] | None = None
        self._lock = threading.Lock()

    def lookup(self, dataset: str, key: str) -> dict[str, Any] | None:
        normalised = normalise_key(dataset, key)
        row = self._index()[dataset].get(normalised)
        return dict(row) if row is not None else None

    def exists(self, dataset: str, key: str) -> bool:
        return normalise_key(dataset, key) in self._index()[dataset]

    def rows(self, dataset: str) -> list[dict[str, str]]:
        """All records of a dataset (the demo exchange server and tests list them)."""
        check_dataset(dataset)
        return [dict(row) for row in self._index()[dataset].values()]

    def _index(self) -> dict[str, dict[str, dict[str, str]]]:
        if self._indexes is None:
            with self._lock:
                if self._indexes is None:
                    self._indexes = self._load()
        return self._indexes

    def _read(self, dataset: str) -> list[dict[str, str]]:
        path = self.demo_dir / self.FILES[dataset]
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                return [{k: (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(handle)]
        except OSError as exc:
            raise DependencyDown(f"演示共享数据文件无法读取：{path.name}（{exc.strerror or exc}）") from None

    def _load(self) -> dict[str, dict[str, dict[str, str]]]:
        def by(rows: list[dict[str, str]], column: str, dataset: str) -> dict[str, dict[str, str]]:
            norm = DATASET_KEYS[dataset]
            return {norm(row[column]): row for row in rows if row.get(column)}

        people = self._read("population")
        companies = self._read("companies")
        births = self._read("birth_records")
        latest_first = sorted(births, key=lambda r: (r.get("birth_date", ""), r.get("birth_time", "")), reverse=True)
        by_mother: dict[str, dict[str, str]] = {}
        for row in latest_first:
            by_mother.setdefault(normalise_id(row.get("mother_id_number", "")), row)
        by_mother.pop("", None)
        names: dict[str, dict[str, str]] = {}
        for row in companies:  # an active company owns its name over a cancelled one
            key = normalise_company_name(row.get("name", ""))
            if key and (key not in names or names[key].get("status") == "注销"):
                names[key] = row
        return {
            "population": by(people, "id_number", "population"),
            "companies": by(companies, "uscc", "companies"),
            "company_names": names,
            "credit_blacklist": by(self._read("credit_blacklist"), "subject", "credit_blacklist"),
            "birth_records": by(births, "certificate_no", "birth_records"),
            "birth_records_by_mother": by_mother,
        }


__all__ = ["COMPANY_SUFFIXES", "CsvDataSource", "DATASETS", "DataSource", "check_dataset",
           "normalise_company_name", "normalise_key"]
