"""Sweep figures: what driving trials through our job queue costs, against the floor and DIY.

    python bench/sweep.py [--trials 40] [--concurrency 4] [--sleep 2] [--quick]

trial_dispatch_ms          median time from a trial's slot freeing (its predecessor's job
                           `finished`) to the next trial's job `running`, minus the median time
                           from submit_rerun() to `running` for a bare job (same service, same
                           notebook): what the sweep loop adds to a job's start (goal <= 50)
bare_start_ms              that bare job's submit -> running (the floor the first figure is over)
sweep_wall_s               a sweep of --trials trials of a notebook sleeping --sleep seconds at
                           --concurrency, from the driver's start to the sweep `finished`
sweep_40x2s_c4_ratio       sweep_wall_s / (ceil(trials / concurrency) * sleep): 1.0 is perfect
                           packing (goal <= 1.3); the name keeps the 40x2s c4 shape it is meant
                           for, `shape` says what was measured
optuna_threads_wall_s      the same trials driven by Optuna alone: study.optimize(n_jobs=C) with
                           papermill.execute_notebook in each thread, the objective read back from
                           a file the notebook writes (the do-it-yourself way, no tracking)
vs_optuna_threads_ratio    optuna_threads_wall_s / sweep_wall_s (>= 1.0: we are not slower)

--quick: 8 trials at concurrency 4, sleep 1 s, 5 dispatch samples. Prints one figure per line
and, last, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def notebook(cells: list[str]) -> dict:
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "cells": [
            {"id": f"c{i}", "cell_type": "code", "execution_count": None, "outputs": [],
             "metadata": {"tags": ["parameters"] if i == 0 else []}, "source": src}
            for i, src in enumerate(cells)
        ],
    }  # fmt: skip


PARAMS = "x = 0\nsleep = 0.0\nout = ''"
TRACKED = """\
%load_ext jupyter_mlp
%mlp_track
import time
import jupyter_mlp as mlp
time.sleep(sleep)
mlp.log_metric("score", -(x - 3) ** 2)
"""
PLAIN = """\
import time
time.sleep(sleep)
open(out, "w").write(str(-(x - 3) ** 2))
"""


def template(store, path: Path) -> str:
    """The run a sweep starts from (bench/rerun.py's parent run, with this notebook's params)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from rerun import parent_run

    return parent_run(store, path, [
        ("x", "0", "int", "parameters"), ("sleep", "0.0", "float", "parameters"),
        ("out", '""', "str", "parameters"),
    ])  # fmt: skip


