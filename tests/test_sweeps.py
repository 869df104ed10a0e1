"""Sweeps through real Optuna, real kernels and the local executor: a grid sweep finds the known
best (a trial without the objective fails and the sweep goes on), bad input is refused before
anything is queued, pruning stops a worse curve, cancel stops every running trial, and a sweep
whose driver was killed resumes to its budget. Tiny notebooks, few trials, concurrency 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import interruptible, wait_for, write_notebook

pytest.importorskip("optuna")

from jupyter_mlp import cli, model  # noqa: E402
from jupyter_mlp.execution.processes import process_alive  # noqa: E402
from jupyter_mlp.execution.service import JobService  # noqa: E402
from jupyter_mlp.params import encode_value  # noqa: E402
from jupyter_mlp.store import jobs as jobs_store  # noqa: E402
from jupyter_mlp.store import runs as run_store  # noqa: E402
from jupyter_mlp.store import sweeps as S  # noqa: E402
from jupyter_mlp.store.records import apply_batch, params_of  # noqa: E402
from jupyter_mlp.sweeps.driver import driver_alive, spawn, submit  # noqa: E402
from jupyter_mlp.sweeps.space import SweepError  # noqa: E402

pytestmark = pytest.mark.timeout(120)

TRACK = {"id": "track", "source": "%load_ext jupyter_mlp\n%mlp_track"}


def template_job(store, path: Path) -> str:
    """Run the notebook once as a job: the template run (snapshot, typed parameters)."""
    svc = JobService(store, concurrency=1, warm=False, poll_interval=0.05)
    svc.start()
    try:
        rid = svc.submit_notebook(path)
        wait_for(lambda: svc.status(rid)["state"] in jobs_store.FINAL, 60, what="the template")
        assert svc.status(rid)["state"] == model.FINISHED, svc.status(rid)
    finally:
        svc.stop()
    return rid


def sweep(home: Path, *argv: str) -> int:
    return cli.main(["--home", str(home), "sweep", *argv])


def trial_runs(store, sweep_id: str) -> list[dict]:
    return run_store.list_runs(store.connect(), filter=f"sweep = '{sweep_id}'", limit=100)


# --- bad input: refused, named, nothing queued (no kernel needed) --------------------------------


@pytest.fixture
def recorded_template(store, tmp_path) -> str:
    """A run recorded straight into the store: a snapshot and typed parameters, no job."""
    nb = write_notebook(tmp_path / "t.ipynb", [
        {"id": "p", "source": "lr = 0.01\ndepth = 3\nopt = 'adam'\nuse_bn = True", "tags": ["parameters"]},
        {"id": "w", "source": "import jupyter_mlp as mlp\nmlp.log_metric('acc', lr)"},
    ])  # fmt: skip
    digest = store.blobs.put_bytes(nb.read_bytes())
    run_id = model.new_run_id()
    params = [(k, *encode_value(v, k), "parameters")
              for k, v in {"lr": 0.01, "depth": 3, "opt": "adam", "use_bn": True}.items()]  # fmt: skip
    with store.write() as conn:
        apply_batch(conn, run_id, {"run": {
            "status": "finished", "created_at": 1.0, "name": "t", "snapshot": digest,
            "notebook": str(nb), "kernel": "python3"}, "params": params})  # fmt: skip
    return run_id


BAD = [
    (["lr=0.1..0.1"], {}, "parameter 'lr': the range '0.1..0.1' is empty"),
    (["lr=0.5..0.1"], {}, "parameter 'lr': the range '0.5..0.1' is inverted"),
    (["lr=log:0..1"], {}, "parameter 'lr': a log range must lie above 0"),
    (["lr=log:-1..1"], {}, "parameter 'lr': a log range must lie above 0"),
    (["depth=3,five"], {}, "parameter 'depth' expects an int"),
    (["depth=1.5..4"], {}, "parameter 'depth' is an int in the template run"),
    (["opt=1..3"], {}, "parameter 'opt' is str in the template run: a range"),
    (["use_bn=True,maybe"], {}, "parameter 'use_bn' expects a bool"),
    (["width=1,2"], {}, "unknown parameter 'width'; the template run has: depth, lr, opt, use_bn"),
    (["depth=3,5", "depth=4,6"], {}, "parameter 'depth' is given twice"),
    (["depth=3"], {}, "nothing to search"),
    (["depth=3,5"], {"trials": 0}, "--trials must be a whole number of at least 1"),
    (["depth=3,5"], {"concurrency": 0}, "--concurrency must be a whole number of at least 1"),
    (
        ["lr=0.1..0.5"],
        {"sampler": "grid"},
        "parameter 'lr': the grid sampler needs choices or a step",
    ),
    (["lr=log:1e-4..1e-1"], {"sampler": "grid"}, "parameter 'lr': the grid sampler needs choices"),
    (["lr=0.1..0.5:0"], {}, "parameter 'lr': the step 0 of '0.1..0.5:0' must be above 0"),
    (
        ["depth=3,5"],
        {"objective": "best:acc"},
        "--objective 'best:acc': write max:NAME or min:NAME",
    ),
    (["depth=3,5"], {"objective": "max:acc:median"}, "'median' is not one of last, min, max"),
    (
        ["depth=3,5"],
        {"objective": "max:output.acc", "prune": True},
        "--prune needs a metric objective",
    ),
    (["depth=3,5"], {"kernel": "no-such-kernel"}, "kernel 'no-such-kernel' is not installed"),
]


@pytest.mark.parametrize("params, extra, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_is_refused_before_anything_is_queued(
    store, recorded_template, params, extra, message
):
    kw = {"trials": 3, "objective": "max:acc", **extra}
    objective = kw.pop("objective")
    with pytest.raises(SweepError) as info:
        submit(store, recorded_template, params, objective, **kw)
    assert message in str(info.value)
    conn = store.connect()
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM sweeps").fetchone()[0] == 0


def test_a_misspelt_objective_is_refused_before_any_trial_runs(store, recorded_template):
    """An objective the template run never logged but close to one it did is a typo: said now,
    not after the whole budget ran without it. Another name goes through (a notebook may log
    it only for some values)."""
    with store.write() as conn:
        apply_batch(conn, recorded_template, {"metrics": [("val_acc", 0, 0.9, 2.0),
                                                          ("loss", 0, 0.1, 2.0)]})  # fmt: skip
    with pytest.raises(SweepError) as info:
        submit(store, recorded_template, ["lr=0.01..0.1"], "max:val_accuracy", trials=2)
    assert str(info.value) == (
        f"--objective 'max:val_accuracy': the template run {recorded_template} never logged "
        "'val_accuracy' (it logged: loss, val_acc); did you mean 'val_acc'?"
    )
    assert info.value.field == "objective"
    assert store.connect().execute("SELECT COUNT(*) FROM sweeps").fetchone()[0] == 0
    assert submit(store, recorded_template, ["lr=0.01..0.1"], "max:f1", trials=2)


def test_the_cli_says_what_is_wrong_and_exits_2(store, recorded_template, capsys):
    code = sweep(store.home, recorded_template, "-p", "lr=log:0..1", "--objective", "max:acc",
                 "--trials", "3")  # fmt: skip
    assert code == 2
    assert "parameter 'lr': a log range must lie above 0" in capsys.readouterr().err
    code = sweep(store.home, recorded_template, "-p", "depth=3,5", "--objective", "max:acc",
                 "--trials", "0")  # fmt: skip
    assert code == 2 and "--trials must be" in capsys.readouterr().err


def test_choices_and_ranges_are_typed_like_the_parameter(store, recorded_template):
    from jupyter_mlp.sweeps.space import parse_space, template_parameters

    known = template_parameters(store.connect(), store.blobs, recorded_template)
    space = parse_space(["lr=log:1e-4..1e-1", "depth=3,5,8", "opt=adam,sgd", "use_bn=True"], known)
    assert space["lr"].kind == "range" and space["lr"].log and not space["lr"].is_int
    assert space["depth"].choices == [3, 5, 8] and space["opt"].choices == ["adam", "sgd"]
    assert space["use_bn"].kind == "fixed" and space["use_bn"].value is True
    lr = parse_space(["lr=1..2"], known)["lr"]  # a float parameter: int bounds become floats
    assert (lr.low, lr.high, lr.is_int) == (1.0, 2.0, False)
    grid = parse_space(["depth=2..10:4"], known)["depth"]
    assert grid.grid() == [2, 6, 10] and grid.is_int


# --- real kernels ---------------------------------------------------------------------------------


GRID_CODE = """\
import jupyter_mlp as mlp
if x != 5:  # x = 5 reports nothing: that trial fails, the sweep goes on
    mlp.log_metric("score", -(x - 3) ** 2 - (y - 0.5) ** 2)
