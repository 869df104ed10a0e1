"""On a real GPU: what the tracker attributes to each cell, next to what nvidia-smi saw.

    python bench/gpu_check.py [--idle 5] [--busy 3]

Starts a tracked kernel (jupyter_client + ipykernel), runs an idle cell, a matmul loop of
--busy seconds, a memory allocation and a 50 ms cell, while `nvidia-smi -lms 100` logs the card.
Prints one JSON object: per cell the tracker's figures and nvidia-smi's mean/max over the same
window, and the sampler thread's own CPU cost (from /proc/self/task/<tid>/schedstat).
Needs torch with CUDA in the kernel's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CPU_PROBE = """
import os, threading, time
from jupyter_mlp.tracker import api
_t = next(t for t in threading.enumerate() if t.name == 'mlp-gpu-sampler')
def _cpu_ns(tid=_t.native_id):
    with open(f'/proc/self/task/{tid}/schedstat') as f:
        return int(f.read().split()[0])
_c0, _w0 = _cpu_ns(), time.perf_counter()
time.sleep(%(idle)s)
print('MLPCPU', (_cpu_ns() - _c0) / 1e9, time.perf_counter() - _w0)
"""


def smi_logger(path: Path) -> subprocess.Popen | None:
    if shutil.which("nvidia-smi") is None:
        return None
    return subprocess.Popen(
        ["nvidia-smi", "--query-gpu=timestamp,utilization.gpu,memory.used,power.draw",
         "--format=csv,noheader,nounits", "-lms", "100"],
        stdout=open(path, "w"), stderr=subprocess.DEVNULL,
    )  # fmt: skip


def smi_rows(path: Path) -> list[tuple[float, float, float, float]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            ts = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            rows.append((ts, float(parts[1]), float(parts[2]) * 2**20, float(parts[3])))
        except (ValueError, IndexError):
            continue
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--busy", type=float, default=3.0)
    ap.add_argument("--device", default="cuda", help="torch device (cpu: a dry run of this script)")
    args = ap.parse_args()
    from jupyter_client import KernelManager

    from jupyter_mlp.store import Store
    from jupyter_mlp.store import runs as run_store

    home = tempfile.mkdtemp(prefix="mlp-gpu-check-")
    log = Path(home) / "smi.csv"
    smi = smi_logger(log)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "MLP_HOME": home})
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    out: list[str] = []

    def run(code: str, cell_id: str) -> None:
        msg = kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                             "user_expressions": {}, "allow_stdin": False, "stop_on_error": False},
                             metadata={"cellId": cell_id})  # fmt: skip
        kc.shell_channel.send(msg)
        while True:
            m = kc.get_iopub_msg(timeout=300)
            if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            if m["msg_type"] == "error":
                raise RuntimeError(
                    f"cell {cell_id} failed: {m['content']['ename']}: {m['content']['evalue']}"
                )
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return

    try:
        run("%load_ext jupyter_mlp\n%mlp_track gpu-check --project gpu-check", "track")
        run(
            f"import torch, time\nDEV = {args.device!r}\nx = torch.randn(8192, 8192, device=DEV)\nsync = torch.cuda.synchronize if DEV == 'cuda' else (lambda: None)\nsync()",
            "setup",
        )
        run(f"time.sleep({args.idle})", "idle")
        run(
            f"t0 = time.time()\nwhile time.time() - t0 < {args.busy}:\n    y = x @ x\n    sync()",
            "busy",
        )
        run(
            "big = torch.empty(16 * 2**30 if DEV == 'cuda' else 2**28, dtype=torch.uint8, device=DEV)\nbig.fill_(1)\nsync()\ntime.sleep(1)",
            "alloc",
        )
        run("t0 = time.time()\nwhile time.time() - t0 < 0.05:\n    y = x @ x\n    sync()", "short")
        run(CPU_PROBE % {"idle": args.idle * 2}, "sampler-cpu")
        run("%mlp_track stop", "stop")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
        if smi is not None:
            smi.terminate()
            smi.wait()

    conn = Store(home).connect()
    (listed,) = run_store.list_runs(conn)
    run_rec = run_store.get_run(conn, listed["id"])
    rows = smi_rows(log) if smi is not None else []
    cells = {}
    for cell in run_rec["cells"]:
        start, end = cell["started_at"], cell["started_at"] + cell["duration"]
        window = [r for r in rows if start <= r[0] <= end]
        seen = None
        if window:
            seen = {"util_mean": round(sum(r[1] for r in window) / len(window), 1),
                   "util_max": max(r[1] for r in window), "mem_max": max(r[2] for r in window),
                   "power_mean_w": round(sum(r[3] for r in window) / len(window), 1),
                   "samples": len(window)}  # fmt: skip
        cells[cell["cell_id"]] = {
            "duration_s": round(cell["duration"], 3),
            "tracker": (cell["gpu"] or {}).get("0"),
            "nvidia_smi": seen,
        }
    cpu_line = next(line for line in "".join(out).splitlines() if line.startswith("MLPCPU"))
    cpu_s, wall_s = map(float, cpu_line.split()[1:])
    result = {
        "device": (run_rec["gpu"].get("devices") or [{}])[0].get("name"),
        "driver": run_rec["gpu"].get("driver_version"), "cuda": run_rec["gpu"].get("cuda_version"),
        "cells": cells, "run": run_rec["gpu"].get("run"), "notes": run_rec["gpu"].get("notes"),
        "sampler_cpu_percent_of_core": round(100 * cpu_s / wall_s, 3), "interval_s": run_rec["gpu"].get("interval"),
        "goals": {"busy_util_mean>=80": (cells["busy"]["tracker"] or {}).get("util_mean", 0) >= 80,
                  "idle_util_mean<=5": (cells["idle"]["tracker"] or {}).get("util_mean", 100) <= 5,
                  "sampler_cpu<0.5%": 100 * cpu_s / wall_s < 0.5},
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
