"""What a rerun or a pipeline stage reads of its template run: the run's row, its parameters and
its outputs (execution/submit.py, pipelines/validate.py and pipelines/dag.py call these)."""

from __future__ import annotations

from typing import Any

from .db import Connection

TEMPLATE_COLUMNS = ("id", "project", "name", "notebook", "snapshot", "kernel", "gpu", "tags")


def template_run(conn: Connection, run_id: str) -> dict[str, Any] | None:
    """{id, project, name, notebook, snapshot, kernel, gpu, tags} of a run, None if there is none."""
    row = conn.execute(
        f"SELECT {', '.join(TEMPLATE_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    return dict(zip(TEMPLATE_COLUMNS, row)) if row is not None else None


def param_rows(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    """The run's parameters as stored: [{key, value (JSON text), type, source}], by key."""
    return [
        {"key": r[0], "value": r[1], "type": r[2], "source": r[3]}
        for r in conn.execute(
            "SELECT key, value, type, source FROM params WHERE run_id = ? ORDER BY key", (run_id,)
        )
    ]


def output_row(conn: Connection, run_id: str, name: str) -> dict[str, Any] | None:
    """One output of a run: {kind: value|artifact, value (JSON text), blob, filename}."""
    row = conn.execute(
        "SELECT kind, value, blob, filename FROM outputs WHERE run_id = ? AND name = ?",
        (run_id, name),
    ).fetchone()
    return {"kind": row[0], "value": row[1], "blob": row[2], "filename": row[3]} if row else None


def output_rows(conn: Connection, run_id: str) -> list[tuple[str, str, str | None]]:
    """Every output of a run: (name, kind, value as JSON text)."""
    return [
        (r[0], r[1], r[2])
        for r in conn.execute("SELECT name, kind, value FROM outputs WHERE run_id = ?", (run_id,))
    ]