"""


def test_grid_sweep_returns_the_known_best(store, tmp_path, capsys):
    nb = write_notebook(tmp_path / "f.ipynb", [
        TRACK, {"id": "p", "source": "x = 0\ny = 0.0", "tags": ["parameters"]},
        {"id": "w", "source": GRID_CODE},
    ])  # fmt: skip
    template = template_job(store, nb)
    code = sweep(store.home, template, "-p", "x=1,3,5", "-p", "y=0.0..1.0:0.5",
                 "--objective", "max:score", "--sampler", "grid", "--concurrency", "2")  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out
    (found,) = S.list_sweeps(store.connect())
    assert found["status"] == "finished" and found["budget"] == 9  # the grid's size
    assert found["best_value"] == 0.0
    values = params_of(store.connect(), [found["best_run_id"]])[found["best_run_id"]]
    assert (values["x"], values["y"]) == (3, 0.5)
    assert (
        f"best: max:score = 0  trial #{found['best_trial']}, run {found['best_run_id']}" in out.out
    )
    trials = S.trials(store.connect(), found["id"])
    assert sorted(t["number"] for t in trials) == list(range(9))
    failed = [t for t in trials if t["status"] == "failed"]
    assert len(failed) == 3 and all(t["params"]["x"] == 5 for t in failed)
    assert all(
        t["error"]["ename"] == "NoObjective" and "'score'" in t["error"]["evalue"] for t in failed
    )
    assert "3 trial(s) reported no objective 'score'" in found["note"]
    # Trials are ordinary job runs of the template, listed by the filter language.
    runs = trial_runs(store, found["id"])
    assert len(runs) == 9 and {r["parent_id"] for r in runs} == {template}
    assert {r["kind"] for r in runs} == {"job"} and {r["status"] for r in runs} == {"finished"}
    assert sweep(store.home, "status", found["id"][:6]) == 0
    status = capsys.readouterr().out
    assert (
        "[finished] 9 of 9 trials started: 9 done (0 pruned, 3 failed)" in status
        and "NoObjective" in status
    )
    assert sweep(store.home, "list") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "CREATED", "STATUS", "TRIALS", "RUN", "OBJECTIVE", "BEST"]
    assert row.split()[3:] == ["finished", "9/9", template, "max:score", "0"]
    assert sweep(store.home, "list", "extra") == 2  # said, not dropped
    assert sweep(store.home, "cancel") == 2
    assert "needs the sweep's id (jupyter mlp sweep list shows them)" in capsys.readouterr().err


def test_a_sweep_whose_objective_no_run_reports_stops_before_spending_its_budget(
    store, tmp_path, capsys
):
    """An objective the template run never logged, and not close to one it did, passes the
    check at the start (a notebook may log it for some values only); once the first trials all
    report none, the sweep asks no more and says why, naming what the trials did log."""
    nb = write_notebook(tmp_path / "f.ipynb", [
        TRACK, {"id": "p", "source": "x = 0.0", "tags": ["parameters"]},
        {"id": "w", "source": "import jupyter_mlp as mlp\nmlp.log_metric('score', x)"},
    ])  # fmt: skip
    template = template_job(store, nb)
    code = sweep(store.home, template, "-p", "x=0..1", "--objective", "max:accuracy",
                 "--trials", "12", "--concurrency", "2")  # fmt: skip
    out = capsys.readouterr()
    assert code == 1, out
    (found,) = S.list_sweeps(store.connect())
    assert found["status"] == "failed" and found["error"]["ename"] == "NoObjective"
    trials = S.trials(store.connect(), found["id"])
    assert 3 <= len(trials) <= 4  # the third told, and one still running then
    assert (
        f"the first {len(trials)} trials reported no objective max:accuracy"
        in (found["error"]["evalue"])
    )
    assert "(its metrics: score" in found["error"]["evalue"]
    assert "check --objective" in found["error"]["evalue"]


BOWL_CODE = """\
import jupyter_mlp as mlp
mlp.log_metric("score", -((x - 0.3) ** 2) - (y + 0.2) ** 2)
"""


@pytest.mark.timeout(300)
def test_tpe_finds_the_optimum_and_beats_random_on_the_same_budget(store, tmp_path, capsys):
    """A smooth bowl over [-1, 1]^2 (best 0 at x=0.3, y=-0.2; the worst is about -3.1): with
    the same seed and 24 trials one at a time (so the run is repeatable), Optuna's TPE ends
    within 5 % of the objective's range of the optimum, and no worse than random sampling."""
    nb = write_notebook(tmp_path / "bowl.ipynb", [
        TRACK, {"id": "p", "source": "x = 0.0\ny = 0.0", "tags": ["parameters"]},
        {"id": "w", "source": BOWL_CODE},
    ])  # fmt: skip
    template = template_job(store, nb)
    best = {}
    for sampler in ("random", "tpe"):
        code = sweep(store.home, template, "-p", "x=-1.0..1.0", "-p", "y=-1.0..1.0",
                     "--objective", "max:score", "--sampler", sampler, "--trials", "24",
                     "--concurrency", "1", "--seed", "3")  # fmt: skip
        assert code == 0, capsys.readouterr()
        found = S.list_sweeps(store.connect())[0]
        assert found["status"] == "finished" and found["sampler"] == sampler, found
        best[sampler] = found["best_value"]
    worst = -(1.3**2) - 1.2**2
    assert best["tpe"] >= 0.05 * worst, best  # within 5 % of the range below the optimum 0
    assert best["tpe"] >= best["random"], best


