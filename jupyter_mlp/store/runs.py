"""Run rows: listing with the filter language, one run whole, id lookup, lost-run reconciliation."""

from __future__ import annotations

import base64
import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
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


@dataclass
class _Sort:
    desc: bool
    expr: str  # SQL over `runs` (column sorts)
    table: str | None = None  # record sorts: metrics_latest / params
    column: str | None = None
    key: str | None = None


def _parse_sort(sort: str | None) -> _Sort:
    """`-metrics.acc`, `started_at`, `params.lr` ... (`-` for descending; newest first by default)."""
    spec = (sort or "-created_at").strip()
    desc = spec.startswith("-")
    field = spec.lstrip("+-")
    head, _, key = field.partition(".")
    if key and head in ("metrics", "params"):
        table, column = ("metrics_latest", "value") if head == "metrics" else ("params", "num")
        return _Sort(desc, "", table, column, key)
    if not key and field in COLUMNS:
        return _Sort(desc, COLUMNS[field])
    raise FilterError(f"cannot sort by {field!r} (a run column, metrics.NAME or params.NAME)", 0)


def _encode_cursor(phase: int, value: Any, run_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([phase, value, run_id]).encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[int, Any, str] | None:
    if not cursor:
        return None
    try:
        phase, value, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        assert phase in (0, 1) and isinstance(run_id, str)
    except Exception:
        raise FilterError("invalid cursor", 0) from None
    return phase, value, run_id


def list_page(
    conn: sqlite3.Connection,
    project: str | None = None,
    filter: str | None = None,
    sort: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of runs, each with its params and latest metrics, plus the cursor of the next.

    Keyset paging in two phases: rows with a sort value (walked in index order, so a
    metric-sorted page of 100k runs reads ~a page of rows), then rows without one (id order)."""
    where, args = compile_filter(filter)
    if project:
        where = f"runs.project = ? AND ({where})"
        args = [project, *args]
    order = _parse_sort(sort)
    after = _decode_cursor(cursor)
    d, cmp = ("DESC", "<") if order.desc else ("ASC", ">")
    cols = ", ".join(f"runs.{c.strip()}" for c in SUMMARY_COLUMNS.split(","))
    rows: list[Any] = []
    if after is None or after[0] == 0:
        if order.table:
            value = f"s.{order.column}"
            source = f"{order.table} AS s JOIN runs ON runs.id = s.run_id"
            head_where, head_args = "s.key = ? AND", [order.key]
            tiebreak = "s.run_id"
        else:
            value, source, head_where, head_args, tiebreak = order.expr, "runs", "", [], "runs.id"
        keyset, keyset_args = "", []
        if after is not None:
            keyset = f"AND ({value} {cmp} ? OR ({value} = ? AND {tiebreak} {cmp} ?))"
            keyset_args = [after[1], after[1], after[2]]
        rows = conn.execute(
            f"SELECT {cols}, {value} AS sort_value FROM {source} WHERE {head_where} "
            f"{value} IS NOT NULL {keyset} AND ({where}) ORDER BY {value} {d}, {tiebreak} {d} LIMIT ?",
            [*head_args, *keyset_args, *args, limit + 1],
        ).fetchall()
    if len(rows) <= limit:
        if order.table:
            missing = (
                f"NOT EXISTS (SELECT 1 FROM {order.table} AS s WHERE s.run_id = runs.id "
                f"AND s.key = ? AND s.{order.column} IS NOT NULL)"
            )
            missing_args: list[object] = [order.key]
        else:
            missing, missing_args = f"{order.expr} IS NULL", []
        keyset, keyset_args = "", []
        if after is not None and after[0] == 1:
            keyset, keyset_args = f"AND runs.id {cmp} ?", [after[2]]
        rows += conn.execute(
            f"SELECT {cols}, NULL AS sort_value FROM runs WHERE {missing} {keyset} AND ({where}) "
            f"ORDER BY runs.id {d} LIMIT ?",
            [*missing_args, *keyset_args, *args, limit + 1 - len(rows)],
        ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    runs = [_row_to_run(r) for r in rows]
    ids = [r["id"] for r in runs]
    params = records.params_of(conn, ids)
    metrics = records.latest_metrics_of(conn, ids)
    for run in runs:
        run.pop("sort_value", None)
        run["params"] = params.get(run["id"], {})
        run["metrics"] = metrics.get(run["id"], {})
    next_cursor = None
    if more:
        last = rows[-1]
        phase = 0 if last["sort_value"] is not None else 1
        next_cursor = _encode_cursor(phase, last["sort_value"], last["id"])
    return {"runs": runs, "next": next_cursor}


def list_runs(conn: sqlite3.Connection, **kw: Any) -> list[dict[str, Any]]:
    """The first page of `list_page` (same arguments), as a list."""
    return list_page(conn, **kw)["runs"]


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
