"""The `jupyter_mlp` server extension."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode

from ..store import Store
from .handlers import handlers


class MlpApp(ExtensionApp):
    name = "jupyter_mlp"

    home = Unicode(
        "", config=True, help="Folder of the store and blobs (default: $MLP_HOME or <data dir>/mlp)."
    )
    heartbeat_timeout = Float(
        60.0, config=True, help="Seconds without a heartbeat before a running run is marked lost."
    )

    def initialize_settings(self) -> None:
        self.store = Store(self.home or None)
        self.settings["mlp"] = self
        self.log.info("jupyter-mlp: store at %s", self.store.home)

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())
