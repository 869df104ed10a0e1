"""The store: one SQLite file (the embedded default) or a PostgreSQL database shared by a team
(`Store(url=...)`, env MLP_STORE_URL), plus content-addressed blobs under the jupyter-mlp home."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from . import db
from .blobs import BlobNotFound, Blobs, FsBlobs
from .db import Connection, StoreUnavailable
from .schema import SchemaTooNew, migrate

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any

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
    """The home folder (`blobs/`, and `mlp.sqlite` unless the store is a PostgreSQL database at
    `url`: the argument, else $MLP_STORE_URL). One connection per thread; a PostgreSQL
    connection that was lost is opened again on the next call.

    `path` is what messages name: the SQLite file, or the URL without its password (db.PgUrl)."""

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        url: str | None = None,
        blob_url: str | None = None,
    ) -> None:
        self.home: Path = db.home_dir(home)
        self.url = db.store_url(url)
        self.path: Path | db.PgUrl = (
            self.home / "mlp.sqlite" if self.url is None else db.PgUrl(self.url)
        )
        self.blob_url = db.blob_url(blob_url)
        self.blobs: Blobs = Blobs(self.home / "blobs") if self.blob_url is None else _fs_blobs(self)
        self._local = threading.local()
        self._first_file: tuple[int, int] | None = None  # the store file's id when first opened

    @classmethod
    def shared(
        cls,
        home: str | os.PathLike[str] | None = None,
        url: str | None = None,
        blob_url: str | None = None,
    ) -> SharedStore:
        """This process's SharedStore of `home` (one per folder, store URL, blob URL and
        process)."""
        key = (os.getpid(), str(db.home_dir(home)), db.store_url(url), db.blob_url(blob_url))
        with _SHARED_LOCK:
            store = _SHARED.get(key)
            if store is None:
                store = _SHARED[key] = SharedStore(key[1], key[2], key[3])
            return store

    def connect(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.url is not None and conn.broken:
            conn.close()
            conn = None
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> Connection:
        """A new connection, the schema migrated (StoreUnavailable: corrupt, too new,
        a PostgreSQL server that cannot be reached)."""
        self.home.mkdir(parents=True, exist_ok=True)
        if self.url is not None:
            from . import pg

            pg_conn = pg.connect(self.url)
            try:
                migrate(pg_conn)
            except StoreUnavailable:
                pg_conn.close()
                raise
            except pg.Error as exc:  # e.g. a role that may not create tables
                pg_conn.close()
                raise StoreUnavailable(
                    self.path,
                    f"could not make or migrate its tables ({db.scrub_passwords(str(exc))})",
                    "give a role that owns the database (or may create tables in its schema)",
                ) from None
            except BaseException:
                pg_conn.close()
                raise
            return pg_conn
        conn = db.connect(self.path)
        try:
            migrate(conn)
            db.refresh_stats(conn)
            if self._first_file is None:
                self._first_file = _file_id(self.path)
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

    def write(self) -> contextlib.AbstractContextManager[Any]:
        """`with store.write() as conn:` one write transaction (db.write)."""
        return db.write(self.connect())

    def where(self) -> str:
        """Where the runs are, for messages: the store's URL (password hidden), else its home."""
        return db.safe_url(self.url) if self.url is not None else str(self.home)

    def gone(self) -> bool:
        """Whether the store file this process opened was removed (its home deleted) or
        replaced by another since: a detached driver then has nothing left to drive and leaves,
        rather than wait for ever on a file nobody else can write to (a kernel that outlived
        the deletion may have made a new, empty store at the same path). A PostgreSQL store is
        never gone (it may be down)."""
        first = self._first_file
        return self.url is None and first is not None and _file_id(self.path) != first

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

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        url: str | None = None,
        blob_url: str | None = None,
    ) -> None:
        super().__init__(home, url, blob_url)
        self.lock = threading.RLock()
        self._conn: Connection | None = None
        self._file: tuple[int, int] | None = None  # the file of the connection open now

    def connect(self) -> Connection:
        with self.lock:
            conn = self._conn
            if conn is not None:
                if self.url is None:
                    if self._file != _file_id(self.path):
                        self.close()
                        conn = None
                elif conn.broken:  # type: ignore[attr-defined]
                    self.close()
                    conn = None
            if conn is None:
                conn = self._open()
                self._conn = conn
                self._file = _file_id(self.path) if self.url is None else None
            return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        with self.lock, db.write(self.connect()) as conn:
            yield conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            self._conn, self._file = None, None


_SHARED: dict[tuple[int, str, str | None, str | None], SharedStore] = {}
_SHARED_LOCK = threading.Lock()


def _fs_blobs(store: Store) -> FsBlobs:
    """The blobs at `store.blob_url` (StoreUnavailable, naming it, when fsspec cannot open it);
    verified local copies are cached under `<home>/blob-cache`."""
    assert store.blob_url is not None
    try:
        return FsBlobs(store.blob_url, store.home / "blob-cache")
    except (ImportError, ValueError, OSError) as exc:
        raise StoreUnavailable(
            db.safe_url(store.blob_url),
            f"cannot be opened as a blob store ({type(exc).__name__}: {exc})",
            "give an fsspec URL whose filesystem is installed (file://, s3:// with s3fs, ...), "
            f"or unset {db.BLOB_URL_ENV} for the blobs folder under MLP_HOME",
        ) from None


def _file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of a file, None when there is none: the same path may be a new file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
