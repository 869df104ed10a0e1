"""Every route of the extension, by resource. Each route needs a logged-in Jupyter user, except
the ingest routes, which need a run token (`X-MLP-Run-Token`) that can write to its own run
only (or, to open a run, the server's tracking key). The routes are described in ../openapi.yaml; tests check that both agree."""

from __future__ import annotations

import re

from . import events, ingest, pipelines, runs, sweeps, team
from .base import MlpHandler, UnknownRouteHandler

HANDLERS: list[type[MlpHandler]] = [
    *runs.HANDLERS, *pipelines.HANDLERS, *sweeps.HANDLERS, *events.HANDLERS, *ingest.HANDLERS,
    *team.HANDLERS,
]  # fmt: skip


def methods(handler: type[MlpHandler]) -> set[str]:
    """The HTTP methods a handler of ours implements (not tornado's 405 defaults)."""
    own = [c for c in handler.__mro__ if c.__module__.startswith(__name__)]
    return {m for m in ("get", "post", "put", "patch", "delete") if any(m in vars(c) for c in own)}


def handlers() -> list[tuple[str, type[MlpHandler]]]:
    """(tornado pattern, handler) for every route; `{name}` in a path matches one segment. Last,
    a JSON 404 for any other path under /mlp/api."""
    routes = [(r"/mlp/api" + re.sub(r"\{[^}]+\}", "([^/]+)", h.path), h) for h in HANDLERS]
    return [*routes, (r"/mlp/api/(.*)", UnknownRouteHandler)]


__all__ = ["HANDLERS", "handlers", "methods"]
