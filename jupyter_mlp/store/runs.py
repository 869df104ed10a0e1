"""Run rows: listing with the filter language, one run whole, id lookup, lost-run reconciliation."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from ..model import FINAL_STATUSES, LOST, QUEUED, RUNNING, close_names
from ..records import (
    RUN_JSON_FIELDS,
    RUN_TIME_FIELDS,
    RecordError,
    read_int,
    read_json_column,
    read_number,
    run_field,
)
from . import events, records
from .db import Connection, dialect, is_sqlite
from .filter import COLUMNS, FilterError, SortError, compile_filter, record_fields

SUMMARY_COLUMNS = (
    "id, project, name, status, kind, parent_id, pipeline_run_id, stage, notebook, kernel, host, "
    '"user", owner, created_at, started_at, ended_at, heartbeat_at, pinned, tags, notes, error, '
    "sweep_id"
)  # `user` quoted: a reserved word on PostgreSQL
DETAIL_COLUMNS = SUMMARY_COLUMNS + ", snapshot, end_snapshot, output_notebook, pid, git, env, gpu"


class RunNotFound(LookupError):
    def __init__(self, ref: str, detail: str = "") -> None:
        super().__init__(f"no run {ref!r}{detail}")
        self.ref = ref


def _row_to_run(row: Any) -> dict[str, Any]:
    """A run row as readers expect it, whatever an older version (or a bad token holder) stored:
    JSON columns in their shape or None, times as numbers or None, text columns as text."""
    run = dict(row)
    for key in RUN_JSON_FIELDS:
        if key in run:
            run[key] = read_json_column(key, run[key])
    for key in RUN_TIME_FIELDS:
        if key in run:
            run[key] = read_number(run[key])
    if "pid" in run:
        run["pid"] = read_int(run["pid"])
    for key in ("name", "project", "status", "kind", "notes"):
        if key in run and not isinstance(run[key], str):
            run[key] = "" if run[key] is None else str(run[key])
    run["pinned"] = bool(run.get("pinned"))
    started, ended = run.get("started_at"), run.get("ended_at") or run.get("heartbeat_at")
    run["duration"] = (ended - started) if started and ended else None
    return run


def resolve_id(conn: Connection, ref: str) -> str:
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
    full: str = rows[0][0]
    return full


@dataclass
class _Sort:
    desc: bool
    expr: str  # SQL over `runs` (column sorts)
    table: str | None = None  # record sorts: metrics_latest / params
    column: str | None = None
    key: str | None = None
    record: str = ""  # record sorts: `metrics` / `params`, as the user wrote it


def _parse_sort(sort: str | None) -> _Sort:
    """`-metrics.acc`, `started_at`, `params.lr` ... (`-` for descending; newest first by default)."""
    spec = (sort or "-created_at").strip()
    desc = spec.startswith("-")
    field = spec.lstrip("+-")
    head, _, key = field.partition(".")
    if key and head in ("metrics", "params"):
        table, column = ("metrics_latest", "value") if head == "metrics" else ("params", "num")
        return _Sort(desc, "", table, column, key, head)
    if not key and field in COLUMNS:
        return _Sort(desc, COLUMNS[field])
    raise SortError(f"cannot sort by {field!r} (a run column, metrics.NAME or params.NAME)")


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
    conn: Connection,
    project: str | None = None,
    filter: str | None = None,
    sort: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of runs, each with its params, latest metrics, cell count, busy_s and
    last_activity_at (activity_of), plus the cursor of the next and `hints` naming the fields
    no run has (field_hints): the sort's, and the filter's when it matched nothing.

    Keyset paging in two phases: rows with a sort value (walked in index order, so a
    metric-sorted page of 100k runs reads ~a page of rows), then rows without one (id order)."""
    try:
        where, args = compile_filter(filter, dialect(conn), absent_fields(conn, filter))
    except FilterError as exc:
        raise _record_guess(conn, exc) from None
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
        if after is not None and (order.table or not is_sqlite(conn)):
            # a row value: an index on (value, id) (a record sort's; PostgreSQL's on the
            # columns it sorts) is walked from the cursor on, never from the top
            keyset, keyset_args = f"AND ({value}, {tiebreak}) {cmp} (?, ?)", [after[1], after[2]]
        elif after is not None:  # SQLite's column indexes hold the rowid, not the id
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
    counts = records.cell_counts(conn, ids)
    activity = activity_of(conn, ids)
    for run in runs:
        run.pop("sort_value", None)
        run["params"] = params.get(run["id"], {})
        run["metrics"] = metrics.get(run["id"], {})
        # a count in listings; the cells themselves in detail
        run["cells"] = counts.get(run["id"], 0)
        run["busy_s"], run["last_activity_at"] = activity.get(run["id"], (0.0, None))
    next_cursor = None
    if more and rows:  # (a limit under 1 pages nothing)
        last = rows[-1]
        phase = 0 if last["sort_value"] is not None else 1
        next_cursor = _encode_cursor(phase, last["sort_value"], last["id"])
    # misspelt metric/param/output names: a sort by a field no run has lists runs as if unsorted;
    # a filter that names one may be why it matched nothing
    fields = [(order.record, order.key)] if order.key and after is None else []
    if filter and not runs and after is None:
        fields += [f for f in record_fields(filter) if f not in fields]
    return {"runs": runs, "next": next_cursor, "hints": field_hints(conn, fields)}


