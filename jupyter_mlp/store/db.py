"""Opening the SQLite store: location, pragmas and write transactions that survive concurrency."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000


def home_dir(home: str | os.PathLike | None = None) -> Path:
    """$MLP_HOME, else `<jupyter data dir>/mlp`."""
    if home:
        return Path(home)
    env = os.environ.get("MLP_HOME")
    if env:
        return Path(env)
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "mlp"


def connect(path: str | os.PathLike) -> sqlite3.Connection:
    """A connection in autocommit mode; writes go through `write()` for an explicit IMMEDIATE
    transaction (a deferred one can fail with SQLITE_BUSY on upgrade without waiting)."""
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":  # pragma: no cover - e.g. a filesystem without shared memory
        raise sqlite3.OperationalError(f"could not switch the store to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


@contextlib.contextmanager
def write(conn: sqlite3.Connection, attempts: int = 20) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, retried while another writer holds the lock past the timeout."""
    for attempt in range(attempts):
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(min(0.05 * (attempt + 1), 0.5))
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
