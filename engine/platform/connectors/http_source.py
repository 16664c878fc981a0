"""Shared data over the exchange platform's REST API (数据共享交换平台).

``GET {base}/datasets/{dataset}/records/{key}``: 200 with a JSON object is the record, 404 means
no record, anything else (or no answer within the timeout) is ``DependencyDown``. Synchronous on
purpose: connectors run inside synchronous engine steps; the timeout bounds how long one blocks.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from engine.accountability.privacy import mask_text
from engine.errors import DependencyDown
from engine.platform.connectors.shared_data import DATASETS, check_dataset, normalise_key

log = logging.getLogger(__name__)


class MaskPersonalData(logging.Filter):
    """httpx logs every request URL at INFO; ours carry ID numbers, so mask them in the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _install_log_mask() -> None:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, MaskPersonalData) for f in httpx_log.filters):
        httpx_log.addFilter(MaskPersonalData())


class HttpDataSource:
    """``DataSource`` backed by the exchange platform; one pooled ``httpx.Client`` per instance."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 3.0,
                 transport: httpx.BaseTransport | None = None,
                 datasets: frozenset[str] | set[str] = DATASETS) -> None:
        headers = {"Accept": "application/json", "User-Agent": "govflow-shared-data"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.datasets = frozenset(datasets)
        _install_log_mask()
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                    timeout=httpx.Timeout(timeout_s), transport=transport,
                                    follow_redirects=False, trust_env=False)

    def lookup(self, dataset: str, key: str) -> dict[str, Any] | None:
        check_dataset(dataset, self.datasets)
        key = normalise_key(dataset, key) if dataset in DATASETS else str(key)
        if not key:
            return None
        path = f"/datasets/{quote(dataset, safe='')}/records/{quote(key, safe='')}"
        try:
            response = self._client.get(path)
        except httpx.TimeoutException:
            log.warning("shared data %s: timed out", dataset)
            raise DependencyDown(f"共享数据交换平台响应超时（数据集 {dataset}），请稍后重试") from None
        except httpx.HTTPError as exc:
            log.warning("shared data %s: %s", dataset, mask_text(str(exc)))
            raise DependencyDown(f"共享数据交换平台无法连接（数据集 {dataset}），请稍后重试") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            log.warning("shared data %s: HTTP %s", dataset, response.status_code)
            raise DependencyDown(
                f"共享数据交换平台返回错误（HTTP {response.status_code}，数据集 {dataset}），请稍后重试")
        try:
            record = response.json()
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise DependencyDown(f"共享数据交换平台返回了无法识别的数据（数据集 {dataset}）")
        return record

    def exists(self, dataset: str, key: str) -> bool:
        return self.lookup(dataset, key) is not None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HttpDataSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["HttpDataSource", "MaskPersonalData"]