PRUNE_CODE = """\
import time
import jupyter_mlp as mlp
for step in range(10):
    mlp.log_metric("score", q * (step + 1), step=step)
    mlp.flush()
    time.sleep(0.3)
"""


def test_pruning_stops_a_trial_whose_curve_is_worse_than_the_median(store, tmp_path):
    nb = write_notebook(tmp_path / "p.ipynb", [
        TRACK, {"id": "p", "source": "q = 1", "tags": ["parameters"]},
        {"id": "w", "source": PRUNE_CODE},
    ])  # fmt: skip
    template = template_job(store, nb)
    # Seed 2 walks the grid as q = 4, 5, 2, 1, 3, 6 (Optuna 5's GridSampler): the two first
    # trials set the median, the three low curves after them fall below it.
    sweep_id = submit(store, template, ["q=6,5,1,2,4,3"], "max:score", sampler="grid",
                      concurrency=2, seed=2, prune=True, prune_startup=1, prune_warmup=1)  # fmt: skip
    from jupyter_mlp.sweeps.driver import Driver

    assert Driver(store, sweep_id).run() == "finished"
    conn = store.connect()
    row = S.get(conn, sweep_id)
    trials = S.trials(conn, sweep_id)
    pruned = [t for t in trials if t["status"] == "pruned"]
    finished = [t for t in trials if t["status"] == "finished"]
    assert pruned, [(t["params"], t["status"]) for t in trials]
    best_q = max(t["params"]["q"] for t in finished)
    assert best_q == 6 and row["best_value"] == 6 * 10
    for t in pruned:
        assert t["params"]["q"] < best_q
        assert t["job_state"] == "pruned" and t["run_status"] == "pruned"
        assert "pruned at step" in json.dumps(run_store.get_run(conn, t["run_id"])["error"])
        points = conn.execute(
            "SELECT COALESCE(SUM(count), 0) FROM metrics WHERE run_id = ? AND key = 'score'",
            (t["run_id"],),
        ).fetchone()[0]
        # The kernel stops at the step it was pruned at (a point or two may be in flight); a trial
        # that ran beside the first finished one can be pruned as late as its last step.
        seen = [(x["number"], x["params"], x["status"], x["step"]) for x in trials]
        assert points <= t["step"] + 3, seen
        if t["params"]["q"] < 4:  # started after a trial finished: cut at its first report
            assert points < 10, seen
        job = jobs_store.get_job(conn, t["run_id"])
        wait_for(
            lambda job=job: not process_alive(job.pid, job.proc_start),
            15,
            what="the pruned job to stop",
        )
    listed = {r["id"]: r["status"] for r in trial_runs(store, sweep_id)}
    assert {listed[t["run_id"]] for t in pruned} == {"pruned"}  # `runs list` shows it


