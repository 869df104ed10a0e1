"""The `jupyter_mlp` server extension: settings, services and routes."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Int, Unicode

from ..store import Store
from ..store import runs as run_store
from .feed import EventFeed
from .handlers import handlers


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

    def initialize_settings(self) -> None:
        self.store = Store(self.home or None)
        self.store.connect()  # create or migrate now, not on the first request
        self.feed = EventFeed(self.store)
        from ..execution.service import JobService

        executors: dict = {
            "local": {},
            "dask": {"scheduler": self.dask_scheduler or None, "api_url": self.api_url},
        }
        self.jobs = JobService(self.store, concurrency=self.local_concurrency, executors=executors)
        self.jobs.start()
        self.settings["mlp"] = self
        self._reconciler = PeriodicCallback(
            self.reconcile, max(1.0, min(self.heartbeat_timeout / 4, 15.0)) * 1000
        )
        self._reconciler.start()
        self.log.info("jupyter-mlp: store at %s", self.store.home)

    def api_url(self) -> str:
        """Where remote jobs report to (read when a job is dispatched: the port is bound by then)."""
        if self.dask_server_url:
            return self.dask_server_url
        return self.serverapp.connection_url.rstrip("/") + "/mlp/api"

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    def reconcile(self) -> list[str]:
        """Mark runs whose kernel died (or whose heartbeat stopped) as lost."""
        lost = run_store.mark_lost(self.store.connect(), self.heartbeat_timeout)
        if lost:
            self.log.info("jupyter-mlp: marked lost: %s", ", ".join(lost))
        return lost

    def start_pipeline(self, pipeline_run_id: str) -> None:
        """A pipeline is driven by a process of its own: it outlives a server restart."""
        from ..pipelines.driver import spawn

        spawn(self.store.home, pipeline_run_id)

    async def stop_extension(self) -> None:
        self._reconciler.stop()
        self.feed.stop()
        self.jobs.stop()  # stops dispatching; running jobs and pipelines go on
