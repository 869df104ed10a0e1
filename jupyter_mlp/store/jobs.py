"""Jobs in the store: the `jobs` row beside each job run and its state machine.

`transition()` is the one place a job's state (and its run's status) changes, by the JOB table
of transitions.py:

    queued -> running -> finished | failed | cancelled
    queued -> failed | cancelled

A transition that is not allowed from the current state is refused (returns None), so whoever
gets there first wins: a cancel beats the job's own "failed: kernel died", a job that finished
is never cancelled after the fact.
"""

from __future__ import annotations

import json
import time
from dataclasses import fields
from typing import Any

from .. import model
from ..model import Job, JobRequest
from . import events
from .db import Connection, os_user, server_user
from .records import apply_batch
from .transitions import JOB, allowed

QUEUED, RUNNING = model.QUEUED, model.RUNNING
FINISHED, FAILED, CANCELLED = model.FINISHED, model.FAILED, model.CANCELLED
FINAL = model.FINAL_JOB_STATES


class JobNotFound(LookupError):
    """A run that is not a job (a notebook's or a script's own run), or no run at all."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id

    def __str__(self) -> str:
        return f"run {self.run_id} is not a job"


COLUMNS = tuple(f.name for f in fields(Job))
JSON_COLUMNS = frozenset(("params", "gpus", "options", "error"))


# --- rows ----------------------------------------------------------------------------------------


def _encode(name: str, value: Any) -> Any:
    return json.dumps(value) if name in JSON_COLUMNS and value is not None else value


def _row_to_job(row: Any) -> Job:
    data = {k: row[k] for k in COLUMNS}
    for k in JSON_COLUMNS:
        if isinstance(data[k], str):
            data[k] = json.loads(data[k])
    data["params"] = data["params"] or {}
    data["options"] = data["options"] or {}
    return Job(**data)


def get_job(conn: Connection, run_id: str) -> Job | None:
    row = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return _row_to_job(row) if row is not None else None


def list_jobs(
    conn: Connection,
    executor: str | None = None,
    states: tuple[str, ...] | None = None,
    dispatcher: str | None = None,
) -> list[Job]:
    """Oldest first: the queue order. dispatcher: only the jobs that user's services start."""
    where, args = [], []
    if dispatcher is not None:
        where.append("dispatcher = ?")
        args.append(dispatcher)
    if executor is not None:
        where.append("executor = ?")
        args.append(executor)
    if states:
        where.append(f"state IN ({', '.join('?' * len(states))})")
        args.extend(states)
    sql = f"SELECT {', '.join(COLUMNS)} FROM jobs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [_row_to_job(r) for r in conn.execute(sql + " ORDER BY submitted_at, run_id", args)]


def enqueue(conn: Connection, request: JobRequest, now: float | None = None) -> str:
    """Create the run (`queued`, with its params) and its job row; the caller holds the write
    transaction. Returns the new run id."""
    now = now or time.time()
    run_id = model.new_run_id()
    run = {
        "status": QUEUED, "kind": request.kind, "project": request.project, "name": request.name,
        "parent_id": request.parent_id, "pipeline_run_id": request.pipeline_run_id,
        "stage": request.stage, "notebook": request.notebook, "snapshot": request.snapshot,
        "kernel": request.kernel, "user": os_user(), "owner": request.owner or os_user(),
        "created_at": now, "tags": list(request.tags),
    }  # fmt: skip
    apply_batch(conn, run_id, {"run": run, "params": list(request.param_rows)})
    job = Job(
        run_id=run_id, executor=request.executor, state=QUEUED, kernel=request.kernel,
        submitted_at=now, params=request.params, notebook=request.notebook,
        snapshot=request.snapshot, cwd=request.cwd, gpus_requested=request.gpus,
        options=request.options, dispatcher=server_user(),
    )  # fmt: skip
    values = {k: _encode(k, v) for k, v in job.as_dict().items()}
    conn.execute(
        f"INSERT INTO jobs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        list(values.values()),
    )
    return run_id


def update_job(conn: Connection, run_id: str, **values: Any) -> None:
    """Bookkeeping fields (pids, cells_total, note); never the state: that is transition()'s."""
    if "state" in values:
        raise ValueError("a job's state changes through transition() only")
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown job fields: {', '.join(sorted(unknown))}")
    if not values:
        return
    conn.execute(
        f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in values)} WHERE run_id = ?",
        [*(_encode(k, v) for k, v in values.items()), run_id],
    )


def transition(
    conn: Connection,
    run_id: str,
    to: str,
    *,
    error: dict[str, Any] | None = None,
    now: float | None = None,
    **values: Any,
) -> Job | None:
    """Move the job (and its run's status) to `to`; None when that is not allowed from where the
    job is. The caller holds the write transaction."""
    job = get_job(conn, run_id)
    if job is None:
        raise JobNotFound(run_id)
    if not allowed(JOB, job.state, to):
        return None
    now = now or time.time()
    job_values: dict[str, Any] = {"state": to, **values}
    run_fields: dict[str, Any] = {"status": to}
    if to == RUNNING:
        job_values["started_at"] = run_fields["started_at"] = now
        if values.get("host"):
            run_fields["host"] = values["host"]
    if to in FINAL:
        job_values["ended_at"] = run_fields["ended_at"] = now
        if error is not None:
            job_values["error"] = run_fields["error"] = error
    conn.execute(
        f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in job_values)} WHERE run_id = ?",
        [*(_encode(k, v) for k, v in job_values.items()), run_id],
    )
    apply_batch(conn, run_id, {"run": run_fields})
    return get_job(conn, run_id)


