"""The embedded store: one SQLite file plus content-addressed blobs under the jupyter-mlp home."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import db
from .blobs import BlobNotFound, Blobs
from .db import StoreUnavailable
from .schema import SchemaTooNew, migrate

if TYPE_CHECKING:  # loaded on first use at run time (__getattr__)
    from .filter import FilterError
    from .runs import RunNotFound

__all__ = [
    "Store", "BlobNotFound", "FilterError", "RunNotFound", "StoreUnavailable", "SchemaTooNew",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    """Listing and filtering load on first use: a kernel that only writes never needs them."""
    if name == "FilterError":
        from .filter import FilterError

        return FilterError
    if name == "RunNotFound":
        from .runs import RunNotFound

        return RunNotFound
    if name in ("runs", "filter", "series", "tokens", "records", "events", "gpu"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)


class Store:
    """The home folder: `mlp.sqlite` + `blobs/`. One connection per thread."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home: Path = db.home_dir(home)
        self.path = self.home / "mlp.sqlite"
        self.blobs = Blobs(self.home / "blobs")
        self._local = threading.local()

    @classmethod
    def shared(cls, home: str | os.PathLike[str] | None = None) -> SharedStore:
        """This process's SharedStore of `home` (one per folder and process)."""
        key = (os.getpid(), str(db.home_dir(home)))
        with _SHARED_LOCK:
            store = _SHARED.get(key)
            if store is None:
                store = _SHARED[key] = SharedStore(key[1])
            return store

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        """A new connection, the schema migrated (StoreUnavailable: corrupt, too new)."""
        self.home.mkdir(parents=True, exist_ok=True)
        conn = db.connect(self.path)
        try:
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError) and not db._corrupt(exc):
                raise
            raise StoreUnavailable(
                self.path,
                f"is not a readable SQLite database ({exc})",
                "move it aside (the blobs folder next to it is intact) and a new store is "
                "made, or restore it from a backup",
            ) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """`with store.write() as conn:` one IMMEDIATE transaction."""
        return db.write(self.connect())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class SharedStore(Store):
    """A store for every thread of a process (the tracker's): one connection, one writer at a
    time under `lock`, so that a run's threads (the writer, the start-up capture, the user's
    `mlp.output`) never wait in SQLite's busy handler for each other and a run's start opens
    nothing. A store file moved aside or replaced is opened anew."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        super().__init__(home)
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None

    def connect(self) -> sqlite3.Connection:
        with self.lock:
            conn = self._conn
            if conn is not None and self._file != _file_id(self.path):
                self.close()
                conn = None
            if conn is None:
                conn = self._open()
                self._conn, self._file = conn, _file_id(self.path)
            return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self.lock, db.write(self.connect()) as conn:
            yield conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            self._conn, self._file = None, None


_SHARED: dict[tuple[int, str], SharedStore] = {}
_SHARED_LOCK = threading.Lock()


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