def job_times(conn, run_id: str) -> tuple[float | None, float | None]:
    row = conn.execute(
        "SELECT started_at, ended_at FROM jobs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def wait(predicate, timeout: float = 300.0, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("the bench waited too long")
        time.sleep(interval)
    return value


def dispatch(store, tmpl: str, samples: int) -> dict[str, float]:
    """Bare job submit -> running, then a concurrency-1 sweep's slot-free -> next running."""
    from jupyter_mlp.execution.service import JobService
    from jupyter_mlp.store import sweeps as S
    from jupyter_mlp.sweeps.driver import Driver, submit

    svc = JobService(store, concurrency=1, poll_interval=0.25)
    svc.start()
    conn = store.connect()
    try:
        bare = []
        for i in range(samples):
            t0 = time.time()
            rid = svc.submit_rerun(tmpl, {"x": i})
            started = wait(lambda rid=rid: job_times(conn, rid)[0])
            bare.append(started - t0)
            wait(lambda rid=rid: job_times(conn, rid)[1])
        sid = submit(store, tmpl, ["x=0..100"], "max:score", trials=samples + 1, concurrency=1,
                     sampler="random", seed=0)  # fmt: skip
        Driver(store, sid, service=svc).run()
        trials = S.trials(conn, sid)
        gaps = []
        for prev, nxt in zip(trials, trials[1:]):
            ended = job_times(conn, prev["run_id"])[1]
            started = job_times(conn, nxt["run_id"])[0]
            gaps.append(started - ended)
    finally:
        svc.stop()
    bare_ms = statistics.median(bare) * 1000
    return {
        "bare_start_ms": round(bare_ms, 1),
        "trial_start_after_slot_ms": round(statistics.median(gaps) * 1000, 1),
        "trial_dispatch_ms": round(statistics.median(gaps) * 1000 - bare_ms, 1),
    }


def ours(store, tmpl: str, trials: int, concurrency: int, sleep: float) -> float:
    from jupyter_mlp.execution.service import JobService
    from jupyter_mlp.store import sweeps as S
    from jupyter_mlp.sweeps.driver import Driver, submit

    sid = submit(store, tmpl, ["x=0..6", f"sleep={sleep}"], "max:score", trials=trials,
                 concurrency=concurrency, sampler="random", seed=1)  # fmt: skip
    # A started service (warm launcher, papermill imported), as the server has one; the DIY run
    # below also imports papermill before its clock starts.
    svc = JobService(store, concurrency=concurrency)
    svc.start()
    try:
        t0 = time.perf_counter()
        status = Driver(store, sid, service=svc).run()
        wall = time.perf_counter() - t0
    finally:
        svc.stop()
    counts = S.counts(store.connect(), sid)
    assert status == "finished" and counts.get("finished") == trials, (status, counts)
    return wall


def optuna_threads(path: Path, trials: int, concurrency: int, sleep: float, folder: Path) -> float:
    import optuna
    import papermill as pm

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        x = trial.suggest_int("x", 0, 6)
        out = folder / f"diy-{trial.number}.txt"
        pm.execute_notebook(str(path), str(folder / f"diy-{trial.number}.ipynb"),
                            parameters={"x": x, "sleep": sleep, "out": str(out)},
                            progress_bar=False, kernel_name="python3")  # fmt: skip
        return float(out.read_text())

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=concurrency)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--sleep", type=float, default=2.0)
    ap.add_argument("--samples", type=int, default=9, help="dispatch samples")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-diy", action="store_true", help="skip the Optuna + papermill threads run")
    args = ap.parse_args()
    if args.quick:
        args.trials, args.sleep, args.samples = 8, 1.0, 5
    from jupyter_mlp.store import Store

    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["MLP_HOME"] = str(folder / "home")
        store = Store(folder / "home")
        tracked = folder / "tracked.ipynb"
        tracked.write_text(json.dumps(notebook([PARAMS, TRACKED])))
        plain = folder / "plain.ipynb"
        plain.write_text(json.dumps(notebook([PARAMS, PLAIN])))
        tmpl = template(store, tracked)

        figures.update(dispatch(store, tmpl, args.samples))
        for k, v in figures.items():
            print(f"{k:<28} {v}", flush=True)
        wall = ours(store, tmpl, args.trials, args.concurrency, args.sleep)
        ideal = math.ceil(args.trials / args.concurrency) * args.sleep
        figures["sweep_wall_s"] = round(wall, 2)
        figures["sweep_40x2s_c4_ratio"] = round(wall / ideal, 2)
        figures["shape"] = (
            f"{args.trials}x{args.sleep:g}s c{args.concurrency} on {os.cpu_count()} cores"
        )
        for k in ("sweep_wall_s", "sweep_40x2s_c4_ratio", "shape"):
            print(f"{k:<28} {figures[k]}", flush=True)
        if not args.no_diy:
            diy = optuna_threads(plain, args.trials, args.concurrency, args.sleep, folder)
            figures["optuna_threads_wall_s"] = round(diy, 2)
            figures["vs_optuna_threads_ratio"] = round(diy / wall, 2)
            for k in ("optuna_threads_wall_s", "vs_optuna_threads_ratio"):
                print(f"{k:<28} {figures[k]}", flush=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