SLEEP_CODE = """\
import time
import jupyter_mlp as mlp
time.sleep(s)
mlp.log_metric("score", x)
"""


@pytest.fixture
def sleepy(store, tmp_path) -> str:
    nb = write_notebook(tmp_path / "s.ipynb", [
        TRACK, {"id": "p", "source": "x = 0\ns = 0.0", "tags": ["parameters"]},
        {"id": "w", "source": SLEEP_CODE},
    ])  # fmt: skip
    return template_job(store, nb)


def _running_trials(store, sweep_id: str, n: int) -> list[dict]:
    return wait_for(
        lambda: [t for t in S.trials(store.connect(), sweep_id) if t["job_state"] == "running"
                 and jobs_store.get_job(store.connect(), t["run_id"]).pid][:n]
        if len([t for t in S.trials(store.connect(), sweep_id) if t["job_state"] == "running"]) >= n
        else None,
        60, 0.05, what=f"{n} running trials",
    )  # fmt: skip


def test_cancel_stops_every_running_trial(store, sleepy, capsys):
    sweep_id = submit(store, sleepy, ["x=0..10", "s=60.0"], "max:score", trials=4,
                      concurrency=2, sampler="random", seed=1)  # fmt: skip
    driver = spawn(store, sweep_id)
    running = _running_trials(store, sweep_id, 2)
    assert sweep(store.home, "cancel", sweep_id) == 0
    assert f"sweep {sweep_id}: cancelled" in capsys.readouterr().out
    conn = store.connect()
    trials = S.trials(conn, sweep_id)
    assert len(trials) == 2 and {t["status"] for t in trials} == {"cancelled"}
    assert {t["job_state"] for t in trials} == {"cancelled"}
    for t in running:
        job = jobs_store.get_job(conn, t["run_id"])
        wait_for(
            lambda job=job: not process_alive(job.pid, job.proc_start),
            15,
            what="a trial's job to stop",
        )
    wait_for(
        lambda: not process_alive(driver, None) or _reap(driver), 15, what="the driver to exit"
    )


