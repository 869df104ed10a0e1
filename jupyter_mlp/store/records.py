"""Writing a tracker batch (cells, metrics, params, outputs, GPU samples, run fields) in one
transaction, and reading a run's records back. The same batch shape arrives from kernels on this
machine and, over HTTP, from remote trackers."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from array import array
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from ..model import FINAL_STATUSES
from . import events, tokens

# Run columns a batch may set; the JSON ones are encoded here.
RUN_COLUMNS = {
    "project", "name", "status", "kind", "parent_id", "pipeline_run_id", "stage", "notebook",
    "snapshot", "end_snapshot", "output_notebook", "kernel", "host", "user", "pid", "git", "env", "gpu",
    "created_at", "started_at", "ended_at", "heartbeat_at", "pinned", "tags", "notes", "error",
}  # fmt: skip
JSON_COLUMNS = {"git", "env", "gpu", "tags", "error"}
# What a remote tracker may set on its own run (not its project, kind, lineage or pin).
REMOTE_RUN_COLUMNS = {
    "name", "status", "notebook", "snapshot", "end_snapshot", "kernel", "host", "user", "pid",
    "git", "env", "gpu", "started_at", "ended_at", "heartbeat_at", "tags", "error",
}  # fmt: skip
JOB_OWNED = {"status", "started_at", "ended_at", "pid", "heartbeat_at", "error"}
REMOTE_STATUSES = {"running", "finished", "failed", "interrupted"}
BATCH_KEYS = {"run", "heartbeat", "params", "metrics", "cells", "outputs", "gpu", "compact_gpu"}


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _num_text(value: Any) -> tuple[float | None, str | None]:
    """The numeric and string forms of a JSON value, for filters and sorting."""
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, (int, float)):
        return float(value), None
    if isinstance(value, str):
        return None, value
    return None, None


def upsert_run(conn: sqlite3.Connection, run_id: str, fields: dict[str, Any]) -> bool:
    """Update the run's fields, or create it; returns True when it was created."""
    unknown = set(fields) - RUN_COLUMNS
    if unknown:
        raise ValueError(f"unknown run fields: {', '.join(sorted(unknown))}")
    values = {
        k: (json.dumps(v) if k in JSON_COLUMNS and v is not None else v) for k, v in fields.items()
    }
    if values:
        cur = conn.execute(
            f"UPDATE runs SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
            [*values.values(), run_id],
        )
        if cur.rowcount:
            return False
    values.setdefault("created_at", time.time())
    values.setdefault("status", "running")
    cols = ["id", *values]
    conn.execute(
        f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [run_id, *values.values()],
    )
    return True


