"""Where a pipeline's time goes, stage by stage, read from the store's own times: for each
stage's run, when it was queued, when its job was claimed, when its first cell started and its
last cell ended, and when the run ended, in ms from the start.

    python bench/timeline.py [--runs 2]

cli: `jupyter mlp pipeline run` of 8 independent 2 s stages at concurrency 4, warm (as
bench/pipeline.py's parallel_8x2s_c4_cli_ratio), from the command's start (the CLI's own start is
the first column's offset). chain: a 4-stage chain of trivial stages in one service (as its
cell_to_cell_handoff_ms), from the pipeline's submission; each hand-off is split into the
upstream's end (last cell -> run ended), the claim (run ended -> next job claimed) and the
start (claimed -> first cell). Prints a table per pipeline run and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from pipeline import NOTEBOOK, eight_stages, jupyter_mlp, run, run_times, settled, spec  # noqa: E402

from jupyter_mlp.store import Store  # noqa: E402
from jupyter_mlp.store import runs as run_store  # noqa: E402

COLUMNS = ("queued", "claimed", "first_cell", "last_cell_end", "ended")


def stages(store: Store, run_ids: list[str], t0: float) -> list[dict]:
    """Each run's times in ms from t0."""
    rows = []
    for run_id in run_ids:
        times = run_times(store, run_id)
        rows.append({k: None if times[k] is None else round((times[k] - t0) * 1e3, 1)
                     for k in COLUMNS})  # fmt: skip
    return rows


def show(title: str, rows: list[dict]) -> None:
    print(f"{title}\n  {'stage':>5} " + " ".join(f"{c:>13}" for c in COLUMNS), file=sys.stderr)
    for i, row in enumerate(rows):
        cells = " ".join(f"{'-' if row[c] is None else row[c]:>13}" for c in COLUMNS)
        print(f"  {i:>5} {cells}", file=sys.stderr)


def cli_runs(base: Path, runs: int) -> list[list[dict]]:
    path = eight_stages(base)
    home = base.parent / "cli-home"
    command = ("pipeline", "run", str(path), "--concurrency", "4")
    jupyter_mlp(home, *command)  # cold: it leaves the launcher the next ones find
    found = []
    try:
        for n in range(runs):
            settled(home, 4)
            t0 = time.time()
            wall = jupyter_mlp(home, *command)
            store = Store(home)
            newest = run_store.list_runs(store.connect(), sort="-created_at")
            ids = [r["id"] for r in reversed(newest) if r["created_at"] > t0]
            rows = stages(store, ids, t0)
            store.close()
            show(f"cli run {n + 1}: {wall * 1e3:.0f} ms from the shell", rows)
            found.append(rows)
    finally:
        jupyter_mlp(home, "pool", "stop")
    return found


def chain_runs(base: Path, runs: int) -> tuple[list[list[dict]], dict]:
    from jupyter_mlp.execution.service import JobService

    (base / "stage.ipynb").write_text(json.dumps(NOTEBOOK))
    store = Store(base.parent / "chain-home")
    service = JobService(store, concurrency=4, poll_interval=0.05,
                         executors={"local": {"keep_warm": 0}})  # fmt: skip
    service.start()
    found, parts = [], {"end": [], "claim": [], "start": [], "handoff": []}
    try:
        for n in range(runs):
            time.sleep(1.5)  # the pool as a pipeline finds it
            chain = {f"h{i}": {"template": {"notebook": "stage.ipynb"}, "parameters": {"i": 100 * n + i},
                               "after": [f"h{i - 1}"] if i else [], "cache": False} for i in range(4)}  # fmt: skip
            t0 = time.time()
            _, done = run(store, service, spec(chain), base)
            rows = stages(store, [done["stages"][f"h{i}"]["run_id"] for i in range(4)], t0)
            show(f"chain run {n + 1}", rows)
            for up, down in zip(rows, rows[1:]):
                parts["end"].append(up["ended"] - up["last_cell_end"])
                parts["claim"].append(down["claimed"] - up["ended"])
                parts["start"].append(down["first_cell"] - down["claimed"])
                parts["handoff"].append(down["first_cell"] - up["last_cell_end"])
            found.append(rows)
    finally:
        service.stop()
    medians = {f"chain_{k}_ms": round(statistics.median(v), 1) for k, v in parts.items()}
    return found, medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "work"
        base.mkdir()
        cli = cli_runs(base, args.runs)
        chains, medians = chain_runs(base, args.runs)
    for k, v in medians.items():
        print(f"{k:>20}: {v}", file=sys.stderr)
    print(json.dumps({"cli": cli, "chain": chains, **medians}))


if __name__ == "__main__":
    main()
