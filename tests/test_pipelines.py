"""Pipelines through real papermill jobs on the local executor: DAGs, outputs by value and by
artifact, the cache, failure isolation, resume, cancel, retries, validation, a 50-stage DAG."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import interruptible, wait_for, write_notebook

from jupyter_mlp import cli, model
from jupyter_mlp.execution.processes import group_alive, process_alive
from jupyter_mlp.execution.service import JobService
from jupyter_mlp.params import encode_value
from jupyter_mlp.pipelines import spec as S
from jupyter_mlp.pipelines.dag import Driver, PipelineError, cancel, submit
from jupyter_mlp.pipelines.dag import run as drive
from jupyter_mlp.pipelines.validate import validate
from jupyter_mlp.store import jobs as jobs_store
from jupyter_mlp.store import pipelines as P
from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.records import apply_batch

STAGE_CODE = """\
import os, time
import jupyter_mlp as mlp
time.sleep(sleep)
if attempt_file:  # fails on the first attempt only
    n = int(open(attempt_file).read()) if os.path.exists(attempt_file) else 0
    open(attempt_file, "w").write(str(n + 1))
    if n == 0:
        raise RuntimeError("first attempt fails")
if fail:
    raise ValueError("this stage was told to fail")
upstream = open(data_path).read() if data_path else ""
mlp.output("y", x + 1)
name = f"out-{os.getpid()}.txt"
with open(name, "w") as f:
    f.write(f"{upstream}|{x}")
