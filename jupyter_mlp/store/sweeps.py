"""Sweeps and their trials: a sweep row (template run, space, objective, sampler, budget,
concurrency, status, best trial) and one trial row per asked trial, whose run is an ordinary job
run carrying `sweep_id` (parent: the template run). Each status moves through its table in
transitions.py (SWEEP, TRIAL) in one function here, each move an event.

The store is the record of a sweep: a driver that restarts replays the trials from here."""

from __future__ import annotations

import json
import time
from typing import Any

from ..model import JobRequest, new_run_id
from . import events
from .db import Connection, dialect, os_user, write
from .jobs import enqueue
from .transitions import FINAL_SWEEP, FINAL_TRIAL, NEW, SWEEP, TRIAL, allowed

__all__ = ["FINAL_SWEEP", "FINAL_TRIAL", "SweepNotFound"]

JSON_FIELDS = ("space", "objective", "options", "error")
TRIAL_JSON_FIELDS = ("params", "system", "error")
BOOKKEEPING = frozenset(
    ("pid", "host", "best_trial", "best_run_id", "best_value", "note", "started_at")
)


class SweepNotFound(LookupError):
    pass


def create(
    conn: Connection, *, name: str, template_id: str, space: dict[str, Any],
    objective: dict[str, Any], sampler: str, seed: int | None, budget: int,
    timeout_s: float | None, concurrency: int, executor: str, gpus: int | None,
    options: dict[str, Any], owner: str | None = None,
) -> str:  # fmt: skip
    """Record a sweep (`queued`); returns its id. Checked by the caller (sweeps.space)."""
    sweep_id = new_run_id()
    now = time.time()
    assert allowed(SWEEP, NEW, "queued")
    with write(conn):
        conn.execute(
            "INSERT INTO sweeps (id, name, template_id, space, objective, sampler, seed, budget, "
            "timeout_s, concurrency, executor, gpus, options, status, \"user\", owner, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
            (sweep_id, name, template_id, json.dumps(space), json.dumps(objective), sampler,
             seed, budget, timeout_s, concurrency, executor, gpus, json.dumps(options),
             os_user(), owner or os_user(), now),
        )  # fmt: skip
        events.append(conn, template_id, "sweep", {"sweep_id": sweep_id, "status": "queued"}, now)
    return sweep_id


def resolve_id(conn: Connection, ref: str) -> str:
    """A full sweep id or a unique prefix of one (at least 4 hex digits); SweepNotFound else."""
    ref = (ref or "").strip().lower()
    if len(ref) < 4 or any(c not in "0123456789abcdef" for c in ref):
        raise SweepNotFound(f"no sweep {ref!r}: sweep ids are hex digits (give at least 4)")
    rows = conn.execute(
        "SELECT id FROM sweeps WHERE id >= ? AND id < ? ORDER BY id LIMIT 2", (ref, ref + "g")
    ).fetchall()
    if not rows:
        raise SweepNotFound(f"no sweep {ref!r}")
    if len(rows) > 1:
        raise SweepNotFound(
            f"no sweep {ref!r}: the prefix matches several sweeps, give more digits"
        )
    found: str = rows[0][0]
    return found


