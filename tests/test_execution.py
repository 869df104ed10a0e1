"""Reruns and notebook jobs on the local executor: real papermill, real kernels, real processes."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from conftest import tracked_run, wait_for, write_notebook

from jupyter_mlp import model
from jupyter_mlp.execution.errors import JobError
from jupyter_mlp.execution.processes import group_alive, process_alive
from jupyter_mlp.execution.service import JobService
from jupyter_mlp.store import jobs
from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.records import apply_batch

JOB_TIMEOUT = 90


# --- helpers ------------------------------------------------------------------------------------


def job_of(store, run_id: str) -> model.Job:
    job = jobs.get_job(store.connect(), run_id)
    assert job is not None
    return job


def wait_final(store, run_id: str, timeout: float = JOB_TIMEOUT) -> dict:
    wait_for(
        lambda: job_of(store, run_id).final,
        timeout=timeout,
        interval=0.05,
        what=f"job {run_id} to end",
    )
    return run_store.get_run(store.connect(), run_id)


def output_value(run: dict, name: str):
    return {o["name"]: o.get("value") for o in run["outputs"]}[name]


def executed(store, run: dict) -> dict:
    row = (
        store.connect()
        .execute("SELECT output_notebook FROM runs WHERE id = ?", (run["id"],))
        .fetchone()
    )
    assert row[0], "no output notebook stored"
    return json.loads(store.blobs.read_bytes(row[0]))


def cell_started(store, run_id: str, text: str) -> bool:
    return any(
        c["status"] == "running" and text in (c["source"] or "")
        for c in run_store.get_run(store.connect(), run_id)["cells"]
    )


PLAIN = [  # no %mlp_track: the engine records the cells from the outside
    {"id": "params", "source": "lr = 0.5\nepochs = 2\nname = 'base'", "tags": ["parameters"]},
    {"id": "train", "source": "loss = lr * epochs\nprint('loss', loss)"},
    {"id": "env", "source": "import os\nprint(os.environ['MLP_RUN_ID'], os.getcwd())"},
    {"id": "meta", "source": "print(get_ipython().kernel.get_parent('shell')['metadata'])"},
]


# --- reruns ---------------------------------------------------------------------------------------


def test_a_rerun_runs_the_snapshot_with_new_params_and_keeps_lineage(store, service, tmp_path):
    nb = write_notebook(tmp_path / "plain.ipynb", PLAIN)
    parent = tracked_run(store, nb, {"lr": 0.5, "epochs": 2, "name": "base"})
    nb.write_text("this file changed after the run: the rerun must use the snapshot")
    before, mtime = nb.read_bytes(), nb.stat().st_mtime_ns

    svc = service(warm=True)
    t0 = time.perf_counter()
    child = svc.submit_rerun(parent, {"lr": 0.1, "epochs": 3})
    assert time.perf_counter() - t0 < 2.0
    run = run_store.get_run(store.connect(), child)
    assert run["status"] in ("queued", "running")
    assert run["kind"] == "job" and run["parent_id"] == parent

    run = wait_final(store, child)
    assert run["status"] == "finished", run["error"]
    assert run["params"] == {"lr": 0.1, "epochs": 3, "name": "base"}
    assert run_store.param_diff(store.connect(), child) == [
        {"key": "epochs", "change": "changed", "parent": 2, "value": 3},
        {"key": "lr", "change": "changed", "parent": 0.5, "value": 0.1},
    ]
    lineage = run_store.lineage(store.connect(), parent)
    assert [c["id"] for c in lineage["children"]] == [child]

    # every executed cell, recorded from the outside, in order, with JupyterLab's cell ids
    cells = run["cells"]
    ids = [c["cell_id"] for c in cells]
    assert ids[0] == "params" and ids[2:] == ["train", "env", "meta"]
    assert cells[1]["source"].startswith("# Parameters")
    assert all(c["status"] == "ok" for c in cells)
    out = executed(store, run)
    texts = ["".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", [])]
    assert "loss 0.30000000000000004\n" in texts
    # the kernel had MLP_RUN_ID, ran in the notebook's folder, got JupyterLab's request metadata
    assert any(t.startswith(f"{child} {tmp_path}") for t in texts)
    assert "{'cellId': 'meta', 'tags': []}\n" in texts
    assert nb.read_bytes() == before and nb.stat().st_mtime_ns == mtime
    assert jobs.status(store.connect(), child)["cells_done"] == 5


TYPED = [
    {"id": "load", "source": "%load_ext jupyter_mlp\n%mlp_track typed --project exec"},
    {"id": "params", "source": "i = 1\nf = 1.5\nb = False\ns = 'x'\nl = [1]\nd = {'a': 1}\nn = None\nmarker = ''",
     "tags": ["parameters"]},
    {"id": "check", "source": (
        "import jupyter_mlp as mlp\n"
        "for k in ['i', 'f', 'b', 's', 'l', 'd', 'n']:\n"
        "    mlp.output(k, [type(globals()[k]).__name__, globals()[k]])\n"
        "mlp.output('marker_exists', __import__('os').path.exists(marker))"
    )},
]  # fmt: skip


def test_typed_values_arrive_verbatim_and_a_tracked_notebook_attaches(store, service, tmp_path):
    nb = write_notebook(tmp_path / "typed.ipynb", TYPED)
    old = {"i": 1, "f": 1.5, "b": False, "s": "x", "l": [1], "d": {"a": 1}, "n": None, "marker": ""}
    parent = tracked_run(store, nb, old)
    marker = tmp_path / "pwned"
    injection = f'"); import os; os.system("touch {marker}"); ("'
    new = {
        "i": 7, "f": 2, "b": True, "s": injection, "l": [1, "two", None], "d": {"k": [1.5]},
        "n": None, "marker": str(marker),
    }  # fmt: skip
    child = service().submit_rerun(parent, new)
    run = wait_final(store, child)
    assert run["status"] == "finished", run["error"]
    got = {k: output_value(run, k) for k in "ifbsldn"}
    assert got == {
        "i": ["int", 7], "f": ["float", 2.0], "b": ["bool", True], "s": ["str", injection],
        "l": ["list", [1, "two", None]], "d": ["dict", {"k": [1.5]}], "n": ["NoneType", None],
    }  # fmt: skip
    assert output_value(run, "marker_exists") is False and not marker.exists()
    # %mlp_track attached to the job's run: one run, not two, and every cell recorded once
    assert {r["id"] for r in run_store.list_runs(store.connect())} == {parent, child}
    ids = [c["cell_id"] for c in run["cells"]]
    # the run's name is the job's (its parent's), not the one `%mlp_track typed` gives inside
    assert run["name"] == "base" and len(ids) == 4
    assert [ids[i] for i in (0, 1, 3)] == ["load", "params", "check"]


def test_a_tracked_job_shows_each_cell_once_while_it_runs(store, service, tmp_path):
    """The engine (from outside) and %mlp_track (inside) both record cells: the live view of a
    running job lists every cell once, in order, not the engine's and the tracker's rows mixed."""
    gate = tmp_path / "gate"
    nb = write_notebook(tmp_path / "live.ipynb", [
        {"id": "params", "source": "gate = ''", "tags": ["parameters"]},
        {"id": "a", "source": "x = 1"},
        {"id": "load", "source": "%load_ext jupyter_mlp\n%mlp_track"},
        {"id": "b", "source": "y = 2"},
        {"id": "wait", "source": "import os, time\nimport jupyter_mlp as mlp\nmlp.output('ready', 1)\n"
                                 "while not os.path.exists(gate):\n    time.sleep(0.02)"},
    ])  # fmt: skip
    parent = tracked_run(store, nb, {"gate": ""})
    child = service().submit_rerun(parent, {"gate": str(gate)})
    # the tracker writes its queued cell rows no later than this output
    wait_for(
        lambda: run_store.get_run(store.connect(), child)["outputs"], timeout=JOB_TIMEOUT,
        what="the tracker's first output",
    )  # fmt: skip
    live = run_store.get_run(store.connect(), child)["cells"]
    ids = [c["cell_id"] for c in live if c["cell_id"] != live[1]["cell_id"]]  # less papermill's
    assert ids == ["params", "a", "load", "b", "wait"], [(c["seq"], c["cell_id"]) for c in live]
    gate.write_text("go")
    assert wait_final(store, child)["status"] == "finished"


def test_the_tracker_inside_a_job_writes_no_status_snapshot_or_cell(store, service, tmp_path):
    """One owner per run: a `%mlp_track NAME` ... `%mlp_track stop` inside a job's notebook adds
    its metric, but the run stays `running` (with the job's name and snapshot) until the job
    ends, and its cells are the engine's: one row per executed cell, in execution order."""
    gate = tmp_path / "gate"
    nb = write_notebook(tmp_path / "owned.ipynb", [
        {"id": "params", "source": "gate = ''", "tags": ["parameters"]},
        {"id": "load", "source": "%load_ext jupyter_mlp\n%mlp_track inner --tags t"},
        {"id": "log", "source": "import jupyter_mlp as mlp\nmlp.log_metric('acc', 0.9)"},
        {"id": "stop", "source": "%mlp_track stop"},
        {"id": "wait", "source": "import os, time\nwhile not os.path.exists(gate):\n"
                                 "    time.sleep(0.02)"},
    ])  # fmt: skip
    parent = tracked_run(store, nb, {"gate": ""})
    child = service().submit_rerun(parent, {"gate": str(gate)})
    snapshot = job_of(store, child).snapshot
    wait_for(
        lambda: cell_started(store, child, "os.path.exists(gate)"), timeout=JOB_TIMEOUT,
        what="the cell after %mlp_track stop",
    )  # fmt: skip
    live = run_store.get_run(store.connect(), child)
    assert live["status"] == "running" and live["ended_at"] is None
    assert live["name"] == "base" and live["snapshot"] == snapshot and not live["end_snapshot"]
    assert live["metrics"] == {"acc": 0.9}  # what the tracker may add, it did
    assert [c["seq"] for c in live["cells"]] == list(range(1, len(live["cells"]) + 1))
    ids = [c["cell_id"] for c in live["cells"] if c["cell_id"] != live["cells"][1]["cell_id"]]
    assert ids == ["params", "load", "log", "stop", "wait"]  # less papermill's injected cell
    gate.write_text("go")
    run = wait_final(store, child)
    assert run["status"] == "finished" and job_of(store, child).state == "finished"
    assert run["name"] == "base" and run["snapshot"] == snapshot and not run["end_snapshot"]
    assert [c["status"] for c in run["cells"]] == ["ok"] * 6 and run["metrics"] == {"acc": 0.9}


def test_what_the_last_cell_logged_is_stored_when_the_job_ends(store, service, tmp_path):
    """The kernel's tracker is told to finish (right behind papermill's last kernel_info) and
    the job ends only once it did: every point the last cell logged (more than one batch of the
    tracker's writer) is in the store the moment the job is final."""
    from jupyter_mlp.store.records import metric_count

    nb = write_notebook(tmp_path / "many.ipynb", [
        {"id": "p", "source": "n = 0", "tags": ["parameters"]},
        {"id": "log", "source": "import jupyter_mlp as mlp\nfor i in range(n):\n"
                                "    mlp.log_metric('m', i)"},
    ])  # fmt: skip
    parent = tracked_run(store, nb, {"n": 0})
    child = service().submit_rerun(parent, {"n": 300_000})
    wait_for(lambda: job_of(store, child).final, timeout=JOB_TIMEOUT, interval=0.01,
             what="the job to end")  # fmt: skip
    assert job_of(store, child).state == "finished"
    assert metric_count(store.connect(), child, "m") == 300_000


def test_a_job_keeps_the_gpu_figures_of_each_cell(store, service, tmp_path, monkeypatch):
    """The engine owns a job's cell rows; a tracker inside adds the GPU figures of each cell
    (NVML faked at the `pynvml` boundary), and the engine's final row for the cell keeps them."""
    from conftest import FAKE_NVML

    script = tmp_path / "nvml.json"
    script.write_text(json.dumps({
        "driver": "550.54.15", "cuda": 12040,
        "devices": [{"uuid": "GPU-aaaaaaaa-0000-0000-0000-000000000000", "name": "Fake H100",
                     "memory_total": 80e9, "energy_counter": True}],
        "readings": {"util": 80, "mem_used": 9e9, "power": 250.0, "temp": 40, "sm_clock": 1410},
        "processes": [],
    }))  # fmt: skip
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(FAKE_NVML), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("MLP_FAKE_NVML", str(script))
    monkeypatch.setenv("MLP_GPUS", "GPU-aaaaaaaa-0000-0000-0000-000000000000")
    nb = write_notebook(tmp_path / "gpu.ipynb", [
        {"id": "p", "source": "x = 1", "tags": ["parameters"]},
        {"id": "load", "source": "%load_ext jupyter_mlp\n%mlp_track --gpu-interval 0.1"},
        {"id": "busy", "source": "import time\ntime.sleep(0.6)"},
    ])  # fmt: skip
    run = wait_final(store, service().submit_notebook(nb, {"x": 2}, gpus=1))
    assert run["status"] == "finished", run["error"]
    busy = next(c for c in run["cells"] if c["cell_id"] == "busy")
    assert busy["status"] == "ok" and busy["duration"] >= 0.5  # the engine's row ...
    assert busy["gpu"] and busy["gpu"]["0"]["util_mean"] == pytest.approx(80, abs=1)  # + figures


def test_in_a_job_the_api_works_without_the_magic(store, service, tmp_path):
    nb = write_notebook(tmp_path / "plain.ipynb", [
        {"id": "p", "source": "x = 1", "tags": ["parameters"]},
        {"id": "o", "source": "import jupyter_mlp as mlp\nmlp.output('y', x + 1)\nmlp.log_metric('m', 0.5)"},
    ])  # fmt: skip
    run = wait_final(store, service().submit_notebook(nb, {"x": 41}))
    assert run["status"] == "finished", run["error"]
    assert output_value(run, "y") == 42 and run["metrics"] == {"m": 0.5}
    assert [r["id"] for r in run_store.list_runs(store.connect())] == [run["id"]]  # no other run


def test_a_failing_cell_fails_the_run_with_the_error(store, service, tmp_path):
    (tmp_path / "gone").mkdir()
    nb = write_notebook(tmp_path / "gone" / "fail.ipynb", [
        {"id": "p", "source": "divisor = 1", "tags": ["parameters"]},
        {"id": "boom", "source": "x = 1 / divisor"},
        {"id": "never", "source": "print('not reached')"},
    ])  # fmt: skip
    parent = tracked_run(store, nb, {"divisor": 1})
    nb.unlink()
    nb.parent.rmdir()  # the notebook's folder is gone: the job runs in a temporary one, with a note
    run = wait_final(store, service().submit_rerun(parent, {"divisor": 0}))
    assert "no longer exists" in job_of(store, run["id"]).note
    assert run["status"] == "failed"
    assert run["error"]["ename"] == "ZeroDivisionError"
    assert "division by zero" in run["error"]["evalue"]
    boom = [c for c in run["cells"] if c["cell_id"] == "boom"][0]
    assert boom["status"] == "error" and boom["error"]["ename"] == "ZeroDivisionError"
    assert "never" not in [c["cell_id"] for c in run["cells"]]
    assert executed(store, run)  # the executed notebook is kept for failed runs too


def test_a_failed_jobs_executed_notebook_shows_how_the_run_ended(store, service, tmp_path):
    """papermill stops at the failed cell and keeps the outputs as they are then: the status
    display in the executed notebook says the run failed, and at which count of cells, not
    "running · 0 cells" as it was painted when tracking started."""
    nb = write_notebook(tmp_path / "fail.ipynb", [
        {"id": "track", "source": "%load_ext jupyter_mlp\n%mlp_track failing --project exec"},
        {"id": "p", "source": "divisor = 1", "tags": ["parameters"]},
        {"id": "log", "source": "import jupyter_mlp as mlp\nmlp.log_metric('loss', 0.5)"},
        {"id": "boom", "source": "x = 1 / divisor"},
        {"id": "stop", "source": "%mlp_track stop"},
    ])  # fmt: skip
    parent = tracked_run(store, nb, {"divisor": 1})
    run = wait_final(store, service().submit_rerun(parent, {"divisor": 0}))
    assert run["status"] == "failed"
    (track,) = [c for c in executed(store, run)["cells"] if c.get("id") == "track"]
    (status,) = track["outputs"]
    text, html = ("".join(status["data"][m]) for m in ("text/plain", "text/html"))
    assert text.startswith(f"jupyter-mlp run {run['id']}"), text
    assert "[failed]" in text and "(1 failed)" in text and "loss=0.5" in text, text
    assert f"{len(run['cells'])} cells (1 failed)" in text, (text, len(run["cells"]))
    assert "failed" in html and "running" not in html


def test_cancel_stops_the_kernel_and_its_children(store, service, tmp_path):
    nb = write_notebook(tmp_path / "slow.ipynb", [
        {"id": "p", "source": "seconds = 1", "tags": ["parameters"]},
        {"id": "nap", "source": "import subprocess, time\nchild = subprocess.Popen(['sleep', '300'])\ntime.sleep(seconds)"},
    ])  # fmt: skip
    svc = service()
    run_id = svc.submit_rerun(tracked_run(store, nb, {"seconds": 1}), {"seconds": 300})
    wait_for(
        lambda: cell_started(store, run_id, "time.sleep(seconds)"),
        timeout=JOB_TIMEOUT,
        what="the long cell",
    )
    job = job_of(store, run_id)
    assert job.kernel_pgid and group_alive(job.kernel_pgid)

    svc.cancel(run_id)
    assert job_of(store, run_id).state == "cancelled"
    wait_for(
        lambda: not group_alive(job.kernel_pgid),
        timeout=15,
        what="the kernel's process group to go",
    )
    wait_for(lambda: not process_alive(job.pid), timeout=15, what="the job process to end")
    run = run_store.get_run(store.connect(), run_id)
    assert run["status"] == "cancelled"
    assert [c["status"] for c in run["cells"] if c["cell_id"] == "nap"] == ["interrupted"]


GPU_NB = [
    {"id": "load", "source": "%load_ext jupyter_mlp\n%mlp_track gpu"},
    {"id": "p", "source": "barrier = ''", "tags": ["parameters"]},
    {"id": "meet", "source": (
        "import os, time, pathlib\nimport jupyter_mlp as mlp\n"
        "d = pathlib.Path(barrier)\n(d / os.environ['MLP_RUN_ID']).touch()\n"
        "deadline = time.time() + 60\n"
        "while len(list(d.iterdir())) < 2 and time.time() < deadline:\n    time.sleep(0.05)\n"
        "mlp.output('cuda', os.environ.get('CUDA_VISIBLE_DEVICES'))\n"
        "mlp.output('together', len(list(d.iterdir())))"
    )},
]  # fmt: skip


def test_concurrent_jobs_get_different_gpus(store, service, tmp_path):
    nb = write_notebook(tmp_path / "gpu.ipynb", GPU_NB)
    parent = tracked_run(store, nb, {"barrier": ""})
    (tmp_path / "barrier").mkdir()
    svc = service(concurrency=2, executors={"local": {"gpus": "0,1"}})
    ids = [
        svc.submit_rerun(parent, {"barrier": str(tmp_path / "barrier")}, gpus=1) for _ in range(2)
    ]
    runs = [wait_final(store, i) for i in ids]
    assert [r["status"] for r in runs] == ["finished", "finished"], [r["error"] for r in runs]
    assert [output_value(r, "together") for r in runs] == [2, 2]  # they ran at the same time
    assert sorted(output_value(r, "cuda") for r in runs) == ["0", "1"]
    assert sorted(job_of(store, i).gpus[0] for i in ids) == ["0", "1"]


GATED = [
    {"id": "p", "source": "gate = ''", "tags": ["parameters"]},
    {"id": "wait", "source": (
        "import os, time\ndeadline = time.time() + 60\n"
        "while not os.path.exists(gate):\n"
        "    assert time.time() < deadline, 'gate never opened'\n    time.sleep(0.05)\nprint('through', gate)"
    )},
]  # fmt: skip


def test_jobs_survive_a_service_restart(store, service, tmp_path):
    nb = write_notebook(tmp_path / "gated.ipynb", GATED)
    parent = tracked_run(store, nb, {"gate": ""})
    first = service(concurrency=1)
    running = first.submit_rerun(parent, {"gate": str(tmp_path / "gate-a")})
    queued = first.submit_rerun(parent, {"gate": str(tmp_path / "gate-b")})
    wait_for(
        lambda: cell_started(store, running, "gate never opened"),
        timeout=JOB_TIMEOUT,
        what="job a's cell",
    )
    assert job_of(store, queued).state == "queued"
    first.stop()  # as a server restart: the job process is in its own session and goes on

    second = service(concurrency=1)
    assert job_of(store, running).state == "running" and process_alive(job_of(store, running).pid)
    (tmp_path / "gate-a").touch()
    (tmp_path / "gate-b").touch()
    for run_id in (running, queued):
        run = wait_final(store, run_id)
        assert run["status"] == "finished", run["error"]
        assert [c["status"] for c in run["cells"]] == ["ok", "ok", "ok"]
        assert executed(store, run)

    # a job whose process dies while no service watches becomes failed, with the reason
    doomed = second.submit_rerun(parent, {"gate": str(tmp_path / "gate-never")})
    wait_for(
        lambda: cell_started(store, doomed, "gate never opened"),
        timeout=JOB_TIMEOUT,
        what="job c's cell",
    )
    second.stop()
    job = job_of(store, doomed)
    os.killpg(job.pgid, signal.SIGKILL)
    wait_for(lambda: not process_alive(job.pid), timeout=10, what="the killed job process")
    service(concurrency=1)
    run = wait_final(store, doomed, timeout=10)
    assert run["status"] == "failed" and run["error"]["ename"] == "JobLost"
    assert f"pid {job.pid}" in run["error"]["evalue"]
    assert "killed or crashed" in run["error"]["evalue"]
    wait_for(lambda: not group_alive(job.kernel_pgid), timeout=10, what="the orphaned kernel to go")


def test_a_service_that_left_the_jobs_to_another_takes_over_when_that_one_stops(
    store, service, tmp_path
):
    """Two pipeline drivers on one store: the first one's service starts the jobs, the second's
    leaves that to it. When the first ends (its pipeline done), a stage the second queues next
    must still start; it stayed queued for ever (seen with a few `pipeline run --detach`)."""
    nb = write_notebook(
        tmp_path / "quick.ipynb", [{"id": "a", "source": "x = 1", "tags": ["parameters"]}]
    )
    first = service(concurrency=1)
    second = JobService(store, dispatch=None, poll_interval=0.05)
    try:
        assert first.dispatching and not second.dispatching
        first.stop()  # the first driver's pipeline is done: it leaves
        run_id = second.submit_notebook(nb, {"x": 2})  # the second queues its next stage
        run = wait_final(store, run_id, timeout=JOB_TIMEOUT)
        assert run["status"] == "finished", run["error"]
        assert second.dispatching
    finally:
        second.stop()


def test_bad_input_is_refused_before_anything_is_queued(store, tmp_path):
    nb = write_notebook(tmp_path / "plain.ipynb", PLAIN)
    good = tracked_run(store, nb, {"lr": 0.5, "epochs": 2, "name": "base"})
    no_snapshot = model.new_run_id()
    with store.write() as conn:
        apply_batch(conn, no_snapshot, {"run": {"status": "finished", "name": "console run"}})
    svc = JobService(store, warm=False)
    cases = [
        (dict(run_id=no_snapshot, params={}), "has no notebook snapshot"),
        (
            dict(run_id=good, params={}, kernel="no-such-kernel"),
            "kernel 'no-such-kernel' is not installed",
        ),
        (
            dict(run_id=good, params={"lrr": 0.1}),
            "unknown parameter 'lrr'; known: epochs, lr, name",
        ),
        (dict(run_id=good, params={"epochs": "many"}), "parameter 'epochs' expects an int"),
        (dict(run_id=good, params={"lr": [1]}), "parameter 'lr' expects a float"),
        (dict(run_id=good, params={}, gpus=3), "asks for 3 GPU(s)"),
    ]
    for kwargs, message in cases:
        with pytest.raises(JobError, match=message.replace("(", r"\(").replace(")", r"\)")):
            svc.submit_rerun(**kwargs)
    (tmp_path / "notes.ipynb").write_text("not JSON")
    with pytest.raises(JobError, match="not a notebook"):
        svc.submit_notebook(tmp_path / "notes.ipynb")
    assert jobs.list_jobs(store.connect()) == []
    assert {r["id"] for r in run_store.list_runs(store.connect())} == {good, no_snapshot}


def test_the_mlp_papermill_engine_tracks_any_notebook(store, tmp_path):
    import papermill

    nb = write_notebook(tmp_path / "plain.ipynb", PLAIN)
    papermill.execute_notebook(
        str(nb), str(tmp_path / "out.ipynb"), parameters={"lr": 1.0}, engine_name="mlp",
        kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
    )  # fmt: skip
    (run,) = run_store.list_runs(store.connect())
    run = run_store.get_run(store.connect(), run["id"])
    assert run["kind"] == "job" and run["status"] == "finished" and run["name"] == "plain"
    assert [c["status"] for c in run["cells"]] == ["ok"] * 5


def test_a_queued_job_can_be_cancelled_and_never_starts(store, tmp_path):
    from jupyter_mlp.execution.local import LocalExecutor

    nb = write_notebook(tmp_path / "plain.ipynb", PLAIN)
    svc = JobService(store, dispatch=False)  # another service would start jobs: none here
    run_id = svc.submit_rerun(tracked_run(store, nb, {"lr": 0.5}), {"lr": 0.2})
    assert svc.status(run_id)["state"] == "queued"
    assert svc.cancel(run_id)["state"] == "cancelled"
    assert LocalExecutor(store).dispatch() == []
    run = run_store.get_run(store.connect(), run_id)
    assert run["status"] == "cancelled" and run["started_at"] is None and run["cells"] == []


def test_run_and_job_statuses_move_only_as_their_tables_allow(store, tmp_path):
    """A final run is never reopened by a late batch (a tracker's stale `running`), and a job
    that finished is not cancelled after the fact: the move is refused, nothing is written."""
    with store.write() as conn:
        apply_batch(conn, "a1a1a1a1a1a1", {"run": {"name": "r", "status": "running"}})
        apply_batch(conn, "a1a1a1a1a1a1", {"run": {"status": "finished", "ended_at": 5.0}})
        apply_batch(conn, "a1a1a1a1a1a1", {"run": {"status": "running", "ended_at": None}})
    run = run_store.get_run(store.connect(), "a1a1a1a1a1a1")
    assert run["status"] == "finished" and run["ended_at"] == 5.0
    nb = write_notebook(tmp_path / "plain.ipynb", PLAIN)
    svc = JobService(store, dispatch=False)
    run_id = svc.submit_rerun(tracked_run(store, nb, {"lr": 0.5}), {})
    with store.write() as conn:
        assert jobs.transition(conn, run_id, "finished") is None  # queued -> finished: no
        assert jobs.transition(conn, run_id, "running") is not None
        assert jobs.transition(conn, run_id, "finished") is not None
        assert jobs.transition(conn, run_id, "cancelled") is None
    assert job_of(store, run_id).state == "finished"
    assert run_store.get_run(store.connect(), run_id)["status"] == "finished"


def test_a_job_takes_the_name_and_project_its_notebook_tracks_itself_under(store, tmp_path):
    """`%mlp_track digits-softmax --project digits` in the notebook: a job of it (run, pipeline
    stage) is that run, in that project, as when the notebook runs by hand; what the command
    says wins. A %mlp_track the magic would refuse, or none, leaves the defaults."""
    from jupyter_mlp.execution.submit import prepare_notebook

    def job(source: str, **given) -> tuple[str, str]:
        nb = write_notebook(tmp_path / "t.ipynb", [
            {"id": "t", "source": f"%load_ext jupyter_mlp\n{source}"},
            {"id": "p", "source": "x = 1", "tags": ["parameters"]},
        ])  # fmt: skip
        request = prepare_notebook(store.blobs, nb, {}, **given)
        return request.name, request.project

    assert job("%mlp_track digits-softmax --project digits") == ("digits-softmax", "digits")
    assert job("%mlp_track --project 'my digits'") == ("t", "my digits")
    assert job("%mlp_track a --project b", project="cli", name="mine") == ("mine", "cli")
    assert job("%mlp_track a --project b", project="cli") == ("a", "cli")
    for ignored in ("%mlp_track --gpu-interval -1 --project b", "%mlp_track stop", "x = 1",
                    "%mlp_tracker a --project b"):  # fmt: skip
        assert job(ignored) == ("t", model.DEFAULT_PROJECT), ignored
