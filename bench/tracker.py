"""Tracker figures: per-cell overhead, log_metric rate, durable metric rate, start and import time,
a run's start to finish (track -> log_metric -> finish) warm in a process and first in a fresh one.

    python bench/tracker.py [--cells 5000] [--points 1000000] [--kernels 5]

Prints one figure per line and, last, one JSON object with every figure. Peers (MLflow, W&B
offline, trackio) are measured beside ours, the same way, where they are installed: in this
environment, or in the interpreter $MLP_BENCH_PEERS_PYTHON names (an environment of their own
keeps their pins off ours).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cell_overhead_us(n: int, blocks: int = 20) -> dict:
    """Median time of `x = 1` through InteractiveShell.run_cell, tracked vs untracked, measured
    in alternating blocks (untracked, tracked, untracked, ...); the overhead is the median over
    the pairs of (tracked block's median - its untracked block's median), so that this machine's
    drift (its single-core speed moves by a third from one minute to the next) cancels out."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False  # IPython's own history database is not what we measure
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "jupyter_mlp")
    import jupyter_mlp as mlp

    def block(count: int) -> list[float]:
        times = []
        for _ in range(count):
            t = time.perf_counter()
            ip.run_cell("x = 1", store_history=True)
            times.append(time.perf_counter() - t)
        return times

    block(500)  # warm up
    bare: list[float] = []
    tracked: list[float] = []
    pairs: list[float] = []
    per_block = max(n // blocks, 100)
    for _ in range(blocks):
        untracked_block = block(per_block)
        mlp.track("bench-cells", gpu=False, status_view=_Quiet(), shell=ip)
        tracked_block = block(per_block)
        mlp.finish()
        bare += untracked_block
        tracked += tracked_block
        pairs.append(statistics.median(tracked_block) - statistics.median(untracked_block))
    b, t = statistics.median(bare) * 1e6, statistics.median(tracked) * 1e6
    return {"bare_run_cell_us": round(b, 1), "tracked_run_cell_us": round(t, 1),
            "cell_overhead_us": round(statistics.median(pairs) * 1e6, 1)}  # fmt: skip


def metric_rates(points: int) -> dict:
    import jupyter_mlp as mlp

    mlp.track("bench-metrics", gpu=False, status_view=_Quiet())
    log = mlp.log_metric
    t = time.perf_counter()
    for _ in range(points):
        log("loss", 0.5)
    logged = time.perf_counter() - t
    mlp.flush()
    stored = time.perf_counter() - t
    mlp.finish()
    return {
        "log_metric_per_s": round(points / logged),
        "stored_metric_per_s": round(points / stored),
    }


FRESH = """
import time
t = time.perf_counter()
import jupyter_mlp as mlp
class Quiet:
    def show(self, s): pass
    def refresh(self, s): pass
    def close(self, s): pass
mlp.track("bench-fresh", gpu=False, status_view=Quiet())
mlp.log_metric("loss", 0.5)
mlp.finish()
print((time.perf_counter() - t) * 1000)
"""


def track_finish_figures(runs: int = 20, fresh: int = 5) -> dict:
    """track() -> log_metric -> finish(), durable at the end: the median of `runs` in this
    process after one warm-up, and of `fresh` new processes (import included, interpreter
    start not), each in the same store."""
    import subprocess

    import jupyter_mlp as mlp

    def one() -> float:
        t = time.perf_counter()
        mlp.track("bench-run", gpu=False, status_view=_Quiet())
        mlp.log_metric("loss", 0.5)
        mlp.finish()
        return (time.perf_counter() - t) * 1000

    one()
    warm = statistics.median(one() for _ in range(runs))
    firsts = []
    for _ in range(fresh):
        done = subprocess.run(
            [sys.executable, "-c", FRESH], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )  # fmt: skip
        firsts.append(float(done.stdout.strip().splitlines()[-1]))
    return {
        "track_finish_warm_ms": round(warm, 2),
        "track_first_fresh_ms": round(statistics.median(firsts), 1),
    }


class _Quiet:
    def show(self, s):
        pass

    def refresh(self, s):
        pass

    def close(self, s):
        pass


def kernel_start_figures(kernels: int) -> dict:
    """In fresh kernels: `import jupyter_mlp`, `%load_ext`, and `%mlp_track` from call to return
    (status display included), the request carrying a cellId as JupyterLab's do."""
    from jupyter_client import KernelManager

    def run(kc, code: str, cell_id: str | None) -> str:
        msg = kc.session.msg(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": False, "stop_on_error": True},
            metadata={"cellId": cell_id} if cell_id else {},
        )  # fmt: skip
        kc.shell_channel.send(msg)
        out = []
        while True:
            m = kc.get_iopub_msg(timeout=60)
            if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return "".join(out)

    code = (
        "import time as _t\n"
        "_a = _t.perf_counter(); import jupyter_mlp; _b = _t.perf_counter()\n"
        "get_ipython().run_line_magic('load_ext', 'jupyter_mlp'); _c = _t.perf_counter()\n"
        "_d = _t.perf_counter(); get_ipython().run_line_magic('mlp_track', 'bench-start'); "
        "_e = _t.perf_counter()\n"
        "print('MLPBENCH', (_b - _a) * 1e3, (_c - _b) * 1e3, (_e - _d) * 1e3)"
    )
    found: dict[str, list[float]] = {"import": [], "load": [], "track": []}
    for _ in range(kernels):
        km = KernelManager(kernel_name="python3")
        km.start_kernel(env={**os.environ})
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        try:
            out = run(kc, code, "cell-1")
            line = next(x for x in out.splitlines() if x.startswith("MLPBENCH"))
            a, b, c = map(float, line.split()[1:])
            found["import"].append(a)
            found["load"].append(b)
            found["track"].append(c)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    med = lambda xs: round(statistics.median(xs), 1)  # noqa: E731
    return {"import_ms": med(found["import"]), "load_ext_ms": med(found["load"]),
            "track_start_ms": med(found["track"])}  # fmt: skip


# A peer's run, measured as ours: {setup} once per process (not timed); start, log a point,
# finish (what makes the points durable).
PEER_RUNS = {
    "mlflow": {
        "setup": "import mlflow\nmlflow.set_tracking_uri('sqlite:///' + os.path.join(os.getcwd(), 'mlflow.db'))",
        "start": "mlflow.start_run()", "log": "mlflow.log_metric('loss', 0.5, step=i)", "end": "mlflow.end_run()",
    },
    "wandb": {
        "setup": "import wandb",
        "start": "r = wandb.init(project='bench', mode='offline', dir=os.getcwd())",
        "log": "r.log({'loss': 0.5}, step=i)", "end": "r.finish()",
    },
    "trackio": {
        "setup": "import trackio",
        "start": "trackio.init(project='bench')", "log": "trackio.log({'loss': 0.5}, step=i)",
        "end": "trackio.finish()",
    },
}  # fmt: skip

PEER_SCRIPT = """
import os, statistics, sys, time
t = time.perf_counter()
{setup}
def one(points=1):
    {start}
    for i in range(points):
        {log}
    {end}
mode = sys.argv[1]
if mode == "fresh":  # import and the first run, interpreter start not (as FRESH)
    one()
    print((time.perf_counter() - t) * 1000)
elif mode == "warm":  # the median run after one (as track_finish_figures)
    one()
    times = []
    for _ in range({runs}):
        s = time.perf_counter()
        one()
        times.append((time.perf_counter() - s) * 1000)
    print(statistics.median(times))
else:  # points per second, logged and durable at the end (as stored_metric_per_s)
    s = time.perf_counter()
    one({points})
    print({points} / (time.perf_counter() - s))
"""


def peer_figures(python: str, runs: int = 20, fresh: int = 5, points: int = 2000) -> dict:
    """MLflow (SQLite store), W&B (offline) and trackio (local), measured as ours with `python`
    (MLP_BENCH_PEERS_PYTHON: an interpreter where they are installed, in an environment of their
    own; else this one), each in a temporary working folder and home: a run's start
    to finish warm and first in a fresh process, and points per second durable at the run's
    end. A peer that is not installed there is left out."""
    out: dict = {}
    for name, code in PEER_RUNS.items():
        script = PEER_SCRIPT.format(runs=runs, points=points, **code)
        with tempfile.TemporaryDirectory() as tmp:
            warm = _peer(python, name, script, "warm", tmp)  # makes the store fresh ones find
            if warm is None:
                continue
            firsts = [f for f in (_peer(python, name, script, "fresh", tmp) for _ in range(fresh))
                      if f is not None]  # fmt: skip
            rate = _peer(python, name, script, "rate", tmp)
            out[f"{name}_track_finish_warm_ms"] = round(warm, 2)
            out[f"{name}_track_first_fresh_ms"] = (
                round(statistics.median(firsts), 1) if firsts else None
            )
            out[f"{name}_stored_metric_per_s"] = round(rate) if rate else None
    return out


def _peer(python: str, name: str, script: str, mode: str, folder: str) -> float | None:
    """The figure the peer's script prints in `mode`, run in `folder` (its home too); None when
    the peer is not installed there (or failed: then its error is shown)."""
    import subprocess

    env = {**os.environ, "HOME": folder, "TRACKIO_DIR": f"{folder}/trackio", "WANDB_SILENT": "true",
           "WANDB_DISABLE_GIT": "true", "MLFLOW_TRACKING_URI": ""}  # fmt: skip
    done = subprocess.run([python, "-c", script, mode], cwd=folder, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        if f"No module named '{name}'" not in done.stderr:
            print(f"{name} {mode}: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=5000)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--kernels", type=int, default=5)
    args = ap.parse_args()
    # Byte-compile the package first, as pip does on install: this machine sets
    # PYTHONDONTWRITEBYTECODE, so an editable checkout would otherwise compile on every import.
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "jupyter_mlp"), quiet=1)
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLP_HOME"] = home
        figures: dict = {}
        figures.update(cell_overhead_us(args.cells))
        figures.update(metric_rates(args.points))
        figures.update(track_finish_figures())
        figures.update(kernel_start_figures(args.kernels))
        figures.update(peer_figures(os.environ.get("MLP_BENCH_PEERS_PYTHON") or sys.executable))
    for key, value in figures.items():
        print(f"{key:>30}: {value}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
