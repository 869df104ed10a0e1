"""Seed or clear the store the Galata test server uses (ui-tests/.mlp-home), with the store's own
functions, so that UI tests start from known runs. Called by the specs through `python`:

    python mlp_store.py clear                  # every run, its records, every sweep (events stay: ids go on)
    python mlp_store.py runs                   # a few finished runs of project "ui" -> JSON {name: id}
    python mlp_store.py bulk 10000 --project bench   # many small runs at once (the 10k figure)
    python mlp_store.py mixed                  # project "mix": kinds, a stage, a rerun, an idle kernel
    python mlp_store.py sweep [--trials N]     # a finished sweep of 8 (or N) trials -> JSON {sweep, template, best}
    python mlp_store.py grid [--n 40]          # project "cmp": n runs, lr (3 values) x seed, a loss curve each
    python mlp_store.py team --me NAME [--other alice]  # project "team": runs of two owners, a sweep of the other's

The runs arrive as tracker batches (`records.apply_batch`), so the server's event feed sees them
like runs written by a kernel.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

from jupyter_mlp.model import new_run_id
from jupyter_mlp.params import python_type
from jupyter_mlp.store import Store
from jupyter_mlp.store.records import apply_batch

HOME = Path(os.environ.get("MLP_HOME") or Path(__file__).parent / ".mlp-home")

# name, params, final accuracy
RUNS = [
    ("alpha", {"lr": 0.1, "depth": 3, "optimizer": "sgd"}, 0.42),
    ("beta", {"lr": 0.01, "depth": 3, "optimizer": "sgd"}, 0.91),
    ("gamma", {"lr": 0.001, "depth": 5, "optimizer": "sgd"}, 0.77),
    ("<img src=x onerror=alert(1)>", {"lr": 0.05, "depth": 3, "optimizer": "sgd"}, 0.63),
]
LOSS_STEPS = 5000  # more than a chart asks for: the server downsamples


def clear(store: Store) -> None:
    conn = store.connect()
    tables = [
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if name != "events"
        and any(col[1] == "run_id" for col in conn.execute(f"PRAGMA table_info({name})"))
    ]
    with store.write():
        for table in tables:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM runs")
        # sweeps name runs only as template / best (no run_id column): gone with their trials
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sweeps'").fetchone():
            conn.execute("DELETE FROM sweeps")


def seed_runs(store: Store) -> dict[str, str]:
    now = time.time()
    ids: dict[str, str] = {}
    for i, (name, params, acc) in enumerate(RUNS):
        run_id = new_run_id()
        started = now - 600 + i * 10
        loss = [
            [
                "loss",
                s,
                (1.0 - acc) + math.exp(-s / 800) + 0.02 * math.sin(s / 7),
                started + s * 0.01,
            ]
            for s in range(LOSS_STEPS)
        ]
        accs = [["acc", s, acc * min(1.0, (s + 1) / 40), started + s] for s in range(50)]
        batch = {
            "run": {
                "name": name, "project": "ui", "status": "finished", "kind": "interactive",
                "created_at": started, "started_at": started, "ended_at": started + 60 + i,
                "heartbeat_at": started + 60 + i, "tags": ["ui-test"],
                "env": {"python": "3.11.2", "packages": {"numpy": "2.1.0", "jupyter-mlp": "0.1.0"}},
                "gpu": {"enabled": True, "reason": None,
                        "devices": [{"index": 0, "name": "Test GPU", "memory_total": 16 * 1024**3}],
                        "run": {"0": {"util_mean": 55.0, "util_max": 97.0, "mem_peak": 6 * 1024**3,
                                      "energy_j": 12000.0}}},
            },
            "params": [[k, json.dumps(v), python_type(v), "api"] for k, v in params.items()],
            "metrics": loss + accs,
            "outputs": [["val_acc", "value", json.dumps(acc), None, None, None, started + 60]],
            "gpu": [
                (0, started + t, 50 + 45 * math.sin(t / 5), (2 + t / 20) * 1024**3, None, 200.0, 60.0,
                 1400.0, None)
                for t in range(60)
            ],
        }  # fmt: skip
        with store.write() as conn:
            apply_batch(conn, run_id, batch)
        ids[name] = run_id
    return ids


def seed_bulk(store: Store, n: int, project: str) -> None:
    """n runs of 3 params and 3 metrics, written directly (as bench/server.py does), older than
    any run a test creates."""
    rnd = random.Random(0)
    base = time.time() - 86400
    ids = [new_run_id() for _ in range(n)]
    conn = store.connect()
    with store.write():
        conn.executemany(
            "INSERT INTO runs (id, project, name, status, kind, created_at, started_at, ended_at) "
            "VALUES (?, ?, ?, ?, 'interactive', ?, ?, ?)",
            [
                (
                    run_id,
                    project,
                    f"bulk-{i}",
                    "finished" if i % 5 else "failed",
                    base - i,
                    base - i,
                    base - i + 60,
                )
                for i, run_id in enumerate(ids)
            ],
        )
        conn.executemany(
            "INSERT INTO params (run_id, key, value, type, num, text, source) VALUES (?, ?, ?, 'float', ?, NULL, 'api')",
            [
                (run_id, f"p{k}", json.dumps(v), v)
                for run_id in ids
                for k, v in ((k, rnd.random()) for k in range(3))
            ],
        )
        conn.executemany(
            "INSERT INTO metrics_latest (run_id, key, step, value, time) VALUES (?, ?, 0, ?, 0)",
            [(run_id, f"m{k}", rnd.random()) for run_id in ids for k in range(3)],
        )
    conn.execute("ANALYZE")


def seed_mixed(store: Store) -> dict[str, str]:
    """Runs a new user's list holds after a day: an interactive run whose kernel idles (one 5 s
    cell 19 min ago), one still working (a metric just now), a rerun of it with the same name
    (a job, 119.6 s: "2m 0s"), and a pipeline stage. Names as users give them: alike."""
    now = time.time()
    ids: dict[str, str] = {}
    art = store.blobs.put_bytes(b"model bytes")
    specs = [
        # key, name, status, started, ended, cells [(start, duration, status)], outputs
        ("idle", "train_digits", "running", now - 1200, None, [(now - 1150, 5.0, "ok")], []),
        ("busy", "train_digits", "running", now - 40, None, [], []),
        ("rerun", "train_digits", "finished", now - 400, now - 400 + 119.6, [], [
            ["model", "artifact", "null", art, 11, "model.pkl", now - 281],
            ["acc", "value", json.dumps(0.97), None, None, None, now - 281],
        ]),
        ("stage", "evaluate_digits", "finished", now - 300, now - 290, [], []),
    ]  # fmt: skip
    for key, name, status, started, ended, cells, outputs in specs:
        run_id = new_run_id()
        batch = {
            "run": {
                "name": name, "project": "mix", "status": status, "kind": "interactive",
                "created_at": started, "started_at": started, "ended_at": ended,
                "heartbeat_at": now, "tags": [],
            },
            "params": [["epochs", json.dumps(60 if key == "rerun" else 30), "int", "parameters"]],
            # the working kernel logged a metric just now
            "metrics": [["acc", 0, 0.9 + len(ids) / 100, now if key == "busy" else started + 1]],
            "cells": [
                [i + 1, f"c{i}", i + 1, "fit()", start, duration, cstatus, None, None]
                for i, (start, duration, cstatus) in enumerate(cells)
            ],
            "outputs": outputs,
        }  # fmt: skip
        with store.write() as conn:
            apply_batch(conn, run_id, batch)
        ids[key] = run_id
    conn = store.connect()
    with store.write():
        conn.execute(
            "UPDATE runs SET kind = 'job', parent_id = ? WHERE id = ?", (ids["idle"], ids["rerun"])
        )
        conn.execute(
            "UPDATE runs SET kind = 'stage', stage = 'evaluate', pipeline_run_id = 'p-ui' WHERE id = ?",
            (ids["stage"],),
        )
    return ids


# number, status, lr, depth, val_acc (None: the trial failed before any)
SWEEP_TRIALS = [
    (0, "finished", 0.0004, 3, 0.71),
    (1, "finished", 0.02, 5, 0.88),
    (2, "pruned", 0.09, 8, 0.35),
    (3, "finished", 0.006, 5, 0.93),
    (4, "failed", 0.0001, 3, None),
    (5, "finished", 0.001, 8, 0.80),
    (6, "pruned", 0.05, 3, 0.41),
    (7, "finished", 0.01, 8, 0.90),
]


def many_trials(n: int) -> list[tuple[int, str, float, int, float | None]]:
    """n trials in the shape of SWEEP_TRIALS, from a fixed seed: every 10th pruned, every 25th
    failed, val_acc a bowl in log(lr) and depth with noise (the best is near lr 0.005, depth 5)."""
    import math
    import random

    rng = random.Random(7)
    out: list[tuple[int, str, float, int, float | None]] = []
    for number in range(n):
        lr = 10 ** rng.uniform(-4, -1)
        depth = rng.choice([3, 5, 8])
        acc = 0.95 - 0.08 * (math.log10(lr) + 2.3) ** 2 - 0.01 * abs(depth - 5) + rng.gauss(0, 0.01)
        status = "failed" if number % 25 == 24 else "pruned" if number % 10 == 9 else "finished"
        out.append(
            (number, status, round(lr, 6), depth, None if status == "failed" else round(acc, 4))
        )
    return out


def seed_sweep(store: Store, n: int | None = None) -> dict[str, str | int | float]:
    """A finished sweep of project "sweep" through the sweep store's own functions: a template run
    (lr, depth, optimizer; metric val_acc), lr on a log range, depth among 3,5,8, and 8 trial runs
    (5 finished, 2 pruned, 1 failed; the best is trial 3, val_acc 0.93), or `n` trials from
    many_trials."""
    trials = SWEEP_TRIALS if n is None else many_trials(n)
    from jupyter_mlp.store import sweeps as sweep_store
    from jupyter_mlp.store.db import write
    from jupyter_mlp.sweeps.space import CHOICE, FIXED, RANGE, Dimension, space_json

    now = time.time()
    started = now - 900

    def run(name: str, params: dict, status: str, acc: float | None, t0: float, t1: float) -> str:
        run_id = new_run_id()
        metrics = [] if acc is None else [
            ["val_acc", s, acc * (s + 1) / 10, t0 + s] for s in range(10)
        ]  # fmt: skip
        batch = {
            "run": {"name": name, "project": "sweep", "status": status, "kind": "job",
                    "created_at": t0, "started_at": t0, "ended_at": t1, "heartbeat_at": t1},
            "params": [[k, json.dumps(v), python_type(v), "parameters"] for k, v in params.items()],
            "metrics": metrics,
        }  # fmt: skip
        with store.write() as conn:
            apply_batch(conn, run_id, batch)
        return run_id

    template = run(
        "sweep-template", {"lr": 0.01, "depth": 5, "optimizer": "adam"}, "finished", 0.85,
        started - 300, started - 240,
    )  # fmt: skip
    space = {
        "lr": Dimension("lr", RANGE, "float", low=1e-4, high=1e-1, log=True),
        "depth": Dimension("depth", CHOICE, "int", choices=[3, 5, 8]),
        "optimizer": Dimension("optimizer", FIXED, "str", value="adam"),
    }
    objective = {"direction": "maximize", "key": "val_acc", "source": "metric", "agg": "last",
                 "text": "max:metric.val_acc"}  # fmt: skip
    conn = store.connect()
    sweep_id = sweep_store.create(
        conn, name="lr-depth search", template_id=template, space=space_json(space),
        objective=objective, sampler="tpe", seed=0, budget=len(trials), timeout_s=None,
        concurrency=2, executor="local", gpus=None, options={"prune": True},
    )  # fmt: skip
    sweep_store.set_status(conn, sweep_id, "running")
    best = max((t for t in trials if t[1] == "finished"), key=lambda t: t[4] or 0)
    best_run = ""
    for number, status, lr, depth, acc in trials:
        t0 = started + number * 60
        params = {"lr": lr, "depth": depth, "optimizer": "adam"}
        run_status = "failed" if status == "failed" else status
        run_id = run(f"sweep-template #{number}", params, run_status, acc, t0, t0 + 30 + number)
        with write(conn):
            conn.execute("UPDATE runs SET sweep_id = ?, parent_id = ? WHERE id = ?",
                         (sweep_id, template, run_id))  # fmt: skip
            sweep_store._insert_trial(
                conn, sweep_id, number, "running", run_id, params, None, None, t0
            )
        error = {"ename": "ValueError", "evalue": "diverged"} if status == "failed" else None
        sweep_store.set_trial(
            conn, sweep_id, number, status, value=acc, step=None if acc is None else 9,
            error=error,
        )  # fmt: skip
        conn.execute(
            "UPDATE sweep_trials SET ended_at = ? WHERE sweep_id = ? AND number = ?",
            (t0 + 30 + number, sweep_id, number),
        )
        conn.commit()
        if number == best[0]:
            best_run = run_id
    sweep_store.update(conn, sweep_id, best_trial=best[0], best_run_id=best_run, best_value=best[4])
    sweep_store.set_status(conn, sweep_id, "finished")
    return {"sweep": sweep_id, "template": template, "best_trial": best[0],
            "best_run": best_run, "best_value": best[4]}  # fmt: skip


GRID_LRS = [0.001, 0.01, 0.1]
GRID_STEPS = 300


def seed_grid(store: Store, n: int) -> dict[str, object]:
    """n finished runs of project "cmp" as a grid search leaves them: lr among 3 values, a seed
    each (runs i, i+3, ... share an lr), depth the same for all; a `loss` curve of 300 steps
    whose level depends on lr and whose noise on the seed, and a latest `acc`."""
    now = time.time()
    ids: list[str] = []
    by_lr: dict[str, int] = {}
    for i in range(n):
        lr, seed = GRID_LRS[i % len(GRID_LRS)], i // len(GRID_LRS)
        rnd = random.Random(seed)
        started = now - 3600 + i * 30
        level = {0.001: 0.6, 0.01: 0.3, 0.1: 0.45}[lr]
        loss = [
            ["loss", s, level + math.exp(-s / 60) + 0.05 * rnd.uniform(-1, 1), started + s]
            for s in range(GRID_STEPS)
        ]
        batch = {
            "run": {"name": f"grid-{i:02d}", "project": "cmp", "status": "finished",
                    "kind": "job", "created_at": started, "started_at": started,
                    "ended_at": started + 20, "heartbeat_at": started + 20},
            "params": [["lr", json.dumps(lr), "float", "parameters"],
                       ["seed", json.dumps(seed), "int", "parameters"],
                       ["depth", json.dumps(5), "int", "parameters"]],
            "metrics": [*loss, ["acc", 0, 1 - level + 0.01 * rnd.random(), started + 20]],
        }  # fmt: skip
        run_id = new_run_id()
        with store.write() as conn:
            apply_batch(conn, run_id, batch)
        ids.append(run_id)
        by_lr[str(lr)] = by_lr.get(str(lr), 0) + 1
    return {"ids": ids, "by_lr": by_lr}


# name, owner (None: --me, else --other), status, kind, pinned, acc
TEAM_RUNS = [
    ("baseline-mine", None, "finished", "interactive", False, 0.81),
    ("tuned-mine", None, "finished", "interactive", True, 0.90),
    ("baseline-other", "other", "finished", "interactive", True, 0.84),
    ("long-other", "other", "running", "job", False, 0.50),
]


def seed_team(store: Store, me: str, other: str) -> dict[str, object]:
    """A team's store as one user sees it: runs of project "team" of `me` and of `other` (the
    owner column a run records), pinned ones of each, a running job of `other`'s, and a running
    sweep of `other`'s over their pinned run."""
    from jupyter_mlp.store import sweeps as sweep_store

    now = time.time()
    ids: dict[str, str] = {}
    for i, (name, whose, status, kind, pinned, acc) in enumerate(TEAM_RUNS):
        owner = me if whose is None else other
        run_id = new_run_id()
        started = now - 900 + i * 60
        ended = None if status == "running" else started + 30
        batch = {
            "run": {
                "name": name, "project": "team", "status": status, "kind": kind,
                "created_at": started, "started_at": started, "ended_at": ended,
                "heartbeat_at": now, "tags": ["team"], "user": owner, "owner": owner,
            },
            "params": [["lr", json.dumps(0.01 * (i + 1)), "float", "parameters"]],
            "metrics": [["acc", s, acc * (s + 1) / 10, started + s] for s in range(10)],
        }  # fmt: skip
        with store.write() as conn:
            apply_batch(conn, run_id, batch)
            if pinned:
                conn.execute("UPDATE runs SET pinned = 1 WHERE id = ?", (run_id,))
        ids[name] = run_id
    conn = store.connect()
    sweep_id = sweep_store.create(
        conn, name="other's search", template_id=ids["baseline-other"],
        space={}, objective={"direction": "maximize", "key": "acc", "source": "metric",
                             "agg": "last", "text": "max:metric.acc"},
        sampler="random", seed=0, budget=4, timeout_s=None, concurrency=1, executor="local",
        gpus=None, options={}, owner=other,
    )  # fmt: skip
    sweep_store.set_status(conn, sweep_id, "running")
    return {"runs": ids, "sweep": sweep_id, "me": me, "other": other}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("clear")
    sub.add_parser("runs")
    sub.add_parser("mixed")
    sweep = sub.add_parser("sweep")
    sweep.add_argument("--trials", type=int, default=None)
    grid = sub.add_parser("grid")
    grid.add_argument("--n", type=int, default=40)
    team = sub.add_parser("team")
    team.add_argument("--me", required=True)
    team.add_argument("--other", default="alice")
    bulk = sub.add_parser("bulk")
    bulk.add_argument("n", type=int)
    bulk.add_argument("--project", default="bench")
    args = parser.parse_args()
    store = Store(HOME)
    if args.command == "clear":
        clear(store)
    elif args.command == "runs":
        json.dump(seed_runs(store), sys.stdout)
    elif args.command == "mixed":
        json.dump(seed_mixed(store), sys.stdout)
    elif args.command == "sweep":
        json.dump(seed_sweep(store, args.trials), sys.stdout)
    elif args.command == "team":
        json.dump(seed_team(store, args.me, args.other), sys.stdout)
    elif args.command == "grid":
        json.dump(seed_grid(store, args.n), sys.stdout)
    else:
        seed_bulk(store, args.n, args.project)
    store.close()


if __name__ == "__main__":
    main()
