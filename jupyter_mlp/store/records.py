"""Writing a tracker batch (cells, metrics, params, outputs, GPU samples, run fields) in one
transaction, and reading a run's records back. The same batch shape arrives from kernels on this
machine and, over HTTP, from remote trackers."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter

from .. import records
from ..model import DEFAULT_PROJECT, FINAL_STATUSES, LOST, sha256
from ..records import (
    TIME_MAX,
    TIME_MIN,
    RecordError,
    check_batch,
    check_metrics,
    check_run_fields,
    fast_key,
    integer,
)
from . import events, tokens, transitions
from .db import STORE_FAULTS, Connection, StoreUnavailable, dialect

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any

# Run columns a batch may set; the JSON ones are encoded here.
RUN_COLUMNS = {
    "project", "name", "status", "kind", "parent_id", "pipeline_run_id", "stage", "notebook",
    "snapshot", "end_snapshot", "output_notebook", "kernel", "host", "user", "owner", "pid", "git",
    "env", "gpu", "created_at", "started_at", "ended_at", "heartbeat_at", "pinned", "tags", "notes", "error",
}  # fmt: skip
JSON_COLUMNS = {"git", "env", "gpu", "tags", "error"}
# What a remote tracker may set on its own run (not its project, kind, lineage or pin).
REMOTE_RUN_COLUMNS = {
    "name", "status", "notebook", "snapshot", "end_snapshot", "kernel", "host", "user", "pid",
    "git", "env", "gpu", "started_at", "ended_at", "heartbeat_at", "tags", "error",
}  # fmt: skip
JOB_OWNED = {"status", "started_at", "ended_at", "pid", "heartbeat_at", "error"}
REMOTE_STATUSES = {"running", "finished", "failed", "interrupted"}
BATCH_KEYS = set(records.BATCH_KEYS)


def text_hash(text: str) -> str:
    return sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _num_text(value: Any) -> tuple[float | None, str | None]:
    """The numeric and string forms of a JSON value, for filters and sorting."""
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, (int, float)):
        return float(value), None
    if isinstance(value, str):
        return None, value
    return None, None


def upsert_run(conn: Connection, run_id: str, fields: dict[str, Any]) -> bool:
    """Update the run's fields, or create it; returns True when it was created. A heartbeat
    never moves back (a replayed batch carries its original, older time) nor past now."""
    unknown = set(fields) - RUN_COLUMNS
    if unknown:
        raise ValueError(f"unknown run fields: {', '.join(sorted(unknown))}")
    fields = dict(fields)
    beat = fields.pop("heartbeat_at", _UNSET)
    values = {
        k: (json.dumps(v) if k in JSON_COLUMNS and v is not None else v) for k, v in fields.items()
    }
    created = conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None
    if created:
        values.setdefault("created_at", time.time())
        values.setdefault("status", "running")
        if values.get("owner") is None and values.get("user") is not None:
            values["owner"] = values["user"]  # a run recorded straight into the store: its user
        cols = ["id", *map(column, values)]
        conn.execute(
            f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [run_id, *values.values()],
        )
    elif values:
        conn.execute(
            f"UPDATE runs SET {', '.join(f'{column(c)} = ?' for c in values)} WHERE id = ?",
            [*values.values(), run_id],
        )
    if beat is None:
        conn.execute("UPDATE runs SET heartbeat_at = NULL WHERE id = ?", (run_id,))
    elif beat is not _UNSET:
        beat = min(float(beat), time.time())
        conn.execute(
            f"UPDATE runs SET heartbeat_at = CASE WHEN {dialect(conn).is_number('heartbeat_at')} "
            "AND heartbeat_at > ? THEN heartbeat_at ELSE ? END WHERE id = ?",
            (beat, beat, run_id),
        )
    return created


def column(name: str) -> str:
    """A run column as SQL names it: `user` is a reserved word on PostgreSQL, quoted on both."""
    return '"user"' if name == "user" else name


_UNSET = object()
_LOGGED: set[str] = set()  # runs whose refused records were logged (once per process)
# A run that really ended: its tokens stop working. `lost` is not one of them: a run marked lost
# during an outage still takes its own tracker's spooled records and its true end state.
ENDED_STATUSES = frozenset(FINAL_STATUSES - {LOST})
# Errors that are about the store (full, read-only, locked, corrupt, unreachable), not about a
# row: the whole batch waits for the store; any other error is the row's and refuses it alone.


def _is_store_fault(exc: BaseException) -> bool:
    return isinstance(exc, (*STORE_FAULTS, StoreUnavailable)) or (
        isinstance(exc, sqlite3.DatabaseError)
        and not isinstance(exc, (sqlite3.IntegrityError, sqlite3.InterfaceError,
                                 sqlite3.ProgrammingError, sqlite3.DataError))
    )  # fmt: skip


def _section(
    conn: Connection,
    name: str,
    rows: list[Any],
    write: Callable[[list[Any]], object],
    errors: list[RecordError],
) -> list[Any]:
    """Write one section in a savepoint; when a row fails for a reason of its own, write the rows
    one by one and refuse the failing ones alone. Returns the rows written."""
    conn.execute("SAVEPOINT mlp_section")
    try:
        write(rows)
    except Exception as exc:
        conn.execute("ROLLBACK TO mlp_section")
        if _is_store_fault(exc):
            conn.execute("RELEASE mlp_section")
            raise
        kept = []
        for i, row in enumerate(rows):
            conn.execute("SAVEPOINT mlp_row")
            try:
                write([row])
            except Exception as row_exc:
                conn.execute("ROLLBACK TO mlp_row")
                conn.execute("RELEASE mlp_row")
                if _is_store_fault(row_exc):
                    conn.execute("RELEASE mlp_section")
                    raise
                errors.append(RecordError(f"{name}[{i}]", f"could not be stored: {row_exc}"))
            else:
                conn.execute("RELEASE mlp_row")
                kept.append(row)
        rows = kept
    conn.execute("RELEASE mlp_section")
    return rows


def apply_batch(conn: Connection, run_id: str, batch: dict[str, Any]) -> list[RecordError]:
    """Write one batch; the caller holds the write transaction. Every record is checked against
    its definition (`jupyter_mlp.records`); a bad one is refused alone and returned, with the
    field it concerns; the rest is written. Raises only for a fault of the store itself
    (db.STORE_FAULTS: full, read-only, locked, unreachable), when the whole batch must wait."""
    now = time.time()
    if not isinstance(batch, dict):
        return [RecordError("batch", f"must be an object, not {type(batch).__name__}")]
    metrics = batch.get("metrics")
    batch, errors = check_batch({k: v for k, v in batch.items() if k != "metrics"}, max_rows=None)
    run_fields = dict(batch.get("run") or {})
    if batch.get("heartbeat"):
        run_fields["heartbeat_at"] = batch["heartbeat"]
    if run_fields:

        def write_run(rows: list[Any]) -> None:
            fields = transitions.guard_run_fields(conn, run_id, rows[0])
            status = fields.get("status")
            if status is not None and status != LOST and "error" not in fields:
                # a run marked lost during an outage comes back: its RunLost note goes
                row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row is not None and row[0] == LOST:
                    fields = {**fields, "error": None}
                    if status == "running":
                        fields.setdefault("ended_at", None)
            if status in ENDED_STATUSES:
                tokens.revoke(conn, run_id)
            if upsert_run(conn, run_id, fields) or "status" in fields:
                events.append(conn, run_id, "run", {"status": fields.get("status")}, now)
            elif set(fields) - {"heartbeat_at"}:
                events.append(conn, run_id, "run", {"fields": sorted(fields)}, now)

        if not _section(conn, "run", [run_fields], write_run, []):
            # the fields together failed: each alone, so that one cannot stop the others
            for column, value in run_fields.items():
                if not _section(conn, f"run.{column}", [{column: value}], write_run, []):
                    errors.append(RecordError(f"run.{column}", "could not be stored"))

    params = batch.get("params")
    if params:

        def write_params(rows: list[Any]) -> None:
            out = []
            for key, value_json, type_name, source in rows:
                num, text = _num_text(json.loads(value_json))
                out.append((run_id, key, value_json, type_name, num, text, source))
            conn.executemany(
                "INSERT INTO params (run_id, key, value, type, num, text, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, key) DO UPDATE SET "
                "value = excluded.value, type = excluded.type, num = excluded.num, "
                "text = excluded.text, source = excluded.source",
                out,
            )

        params = _section(conn, "params", params, write_params, errors)
        if params:
            events.append(conn, run_id, "params", {"keys": [r[0] for r in params]}, now)

    if metrics:
        count = write_metrics(conn, run_id, metrics, errors)
        if count:
            events.append(conn, run_id, "metrics", {"count": count}, now)

    cells = batch.get("cells")
    if cells:
        cells = _section(conn, "cells", cells, lambda rows: write_cells(conn, run_id, rows), errors)
        if cells:
            events.append(
                conn, run_id, "cells", {"count": len(cells), "last_seq": cells[-1][0]}, now
            )

    cell_gpu = batch.get("cell_gpu")
    if cell_gpu:  # figures only: the row (status, times) stays the engine's

        def write_cell_gpu(rows: list[Any]) -> None:
            conn.executemany(
                "UPDATE cells SET gpu = ? WHERE run_id = ? AND seq = ?",
                [(json.dumps(figures), run_id, seq) for seq, figures in rows],
            )

        if _section(conn, "cell_gpu", cell_gpu, write_cell_gpu, errors):
            events.append(conn, run_id, "cells", {"gpu": len(cell_gpu)}, now)

    outputs = batch.get("outputs")
    if outputs:

        def write_outputs(rows: list[Any]) -> None:
            out = []
            for name, kind, value_json, blob, size, filename, created in rows:
                num, text = _num_text(json.loads(value_json)) if kind == "value" else (None, None)
                out.append(
                    (run_id, name, kind, value_json, num, text, blob, size, filename, created)
                )
            conn.executemany(
                "INSERT INTO outputs (run_id, name, kind, value, num, text, blob, size, filename, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, name) DO "
                "UPDATE SET kind = excluded.kind, value = excluded.value, num = excluded.num, "
                "text = excluded.text, blob = excluded.blob, size = excluded.size, "
                "filename = excluded.filename, created_at = excluded.created_at",
                out,
            )

        outputs = _section(conn, "outputs", outputs, write_outputs, errors)
        if outputs:
            events.append(conn, run_id, "outputs", {"names": [r[0] for r in outputs]}, now)

    samples = batch.get("gpu")
    if samples or batch.get("compact_gpu"):
        from . import gpu as gpu_store

        if samples:
            _section(
                conn, "gpu", samples, lambda rows: gpu_store.insert_samples(conn, run_id, rows),
                errors,
            )  # fmt: skip
        if batch.get("compact_gpu"):  # long runs: the last hour raw, min/mean/max buckets before
            _section(conn, "compact_gpu", [1], lambda _: gpu_store.compact(conn, run_id, now), [])
    if errors and run_id not in _LOGGED:  # callers that do not show them leave a trace, once
        import logging

        _LOGGED.add(run_id)

        logging.getLogger("jupyter_mlp.store").warning(
            "run %s: %d records refused, first: %s", run_id, len(errors), errors[0]
        )
    return errors


_KEY, _STEP, _VALUE, _TIME = (itemgetter(i) for i in range(4))


class BadBatch(ValueError):
    pass


def batch_rows(batch: dict[str, Any]) -> int:
    """How many records a batch carries (what an ingest size limit counts)."""
    return sum(len(batch.get(k) or ()) for k in ("params", "metrics", "cells", "outputs", "gpu"))


def apply_remote_batch(conn: Connection, run_id: str, seq: int, batch: dict[str, Any]) -> bool:
    """`ingest_batch` for callers that only need to know whether it was applied (False: a replay
    of an applied `seq`). Raises BadBatch only when the body is not a batch at all."""
    return ingest_batch(conn, run_id, seq, batch)[0]


def ingest_batch(
    conn: Connection, run_id: str, seq: Any, batch: Any
) -> tuple[bool, list[RecordError]]:
    """Apply a batch sent over HTTP with a run token, once: a replay of an applied `seq` is a
    no-op (applied False). What a token may not write (another project, kind or lineage, a blob
    its run did not upload, a pid outside the start batch, a status other than
    running/finished/failed/interrupted) and records that do not fit their definition are
    refused alone and returned; the rest is written. Raises BadBatch only when `batch` is not an
    object or `seq` not an int64 (the caller answers 400). Every applied batch is proof of life:
    the run's heartbeat becomes the server's now (a replay's old times never make it lost)."""
    if not isinstance(batch, dict):
        raise BadBatch(f"batch must be an object, not {type(batch).__name__}")
    try:
        seq = integer(seq, "seq")
    except RecordError as exc:
        raise BadBatch(str(exc)) from None
    errors: list[RecordError] = []
    batch = dict(batch)
    fields = batch.get("run")
    if fields is not None:
        fields, errors = check_run_fields(fields)
        row = conn.execute(
            "SELECT project, kind, status FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        is_job = (
            conn.execute("SELECT 1 FROM jobs WHERE run_id = ?", (run_id,)).fetchone() is not None
        )
        start = fields.get("status") == "running" and "started_at" in fields
        for column in list(fields):
            value = fields[column]
            reason = None
            if column == "project":
                if row is not None and value != row["project"]:
                    if is_job or row["kind"] != "interactive" or row["project"] != DEFAULT_PROJECT:
                        reason = f"is {row['project']!r}; a run token cannot move its run"
            elif column not in REMOTE_RUN_COLUMNS:
                reason = "cannot be set with a run token"
            elif column == "status" and value not in REMOTE_STATUSES:
                reason = f"must be one of {', '.join(sorted(REMOTE_STATUSES))} with a run token"
            elif column == "pid" and not start:
                reason = "is set by the tracker's start batch only"
            elif column in ("snapshot", "end_snapshot") and value is not None:
                if not tokens.may_reference(conn, run_id, value):
                    reason = "names a blob this run did not upload"
            elif column == "git" and isinstance(value, dict) and value.get("diff"):
                if not tokens.may_reference(conn, run_id, value["diff"]):
                    reason = "names a diff blob this run did not upload"
            if reason is not None:
                errors.append(RecordError(f"run.{column}", reason, 403))
                del fields[column]
        batch["run"] = fields
    outputs = batch.get("outputs")
    if isinstance(outputs, list):
        kept = []
        for i, out in enumerate(outputs):
            blob = out[3] if isinstance(out, (list, tuple)) and len(out) == 7 else None
            if isinstance(blob, str) and not tokens.may_reference(conn, run_id, blob):
                errors.append(
                    RecordError(f"outputs[{i}].blob", "names a blob this run did not upload", 403)
                )
            else:
                kept.append(out)
        batch["outputs"] = kept
    if (set(batch.get("run") or ()) & JOB_OWNED or "heartbeat" in batch) and conn.execute(
        "SELECT 1 FROM jobs WHERE run_id = ?", (run_id,)
    ).fetchone():
        # a job's run: its status is the job's (reported through /ingest/job); a tracker inside
        # the notebook that stops its run has not ended the job
        run = {k: v for k, v in (batch.get("run") or {}).items() if k not in JOB_OWNED}
        batch = {k: v for k, v in batch.items() if k != "heartbeat"} | {"run": run}
    if not batch.get("run"):
        batch.pop("run", None)
    cur = conn.execute(
        "INSERT INTO ingested (run_id, seq, time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (run_id, seq, time.time()),
    )
    if not cur.rowcount:
        return False, errors
    errors.extend(apply_batch(conn, run_id, batch))
    conn.execute(
        "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running' "
        "AND NOT EXISTS (SELECT 1 FROM jobs WHERE run_id = ?)",
        (time.time(), run_id, run_id),
    )
    return True, errors


def write_metrics(
    conn: Connection,
    run_id: str,
    points: list[Any],
    errors: list[RecordError] | None = None,
) -> int:
    """points: (key, step, value, time), written as one packed chunk per key; returns how many
    were written. Packing checks the bounds at C speed (int64 steps, float values, times, valid
    names); a batch that fails is checked point by point and its bad points refused alone
    (appended to `errors`)."""
    if not points:
        return 0
    try:
        groups, chunks, latest = _pack(run_id, points)
    except (TypeError, ValueError, OverflowError, IndexError, KeyError):
        points, bad = check_metrics(points, max_rows=None)
        if errors is not None:
            errors.extend(bad)
        if not points:
            return 0
        groups, chunks, latest = _pack(run_id, points)
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
    return len(points)


def _pack(
    run_id: str, points: list[Any]
) -> tuple[dict[str, list[Any]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    if isinstance(points, (str, bytes, dict)):
        raise TypeError("metrics must be a list")
    keys = list(map(_KEY, points))
    distinct = set(keys)
    if not all(map(fast_key, distinct)):
        raise ValueError("a metric name is not valid")
    if len(distinct) == 1:
        groups = {keys[0]: points}
    else:
        groups = {k: [] for k in distinct}
        for point in points:
            groups[point[0]].append(point)
    chunks, latest = [], []
    for key, group in groups.items():
        if set(map(len, group)) != {4}:
            raise ValueError("a metric point is (key, step, value, time)")
        steps = list(map(_STEP, group))
        if bool in set(map(type, steps)):
            raise TypeError("a step is a bool")
        s_arr = array("q", steps)  # array(list) is 2x array(iterator); refuses non-int64
        values = list(map(_VALUE, group))
        if not set(map(type, values)) <= {float, int}:
            raise TypeError("a value is not a number")
        v_arr = array("d", values)
        t_arr = array("d", list(map(_TIME, group)))
        total = sum(t_arr)  # NaN when a time is NaN (min and max may step over one)
        if not (TIME_MIN <= min(t_arr) and max(t_arr) <= TIME_MAX) or total != total:
            raise ValueError("a time is out of range")
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
    return groups, chunks, latest


def write_cells(conn: Connection, run_id: str, cells: list[Any]) -> None:
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
    conn.executemany(
        "INSERT INTO texts (hash, text) VALUES (?, ?) ON CONFLICT DO NOTHING", texts.items()
    )
    conn.executemany(
        "INSERT INTO cells (run_id, seq, cell_id, execution_count, source, started_at, duration, "
        "status, error, gpu) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, seq) DO "
        "UPDATE SET cell_id = excluded.cell_id, execution_count = excluded.execution_count, "
        "source = excluded.source, started_at = excluded.started_at, duration = excluded.duration, "
        "status = excluded.status, error = excluded.error, "
        # a job's engine rewrites its cell at the end; the figures a tracker inside sent stay
        "gpu = COALESCE(excluded.gpu, cells.gpu)",
        rows,
    )


# --- reading -----------------------------------------------------------------------------------


def metric_value(value: float | None) -> float:
    return math.nan if value is None else value


def params_of(conn: Connection, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    ids = list(run_ids)
    for chunk in _chunks(ids):
        for row in conn.execute(
            f"SELECT run_id, key, value FROM params WHERE run_id IN ({_marks(chunk)}) ORDER BY key",
            chunk,
        ):
            out.setdefault(row[0], {})[row[1]] = _loads(row[2])
    return out


def _loads(raw: Any) -> Any:
    """A JSON column as stored; what does not parse (an old or damaged row) reads as its text."""
    if not isinstance(raw, (str, bytes)):
        return raw
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw


def _doc(raw: Any) -> dict[str, Any] | None:
    value = _loads(raw) if raw else None
    return value if isinstance(value, dict) else None


def param_details(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    return [
        {"key": r[0], "value": _loads(r[1]), "type": r[2], "source": r[3]}
        for r in conn.execute(
            "SELECT key, value, type, source FROM params WHERE run_id = ? ORDER BY key", (run_id,)
        )
    ]


def latest_metrics_of(conn: Connection, run_ids: Iterable[str]) -> dict[str, dict[str, float]]:
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


def cell_counts(conn: Connection, run_ids: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    ids = list(run_ids)
    for chunk in _chunks(ids):
        for run_id, count in conn.execute(
            f"SELECT run_id, COUNT(*) FROM cells WHERE run_id IN ({_marks(chunk)}) GROUP BY run_id",
            chunk,
        ):
            out[run_id] = count
    return out


def metric_series(conn: Connection, run_id: str, key: str) -> list[tuple[int, float, float]]:
    """(step, value, time) in step order (points logged at the same step keep their order)."""
    points: list[tuple[int, float, float]] = []
    for s_blob, v_blob, t_blob in conn.execute(
        # insertion order: SQLite's rowid, an identity column of that name on PostgreSQL
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


def metric_count(conn: Connection, run_id: str, key: str | None = None) -> int:
    sql = "SELECT COALESCE(SUM(count), 0) FROM metrics WHERE run_id = ?"
    args: list[object] = [run_id]
    if key is not None:
        sql += " AND key = ?"
        args.append(key)
    count: int = conn.execute(sql, args).fetchone()[0]
    return count


def metric_keys(conn: Connection, run_id: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT key FROM metrics_latest WHERE run_id = ? ORDER BY key", (run_id,)
        )
    ]


def outputs_of(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute(
        "SELECT name, kind, value, blob, size, filename, created_at FROM outputs "
        "WHERE run_id = ? ORDER BY created_at, name",
        (run_id,),
    ):
        item: dict[str, Any] = {"name": r[0], "kind": r[1], "created_at": r[6]}
        if r[1] == "value":
            item["value"] = _loads(r[2])
        else:
            item.update(blob=r[3], size=r[4], filename=r[5])
        out.append(item)
    return out


def cells_of(conn: Connection, run_id: str, with_source: bool = True) -> list[dict[str, Any]]:
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
            "error": _doc(r[7]),
            "gpu": _doc(r[8]),
        }  # fmt: skip
        if with_source:
            cell["source"] = r[3]
        cells.append(cell)
    return cells


def _marks(items: list[Any]) -> str:
    return ", ".join("?" * len(items))


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
