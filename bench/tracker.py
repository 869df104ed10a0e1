"""Tracker figures: per-cell overhead, log_metric rate, durable metric rate, start and import time.

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


def cell_overhead_us(n: int) -> dict:
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()

    def per_cell() -> float:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            ip.run_cell("x = 1", store_history=True)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e6

    per_cell()  # warm up
    bare = per_cell()
    ip.run_line_magic("load_ext", "jupyter_mlp")
    ip.run_line_magic("mlp_track", "bench-cells --no-gpu")
    tracked = per_cell()
    import jupyter_mlp as mlp

    mlp.finish()
    return {"bare_run_cell_us": round(bare, 1), "tracked_run_cell_us": round(tracked, 1),
            "cell_overhead_us": round(tracked - bare, 1)}  # fmt: skip


def metric_rates(points: int) -> dict:
    import jupyter_mlp as mlp

    mlp.track("bench-metrics", gpu=False, status_view=_Quiet())
    log = mlp.log_metric
    t = time.perf_counter()
    for i in range(points):
        log("loss", 0.5)
    logged = time.perf_counter() - t
    mlp.flush()
    stored = time.perf_counter() - t
    mlp.finish()
    return {"log_metric_per_s": round(points / logged), "stored_metric_per_s": round(points / stored)}


class _Quiet:
    def show(self, s): pass
    def refresh(self, s): pass
    def close(self, s): pass


def kernel_start_figures(kernels: int) -> dict:
    from jupyter_client import KernelManager

    code = (
        "import time as _t, sys as _s\n"
        "_a = _t.perf_counter(); import jupyter_mlp; _b = _t.perf_counter()\n"
        "get_ipython().run_line_magic('load_ext', 'jupyter_mlp'); _c = _t.perf_counter()\n"
    )
    track = (
        "_d = _t.perf_counter(); get_ipython().run_line_magic('mlp_track', 'bench-start'); "
        "_e = _t.perf_counter()\n"
        "print('MLPBENCH', (_b - _a) * 1e3, (_c - _b) * 1e3, (_e - _d) * 1e3)"
    )
    imports, loads, starts = [], [], []
    for _ in range(kernels):
        km = KernelManager(kernel_name="python3")
        km.start_kernel(env={**os.environ})
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        try:
            kc.execute_interactive(code, timeout=60, output_hook=lambda m: None)
            out = []
            kc.execute_interactive(
                track, timeout=60,
                output_hook=lambda m: out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
            )  # fmt: skip
            line = next(x for x in "".join(out).splitlines() if x.startswith("MLPBENCH"))
            a, b, c = map(float, line.split()[1:])
            imports.append(a)
            loads.append(b)
            starts.append(c)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return {"import_ms": round(statistics.median(imports), 1),
            "load_ext_ms": round(statistics.median(loads), 1),
            "track_start_ms": round(statistics.median(starts), 1)}  # fmt: skip


def peers(points: int) -> dict:
    out: dict = {}
    try:
        import mlflow  # noqa: F401
    except ImportError:
        out["mlflow_log_metric_per_s"] = None
    else:  # pragma: no cover - only where MLflow is installed
        import mlflow

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
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLP_HOME"] = home
        figures: dict = {}
        figures.update(cell_overhead_us(args.cells))
        figures.update(metric_rates(args.points))
        figures.update(kernel_start_figures(args.kernels))
        figures.update(peers(args.points))
    for key, value in figures.items():
        print(f"{key:>24}: {value}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
