"""The sandbox process pool: scripts of designer-deployed models run in worker processes that are
killed and replaced at the deadline, so a C call no guard foresaw cannot hold the API process."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine.bpmn.pool import SandboxPool
from engine.bpmn.sandbox import SandboxEnvironment, SandboxLimitError, SandboxTimeout
from engine.errors import SandboxViolation

# ``l == m`` compares 10**5 pairs of distinct 10**5-element lists: one C call of ~10**10 steps that
# no deadline tick interrupts (the in-process sandbox would run it for minutes)
STUCK_C_CALL = "big = list(range(100000))\nl = [big] * 100000\nm = [list(big)] * 100000\nx = l == m"


@pytest.fixture(scope="module")
def pool() -> Any:
    pool = SandboxPool(2, memory_mb=256).start()
    yield pool
    pool.close()


def test_scripts_and_expressions_run_in_a_worker_like_in_process(pool: SandboxPool) -> None:
    env = SandboxEnvironment(timeout_ms=1000, pool=pool)
    local = SandboxEnvironment(timeout_ms=1000)
    script = "age = age_on(birth, '2026-11-29')\nnames = sorted(set(tags))\nd = Decimal('1.10') * 3"
    remote_data: dict[str, Any] = {"birth": "1950-03-01", "tags": ["b", "a", "b"]}
    local_data = dict(remote_data)
    env.execute(script, remote_data)
    local.execute(script, local_data)
    assert remote_data == local_data == {**local_data, "age": 76, "names": ["a", "b"]}
    assert env.evaluate("age >= 60 and region == '3101'", {"age": 76, "region": "3101"}) is True
    assert env.pool is pool and pool.pids() and all(pid for pid in pool.pids())


def test_errors_come_back_with_their_class_and_line(pool: SandboxPool) -> None:
    env = SandboxEnvironment(timeout_ms=1000, pool=pool)
    with pytest.raises(ZeroDivisionError) as info:
        env.execute("x = 1\ny = x / 0", {})
    assert info.value.sandbox_line == 2  # type: ignore[attr-defined]
    with pytest.raises(SandboxViolation, match="import is not allowed"):
        env.execute("import os", {})
    with pytest.raises(SandboxLimitError, match="pow"):
        env.execute("m = 2 ** 24000 + 1\nx = pow(3, m - 2, m)", {})
    with pytest.raises(SandboxTimeout, match="time limit of 200 ms"):
        SandboxEnvironment(timeout_ms=200, pool=pool).execute("while True:\n    pass", {})


def test_a_stuck_c_call_is_killed_at_the_deadline_and_its_worker_replaced(pool: SandboxPool) -> None:
    env = SandboxEnvironment(timeout_ms=500, pool=pool)
    before, replaced = set(pool.pids()), pool.replaced
    started = time.monotonic()
    with pytest.raises(SandboxTimeout, match="sandbox process was stopped"):
        env.execute(STUCK_C_CALL, {})
    assert time.monotonic() - started < 0.5 + 0.5
    assert pool.replaced == replaced + 1
    assert env.evaluate("1 + 1", {}) == 2  # the other worker answers at once
    deadline = time.monotonic() + 60
    while len(set(pool.pids()) - before) < 1 or pool._idle.qsize() < 2:  # the replacement is up
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert len(pool.pids()) == 2


def test_memory_beyond_the_worker_limit_is_script_too_large(pool: SandboxPool) -> None:
    env = SandboxEnvironment(timeout_ms=3000, pool=pool)
    # each piece is within the per-operation limits; together they pass the worker's 256 MB
    with pytest.raises(SandboxLimitError, match="memory"):
        env.execute("x = ['a' * 9000000 + str(i) for i in range(60)]\nx = len(x)", {})
    assert env.evaluate("2 * 21", {}) == 42


# ---------------------------------------------------------------- which models run in the pool
async def test_designer_deployments_run_in_the_pool_shipped_models_in_process(engine: Any) -> None:
    from engine.bpmn.errors import ScriptTimeout
    from tests.conftest import model_files

    data = {"birth_date": "1950-03-01", "apply_date": "2026-11-29", "region_code": "310104", "name": "张三"}
    shipped = await engine.deploy(model_files("auto_check"), deployed_by="seed-demo")
    assert not engine.isolated(shipped.id)
    assert (await engine.start_case(shipped, service="s", data=data)).status == "completed"

    files = model_files("auto_check")
    name = next(n for n in files if n.endswith(".bpmn") and "<bpmn:script>" in files[n])
    first_script = files[name].split("<bpmn:script>", 1)[1].split("</bpmn:script>", 1)[0]
    same = dict(files)  # a designer deployment of good scripts runs (in the pool) like a shipped one;
    # it also warms both workers (a job's first countersign helper is imported off the job's clock)
    same[name] = files[name].replace("</bpmn:process>", "</bpmn:process><!-- v2 -->", 1)
    good = await engine.deploy(same, deployed_by="designer01")
    assert engine.isolated(good.id)
    result = await engine.start_case(good, service="s", data=data)
    assert result.status == "completed"
    stuck = dict(files)
    stuck[name] = files[name].replace(first_script, STUCK_C_CALL.replace("\n", "&#10;"), 1)
    deployed = await engine.deploy(stuck, deployed_by="designer01")
    assert engine.isolated(deployed.id)
    assert engine.deps.script_engine_factory.keywords["pool"].wait_ready()  # pre-started in production
    started = time.monotonic()
    with pytest.raises(ScriptTimeout) as info:
        await engine.start_case(deployed, service="s", data=data)
    bound = engine.deps.script_engine_factory.keywords["timeout_ms"] / 1000
    assert time.monotonic() - started < bound + 0.5
    assert info.value.code == "script_timeout" and "流程脚本运行超时" in info.value.message



def test_helpers_reach_the_worker_imported_before_it_is_ready() -> None:
    from engine.workbench.task_ops import countersign_outcome

    pool = SandboxPool(1, preload=(countersign_outcome.__module__,)).start()
    try:
        assert pool.wait_ready()
        env = SandboxEnvironment(timeout_ms=300, pool=pool, extra_globals={"countersign": countersign_outcome})
        data: dict[str, Any] = {"s": [{"decision": "approve"}, {"decision": "reject"}]}
        started = time.monotonic()
        env.execute("all_ok = countersign(s, 'all')\nnone_rejected = countersign(s, 'any_reject')", data)
        assert time.monotonic() - started < 0.3  # no import on the first job's clock
        assert (data["all_ok"], data["none_rejected"]) == (False, False)
    finally:
        pool.close()