def _decode(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    item = dict(row)
    for key in names:
        if key in item:
            item[key] = json.loads(item[key]) if item[key] else None
    return item


def get(conn: Connection, sweep_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
    if row is None:
        raise SweepNotFound(f"no sweep {sweep_id!r}")
    return _decode(row, JSON_FIELDS)


def list_sweeps(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    return [
        _decode(r, JSON_FIELDS)
        for r in conn.execute("SELECT * FROM sweeps ORDER BY created_at DESC LIMIT ?", (limit,))
    ]


def unfinished(conn: Connection) -> list[dict[str, Any]]:
    """Sweeps still queued, running or cancelling (a driver should be at them)."""
    return [
        _decode(r, JSON_FIELDS)
        for r in conn.execute(
            "SELECT * FROM sweeps WHERE status IN ('queued', 'running', 'cancelling') "
            "ORDER BY created_at"
        )
    ]


def set_status(
    conn: Connection, sweep_id: str, status: str, error: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:  # fmt: skip
    """Move a sweep to `status` (with pid, host, note, ...); False, writing nothing, when the
    SWEEP table does not allow it from where the sweep is."""
    unknown = set(fields) - BOOKKEEPING
    if unknown:
        raise ValueError(f"unknown sweep fields: {', '.join(sorted(unknown))}")
    now = time.time()
    values: dict[str, Any] = {"status": status, **fields}
    if status in FINAL_SWEEP or status == "failed":
        values["ended_at"] = now
    elif status in ("running", "queued"):
        values["ended_at"] = None
    if error is not None:
        values["error"] = json.dumps(error)
    with write(conn):
        row = conn.execute(
            "SELECT status, started_at, template_id FROM sweeps WHERE id = ?", (sweep_id,)
        ).fetchone()
        if row is None:
            raise SweepNotFound(f"no sweep {sweep_id!r}")
        if not allowed(SWEEP, row[0], status):
            return False
        if status == "running" and row[1] is None:
            values.setdefault("started_at", now)
        conn.execute(
            f"UPDATE sweeps SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
            [*values.values(), sweep_id],
        )
        events.append(conn, row[2], "sweep", {"sweep_id": sweep_id, "status": status}, now)
    return True


def update(conn: Connection, sweep_id: str, **fields: Any) -> None:
    """Bookkeeping (best trial, note, driver pid); never the status: that is set_status()'s."""
    unknown = set(fields) - BOOKKEEPING
    if unknown:
        raise ValueError(f"unknown sweep fields: {', '.join(sorted(unknown))}")
    if not fields:
        return
    with write(conn):
        conn.execute(
            f"UPDATE sweeps SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
            [*fields.values(), sweep_id],
        )
        if "best_trial" in fields:
            events.append(
                conn, fields.get("best_run_id"), "sweep",
                {"sweep_id": sweep_id, "best_trial": fields["best_trial"]},
            )  # fmt: skip


# --- trials -----------------------------------------------------------------------------------


def queue_trial(
    conn: Connection, sweep_id: str, number: int, request: JobRequest,
    params: dict[str, Any], system: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """One transaction: the trial's job queued (its run `queued`, parent the template), the run
    marked with the sweep, and the trial row `running`. Returns the run id."""
    now = time.time()
    with write(conn):
        run_id = enqueue(conn, request, now)
        conn.execute("UPDATE runs SET sweep_id = ? WHERE id = ?", (sweep_id, run_id))
        _insert_trial(conn, sweep_id, number, "running", run_id, params, system, None, now)
    return run_id


def failed_trial(
    conn: Connection, sweep_id: str, number: int, params: dict[str, Any],
    error: dict[str, Any], system: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """A trial that could not even be queued (its values refused): recorded `failed`, no run."""
    now = time.time()
    with write(conn):
        _insert_trial(conn, sweep_id, number, "failed", None, params, system, error, now)


def reuse_trial(
    conn: Connection, sweep_id: str, number: int, run_id: str, params: dict[str, Any],
    system: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """A trial whose computation ran before (a cache hit): recorded `running` with that earlier
    run (no job is queued), for the driver to tell at once."""
    now = time.time()
    with write(conn):
        _insert_trial(conn, sweep_id, number, "running", run_id, params, system, None, now)


def cached_trial_run(conn: Connection, cache_key: str) -> str | None:
    """The newest trial run with this cache key (sweep_trials.system) whose job finished and
    whose run is still there; None if there is none."""
    row = conn.execute(
        "SELECT t.run_id FROM sweep_trials t JOIN runs r ON r.id = t.run_id "
        "JOIN jobs j ON j.run_id = t.run_id "
        f"WHERE {dialect(conn).json_text('t.system', 'cache_key')} = ? AND j.state = 'finished' "
        "AND r.status = 'finished' ORDER BY j.ended_at DESC LIMIT 1",
        (cache_key,),
    ).fetchone()
    return row[0] if row else None


def of_pipeline(conn: Connection, pipeline_run_id: str) -> dict[str, dict[str, Any]]:
    """{stage: its sweep} of a pipeline run's sweep stages (the newest one per stage)."""
    found: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        f"SELECT * FROM sweeps WHERE {dialect(conn).json_text('options', 'pipeline_run_id')} = ? "
        "ORDER BY created_at",
        (pipeline_run_id,),
    ):
        sweep = _decode(r, JSON_FIELDS)
        found[str((sweep["options"] or {}).get("stage"))] = sweep
    return found


def _insert_trial(
    conn: Connection, sweep_id: str, number: int, status: str, run_id: str | None,
    params: dict[str, Any], system: dict[str, Any] | None, error: dict[str, Any] | None,
    now: float,
) -> None:  # fmt: skip
    assert allowed(TRIAL, NEW, status)
    conn.execute(
        "INSERT INTO sweep_trials (sweep_id, number, run_id, status, params, system, error, "
        "started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (sweep_id, number, run_id, status, json.dumps(params), json.dumps(system or {}),
         json.dumps(error) if error else None, now, now if status in FINAL_TRIAL else None),
    )  # fmt: skip
    events.append(
        conn, run_id, "sweep", {"sweep_id": sweep_id, "trial": number, "status": status}, now
    )


def set_trial(conn: Connection, sweep_id: str, number: int, status: str, **fields: Any) -> bool:
    """Move a trial to `status` (value, step, error); False, writing nothing, when the TRIAL
    table does not allow it (a trial told once is never told again)."""
    unknown = set(fields) - {"value", "step", "error"}
    if unknown:
        raise ValueError(f"unknown trial fields: {', '.join(sorted(unknown))}")
    now = time.time()
    values: dict[str, Any] = {"status": status}
    for key, value in fields.items():
        values[key] = json.dumps(value) if key == "error" and value is not None else value
    if status in FINAL_TRIAL:
        values["ended_at"] = now
    with write(conn):
        row = conn.execute(
            "SELECT status, run_id FROM sweep_trials WHERE sweep_id = ? AND number = ?",
            (sweep_id, number),
        ).fetchone()
        if row is None or not allowed(TRIAL, row[0], status):
            return False
        conn.execute(
            f"UPDATE sweep_trials SET {', '.join(f'{k} = ?' for k in values)} "
            "WHERE sweep_id = ? AND number = ?",
            [*values.values(), sweep_id, number],
        )
        events.append(
            conn, row[1], "sweep", {"sweep_id": sweep_id, "trial": number, "status": status}, now
        )
    return True


def set_trial_step(conn: Connection, sweep_id: str, number: int, step: int) -> None:
    """The last intermediate step the pruner saw (bookkeeping, no status move)."""
    with write(conn):
        conn.execute(
            "UPDATE sweep_trials SET step = ? WHERE sweep_id = ? AND number = ?",
            (step, sweep_id, number),
        )


def trials(conn: Connection, sweep_id: str) -> list[dict[str, Any]]:
    """Every trial in number order, with its run's status and its job's state."""
    out = []
    for r in conn.execute(
        "SELECT t.*, r.status AS run_status, j.state AS job_state, j.executor AS executor, "
        "j.error AS job_error, r.started_at AS run_started_at, r.ended_at AS run_ended_at "
        "FROM sweep_trials t LEFT JOIN runs r ON r.id = t.run_id "
        "LEFT JOIN jobs j ON j.run_id = t.run_id WHERE t.sweep_id = ? ORDER BY t.number",
        (sweep_id,),
    ):
        out.append(_decode(r, (*TRIAL_JSON_FIELDS, "job_error")))
    return out


def counts(conn: Connection, sweep_id: str) -> dict[str, int]:
    """{trial status: how many}."""
    return {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT status, COUNT(*) FROM sweep_trials WHERE sweep_id = ? GROUP BY status",
            (sweep_id,),
        )
    }


def job_states(
    conn: Connection, run_ids: list[str]
) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """{run id: (job state, job error)} of trial runs."""
    if not run_ids:
        return {}
    return {
        r[0]: (r[1], json.loads(r[2]) if r[2] else None)
        for r in conn.execute(
            f"SELECT run_id, state, error FROM jobs WHERE run_id IN ({', '.join('?' * len(run_ids))})",
            run_ids,
        )
    }


def sweep_of_run(conn: Connection, run_id: str) -> str | None:
    row = conn.execute("SELECT sweep_id FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None
