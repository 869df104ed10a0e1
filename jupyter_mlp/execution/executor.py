"""The Executor interface and its registry (entry point group `jupyter_mlp.executors`).

An executor takes queued jobs of its name from the store and gets them run somewhere. The
JobService drives every executor the same way:

    validate(request)   before queueing: raise JobError for what this executor cannot do
                        (more GPUs than it has, an unreachable scheduler)
    dispatch()          start queued jobs while capacity() allows; returns the run ids started
    poll()              notice jobs that ended without reporting (a dead process, a lost worker)
                        and fail them with the reason; finish pending cancels
    recover()           once at service start: pick up what a previous service left running
    cancel(job)         stop a job whose state already moved to `cancelled`
    capacity()          {"slots", "running", "queued", ...} for the UI and the scheduler
    close()             stop dispatching; running jobs keep running

The dask executor (dask_executor.py) implements the same: dispatch = client.submit(...) with
resources {"GPU": n}, poll = future states and worker presence, cancel = the run ended (its
token dies) + future.cancel().
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from .jobs import JobError, JobRequest

GROUP = "jupyter_mlp.executors"


class Executor:
    name: str = ""

    def __init__(self, store: Any, **config: Any) -> None:
        self.store = store
        self.config = config

    def validate(self, request: JobRequest) -> None:
        return None

    def dispatch(self) -> list[str]:
        raise NotImplementedError

    def poll(self) -> None:
        return None

    def recover(self) -> None:
        self.poll()

    def cancel(self, job: Any, wait: bool = False) -> None:
        raise NotImplementedError

    def capacity(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None


def executor_classes() -> dict[str, type[Executor]]:
    """Installed executors by name; `local` is always there (even without installed metadata)."""
    found: dict[str, type[Executor]] = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception:  # a broken plugin must not take the others down
            continue
    if "local" not in found:
        from .local import LocalExecutor

        found["local"] = LocalExecutor
    if "dask" not in found:
        from .dask_executor import DaskExecutor

        found["dask"] = DaskExecutor
    return found


def make_executor(name: str, store: Any, **config: Any) -> Executor:
    classes = executor_classes()
    if name not in classes:
        raise JobError(f"no executor {name!r} (installed: {', '.join(sorted(classes))})")
    return classes[name](store, **config)
