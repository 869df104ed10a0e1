"""Series for charts, downsampled in the store so a browser never receives a million points.

Each bucket keeps its last value and its min and max, so spikes stay visible at any zoom."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import gpu as gpu_store
from .db import Connection
from .records import metric_series


def _buckets(n: int, points: int) -> list[range]:
    size = math.ceil(n / points)
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def metric(
    conn: Connection, run_id: str, key: str, points: int = 1000,
    start: float | None = None, end: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """{"key", "total", "points": [[step, value, min, max, time], ...]} for steps in [start, end]."""
    rows = metric_series(conn, run_id, key)
    if start is not None:
        rows = [r for r in rows if r[0] >= start]
    if end is not None:
        rows = [r for r in rows if r[0] <= end]
    points = max(2, min(int(points), 100_000))
    out = []
    if len(rows) <= points:
        out = [[s, v, v, v, t] for s, v, t in rows]
    else:
        for bucket in _buckets(len(rows), points):
            chunk = [rows[i] for i in bucket]
            finite = [v for _, v, _ in chunk if not math.isnan(v)]
            last = chunk[-1]
            out.append([last[0], last[1], min(finite) if finite else math.nan,
                        max(finite) if finite else math.nan, last[2]])  # fmt: skip
    return {"key": key, "total": len(rows), "points": out}


def gpu(
    conn: Connection, run_id: str, points: int = 1000, gpu_index: int | None = None,
    start: float | None = None, end: float | None = None,
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Per GPU: [{time, util, util_min, util_max, mem_used, mem_used_max, proc_mem, power, temp,
    sm_clock}] downsampled by time (mean in a bucket, min/max kept)."""
    rows = gpu_store.series(conn, run_id, gpu=gpu_index, since=start)
    if end is not None:
        rows = [r for r in rows if r["time"] <= end]
    per_gpu: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        per_gpu.setdefault(str(row["gpu"]), []).append(row)
    points = max(2, min(int(points), 100_000))
    result = {}
    for index, samples in per_gpu.items():
        if len(samples) <= points:
            result[index] = samples
            continue
        merged = []
        for bucket in _buckets(len(samples), points):
            chunk = [samples[i] for i in bucket]
            merged.append(_merge_gpu(chunk))
        result[index] = merged
    return result


def _mean(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _extreme(values: list[Any], fn: Callable[[list[Any]], Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return fn(vals) if vals else None


def _merge_gpu(chunk: list[dict[str, Any]]) -> dict[str, Any]:
    def col(name: str) -> list[Any]:
        return [c.get(name) for c in chunk]

    return {
        "gpu": chunk[0]["gpu"], "time": chunk[0]["time"],
        "span": chunk[-1]["time"] + (chunk[-1].get("span") or 0) - chunk[0]["time"],
        "util": _mean(col("util")), "util_min": _extreme(col("util_min"), min),
        "util_max": _extreme(col("util_max"), max), "mem_used": _mean(col("mem_used")),
        "mem_used_max": _extreme(col("mem_used_max"), max), "proc_mem": _mean(col("proc_mem")),
        "proc_mem_max": _extreme(col("proc_mem_max"), max), "power": _mean(col("power")),
        "power_max": _extreme(col("power_max"), max), "temp": _mean(col("temp")),
        "sm_clock": _mean(col("sm_clock")),
    }  # fmt: skip