def test_a_cancelled_sweep_resumes_to_its_budget(store, sleepy, capsys):
    """Optuna's habit: a study stopped is optimized again later. A cancelled sweep is resumed
    by `sweep resume`, its cancelled trials do not spend the budget, and a driver that merely
    starts on a cancelled sweep does not revive it."""
    sweep_id = submit(store, sleepy, ["x=0..10", "s=3.0"], "max:score", trials=3,
                      concurrency=2, sampler="random", seed=5)  # fmt: skip
    driver = spawn(store, sweep_id)
    _running_trials(store, sweep_id, 2)
    assert sweep(store.home, "cancel", sweep_id) == 0
    wait_for(lambda: _reap(driver), 30, what="the driver to exit")
    conn = store.connect()
    assert S.get(conn, sweep_id)["status"] == "cancelled"
    assert not S.set_status(conn, sweep_id, "running")  # what a driver's start() asks
    capsys.readouterr()
    assert sweep(store.home, "resume", sweep_id) == 0
    assert "was cancelled; it goes on to its budget" in capsys.readouterr().out
    row, trials = S.get(conn, sweep_id), S.trials(conn, sweep_id)
    assert row["status"] == "finished" and row["ended_at"] is not None
    assert [t["status"] for t in trials] == ["cancelled", "cancelled", "finished", "finished",
                                             "finished"]  # fmt: skip
    assert row["best_value"] == max(t["value"] for t in trials if t["status"] == "finished")
    assert sweep(store.home, "resume", sweep_id) == 1  # finished: nothing to resume


