"""The `jupyter_mlp` server extension: settings, services and routes."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, Int, Set, Unicode

from ..store import Store, StoreUnavailable
from ..store import runs as run_store
from ..store.db import StoreUnreachable, safe_url, server_user
from ..store.owners import env_admins
from . import permissions
from .feed import EventFeed
from .routes import handlers
from .routes.base import TokenBuckets
from .tracking_key import TrackingKey, load_or_create

STORE_RETRY_S = 5.0  # a store that cannot be reached at start is tried again this often

# What the server puts into its own environment for the kernels it starts (team mode).
TRACKING_ENV = ("MLP_TRACKING_URI", "MLP_TRACKING_KEY", "MLP_TRACKING_TOKEN")

# Tornado closes a connection whose request headers pass its max_header_size (64 KiB) without
# an answer. The extension raises the limit of the server it runs in so that a long URL reaches
# the routes and is answered 414; past this the connection is still closed by tornado.
MAX_HEADER_BYTES = 4 * 1024 * 1024


class MlpApp(ExtensionApp):
    name = "jupyter_mlp"

    home = Unicode(
        "",
        config=True,
        help="Folder of the store and blobs (default: $MLP_HOME or <data dir>/mlp).",
    )
    store_url = Unicode(
        "",
        config=True,
        help="Address of a shared store (postgresql://user:password@host/db) for a team; empty: "
        "$MLP_STORE_URL, else the SQLite file under `home`. Read once and removed from the "
        "server's environment, so the kernels it starts never hold it.",
    )
    blob_url = Unicode(
        "", config=True, help="Address of a shared blob store, where the store supports one."
    )
    team_admins = Set(
        Unicode(),
        config=True,
        help="User names that may change (rename, tag, pin, delete, cancel) everyone's runs, "
        "pipeline runs and sweeps; the others change only their own. Setting it also turns on "
        "team mode on a store that is not shared. Default: $MLP_TEAM_ADMINS (comma-separated), "
        "which the command line reads too.",
    )
    kernels_through_server = Bool(
        None,
        allow_none=True,
        config=True,
        help="Whether kernels this server starts track through it (MLP_TRACKING_URI and a "
        "tracking key in their environment) instead of opening the store: None (default) when "
        "the store is shared (store_url).",
    )
    heartbeat_timeout = Float(
        60.0, config=True, help="Seconds without a heartbeat before a running run is marked lost."
    )
    default_executor = Unicode("local", config=True, help="Executor for reruns and stages.")
    dask_scheduler = Unicode(
        "",
        config=True,
        help="Address of the Dask scheduler for the dask executor (tcp://host:port).",
    )
    dask_server_url = Unicode(
        "",
        config=True,
        help="The address Dask workers reach this server's /mlp/api by, when it is not the "
        "server's own connection URL (workers on other machines, a proxy): "
        "http(s)://host:port/base/mlp/api.",
    )
    local_concurrency = Int(2, config=True, help="Jobs the local executor runs at once.")
    warm_kernels = Int(
        1,
        config=True,
        help="Kernels of the default kernel (python3) kept started for the next local jobs, so "
        "a rerun or a stage does not wait for a kernel to start; 0: none "
        "(env MLP_KERNEL_POOL outside the server).",
    )
    store_threads = Int(4, config=True, help="Threads that run store calls off the event loop.")
    token_failures_burst = Int(
        20, config=True, help="Failed run-token attempts a client address may make at once."
    )
    token_failures_per_s = Float(
        0.5, config=True, help="Failed run-token attempts a client address regains per second."
    )
    max_header_bytes = Int(
        MAX_HEADER_BYTES,
        config=True,
        help="Request header limit to set on the HTTP server (so a long URL is answered 414 "
        "rather than dropped by tornado); 0 leaves tornado's own.",
    )

    store_error: str | None = None
    store_where: str | None = None
    _stopping: threading.Event
    jobs: Any = None
    tracking_key: TrackingKey | None = None
    _reconciler: PeriodicCallback | None = None
    _saved_env: dict[str, str | None] | None = None

    def initialize_settings(self) -> None:
        self._stopping = threading.Event()
        # the shared store's address (with its credentials) stays in this process alone: the
        # kernels the server starts inherit its environment
        url = self.store_url or os.environ.get("MLP_STORE_URL", "")
        blobs = self.blob_url or os.environ.get("MLP_BLOB_URL", "")
        os.environ.pop("MLP_STORE_URL", None)
        os.environ.pop("MLP_BLOB_URL", None)
        self.shared_store_url = url or None
        self.hub = permissions.hub_identity(getattr(self.serverapp, "identity_provider", None))
        self.admins = frozenset(self.team_admins) or env_admins()  # ($MLP_TEAM_ADMINS, as the CLI)
        self.server_user = server_user()
        try:
            self.store = Store(self.home or None, url or None, blobs or None)
        except StoreUnavailable as exc:  # an address this store cannot open: every route 503
            self.store = Store(self.home or None)
            self.store_error, self.store_where = str(exc), exc.path
            self.log.error("jupyter-mlp: %s", exc)
        self.executor = ThreadPoolExecutor(self.store_threads, thread_name_prefix="mlp-store")
        self.token_buckets = TokenBuckets(self.token_failures_burst, self.token_failures_per_s)
        self.feed = EventFeed(self.store, self.executor)
        self.settings["mlp"] = self
        if self.serverapp is not None:
            self.serverapp.io_loop.add_callback(self._raise_header_limit)
        if self.store_error is not None:
            return
        through = self.kernels_through_server
        if through is None:
            through = self.shared_store_url is not None
        if through:  # before the store answers: kernels started meanwhile spool through us
            self._track_through_server()
        try:
            self.store.connect()  # create or migrate now, not on the first request
        except StoreUnreachable as exc:
            # a database that is down or restarting: 503 with this until it answers, then the
            # services start (no restart of Jupyter needed)
            self.store_error = str(exc)
            self.log.error("jupyter-mlp: %s; trying again every %.0f s", exc, STORE_RETRY_S)
            threading.Thread(
                target=self._wait_for_store, args=(through,), name="mlp-store-retry", daemon=True
            ).start()
            return
        except StoreUnavailable as exc:
            # corrupt, newer schema, refused: every /mlp/api route answers 503 with this
            self.store_error = str(exc)
            self.log.error("jupyter-mlp: %s", exc)
            return
        self._start_services(through)

    def _wait_for_store(self, through: bool) -> None:
        while not self._stopping.wait(STORE_RETRY_S):
            try:
                self.store.connect()
            except StoreUnreachable:
                continue
            except StoreUnavailable as exc:  # it answers now, with something else wrong
                self.store_error = str(exc)
                self.log.error("jupyter-mlp: %s", exc)
                return
            loop = self.serverapp.io_loop if self.serverapp is not None else None
            if loop is None:
                self._store_back(through)
            else:
                loop.add_callback(self._store_back, through)
            return

    def _store_back(self, through: bool) -> None:
        if self._stopping.is_set():
            return
        self.store_error = None
        self.log.info("jupyter-mlp: the store answers again: %s", self.store.path)
        self._start_services(through)

    def _start_services(self, through: bool) -> None:
        from ..execution.service import JobService
        from ..execution.submit import installed_kernels

        executors: dict = {
            "local": {
                "kernel_pool": self.warm_kernels,
                "keep_warm": 0,  # the server's launcher and kernels live as long as it does
                "tracking_url": self.kernel_tracking_url if through else None,
            },
            "dask": {"scheduler": self.dask_scheduler or None, "api_url": self.api_url},
        }
        self.jobs = JobService(self.store, concurrency=self.local_concurrency, executors=executors)
        self.jobs.start()
        threading.Thread(target=self._resume_sweeps, name="mlp-resume-sweeps", daemon=True).start()
        # so that the first submit of a kernel other than python3 does not pay for the list
        threading.Thread(target=installed_kernels, name="mlp-kernels", daemon=True).start()
        self._reconciler = PeriodicCallback(
            self._reconcile_tick, max(1.0, min(self.heartbeat_timeout / 4, 15.0)) * 1000
        )
        self._reconciler.start()
        self.log.info("jupyter-mlp: store at %s", self.store.where())

    def _resume_sweeps(self) -> None:
        from . import services

        try:
            resumed = services.resume_sweeps(self.store)
        except Exception:
            self.log.exception("jupyter-mlp: could not resume the unfinished sweeps")
            return
        if resumed:
            self.log.info("jupyter-mlp: sweeps driven again: %s", ", ".join(resumed))

    @property
    def team(self) -> bool:
        """Team mode: a shared store, or team admins named. Otherwise (single-seat) the one user
        may change everything, as before."""
        return self.shared_store_url is not None or bool(self.admins)

    def actor(self, current_user: Any) -> permissions.Actor:
        return permissions.actor(current_user, self.hub, self.team, self.admins)

    def store_address(self) -> str:
        """The store's address without its password (what /me shows)."""
        if self.shared_store_url:
            return safe_url(self.shared_store_url)
        return "sqlite:///" + Path(self.store.path).resolve().as_posix()

    # --- kernels that track through this server ---------------------------------------------

    def _track_through_server(self) -> None:
        """Put this server's /mlp/api address and its tracking key into its own environment:
        every kernel it starts from now on inherits them and tracks over HTTP (its user owns
        what they track) instead of opening the store."""
        runtime = getattr(self.serverapp, "runtime_dir", None) or str(self.store.home)
        key = load_or_create(runtime)
        self.tracking_key = TrackingKey(key)
        self._saved_env = {name: os.environ.get(name) for name in TRACKING_ENV}
        os.environ.pop("MLP_TRACKING_TOKEN", None)  # a token of ours would send every run there
        os.environ["MLP_TRACKING_KEY"] = key
        self._publish_tracking_uri()
        if self.serverapp is not None:  # again once the port is bound (port_retries may move it)
            self.serverapp.io_loop.add_callback(self._publish_tracking_uri)

    def _publish_tracking_uri(self) -> None:
        url = self.kernel_tracking_url()
        if url:
            os.environ["MLP_TRACKING_URI"] = url

    def kernel_tracking_url(self) -> str | None:
        """Where this server's kernels (and its local jobs' kernels) reach its /mlp/api."""
        if self.serverapp is None:
            return None
        return self.serverapp.connection_url.rstrip("/") + "/mlp/api"

    def _restore_env(self) -> None:
        if self._saved_env is None:
            return
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = None

    def check_store(self) -> None:
        """Raise StoreUnavailable (the routes answer 503) when the store could not be opened."""
        if self.store_error is not None:
            where = self.store_where or self.store.path
            raise StoreUnavailable(where, "could not be opened", self.store_error)

    def _raise_header_limit(self) -> None:
        """Once the HTTP server exists (it is made after the extensions load)."""
        if self.max_header_bytes <= 0:
            return
        try:
            server = self.serverapp.http_server  # type: ignore[union-attr]
        except AttributeError:  # embedded without an HTTP server of its own (tests)
            return
        raise_header_limit(server, self.max_header_bytes)

    def api_url(self) -> str:
        """Where remote jobs report to (read when a job is dispatched: the port is bound by then)."""
        if self.dask_server_url:
            return self.dask_server_url
        assert self.serverapp is not None
        return self.serverapp.connection_url.rstrip("/") + "/mlp/api"

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    def _reconcile_tick(self) -> None:
        self.reconcile()

    def reconcile(self) -> list[str]:
        """Mark runs whose kernel died (or whose heartbeat stopped) as lost."""
        try:
            lost = run_store.mark_lost(self.store.connect(), self.heartbeat_timeout)
        except StoreUnavailable as exc:
            self.log.error("jupyter-mlp: %s", exc)
            return []
        if lost:
            self.log.info("jupyter-mlp: marked lost: %s", ", ".join(lost))
        return lost

    def start_pipeline(self, pipeline_run_id: str) -> None:
        """A pipeline is driven by a process of its own: it outlives a server restart."""
        from ..pipelines.driver import spawn

        spawn(self.store, pipeline_run_id)

    async def stop_extension(self) -> None:
        stopping = getattr(self, "_stopping", None)
        if stopping is not None:  # the wait for a store that was down at start ends
            stopping.set()
        # whatever initialize_settings got to (a broken store starts no services)
        if self._reconciler is not None:
            self._reconciler.stop()
        feed = getattr(self, "feed", None)
        if feed is not None:
            feed.stop()
        if self.jobs is not None:
            self.jobs.stop()  # stops dispatching; running jobs and pipelines go on
        executor = getattr(self, "executor", None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self._restore_env()


def raise_header_limit(server: Any, limit: int) -> None:
    """Let `server` (a tornado HTTPServer) read request headers up to `limit` bytes; connections
    read the limit from its connection parameters for every request."""
    params = getattr(server, "conn_params", None)
    if params is not None and (params.max_header_size or 0) < limit:
        params.max_header_size = limit
