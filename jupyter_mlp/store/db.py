"""Opening the store: location, pragmas and write transactions that survive concurrency, and the
one place where the two engines differ (`Dialect`).

The embedded default is one SQLite file through the standard library. A team shares one
PostgreSQL database instead (`Store(url=...)`, env `MLP_STORE_URL`): store/pg.py adapts a psycopg
connection to what the store functions use of sqlite3's (`execute`, `executemany`, rows that
index by position and by name, `?` placeholders), and is imported only for such a URL."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

BUSY_TIMEOUT_MS = 30_000
STORE_URL_ENV = "MLP_STORE_URL"
BLOB_URL_ENV = "MLP_BLOB_URL"
PG_SCHEMES = ("postgresql", "postgres")


TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Cursor(Protocol):
        """What the store reads of a cursor (sqlite3.Cursor, psycopg's Cursor)."""

        @property
        def rowcount(self) -> int: ...

        def fetchone(self) -> Any: ...

        def fetchall(self) -> list[Any]: ...

        def __iter__(self) -> Iterator[Any]: ...

    class Connection(Protocol):
        """What the store functions use of a connection: sqlite3.Connection as it is, or
        pg.PgConnection (`?` placeholders, rows like sqlite3.Row)."""

        def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

        def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...

        def close(self) -> None: ...
else:  # the names, for imports and annotations (the checker reads the protocols above)
    Cursor = Connection = object


class StoreUnavailable(RuntimeError):
    """The store cannot be used at all: the file is not a SQLite database (corrupt, truncated),
    its schema is newer than this code, or a PostgreSQL server cannot be reached. Nothing is
    written into it. `path` is the file or the URL (its password removed), `advice` what to do;
    str() is one line saying both. The CLI prints it and exits 2; the server answers 503."""

    def __init__(self, path: str | os.PathLike[str], problem: str, advice: str) -> None:
        self.path = str(path)
        self.problem = problem
        self.advice = advice
        super().__init__(f"the store {self.path} {problem}; {advice}")


class StoreUnreachable(StoreUnavailable):
    """A PostgreSQL store that cannot be used now: the server is down or refused the
    connection (credentials, too many connections), the connection was lost or shut down by an
    administrator, the disk is full, a lock wait or deadlock. The next call opens a new
    connection; a tracker spools and writes later."""


# "The store is unreachable, busy or full", whichever the engine: the caller waits and tries
# again (503 with Retry-After on the server, the spool in the tracker, the whole batch waits in
# apply_batch). SQLite: locked past the busy timeout, disk full, read-only; PostgreSQL: every
# psycopg.OperationalError arrives as StoreUnreachable (store/pg.py).
STORE_FAULTS: tuple[type[Exception], ...] = (sqlite3.OperationalError, StoreUnreachable)


def os_user() -> str:
    """This process's user: the owner of what it makes when no Jupyter identity is given."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def server_user() -> str:
    """The user this process works for: the Hub's name for its server (JUPYTERHUB_USER, which
    the server's kernels, terminals and drivers inherit), else the OS user. On a shared store
    a job is dispatched by the services of the user who queued it."""
    return os.environ.get("JUPYTERHUB_USER") or os_user()


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """$MLP_HOME, else `<jupyter data dir>/mlp`."""
    if home:
        return Path(home)
    env = os.environ.get("MLP_HOME")
    if env:
        return Path(env)
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "mlp"


# --- URLs ----------------------------------------------------------------------------------------


def store_url(url: str | None = None) -> str | None:
    """The store's URL: `url`, else $MLP_STORE_URL, else None (the SQLite file of the home).
    A URL that is not postgresql://... raises StoreUnavailable (naming it without password)."""
    url = (url if url is not None else os.environ.get(STORE_URL_ENV, "")).strip()
    if not url:
        return None
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in PG_SCHEMES:
        raise StoreUnavailable(
            safe_url(url),
            "is not a store URL this jupyter-mlp knows",
            "give postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or unset "
            f"{STORE_URL_ENV} for the SQLite file under MLP_HOME",
        )
    return url


def blob_url(url: str | None = None) -> str | None:
    """Where the blobs are when not under the home: `url`, else $MLP_BLOB_URL, else None."""
    url = (url if url is not None else os.environ.get(BLOB_URL_ENV, "")).strip()
    return url or None


def safe_url(url: str) -> str:
    """The URL with its password (in the authority or a `password=` parameter) replaced by ***:
    what every message shows."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            auth, host = netloc.rsplit("@", 1)
            if ":" in auth:
                auth = auth.split(":", 1)[0] + ":***"
            netloc = f"{auth}@{host}"
        query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query, flags=re.IGNORECASE)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # shown as it is, less anything that may be a password
        return scrub_passwords(url)


_PASSWORDS = (
    re.compile(r"(://[^:/@\s\"']*:)[^@\s\"']*(@)"),  # scheme://user:PASSWORD@
    re.compile(r"(password=)[^&\s\"']*()", re.IGNORECASE),  # ?password=PASSWORD
)


def scrub_passwords(text: str) -> str:
    """`text` with what looks like a password in a URL replaced by ***."""
    for pattern in _PASSWORDS:
        text = pattern.sub(r"\1***\2", text)
    return text


def url_password(url: str) -> str | None:
    """The password in a URL, so that messages from the server can be scrubbed of it."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return parts.password
        for key, value in parse_qsl(parts.query):
            if key.lower() == "password" and value:
                return value
    except ValueError:
        pass
    return None


class PgUrl(str):
    """A PostgreSQL store's location as `Store.path` gives it: str() is the URL without its
    password (messages print it), `.url` the URL to connect with (ChangeWatcher)."""

    url: str

    def __new__(cls, url: str) -> PgUrl:
        self = super().__new__(cls, safe_url(url))
        self.url = url
        return self


# --- the two dialects ----------------------------------------------------------------------------


class Dialect:
    """What truly differs between the engines' SQL, as text the store functions put into theirs.
    Everything else is written once, in the subset both run (`INSERT ... ON CONFLICT`, `?`
    placeholders, which pg.PgConnection turns into psycopg's)."""

    name = "sqlite"
    like = "LIKE"  # SQLite's LIKE is case-insensitive for ASCII

    def json_text(self, column: str, key: str) -> str:
        """The member `key` of the JSON object in a TEXT column."""
        return f"json_extract({column}, '$.{key}')"

    def json_array_has(self, column: str) -> str:
        """The JSON array in a TEXT column has the element `?`."""
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)"

    def is_number(self, column: str) -> str:
        """The column holds a number (SQLite keeps what an old version or a bad row stored)."""
        return f"typeof({column}) IN ('integer', 'real')"

    def greatest(self, a: str, b: str) -> str:
        return f"MAX({a}, {b})"

    def floor_int(self, expr: str) -> str:
        """An integer bucket of a non-negative number (the floor)."""
        return f"CAST({expr} AS INTEGER)"

    def contains(self, column: str) -> str:
        """The text in `column` contains `?`."""
        return f"instr({column}, ?) > 0"

    def like_text(self, expr: str, real: bool = False) -> str:
        """`expr` as text for LIKE (SQLite converts a number itself); `real`: a float column."""
        return expr

    def columns(self, conn: Connection, table: str) -> set[str]:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


