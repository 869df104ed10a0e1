"""A PostgreSQL store through psycopg 3: a connection that the store functions use as they use
sqlite3's, the watcher of commits (LISTEN), and the errors named with the URL, never its password.

Imported only for a postgresql:// URL (store.Store, db.ChangeWatcher, server.feed): a kernel that
tracks into the SQLite file never loads psycopg.

What the adapter does, so that SQL is written once:
- `?` placeholders become psycopg's `%s` (and a literal `%` is doubled), cached per statement;
- rows index by position and by name, `dict(row)` and `row.keys()` work (as sqlite3.Row);
- a Python bool is sent as an integer (SQLite stores True as 1; no column is boolean), a NUL in
  a str as U+FFFD (PostgreSQL's text cannot hold one), a NUMERIC result (SUM over BIGINT) comes
  back as an int (or a float);
- autocommit outside `write_transaction()` (BEGIN, the store's write lock, NOTIFY, COMMIT);
- every psycopg.OperationalError / InterfaceError (server down, credentials refused, connection
  lost, admin shutdown, too many connections, disk full, deadlock) is raised as
  db.StoreUnreachable naming the URL without its password, and the connection is marked broken
  so that the store opens a new one on the next call."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg import adapt, postgres
from psycopg.abc import Buffer
from psycopg.rows import RowMaker
from psycopg.types.string import StrDumperUnknown

from .db import (
    POSTGRES,
    StoreUnavailable,
    StoreUnreachable,
    safe_url,
    scrub_passwords,
    url_password,
)

CHANNEL = "mlp_events"  # NOTIFY at every write's commit; the feed and ChangeWatcher LISTEN
WRITE_LOCK = 0x6D6C_7000  # pg_advisory_xact_lock key held by every write transaction
CONNECT_TIMEOUT_S = 10


# --- rows ----------------------------------------------------------------------------------------


class Row(tuple):  # type: ignore[type-arg]
    """A result row as sqlite3.Row: row[0], row["name"], dict(row), row.keys()."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                raise IndexError(f"no such column: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


_ROW_CLASSES: dict[tuple[str, ...], type[Row]] = {}


def _row_class(names: tuple[str, ...]) -> type[Row]:
    cls = _ROW_CLASSES.get(names)
    if cls is None:
        index: dict[str, int] = {}
        for i, name in enumerate(names):
            index.setdefault(name, i)  # sqlite3.Row: the first column of a name
        cls = _ROW_CLASSES[names] = type("Row", (Row,), {"__slots__": (), "_index": index})
    return cls


def _row_factory(cursor: Any) -> RowMaker[Row]:
    description = cursor.description
    if description is None:
        return Row
    return _row_class(tuple(c.name for c in description))


# --- adaptation ----------------------------------------------------------------------------------


class _BoolAsInt(adapt.Dumper):
    oid = postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _StrWithoutNul(StrDumperUnknown):
    """A str as text, a NUL (which PostgreSQL's text cannot hold: SQLite's can) as U+FFFD. The
    store's names and keys refuse NUL before; JSON columns hold it escaped; what is left is the
    plain-text copy of a value kept for filters (params.text, outputs.text) and cell sources."""

    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


class _NumericLoader(adapt.Loader):
    """NUMERIC (a SUM over BIGINT, an AVG) as SQLite gives it: an int when whole, else a float."""

    def load(self, data: Any) -> Any:
        text = bytes(data).decode()
        if "." in text or "e" in text.lower() or "n" in text.lower():
            return float(text)
        return int(text)


_SQL_CACHE: dict[tuple[str, bool], str] = {}


def translate(sql: str, with_params: bool) -> str:
    """`?` -> `%s` and `%` -> `%%` (psycopg's placeholders), for statements with parameters."""
    key = (sql, with_params)
    found = _SQL_CACHE.get(key)
    if found is None:
        found = sql.replace("%", "%%").replace("?", "%s") if with_params else sql
        if len(_SQL_CACHE) < 10_000:
            _SQL_CACHE[key] = found
    return found


# --- errors --------------------------------------------------------------------------------------


