"""Pipeline figures: a fully cached rerun of 20 stages, the upstream-to-downstream hand-off (the
driver's, and cell to cell in a 4-stage chain), and 8 independent ~2 s stages at capacity 4 (in
process, and from the CLI with its start: cold on a fresh store, then warm, with the launcher the
first command left), and `jupyter mlp run` of a trivial notebook (cold, warm, papermill's CLI).
ploomber's figures for the same pipelines are printed beside ours when it is installed
($MLP_BENCH_PLOOMBER names its `ploomber` if it is not on PATH).

    python bench/pipeline.py

Prints one figure per line and, last, one JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_mlp.execution.service import JobService  # noqa: E402
from jupyter_mlp.pipelines.dag import Driver, submit  # noqa: E402
from jupyter_mlp.store import Store  # noqa: E402
from jupyter_mlp.store import pipelines as P  # noqa: E402
from jupyter_mlp.store import runs as run_store  # noqa: E402

NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {"id": "p", "cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [], "execution_count": None,
         "source": "i = 0\nsleep = 0.0"},
        {"id": "w", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import time\ntime.sleep(sleep)"},
    ],
}  # fmt: skip


def spec(stages: dict) -> dict:
    return {
        "format": "jupyter-mlp.pipeline",
        "version": 1,
        "name": "bench",
        "parameters": {},
        "stages": stages,
    }


def run_times(store: Store, run_id: str) -> dict[str, Any]:
    """A run's times as the store holds them: created (queued), started (its job claimed), its
    first cell's start, its last cell's end, ended."""
    found = run_store.get_run(store.connect(), run_id)
    cells = found["cells"]
    return {
        "queued": found["created_at"],
        "claimed": found["started_at"],
        "first_cell": min((c["started_at"] for c in cells), default=None),
        "last_cell_end": max((c["started_at"] + c["duration"] for c in cells), default=None),
        "ended": found["ended_at"],
    }


def run(store: Store, service: JobService, s: dict, base: Path) -> tuple[float, dict]:
    t = time.perf_counter()
    pid = submit(store, s, base=base)
    Driver(store, pid, service=service).run()
    return time.perf_counter() - t, P.get(store.connect(), pid)


def cell_to_cell(store: Store, service: JobService, base: Path, n: int = 4) -> dict:
    """A 4-stage chain: from the end of one stage's last cell to the start of the next stage's
    first cell, read from the cells' own times (what the user waits between stages)."""
    time.sleep(1.5)  # the pool as a pipeline finds it, not right after the 20-stage run
    chain = {f"h{i}": {"template": {"notebook": "stage.ipynb"}, "parameters": {"i": 1000 + i},
                       "after": [f"h{i - 1}"] if i else [], "cache": False} for i in range(n)}  # fmt: skip
    _, done = run(store, service, spec(chain), base)
    assert done["status"] == "succeeded", done
    gaps = []
    for i in range(1, n):
        up, down = (run_times(store, done["stages"][f"h{j}"]["run_id"]) for j in (i - 1, i))
        gaps.append((down["first_cell"] - up["last_cell_end"]) * 1e3)
    return {"cell_to_cell_handoff_ms": round(statistics.median(gaps), 1),
            "cell_to_cell_handoff_max_ms": round(max(gaps), 1)}  # fmt: skip


def jupyter_mlp(home: Path, *args: str, env: dict[str, str] | None = None) -> float:
    """`jupyter mlp ARGS` from the shell on the store at `home` (with `env` added): its wall
    time, start included."""
    import shutil
    import subprocess

    jupyter = str(Path(sys.executable).with_name("jupyter"))  # this interpreter's, not a peer's
    if not Path(jupyter).exists():
        jupyter = shutil.which("jupyter") or "jupyter"
    t = time.perf_counter()
    subprocess.run([jupyter, "mlp", *args], check=True, capture_output=True,
                   env={**os.environ, "MLP_HOME": str(home), **(env or {})})  # fmt: skip
    return time.perf_counter() - t


