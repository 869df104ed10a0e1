"""Fixtures: a private store per test and real ipykernel kernels driven through jupyter_client."""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

HERE = Path(__file__).parent
FAKE_NVML = HERE / "fake_nvml"

# A CLI's warm launcher stays 600 s for the next command; a test's would outlive the test. The
# tests of that stay set their own (test_keep_warm.py).
os.environ["MLP_KEEP_WARM_S"] = "0"


@pytest.fixture
def mlp_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "mlp-home"
    monkeypatch.setenv("MLP_HOME", str(home))
    return home


@pytest.fixture
def store(mlp_home):
    from jupyter_mlp.store import Store

    s = Store(mlp_home)
    yield s
    s.close()


# --- PostgreSQL (tests/postgres.py): one real server for the session, a database per test -------

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of Debian's package, started once (skipped, with the reason, when it
    is not installed and we are not root; as root the install is scripts/test.sh's job, so a
    missing server fails)."""
    import postgres

    reason = postgres.missing_reason()
    if reason is not None:
        if os.geteuid() == 0 and postgres.bin_dir() is None:
            pytest.fail(reason)
        pytest.skip(reason)
    server = postgres.start_server()
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(postgres_server):
    """The URL of a new, empty database on the session's server (dropped afterwards)."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def any_store(request, mlp_home, monkeypatch):
    """The store of the test on each engine: the SQLite file, then a PostgreSQL database (with
    MLP_STORE_URL set, so that a CLI or process the test starts opens the same). A test marked
    `sqlite_only` (what it checks exists there alone) runs once."""
    from jupyter_mlp.store import Store

    if request.param == "postgresql":
        marker = request.node.get_closest_marker("sqlite_only")
        if marker is not None:
            pytest.skip(f"SQLite only: {marker.args[0] if marker.args else 'the file itself'}")
        monkeypatch.setenv("MLP_STORE_URL", request.getfixturevalue("pg_url"))
    s = Store(mlp_home)
    yield s
    s.close()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sqlite_only(why): runs on the SQLite store only (any_store skips PostgreSQL)"
    )


@dataclass
class CellResult:
    status: str
    stdout: str = ""
    stderr: str = ""
    ename: str | None = None
    evalue: str | None = None
    displays: list[dict] = field(default_factory=list)


class Kernel:
    """A real kernel; `run()` sends execute_request with JupyterLab's `cellId` metadata."""

    def __init__(self, env: dict[str, str], cwd: str) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.updates: list[dict] = []  # every update_display_data seen, whichever cell it came with

    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid  # type: ignore[union-attr]

    def send(self, code: str, cell_id: str | None = None, metadata: dict | None = None) -> str:
        content = {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": False,
        }  # fmt: skip
        meta = dict(metadata or {})
        if cell_id:
            meta["cellId"] = cell_id
        msg = self.kc.session.msg("execute_request", content, metadata=meta)
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def collect(self, msg_id: str, timeout: float = 60) -> CellResult:
        deadline = time.monotonic() + timeout
        result = CellResult(status="?")
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply for {msg_id}")
            try:
                msg = self.kc.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["msg_type"] == "update_display_data":
                self.updates.append(msg["content"])
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("display_data", "execute_result"):
                result.displays.append(content)
            elif kind == "error":
                result.ename, result.evalue = content["ename"], content["evalue"]
            elif kind == "status" and content["execution_state"] == "idle":
                break
        while True:  # this cell's reply: skip any other one still queued (kernel_info at start)
            reply = self.kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 1))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        result.status = reply["content"]["status"]
        return result

    def wait_stdout(self, msg_id: str, text: str, timeout: float = 30) -> None:
        """Consume iopub until the cell `msg_id` printed `text` (the cell is then running)."""
        deadline = time.monotonic() + timeout
        seen = ""
        while text not in seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell never printed {text!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                seen += msg["content"]["text"]

    def run(self, code: str, cell_id: str | None = None, timeout: float = 60, **kw) -> CellResult:
        return self.collect(self.send(code, cell_id, **kw), timeout)

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=False)


@pytest.fixture
def kernel_env(mlp_home, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "JPY_"))}
    env.update(MLP_HOME=str(mlp_home), MLP_HEARTBEAT_S="0.5", PYTHONUNBUFFERED="1")
    return env  # the real nvidia-ml-py: on a machine without a GPU it reports "no driver"


@pytest.fixture
def start_kernel(kernel_env, tmp_path):
    """start_kernel(**env_overrides) -> Kernel; all are shut down after the test."""
    kernels: list[Kernel] = []

    def start(cwd: str | None = None, **overrides: str) -> Kernel:
        env = {**kernel_env, **overrides}
        k = Kernel(env, cwd or str(tmp_path))
        kernels.append(k)
        return k

    yield start
    for k in kernels:
        try:
            k.shutdown()
        except Exception:
            pass


def write_notebook(path: Path, cells: list[dict]) -> Path:
    """A minimal nbformat 4.5 notebook; cells: {"id", "source", "tags"?}."""
    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"id": c["id"], "cell_type": "code", "execution_count": None, "outputs": [],
             "metadata": {"tags": c.get("tags", [])}, "source": c["source"]}
            for c in cells
        ],
    }  # fmt: skip
    path.write_text(json.dumps(nb, indent=1))
    return path


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll with a deadline (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def only_run(store) -> dict:
    from jupyter_mlp.store import runs

    found = runs.list_runs(store.connect())
    assert len(found) == 1, found
    return runs.get_run(store.connect(), found[0]["id"])


PY = sys.executable


def tracked_run(
    store, notebook: Path, params: dict, name: str = "base", status: str = "finished"
) -> str:
    """A run as %mlp_track leaves it (snapshot blob, parameters with their types): a rerun template."""
    from jupyter_mlp import model
    from jupyter_mlp.params import encode_value
    from jupyter_mlp.store.records import apply_batch

    run_id = model.new_run_id()
    now = time.time()
    fields = {
        "status": status, "kind": model.INTERACTIVE, "project": "exec", "name": name,
        "notebook": str(notebook), "snapshot": store.blobs.put_bytes(notebook.read_bytes()),
        "kernel": "python3", "created_at": now, "started_at": now, "ended_at": now,
    }  # fmt: skip
    rows = [(k, *encode_value(v, k), "parameters") for k, v in params.items()]
    with store.write() as conn:
        apply_batch(conn, run_id, {"run": fields, "params": rows})
    return run_id


@pytest.fixture
def service(store):
    """service(**kw) -> a started JobService on the test's store; all are stopped afterwards and
    any job process still alive is killed (a failing test leaves nothing behind)."""
    from jupyter_mlp.execution.service import JobService

    started: list[JobService] = []

    def make(**kw) -> JobService:
        kw.setdefault("poll_interval", 0.05)
        svc = JobService(store, **kw)
        svc.start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()
    from jupyter_mlp.execution.processes import group_alive
    from jupyter_mlp.store import jobs

    for job in jobs.list_jobs(store.connect()):
        for group in (job.pgid, job.kernel_pgid):
            if group and group_alive(group):
                os.killpg(group, signal.SIGKILL)


def interruptible() -> None:
    """Popen(preexec_fn=...): the child takes Ctrl-C (SIGINT) as a terminal's foreground command
    does. A background shell (`nohup .ci/run &`, a CI runner) starts its jobs with SIGINT
    ignored, and Python keeps it ignored: a test that sends SIGINT would wait in vain."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
