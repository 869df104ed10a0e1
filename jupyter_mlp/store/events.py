"""The append-only change feed: every write that a live view cares about adds an event.

Readers catch up by id (`after`). On SQLite one writer at a time commits; on PostgreSQL every
write transaction holds the store's advisory write lock until it commits (db.write), so ids
become visible in order there too and a reader at `id > last` never skips one."""

from __future__ import annotations

import json
import sqlite3
import time

from .db import Connection, write

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any


def append(
    conn: Connection,
    run_id: str | None,
    type_: str,
    data: dict[str, Any],
    now: float | None = None,
) -> None:
    if type(conn) is not sqlite3.Connection and not getattr(conn, "in_write", True):
        # PostgreSQL: an event is appended under the store's write lock, held to commit
        # (db.write), so that no id becomes visible after a larger one
        with write(conn):
            append(conn, run_id, type_, data, now)
        return
    conn.execute(
        "INSERT INTO events (time, run_id, type, data) VALUES (?, ?, ?, ?)",
        (now or time.time(), run_id, type_, json.dumps(data)),
    )


def after(conn: Connection, event_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    return [
        {"id": r[0], "time": r[1], "run_id": r[2], "type": r[3], "data": json.loads(r[4])}
        for r in conn.execute(
            "SELECT id, time, run_id, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (event_id, limit),
        )
    ]


def last_id(conn: Connection) -> int:
    last: int = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
    return last