def eight_stages(base: Path) -> Path:
    """A .mlpipe of 8 independent 2 s stages of `base`/stage.ipynb (written here)."""
    (base / "stage.ipynb").write_text(json.dumps(NOTEBOOK))
    stages = {f"p{i}": {"template": {"notebook": "stage.ipynb"}, "parameters": {"sleep": 2.0, "i": 200 + i},
                        "cache": False} for i in range(8)}  # fmt: skip
    path = base / "eight.mlpipe"
    path.write_text(json.dumps(spec(stages)))
    return path


def settled(home: Path, kernels: int, timeout: float = 60.0) -> None:
    """Wait until the launcher a command left has `kernels` idle kernels (what a user who runs
    the next command a few seconds later finds)."""
    from jupyter_mlp.execution.launcher import client, running

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in running(home):
            one = client(str(record["name"]))
            if one is not None:
                try:
                    if sum(one.status()["idle_kernels"].values()) >= kernels:
                        return
                finally:
                    one.close()
        time.sleep(0.1)
    raise RuntimeError("the warm launcher did not settle")


def cli_parallel(base: Path, warm_runs: int = 3) -> dict:
    """`jupyter mlp pipeline run` of 8 independent 2 s stages at concurrency 4, wall time from
    the shell (the CLI's start included) / 2 s: on a fresh store (no launcher: everything starts
    cold), then the same command again once the launcher the first left has settled (the median
    of `warm_runs`). And `jupyter mlp run` of a trivial notebook, cold and warm, with the
    papermill CLI beside it."""
    import subprocess

    path = eight_stages(base)
    home = base.parent / "cli-home"
    command = ("pipeline", "run", str(path), "--concurrency", "4")
    try:
        cold = jupyter_mlp(home, *command)
        warm = []
        for _ in range(warm_runs):
            settled(home, 4)
            warm.append(jupyter_mlp(home, *command))
        trivial = base / "trivial.ipynb"
        trivial.write_text(json.dumps(NOTEBOOK))
        run_home = base.parent / "run-home"
        run_cold = jupyter_mlp(run_home, "run", str(trivial), "-p", "i", "1")
        run_warm = []
        for i in range(warm_runs):
            settled(run_home, 1)
            run_warm.append(jupyter_mlp(run_home, "run", str(trivial), "-p", "i", str(i)))
    finally:
        for where in (home, base.parent / "run-home"):
            if where.exists():
                jupyter_mlp(where, "pool", "stop")
    figures = {
        "parallel_8x2s_c4_cli_cold_ratio": round(cold / 2.0, 2),
        "parallel_8x2s_c4_cli_ratio": round(statistics.median(warm) / 2.0, 2),
        "parallel_8x2s_c4_cli_warm_s": [round(w, 2) for w in warm],
        "cli_run_trivial_cold_ms": round(run_cold * 1e3),
        "cli_run_trivial_ms": round(statistics.median(run_warm) * 1e3),
    }
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "papermill", str(trivial), str(base / "pm-out.ipynb"),
                           "-p", "i", "1"], capture_output=True)  # fmt: skip
    if done.returncode == 0:
        figures["papermill_cli_trivial_ms"] = round((time.perf_counter() - t) * 1e3)
    return figures


PLOOMBER_STAGE = """# %% tags=["parameters"]
upstream = {upstream}
product = None
i = 0
sleep = 0.0

# %%
import time
time.sleep(sleep)
"""


