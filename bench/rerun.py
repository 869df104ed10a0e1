"""Rerun figures: how fast a submitted job is visible, and what the local executor adds to papermill.

    python bench/rerun.py [--runs 5] [--submits 30]

submit_ms           median time from submit_rerun() to the new run readable as `queued` from
                    another connection (a service that only queues, so nothing starts)
submit_first_ms     the same for the first submit after the service started
papermill_ms        a trivial notebook through papermill.execute_notebook alone (in process)
local_ms            the same notebook as a rerun through a started JobService (warm launcher):
                    from submit to the run `finished` in the store, output notebook stored
local_overhead_ms   local_ms - papermill_ms (medians; the two are measured alternately)
local_cold_ms       one job started cold, as the CLI does without a server (a fresh interpreter)
dask_ms             the same rerun through the dask executor: a Jupyter server (subprocess) with
                    a Dask scheduler and one worker on 127.0.0.1; from POST /runs/{id}/rerun to
                    the run `finished` as the REST API shows it (the job reported over HTTP)
dask_overhead_ms    dask_ms - papermill_ms (medians)

Prints one figure per line and, last, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {"id": "p", "cell_type": "code", "execution_count": None, "outputs": [],
         "metadata": {"tags": ["parameters"]}, "source": "x = 0"},
        {"id": "a", "cell_type": "code", "execution_count": None, "outputs": [], "metadata": {},
         "source": "y = x + 1"},
    ],
}  # fmt: skip


def parent_run(store, notebook: Path, params: list | None = None) -> str:
    """A finished interactive run of `notebook` to rerun (params: its (key, JSON, type, source)
    rows; by default one int `x`)."""
    from jupyter_mlp import model
    from jupyter_mlp.store.records import apply_batch

    run_id = model.new_run_id()
    now = time.time()
    with store.write() as conn:
        apply_batch(conn, run_id, {
            "run": {"status": "finished", "kind": "interactive", "name": "bench", "notebook": str(notebook),
                    "snapshot": store.blobs.put_bytes(notebook.read_bytes()), "kernel": "python3",
                    "created_at": now, "started_at": now, "ended_at": now},
            "params": params or [("x", "0", "int", "parameters")],
        })  # fmt: skip
    return run_id


def wait_state(store, run_id: str, states: tuple[str, ...], timeout: float = 120.0) -> None:
    conn = store.connect()
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute("SELECT state FROM jobs WHERE run_id = ?", (run_id,)).fetchone()
        if row and row[0] in states:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {run_id} never reached {states}")
        time.sleep(0.002)


def submit_figures(home: Path, notebook: Path, n: int) -> dict:
    from jupyter_mlp.execution.service import JobService
    from jupyter_mlp.store import Store

    store, reader = Store(home), Store(home)
    parent = parent_run(store, notebook)
    svc = JobService(store, dispatch=False)
    svc.start()  # as the server does at its start
    times = []
    for i in range(n + 1):
        t = time.perf_counter()
        run_id = svc.submit_rerun(parent, {"x": i})
        row = reader.connect().execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        times.append((time.perf_counter() - t) * 1000)
        assert row[0] == "queued"
    for run_id in [
        r[0] for r in store.connect().execute("SELECT run_id FROM jobs WHERE state = 'queued'")
    ]:
        svc.cancel(run_id)
    svc.stop()
    return {"submit_first_ms": round(times[0], 1), "submit_ms": round(statistics.median(times[1:]), 1),
            "submit_max_ms": round(max(times[1:]), 1)}  # fmt: skip


def execution_figures(home: Path, notebook: Path, runs: int) -> dict:
    import papermill

    from jupyter_mlp.execution.local import LocalExecutor
    from jupyter_mlp.execution.service import JobService
    from jupyter_mlp.store import Store

    store = Store(home)
    parent = parent_run(store, notebook)
    out = notebook.parent / "out.ipynb"

    def alone(i: int) -> float:
        t = time.perf_counter()
        papermill.execute_notebook(str(notebook), str(out), parameters={"x": i}, kernel_name="python3",
                                   progress_bar=False, cwd=str(notebook.parent))  # fmt: skip
        return (time.perf_counter() - t) * 1000

    svc = JobService(store, concurrency=1, poll_interval=0.25)
    svc.start()

    def ours(i: int) -> float:
        t = time.perf_counter()
        run_id = svc.submit_rerun(parent, {"x": i})
        wait_state(store, run_id, ("finished", "failed", "cancelled"))
        elapsed = (time.perf_counter() - t) * 1000
        status = (
            store.connect().execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        )
        assert status == "finished", status
        return elapsed

    try:
        alone(-1)
        ours(-1)  # warm up: the launcher's imports, the first kernel
        base, local = [], []
        for i in range(runs):
            base.append(alone(i))
            local.append(ours(i))
    finally:
        svc.stop()

    cold = LocalExecutor(store, warm=False)
    t = time.perf_counter()
    with store.write() as conn:
        from jupyter_mlp.execution.submit import prepare_rerun
        from jupyter_mlp.store.jobs import enqueue

        run_id = enqueue(conn, prepare_rerun(conn, store.blobs, parent, {"x": 99}))
    cold.dispatch()
    wait_state(store, run_id, ("finished", "failed"))
    cold_ms = (time.perf_counter() - t) * 1000
    b, loc = statistics.median(base), statistics.median(local)
    return {
        "papermill_ms": round(b, 1), "local_ms": round(loc, 1), "local_overhead_ms": round(loc - b, 1),
        "papermill_runs_ms": [round(x) for x in base], "local_runs_ms": [round(x) for x in local],
        "local_cold_ms": round(cold_ms, 1),
    }  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def dask_figures(tmp: Path, notebook: Path, runs: int, papermill_ms: float) -> dict:
    import secrets
    import subprocess

    import distributed  # noqa: F401  (ImportError: no dask figures)
    import requests

    from jupyter_mlp.store import Store

    home = tmp / "dask-home"
    store = Store(home)
    parent = parent_run(store, notebook)
    procs: list[subprocess.Popen] = []
    log = open(tmp / "dask-bench.log", "ab")

    def start(*args: str, env: dict | None = None) -> None:
        procs.append(subprocess.Popen([sys.executable, *args], stdout=log, stderr=log,
                                      env={**os.environ, **(env or {})}, start_new_session=True))  # fmt: skip

    try:
        info = tmp / "scheduler.json"
        start("-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
              "--no-dashboard", "--scheduler-file", str(info))  # fmt: skip
        _until(info.exists, 60, "the scheduler")
        address = json.loads(info.read_text())["address"]
        start("-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
              "--no-dashboard", "--host", "127.0.0.1", env={"MLP_HOME": str(tmp / "worker-home")})  # fmt: skip
        port, token = _free_port(), secrets.token_hex(16)
        start("-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
              f"--IdentityProvider.token={token}", f"--MlpApp.dask_scheduler={address}",
              f"--ServerApp.root_dir={tmp}", env={"MLP_HOME": str(home)})  # fmt: skip
        api = f"http://127.0.0.1:{port}/mlp/api"
        http = requests.Session()
        http.headers["Authorization"] = f"token {token}"

        def up() -> bool:
            try:
                return http.get(f"{api}/executors", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        _until(up, 60, "the Jupyter server")

        def one(i: int) -> float:
            t = time.perf_counter()
            r = http.post(
                f"{api}/runs/{parent}/rerun", json={"params": {"x": i}, "executor": "dask"}
            )
            r.raise_for_status()
            run_id = r.json()["id"]
            run = _until(
                lambda: (lambda d: d if d["status"] in ("finished", "failed", "cancelled") else None)(
                    http.get(f"{api}/runs/{run_id}").json()
                ),
                120, f"dask job {run_id}", interval=0.005,
            )  # fmt: skip
            assert run["status"] == "finished", run.get("error")
            return (time.perf_counter() - t) * 1000

        one(-1)  # warm up: the worker's imports
        times = [one(i) for i in range(runs)]
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if os.environ.get("MLP_BENCH_KEEP_LOG"):
            print((tmp / "dask-bench.log").read_text()[-3000:], file=sys.stderr)
    d = statistics.median(times)
    return {"dask_ms": round(d, 1), "dask_overhead_ms": round(d - papermill_ms, 1),
            "dask_runs_ms": [round(x) for x in times]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--submits", type=int, default=30)
    args = ap.parse_args()
    import compileall

    # as pip does on install (this machine sets PYTHONDONTWRITEBYTECODE)
    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "jupyter_mlp"), quiet=1)
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["MLP_HOME"] = str(home)
        notebook = Path(tmp) / "trivial.ipynb"
        notebook.write_text(json.dumps(NOTEBOOK))
        figures.update(submit_figures(home, notebook, args.submits))
        figures.update(execution_figures(home, notebook, args.runs))
        try:
            figures.update(dask_figures(Path(tmp), notebook, args.runs, figures["papermill_ms"]))
        except ImportError:
            figures["dask_overhead_ms"] = None
            figures["dask_note"] = "distributed is not installed (pip install 'jupyter-mlp[dask]')"
    for key, value in figures.items():
        print(f"{key:>20}: {value}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