def set_output_notebook(conn: Connection, run_id: str, digest: str) -> None:
    conn.execute("UPDATE runs SET output_notebook = ? WHERE id = ?", (digest, run_id))
    events.append(conn, run_id, "run", {"fields": ["output_notebook"]})


class BadReport(ValueError):
    """A remote job's report that cannot be applied (nothing is written)."""


REMOTE_JOB_FIELDS = {"cells_total": int, "note": str, "host": str, "worker": str, "attempt": str}


def apply_remote_report(
    conn: Connection, run_id: str, report: dict[str, Any], blob_exists: Any
) -> dict[str, Any]:
    """What a job on a remote worker reports about itself over HTTP (its run token names the run):
    {"state": running|finished|failed|cancelled, "error": {...}, "cells_total", "note", "host",
    "worker", "attempt", "gpus": the cards it was given, "output_notebook": blob digest}. The state goes through transition(),
    so a report that comes too late (the job was cancelled, or failed because its worker was
    lost) is refused, writes nothing, and the answer says what the job is. `attempt` names one
    start of the job's task: a start repeated by the same attempt (a retried request) is
    accepted again, one by another attempt (Dask retrying the task elsewhere) is not. The caller
    holds the write transaction."""
    job = get_job(conn, run_id)
    if job is None:
        raise BadReport(f"run {run_id} is not a job")
    unknown = set(report) - {*REMOTE_JOB_FIELDS, "state", "error", "output_notebook", "gpus"}
    if unknown:
        raise BadReport(f"unknown fields: {', '.join(sorted(unknown))}")
    gpus = report.get("gpus")
    if gpus is not None and not (
        isinstance(gpus, list) and len(gpus) <= 64 and all(isinstance(g, str) for g in gpus)
    ):
        raise BadReport("gpus must be a list of card ids")
    values: dict[str, Any] = {}
    for key, kind in REMOTE_JOB_FIELDS.items():
        if report.get(key) is not None:
            if not isinstance(report[key], kind) or isinstance(report[key], bool):
                raise BadReport(f"{key} must be {kind.__name__}")
            values[key] = report[key][:2000] if kind is str else report[key]
    digest = report.get("output_notebook")
    if digest is not None and not (isinstance(digest, str) and blob_exists(digest)):
        raise BadReport("output_notebook must be the sha256 of a blob uploaded before")
    to, error = report.get("state"), report.get("error")
    if to is not None and to not in (RUNNING, FINISHED, FAILED, CANCELLED):
        raise BadReport("state must be running, finished, failed or cancelled")
    if error is not None and not (
        isinstance(error, dict) and all(isinstance(v, (str, int)) for v in error.values())
    ):
        raise BadReport("error must be an object of strings")
    attempt = values.pop("attempt", None)
    mine = attempt is None or job.options.get("attempt") in (None, attempt)
    if to == RUNNING and job.state == RUNNING and attempt and job.options.get("attempt") == attempt:
        accepted = True  # the same start again (the first answer was lost)
    elif to is not None:
        extra = {"host": values["host"]} if to == RUNNING and "host" in values else {}
        accepted = mine and transition(conn, run_id, to, error=error, **extra) is not None
    else:
        accepted = mine and not job.final
    if accepted:
        options = dict(job.options)
        worker = values.pop("worker", None)
        if worker is not None:
            options["worker"] = worker
        if attempt is not None:
            options["attempt"] = attempt
        if gpus is not None:
            values["gpus"] = [g[:100] for g in gpus]
        if options != job.options:
            values["options"] = options
        if values:
            update_job(conn, run_id, **values)
        if digest is not None:
            set_output_notebook(conn, run_id, digest)
    current = get_job(conn, run_id)
    assert current is not None
    return {"accepted": accepted, "state": current.state}


def progress(conn: Connection, run_id: str) -> tuple[int, int | None]:
    """(cells done, cells in the notebook) of a job run."""
    done = conn.execute(
        "SELECT COUNT(*) FROM cells WHERE run_id = ? AND status != ?", (run_id, RUNNING)
    ).fetchone()[0]
    total = conn.execute("SELECT cells_total FROM jobs WHERE run_id = ?", (run_id,)).fetchone()
    return done, (total[0] if total else None)


def status(conn: Connection, run_id: str) -> dict[str, Any]:
    """What a caller polls: state, progress, error, output notebook."""
    job = get_job(conn, run_id)
    if job is None:
        raise JobNotFound(run_id)
    run = conn.execute(
        "SELECT status, output_notebook FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    done, total = progress(conn, run_id)
    return {
        "run_id": run_id, "state": job.state, "run_status": run["status"] if run else None,
        "executor": job.executor, "cells_done": done, "cells_total": total,
        "gpus": job.gpus, "error": job.error, "note": job.note,
        "output_notebook": run["output_notebook"] if run else None,
        "submitted_at": job.submitted_at, "started_at": job.started_at, "ended_at": job.ended_at,
    }  # fmt: skip