class PostgresDialect(Dialect):
    name = "postgresql"
    like = "ILIKE"  # with the C collation of every text column: ASCII case-insensitive too

    def json_text(self, column: str, key: str) -> str:
        return f"(CAST({column} AS jsonb) ->> '{key}')"

    def json_array_has(self, column: str) -> str:
        return f"(CAST({column} AS jsonb) @> jsonb_build_array(CAST(? AS text)))"

    def is_number(self, column: str) -> str:
        return f"{column} IS NOT NULL"  # a typed column

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})"

    def floor_int(self, expr: str) -> str:
        return f"CAST(FLOOR({expr}) AS BIGINT)"  # a CAST alone rounds on PostgreSQL

    def contains(self, column: str) -> str:
        return f"strpos({column}, ?) > 0"

    def like_text(self, expr: str, real: bool = False) -> str:
        text = f"CAST({expr} AS TEXT)"
        if real:  # as SQLite writes a float: a whole one with ".0" (no `?` here: a placeholder)
            text = f"regexp_replace({text}, '^(-{{0,1}}[0-9]+)$', '\\1.0')"
        return f'{text} COLLATE "C"'

    def columns(self, conn: Connection, table: str) -> set[str]:
        return {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "AND table_schema = current_schema()",
                (table,),
            )
        }


