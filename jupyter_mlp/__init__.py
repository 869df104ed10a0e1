"""jupyter-mlp: track notebook runs, rerun them with new parameters, wire them into pipelines.

    %load_ext jupyter_mlp
    %mlp_track baseline --project digits

or, in plain Python: `import jupyter_mlp as mlp; mlp.track("baseline"); mlp.log_metric("loss", 0.3)`.
This module stays tiny: `import jupyter_mlp` must not pull the store, tornado or papermill.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any


try:
    from ._version import __version__
except ImportError:  # pragma: no cover - running from a source tree that was never built
    __version__ = "0.0.0"

_API = (
    "track", "log_metric", "log_metrics", "log_param", "log_params", "output", "log_artifact",
    "flush", "finish", "active_run",
)  # fmt: skip
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    """The tracking functions load on first use and are then plain module attributes."""
    if name in _API:
        from .tracker import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jupyter_mlp' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    from .tracker.magic import TrackMagics

    ipython.register_magics(TrackMagics)


def unload_ipython_extension(ipython: Any) -> None:
    from .tracker import api

    api.finish()


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-mlp"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import MlpApp

    return [{"module": "jupyter_mlp.server.app", "app": MlpApp}]
