"""Run tokens: a remote tracker (a Dask job, another machine) may write to one run and nothing else.

A token is `<run id>.<secret>`; only its sha256 is stored. It stops working when its run really
ends (finished, failed, interrupted, cancelled; not `lost`: a run marked lost during an outage
still takes its own tracker's spooled records), when its run never started within
TOKEN_UNSTARTED_TTL_S of the token's issue, and when its run has been lost for longer than that.

A token may reference only blobs its own run uploaded (`record_upload` when the blob arrives,
`may_reference` before a batch names it)."""

from __future__ import annotations

import os
import time

from ..model import CANCELLED, FAILED, FINISHED, INTERRUPTED, LOST, QUEUED, is_run_id, sha256
from .db import Connection

ENDED = frozenset((FINISHED, FAILED, INTERRUPTED, CANCELLED))


def _ttl() -> float:
    """Seconds a token of a never-started (or lost) run stays valid: $MLP_TOKEN_TTL_S, 24 h."""
    try:
        value = float(os.environ.get("MLP_TOKEN_TTL_S", "86400"))
    except ValueError:
        return 86400.0
    return value if value > 0 else 86400.0


TOKEN_UNSTARTED_TTL_S = 86400.0  # the default of $MLP_TOKEN_TTL_S


def _hash(token: str) -> str:
    return sha256(token.encode("utf-8", "replace")).hexdigest()


def issue(conn: Connection, run_id: str) -> str:
    """A new token for `run_id`; the caller holds the write transaction."""
    import secrets

    token = f"{run_id}.{secrets.token_urlsafe(32)}"
    conn.execute(
        "INSERT INTO run_tokens (hash, run_id, created_at) VALUES (?, ?, ?)",
        (_hash(token), run_id, time.time()),
    )
    return token


def run_of(conn: Connection, token: str | None, now: float | None = None) -> str | None:
    """The run a token may write to, or None (unknown token, the run ended, or expired)."""
    if not isinstance(token, str) or "." not in token or len(token) > 200:
        return None
    run_id = token.split(".", 1)[0]
    if not is_run_id(run_id):
        return None
    row = conn.execute(
        "SELECT t.run_id, r.status, t.created_at, r.ended_at, r.heartbeat_at "
        "FROM run_tokens t JOIN runs r ON r.id = t.run_id WHERE t.hash = ?",
        (_hash(token),),
    ).fetchone()
    if row is None or row[0] != run_id or row[1] in ENDED:
        return None
    now = time.time() if now is None else now
    ttl = _ttl()
    issued = _number(row[2]) or 0.0
    if row[1] == QUEUED and issued < now - ttl:
        return None  # never started within a day: the token is dead
    if row[1] == LOST:
        last = max(_number(row[3]) or 0.0, _number(row[4]) or 0.0, issued)
        if last < now - ttl:
            return None
    return run_id  # the token's run, as the row says (checked above)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def revoke(conn: Connection, run_id: str) -> None:
    conn.execute("DELETE FROM run_tokens WHERE run_id = ?", (run_id,))


def expirable(conn: Connection, now: float | None = None) -> bool:
    """Whether `expire` has something to delete (a read, so that readers write only when needed)."""
    now = time.time() if now is None else now
    return (
        conn.execute(
            "SELECT 1 FROM run_tokens WHERE created_at < ? AND run_id IN "
            "(SELECT id FROM runs WHERE status = ?) LIMIT 1",
            (now - _ttl(), QUEUED),
        ).fetchone()
        is not None
    )


def expire(conn: Connection, now: float | None = None) -> int:
    """Delete tokens of runs that never started within the TTL (the reconciler calls this);
    returns how many. The caller holds the write transaction."""
    now = time.time() if now is None else now
    cur = conn.execute(
        "DELETE FROM run_tokens WHERE created_at < ? AND run_id IN "
        "(SELECT id FROM runs WHERE status = ?)",
        (now - _ttl(), QUEUED),
    )
    return cur.rowcount


def record_upload(conn: Connection, run_id: str, digest: str) -> None:
    """Remember that `run_id` uploaded the blob `digest` (the ingest blob route calls this after
    storing it); the caller holds the write transaction."""
    conn.execute(
        "INSERT INTO run_uploads (run_id, hash, time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (run_id, digest, time.time()),
    )


def may_reference(conn: Connection, run_id: str, digest: str) -> bool:
    """Whether a batch sent with `run_id`'s token may name the blob `digest`: one its run
    uploaded, or one the run already references (its snapshot, set when the server created it,
    or a job's inputs)."""
    if not isinstance(digest, str):
        return False
    if conn.execute(
        "SELECT 1 FROM run_uploads WHERE run_id = ? AND hash = ?", (run_id, digest)
    ).fetchone():
        return True
    row = conn.execute(
        "SELECT 1 FROM runs WHERE id = ? AND (snapshot = ? OR end_snapshot = ? OR "
        "output_notebook = ?)",
        (run_id, digest, digest, digest),
    ).fetchone()
    if row:
        return True
    return (
        conn.execute(
            "SELECT 1 FROM outputs WHERE run_id = ? AND blob = ?", (run_id, digest)
        ).fetchone()
        is not None
    )