SQLITE = Dialect()
POSTGRES = PostgresDialect()


def dialect(conn: Connection) -> Dialect:
    """The dialect of a connection (sqlite3's, or an adapter that names its own)."""
    if type(conn) is sqlite3.Connection:
        return SQLITE
    found: Dialect = getattr(conn, "dialect", SQLITE)
    return found


def is_sqlite(conn: Connection) -> bool:
    return type(conn) is sqlite3.Connection or dialect(conn) is SQLITE


# --- SQLite connections --------------------------------------------------------------------------


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
        mode = _wal(conn)
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


def _wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL (a no-op once the file is in WAL mode). On a new file another connection
    may be switching it at the same moment: SQLite then answers "database is locked" at once,
    without its busy handler (8 threads opening a new store failed so 1 time in 20), so this
    asks again for as long as the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


STATS_MIN_RUNS = 1000  # below this SQLite's planner does well without statistics


def _stats(runs: int) -> list[tuple[str, str, str]]:
    """sqlite_stat1 rows for `runs` runs, in the shape a full ANALYZE gives a store of real
    use: a status is shared by a fifth of the runs, a project or an owner by a tenth, a record
    key by most runs, an id or a (run, key) by one row."""
    n, records = runs, runs * 10
    return [
        ("runs", "sqlite_autoindex_runs_1", f"{n} 1"),
        ("runs", "runs_created", f"{n} 1"),
        ("runs", "runs_status", f"{n} {max(1, n // 5)}"),
        ("runs", "runs_project_created", f"{n} {max(1, n // 10)} 1"),
        ("runs", "runs_owner", f"{n} {max(1, n // 10)} 1"),
        ("runs", "runs_parent", f"{n} 10"),
        ("runs", "runs_sweep", f"{n} 100"),
        ("params", "params", f"{records} 10 1"),
        ("params", "params_key_num", f"{records} {n} 10"),
        ("metrics_latest", "metrics_latest", f"{records} 10 1"),
        ("metrics_latest", "metrics_latest_key_value", f"{records} {n} 1"),
    ]


def refresh_stats(conn: sqlite3.Connection) -> bool:
    """Statistics for SQLite's planner, written when the runs table grew past twice what they
    say. Without them it takes an equality filter's index (`status = finished`: a fifth of a
    million runs) and sorts it for a page of the newest runs, instead of walking created_at in
    order. A real ANALYZE takes seconds at a million runs and a sampled one (analysis_limit)
    misjudges how many runs share a status or a key, which misleads the planner far worse; so
    these are the averages a full ANALYZE finds (sqlite_stat1 holds only averages), for the
    runs there are now: two tiny reads at open, a few rows written when the store has doubled.
    True when written; a busy or read-only store is left as it is."""
    try:
        top = conn.execute("SELECT MAX(rowid) FROM runs").fetchone()[0] or 0
        if top < STATS_MIN_RUNS:
            return False
        known = 0
        if conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).fetchone():
            row = conn.execute(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs' AND idx = 'runs_created'"
            ).fetchone()
            known = int(str(row[0]).split()[0]) if row else 0
        if known * 2 > top:
            return False
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        conn.execute("PRAGMA busy_timeout=50")  # another writer: next time
        try:
            with _sqlite_write(conn, attempts=1):
                conn.execute("ANALYZE sqlite_master")  # makes sqlite_stat1 (and nothing else)
                rows = [r for r in _stats(top) if r[1] in indexes or r[1] == r[0]]
                conn.executemany("DELETE FROM sqlite_stat1 WHERE tbl = ? AND idx = ?",
                                 [r[:2] for r in rows])  # fmt: skip
                conn.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", rows)
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("ANALYZE sqlite_master")  # this connection loads them now
        return True
    except (sqlite3.OperationalError, ValueError, IndexError):
        return False


