"""Tracker figures: per-cell overhead, log_metric rate, durable metric rate, start and import time,
a run's start to finish (track -> log_metric -> finish) warm in a process and first in a fresh one.

    python bench/tracker.py [--cells 5000] [--points 1000000] [--kernels 5]

Prints one figure per line and, last, one JSON object with every figure. Peers (MLflow, W&B)
are measured beside ours when they are installed in this environment.
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


def peers(points: int) -> dict:
    out: dict = {}
    try:
        import mlflow  # noqa: F401
    except ImportError:
        out["mlflow_log_metric_per_s"] = None
    else:  # pragma: no cover - only where MLflow is installed
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
            with mlflow.start_run():
                n = min(points, 2000)
                t = time.perf_counter()
                for i in range(n):
                    mlflow.log_metric("loss", 0.5, step=i)
                out["mlflow_log_metric_per_s"] = round(n / (time.perf_counter() - t))
    try:
        import wandb  # noqa: F401
    except ImportError:
        out["wandb_log_per_s"] = None
    return out


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
        figures.update(peers(args.points))
    for key, value in figures.items():
        print(f"{key:>24}: {value}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
