"""The embedded store: one SQLite file plus content-addressed blobs under the jupyter-mlp home."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
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

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
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
            self._local.conn = conn
        return conn

    def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """`with store.write() as conn:` one IMMEDIATE transaction."""
        return db.write(self.connect())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