IDLE_AFTER_S = 300.0  # a running interactive run with no activity for this long reads "idle"


def activity_of(
    conn: Connection, run_ids: list[str], now: float | None = None, alive: bool = True
) -> dict[str, tuple[float, float | None]]:
    """{run id: (busy_s, last_activity_at)} for runs with cells, metrics or outputs.

    busy_s: seconds spent in cells (a cell still running counts up to now, or to the run's end);
    last_activity_at: the end of the last cell (now while one runs), or the newest metric or
    output if later. An interactive run stays `running` while its kernel idles; these say how
    much of that was work and since when it has been idle. alive=False: the runs' kernels are
    gone, and a cell still marked running was last seen at its start."""
    now = time.time() if now is None else now
    last_running, last_args = ("COALESCE(r.ended_at, ?)", [now]) if alive else ("c.started_at", [])
    out: dict[str, tuple[float, float | None]] = {}
    ids = list(run_ids)
    d = dialect(conn)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for run_id, busy, last in conn.execute(
            "SELECT c.run_id, SUM(CASE WHEN c.status = 'running' "
            f"THEN {d.greatest('COALESCE(r.ended_at, ?) - c.started_at', '0')} "
            "ELSE c.duration END), "
            f"MAX(CASE WHEN c.status = 'running' THEN {last_running} "
            "ELSE c.started_at + c.duration END) "
            f"FROM cells c JOIN runs r ON r.id = c.run_id WHERE c.run_id IN ({marks}) "
            "GROUP BY c.run_id",
            [now, *last_args, *chunk],
        ):
            out[run_id] = (read_number(busy) or 0.0, read_number(last))
        for table, column in (("metrics_latest", "time"), ("outputs", "created_at")):
            for run_id, last in conn.execute(
                f"SELECT run_id, MAX({column}) FROM {table} WHERE run_id IN ({marks}) "
                "GROUP BY run_id",
                chunk,
            ):
                busy, seen = out.get(run_id, (0.0, None))
                last = read_number(last)
                if last is not None and (seen is None or last > seen):
                    out[run_id] = (busy, last)
    return out


def is_idle(run: dict[str, Any], now: float | None = None, after: float = IDLE_AFTER_S) -> bool:
    """A running interactive run whose kernel has done nothing for `after` seconds."""
    if run.get("status") != RUNNING or run.get("kind") != "interactive":
        return False
    last = run.get("last_activity_at") or run.get("started_at")
    return isinstance(last, (int, float)) and (now or time.time()) - last >= after


# record fields -> (table, key column) whose keys an index leads with (a lookup, a loose scan)
_KEYED = {"metrics": ("metrics_latest", "key"), "params": ("params", "key")}


def absent_fields(conn: Connection, expr: str | None) -> set[tuple[str, str]]:
    """The `metrics.K` / `params.K` a filter names that no run has (one index lookup each)."""
    absent = set()
    for table, key in record_fields(expr):
        if table in _KEYED:
            source, column = _KEYED[table]
            if (
                conn.execute(
                    f"SELECT 1 FROM {source} WHERE {column} = ? LIMIT 1", (key,)
                ).fetchone()
                is None
            ):
                absent.add((table, key))
    return absent


def _record_guess(conn: Connection, exc: FilterError) -> FilterError:
    """A bare field that is no column but a metric, parameter or output some run has (`lr > 0.1`
    for `params.lr > 0.1`): the error says which; any other error as it is."""
    if not exc.unknown:
        return exc
    found = [f"{t}.{exc.unknown}" for t in ("metrics", "params", "outputs")
             if exc.unknown in _distinct_keys(conn, t)]  # fmt: skip
    if not found:
        return exc
    return FilterError(
        f"unknown field {exc.unknown!r}; did you mean {' or '.join(found)}?", exc.position
    )


