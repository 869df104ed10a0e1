"""The Executor interface (executors are found through registry.py).

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

from typing import Any

from ..model import JobRequest
from ..store.db import server_user
from ..store.jobs import list_jobs


class Executor:
    name: str = ""

    def __init__(self, store: Any, **config: Any) -> None:
        self.store = store
        self.config = config
        # On a store several servers share (a team's), each starts and watches only the jobs
        # its own user queued (their kernels run as that user, report to that user's server);
        # on this machine's own store, every job is this executor's.
        self.dispatcher: str | None = server_user() if getattr(store, "url", None) else None

    def jobs(self, conn: Any, states: tuple[str, ...]) -> list[Any]:
        """This executor's jobs in these states (its own user's, on a shared store)."""
        return list_jobs(conn, self.name, states, self.dispatcher)

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