def ploomber_figures(base: Path) -> dict:
    """The same two pipelines with ploomber (`ploomber build --force`, notebooks through
    papermill), if it is installed: $MLP_BENCH_PLOOMBER, else `ploomber` on PATH. The 8 x 2 s
    stages at 4 processes (wall time from the shell / 2 s), and the 4-stage chain's hand-off from
    the cells' own times (papermill's start_time / end_time in each executed notebook)."""
    import shutil
    import subprocess
    from datetime import datetime

    ploomber = os.environ.get("MLP_BENCH_PLOOMBER") or shutil.which("ploomber")
    if not ploomber:
        return {}
    figures: dict = {}
    for name, n, chain in (("parallel", 8, False), ("chain", 4, True)):
        folder = base / f"ploomber-{name}"
        folder.mkdir()
        lines = [
            "executor:",
            "  dotted_path: ploomber.executors.Parallel",
            "  processes: 4",
            "tasks:",
        ]
        for i in range(n):
            upstream = repr([f"s{i - 1}"]) if chain and i else "None"
            (folder / f"s{i}.py").write_text(PLOOMBER_STAGE.format(upstream=upstream))
            lines += [f"  - source: s{i}.py", f"    name: s{i}", f"    product: out/s{i}.ipynb",
                      "    params:", f"      sleep: {0.0 if chain else 2.0}", f"      i: {i}"]  # fmt: skip
        (folder / "pipeline.yaml").write_text("\n".join(lines) + "\n")
        t = time.perf_counter()
        done = subprocess.run([ploomber, "build", "--force"], cwd=folder, capture_output=True,
                              text=True)  # fmt: skip
        wall = time.perf_counter() - t
        if done.returncode != 0:  # the peer's failure is reported; ours are kept
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            figures[f"ploomber_{name}_error"] = tail[0] if tail else f"exit {done.returncode}"
            continue
        if not chain:
            figures["ploomber_8x2s_c4_ratio"] = round(wall / 2.0, 2)
            continue

        cells = [
            [c["metadata"]["papermill"] for c in json.loads((folder / "out" / f"s{i}.ipynb")
             .read_text())["cells"] if c["cell_type"] == "code"] for i in range(n)
        ]  # fmt: skip
        gaps = [(datetime.fromisoformat(cells[i][0]["start_time"])
                 - datetime.fromisoformat(cells[i - 1][-1]["end_time"])).total_seconds() * 1e3
                for i in range(1, n)]  # fmt: skip
        figures["ploomber_cell_to_cell_handoff_ms"] = round(statistics.median(gaps), 1)
    return figures


def main() -> None:
    figures: dict = {}
    with tempfile.TemporaryDirectory() as home:
        base = Path(home) / "work"
        base.mkdir()
        (base / "stage.ipynb").write_text(json.dumps(NOTEBOOK))
        store = Store(Path(home) / "mlp")
        # (this service's launcher ends with it: the CLI figures below start from nothing)
        service = JobService(store, concurrency=4, poll_interval=0.05,
                             executors={"local": {"keep_warm": 0}})  # fmt: skip
        service.start()
        try:
            chain = {f"s{i}": {"template": {"notebook": "stage.ipynb"}, "parameters": {"i": i},
                               "after": [f"s{i - 1}"] if i else []} for i in range(20)}  # fmt: skip
            first, done = run(store, service, spec(chain), base)
            assert done["status"] == "succeeded", done
            cached, again = run(store, service, spec(chain), base)
            assert set(s["status"] for s in again["stages"].values()) == {"cached"}
            figures["first_run_20_s"] = round(first, 2)
            figures["cached_rerun_20_s"] = round(cached, 3)

            gaps = []
            for name in list(chain)[1:]:
                up = run_times(store, done["stages"][chain[name]["after"][0]]["run_id"])
                down = run_times(store, done["stages"][name]["run_id"])
                gaps.append((down["queued"] - up["ended"]) * 1e3)
            figures["handoff_ms"] = round(statistics.median(gaps), 1)
            figures["handoff_max_ms"] = round(max(gaps), 1)

            figures.update(cell_to_cell(store, service, base))

            one = {
                "a": {
                    "template": {"notebook": "stage.ipynb"},
                    "parameters": {"sleep": 2.0, "i": -1},
                    "cache": False,
                }
            }
            single, _ = run(store, service, spec(one), base)
            eight = {f"p{i}": {"template": {"notebook": "stage.ipynb"}, "parameters": {"sleep": 2.0, "i": 100 + i}, "cache": False}
                     for i in range(8)}  # fmt: skip
            total, _ = run(store, service, spec(eight), base)
            figures["one_stage_s"] = round(single, 2)
            figures["eight_stages_s"] = round(total, 2)
            figures["parallel_speedup"] = round(total / single, 2)
        finally:
            service.stop()
        figures.update(cli_parallel(base))
        figures.update(ploomber_figures(base))
    for k, v in figures.items():
        print(f"{k:>20}: {v}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
