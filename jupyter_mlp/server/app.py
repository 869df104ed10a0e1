"""The `jupyter_mlp` server extension: settings, services and routes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Int, Unicode

from ..store import Store, StoreUnavailable
from ..store import runs as run_store
from .feed import EventFeed
from .routes import handlers
from .routes.base import TokenBuckets

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
    jobs: Any = None
    _reconciler: PeriodicCallback | None = None

    def initialize_settings(self) -> None:
        self.store = Store(self.home or None)
        self.executor = ThreadPoolExecutor(self.store_threads, thread_name_prefix="mlp-store")
        self.token_buckets = TokenBuckets(self.token_failures_burst, self.token_failures_per_s)
        self.feed = EventFeed(self.store, self.executor)
        self.settings["mlp"] = self
        if self.serverapp is not None:
            self.serverapp.io_loop.add_callback(self._raise_header_limit)
        try:
            self.store.connect()  # create or migrate now, not on the first request
        except StoreUnavailable as exc:
            # every /mlp/api route answers 503 with this; nothing else starts
            self.store_error = str(exc)
            self.log.error("jupyter-mlp: %s", exc)
            return
        from ..execution.service import JobService

        executors: dict = {
            "local": {"kernel_pool": self.warm_kernels},
            "dask": {"scheduler": self.dask_scheduler or None, "api_url": self.api_url},
        }
        self.jobs = JobService(self.store, concurrency=self.local_concurrency, executors=executors)
        self.jobs.start()
        threading.Thread(target=self._resume_sweeps, name="mlp-resume-sweeps", daemon=True).start()
        self._reconciler = PeriodicCallback(
            self._reconcile_tick, max(1.0, min(self.heartbeat_timeout / 4, 15.0)) * 1000
        )
        self._reconciler.start()
        self.log.info("jupyter-mlp: store at %s", self.store.home)

    def _resume_sweeps(self) -> None:
        from . import services

        try:
            resumed = services.resume_sweeps(self.store)
        except Exception:
            self.log.exception("jupyter-mlp: could not resume the unfinished sweeps")
            return
        if resumed:
            self.log.info("jupyter-mlp: sweeps driven again: %s", ", ".join(resumed))

    def check_store(self) -> None:
        """Raise StoreUnavailable (the routes answer 503) when the store could not be opened."""
        if self.store_error is not None:
            raise StoreUnavailable(self.store.path, "could not be opened", self.store_error)

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

        spawn(self.store.home, pipeline_run_id)

    async def stop_extension(self) -> None:
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


def raise_header_limit(server: Any, limit: int) -> None:
    """Let `server` (a tornado HTTPServer) read request headers up to `limit` bytes; connections
    read the limit from its connection parameters for every request."""
    params = getattr(server, "conn_params", None)
    if params is not None and (params.max_header_size or 0) < limit:
        params.max_header_size = limit
