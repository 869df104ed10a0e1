"""Opening the SQLite store: location, pragmas and write transactions that survive concurrency."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 30_000


class StoreUnavailable(RuntimeError):
    """The store cannot be used at all: the file is not a SQLite database (corrupt, truncated),
    or its schema is newer than this code. Nothing is written into it. `path` is the file,
    `advice` what to do; str() is one line saying both. The server answers 503 with it."""

    def __init__(self, path: str | os.PathLike[str], problem: str, advice: str) -> None:
        self.path = str(path)
        self.problem = problem
        self.advice = advice
        super().__init__(f"the store {self.path} {problem}; {advice}")


def os_user() -> str:
    """This process's user: the owner of what it makes when no Jupyter identity is given."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """$MLP_HOME, else `<jupyter data dir>/mlp`."""
    if home:
        return Path(home)
    env = os.environ.get("MLP_HOME")
    if env:
        return Path(env)
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "mlp"


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection in autocommit mode; writes go through `write()` for an explicit IMMEDIATE
    transaction (a deferred one can fail with SQLITE_BUSY on upgrade without waiting)."""
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        # Read the schema version before anything could write (switching to WAL writes the
        # header): a store of a newer jupyter-mlp is never touched.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        from .schema import SCHEMA_VERSION, SchemaTooNew

        if version > SCHEMA_VERSION:
            conn.close()
            raise SchemaTooNew(
                path,
                f"has schema version {version}, newer than this jupyter-mlp understands "
                f"({SCHEMA_VERSION}); nothing was written to it",
                "upgrade jupyter-mlp (pip install -U jupyter-mlp) or point MLP_HOME elsewhere",
            )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not _corrupt(exc):
            conn.close()
            raise
        conn.close()
        raise StoreUnavailable(
            path,
            f"is not a readable SQLite database ({exc})",
            "move it aside (the blobs folder next to it is intact) and a new store is made, "
            "or restore it from a backup",
        ) from None
    if mode.lower() != "wal":  # pragma: no cover - e.g. a filesystem without shared memory
        raise sqlite3.OperationalError(f"could not switch the store to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def _corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


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


class ChangeWatcher:
    """Tells when anything committed to the store: SQLite's data_version on a connection of its
    own, which runs nothing else (a connection that left a statement unfinished keeps reading
    an old snapshot, and its data_version stands still with it). A loop that reacts to the
    store (a pipeline's driver) takes `version()` before it reads the store and then `wait()`s:
    it wakes within milliseconds of a job's end without reading everything every few
    milliseconds. Its own writes count too (another connection): at most one extra round."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000,
                                    isolation_level=None, check_same_thread=False)  # fmt: skip

    def version(self) -> int:
        row = self.conn.execute("PRAGMA data_version").fetchall()
        return int(row[0][0])

    def wait(self, version: int, timeout: float, every: float = 0.002, event: Any = None) -> bool:
        """True as soon as the store changed since `version`; False after `timeout` s, or as
        soon as `event` (a threading.Event) is set."""
        deadline = time.monotonic() + timeout
        while self.version() == version:
            if time.monotonic() >= deadline or (event is not None and event.is_set()):
                return False
            time.sleep(every)
        return True

    def close(self) -> None:
        self.conn.close()
