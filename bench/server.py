"""Server figures: listing 100k runs, event latency from a tracked kernel, HTTP ingest rate.

    python bench/server.py [--runs 100000] [--skip-kernel] [--skip-ingest]

Prints one figure per line and, last, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_mlp.store import Store  # noqa: E402
from jupyter_mlp.store import runs as run_store  # noqa: E402

FILTER = "metrics.m0 > 0.5 and params.p1 <= 0.5 and status = finished"
SORT = "-metrics.m1"


def seed_runs(store: Store, n: int) -> None:
    """n runs of 10 params and 10 metrics, written directly (the listing is what we measure)."""
    rnd = random.Random(0)
    now = time.time()
    conn = store.connect()
    with store.write():
        conn.executemany(
            "INSERT INTO runs (id, project, name, status, kind, created_at, started_at, ended_at) "
            "VALUES (?, 'bench', ?, ?, 'interactive', ?, ?, ?)",
            [
                (f"{i:012x}", f"run-{i}", "finished" if i % 5 else "failed", now - i, now - i, now - i + 60)
                for i in range(n)
            ],
        )
        conn.executemany(
            "INSERT INTO params (run_id, key, value, type, num, text, source) VALUES (?, ?, ?, 'float', ?, NULL, 'api')",
            [(f"{i:012x}", f"p{k}", json.dumps(v), v) for i in range(n) for k, v in ((k, rnd.random()) for k in range(10))],
        )
        conn.executemany(
            "INSERT INTO metrics_latest (run_id, key, step, value, time) VALUES (?, ?, 0, ?, 0)",
            [(f"{i:012x}", f"m{k}", rnd.random()) for i in range(n) for k in range(10)],
        )
    conn.execute("ANALYZE")


def list_figure(store: Store, n: int) -> dict:
    seed_runs(store, n)
    conn = store.connect()
    times = []
    for _ in range(7):
        t = time.perf_counter()
        page = run_store.list_runs(conn, filter=FILTER, sort=SORT, limit=100)
        times.append((time.perf_counter() - t) * 1e3)
    assert len(page) == 100, len(page)
    values = [r["metrics"]["m1"] for r in page]
    assert values == sorted(values, reverse=True)
    unfiltered = []
    for _ in range(5):
        t = time.perf_counter()
        run_store.list_runs(conn, limit=100)
        unfiltered.append((time.perf_counter() - t) * 1e3)
    return {"list_100k_ms": round(statistics.median(times), 1),
            "list_100k_newest_ms": round(statistics.median(unfiltered), 1), "runs": n}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    args = ap.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as home:
        figures.update(list_figure(Store(home), args.runs))
    for k, v in figures.items():
        print(f"{k:>22}: {v}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