def test_ctrl_c_on_a_sweep_cancels_it_and_its_running_trials(store, sleepy):
    """Ctrl-C on `jupyter mlp sweep` stops its running trials, ends it `cancelled` and says so
    with 130 (the wait Ctrl-C broke could leave the sweep `cancelling`, as a pipeline's did)."""
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    proc = subprocess.Popen(
        [jupyter, "mlp", "sweep", sleepy, "-p", "x=0..10", "-p", "s=60.0", "--objective",
         "max:score", "--trials", "4", "--concurrency", "2", "--sampler", "random"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
    )  # fmt: skip
    (found,) = wait_for(lambda: S.list_sweeps(store.connect()), 60, what="the sweep")
    running = _running_trials(store, found["id"], 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    conn = store.connect()
    assert (proc.returncode, S.get(conn, found["id"])["status"]) == (130, "cancelled"), err
    assert (
        "[cancelled] 2 of 4 trials started: 0 done (0 pruned, 0 failed), 0 running, 2 cancelled"
        in err
    )
    assert {t["status"] for t in S.trials(conn, found["id"])} == {"cancelled"}
    for t in running:
        job = jobs_store.get_job(conn, t["run_id"])
        wait_for(lambda job=job: not process_alive(job.pid, job.proc_start), 15,
                 what="a trial's job to stop")  # fmt: skip


def _reap(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def test_resume_after_the_driver_is_killed_goes_on_to_the_budget(store, sleepy, capsys):
    sweep_id = submit(store, sleepy, ["x=0..10", "s=1.0"], "max:score", trials=5,
                      concurrency=2, sampler="random", seed=7)  # fmt: skip
    driver = spawn(store, sweep_id)
    adopted = {t["run_id"] for t in _running_trials(store, sweep_id, 2)}
    os.kill(driver, signal.SIGKILL)  # the driver we started, by its pid
    wait_for(lambda: _reap(driver), 15, what="the killed driver")
    row = S.get(store.connect(), sweep_id)
    assert row["status"] == "running" and not driver_alive(row)
    assert sweep(store.home, "resume", sweep_id) == 0
    out = capsys.readouterr().out
    conn = store.connect()
    row = S.get(conn, sweep_id)
    trials = S.trials(conn, sweep_id)
    assert row["status"] == "finished" and [t["number"] for t in trials] == list(range(5))
    assert {t["status"] for t in trials} == {"finished"}, [
        (t["status"], t["error"]) for t in trials
    ]
    assert adopted <= {t["run_id"] for t in trials}  # the trials that ran on were not redone
    assert len(trial_runs(store, sweep_id)) == 5
    best = max(trials, key=lambda t: t["value"])
    assert (row["best_value"], row["best_run_id"]) == (best["value"], best["run_id"])
    assert f"run {best['run_id']}" in out


def test_a_starting_server_drives_again_the_sweeps_whose_driver_is_gone(store, sleepy):
    """What the Jupyter server does as it starts (MlpApp runs services.resume_sweeps): a sweep
    whose driver was killed is driven on to its budget by a new driver process; a finished
    sweep and one whose driver lives are left alone."""
    from jupyter_mlp.server.services import resume_sweeps

    sweep_id = submit(store, sleepy, ["x=0..10", "s=0.5"], "max:score", trials=3,
                      concurrency=2, sampler="random", seed=3)  # fmt: skip
    driver = spawn(store, sweep_id)
    _running_trials(store, sweep_id, 1)
    os.kill(driver, signal.SIGKILL)
    wait_for(lambda: _reap(driver), 15, what="the killed driver")
    queued = submit(store, sleepy, ["x=0..10", "s=0.0"], "max:score", trials=1, sampler="random")
    S.set_status(store.connect(), queued, "running", pid=os.getpid(), host=socket.gethostname())
    assert resume_sweeps(store) == [sweep_id]  # the other one's "driver" (this process) lives
    wait_for(
        lambda: S.get(store.connect(), sweep_id)["status"] in S.FINAL_SWEEP, 90,
        what="the resumed sweep to end",
    )  # fmt: skip
    row = S.get(store.connect(), sweep_id)
    trials = S.trials(store.connect(), sweep_id)
    assert row["status"] == "finished" and [t["status"] for t in trials] == ["finished"] * 3
    assert row["pid"] != driver
    assert resume_sweeps(store) == []  # nothing left to drive
