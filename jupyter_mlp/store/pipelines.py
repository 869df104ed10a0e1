"""Pipeline runs and their stages: each status moves through its table (transitions.py) in one
function here, each move an event; and what the DAG runner reads of its stages' runs."""

from __future__ import annotations

import json
import time
from typing import Any

from ..model import new_run_id
from . import events
from .db import Connection, os_user, write
from .transitions import (
    DONE_STAGE,
    FINAL_PIPELINE,
    FINAL_STAGE,
    NEW,
    PIPELINE,
    STAGE,
    STAGE_STATUSES,
    allowed,
)

__all__ = ["DONE_STAGE", "FINAL_PIPELINE", "FINAL_STAGE", "STAGE_STATUSES"]


class PipelineRunNotFound(LookupError):
    pass


def create(
    conn: Connection, spec: dict[str, Any], version: str, path: str | None,
    params: dict[str, Any], executor: str, options: dict[str, Any], owner: str | None = None,
) -> str:  # fmt: skip
    run_id = new_run_id()
    now = time.time()
    assert allowed(PIPELINE, NEW, "queued") and allowed(STAGE, NEW, "pending")
    with write(conn):
        conn.execute(
            "INSERT INTO pipeline_runs (id, name, path, version, spec, params, executor, options, "
            "status, owner, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            (run_id, spec.get("name") or "pipeline", path, version, json.dumps(spec),
             json.dumps(params), executor, json.dumps(options), owner or os_user(), now),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO pipeline_stages (pipeline_run_id, stage, status) VALUES (?, ?, 'pending')",
            [(run_id, name) for name in spec.get("stages", {})],
        )
        events.append(conn, None, "pipeline", {"pipeline_run_id": run_id, "status": "queued"}, now)
    return run_id


def resolve_id(conn: Connection, ref: str) -> str:
    """A full pipeline run id, or a unique prefix of one (at least 4 hex digits), to the full id
    (as run ids resolve: store.runs.resolve_id). PipelineRunNotFound otherwise."""
    ref = (ref or "").strip().lower()
    if len(ref) < 4 or any(c not in "0123456789abcdef" for c in ref):
        raise PipelineRunNotFound(
            f"no pipeline run {ref!r}: pipeline run ids are hex digits (give at least 4)"
        )
    rows = conn.execute(
        "SELECT id FROM pipeline_runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
        (ref, ref + "g"),
    ).fetchall()
    if not rows:
        raise PipelineRunNotFound(f"no pipeline run {ref!r}")
    if len(rows) > 1:
        raise PipelineRunNotFound(
            f"no pipeline run {ref!r}: the prefix matches several pipeline runs, give more digits"
        )
    full: str = rows[0][0]
    return full


