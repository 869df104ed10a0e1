"""Run rows: listing with the filter language, one run whole, id lookup, lost-run reconciliation."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from typing import Any

from ..model import FINAL_STATUSES, LOST, RUNNING
from . import events, records
from .filter import COLUMNS, FilterError, compile_filter

SUMMARY_COLUMNS = (
    "id, project, name, status, kind, parent_id, pipeline_run_id, stage, notebook, kernel, host, "
    "user, created_at, started_at, ended_at, heartbeat_at, pinned, tags, notes, error"
)
DETAIL_COLUMNS = SUMMARY_COLUMNS + ", snapshot, end_snapshot, pid, git, env, gpu"


class RunNotFound(LookupError):
    def __init__(self, ref: str, detail: str = "") -> None:
        super().__init__(f"no run {ref!r}{detail}")
        self.ref = ref


def _row_to_run(row: sqlite3.Row) -> dict[str, Any]:
    run = dict(row)
    for key in ("tags", "git", "env", "gpu", "error"):
        if key in run and isinstance(run[key], str):
            run[key] = json.loads(run[key])
    run["pinned"] = bool(run.get("pinned"))
    started, ended = run.get("started_at"), run.get("ended_at") or run.get("heartbeat_at")
    run["duration"] = (ended - started) if started and ended else None
    return run


def resolve_id(conn: sqlite3.Connection, ref: str) -> str:
    """A full id, or a unique prefix of one (at least 4 hex digits), to the full id."""
    ref = (ref or "").strip().lower()
    if len(ref) < 4 or any(c not in "0123456789abcdef" for c in ref):
        raise RunNotFound(ref, ": run ids are hex digits (give at least 4)")
    rows = conn.execute(
        "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2", (ref, ref + "g")
    ).fetchall()
    if not rows:
        raise RunNotFound(ref)
    if len(rows) > 1:
        raise RunNotFound(ref, ": the prefix matches several runs, give more digits")
    return rows[0][0]


def sort_clause(sort: str | None, args: list[object]) -> str:
    """`-metrics.acc`, `started_at`, `params.lr` ... -> ORDER BY (NULLs last, id as tiebreak)."""
    spec = (sort or "-created_at").strip()
    desc = spec.startswith("-")
    field = spec.lstrip("+-")
    head, _, key = field.partition(".")
    if key and head in ("metrics", "params"):
        table, column = ("metrics_latest", "value") if head == "metrics" else ("params", "num")
        args.append(key)
        expr = f"(SELECT {column} FROM {table} AS s WHERE s.run_id = runs.id AND s.key = ?)"
    elif not key and field in COLUMNS:
        expr = COLUMNS[field]
    else:
        raise FilterError(f"cannot sort by {field!r}", 0)
    direction = "DESC" if desc else "ASC"
    return f"ORDER BY {expr} IS NULL, {expr} {direction}, runs.id {direction}"


def list_runs(
    conn: sqlite3.Connection,
    project: str | None = None,
    filter: str | None = None,
    sort: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Runs newest first (or by `sort`), each with its params and latest metrics."""
    where, args = compile_filter(filter)
    if project:
        where = f"runs.project = ? AND {where}"
        args = [project, *args]
    order_args: list[object] = []
    order = sort_clause(sort, order_args)
    if order_args:  # the sort expression appears twice in the clause
        order_args = order_args * 2
    rows = conn.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM runs WHERE {where} {order} LIMIT ? OFFSET ?",
        [*args, *order_args, int(limit), int(offset)],
    ).fetchall()
    runs = [_row_to_run(r) for r in rows]
    ids = [r["id"] for r in runs]
    params = records.params_of(conn, ids)
    metrics = records.latest_metrics_of(conn, ids)
    for run in runs:
        run["params"] = params.get(run["id"], {})
        run["metrics"] = metrics.get(run["id"], {})
    return runs


def get_run(conn: sqlite3.Connection, ref: str, with_cells: bool = True) -> dict[str, Any]:
    run_id = resolve_id(conn, ref)
    row = conn.execute(f"SELECT {DETAIL_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    run = _row_to_run(row)
    run["params"] = records.params_of(conn, [run_id]).get(run_id, {})
    run["metrics"] = records.latest_metrics_of(conn, [run_id]).get(run_id, {})
    run["outputs"] = records.outputs_of(conn, run_id)
    run["cells"] = records.cells_of(conn, run_id) if with_cells else None
    return run


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_lost(conn: sqlite3.Connection, heartbeat_timeout: float, now: float | None = None) -> list[str]:
    """Mark `running` runs whose kernel is gone (same host, dead pid) or whose heartbeat stopped."""
    now = now or time.time()
    host = socket.gethostname()
    lost: list[tuple[str, str]] = []
    for run_id, run_host, pid, beat in conn.execute(
        "SELECT id, host, pid, heartbeat_at FROM runs WHERE status = ?", (RUNNING,)
    ).fetchall():
        if run_host == host and pid and not pid_alive(pid):
            lost.append((run_id, f"the kernel process {pid} ended without finishing the run"))
        elif beat is not None and beat < now - heartbeat_timeout:
            lost.append((run_id, f"no heartbeat for {now - beat:.0f} s"))
    if not lost:
        return []
    from .db import write

    with write(conn):
        for run_id, reason in lost:
            cur = conn.execute(
                "UPDATE runs SET status = ?, error = ?, ended_at = COALESCE(heartbeat_at, ?) "
                "WHERE id = ? AND status = ?",
                (LOST, json.dumps({"ename": "RunLost", "evalue": reason}), now, run_id, RUNNING),
            )
            if cur.rowcount:
                events.append(conn, run_id, "run", {"status": LOST, "reason": reason}, now)
    return [r for r, _ in lost]


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES
