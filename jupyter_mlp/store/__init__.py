"""The embedded store: one SQLite file plus content-addressed blobs under the jupyter-mlp home."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from . import db
from .blobs import BlobNotFound, Blobs
from .schema import migrate

__all__ = ["Store", "BlobNotFound", "FilterError", "RunNotFound"]


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

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home: Path = db.home_dir(home)
        self.path = self.home / "mlp.sqlite"
        self.blobs = Blobs(self.home / "blobs")
        self._local = threading.local()

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.home.mkdir(parents=True, exist_ok=True)
            conn = db.connect(self.path)
            migrate(conn)
            self._local.conn = conn
        return conn

    def write(self):
        """`with store.write() as conn:` one IMMEDIATE transaction."""
        return db.write(self.connect())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
