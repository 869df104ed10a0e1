"""`jupyter mlp run | rerun | cancel` as a user types them: no server, real job processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import tracked_run, wait_for, write_notebook

from jupyter_mlp.execution.processes import group_alive
from jupyter_mlp.store import jobs
from jupyter_mlp.store import runs as run_store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
JUPYTER = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"


def mlp(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([JUPYTER, "mlp", *args], capture_output=True, text=True, timeout=timeout)


def test_run_a_notebook_file_waits_and_exits_0(store, tmp_path):
    notebook = tmp_path / "train_digits.ipynb"
    shutil.copy(EXAMPLES / "train_digits.ipynb", notebook)
    before = notebook.read_bytes()
    done = mlp("run", str(notebook), "-p", "epochs=3", "--project", "cli-jobs")
    assert done.returncode == 0, done.stderr
    assert "finished  7/7 cells" in done.stderr  # 6 code cells + the injected one
    (listed,) = run_store.list_runs(store.connect())  # %mlp_track inside attached to the job's run
    run = run_store.get_run(store.connect(), listed["id"])
    assert run["status"] == "finished" and run["kind"] == "job" and run["parent_id"] is None
    assert run["params"]["epochs"] == 3 and run["params"]["lr"] == 0.5
    kinds = {o["name"]: o["kind"] for o in run["outputs"]}
    assert kinds["val_acc"] == "value" and "artifact" in kinds.values()
    assert notebook.read_bytes() == before
    assert (tmp_path / "model.pkl").exists()  # it ran in the notebook's folder


def test_detached_jobs_queue_and_drain_without_a_server(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_LOCAL_CONCURRENCY", "1")
    # (long enough that the first still runs when the second is queued: a warm start is quick)
    nb = write_notebook(
        tmp_path / "quick.ipynb", [{"id": "a", "source": "import time\ntime.sleep(2)"}]
    )
    ids = []
    for _ in range(2):
        done = mlp("run", str(nb), "--detach")
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout.strip())
    first, second = (jobs.get_job(store.connect(), i) for i in ids)
    assert first.state in ("queued", "running")  # --detach did not wait
    assert second.state == "queued"  # one local job at a time

    # no server and no CLI process left: the first job starts the second when it ends
    def both_ended() -> bool:
        return all(jobs.get_job(store.connect(), i).final for i in ids)

    wait_for(both_ended, timeout=90, what="both jobs")
    first, second = (jobs.get_job(store.connect(), i) for i in ids)
    assert first.state == second.state == "finished"
    assert second.started_at >= first.ended_at


def test_rerun_of_a_failing_run_exits_nonzero_and_show_has_the_lineage(store, tmp_path):
    nb = write_notebook(tmp_path / "fail.ipynb", [
        {"id": "p", "source": "rate = 0.5\nsteps = 1", "tags": ["parameters"]},
        {"id": "boom", "source": "raise ValueError(f'diverged at {rate}\\nsee\\x1b[2J the log')"},
    ])  # fmt: skip
    parent = tracked_run(store, nb, {"rate": 0.5, "steps": 1}, status="failed")
    (tmp_path / "p.json").write_text(json.dumps({"rate": 0.25, "steps": 9}))
    done = mlp("rerun", parent[:6], "-P", str(tmp_path / "p.json"), "-p", "rate=2")
    assert done.returncode == 1
    assert "failed  3/3 cells" in done.stderr
    # a message of several lines keeps its lines (control characters in them still escaped)
    assert "ValueError: diverged at 2.0\n  see\\x1b[2J the log\n" in done.stderr
    (child,) = [r for r in run_store.list_runs(store.connect()) if r["id"] != parent]
    assert child["status"] == "failed" and child["params"] == {"rate": 2.0, "steps": 9}

    shown = mlp("runs", "show", child["id"])
    assert shown.returncode == 0, shown.stderr
    assert (
        "error     ValueError: diverged at 2.0\n            see\\x1b[2J the log\n" in shown.stdout
    )
    assert "  ValueError: diverged at 2.0 …\n" in shown.stdout  # the cell's row: its first line
    lineage = shown.stdout.split("lineage:\n", 1)[1]
    assert f"parent    {parent}  base  (failed)" in lineage
    assert "rate: 0.5 -> 2.0" in lineage and "steps: 1 -> 9" in lineage
    late = mlp("cancel", child["id"][:6])
    assert late.returncode == 0, late.stderr
    assert late.stdout.strip() == f"run {child['id']} already ended (failed); nothing to cancel"


def test_dask_without_a_scheduler_says_what_to_configure(store, tmp_path, monkeypatch):
    import pytest

    from jupyter_mlp.execution.errors import JobError
    from jupyter_mlp.execution.service import JobService

    monkeypatch.delenv("MLP_DASK_SCHEDULER", raising=False)
    nb = write_notebook(tmp_path / "one.ipynb", [{"id": "a", "source": "x = 1"}])
    service = JobService(store, dispatch=False,
                         executors={"dask": {"api_url": "http://127.0.0.1:9/mlp/api"}})  # fmt: skip
    with pytest.raises(JobError) as info:
        service.submit_notebook(nb, {}, executor="dask")
    said = str(info.value)
    for name in ("--MlpApp.dask_scheduler=tcp://HOST:PORT", "c.MlpApp.dask_scheduler",
                 "MLP_DASK_SCHEDULER", "jupyter mlp rerun"):  # fmt: skip
        assert name in said, said
    assert not said.startswith("no Dask scheduler: pass --scheduler")
    assert run_store.list_runs(store.connect()) == []  # nothing was queued


def test_bad_parameters_exit_2_before_anything_is_queued(store, tmp_path):
    nb = write_notebook(
        tmp_path / "p.ipynb", [{"id": "p", "source": "lr = 0.1", "tags": ["parameters"]}]
    )
    parent = tracked_run(store, nb, {"lr": 0.1})
    done = mlp("rerun", parent, "-p", "lr=fast")
    assert done.returncode == 2 and "parameter 'lr' expects a float" in done.stderr
    done = mlp("rerun", parent, "-p", "rl=0.2")
    assert done.returncode == 2 and "unknown parameter 'rl'; known: lr" in done.stderr
    done = mlp("run", str(tmp_path / "missing.ipynb"))
    assert done.returncode == 2 and "cannot read notebook" in done.stderr
    assert jobs.list_jobs(store.connect()) == []


def test_cancel_from_the_cli_stops_a_detached_job(store, tmp_path):
    nb = write_notebook(
        tmp_path / "slow.ipynb", [{"id": "nap", "source": "import time\ntime.sleep(300)"}]
    )
    run_id = mlp("run", str(nb), "--detach").stdout.strip()
    wait_for(
        lambda: any(
            c["status"] == "running" for c in run_store.get_run(store.connect(), run_id)["cells"]
        ),
        timeout=60,
        what="the sleeping cell",
    )
    kernel = jobs.get_job(store.connect(), run_id).kernel_pgid
    done = mlp("cancel", run_id[:8])
    assert done.returncode == 0 and f"run {run_id}: cancelled" in done.stdout, done.stderr
    assert not group_alive(kernel)  # `cancel` waits until the kernel is gone
    assert run_store.get_run(store.connect(), run_id)["status"] == "cancelled"
    again = mlp("cancel", run_id)
    assert again.returncode == 0 and f"run {run_id}: cancelled" in again.stdout  # idempotent
