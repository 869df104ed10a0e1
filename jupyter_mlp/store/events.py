"""The append-only change feed: every write that a live view cares about adds an event."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any


def append(
    conn: sqlite3.Connection,
    run_id: str | None,
    type_: str,
    data: dict[str, Any],
    now: float | None = None,
) -> None:
    conn.execute(
        "INSERT INTO events (time, run_id, type, data) VALUES (?, ?, ?, ?)",
        (now or time.time(), run_id, type_, json.dumps(data)),
    )


def after(conn: sqlite3.Connection, event_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    return [
        {"id": r[0], "time": r[1], "run_id": r[2], "type": r[3], "data": json.loads(r[4])}
        for r in conn.execute(
            "SELECT id, time, run_id, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (event_id, limit),
        )
    ]


def last_id(conn: sqlite3.Connection) -> int:
    last: int = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
    return last
