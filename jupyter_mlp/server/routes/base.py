"""What every route shares: the one table from exceptions to HTTP statuses, query and body
parsing through `jupyter_mlp.records`, store calls off the event loop, replies as JSON.

A handler is parse -> one service call -> serialize. Parsing raises `RecordError` naming the
field; a service raises its own errors; `write_error` turns either into a JSON answer with the
status the table gives, so that nothing a caller sends becomes a 500."""

from __future__ import annotations

import functools
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import tornado.web
from jupyter_server.base.handlers import APIHandler
from tornado.ioloop import IOLoop

from ... import records
from ...execution.errors import JobError
from ...model import json_safe
from ...params import ParamError
from ...pipelines.dag import PipelineError
from ...pipelines.spec import SpecError
from ...records import RecordError
from ...store import BlobNotFound, FilterError, RunNotFound, StoreUnavailable
from ...store.db import STORE_FAULTS
from ...store.jobs import BadReport, JobNotFound
from ...store.pipelines import PipelineRunNotFound
from ...store.records import BadBatch
from ...store.sweeps import SweepNotFound
from ...sweeps.space import SweepError
from ..permissions import Actor
from ..services import NotFound

try:
    from jupyter_server.auth.decorator import allow_unauthenticated
except ImportError:  # jupyter_server < 2.13 has no such setting to open routes against

    def allow_unauthenticated(method):  # type: ignore[no-redef,misc]
        return method


__all__ = ["MlpHandler", "TokenHandler", "allow_unauthenticated", "status_of", "URL_MAX"]

T = TypeVar("T")

# The longest request target (path + query) a route reads. A filter of FILTER_MAX characters,
# percent-encoded, fits; anything longer is 414. (Tornado itself closes a connection whose
# headers exceed its max_header_size; the app raises that limit so that we can say 414.)
URL_MAX = 128 * 1024


