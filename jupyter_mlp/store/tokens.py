"""Run tokens: a remote tracker (a Dask job, another machine) may write to one run and nothing else.

A token is `<run id>.<secret>`; only its sha256 is stored, and it stops working when its run
reaches a final status."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time

from ..model import FINAL_STATUSES, is_run_id


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(conn: sqlite3.Connection, run_id: str) -> str:
    """A new token for `run_id`; the caller holds the write transaction."""
    token = f"{run_id}.{secrets.token_urlsafe(32)}"
    conn.execute(
        "INSERT INTO run_tokens (hash, run_id, created_at) VALUES (?, ?, ?)",
        (_hash(token), run_id, time.time()),
    )
    return token


def run_of(conn: sqlite3.Connection, token: str | None) -> str | None:
    """The run a token may write to, or None (unknown token, or the run has ended)."""
    if not token or "." not in token or len(token) > 200:
        return None
    run_id = token.split(".", 1)[0]
    if not is_run_id(run_id):
        return None
    row = conn.execute(
        "SELECT t.run_id, r.status FROM run_tokens t JOIN runs r ON r.id = t.run_id "
        "WHERE t.hash = ?",
        (_hash(token),),
    ).fetchone()
    if row is None or row[0] != run_id or row[1] in FINAL_STATUSES:
        return None
    return row[0]


def revoke(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute("DELETE FROM run_tokens WHERE run_id = ?", (run_id,))