mlp.log_artifact(name, name="file")
"""


@pytest.fixture
def stage_nb(tmp_path) -> Path:
    return write_notebook(tmp_path / "stage.ipynb", [
        {"id": "track", "source": "%load_ext jupyter_mlp\n%mlp_track"},
        {"id": "params", "source": "x = 0\nfail = False\nsleep = 0.0\ndata_path = ''\nattempt_file = ''", "tags": ["parameters"]},
        {"id": "work", "source": STAGE_CODE},
    ])  # fmt: skip


@pytest.fixture
def jobs(store):
    svc = JobService(store, concurrency=4, poll_interval=0.05)
    svc.start()
    yield svc
    svc.stop()


def stage(**params) -> dict:
    extra = {k: params.pop(k) for k in ("after", "cache", "retries") if k in params}
    return {"template": {"notebook": "stage.ipynb"}, "parameters": params, **extra}


def pipeline(stages: dict, parameters: dict | None = None) -> dict:
    return {
        "format": S.FORMAT,
        "version": 1,
        "name": "t",
        "parameters": parameters or {},
        "stages": stages,
    }


def run_pipeline(store, jobs, spec, base, **kw) -> dict:
    pid = submit(store, spec, base=base, **kw)
    Driver(store, pid, service=jobs).run()
    return P.get(store.connect(), pid)


def statuses(run: dict) -> dict[str, str]:
    return {name: s["status"] for name, s in run["stages"].items()}


def outputs(store, run_id: str) -> dict:
    return {o["name"]: o for o in run_store.get_run(store.connect(), run_id)["outputs"]}


def test_linear_pipeline_passes_values_and_artifacts(store, jobs, stage_nb, tmp_path):
    spec = pipeline({
        "a": stage(x="${pipeline.start}"),
        "b": stage(x="${a.outputs.y}", data_path="${a.outputs.file}"),
        "c": stage(x="${b.outputs.y}", data_path="${b.outputs.file}"),
    }, {"start": 10})  # fmt: skip
    run = run_pipeline(store, jobs, spec, tmp_path)
    assert run["status"] == "succeeded" and statuses(run) == {
        "a": "succeeded",
        "b": "succeeded",
        "c": "succeeded",
    }
    c = run["stages"]["c"]
    assert outputs(store, c["run_id"])["y"]["value"] == 13
    assert store.blobs.read_bytes(outputs(store, c["run_id"])["file"]["blob"]) == b"|10|11|12"
    assert Path(c["params"]["data_path"]).read_text() == "|10|11"  # a local path to the artifact
    stage_run = run_store.get_run(store.connect(), c["run_id"])
    assert (stage_run["kind"], stage_run["pipeline_run_id"], stage_run["stage"]) == (
        "stage",
        run["id"],
        "c",
    )


def test_diamond_pipeline_joins_two_branches(store, jobs, stage_nb, tmp_path):
    spec = pipeline({
        "a": stage(x=1),
        "b": stage(x="${a.outputs.y}"),
        "c": stage(x=100, data_path="${a.outputs.file}"),
        "d": stage(x="${b.outputs.y}", data_path="${c.outputs.file}"),
    })  # fmt: skip
    run = run_pipeline(store, jobs, spec, tmp_path)
    assert set(statuses(run).values()) == {"succeeded"}
    d = outputs(store, run["stages"]["d"]["run_id"])
    assert d["y"]["value"] == 4  # a: 2, b: 3, d: 4
    assert store.blobs.read_bytes(d["file"]["blob"]) == b"|1|100|3"  # through c's file
    conn = store.connect()
    ended = {n: run_store.get_run(conn, s["run_id"])["ended_at"] for n, s in run["stages"].items()}
    d_started = run_store.get_run(conn, run["stages"]["d"]["run_id"])["started_at"]
    assert max(ended["b"], ended["c"]) <= d_started


def test_a_stage_is_done_when_its_job_is_not_when_its_tracker_stops(store, jobs, tmp_path):
    """`%mlp_track stop` writes `finished` into the run while the job goes on: the stage
    succeeds only once the job has, so the next stage (and a cached rerun) sees its real end."""
    write_notebook(tmp_path / "late.ipynb", [
        {"id": "p", "source": "x = 0", "tags": ["parameters"]},
        {"id": "t", "source": "%load_ext jupyter_mlp\n%mlp_track\nimport jupyter_mlp as mlp\nmlp.output('y', x + 1)"},
        {"id": "s", "source": "%mlp_track stop\nimport time\ntime.sleep(1.5)"},
    ])  # fmt: skip
    spec = pipeline({"a": {"template": {"notebook": "late.ipynb"}, "parameters": {"x": 1}}})
    run = run_pipeline(store, jobs, spec, tmp_path)
    assert statuses(run) == {"a": "succeeded"}
    job = jobs_store.get_job(store.connect(), run["stages"]["a"]["run_id"])
    assert job.state == "finished"  # not still sleeping in the last cell
    assert statuses(run_pipeline(store, jobs, spec, tmp_path)) == {"a": "cached"}


def test_cache_hits_and_misses(store, jobs, stage_nb, tmp_path, capsys):
    spec = pipeline({
        "a": stage(x="${pipeline.start}"),
        "b": stage(x="${a.outputs.y}", data_path="${a.outputs.file}"),
        "c": stage(x=100),
    }, {"start": 1})  # fmt: skip
    first = run_pipeline(store, jobs, spec, tmp_path)
    before = len(run_store.list_runs(store.connect(), limit=1000))
    again = run_pipeline(store, jobs, spec, tmp_path)
    assert statuses(again) == {"a": "cached", "b": "cached", "c": "cached"}
    assert again["stages"]["b"]["run_id"] == first["stages"]["b"]["run_id"]
    assert again["stages"]["b"]["cached_from"] == first["id"]
    assert len(run_store.list_runs(store.connect(), limit=1000)) == before  # no job ran
    # a pipeline parameter changes a's output, so b (its consumer) misses too; c does not
    changed = run_pipeline(store, jobs, spec, tmp_path, params={"start": 2})
    assert statuses(changed) == {"a": "succeeded", "b": "succeeded", "c": "cached"}
    # `pipeline diff` says which stages moved, and why: c is the same stage both times
    assert cli.main(["pipeline", "diff", again["id"], changed["id"]]) == 0
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "stages:",
        "  a  cached -> succeeded  (its code, parameters or inputs differ)",
        "  b  cached -> succeeded  (its code, parameters or inputs differ)",
    ]
    # --no-cache and a per-stage cache: false force recomputation
    spec["stages"]["c"]["cache"] = False
    forced = run_pipeline(store, jobs, spec, tmp_path, params={"start": 2})
    assert statuses(forced) == {"a": "cached", "b": "cached", "c": "succeeded"}
    assert set(statuses(run_pipeline(store, jobs, spec, tmp_path, no_cache=True)).values()) == {
        "succeeded"
    }


def test_a_failure_skips_what_depends_on_it_and_resume_redoes_only_that(
    store, jobs, stage_nb, tmp_path
):
    spec = pipeline({
        "a": stage(x=1),
        "b": stage(x="${a.outputs.y}", fail="${pipeline.break_b}"),
        "c": stage(x="${a.outputs.y}"),
        "d": stage(x="${b.outputs.y}", data_path="${c.outputs.file}"),
    }, {"break_b": True})  # fmt: skip
    broken = run_pipeline(store, jobs, spec, tmp_path)
    assert broken["status"] == "failed"
    assert statuses(broken) == {"a": "succeeded", "b": "failed", "c": "succeeded", "d": "skipped"}
    assert broken["stages"]["b"]["error"]["ename"] == "ValueError"
    assert "b" in broken["stages"]["d"]["error"]["evalue"]
    resumed = run_pipeline(
        store, jobs, spec, tmp_path, params={"break_b": False}, resume=broken["id"]
    )
    assert statuses(resumed) == {"a": "cached", "b": "succeeded", "c": "cached", "d": "succeeded"}
    assert resumed["stages"]["a"]["run_id"] == broken["stages"]["a"]["run_id"]


def test_retries(store, jobs, stage_nb, tmp_path):
    spec = pipeline({"flaky": stage(attempt_file=str(tmp_path / "attempts"), retries=1)})
    run = run_pipeline(store, jobs, spec, tmp_path)
    assert statuses(run) == {"flaky": "succeeded"} and run["stages"]["flaky"]["attempt"] == 1
    spec["stages"]["flaky"]["parameters"]["attempt_file"] = str(tmp_path / "other")
    spec["stages"]["flaky"]["retries"] = 0
    assert statuses(run_pipeline(store, jobs, spec, tmp_path)) == {"flaky": "failed"}


def driving_a_slow_stage(store, jobs, tmp_path) -> tuple[str, threading.Thread, dict]:
    """A pipeline whose first stage sleeps for two minutes, its driver in a thread (its outcome
    in the dict once it returns): returned once that stage runs."""
    spec = pipeline({"slow": stage(sleep=120.0), "after_slow": stage(x="${slow.outputs.y}")})
    pid = submit(store, spec, base=tmp_path)
    done: dict = {}
    thread = threading.Thread(
        target=lambda: done.setdefault("status", Driver(store, pid, service=jobs).run())
    )
    thread.start()
    wait_for(lambda: stage_job_runs(store, pid, "slow"), timeout=60, what="slow stage running")
    return pid, thread, done


def stage_job_runs(store, pid: str, name: str) -> bool:
    """Whether the stage's job process runs. (A stage reads `running` from its job's claim on, a
    moment before the process is started: a driver killed in between leaves a job that never
    starts, failed later as lost.)"""
    stage = P.get(store.connect(), pid)["stages"][name]
    if stage["status"] != "running":
        return False
    job = jobs_store.get_job(store.connect(), stage["run_id"])
    return bool(job.pid) and process_alive(job.pid, job.proc_start)


def test_cancel_stops_running_stages(store, jobs, stage_nb, tmp_path):
    pid, thread, done = driving_a_slow_stage(store, jobs, tmp_path)
    conn = store.connect()
    cancel(store, pid)
    thread.join(60)
    run = P.get(conn, pid)
    assert done["status"] == "cancelled" and run["status"] == "cancelled"
    assert statuses(run) == {"slow": "cancelled", "after_slow": "cancelled"}
    assert run_store.get_run(conn, run["stages"]["slow"]["run_id"])["status"] == model.CANCELLED


def cli_driving_a_slow_stage(
    store, stage_nb, tmp_path, sleep: float = 120.0
) -> tuple[subprocess.Popen, str]:
    """`jupyter mlp pipeline run` of a pipeline whose first stage sleeps (two minutes), in a
    process of its own (as from a terminal), and its pipeline run id, once that stage's job
    process runs (stage_job_runs)."""
    S.save(pipeline({"slow": stage(sleep=sleep), "after_slow": stage(x="${slow.outputs.y}")}),
           tmp_path / "slow.mlpipe")  # fmt: skip
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    proc = subprocess.Popen([jupyter, "mlp", "pipeline", "run", "slow.mlpipe"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=interruptible)  # fmt: skip

    def running() -> str | None:
        found = P.list_runs(store.connect())
        slow = found[0]["id"] if found else None
        return slow if slow and stage_job_runs(store, slow, "slow") else None

    return proc, wait_for(running, timeout=90, what="the slow stage running")


def test_ctrl_c_on_pipeline_run_cancels_the_pipeline_and_its_jobs(store, stage_nb, tmp_path):
    """Ctrl-C on `jupyter mlp pipeline run` cancels the run, its stages and their jobs, and the
    command says so with 130. It used to leave the run `cancelling` for good: the wait that
    Ctrl-C broke marked the driver's thread as ended (Python 3.11) and the command left."""
    proc, pid = cli_driving_a_slow_stage(store, stage_nb, tmp_path)
    job = jobs_store.get_job(
        store.connect(), P.get(store.connect(), pid)["stages"]["slow"]["run_id"]
    )
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    run = P.get(store.connect(), pid)
    assert (proc.returncode, run["status"]) == (130, "cancelled"), err
    assert statuses(run) == {"slow": "cancelled", "after_slow": "cancelled"}
    assert f"pipeline run {pid}" in out and "cancelled" in out.splitlines()[0]
    assert "[cancelled] slow(!) after_slow(!)" in err  # the progress ends where the run did
    wait_for(lambda: not any(g and group_alive(g) for g in (job.pgid, job.kernel_pgid)),
             timeout=15, what="the stage's job to stop")  # fmt: skip


