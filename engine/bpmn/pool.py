"""A pre-started pool of sandbox worker processes for scripts of designer-deployed models.

Why: the sandbox (``engine.bpmn.sandbox``) checks its deadline between Python operations and
refuses oversized operations before they run, but one C call it did not foresee would still hold
the interpreter (and with it every request of an API process) for as long as it runs. Scripts and
expressions of models a person deployed through the designer therefore run here, in separate
processes: the step's thread sends the job and waits for the answer at most the script bound
plus ``GRACE_S``; a worker that has not answered by then is killed (SIGKILL) and replaced, and
the step fails with ``script_timeout``. Each worker limits its own address space (``RLIMIT_AS``:
its size after start-up plus ``memory_mb``; a ``MemoryError`` answers ``script_too_large``) and
its CPU time per job (``RLIMIT_CPU``: SIGXCPU ends it if the parent's kill were ever late).

Workers are plain ``subprocess`` children talking pickles over two pipes (not
``multiprocessing.Process``: Sanic's worker processes are daemonic and may not have those).
They start when the pool starts (``start()`` returns at once; a worker joins the idle queue
after it has imported the sandbox and said it is ready), so no job pays for an interpreter start.
Models shipped in the repository (seeded, catalog) stay in-process: one job costs a round trip
of about 0.1–0.3 ms, a step of a shipped model none.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from engine.bpmn.sandbox import SandboxEnvironment, SandboxLimitError, SandboxTimeout
from engine.errors import DependencyDown, SandboxViolation

log = logging.getLogger("govflow.sandbox")

GRACE_S = 0.15          # waited past the script bound before the worker is killed
START_TIMEOUT_S = 60.0  # a worker that is not ready by then is given up (and retried)
ACQUIRE_TIMEOUT_S = 10.0  # a job waits this long for a free worker, then answers sandbox_busy


class SandboxBusy(DependencyDown):
    code = "sandbox_busy"
    default_message = "脚本沙箱繁忙，请稍后重试"


# ---------------------------------------------------------------------------- worker side
def _vm_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _error_line(err: BaseException) -> int | None:
    line, tb = None, err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<string>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _answer(job: tuple[Any, ...]) -> tuple[Any, ...]:
    """Run one job; never raises (the answer says what went wrong)."""
    mode, source, context, external, timeout_ms, extra = job
    try:
        env = SandboxEnvironment(timeout_ms=timeout_ms, extra_globals=extra)
        if mode == "eval":
            value = env.evaluate(source, context, external)
        else:
            env.execute(source, context, external)
            value = context
        return ("ok", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except SandboxViolation as err:
        return ("violation", err.message, err.detail)
    except SandboxTimeout as err:
        return ("timeout", str(err), _error_line(err))
    except (SandboxLimitError, MemoryError) as err:
        return ("too_large", str(err) or "out of memory", _error_line(err))
    except Exception as err:  # noqa: BLE001 - the script's own error, sent back to name task and line
        line = _error_line(err)
        try:
            blob = pickle.dumps(err.with_traceback(None))
            pickle.loads(blob)
        except Exception:  # noqa: BLE001 - an exception that does not travel: send its text
            blob = pickle.dumps(RuntimeError(f"{err.__class__.__name__}: {err}"))
        return ("error", blob, line)


def serve(argv: list[str]) -> None:
    """Worker main loop: ``python -c 'from engine.bpmn.pool import serve; serve(sys.argv[1:])' R W MB
    [module ...]``; the modules (of the helpers jobs carry, e.g. ``countersign``) are imported before
    the worker says it is ready, so no job pays for importing them."""
    import importlib

    read_fd, write_fd, memory_mb = int(argv[0]), int(argv[1]), int(argv[2])
    for module in argv[3:]:
        importlib.import_module(module)
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    if memory_mb > 0 and _vm_bytes():
        limit = _vm_bytes() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            job = inbox.recv()  # unpickling may import a helper's module (countersign): not on the job's clock
        except (EOFError, OSError):
            return  # the parent went away
        outbox.send(("started",))
        used = resource.getrusage(resource.RUSAGE_SELF)
        budget = int(used.ru_utime + used.ru_stime) + int(job[4] / 1000) + 2
        if cpu_hard == resource.RLIM_INFINITY or budget < cpu_hard:
            resource.setrlimit(resource.RLIMIT_CPU, (budget, cpu_hard))
        answer = _answer(job)
        try:
            outbox.send(answer)
        except MemoryError:
            outbox.send(("too_large", "out of memory", None))
        if answer[0] == "too_large" and "memory" in str(answer[1]):
            return  # after a MemoryError start afresh


# ---------------------------------------------------------------------------- parent side
class _Worker:
    def __init__(self, memory_mb: int, preload: tuple[str, ...] = ()) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        code = "import sys; from engine.bpmn.pool import serve; serve(sys.argv[1:])"
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-c", code, str(to_child_r), str(from_child_w), str(memory_mb), *preload],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                close_fds=True, start_new_session=True)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.send_conn = Connection(to_child_w, readable=False)
        self.recv_conn = Connection(from_child_r, writable=False)
        self.jobs = 0

    def wait_ready(self, timeout: float) -> bool:
        try:
            return self.recv_conn.poll(timeout) and self.recv_conn.recv()[0] == "ready"
        except (EOFError, OSError):
            return False

    def kill(self) -> None:
        try:
            self.process.kill()
        except OSError:
            pass
        for conn in (self.send_conn, self.recv_conn):
            try:
                conn.close()
            except OSError:
                pass
        threading.Thread(target=self.process.wait, daemon=True).start()  # reap without blocking


class SandboxPool:
    """``size`` pre-started worker processes; ``run()`` is synchronous (call it off the event loop)."""

    def __init__(self, size: int = 2, *, memory_mb: int = 512, preload: tuple[str, ...] = ()) -> None:
        self.size = max(1, size)
        self.memory_mb = memory_mb
        self.preload = tuple(preload)  # modules imported at worker start (where job helpers live)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()
        self._started = False
        self._closed = False
        self.replaced = 0  # workers killed at the deadline or lost (tests and metrics read it)

    # -------------------------------------------------------------- life cycle
    def start(self) -> SandboxPool:
        """Start the workers in the background; returns at once (idempotent)."""
        with self._lock:
            if self._started or self._closed:
                return self
            self._started = True
        for _ in range(self.size):
            self._spawn()
        return self

    def _spawn(self) -> None:
        threading.Thread(target=self._bring_up, name="sandbox-spawn", daemon=True).start()

    def _bring_up(self) -> None:
        for attempt in range(3):
            if self._closed:
                return
            try:
                worker = _Worker(self.memory_mb, self.preload)
            except OSError:
                log.exception("cannot start a sandbox worker")
                time.sleep(1 + attempt)
                continue
            with self._lock:
                self._all.add(worker)
            if worker.wait_ready(START_TIMEOUT_S) and not self._closed:
                self._idle.put(worker)
                return
            self._drop(worker)
            if self._closed:
                return
            log.error("sandbox worker %s did not start (exit %s)", worker.process.pid, worker.process.poll())
            time.sleep(1 + attempt)

    def _drop(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def _replace(self, worker: _Worker) -> None:
        self.replaced += 1
        self._drop(worker)
        if not self._closed:
            self._spawn()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.kill()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> bool:
        """Block until every worker has started (tests, benchmarks); False on timeout."""
        self.start()
        deadline = time.monotonic() + timeout
        while self._idle.qsize() < self.size:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all]

    # -------------------------------------------------------------- jobs
    def run(self, mode: str, source: str, context: dict[str, Any], external: dict[str, Any] | None,
            timeout_ms: int, extra: dict[str, Any] | None) -> Any:
        """Evaluate (``mode="eval"``: the value) or execute (``"exec"``: the new task data) in a
        worker; raises what the in-process sandbox would raise (SandboxViolation, SandboxTimeout,
        SandboxLimitError, the script's own error with ``sandbox_line``)."""
        self.start()
        try:
            job = pickle.dumps((mode, source, context, external, timeout_ms, extra),
                               protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise TypeError(f"task data cannot be sent to the sandbox: {err}") from None
        try:
            worker = self._idle.get(timeout=ACQUIRE_TIMEOUT_S)
        except queue.Empty:
            raise SandboxBusy() from None
        try:
            worker.send_conn.send_bytes(job)
            if not worker.recv_conn.poll(START_TIMEOUT_S) or worker.recv_conn.recv()[0] != "started":
                raise EOFError  # the job never started: treat the worker as lost
            if not worker.recv_conn.poll(timeout_ms / 1000 + GRACE_S):
                self._replace(worker)
                raise SandboxTimeout(f"script exceeded its time limit of {timeout_ms} ms "
                                     "(its sandbox process was stopped)")
            answer = worker.recv_conn.recv()
        except (EOFError, OSError):
            code = worker.process.poll()
            self._replace(worker)
            if code == -signal.SIGXCPU:
                raise SandboxTimeout(f"script exceeded its CPU time limit of {timeout_ms} ms") from None
            raise SandboxLimitError("the script's sandbox process stopped (memory limit)") from None
        except BaseException:
            if worker in self._all and worker.process.poll() is None:
                self._idle.put(worker)
            raise
        worker.jobs += 1
        if answer[0] == "too_large" and "memory" in str(answer[1]):
            self._replace(worker)  # it exits after a MemoryError
        else:
            self._idle.put(worker)
        return _result(answer)


def _result(answer: tuple[Any, ...]) -> Any:
    kind = answer[0]
    if kind == "ok":
        return pickle.loads(answer[1])  # noqa: S301 - our own worker's answer
    if kind == "violation":
        raise SandboxViolation(answer[1], detail=answer[2])
    if kind in ("timeout", "too_large"):
        err: Exception = (SandboxTimeout if kind == "timeout" else SandboxLimitError)(answer[1])
    else:
        err = pickle.loads(answer[1])  # noqa: S301
    err.sandbox_line = answer[2]  # type: ignore[attr-defined]
    raise err


_SHARED: dict[tuple[Any, ...], SandboxPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(size: int = 2, memory_mb: int = 512, preload: tuple[str, ...] = ()) -> SandboxPool:
    """The process-wide pool for these settings (one per API process), started."""
    key = (size, memory_mb, tuple(sorted(preload)))
    with _SHARED_LOCK:
        pool = _SHARED.get(key)
        if pool is None:
            pool = _SHARED[key] = SandboxPool(size, memory_mb=memory_mb, preload=key[2])
    return pool.start()


@atexit.register
def _close_shared() -> None:
    for pool in list(_SHARED.values()):
        pool.close()


__all__ = ["SandboxBusy", "SandboxPool", "shared_pool"]
