"""The executor registry: entry point group `jupyter_mlp.executors`, read once, as papermill's
engine registry reads `papermill.engine`. The built-in executors are named by their import path and
loaded on first use, so a kernel or the CLI never imports dask to list what there is. Their names
are reserved: `local` and `dask` are found without reading the installed entry points (~30 ms
of every command's start: importlib.metadata, then every distribution's entry points)."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import JobError
from .executor import Executor

GROUP = "jupyter_mlp.executors"
BUILT_IN = {
    "local": "jupyter_mlp.execution.local:LocalExecutor",
    "dask": "jupyter_mlp.execution.dask_executor:DaskExecutor",
}


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class ExecutorRegistry:
    """Executor classes by name: the built-ins (reserved names, always there, even without
    installed metadata), then the installed entry points. A plugin that fails to load is left
    out, with its reason."""

    def __init__(self) -> None:
        self._targets: dict[str, Any] | None = None  # name -> entry point, class or "mod:attr"
        self._classes: dict[str, type[Executor]] = {}
        self.broken: dict[str, str] = {}

    def register(self, name: str, cls: type[Executor]) -> None:
        self._entries()[name] = cls
        self._classes[name] = cls

    def _entries(self) -> dict[str, Any]:
        if self._targets is None:
            from importlib.metadata import entry_points

            found: dict[str, Any] = {ep.name: ep for ep in entry_points(group=GROUP)}
            found.update(BUILT_IN)  # reserved names (ours are declared as entry points too)
            self._targets = found
        return self._targets

    def names(self) -> list[str]:
        return sorted(n for n in self._entries() if n not in self.broken)

    def get(self, name: str) -> type[Executor]:
        if name in self._classes:
            return self._classes[name]
        target = BUILT_IN.get(name) or self._entries().get(name)
        if target is None or name in self.broken:
            raise JobError(f"no executor {name!r} (installed: {', '.join(self.names())})")
        try:
            if isinstance(target, str):
                cls = _load(target)
            elif isinstance(target, type):
                cls = target
            else:
                cls = target.load()
        except Exception as exc:  # a broken plugin must not take the others down
            self.broken[name] = f"{type(exc).__name__}: {exc}"
            raise JobError(f"executor {name!r} could not be loaded: {self.broken[name]}") from None
        self._classes[name] = cls
        return cls

    def create(self, name: str, store: Any, **config: Any) -> Executor:
        return self.get(name)(store, **config)


EXECUTORS = ExecutorRegistry()