def _distinct_keys(conn: Connection, table: str) -> list[str]:
    """Every key of a record table: a loose scan of the index that leads with it (one lookup per
    key, not a read of every row), or DISTINCT where no index does (outputs' names)."""
    if table in _KEYED:
        source, column = _KEYED[table]
        sql = (
            f"WITH RECURSIVE k(v) AS (SELECT MIN({column}) FROM {source} UNION ALL "
            f"SELECT (SELECT MIN({column}) FROM {source} WHERE {column} > k.v) FROM k "
            "WHERE k.v IS NOT NULL) SELECT v FROM k WHERE v IS NOT NULL"
        )
    else:
        sql = "SELECT DISTINCT name FROM outputs"
    return [r[0] for r in conn.execute(sql) if isinstance(r[0], str)]


def filter_hints(conn: Connection, expr: str | None) -> list[dict[str, Any]]:
    """field_hints for the `metrics.K` / `params.K` / `outputs.K` a filter names."""
    return field_hints(conn, record_fields(expr))


def field_hints(conn: Connection, fields: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """For each (`metrics` | `params` | `outputs`, K) no run has: {field, message, suggestions}
    with close names that exist. Why a filter matched nothing, or a sort did not sort."""
    hints: list[dict[str, Any]] = []
    known: dict[str, list[str]] = {}
    for table, key in fields:
        if table not in known:
            known[table] = _distinct_keys(conn, table)
        if key in known[table]:
            continue
        close = close_names(key, known[table], n=3)
        suggestions = [f"{table}.{c}" for c in close]
        message = f"no run has {table}.{key}"
        if suggestions:
            message += "; did you mean " + " or ".join(suggestions) + "?"
        hints.append({"field": f"{table}.{key}", "message": message, "suggestions": suggestions})
    return hints


def notebook_outputs(conn: Connection, notebook: str) -> tuple[str, list[str]] | None:
    """(run id, output names) of the newest finished run of the notebook at this absolute path
    (what a notebook template offers, as far as anyone has seen); None when none finished."""
    row = conn.execute(
        "SELECT id FROM runs WHERE notebook = ? AND status = 'finished' "
        "ORDER BY created_at DESC LIMIT 1",
        (notebook,),
    ).fetchone()
    if row is None:
        return None
    names = conn.execute("SELECT name FROM outputs WHERE run_id = ? ORDER BY name", (row[0],))
    return row[0], [r[0] for r in names if isinstance(r[0], str)]


def list_runs(conn: Connection, **kw: Any) -> list[dict[str, Any]]:
    """The first page of `list_page` (same arguments), as a list."""
    runs: list[dict[str, Any]] = list_page(conn, **kw)["runs"]
    return runs


def owner_of(conn: Connection, run_id: str) -> str | None:
    """Who owns the run (what an ownership check needs, without reading the whole run)."""
    row = conn.execute("SELECT owner FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(run_id)
    return row[0] if isinstance(row[0], str) else None  # (a stored row read back: text or none)


def get_run(conn: Connection, ref: str, with_cells: bool = True) -> dict[str, Any]:
    run_id = resolve_id(conn, ref)
    row = conn.execute(f"SELECT {DETAIL_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    run = _row_to_run(row)
    run["params"] = records.params_of(conn, [run_id]).get(run_id, {})
    run["metrics"] = records.latest_metrics_of(conn, [run_id]).get(run_id, {})
    run["outputs"] = records.outputs_of(conn, run_id)
    run["cells"] = (
        records.cells_of(conn, run_id)
        if with_cells
        else records.cell_counts(conn, [run_id]).get(run_id, 0)
    )
    run["busy_s"], run["last_activity_at"] = activity_of(conn, [run_id]).get(run_id, (0.0, None))
    return run


def pid_alive(pid: int) -> bool:
    """A process of this id exists and is not a zombie (a killed kernel its parent has not reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        pass  # no /proc here: ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_started_at(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), where /proc tells; else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _same_process(pid: int, run_started: float | None) -> bool:
    """A live `pid` that is the run's process: not one that started after the run did (the
    kernel died and its pid was reused)."""
    if not pid_alive(pid):
        return False
    began = process_started_at(pid)
    return began is None or run_started is None or began <= run_started + 5.0


def mark_lost(conn: Connection, heartbeat_timeout: float, now: float | None = None) -> list[str]:
    """Mark `running` runs lost whose kernel is gone: a dead process on this host, or no heartbeat
    for `heartbeat_timeout` and no live process where one can be seen (a live kernel on this
    host that writes no heartbeat, e.g. busy in C code, is not lost). A run with a live token is
    judged by its heartbeats alone (a token holder cannot keep its run alive with a pid). Rows
    of any shape are tolerated; the token of a lost run keeps working (see tokens.run_of)."""
    now = now or time.time()
    host = socket.gethostname()
    lost: list[tuple[str, str]] = []
    for run_id, run_host, raw_pid, raw_beat, has_token, raw_start in conn.execute(
        "SELECT id, host, pid, heartbeat_at, EXISTS (SELECT 1 FROM run_tokens t "
        "WHERE t.run_id = runs.id), COALESCE(started_at, created_at) FROM runs WHERE status = ? "
        # A job's run belongs to its job: the executor watches the job's process or task and
        # ends the run (a silent cell on a Dask worker sends no heartbeat and is not lost).
        "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = runs.id AND j.state IN (?, ?))",
        (RUNNING, QUEUED, RUNNING),
    ).fetchall():
        pid, beat = read_int(raw_pid), read_number(raw_beat)
        here = run_host == host and pid is not None and 0 < pid < 2**31
        alive = here and pid is not None and _same_process(pid, read_number(raw_start))
        if here and not alive:
            lost.append((run_id, f"the kernel process {pid} ended without finishing the run"))
        elif beat is None and raw_beat is not None:
            if not alive or has_token:
                lost.append((run_id, "its heartbeat is unreadable"))
        elif beat is not None and beat < now - heartbeat_timeout:
            if not alive or has_token:
                lost.append((run_id, f"no heartbeat for {now - beat:.0f} s"))
    from . import tokens
    from .db import write

    expired = tokens.expirable(conn, now)
    if not lost and not expired:
        return []  # a reader on a read-only store never needs to write
    beat_is_number = dialect(conn).is_number("heartbeat_at")
    with write(conn):
        if expired:
            tokens.expire(conn, now)
        for run_id, reason in lost:  # the RUN table's running -> lost, guarded by the WHERE
            # it ended at its last sign of life: the later of its last heartbeat and the last
            # thing it recorded (a kernel killed 1.5 s into its first cell wrote no heartbeat
            # after its start: its run read 0.0 s)
            seen = activity_of(conn, [run_id], now, alive=False).get(run_id, (0.0, None))[1]
            cur = conn.execute(
                f"UPDATE runs SET status = ?, error = ?, ended_at = CASE WHEN {beat_is_number} "
                f"THEN {dialect(conn).greatest('heartbeat_at', '?')} ELSE ? END "
                "WHERE id = ? AND status = ?",
                (LOST, json.dumps({"ename": "RunLost", "evalue": reason}),
                 seen if seen is not None else 0.0, seen if seen is not None else now,
                 run_id, RUNNING),
            )  # fmt: skip
            if cur.rowcount:
                events.append(conn, run_id, "run", {"status": LOST, "reason": reason}, now)
    return [r for r, _ in lost]


def run_times(conn: Connection, run_ids: list[str]) -> dict[str, tuple[Any, Any]]:
    """{run id: (started_at, ended_at)}: a stage's or a trial's own time, not its wait."""
    if not run_ids:
        return {}
    return {
        r[0]: (read_number(r[1]), read_number(r[2]))
        for r in conn.execute(
            "SELECT id, started_at, ended_at FROM runs "
            f"WHERE id IN ({', '.join('?' * len(run_ids))})",
            run_ids,
        )
    }


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def run_part(conn: Connection, run_id: str, part: str) -> Any:
    """One part of a run, for the routes that serve them separately."""
    if part == "params":
        return records.param_details(conn, run_id)
    if part == "cells":
        return records.cells_of(conn, run_id)
    if part == "outputs":
        return records.outputs_of(conn, run_id)
    if part == "metric_keys":
        return [
            {"key": r[0], "step": r[1], "value": records.metric_value(r[2]), "count": r[3]}
            for r in conn.execute(
                "SELECT l.key, l.step, l.value, (SELECT COALESCE(SUM(count), 0) FROM metrics m "
                "WHERE m.run_id = l.run_id AND m.key = l.key) FROM metrics_latest l "
                "WHERE l.run_id = ? ORDER BY l.key",
                (run_id,),
            )
        ]
    if part.startswith("notebook_"):
        column = {"start": "snapshot", "end": "end_snapshot", "output": "output_notebook"}[part[9:]]
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return dict(row).get(column) if row else None
    raise ValueError(f"unknown part {part!r}")


# --- changes a user makes ------------------------------------------------------------------------

PATCHABLE = ("name", "tags", "pinned", "notes")


def patch_run(conn: Connection, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Rename, tag, pin or annotate a run. Raises RecordError (a ValueError) naming the bad
    field; the bounds are those of every other route (jupyter_mlp.records.RUN_FIELDS)."""
    if not isinstance(changes, dict) or not changes:
        raise RecordError("body", "send a JSON object with some of: name, tags, pinned, notes")
    clean = {}
    for key, value in changes.items():
        if key not in PATCHABLE:
            shown = key if isinstance(key, str) and len(key) <= 60 else "?"
            raise RecordError(shown, f"cannot be changed (only: {', '.join(PATCHABLE)})")
        clean[key] = run_field(key, value, key)
    run_id = resolve_id(conn, ref)
    from .db import write

    with write(conn):
        records.upsert_run(conn, run_id, clean)
        events.append(conn, run_id, "run", {"fields": sorted(clean)})
    return get_run(conn, run_id, with_cells=False)


def run_blobs(conn: Connection, run_id: str) -> dict[str, str]:
    """Every blob a run references -> a download file name for it."""
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return {}
    run = dict(row)
    stem = _safe_name(run["name"] if isinstance(run.get("name"), str) and run["name"] else run_id)
    found: dict[str, str] = {}
    for column, suffix in (
        ("snapshot", ".ipynb"),
        ("end_snapshot", "-end.ipynb"),
        ("output_notebook", "-output.ipynb"),
    ):
        if isinstance(run.get(column), str) and run[column]:
            found[run[column]] = stem + suffix
    git = read_json_column("git", run.get("git"))
    if git and isinstance(git.get("diff"), str):
        found[git["diff"]] = stem + ".diff"
    for digest, filename in conn.execute(
        "SELECT blob, filename FROM outputs WHERE run_id = ? AND blob IS NOT NULL", (run_id,)
    ):
        if isinstance(digest, str):
            found[digest] = _safe_name(
                filename if isinstance(filename, str) and filename else digest
            )
    return found


def _safe_name(name: str) -> str:
    """A file name for Content-Disposition: no path separators, quotes or control characters."""
    cleaned = "".join(c if c.isalnum() or c in "._- " else "_" for c in name[:200]).strip(" .")
    return cleaned[:120] or "download"


def delete_run(conn: Connection, ref: str, blobs: Any) -> list[str]:
    """Remove a run and its records; blobs no other run references are deleted too.
    Returns the removed blob hashes."""
    run_id = resolve_id(conn, ref)
    mine = set(run_blobs(conn, run_id))
    from .db import write

    with write(conn):
        sources = [
            r[0]
            for r in conn.execute("SELECT DISTINCT source FROM cells WHERE run_id = ?", (run_id,))
        ]
        for table in (
            "params",
            "metrics",
            "metrics_latest",
            "cells",
            "gpu_samples",
            "outputs",
            "run_tokens",
            "run_uploads",
            "ingested",
        ):
            conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        for digest in sources:
            conn.execute(
                "DELETE FROM texts WHERE hash = ? AND NOT EXISTS (SELECT 1 FROM cells WHERE source = ?)",
                (digest, digest),
            )
        events.append(conn, run_id, "run", {"deleted": True})
    removed = sorted(d for d in mine if not _blob_in_use(conn, d))
    for digest in removed:
        blobs.delete(digest)
    return removed


def _blob_in_use(conn: Connection, digest: str) -> bool:
    d = dialect(conn)
    columns = d.columns(conn, "runs")
    tests = [f"{c} = ?" for c in ("snapshot", "end_snapshot", "output_notebook") if c in columns]
    args: list[object] = [digest] * len(tests)
    tests.append(d.contains("git"))
    args.append(digest)
    if conn.execute(f"SELECT 1 FROM runs WHERE {' OR '.join(tests)} LIMIT 1", args).fetchone():
        return True
    return (
        conn.execute("SELECT 1 FROM outputs WHERE blob = ? LIMIT 1", (digest,)).fetchone()
        is not None
    )


COMPARE_MAX = 200  # runs side by side (a sweep's trials): the bound of both compare routes


def compare_runs(conn: Connection, refs: list[str]) -> dict[str, Any]:
    """Several runs side by side: all params (and which differ) and the latest metrics."""
    if not 1 < len(refs) <= COMPARE_MAX:
        raise ValueError(f"compare takes 2 to {COMPARE_MAX} run ids")
    ids = [resolve_id(conn, r) for r in refs]
    runs = [get_run(conn, i, with_cells=False) for i in ids]
    keys = sorted({k for r in runs for k in r["params"]})
    differ = [
        k
        for k in keys
        if len({json.dumps(r["params"].get(k, "<unset>"), sort_keys=True) for r in runs}) > 1
    ]
    metric_keys = sorted({k for r in runs for k in r["metrics"]})
    return {
        "runs": [{k: r[k] for k in ("id", "name", "project", "status", "started_at", "ended_at", "duration", "params", "metrics", "tags", "pinned", "owner")} for r in runs],
        "params": keys,
        "params_differ": differ,
        "metrics": metric_keys,
    }  # fmt: skip


def create_run(
    conn: Connection, fields: dict[str, Any], with_token: bool = False
) -> dict[str, Any]:
    """A new run row (queued unless said otherwise), optionally with a write token."""
    from ..model import QUEUED, new_run_id
    from . import tokens
    from .db import write

    run_id = new_run_id()
    fields = {"status": QUEUED, "created_at": time.time(), **fields}
    with write(conn):
        records.upsert_run(conn, run_id, fields)
        events.append(conn, run_id, "run", {"status": fields["status"]})
        token = tokens.issue(conn, run_id) if with_token else None
    return {"id": run_id, "token": token}


# --- lineage (reruns) ----------------------------------------------------------------------------

_MISSING = object()


def param_diff(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    """How a run's params differ from its parent's: [{key, change: changed|added|removed,
    parent, value}] (no `parent` / `value` key where that side lacks the param). [] without a parent."""
    row = conn.execute("SELECT parent_id FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or not row[0]:
        return []
    both = records.params_of(conn, [run_id, row[0]])
    mine, theirs = both.get(run_id, {}), both.get(row[0], {})
    out: list[dict[str, Any]] = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = theirs.get(key, _MISSING), mine.get(key, _MISSING)
        same = a is not _MISSING and b is not _MISSING and type(a) is type(b)
        if same and json.dumps(a) == json.dumps(b):
            continue
        item: dict[str, Any] = {"key": key}
        if a is _MISSING:
            item["change"] = "added"
        elif b is _MISSING:
            item["change"] = "removed"
        else:
            item["change"] = "changed"
        if a is not _MISSING:
            item["parent"] = a
        if b is not _MISSING:
            item["value"] = b
        out.append(item)
    return out


def lineage(conn: Connection, ref: str) -> dict[str, Any]:
    """A run's parent (with the params that changed against it) and its children, newest first."""
    run_id = resolve_id(conn, ref)
    row = conn.execute("SELECT parent_id FROM runs WHERE id = ?", (run_id,)).fetchone()
    parent = None
    if row[0]:
        p = conn.execute("SELECT id, name, status FROM runs WHERE id = ?", (row[0],)).fetchone()
        parent = dict(p) if p is not None else {"id": row[0], "name": None, "status": None}
    children = [
        dict(r)
        for r in conn.execute(
            "SELECT id, name, status, created_at FROM runs WHERE parent_id = ? ORDER BY created_at DESC",
            (run_id,),
        )
    ]
    return {"parent": parent, "param_changes": param_diff(conn, run_id), "children": children}


def lineage_lines(conn: Connection, ref: str) -> list[str]:
    """The lineage as text lines for `jupyter mlp runs show`."""
    info = lineage(conn, ref)
    lines: list[str] = []
    if info["parent"]:
        p = info["parent"]
        lines.append(f"  parent    {p['id']}  {p['name'] or ''}  ({p['status'] or 'deleted'})")
        for c in info["param_changes"]:
            old = json.dumps(c["parent"]) if "parent" in c else "(unset)"
            new = json.dumps(c["value"]) if "value" in c else "(unset)"
            lines.append(f"    {c['key']}: {old} -> {new}")
        if not info["param_changes"]:
            lines.append("    (same params)")
    for child in info["children"]:
        lines.append(f"  child     {child['id']}  {child['name']}  ({child['status']})")
    return lines