def _corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def write(conn: Connection, attempts: int = 20) -> contextlib.AbstractContextManager[Any]:
    """`with write(conn) as conn:` one write transaction. SQLite: BEGIN IMMEDIATE ... COMMIT,
    retried while another writer holds the lock past the timeout. PostgreSQL: BEGIN, the
    store's write lock (an advisory lock held to COMMIT: writers take turns as on SQLite, and
    an event id never becomes visible after a larger one), NOTIFY at commit."""
    if type(conn) is sqlite3.Connection:
        return _sqlite_write(conn, attempts)
    transaction: contextlib.AbstractContextManager[Any] = conn.write_transaction()  # type: ignore[attr-defined]
    return transaction


@contextlib.contextmanager
def _sqlite_write(conn: sqlite3.Connection, attempts: int) -> Iterator[sqlite3.Connection]:
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
    milliseconds. Its own writes count too (another connection): at most one extra round.

    On Linux it sleeps until the store's write-ahead log is written (inotify: every commit
    appends to it), then asks data_version every `every` s for BURST_S, and every CHECK_S in
    any case; elsewhere it asks every `every` s. `interrupt()` ends a wait at once (from another
    thread).

    For a PostgreSQL store (`path` is its PgUrl) the same, from a connection that LISTENs to
    the notification every write transaction sends at commit (pg.PgWatcher)."""

    CHECK_S = 0.05  # what the log's notification could miss (the file replaced) is seen by then
    # A commit becomes visible when its writer updates the log's index (shared memory, which
    # inotify does not see), a moment after its last write to the log: after a write, asked
    # every `every` s for this long (a writer paused between the two, on a busy machine).
    BURST_S = 0.05

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._pg: Any = None
        self._notify: int | None = None
        self._pipe: tuple[int, int] | None = None
        if isinstance(path, PgUrl):
            from .pg import PgWatcher

            self._pg = PgWatcher(path.url)
            return
        self.conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000,
                                    isolation_level=None, check_same_thread=False)  # fmt: skip
        self.version()  # (the log exists once a connection has read the store)
        self._notify = _watch_writes(f"{path}-wal")
        if self._notify is not None:
            self._pipe = os.pipe()
            for fd in self._pipe:
                os.set_blocking(fd, False)

    def version(self) -> int:
        if self._pg is not None:
            count: int = self._pg.version()
            return count
        row = self.conn.execute("PRAGMA data_version").fetchall()
        return int(row[0][0])

    def wait(self, version: int, timeout: float, every: float = 0.002, event: Any = None) -> bool:
        """True as soon as the store changed since `version`; False after `timeout` s, or as
        soon as `event` (a threading.Event) is set (at once where the setter also calls
        `interrupt()`, else within CHECK_S)."""
        if self._pg is not None:
            changed: bool = self._pg.wait(version, timeout, event)
            return changed
        import select

        deadline = time.monotonic() + timeout
        while self.version() == version:
            left = deadline - time.monotonic()
            if left <= 0 or (event is not None and event.is_set()):
                return False
            if self._notify is None or self._pipe is None:
                time.sleep(every)
                continue
            ready = select.select([self._notify, self._pipe[0]], [], [], min(left, self.CHECK_S))[0]
            for fd in ready:
                _drain(fd)
            if self._pipe[0] in ready:  # interrupted
                return self.version() != version
            if ready:  # the log was written; its commit is seen a moment after its last write
                until = min(deadline, time.monotonic() + self.BURST_S)
                while self.version() == version and time.monotonic() < until:
                    time.sleep(every)
        return True

    def interrupt(self) -> None:
        """End a wait() of another thread now."""
        if self._pipe is not None:
            try:
                os.write(self._pipe[1], b"x")
            except OSError:  # full (a wake is pending anyway) or closed
                pass

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
            return
        for fd in (self._notify, *(self._pipe or ())):
            if fd is not None:
                os.close(fd)
        self._notify = self._pipe = None
        self.conn.close()


def _watch_writes(path: str) -> int | None:
    """A non-blocking inotify descriptor that becomes readable when the file at `path` is
    written, moved or removed; None where there is no inotify (not Linux, or out of instances)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    in_modify, in_delete_self, in_move_self = 0x2, 0x400, 0x800
    if libc.inotify_add_watch(fd, os.fsencode(path), in_modify | in_delete_self | in_move_self) < 0:
        os.close(fd)
        return None
    return fd


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:  # EAGAIN: nothing left
        pass