def test_cancel_finishes_a_pipeline_whose_driver_is_gone(store, stage_nb, tmp_path):
    """The terminal that drove a pipeline was killed: `pipeline cancel` stops its stages' jobs
    and ends it itself, instead of asking a driver nobody runs (it stayed `cancelling`)."""
    proc, pid = cli_driving_a_slow_stage(store, stage_nb, tmp_path)
    job = jobs_store.get_job(
        store.connect(), P.get(store.connect(), pid)["stages"]["slow"]["run_id"]
    )
    proc.kill()
    proc.communicate(timeout=30)
    cancel(store, pid)
    run = P.get(store.connect(), pid)
    assert run["status"] == "cancelled"
    assert statuses(run) == {"slow": "cancelled", "after_slow": "cancelled"}
    assert (
        run_store.get_run(store.connect(), job.run_id, with_cells=False)["status"]
        == model.CANCELLED
    )
    wait_for(lambda: not any(g and group_alive(g) for g in (job.pgid, job.kernel_pgid)),
             timeout=15, what="the stage's job to stop")  # fmt: skip


def test_a_pipeline_whose_driver_was_killed_says_so_and_resume_keeps_what_finished_after(
    store, stage_nb, tmp_path
):
    """The terminal driving a pipeline is killed while a stage runs; the stage's job finishes
    on its own. `pipeline status` and `pipeline runs` say the run is orphaned (it read `running`
    for ever), `--resume` takes that stage's finished run instead of running it again (hours of
    training, for a real one), and a cancel marks it succeeded, not cancelled."""
    proc, pid = cli_driving_a_slow_stage(store, stage_nb, tmp_path, sleep=1.0)
    slow = P.get(store.connect(), pid)["stages"]["slow"]["run_id"]
    proc.kill()
    proc.communicate(timeout=30)

    def ended() -> tuple[str, str | None] | None:
        outcome = P.stage_run_outcomes(store.connect(), [slow])[slow]
        return outcome if outcome[0] not in ("running", "queued") else None

    outcome = wait_for(ended, timeout=60, what="the stage's job to end on its own")
    assert outcome[0] == "finished", outcome
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"

    def mlp(*args: str) -> str:
        done = subprocess.run([jupyter, "mlp", "pipeline", *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)  # fmt: skip
        return done.stdout + done.stderr

    assert f"its driver (pid {proc.pid}) is gone" in mlp("status", pid)
    assert f"{pid}" in (listed := mlp("runs", "slow.mlpipe")) and "orphaned" in listed, listed
    # the REST answers say it too (the pipeline editor's run banner and its list of runs)
    from jupyter_mlp.server import services

    assert services.pipeline_run_detail(store, pid)["orphaned"] is True
    (summary,) = [r for r in services.pipeline_runs(store, None)["runs"] if r["id"] == pid]
    assert summary["orphaned"] is True
    spec = S.load(tmp_path / "slow.mlpipe")
    again = submit(store, spec, path=S.identity(tmp_path / "slow.mlpipe"), resume=pid)
    assert drive(store, again) == "succeeded"
    resumed = P.get(store.connect(), again)["stages"]
    assert resumed["slow"]["status"] == "cached" and resumed["slow"]["run_id"] == slow
    assert resumed["after_slow"]["status"] == "succeeded"
    cancel(store, pid)
    assert statuses(P.get(store.connect(), pid)) == {"slow": "succeeded", "after_slow": "cancelled"}
    assert services.pipeline_run_detail(store, pid)["orphaned"] is False


def test_an_executor_that_does_not_exist_is_refused_before_anything_is_queued(
    store, stage_nb, tmp_path
):
    """A pipeline run on an executor that is not installed (or a stage naming one) is refused
    with the executors there are, as a rerun refuses it; it is not queued to fail later."""
    with pytest.raises(PipelineError, match=r"no executor 'nope' \(installed: .*local"):
        submit(store, pipeline({"a": stage(x=1)}), base=tmp_path, executor="nope")
    spec = pipeline({"a": {**stage(x=1), "executor": "nope"}})
    (issue,) = [i for i in validate(spec, store.connect(), store.blobs, tmp_path)
                if i.level == "error"]  # fmt: skip
    assert (
        issue.stage == "a" and issue.field == "executor" and "no executor 'nope'" in issue.message
    )
    assert P.list_runs(store.connect()) == []


def test_resume_takes_only_a_run_of_the_same_pipeline(store, stage_nb, tmp_path):
    """A run of another .mlpipe would feed its stages' outputs to this one's stages of the same
    name (a `prepare` of other data, silently): refused, naming both."""
    one = submit(store, pipeline({"a": stage(x=1)}), path=str(tmp_path / "one.mlpipe"),
                 base=tmp_path)  # fmt: skip
    with pytest.raises(PipelineError, match=r"is a run of .*one\.mlpipe, not of .*two\.mlpipe"):
        submit(store, pipeline({"a": stage(x=1)}), path=str(tmp_path / "two.mlpipe"),
               base=tmp_path, resume=one)  # fmt: skip


def test_a_driver_whose_store_was_removed_leaves(store, jobs, stage_nb, tmp_path):
    """A detached driver outlives its terminal; when its store is deleted under it (a test's
    temporary folder, a user's cleanup) it has nothing left to drive and must not wait for ever
    (one such driver read the deleted file every 2 ms for an hour)."""
    from jupyter_mlp.execution.processes import kill_group

    pid, thread, done = driving_a_slow_stage(store, jobs, tmp_path)
    slow = jobs_store.get_job(
        store.connect(), P.get(store.connect(), pid)["stages"]["slow"]["run_id"]
    )
    jobs.stop()
    for group in (slow.pgid, slow.kernel_pgid):  # nothing of ours writes to the store any more
        kill_group(group, 9)
    wait_for(lambda: not any(g and group_alive(g) for g in (slow.pgid, slow.kernel_pgid)),
             timeout=15, what="the stage's job to stop")  # fmt: skip
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    thread.join(30)
    assert not thread.is_alive() and done["status"] == "failed"


def test_fifty_stage_dag_runs_in_dependency_order(store, jobs, tmp_path):
    write_notebook(
        tmp_path / "tiny.ipynb",
        [{"id": "p", "source": "i = 0", "tags": ["parameters"]}, {"id": "w", "source": "j = i"}],
    )
    stages = {}
    for i in range(50):
        after = [f"s{(i - 1) // 2}"] if i else []  # a binary tree: s0 -> s1, s2 -> s3..s6 -> ...
        stages[f"s{i}"] = {
            "template": {"notebook": "tiny.ipynb"},
            "parameters": {"i": i},
            "after": after,
        }
    run = run_pipeline(store, jobs, pipeline(stages), tmp_path)
    failed = {n: s.get("error") for n, s in run["stages"].items() if s["status"] != "succeeded"}
    assert not failed, failed  # (once in CI one stage failed here: its error says why)
    conn = store.connect()
    times = {}
    for name, s in run["stages"].items():
        r = run_store.get_run(conn, s["run_id"])
        times[name] = (r["started_at"], r["ended_at"])
    for name, s in stages.items():
        for up in s["after"]:
            assert times[up][1] <= times[name][0], f"{name} started before {up} ended"


def test_one_service_runs_pipeline_after_pipeline(store, jobs, tmp_path):
    """A service lives on (the Jupyter server's, a command's lingering launcher) and runs
    pipelines side by side and one after another: each finishes. The fourth 4-stage chain in
    one service once hung for good (the driver's kernel reservation read the reply the
    dispatcher's look at the launcher waited for; test_keep_warm.py pins that race down)."""
    write_notebook(
        tmp_path / "tiny.ipynb",
        [{"id": "p", "source": "i = 0", "tags": ["parameters"]}, {"id": "w", "source": "j = i"}],
    )
    for n in range(4):
        drivers = []
        for k in range(3):  # three 4-stage chains at once, each driven in its own thread
            chain = {
                f"s{i}": {"template": {"notebook": "tiny.ipynb"},
                          "parameters": {"i": 1000 * n + 100 * k + i},
                          "after": [f"s{i - 1}"] if i else []}
                for i in range(4)
            }  # fmt: skip
            pid = submit(store, pipeline(chain), base=tmp_path)
            thread = threading.Thread(target=drive, args=(store, pid, jobs), daemon=True)
            thread.start()
            drivers.append((pid, thread))
        for pid, thread in drivers:
            thread.join(90)
            found = P.get(store.connect(), pid)
            assert not thread.is_alive(), f"round {n}: still running after 90 s: {statuses(found)}"
            assert found["status"] == "succeeded", (n, statuses(found))


def test_a_driver_made_in_one_thread_runs_on_the_connection_of_the_thread_running_it(
    store, jobs, stage_nb, tmp_path
):
    """The store gives each thread a connection; a driver made in one thread and run in another
    (while the first goes on writing) must not share the first one's: their transactions
    interleaved ("cannot start a transaction within a transaction")."""
    pid = submit(store, pipeline({"a": stage(x=1)}), base=tmp_path)
    driver = Driver(store, pid, service=jobs)
    seen: dict = {}

    def drive_here() -> None:
        seen["status"] = driver.run()
        seen["own"] = driver.conn is store.connect()

    thread = threading.Thread(target=drive_here)
    thread.start()
    thread.join(60)
    assert seen == {"status": "succeeded", "own": True}
    assert driver.conn is not store.connect()


def template_run(
    store, notebook: Path, params: dict, outputs: dict | None = None, snapshot: bool = True
) -> str:
    run_id = model.new_run_id()
    fields = {"status": "finished", "name": notebook.stem, "project": "p", "kernel": "python3",
              "notebook": str(notebook), "pinned": True,
              "snapshot": store.blobs.put_bytes(notebook.read_bytes()) if snapshot else None}  # fmt: skip
    batch = {
        "run": fields,
        "params": [(k, *encode_value(v, k), "parameters") for k, v in params.items()],
        "outputs": [
            (k, "value", json.dumps(v), None, None, None, time.time())
            for k, v in (outputs or {}).items()
        ],
    }
    with store.write() as conn:
        apply_batch(conn, run_id, batch)
    return run_id


def test_pinned_runs_as_templates(store, jobs, stage_nb, tmp_path):
    a = template_run(
        store,
        stage_nb,
        {"x": 0, "fail": False, "sleep": 0.0, "data_path": "", "attempt_file": ""},
        {"y": 1},
    )
    spec = pipeline({
        "first": {"template": {"run": a}, "parameters": {"x": 5}},
        "second": {"template": {"run": a}, "parameters": {"x": "${first.outputs.y}"}},
    })  # fmt: skip
    run = run_pipeline(store, jobs, spec, tmp_path)
    assert statuses(run) == {"first": "succeeded", "second": "succeeded"}
    second = run_store.get_run(store.connect(), run["stages"]["second"]["run_id"])
    assert second["parent_id"] == a and second["params"]["x"] == 6


def messages(spec, store, base) -> list[str]:
    return [f"{i.level}: {i.message}" for i in validate(spec, store.connect(), store.blobs, base)]


def test_validation_names_the_stage_and_field(store, stage_nb, tmp_path):
    good = template_run(
        store,
        stage_nb,
        {"x": 0, "fail": False, "sleep": 0.0, "data_path": "", "attempt_file": ""},
        {"y": 1},
    )
    bare = template_run(store, stage_nb, {"x": 0}, snapshot=False)

    def check(stages, expected, parameters=None):
        found = messages(pipeline(stages, parameters), store, tmp_path)
        assert any(expected in m for m in found), (expected, found)
        return found

    t = {"run": good}
    check(
        {"a": {"template": t, "parameters": {"x": "${nope.outputs.y}"}}},
        "error: stage 'a': parameter 'x' uses stage 'nope', which does not exist",
    )
    check(
        {"prepare": {"template": t}, "b": {"template": t, "after": ["prepare"],
                                          "parameters": {"x": "${prepar.outputs.y}"}}},
        "uses stage 'prepar', which does not exist; did you mean 'prepare'?",
    )  # fmt: skip
    check(
        {"middle": {"template": t}, "b": {"template": t, "after": ["midle"]}},
        "error: stage 'b' runs after 'midle', which is not a stage; did you mean 'middle'?",
    )
    check(
        {"a": {"template": t, "parameters": {"lr": 1}}},
        "error: stage 'a': the template has no parameter 'lr'",
    )
    check(
        {"a": {"template": t, "parameters": {"x": "ten"}}},
        "error: stage 'a': parameter 'x' expects an int",
    )
    check(  # a pipeline parameter's value: said where it came from
        {"a": {"template": t, "parameters": {"x": "${pipeline.n}"}}},
        "error: stage 'a': parameter 'x' expects an int, got a string: 'ten' (from ${pipeline.n})",
        {"n": "ten"},
    )
    check(
        {"a": {"template": t}, "b": {"template": t, "parameters": {"x": "${a.outputs.z}"}}},
        "warning: stage 'b': ${a.outputs.z} — the template run of 'a' never produced output 'z'",
    )
    check(
        {
            "a": {"template": t, "parameters": {"x": "${b.outputs.y}"}},
            "b": {"template": t, "parameters": {"x": "${a.outputs.y}"}},
        },
        "error: the stages form a cycle: ",
    )
    check(
        {"a": {"template": {"run": "0123456789ab"}}},
        "error: stage 'a': template run 0123456789ab does not exist",
    )
    check({"a": {"template": {"run": bare}}}, "has no notebook snapshot")
    check(
        {"a": {"template": t, "parameters": {"x": "${pipeline.missing}"}}},
        "uses pipeline parameter 'missing', which the pipeline does not define",
    )
    check({"a": {"template": t, "parameters": {"x": "${a.outputs}"}}}, "is not a reference")
    cycle = check(
        {
            "a": {"template": t, "after": ["c"]},
            "b": {"template": t, "after": ["a"]},
            "c": {"template": t, "after": ["b"]},
        },
        "cycle",
    )
    assert any(
        "a -> b -> c -> a" in m or "b -> c -> a -> b" in m or "c -> a -> b -> c" in m for m in cycle
    ), cycle
    with pytest.raises(S.SpecError, match="'a' appears twice"):
        S.loads('{"format": "jupyter-mlp.pipeline", "version": 1, "stages": {"a": {}, "a": {}}}')
    with pytest.raises(PipelineError, match="cannot run"):
        submit(store, pipeline({"a": {"template": t, "parameters": {"x": "ten"}}}), base=tmp_path)
    with pytest.raises(PipelineError, match="unknown pipeline parameter"):
        submit(store, pipeline({"a": {"template": t}}), base=tmp_path, params={"epochs": 3})


def test_unknown_fields_are_kept_on_save(tmp_path):
    text = json.dumps(
        {
            "format": S.FORMAT,
            "version": 1,
            "x-editor": {"zoom": 2},
            "stages": {"a": {"template": {"run": "0123456789ab"}, "x-note": "keep me"}},
        }
    )
    spec = S.loads(text)
    spec["stages"]["a"]["parameters"] = {"x": 1}
    S.save(spec, tmp_path / "p.mlpipe")
    again = S.load(tmp_path / "p.mlpipe")
    assert again["x-editor"] == {"zoom": 2} and again["stages"]["a"]["x-note"] == "keep me"


def test_stage_and_pipeline_statuses_move_only_as_their_tables_allow(store):
    """A stage that succeeded is not made running again by a late watcher; a pipeline cancelled
    before its driver started stays cancelling (the driver then cancels) instead of running."""
    conn = store.connect()
    spec = {"name": "t", "stages": {"a": {}, "b": {}}}
    pid = P.create(conn, spec, "v", None, {}, "local", {})
    assert P.set_stage(conn, pid, "a", "queued", run_id="aaaaaaaaaaaa")
    assert P.set_stage(conn, pid, "a", "succeeded")
    assert not P.set_stage(conn, pid, "a", "running")  # refused: nothing written
    assert not P.set_stage(conn, pid, "b", "succeeded")  # pending -> succeeded skips the run
    run = P.get(conn, pid)
    assert run["stages"]["a"]["status"] == "succeeded" and run["stages"]["b"]["status"] == "pending"
    assert P.set_status(conn, pid, "cancelling")
    assert not P.set_status(conn, pid, "running")
    assert P.set_status(conn, pid, "cancelled") and not P.set_status(conn, pid, "failed")
    assert P.get(conn, pid)["status"] == "cancelled"


def test_a_terminal_run_is_in_the_history_the_editor_asks_for(store, tmp_path):
    """The CLI names the file as typed from anywhere (sub/p.mlpipe), the editor relative to the
    server's root (p.mlpipe with the root in sub/): one pipeline, one history. The stage's
    notebook is named relative to the .mlpipe, not to the terminal's working directory."""
    import shutil
    import subprocess
    import sys

    from jupyter_mlp.server import services

    sub = tmp_path / "sub"
    sub.mkdir()
    write_notebook(sub / "one.ipynb", [
        {"id": "params", "source": "x = 0", "tags": ["parameters"]},
        {"id": "work", "source": "y = x + 1"},
    ])  # fmt: skip
    spec = pipeline({"a": {"template": {"notebook": "one.ipynb"}, "parameters": {"x": 2}}})
    S.save(spec, sub / "p.mlpipe")
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"

    def mlp(*args, cwd):
        return subprocess.run([jupyter, "mlp", "pipeline", *args], capture_output=True,
                              text=True, cwd=cwd, timeout=180)  # fmt: skip

    done = mlp("run", "sub/p.mlpipe", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # the progress marks are explained once, before the first progress line, and in --help
    lines = done.stderr.splitlines()
    assert lines[1] == "progress: [pipeline status] stage(mark) ..., marks:", done.stderr
    assert lines[2].startswith(". pending q queued > running") and len(lines[2]) <= 80
    assert re.fullmatch(r"\[\w+\] a\(.\)", lines[3]), lines  # the mark apart from the name
    assert "+ succeeded" in " ".join(mlp("run", "--help", cwd=tmp_path).stdout.split())
    (ran,) = P.list_runs(store.connect())
    assert ran["path"] == str((sub / "p.mlpipe").resolve()) and ran["status"] == "succeeded"
    listed = mlp("runs", "p.mlpipe", cwd=sub)
    assert ran["id"] in listed.stdout, listed.stdout
    for path, root in (("p.mlpipe", sub), ("/sub/p.mlpipe", tmp_path)):
        found = services.pipeline_runs(store, path, str(root))["runs"]
        assert [r["id"] for r in found] == [ran["id"]], (path, root)
    assert services.pipeline_runs(store, "other.mlpipe", str(sub))["runs"] == []


def test_validate_catches_a_misspelt_output_before_anything_runs(store, stage_nb, tmp_path):
    """`${train.outputs.modle}` is refused by validate with a suggestion, whether the template is
    a run or a notebook file with an earlier finished run (not after training ran)."""
    import shutil
    import subprocess
    import sys

    params = {"x": 0, "fail": False, "sleep": 0.0, "data_path": "", "attempt_file": ""}
    train = template_run(store, stage_nb, params, {"model": "m.pkl", "y": 1})
    for tmpl in ({"run": train}, {"notebook": "stage.ipynb"}):
        spec = pipeline({
            "train": {"template": tmpl},
            "evaluate": {"template": tmpl, "parameters": {"data_path": "${train.outputs.modle}"}},
        })  # fmt: skip
        found = messages(spec, store, tmp_path)
        assert any(
            m.startswith("error: stage 'evaluate': ${train.outputs.modle} — ")
            and m.endswith("never produced output 'modle'; did you mean 'model'?")
            for m in found
        ), found
    other = pipeline({
        "train": {"template": {"notebook": "stage.ipynb"}},
        "evaluate": {"template": {"notebook": "stage.ipynb"},
                     "parameters": {"data_path": "${train.outputs.zzz}"}},
    })  # fmt: skip
    (warning,) = messages(other, store, tmp_path)
    assert warning == (
        f"warning: stage 'evaluate': ${{train.outputs.zzz}} — the last run of stage.ipynb ({train})"
        " never produced output 'zzz' (it produced: model, y; it may this time)"
    )
    S.save(spec, tmp_path / "p.mlpipe")
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    done = subprocess.run([jupyter, "mlp", "pipeline", "validate", str(tmp_path / "p.mlpipe")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "did you mean 'model'?" in done.stdout
    assert "ok" not in done.stdout.splitlines()[-1]


def test_pipeline_run_ids_take_a_unique_prefix_like_run_ids(store):
    import shutil
    import subprocess
    import sys

    from jupyter_mlp.server import services

    conn = store.connect()
    spec = pipeline({"a": {"template": {"run": "0123456789ab"}}})
    pid = P.create(conn, spec, S.version_hash(spec), None, {}, "local", {})
    done = P.create(conn, spec, S.version_hash(spec), None, {}, "local", {})
    P.set_status(conn, done, "running")
    P.set_status(conn, done, "succeeded")
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"

    def mlp(*args):
        return subprocess.run([jupyter, "mlp", "pipeline", *args], capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    shown = mlp("status", pid[:5])
    assert shown.returncode == 0 and f"pipeline run {pid}" in shown.stdout, shown.stderr
    assert services.pipeline_run_detail(store, pid[:4].upper())["id"] == pid
    short = mlp("status", pid[:3])
    assert short.returncode == 1 and "give at least 4" in short.stderr
    ended = mlp("cancel", done[:6])
    assert ended.returncode == 0
    assert (
        ended.stdout.strip() == f"pipeline run {done} already ended (succeeded); nothing to cancel"
    )
    cancelling = mlp("cancel", pid[:6])
    assert cancelling.returncode == 0 and f"pipeline run {pid}: cancelling" in cancelling.stdout
    assert P.get(conn, pid)["status"] == "cancelling"
    assert mlp("diff", pid[:6], done[:6]).stdout.strip() == "same spec and parameters"