def apply_batch(conn: sqlite3.Connection, run_id: str, batch: dict[str, Any]) -> None:
    """Write one batch; the caller holds the write transaction."""
    now = time.time()
    run_fields = dict(batch.get("run") or {})
    if batch.get("heartbeat"):
        run_fields["heartbeat_at"] = batch["heartbeat"]
    if run_fields:
        if run_fields.get("status") in FINAL_STATUSES:
            tokens.revoke(conn, run_id)
        if upsert_run(conn, run_id, run_fields) or "status" in run_fields:
            events.append(conn, run_id, "run", {"status": run_fields.get("status")}, now)
        elif set(run_fields) - {"heartbeat_at"}:
            events.append(conn, run_id, "run", {"fields": sorted(run_fields)}, now)

    params = batch.get("params")
    if params:
        rows = []
        for key, value_json, type_name, source in params:
            num, text = _num_text(json.loads(value_json))
            rows.append((run_id, key, value_json, type_name, num, text, source))
        conn.executemany(
            "INSERT INTO params (run_id, key, value, type, num, text, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, key) DO UPDATE SET "
            "value = excluded.value, type = excluded.type, num = excluded.num, "
            "text = excluded.text, source = excluded.source",
            rows,
        )
        events.append(conn, run_id, "params", {"keys": [r[1] for r in rows]}, now)

    metrics = batch.get("metrics")
    if metrics:
        write_metrics(conn, run_id, metrics)
        events.append(conn, run_id, "metrics", {"count": len(metrics)}, now)

    cells = batch.get("cells")
    if cells:
        write_cells(conn, run_id, cells)
        events.append(conn, run_id, "cells", {"count": len(cells), "last_seq": cells[-1][0]}, now)

    outputs = batch.get("outputs")
    if outputs:
        rows = []
        for name, kind, value_json, blob, size, filename, created in outputs:
            num, text = _num_text(json.loads(value_json)) if kind == "value" else (None, None)
            rows.append((run_id, name, kind, value_json, num, text, blob, size, filename, created))
        conn.executemany(
            "INSERT OR REPLACE INTO outputs (run_id, name, kind, value, num, text, blob, size, "
            "filename, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        events.append(conn, run_id, "outputs", {"names": [r[1] for r in rows]}, now)

    samples = batch.get("gpu")
    if samples or batch.get("compact_gpu"):
        from . import gpu as gpu_store

        if samples:
            gpu_store.insert_samples(conn, run_id, samples)
        if batch.get("compact_gpu"):  # long runs: the last hour raw, min/mean/max buckets before
            gpu_store.compact(conn, run_id, now)


_KEY, _STEP, _VALUE, _TIME = (itemgetter(i) for i in range(4))


class BadBatch(ValueError):
    pass


def batch_rows(batch: dict[str, Any]) -> int:
    """How many records a batch carries (what an ingest size limit counts)."""
    return sum(len(batch.get(k) or ()) for k in ("params", "metrics", "cells", "outputs", "gpu"))


def apply_remote_batch(
    conn: sqlite3.Connection, run_id: str, seq: int, batch: dict[str, Any]
) -> bool:
    """Apply a batch sent over HTTP once: a replay of an applied `seq` is a no-op (returns False).
    Raises BadBatch for what a remote tracker may not write; the caller's transaction then
    rolls back, so nothing is half-written."""
    if not isinstance(batch, dict) or set(batch) - BATCH_KEYS:
        raise BadBatch(
            f"unknown batch keys: {sorted(set(batch) - BATCH_KEYS) if isinstance(batch, dict) else batch!r}"
        )
    fields = batch.get("run") or {}
    if not isinstance(fields, dict) or set(fields) - REMOTE_RUN_COLUMNS:
        raise BadBatch(f"a remote tracker may not set {sorted(set(fields) - REMOTE_RUN_COLUMNS)}")
    if "status" in fields and fields["status"] not in REMOTE_STATUSES:
        raise BadBatch(f"status must be one of {sorted(REMOTE_STATUSES)}")
    if (fields.keys() & JOB_OWNED or "heartbeat" in batch) and conn.execute(
        "SELECT 1 FROM jobs WHERE run_id = ?", (run_id,)
    ).fetchone():
        # a job's run: its status is the job's (reported through /ingest/job); a tracker inside
        # the notebook that stops its run has not ended the job
        run = {k: v for k, v in fields.items() if k not in JOB_OWNED}
        batch = {k: v for k, v in batch.items() if k != "heartbeat"} | {"run": run}
    cur = conn.execute(
        "INSERT OR IGNORE INTO ingested (run_id, seq, time) VALUES (?, ?, ?)",
        (run_id, int(seq), time.time()),
    )
    if not cur.rowcount:
        return False
    try:
        apply_batch(conn, run_id, batch)
    except (TypeError, ValueError, KeyError) as exc:
        raise BadBatch(f"malformed batch: {exc}") from None
    return True


def write_metrics(conn: sqlite3.Connection, run_id: str, points: list) -> None:
    """points: (key, step, value, time), written as one packed chunk per key."""
    if not points:
        return
    keys = list(map(_KEY, points))
    distinct = set(keys)
    if len(distinct) == 1:
        groups = {keys[0]: points}
    else:
        groups = {k: [] for k in distinct}
        for point in points:
            groups[point[0]].append(point)
    chunks, latest = [], []
    for key, group in groups.items():
        s_arr = array("q", list(map(_STEP, group)))  # array(list) is 2x array(iterator)
        v_arr = array("d", list(map(_VALUE, group)))
        t_arr = array("d", list(map(_TIME, group)))
        top = max(s_arr)
        last = len(s_arr) - 1 - s_arr[::-1].index(top)  # the latest point logged at the top step
        chunks.append(
            (
                run_id,
                key,
                min(s_arr),
                top,
                len(s_arr),
                s_arr.tobytes(),
                v_arr.tobytes(),
                t_arr.tobytes(),
            )
        )
        value = v_arr[last]
        latest.append((run_id, key, top, None if value != value else value, t_arr[last]))
    conn.executemany(
        "INSERT INTO metrics (run_id, key, first_step, last_step, count, steps, vals, times) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        chunks,
    )
    conn.executemany(
        "INSERT INTO metrics_latest (run_id, key, step, value, time) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(run_id, key) DO UPDATE SET step = excluded.step, value = excluded.value, "
        "time = excluded.time WHERE excluded.step >= metrics_latest.step",
        latest,
    )


def write_cells(conn: sqlite3.Connection, run_id: str, cells: list) -> None:
    """cells: (seq, cell_id, execution_count, source, started_at, duration, status, error, gpu);
    the source text is stored once per distinct text."""
    texts = {}
    rows = []
    for seq, cell_id, count, source, started, duration, status, error, gpu in cells:
        digest = text_hash(source or "")
        texts[digest] = source or ""
        rows.append((
            run_id, seq, cell_id, count, digest, started, duration, status,
            json.dumps(error) if error is not None else None,
            json.dumps(gpu) if gpu is not None else None,
        ))  # fmt: skip
    conn.executemany("INSERT OR IGNORE INTO texts (hash, text) VALUES (?, ?)", texts.items())
    conn.executemany(
        "INSERT OR REPLACE INTO cells (run_id, seq, cell_id, execution_count, source, started_at, "
        "duration, status, error, gpu) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


# --- reading -----------------------------------------------------------------------------------


def metric_value(value: float | None) -> float:
    return math.nan if value is None else value


def params_of(conn: sqlite3.Connection, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    ids = list(run_ids)
    for chunk in _chunks(ids):
        for row in conn.execute(
            f"SELECT run_id, key, value FROM params WHERE run_id IN ({_marks(chunk)}) ORDER BY key",
            chunk,
        ):
            out.setdefault(row[0], {})[row[1]] = json.loads(row[2])
    return out


def param_details(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    return [
        {"key": r[0], "value": json.loads(r[1]), "type": r[2], "source": r[3]}
        for r in conn.execute(
            "SELECT key, value, type, source FROM params WHERE run_id = ? ORDER BY key", (run_id,)
        )
    ]


def latest_metrics_of(conn: sqlite3.Connection, run_ids: Iterable[str]) -> dict[str, dict]:
    out: dict[str, dict[str, float]] = {}
    ids = list(run_ids)
    for chunk in _chunks(ids):
        for row in conn.execute(
            f"SELECT run_id, key, value FROM metrics_latest WHERE run_id IN ({_marks(chunk)}) "
            "ORDER BY key",
            chunk,
        ):
            out.setdefault(row[0], {})[row[1]] = metric_value(row[2])
    return out


def cell_counts(conn: sqlite3.Connection, run_ids: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    ids = list(run_ids)
    for chunk in _chunks(ids):
        for run_id, count in conn.execute(
            f"SELECT run_id, COUNT(*) FROM cells WHERE run_id IN ({_marks(chunk)}) GROUP BY run_id",
            chunk,
        ):
            out[run_id] = count
    return out


def metric_series(conn: sqlite3.Connection, run_id: str, key: str) -> list[tuple]:
    """(step, value, time) in step order (points logged at the same step keep their order)."""
    points: list[tuple] = []
    for s_blob, v_blob, t_blob in conn.execute(
        "SELECT steps, vals, times FROM metrics WHERE run_id = ? AND key = ? ORDER BY rowid",
        (run_id, key),
    ):
        s_arr, v_arr, t_arr = array("q"), array("d"), array("d")
        s_arr.frombytes(s_blob)
        v_arr.frombytes(v_blob)
        t_arr.frombytes(t_blob)
        points.extend(zip(s_arr, v_arr, t_arr))
    points.sort(key=lambda p: p[0])
    return points


def metric_count(conn: sqlite3.Connection, run_id: str, key: str | None = None) -> int:
    sql = "SELECT COALESCE(SUM(count), 0) FROM metrics WHERE run_id = ?"
    args: list[object] = [run_id]
    if key is not None:
        sql += " AND key = ?"
        args.append(key)
    return conn.execute(sql, args).fetchone()[0]


def metric_keys(conn: sqlite3.Connection, run_id: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT key FROM metrics_latest WHERE run_id = ? ORDER BY key", (run_id,)
        )
    ]


def outputs_of(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute(
        "SELECT name, kind, value, blob, size, filename, created_at FROM outputs "
        "WHERE run_id = ? ORDER BY created_at, name",
        (run_id,),
    ):
        item: dict[str, Any] = {"name": r[0], "kind": r[1], "created_at": r[6]}
        if r[1] == "value":
            item["value"] = json.loads(r[2])
        else:
            item.update(blob=r[3], size=r[4], filename=r[5])
        out.append(item)
    return out


def cells_of(conn: sqlite3.Connection, run_id: str, with_source: bool = True) -> list[dict]:
    rows = conn.execute(
        "SELECT c.seq, c.cell_id, c.execution_count, t.text, c.started_at, c.duration, c.status, "
        "c.error, c.gpu FROM cells c LEFT JOIN texts t ON t.hash = c.source "
        "WHERE c.run_id = ? ORDER BY c.seq",
        (run_id,),
    )
    cells = []
    for r in rows:
        cell = {
            "seq": r[0], "cell_id": r[1], "execution_count": r[2], "started_at": r[4],
            "duration": r[5], "status": r[6],
            "error": json.loads(r[7]) if r[7] else None,
            "gpu": json.loads(r[8]) if r[8] else None,
        }  # fmt: skip
        if with_source:
            cell["source"] = r[3]
        cells.append(cell)
    return cells


def _marks(items: list) -> str:
    return ", ".join("?" * len(items))


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i : i + size]
