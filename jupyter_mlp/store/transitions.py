"""The status transition tables of runs, jobs, pipeline stages and pipeline runs: the one place
that says which status may follow which. Every status column is written through one function
that consults its table and refuses a move the table does not allow:

    runs             records.apply_batch (guard_run_fields), jobs.transition for a job's run,
                     runs.mark_lost (running -> lost, only for runs no live job owns)
    jobs             jobs.transition
    pipeline_stages  pipelines.set_stage
    pipeline_runs    pipelines.set_status
    sweeps           sweeps.set_status
    sweep_trials     sweeps.set_trial

A refused move writes nothing and returns False / None, so whoever gets there first wins (a
cancel beats a late "failed", a finished job is never cancelled after the fact)."""

from __future__ import annotations

from ..model import (
    CANCELLED,
    FAILED,
    FINISHED,
    INTERRUPTED,
    LOST,
    PRUNED,
    QUEUED,
    RUNNING,
    STATUSES,
)
from .db import Connection

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any

NEW = None  # the row does not exist yet

# Runs. A new row may be in any status (a spool replayed whole, a run imported or recorded
# afterwards). A lost run (no heartbeat for a while) may still come back or end: the reconciler
# judged from the outside. A final run never changes again.
RUN: dict[str | None, frozenset[str]] = {
    NEW: frozenset(STATUSES),
    QUEUED: frozenset((RUNNING, FAILED, CANCELLED)),
    RUNNING: frozenset((FINISHED, FAILED, INTERRUPTED, LOST, CANCELLED, PRUNED)),
    LOST: frozenset((RUNNING, FINISHED, FAILED, INTERRUPTED, CANCELLED, PRUNED)),
}

# Jobs: queued -> running -> finished | failed | cancelled | pruned (a sweep trial's pruner);
# queued -> failed | cancelled.
JOB: dict[str | None, frozenset[str]] = {
    NEW: frozenset((QUEUED,)),
    QUEUED: frozenset((RUNNING, FAILED, CANCELLED)),
    RUNNING: frozenset((FINISHED, FAILED, CANCELLED, PRUNED)),
}

# Pipeline stages. A retry queues a stage again (queued/running -> queued, with a new run).
PENDING, SUCCEEDED, CACHED, SKIPPED = "pending", "succeeded", "cached", "skipped"
STAGE: dict[str | None, frozenset[str]] = {
    NEW: frozenset((PENDING,)),
    PENDING: frozenset((QUEUED, CACHED, SKIPPED, FAILED, CANCELLED)),
    QUEUED: frozenset((QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)),
    RUNNING: frozenset((QUEUED, SUCCEEDED, FAILED, CANCELLED)),
}
STAGE_STATUSES = (PENDING, QUEUED, RUNNING, SUCCEEDED, CACHED, FAILED, SKIPPED, CANCELLED)
FINAL_STAGE = frozenset((CACHED, SUCCEEDED, FAILED, SKIPPED, CANCELLED))
DONE_STAGE = frozenset((CACHED, SUCCEEDED))

# Pipeline runs: the driver moves queued -> running -> succeeded | failed; a cancel asks
# (cancelling) and the driver answers (cancelled).
CANCELLING = "cancelling"
PIPELINE: dict[str | None, frozenset[str]] = {
    NEW: frozenset((QUEUED,)),
    QUEUED: frozenset((RUNNING, CANCELLING, FAILED, CANCELLED)),
    RUNNING: frozenset((SUCCEEDED, FAILED, CANCELLING, CANCELLED)),
    CANCELLING: frozenset((CANCELLED, FAILED)),
}
FINAL_PIPELINE = frozenset((SUCCEEDED, FAILED, CANCELLED))

# Sweeps: the driver moves queued -> running -> finished | failed; a cancel asks (cancelling)
# and the driver answers (cancelled). A new driver takes over a running sweep whose driver died,
# or resumes a failed one (running -> running, failed -> running). `sweep resume` of a cancelled
# one queues it again (cancelled -> queued): a driver that merely starts never revives it.
SWEEP: dict[str | None, frozenset[str]] = {
    NEW: frozenset((QUEUED,)),
    QUEUED: frozenset((RUNNING, CANCELLING, FAILED, CANCELLED)),
    RUNNING: frozenset((RUNNING, FINISHED, FAILED, CANCELLING, CANCELLED)),
    FAILED: frozenset((RUNNING,)),
    CANCELLING: frozenset((CANCELLED, FAILED)),
    CANCELLED: frozenset((QUEUED,)),
}
FINAL_SWEEP = frozenset((FINISHED, CANCELLED))  # failed can be resumed

# Sweep trials: asked (its job queued) -> told. A trial is `running` from the sampler's view
# while its job is queued or running.
TRIAL: dict[str | None, frozenset[str]] = {
    NEW: frozenset((RUNNING, FAILED)),
    RUNNING: frozenset((FINISHED, PRUNED, FAILED, CANCELLED)),
}
FINAL_TRIAL = frozenset((FINISHED, PRUNED, FAILED, CANCELLED))


def allowed(table: dict[str | None, frozenset[str]], current: str | None, to: str) -> bool:
    return to in table.get(current, frozenset())


def guard_run_fields(conn: Connection, run_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A run's fields with a status move the RUN table refuses taken out (with the end time and
    error that came with it); the same status again is no move and stays."""
    to = fields.get("status")
    if to is None:
        return fields
    row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    current = row[0] if row is not None else NEW
    if to == current or allowed(RUN, current, to):
        return fields
    return {k: v for k, v in fields.items() if k not in ("status", "ended_at", "error")}