def _describe(exc: BaseException, url: str) -> str:
    """The server's message in one line, any password in it removed (libpq quotes a URL it
    cannot parse whole)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    password = url_password(url)
    if password:
        text = text.replace(password, "***")
    return scrub_passwords(text)


def unreachable(url: str, exc: BaseException, doing: str = "") -> StoreUnreachable:
    """A psycopg error of the store (not of a row) as StoreUnreachable, naming the URL without
    its password and saying what to do."""
    location = safe_url(url)
    detail = _describe(exc, url)
    low = detail.lower()
    if "password authentication failed" in low or "authentication failed" in low:
        problem, advice = "refused the credentials", "check the user and password in the URL"
    elif "does not exist" in low and "database" in low:
        problem, advice = "has no such database", "create it (createdb) or fix the URL"
    elif "too many" in low and "connection" in low:
        problem, advice = "has too many connections", "retry later or raise max_connections"
    elif isinstance(exc, psycopg.errors.DiskFull):
        problem, advice = "is full", "free disk space on the database server"
    elif isinstance(exc, (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable)):
        problem, advice = "is busy", "the call can be retried"
    elif isinstance(exc, psycopg.errors.QueryCanceled):
        problem, advice = "cancelled the statement", "the call can be retried"
    elif (
        doing == "connect"
        and "invalid" in low
        and any(word in low for word in ("port", "value", "option", "uri", "integer"))
    ):
        problem, advice = (
            "is not a valid PostgreSQL URL",
            "give postgresql://USER:PASSWORD@HOST:PORT/DATABASE (and valid parameters)",
        )
    elif doing == "connect":
        problem, advice = (
            "cannot be reached",
            "check that the PostgreSQL server is running and the host and port in the URL",
        )
    else:
        problem, advice = (
            "lost the connection",
            "a new one is opened on the next call (the server may be restarting)",
        )
    return StoreUnreachable(location, f"{problem} ({detail})", advice)


_FAULTS = (psycopg.OperationalError, psycopg.InterfaceError)
Error = psycopg.Error  # any error of the driver (the store wraps what reaches its callers)
_IDLE = psycopg.pq.TransactionStatus.IDLE
_RETRIED = frozenset({"SELECT", "BEGIN"})  # change nothing yet: retried on a new connection


# --- connections ---------------------------------------------------------------------------------


def connect(url: str) -> PgConnection:
    """A new connection (StoreUnreachable when the server cannot be reached or refuses)."""
    return PgConnection(url)


def _raw_connect(url: str) -> psycopg.Connection[Any]:
    try:
        raw = psycopg.Connection.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="jupyter-mlp",
            client_encoding="utf8",
        )
    except _FAULTS as exc:
        raise unreachable(url, exc, "connect") from None
    except psycopg.ProgrammingError as exc:  # a URL libpq cannot parse
        raise StoreUnavailable(
            safe_url(url), f"is not a valid PostgreSQL URL ({_describe(exc, url)})",
            "give postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        ) from None  # fmt: skip
    raw.adapters.register_dumper(bool, _BoolAsInt)
    raw.adapters.register_dumper(str, _StrWithoutNul)
    raw.adapters.register_loader("numeric", _NumericLoader)
    return raw


class PgConnection:
    """A psycopg connection as the store functions use sqlite3's (see the module's docstring)."""

    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = safe_url(url)
        self.raw = self._open()
        self.in_write = False

    def _open(self) -> psycopg.Connection[Any]:
        raw = _raw_connect(self.url)
        raw.row_factory = _row_factory
        return raw

    @property
    def broken(self) -> bool:
        """The connection was lost or closed: the store opens a new one."""
        return bool(self.raw.closed or self.raw.broken)

    def _fault(self, exc: BaseException) -> StoreUnreachable:
        return unreachable(self.url, exc)  # a lost connection is `broken`: the store reopens

    def execute(self, sql: str, parameters: Any = None, /) -> Any:
        query = translate(sql, parameters is not None)
        idle = self.raw.info.transaction_status == _IDLE
        try:
            return self.raw.execute(query, parameters)
        except _FAULTS as exc:
            if not (idle and self.broken and sql.lstrip()[:6].rstrip("; ").upper() in _RETRIED):
                raise self._fault(exc) from None
        # The connection was lost while idle (the server restarted, an administrator ended
        # it): a read, or the BEGIN of a write, changed nothing yet; once more on a new one.
        self.raw = self._open()
        try:
            return self.raw.execute(query, parameters)
        except _FAULTS as exc:
            raise self._fault(exc) from None

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        cur = self.raw.cursor()
        try:
            cur.executemany(translate(sql, True), parameters)
        except _FAULTS as exc:
            raise self._fault(exc) from None
        return cur

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()

    def rollback_quietly(self) -> None:
        """Leave a failed transaction (nothing to do on a connection that is gone)."""
        if self.raw.closed or self.raw.broken:
            return
        if self.raw.info.transaction_status != _IDLE:
            with contextlib.suppress(Exception):
                self.raw.execute("ROLLBACK")

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[PgConnection]:
        """One write transaction: BEGIN and the store's write lock (held to COMMIT, so that
        writers take turns as on SQLite, never deadlock on each other's rows, and an event id
        is never visible after a larger one), NOTIFY mlp_events, COMMIT."""
        self.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        self.in_write = True
        try:
            yield self
        except BaseException:
            self.in_write = False
            self.rollback_quietly()
            raise
        self.in_write = False
        try:
            self.execute(f"NOTIFY {CHANNEL}; COMMIT")
        except BaseException:
            self.rollback_quietly()
            raise


# --- watching commits ----------------------------------------------------------------------------


class PgWatcher:
    """db.ChangeWatcher for PostgreSQL: a connection of its own LISTENs to the notification
    every write transaction sends at its commit; version() counts those seen. A lost connection
    is opened again (and counts as a change: what happened meanwhile is unknown)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.count = 0
        self.conn: psycopg.Connection[Any] | None = None
        self._listen()

    def _listen(self) -> bool:
        try:
            conn = _raw_connect(self.url)
            conn.execute(f"LISTEN {CHANNEL}")
        except (StoreUnavailable, *_FAULTS):
            self.conn = None
            return False
        self.conn = conn
        return True

    def _drain(self, timeout: float) -> None:
        if self.conn is None or self.conn.closed or self.conn.broken:
            if self.conn is not None:
                with contextlib.suppress(Exception):
                    self.conn.close()
                self.conn = None
            time.sleep(min(timeout, 0.5))
            if self._listen():
                self.count += 1
            return
        try:
            for _ in self.conn.notifies(timeout=timeout, stop_after=1):
                self.count += 1
            for _ in self.conn.notifies(timeout=0):  # the rest already here
                self.count += 1
        except _FAULTS:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None
            self.count += 1

    def version(self) -> int:
        self._drain(0)
        return self.count

    def wait(self, version: int, timeout: float, event: Any = None) -> bool:
        deadline = time.monotonic() + timeout
        while self.count == version:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (event is not None and event.is_set()):
                return False
            self._drain(min(remaining, 0.02) if event is not None else remaining)
        return True

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


class AsyncListener:
    """`async with AsyncListener(url) as changes: async for _ in changes:` one item per batch
    of commits (the server's event feed). Raises StoreUnreachable when the connection is lost."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> AsyncListener:
        try:
            self.conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                application_name="jupyter-mlp feed",
            )  # fmt: skip
            await self.conn.execute(f"LISTEN {CHANNEL}")
        except _FAULTS as exc:
            await self.__aexit__()
            raise unreachable(self.url, exc, "connect") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
            self.conn = None

    def __aiter__(self) -> AsyncListener:
        return self

    async def __anext__(self) -> int:
        assert self.conn is not None
        try:
            count = 0
            async for _ in self.conn.notifies(stop_after=1):
                count += 1
            async for _ in self.conn.notifies(timeout=0):
                count += 1
        except _FAULTS as exc:
            raise unreachable(self.url, exc) from None
        return count