class Refused(Exception):
    """A request refused for a reason that is not about a record (token, permission, rate)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# The one table: exception type -> HTTP status (first match wins; order from specific to broad).
ERROR_STATUS: list[tuple[type[BaseException], int]] = [
    (StoreUnavailable, 503),
    (FilterError, 400),
    (RunNotFound, 404),
    (PipelineRunNotFound, 404),
    (BlobNotFound, 404),
    (NotFound, 404),
    (SweepNotFound, 404),
    (JobNotFound, 400),  # cancel of a run that is not a job
    (PermissionError, 403),
    (JobError, 400),
    (ParamError, 400),
    (PipelineError, 400),
    (SpecError, 400),
    (SweepError, 400),
    (BadReport, 400),
    (BadBatch, 400),
    # locked past the busy timeout, full, read-only, a PostgreSQL server lost (either engine)
    *((kind, 503) for kind in STORE_FAULTS),
]


def status_of(exc: BaseException) -> int | None:
    """The HTTP status for an exception a route may meet, or None for a bug (then 500)."""
    if isinstance(exc, tornado.web.HTTPError):
        return exc.status_code
    if isinstance(exc, (RecordError, Refused)):
        return exc.status
    for kind, status in ERROR_STATUS:
        if isinstance(exc, kind):
            return status
    return None


def error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RecordError):
        return {"message": str(exc), "field": exc.field}
    if isinstance(exc, SweepError) and exc.field:
        return {"message": str(exc), "field": exc.field}
    if isinstance(exc, FilterError):
        return {"message": exc.message, "position": exc.position, "field": exc.field}
    if isinstance(exc, Refused):
        return {"message": exc.message}
    if isinstance(exc, tornado.web.HTTPError):
        return {"message": exc.log_message or exc.reason or f"HTTP {exc.status_code}"}
    if isinstance(exc, KeyError) and exc.args:  # BlobNotFound: str() of a KeyError is quoted
        return {"message": str(exc.args[0])}
    return {"message": str(exc) or type(exc).__name__}


class MlpHandler(APIHandler):
    auth_resource = "mlp"
    path: str = ""  # the route, as openapi.yaml writes it

    @property
    def mlp(self) -> Any:
        return self.settings["mlp"]

    @property
    def who(self) -> Actor:
        """The user behind this request: what they create is theirs (`name`); `admin`: they may
        change what anyone owns (permissions.py)."""
        return self.mlp.actor(self.current_user)

    async def prepare(self) -> None:  # type: ignore[override]
        if len(self.request.uri or "") > URL_MAX:
            # before authentication: reading nothing of a request this long is the point
            raise RecordError("url", f"is longer than {URL_MAX:,} bytes", 414)
        await super().prepare()
        if self.current_user is not None:  # a broken store: 503 with its message, for users
            self.mlp.check_store()

    # --- off the event loop ---------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run a blocking service call in the store's thread pool (each thread has its own
        SQLite connection). A store that could not be opened answers 503 before anything runs."""
        self.mlp.check_store()
        return await IOLoop.current().run_in_executor(
            self.mlp.executor, functools.partial(fn, *args, **kw)
        )

    async def store_call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """`fn(conn, *args)` with the calling thread's connection, off the event loop."""

        def with_conn() -> T:
            return fn(self.mlp.store.connect(), *args, **kw)

        return await self.call(with_conn)

    async def send_file(self, handle: Any, filename: str | None = None) -> None:
        """Stream an open blob file as a download (read in the pool, a MiB at a time). Never
        rendered by a browser: octet-stream, attachment, nosniff."""
        safe = "".join(c for c in filename or "" if c.isascii() and (c.isalnum() or c in "._- "))
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header(
            "Content-Disposition", f'attachment; filename="{safe}"' if safe else "attachment"
        )
        loop = IOLoop.current()
        try:
            while chunk := await loop.run_in_executor(self.mlp.executor, handle.read, 1 << 20):
                self.write(chunk)
                await self.flush()
        finally:
            handle.close()
        self.finish()

    # --- parsing: every value through records.py ------------------------------------------------

    def arg_text(self, name: str, max_len: int, default: str | None = None) -> str | None:
        raw = self.get_argument(name, None)
        return default if raw is None else records.text(raw, name, max_len)

    def arg_number(
        self, name: str, default: float | None, lo: float, hi: float, *, clamp: bool = False
    ) -> float | None:
        """A finite number; outside [lo, hi] it is clamped (page sizes, waits) or refused."""
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except (ValueError, OverflowError):
            raise RecordError(name, f"must be a number, not {raw[:40]!r}") from None
        if clamp:
            return min(max(records.number(value, name), lo), hi)
        return records.number(value, name, lo, hi)

    def arg_int(
        self, name: str, default: int | None, lo: int, hi: int, *, clamp: bool = False
    ) -> int | None:
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        value: Any
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except (ValueError, OverflowError):
                raise RecordError(name, f"must be an integer, not {raw[:40]!r}") from None
        if clamp and (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            return min(max(int(value), lo), hi)  # limit=1e30: as many as a page holds
        return records.integer(value, name, lo, hi)

    def json_body(self, default: Any = None) -> Any:
        """The body as JSON (an empty body is `default`); nesting past JSON_DEPTH_MAX is 400."""
        raw = self.request.body
        if not raw:
            return default
        try:
            return json.loads(raw)
        except RecursionError:
            raise RecordError(
                "body", f"is nested deeper than {records.JSON_DEPTH_MAX} levels"
            ) from None
        except (ValueError, UnicodeDecodeError):
            raise RecordError("body", "is not JSON") from None

    def object_body(
        self, fields: dict[str, Callable[[Any, str], Any]], cleared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A JSON object whose keys are among `fields`, each value checked by its checker
        (checker(value, field) -> clean value). A null is left out (the default applies), or,
        given `cleared` (a PATCH, as a JSON merge patch), is that field's empty value, and is
        refused by name for a field that has none."""
        body = self.json_body({})
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise RecordError("body", f"must be a JSON object, not {type(body).__name__}")
        unknown = [k for k in body if k not in fields]
        if unknown:
            shown = unknown[0] if len(unknown[0]) < 60 else unknown[0][:60] + "..."
            raise RecordError(shown, f"is not a field of this request (known: {', '.join(fields)})")
        if cleared is not None:
            for k, v in body.items():
                if v is None and k not in cleared:
                    raise RecordError(k, "cannot be null (it has no empty value; send one)")
            return {k: cleared[k] if v is None else fields[k](v, k) for k, v in body.items()}
        return {k: fields[k](v, k) for k, v in body.items() if v is not None}

    # --- answers --------------------------------------------------------------------------------

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(json_safe(data)))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is None:
            body: dict[str, Any] = {"message": self._reason}
        else:
            status = status_of(exc)
            if status is not None and status != status_code:
                self.set_status(status)
            body = error_body(exc)
            if isinstance(exc, Refused):
                for name, value in exc.headers.items():
                    self.set_header(name, value)
            if status == 503 and isinstance(exc, STORE_FAULTS):
                self.set_header("Retry-After", "5")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        status = None if value is None else status_of(value)
        if status is None:  # a bug: logged with its traceback, answered 500
            return super().log_exception(typ, value, tb)
        if status >= 500:
            self.log.warning("jupyter-mlp: %s %s: %s", self.request.method, self.path, value)
        else:
            self.log.debug("jupyter-mlp: %s %s -> %s: %s", self.request.method, self.path,
                           status, value)  # fmt: skip


class TokenBuckets:
    """Failed run-token attempts per client address: `burst` at once, then one every
    1/`rate` seconds. A client over its budget is answered 429 with Retry-After before its
    token is even looked at. Bounded: the oldest clients are forgotten first."""

    def __init__(self, burst: float = 20, rate: float = 0.5, clients: int = 10_000) -> None:
        self.burst, self.rate, self.clients = float(burst), float(rate), clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, client: str, now: float) -> float:
        level, then = self._buckets.get(client, (self.burst, now))
        return min(self.burst, level + (now - then) * self.rate)

    def retry_after(self, client: str, now: float | None = None) -> float:
        """0 when the client may try now, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        level = self._level(client, now)
        return 0.0 if level >= 1 else (1 - level) / self.rate if self.rate > 0 else 3600.0

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._buckets[client] = (max(self._level(client, now) - 1, 0.0), now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.clients:
            self._buckets.popitem(last=False)


class TokenHandler(MlpHandler):
    """Base of the routes a remote tracker calls with its run token instead of a login (so they
    stay open when the server refuses unauthenticated access by default)."""

    def check_xsrf_cookie(self) -> None:
        """No cookie is involved (the token is a header), so there is nothing to forge."""

    async def token_run(self) -> str:
        """The run this request's token may write to; else 401 (429 once a client failed too
        often)."""
        from ...store import tokens

        buckets: TokenBuckets = self.mlp.token_buckets
        client = self.request.remote_ip or "?"
        self._throttle(buckets, client)
        run_id = await self.store_call(tokens.run_of, self.request.headers.get("X-MLP-Run-Token"))
        if run_id is None:
            buckets.failed(client)
            raise Refused(401, "a valid X-MLP-Run-Token for a live run is required")
        return run_id

    def key_owner(self) -> str:
        """The user whose runs this request's tracking key (X-MLP-Tracking-Key, the key this
        server gave its kernels) may open: this server's; else 401 (429 once a client failed too
        often, counted with its bad run tokens)."""
        buckets: TokenBuckets = self.mlp.token_buckets
        client = self.request.remote_ip or "?"
        self._throttle(buckets, client)
        key = self.mlp.tracking_key
        if key is None or not key.matches(self.request.headers.get("X-MLP-Tracking-Key")):
            buckets.failed(client)
            why = "" if key is not None else " (this server gives its kernels none)"
            raise Refused(401, "a valid X-MLP-Tracking-Key is required" + why)
        owner: str = self.mlp.server_user
        return owner

    @staticmethod
    def _throttle(buckets: TokenBuckets, client: str) -> None:
        wait = buckets.retry_after(client)
        if wait > 0:
            raise Refused(
                429, "too many failed run-token or tracking-key attempts from this address; retry later",
                {"Retry-After": str(max(1, int(wait + 0.999)))},
            )  # fmt: skip


class UnknownRouteHandler(MlpHandler):
    """Anything else under /mlp/api: a JSON 404 (not Jupyter's HTML page), after the login."""

    path = "/{rest}"

    @tornado.web.authenticated
    def _unknown(self, *args: Any) -> None:
        raise NotFound(f"no route {self.request.method} {self.request.path[:200]}")

    get = post = put = patch = delete = _unknown
