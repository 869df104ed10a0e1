"""The dask executor: a real scheduler and real workers on 127.0.0.1 (started here, stopped by
PID), the real Jupyter server the workers report to over HTTP, real papermill and kernels.

The workers get a store folder of their own (MLP_HOME): whatever reaches the server's store came
over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_for
from test_server import api, poll, seed, status_of

pytest.importorskip("distributed")

from jupyter_mlp.execution.errors import JobError  # noqa: E402
from jupyter_mlp.execution.service import JobService  # noqa: E402

PY = sys.executable


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A Dask scheduler on 127.0.0.1; its address."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    proc = subprocess.Popen(
        [PY, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(info)],
        stdout=subprocess.DEVNULL, stderr=open(folder / "scheduler.log", "wb"),
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(info.exists, timeout=60, interval=0.1, what="the Dask scheduler to start")
        yield json.loads(info.read_text())["address"]
    finally:
        _stop(proc)


@pytest.fixture
def worker(scheduler, tmp_path):
    """worker(name, gpus=0) -> a started Dask worker process (no nanny: killing it kills it)."""
    procs: list[subprocess.Popen] = []

    def start(
        name: str = "w1",
        gpus: int = 0,
        cards: str | None = None,
        threads: int = 2,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        from distributed import Client

        home = tmp_path / f"worker-{name}"
        home.mkdir()
        env = {**os.environ, "MLP_HOME": str(home / "store"), "MLP_SPOOL_DIR": str(home / "spool"),
               **(env or {})}  # fmt: skip
        if cards is not None:
            env["CUDA_VISIBLE_DEVICES"] = cards
        args = [PY, "-m", "distributed.cli.dask_worker", scheduler, "--name", name,
                "--nthreads", str(threads), "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"]  # fmt: skip
        if gpus:
            args += ["--resources", f"GPU={gpus}"]
        proc = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, start_new_session=True,
            stderr=open(home / "worker.log", "wb"),
        )  # fmt: skip
        procs.append(proc)
        with Client(scheduler, timeout=30, set_as_default=False) as client:
            wait_for(
                lambda: any(
                    w.get("name") == name for w in client.scheduler_info()["workers"].values()
                ),
                timeout=60, interval=0.1, what=f"worker {name} to join",
            )  # fmt: skip
        return proc

    yield start
    for proc in procs:
        _stop(proc)
    _forget_tasks(scheduler)


def _forget_tasks(address: str) -> None:
    """The scheduler outlives a test: a task the test left (fire-and-forget, queued when its
    server stopped) would run on the next test's worker and hold its GPU slot while it tries to
    reach a server that is gone. Take every task off, and wait for the killed workers to leave."""
    from distributed import Client, Future

    def tasks(dask_scheduler=None) -> list:
        return list(dask_scheduler.tasks)

    with Client(address, timeout=30, set_as_default=False) as client:
        keys = client.run_on_scheduler(tasks)
        if keys:
            client.cancel([Future(k, client) for k in keys], force=True)
        wait_for(
            lambda: not client.run_on_scheduler(tasks) and not client.scheduler_info()["workers"],
            timeout=30, interval=0.1, what="the scheduler to forget this test's tasks and workers",
        )  # fmt: skip


@pytest.fixture
def jp_server_config(mlp_home, scheduler):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlp": True}},
        "MlpApp": {"dask_scheduler": scheduler},
    }


def notebook(*cells: str) -> bytes:
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "cells": [
                {
                    "id": f"c{i}",
                    "cell_type": "code",
                    "source": src,
                    "outputs": [],
                    "execution_count": None,
                    "metadata": {"tags": ["parameters"] if i == 0 else []},
                }
                for i, src in enumerate(cells)
            ],
        }  # fmt: skip
    ).encode()


def template(store, run_id: str, nb: bytes, params: list, path: Path | None = None) -> str:
    """A finished run to rerun; path: the notebook it was made from (its folder is a job's cwd)."""
    run = {"snapshot": store.blobs.put_bytes(nb), "kernel": "python3"}
    if path is not None:
        run["notebook"] = str(path)
    seed(store, run_id, run=run, params=params)
    return run_id


async def rerun(jp_fetch, run_id: str, **body) -> str:
    created = await api(
        jp_fetch, "runs", run_id, "rerun", method="POST", body={"executor": "dask", **body}
    )
    return created["id"]


async def final(jp_fetch, run_id: str, timeout: float = 120.0) -> dict:
    return await poll(
        lambda: api(jp_fetch, "runs", run_id),
        lambda r: r["status"] in ("finished", "failed", "cancelled"),
        timeout=timeout,
        what=f"run {run_id} to end",
    )


def alive(pid: int) -> bool:
    """The project's own check (a zombie counts as gone; a process exiting while /proc is read
    is gone, not an error: reading its stat after an exists() raced its exit)."""
    from jupyter_mlp.execution.processes import process_alive

    return process_alive(pid)


async def test_a_dask_job_reports_over_http(jp_fetch, store, worker):
    worker("w1")
    nb = notebook(
        "x = 1\nname = 'a'",
        "%load_ext jupyter_mlp\n%mlp_track",
        "import jupyter_mlp as mlp\nmlp.output('double', x * 2)\nmlp.log_metric('loss', 0.5)",
        "%mlp_track stop",
        "print(name)",
    )
    parent = template(
        store,
        "dada00000001",
        nb,
        [("x", "1", "int", "parameters"), ("name", '"a"', "str", "parameters")],
    )
    child_id = await rerun(jp_fetch, parent, params={"x": 21, "name": 'x"); import os; ("'})
    seen = await api(jp_fetch, "runs", child_id)
    assert seen["status"] in ("queued", "running", "finished")
    child = await final(jp_fetch, child_id)
    assert child["status"] == "finished", child.get("error")
    assert child["parent_id"] == parent and child["params"]["x"] == 21
    assert child["params"]["name"] == 'x"); import os; ("'  # a value, not code
    outputs = {o["name"]: o.get("value") for o in child["outputs"]}
    assert outputs["double"] == 42  # the tracker inside wrote over HTTP too
    assert child["metrics"]["loss"] == 0.5
    cells = (await api(jp_fetch, "runs", child_id, "cells"))["cells"]
    assert {f"c{i}" for i in range(5)} <= {c["cell_id"] for c in cells}  # + papermill's cell
    assert all(c["status"] == "ok" for c in cells)
    executed = json.loads(await api(jp_fetch, "runs", child_id, "notebook", which="output"))
    assert 'x"); import os; ("' in "".join(executed["cells"][-1]["outputs"][0]["text"])
    row = (
        store.connect().execute("SELECT options FROM jobs WHERE run_id = ?", (child_id,)).fetchone()
    )
    assert json.loads(row[0])["worker"].startswith("tcp://127.0.0.1:")


async def long_job(jp_fetch, store, template_id: str, pidfile: Path) -> tuple[str, int]:
    """A dask job whose second cell sleeps for minutes, once that cell runs: (run id, kernel pid)."""
    nb = notebook(
        "pidfile = ''",
        "import os, time\nopen(pidfile, 'w').write(str(os.getpid()))\ntime.sleep(300)",
    )
    parent = template(store, template_id, nb, [("pidfile", '""', "str", "parameters")])
    child_id = await rerun(jp_fetch, parent, params={"pidfile": str(pidfile)})
    await poll(
        lambda: api(jp_fetch, "runs", child_id, "cells"),
        lambda cells: any(c["status"] == "running" for c in cells["cells"]) and pidfile.exists(),
        what="the long cell to start (cells arrive live over HTTP)",
    )
    return child_id, int(pidfile.read_text())


async def test_a_worker_killed_mid_job_fails_the_run_with_the_reason(
    jp_fetch, store, worker, tmp_path
):
    proc = worker("doomed")
    child_id, kernel = await long_job(jp_fetch, store, "dada00000002", tmp_path / "kernel.pid")
    idle = kernels_of(proc.pid)  # the job's and the worker's warm ones
    try:
        assert (await api(jp_fetch, "runs", child_id))["status"] == "running"
        _stop(proc)
        started = time.monotonic()
        child = await final(jp_fetch, child_id, timeout=30)
        assert time.monotonic() - started < 20
        assert child["status"] == "failed"
        assert "left the cluster" in child["error"]["evalue"]
        # the kernel does not outlive its worker (ipykernel watches its parent)
        await poll(
            lambda: _async(not alive(kernel)), bool, timeout=30, what="the orphaned kernel to exit"
        )
        await poll(lambda: _async(not [p for p in idle if alive(p)]), bool, timeout=30,
                   what="the dead worker's idle warm kernels to exit")  # fmt: skip
    finally:
        for pid in {kernel, *idle}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_cancel_stops_a_running_dask_job_and_its_kernel(jp_fetch, store, worker, tmp_path):
    worker("w2")
    child_id, kernel = await long_job(jp_fetch, store, "dada00000003", tmp_path / "kernel.pid")
    answer = await api(jp_fetch, "runs", child_id, "cancel", method="POST", body="{}")
    assert answer["state"] == "cancelled"
    await poll(
        lambda: _async(not alive(kernel)), bool, timeout=30, what="the worker to stop the kernel"
    )
    child = await api(jp_fetch, "runs", child_id)
    assert child["status"] == "cancelled"
    # the worker is free again: the next job runs there, and is cancelled the same way
    again, k2 = await long_job(jp_fetch, store, "dada00000007", tmp_path / "k2")
    await api(jp_fetch, "runs", again, "cancel", method="POST", body="{}")
    await poll(lambda: _async(not alive(k2)), bool, timeout=30, what="the second kernel to stop")


async def _async(value):
    return value


async def test_bad_dask_input_is_refused_before_anything_is_queued(
    jp_fetch, store, worker, scheduler
):
    worker("w3", gpus=1)
    nb = notebook("x = 1")
    parent = template(store, "dada00000004", nb, [("x", "1", "int", "parameters")])
    before = len((await api(jp_fetch, "runs"))["runs"])
    too_many = jp_fetch(
        "mlp", "api", "runs", parent, "rerun", method="POST",
        body=json.dumps({"executor": "dask", "gpus": 2}),
    )  # fmt: skip
    assert await status_of(too_many) == 400
    service = JobService(store, executors={"dask": {"scheduler": "tcp://127.0.0.1:9",
                                                    "api_url": "http://127.0.0.1:9/mlp/api",
                                                    "connect_timeout": 1}})  # fmt: skip
    with pytest.raises(JobError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        service.submit_rerun(parent, {}, executor="dask")
    assert len((await api(jp_fetch, "runs"))["runs"]) == before  # nothing was queued
    # --gpus 1 fits the worker: it becomes the task's resources, and the job runs there
    child_id = await rerun(jp_fetch, parent, params={"x": 2}, gpus=1)
    child = await final(jp_fetch, child_id)
    assert child["status"] == "finished", child.get("error")


def test_without_a_server_dask_jobs_are_refused_with_what_to_do(store, tmp_path):
    nb = notebook("x = 1")
    parent = template(store, "dada00000005", nb, [("x", "1", "int", "parameters")])
    service = JobService(store, dispatch=False)
    with pytest.raises(JobError, match="running Jupyter server"):
        service.submit_rerun(
            parent, {}, executor="dask", options={"scheduler": "tcp://127.0.0.1:9"}
        )


async def test_a_pipeline_on_dask_passes_files_to_remote_stages(jp_fetch, store, worker, tmp_path):
    """Stage runs are dask jobs; a file output reaches the next stage as a path on its worker,
    downloaded over HTTP (the worker is not assumed to see the server's store)."""
    import asyncio

    from test_pipelines import STAGE_CODE, pipeline, stage, statuses

    from jupyter_mlp.pipelines.dag import Driver, submit
    from jupyter_mlp.store import pipelines as P
    from jupyter_mlp.store import runs as run_store

    worker("w4")
    nb = notebook(
        "x = 0\nfail = False\nsleep = 0.0\ndata_path = ''\nattempt_file = ''",
        "%load_ext jupyter_mlp\n%mlp_track",
        STAGE_CODE,
    )
    (tmp_path / "stage.ipynb").write_bytes(nb)
    spec = pipeline(
        {
            "a": stage(x="${pipeline.start}"),
            "b": stage(x="${a.outputs.y}", data_path="${a.outputs.file}"),
        },
        {"start": 10},
    )

    def run() -> dict:
        pid = submit(store, spec, base=tmp_path, executor="dask")
        Driver(store, pid, service=JobService(store, dispatch=False)).run()
        return P.get(store.connect(), pid)

    done = await asyncio.wait_for(asyncio.to_thread(run), timeout=180)
    assert statuses(done) == {"a": "succeeded", "b": "succeeded"}, done
    b = run_store.get_run(store.connect(), done["stages"]["b"]["run_id"])
    files = {o["name"]: o for o in b["outputs"]}
    assert store.blobs.read_bytes(files["file"]["blob"]) == b"|10|11"
    executed = json.loads(await api(jp_fetch, "runs", b["id"], "notebook", which="output"))
    injected = next(
        c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    )
    assert "mlp-inputs-" in "".join(
        injected["source"]
    )  # fetched to the worker, not the server's path
    again = await asyncio.wait_for(asyncio.to_thread(run), timeout=180)
    assert statuses(again) == {"a": "cached", "b": "cached"}


async def test_a_restarted_job_service_follows_a_running_dask_job(
    jp_serverapp, jp_fetch, store, worker, tmp_path
):
    """The server's job service stops (as at a server restart: its Dask client closes) while a
    dask job runs: the task is not cancelled with the client (fire_and_forget), and the job's
    outcome is recorded under the new service."""
    worker("w5")
    gate = tmp_path / "gate"
    nb = notebook(
        "gate = ''", "import os, time\nwhile not os.path.exists(gate):\n    time.sleep(0.05)"
    )
    parent = template(store, "dada00000006", nb, [("gate", '""', "str", "parameters")])
    child_id = await rerun(jp_fetch, parent, params={"gate": str(gate)})
    await poll(
        lambda: api(jp_fetch, "runs", child_id, "cells"),
        lambda cells: any(c["status"] == "running" for c in cells["cells"]),
        what="the gated cell to start",
    )
    app = jp_serverapp.web_app.settings["mlp"]
    config = app.jobs.config
    app.jobs.stop()
    app.jobs = JobService(store, executors=config)
    app.jobs.start()
    gate.write_text("go")
    child = await final(jp_fetch, child_id)
    assert child["status"] == "finished", child.get("error")


async def test_a_job_whose_task_the_scheduler_forgot_fails_when_the_service_starts(
    jp_serverapp, jp_fetch, store, scheduler
):
    """Its outcome can never arrive (the scheduler restarted, or the task ended while no server
    listened): the next service start fails it with the reason instead of waiting forever."""
    from jupyter_mlp.execution.submit import prepare_rerun
    from jupyter_mlp.store import jobs

    parent = template(store, "dada00000008", notebook("x = 1"), [("x", "1", "int", "parameters")])
    with store.write() as conn:  # as an earlier server left it
        rid = jobs.enqueue(conn, prepare_rerun(conn, store.blobs, parent, {}, executor="dask"))
        jobs.transition(conn, rid, "running")
        jobs.update_job(conn, rid, options={"scheduler": scheduler, "dask_key": f"mlp-job-{rid}"})
    app = jp_serverapp.web_app.settings["mlp"]
    config = app.jobs.config
    app.jobs.stop()
    app.jobs = JobService(store, executors=config)
    app.jobs.start()
    run = await final(jp_fetch, rid, timeout=30)
    assert run["status"] == "failed" and "no longer knows" in run["error"]["evalue"]


async def test_job_reports_are_tied_to_one_start_of_the_task(jp_fetch, store):
    """A start repeated by the same attempt (its first answer was lost) is accepted again; a
    start or report from another attempt (Dask retrying the task elsewhere) changes nothing."""
    from jupyter_mlp.execution.submit import prepare_rerun
    from jupyter_mlp.store import jobs, tokens

    parent = template(store, "dada00000009", notebook("x = 1"), [("x", "1", "int", "parameters")])
    with store.write() as conn:
        rid = jobs.enqueue(conn, prepare_rerun(conn, store.blobs, parent, {}, executor="dask"))
        token = tokens.issue(conn, rid)
        # as the server's dispatch leaves it: submitted (so the service never submits it again,
        # which would issue another token), just now (so the watcher gives it its grace period)
        job = jobs.get_job(conn, rid)
        jobs.update_job(conn, rid, options={
            **job.options, "dask_key": f"mlp-job-{rid}-test", "submitted_at": time.time(),
            "scheduler": job.options.get("scheduler") or "tcp://127.0.0.1:9",
        })  # fmt: skip

    async def report(body):
        return await api(jp_fetch, "ingest", "job", method="POST", body=body,
                         headers={"X-MLP-Run-Token": token})  # fmt: skip

    first = {"state": "running", "worker": "tcp://127.0.0.1:1", "attempt": "a1"}
    assert await report(first) == {"accepted": True, "state": "running"}
    assert await report(first) == {"accepted": True, "state": "running"}  # the same, again
    other = {"state": "running", "worker": "tcp://127.0.0.1:2", "attempt": "a2"}
    assert await report(other) == {"accepted": False, "state": "running"}
    assert (await report({"note": "from a2", "attempt": "a2"}))["accepted"] is False
    job = jobs.get_job(store.connect(), rid)
    assert job.options["worker"] == "tcp://127.0.0.1:1" and job.note is None
    done = await report({"state": "finished", "attempt": "a1"})
    assert done == {"accepted": True, "state": "finished"}
    # the run has ended: its token no longer works
    assert await status_of(report({"state": "failed", "attempt": "a1"})) == 401


async def test_jobs_running_at_once_on_one_worker_get_different_cards(
    jp_fetch, store, worker, tmp_path
):
    """Dask's GPU resource only counts; the worker hands out its cards, one job each."""
    worker("two-gpus", gpus=2, cards="0,1", threads=6)  # spare threads: see the note
    gate = tmp_path / "gate"
    nb = notebook(
        "gate = ''",
        "%load_ext jupyter_mlp\n%mlp_track --no-gpu",
        "import os, time\nimport jupyter_mlp as mlp\n"
        "mlp.output('cards', os.environ.get('CUDA_VISIBLE_DEVICES'))\n"
        "while not os.path.exists(gate):\n    time.sleep(0.05)",
    )
    parent = template(store, "dada0000000a", nb, [("gate", '""', "str", "parameters")])
    ids = [await rerun(jp_fetch, parent, params={"gate": str(gate)}, gpus=1) for _ in range(2)]
    none = await rerun(jp_fetch, parent, params={"gate": str(gate)}, gpus=0)

    async def cards(run_id: str):
        run = await poll(
            lambda: api(jp_fetch, "runs", run_id),
            lambda r: any(o["name"] == "cards" for o in r["outputs"]),
            what=f"run {run_id} to say which cards it sees",
        )
        return {o["name"]: o.get("value") for o in run["outputs"]}["cards"]

    seen = [await cards(i) for i in ids]
    assert sorted(seen) == ["0", "1"]  # both ran at once, one card each
    assert await cards(none) == ""  # a job that asks for no GPU sees none
    gate.write_text("go")
    for run_id in [*ids, none]:
        run = await final(jp_fetch, run_id)
        assert run["status"] == "finished", run.get("error")
    assert sorted(g for i in ids for g in jobs_gpus(store, i)) == ["0", "1"]


def jobs_gpus(store, run_id: str) -> list[str]:
    from jupyter_mlp.store.jobs import get_job

    return get_job(store.connect(), run_id).gpus or []


async def test_the_cli_queues_a_dask_job_that_the_server_runs(jp_fetch, store, worker, mlp_home):
    """`jupyter mlp rerun --executor dask` from a terminal: it queues through the store, the
    running server dispatches and hears the worker, the command waits and exits 0."""
    import asyncio

    worker("w6")
    parent = template(
        store, "dada0000000b", notebook("x = 1", "y = x * 2"), [("x", "1", "int", "parameters")]
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jupyter_mlp.cli", "rerun", parent, "-p", "x=5", "--executor", "dask",
        env={**os.environ, "MLP_HOME": str(mlp_home)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    child = next(r for r in (await api(jp_fetch, "runs"))["runs"] if r["parent_id"] == parent)
    assert child["status"] == "finished" and child["params"]["x"] == 5
    assert f"run {child['id']}: finished" in err.decode()


async def test_a_sweep_prunes_a_trial_running_on_a_dask_worker(jp_fetch, store, worker, scheduler):
    """Pruning over HTTP: a trial on a Dask worker logs its curve to the server, the sweep's
    driver (a process of its own) reads it from the store, prunes the worse trial, and the
    worker's job stops its kernel (the job's state is final, so its token is dead)."""
    pytest.importorskip("optuna")
    worker("w-sweep", threads=2)
    nb = notebook(
        "q = 1",
        "import time\nimport jupyter_mlp as mlp\nfor step in range(10):\n"
        "    mlp.log_metric('score', q * (step + 1), step=step)\n    mlp.flush()\n"
        "    time.sleep(0.4 if q > 1 else 1.0)",
    )
    parent = template(store, "dada0000000c", nb, [("q", "1", "int", "parameters")])
    # GridSampler with seed 1 asks q = 6 first, then q = 1 (one at a time): the first curve sets
    # the median, the second falls below it at its first report after the warm-up step.
    created = await api(jp_fetch, "sweeps", method="POST", body={
        "template": parent, "params": {"q": "6,1"}, "objective": "max:score", "sampler": "grid",
        "seed": 1, "concurrency": 1, "prune": True, "prune_startup": 1, "prune_warmup": 1,
        "executor": "dask",
    })  # fmt: skip
    done = await poll(
        lambda: api(jp_fetch, "sweeps", created["id"]),
        lambda s: s["status"] in ("finished", "failed", "cancelled"),
        timeout=120, what="the sweep to end",
    )  # fmt: skip
    trials = {t["params"]["q"]: t for t in done["trials"]}
    assert done["status"] == "finished", done
    assert trials[6]["status"] == "finished" and done["best_value"] == 60
    low = trials[1]
    assert (low["status"], low["job_state"], low["run_status"]) == ("pruned",) * 3, low
    run = await api(jp_fetch, "runs", low["run_id"])
    assert "pruned at step" in run["error"]["evalue"]
    points = (
        store.connect()
        .execute(
            "SELECT COALESCE(SUM(count), 0) FROM metrics WHERE run_id = ? AND key = 'score'",
            (low["run_id"],),
        )
        .fetchone()[0]
    )
    assert 2 <= points < 10, points
    # The worker's task ends soon after: the job saw its final state and stopped its kernel.
    from distributed import Client

    from jupyter_mlp.store.jobs import get_job

    key = get_job(store.connect(), low["run_id"]).options["dask_key"]

    def state(dask_scheduler=None, key=key):
        task = dask_scheduler.tasks.get(key)
        return task.state if task is not None else None

    import asyncio

    def ended() -> bool:  # off the event loop: the server must answer the worker meanwhile
        with Client(scheduler, timeout=30, set_as_default=False) as client:
            return client.run_on_scheduler(state) in (None, "memory", "released", "forgotten")

    deadline = asyncio.get_running_loop().time() + 30
    while not await asyncio.to_thread(ended):
        assert asyncio.get_running_loop().time() < deadline, "the pruned trial's task still runs"
        await asyncio.sleep(0.2)


# --- warm kernels on the workers (remote.WorkerKernels, the WarmKernels worker plugin) -----------

PROBE = notebook(
    "x = 1",
    "import os, sys, json, helper\n"
    "leaked = 'secret' in globals()\n"
    "secret = x\n"
    "print(json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'cwd': os.getcwd(), 'x': x,\n"
    "    'helper': helper.VALUE, 'run': os.environ.get('MLP_RUN_ID'),\n"
    "    'kernel': os.environ.get('MLP_KERNEL_NAME'), 'uri': os.environ.get('MLP_TRACKING_URI'),\n"
    "    'token': os.environ.get('MLP_TRACKING_TOKEN', '').split('.')[0],\n"
    "    'cards': os.environ.get('CUDA_VISIBLE_DEVICES'), 'session': __session__,\n"
    "    'leaked': leaked, 'path0': '' in sys.path}))",
)
SAME = ("cwd", "x", "helper", "kernel", "uri", "cards", "leaked", "path0")  # in a cold kernel too


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def kernels_of(worker_pid: int) -> dict[int, str]:
    """The live kernel processes a worker process started (idle or a job's): {pid: start time}.
    A kernel is the worker's child, or the child of the worker's kernel zygote (which forks
    them: kernel_pool.Zygote), not the zygote itself."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if stat[0] not in ("Z", "X") and b"ipykernel" in cmd:
            procs[int(entry)] = (int(stat[1]), stat[19], b"jupyter-mlp warm kernel" in cmd)
    zygotes = {pid for pid, (ppid, _, zygote) in procs.items() if ppid == worker_pid and zygote}
    return {
        pid: start
        for pid, (ppid, start, zygote) in procs.items()
        if (ppid == worker_pid and not zygote) or ppid in zygotes
    }


async def probed(jp_fetch, run_id: str) -> dict:
    """What the probe cell printed in the run's executed notebook."""
    executed = json.loads(await api(jp_fetch, "runs", run_id, "notebook", which="output"))
    cell = next(c for c in executed["cells"] if c.get("id") == "c1")
    return json.loads("".join("".join(o.get("text", "")) for o in cell["outputs"]))


@pytest.fixture
def probe_template(store, tmp_path):
    """A run of PROBE made from a notebook in a folder (its jobs' cwd) that holds a module."""
    folder = tmp_path / "it's work"
    folder.mkdir()
    (folder / "helper.py").write_text("VALUE = 7\n")
    return template(
        store, "dada0000000d", PROBE, [("x", "1", "int", "parameters")], folder / "probe.ipynb"
    )


def _left(scheduler: str, name: str) -> None:
    from distributed import Client

    with Client(scheduler, timeout=30, set_as_default=False) as client:
        wait_for(
            lambda: all(w.get("name") != name for w in client.scheduler_info()["workers"].values()),
            timeout=30, interval=0.1, what=f"worker {name} to leave",
        )  # fmt: skip


async def test_dask_jobs_run_in_kernels_started_before_they_were_submitted(
    jp_fetch, store, worker, scheduler, probe_template, tmp_path
):
    """A worker keeps a warm kernel (started by the server's worker plugin, before any job) and
    refills it after each job; a job in one sees what a job in a cold kernel sees. With
    MLP_KERNEL_POOL=0 on the worker, it keeps none and its jobs start their kernels cold."""
    # the pool off: the job runs all the same, in a kernel started for it after it was submitted
    cold_worker = worker("cold", env={"MLP_KERNEL_POOL": "0"})
    assert kernels_of(cold_worker.pid) == {}
    cold_id = await rerun(jp_fetch, probe_template, params={"x": 5})
    run = await final(jp_fetch, cold_id)
    assert run["status"] == "finished", run.get("error")
    cold = await probed(jp_fetch, cold_id)
    assert cold["ppid"] == cold_worker.pid  # it ran on this worker, in a kernel of its own
    await poll(lambda: _async(kernels_of(cold_worker.pid)), lambda k: k == {}, timeout=15,
               what="the cold job's kernel to exit (and no kernel started ahead)")  # fmt: skip
    assert (cold["run"], cold["token"]) == (cold_id, cold_id)
    assert cold["cwd"] == str(tmp_path / "it's work") and cold["helper"] == 7
    assert cold["cards"] == "" and cold["x"] == 5 and not cold["leaked"]
    _stop(cold_worker)
    _left(scheduler, "cold")

    warm_worker = worker("warm")
    used: set[int] = set()
    for x in (6, 7):
        # the pool's kernel is up before the job is submitted (for the first job: started by the
        # worker plugin, as no job has run on this worker yet; for the second: the refill)
        ahead = await poll(
            lambda: _async({p: s for p, s in kernels_of(warm_worker.pid).items() if p not in used}),
            bool, timeout=60, what="a warm kernel on the worker",
        )  # fmt: skip
        run_id = await rerun(jp_fetch, probe_template, params={"x": x})
        run = await final(jp_fetch, run_id)
        assert run["status"] == "finished", run.get("error")
        seen = await probed(jp_fetch, run_id)
        assert seen["pid"] in ahead, (seen["pid"], ahead)  # the kernel started before the job
        used.add(seen["pid"])
        assert warm_worker.pid in (seen["ppid"], parent_of(seen["ppid"]))  # or its zygote
        for key in SAME:
            assert seen[key] == (x if key == "x" else cold[key]), key
        assert (seen["run"], seen["token"]) == (run_id, run_id)
        session = os.path.basename(seen["session"])
        assert session == os.path.basename(cold["session"]) == "probe.ipynb"
    await poll(lambda: _async(set(kernels_of(warm_worker.pid)) & used), lambda k: not k,
               timeout=15, what="the jobs' kernels to exit")  # fmt: skip


async def test_a_dask_worker_leaves_no_kernel_behind(
    jp_fetch, store, worker, probe_template, tmp_path
):
    """Finished, failed and cancelled jobs' kernels exit (a cancelled job's warm kernel is
    killed); the worker then holds no more idle kernels than its pool's size, and stops those
    when it closes."""
    proc = worker("tidy", env={"MLP_KERNEL_POOL": "2"})
    idle = await poll(lambda: _async(kernels_of(proc.pid)), lambda k: len(k) == 2, timeout=60,
                      what="the worker's two warm kernels")  # fmt: skip
    kernels = []
    ok = await rerun(jp_fetch, probe_template, params={"x": 2})
    assert (await final(jp_fetch, ok))["status"] == "finished"
    kernels.append((await probed(jp_fetch, ok))["pid"])
    assert kernels[0] in idle
    bad = template(
        store, "dada0000000e",
        notebook("x = 1", "import os\nprint('{\"pid\": %d}' % os.getpid())\nraise ValueError(x)"),
        [("x", "1", "int", "parameters")],
    )  # fmt: skip
    failed_id = await rerun(jp_fetch, bad, params={"x": 2})
    failed = await final(jp_fetch, failed_id)
    assert failed["status"] == "failed" and failed["error"]["ename"] == "ValueError"
    kernels.append((await probed(jp_fetch, failed_id))["pid"])
    idle = await poll(lambda: _async(kernels_of(proc.pid)), lambda k: len(k) == 2, timeout=60,
                      what="the pool to be refilled")  # fmt: skip
    child_id, kernel = await long_job(jp_fetch, store, "dada0000000f", tmp_path / "kernel.pid")
    assert kernel in idle  # a warm kernel, killed by the cancel like a cold one
    await api(jp_fetch, "runs", child_id, "cancel", method="POST", body="{}")
    await poll(lambda: _async(not alive(kernel)), bool, timeout=30, what="the kernel to stop")
    assert (await api(jp_fetch, "runs", child_id))["status"] == "cancelled"
    kernels.append(kernel)
    # nothing but the pool's idle kernels is left, and never more than its size
    idle = await poll(
        lambda: _async(kernels_of(proc.pid)),
        lambda k: len(k) == 2 and not set(k) & set(kernels),
        timeout=30, what="only the two idle warm kernels to be left",
    )  # fmt: skip
    assert not any(alive(p) for p in kernels)
    # a worker that closes stops its idle kernels before it exits (the plugin's teardown)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert not [p for p in idle if alive(p)], idle


def test_a_worker_process_starts_its_pool_on_first_use_refills_it_and_stops_it(monkeypatch):
    """Without the plugin (its registration failed), a worker's first job starts the pool; a
    kernel taken is refilled in the background; closing stops the idle ones. A plugin that
    cannot be registered is only logged."""
    from jupyter_mlp.execution import dask_executor, remote

    class Refusing:
        def register_plugin(self, plugin):
            raise RuntimeError("no plugins here")

    dask_executor._register_warm_kernels(Refusing(), "tcp://127.0.0.1:9")  # does not raise

    monkeypatch.setenv("MLP_KERNEL_POOL", "0")
    assert remote.worker_kernels() is None
    monkeypatch.setenv("MLP_KERNEL_POOL", "1")
    pool = remote.worker_kernels()
    try:
        assert pool is not None and remote.worker_kernels() is pool  # one per process
        me = os.getpid()
        first = wait_for(lambda: kernels_of(me), timeout=60, what="the first warm kernel")
        taken = wait_for(lambda: pool.take("python3", ""), timeout=60, what="a kernel to take")
        assert taken.pid in first and pool.take("python3", "0") is None  # no kernel for card 0
        refill = wait_for(lambda: set(kernels_of(me)) - {taken.pid}, timeout=60, what="a refill")
        taken.discard()
    finally:
        remote.close_worker_kernels()
    assert pool.closed and not pool.folder.exists()
    wait_for(
        lambda: not [p for p in refill if alive(p)], timeout=15, what="the idle kernel to stop"
    )
