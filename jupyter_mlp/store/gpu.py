"""GPU samples in the store: raw rows for the last hour, min/mean/max buckets before that.

Functions take an open ``Connection`` and leave commits to the caller. A day of sampling
at 0.5 s is ~170k raw rows per GPU; after compaction it is 1440 buckets plus the last hour raw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .db import Connection, dialect

_COLUMNS = (
    "gpu",
    "time",
    "span",
    "util",
    "util_min",
    "util_max",
    "mem_used",
    "mem_used_max",
    "proc_mem",
    "proc_mem_max",
    "power",
    "power_max",
    "temp",
    "sm_clock",
    "energy",
)


def insert_samples(conn: Connection, run_id: str, samples: Iterable[tuple[Any, ...]]) -> None:
    """Store samples as GpuSampler.drain() yields them:
    (gpu, time, util, mem_used, proc_mem, power_w, temp_c, sm_clock_mhz, energy_j or None)."""
    conn.executemany(
        "INSERT INTO gpu_samples (run_id, gpu, time, span, util, util_min, util_max,"
        " mem_used, mem_used_max, proc_mem, proc_mem_max, power, power_max, temp, sm_clock,"
        " energy) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (run_id, gpu, t, util, util, util, mem, mem, proc, proc, power, power, temp, clock, e)
            for gpu, t, util, mem, proc, power, temp, clock, e in samples
        ],
    )


def compact(
    conn: Connection,
    run_id: str,
    now: float,
    keep_full_s: float = 3600,
    bucket_s: float = 60,
) -> int:
    """Replace raw samples older than ``now - keep_full_s`` by buckets of ``bucket_s`` seconds.

    Buckets are aligned to multiples of ``bucket_s`` since the epoch and only whole buckets
    before the cut-off are made, so running it again changes nothing and raw samples of the last
    hour (plus at most one bucket) stay. A bucket row holds the mean in ``util``, ``mem_used``,
    ``proc_mem``, ``power``, ``temp`` and ``sm_clock``, the extremes in the ``*_min``/``*_max``
    columns, and in ``energy`` the counter at the bucket's first sample. Returns the number of
    raw rows removed.
    """
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    cutoff = (int((now - keep_full_s) // bucket_s)) * bucket_s
    old = "run_id = ? AND span = 0 AND time < ?"
    # A savepoint makes the pair atomic whether or not the caller holds a transaction.
    conn.execute("SAVEPOINT mlp_gpu_compact")
    try:
        conn.execute(
            "INSERT INTO gpu_samples (run_id, " + ", ".join(_COLUMNS) + ")"
            " SELECT run_id, gpu, bucket * ?, ?,"
            " AVG(util), MIN(util_min), MAX(util_max),"
            " AVG(mem_used), MAX(mem_used_max), AVG(proc_mem), MAX(proc_mem_max),"
            " AVG(power), MAX(power_max), AVG(temp), AVG(sm_clock), MIN(energy)"
            f" FROM (SELECT *, {dialect(conn).floor_int('time / ?')} AS bucket FROM gpu_samples"
            "       WHERE " + old + ") AS raw"
            " GROUP BY run_id, gpu, bucket",
            (bucket_s, bucket_s, bucket_s, run_id, cutoff),
        )
        removed = conn.execute("DELETE FROM gpu_samples WHERE " + old, (run_id, cutoff)).rowcount
    except BaseException:
        conn.execute("ROLLBACK TO mlp_gpu_compact")
        conn.execute("RELEASE mlp_gpu_compact")
        raise
    conn.execute("RELEASE mlp_gpu_compact")
    return removed


def series(
    conn: Connection,
    run_id: str,
    gpu: int | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """Samples and buckets of a run, by GPU then time; ``since`` keeps rows that end after it."""
    where = ["run_id = ?"]
    args: list[object] = [run_id]
    if gpu is not None:
        where.append("gpu = ?")
        args.append(gpu)
    if since is not None:
        where.append("time + span >= ?")
        args.append(since)
    # span breaks the tie should a bucket and a raw row share a start time
    sql = f"SELECT {', '.join(_COLUMNS)} FROM gpu_samples WHERE {' AND '.join(where)}"
    rows = conn.execute(sql + " ORDER BY gpu, time, span DESC", args).fetchall()
    return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
