"""Seed or clear the store the Galata test server uses (ui-tests/.mlp-home), with the store's own
functions, so that UI tests start from known runs. Called by the specs through `python`:

    python mlp_store.py clear                  # every run and its records (events stay: ids go on)
    python mlp_store.py runs                   # a few finished runs of project "ui" -> JSON {name: id}
    python mlp_store.py bulk 10000 --project bench   # many small runs at once (the 10k figure)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("clear")
    sub.add_parser("runs")
    bulk = sub.add_parser("bulk")
    bulk.add_argument("n", type=int)
    bulk.add_argument("--project", default="bench")
    args = parser.parse_args()
    store = Store(HOME)
    if args.command == "clear":
        clear(store)
    elif args.command == "runs":
        json.dump(seed_runs(store), sys.stdout)
    else:
        seed_bulk(store, args.n, args.project)
    store.close()


if __name__ == "__main__":
    main()