def get(conn: Connection, pipeline_run_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM pipeline_runs WHERE id = ?", (pipeline_run_id,)).fetchone()
    if row is None:
        raise PipelineRunNotFound(f"no pipeline run {pipeline_run_id!r}")
    run = dict(row)
    for key in ("spec", "params", "options", "error"):
        run[key] = json.loads(run[key]) if run[key] else None
    found = {}
    for s in conn.execute(
        "SELECT * FROM pipeline_stages WHERE pipeline_run_id = ?", (pipeline_run_id,)
    ):
        stage = dict(s)
        stage.pop("pipeline_run_id")
        stage["params"] = json.loads(stage["params"]) if stage["params"] else None
        stage["error"] = json.loads(stage["error"]) if stage["error"] else None
        found[stage.pop("stage")] = stage
    order = list((run["spec"] or {}).get("stages", {}))  # the spec's order
    run["stages"] = {name: found[name] for name in order if name in found}
    return run


def list_runs(conn: Connection, path: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, name, path, version, status, params, executor, owner, created_at, started_at, "
        "ended_at FROM pipeline_runs"
    )
    args: list[Any] = []
    if path is not None:
        sql += " WHERE path = ?"
        args.append(path)
    sql += " ORDER BY created_at DESC LIMIT ?"
    args.append(limit)
    out = []
    for r in conn.execute(sql, args):
        item = dict(r)
        item["params"] = json.loads(item["params"])
        out.append(item)
    return out


def set_status(
    conn: Connection,
    pipeline_run_id: str,
    status: str,
    error: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move a pipeline run to `status` (with pid, host, ...); False, writing nothing, when the
    PIPELINE table does not allow it from where the run is."""
    now = time.time()
    values: dict[str, Any] = {"status": status, **fields}
    if status == "running":
        values.setdefault("started_at", now)
    if status in FINAL_PIPELINE:
        values["ended_at"] = now
    if error is not None:
        values["error"] = json.dumps(error)
    with write(conn):
        row = conn.execute(
            "SELECT status FROM pipeline_runs WHERE id = ?", (pipeline_run_id,)
        ).fetchone()
        if row is None:
            raise PipelineRunNotFound(f"no pipeline run {pipeline_run_id!r}")
        if not allowed(PIPELINE, row[0], status):
            return False
        conn.execute(
            f"UPDATE pipeline_runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
            [*values.values(), pipeline_run_id],
        )
        events.append(
            conn, None, "pipeline", {"pipeline_run_id": pipeline_run_id, "status": status}, now
        )
    return True


def set_stage(
    conn: Connection, pipeline_run_id: str, stage: str, status: str, **fields: Any
) -> bool:
    """Move a stage to `status` (and set run_id, cache_key, params, error, ...); False, writing
    nothing, when the STAGE table does not allow it from where the stage is."""
    now = time.time()
    values: dict[str, Any] = {"status": status}
    for key, value in fields.items():
        values[key] = (
            json.dumps(value) if key in ("params", "error") and value is not None else value
        )
    if status in ("queued", "cached") and "started_at" not in values:
        values["started_at"] = now
    if status in FINAL_STAGE:
        values["ended_at"] = now
    with write(conn):
        row = conn.execute(
            "SELECT status FROM pipeline_stages WHERE pipeline_run_id = ? AND stage = ?",
            (pipeline_run_id, stage),
        ).fetchone()
        if row is None or not allowed(STAGE, row[0], status):
            return False
        conn.execute(
            f"UPDATE pipeline_stages SET {', '.join(f'{k} = ?' for k in values)} "
            "WHERE pipeline_run_id = ? AND stage = ?",
            [*values.values(), pipeline_run_id, stage],
        )
        events.append(
            conn, fields.get("run_id"), "pipeline",
            {"pipeline_run_id": pipeline_run_id, "stage": stage, "status": status}, now,
        )  # fmt: skip
    return True


def cached_stage(conn: Connection, cache_key: str) -> dict[str, Any] | None:
    """The newest stage run with this cache key that succeeded and whose run is still there."""
    row = conn.execute(
        "SELECT s.pipeline_run_id, s.run_id FROM pipeline_stages s JOIN runs r ON r.id = s.run_id "
        "WHERE s.cache_key = ? AND s.status = 'succeeded' AND r.status = 'finished' "
        "ORDER BY s.ended_at DESC LIMIT 1",
        (cache_key,),
    ).fetchone()
    return dict(row) if row else None


def stage_run_outcomes(conn: Connection, run_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """{run id: (status, error JSON)} of stage runs. A stage's run is a job: its state is the
    job's (the run's own status only for a run without a job row)."""
    if not run_ids:
        return {}
    return {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT r.id, COALESCE(j.state, r.status), COALESCE(j.error, r.error) FROM runs r "
            f"LEFT JOIN jobs j ON j.run_id = r.id WHERE r.id IN ({', '.join('?' * len(run_ids))})",
            run_ids,
        )
    }


def last_failed_cell_error(conn: Connection, run_id: str) -> str | None:
    """The error (JSON text) of the run's last cell that did not end ok, if any."""
    row = conn.execute(
        "SELECT error FROM cells WHERE run_id = ? AND status != 'ok' ORDER BY seq DESC LIMIT 1",
        (run_id,),
    ).fetchone()
    return row[0] if row and row[0] else None
