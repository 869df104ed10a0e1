"""JobService: what the server extension (and the CLI) call to submit, cancel and watch jobs.

    service = JobService(store, concurrency=2)
    service.start()                       # recover jobs a previous service left, then a thread
    run_id = service.submit_rerun("ab12", {"lr": 0.01})   # queued at once, returns in ms
    service.cancel(run_id)
    service.stop()                        # jobs keep running; a new service picks them up

The service owns no job state: the store does. Stopping it (or the server) loses nothing.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..model import CANCELLED, JobRequest
from ..store import runs as run_store
from ..store.jobs import JobNotFound, enqueue, get_job, status, transition
from .executor import Executor
from .registry import EXECUTORS
from .service_marker import remove_marker, write_marker
from .submit import prepare_notebook, prepare_rerun

POLL_S = 0.25
MIN_ROUND_S = 0.02  # rounds woken by the store's changes come at most this often


class JobService:
    def __init__(
        self,
        store: Any,
        concurrency: int | None = None,
        executors: dict[str, dict[str, Any]] | None = None,
        cwd: str | None = None,
        warm: bool = True,
        poll_interval: float = POLL_S,
        dispatch: bool | None = True,
    ) -> None:
        """concurrency: local jobs at once (default $MLP_LOCAL_CONCURRENCY, else 2);
        executors: per-executor settings, e.g. {"local": {"gpus": "0,1"}, "dask": {...}};
        cwd: the working directory of jobs (default: the notebook's folder); warm: fork local jobs
        from a launcher with papermill imported; dispatch=False: only submit, cancel and watch
        (another service starts the jobs); None: dispatch unless another service on this machine
        does, and take over when that one stops (`take_over`)."""
        from .service_marker import service_running

        self.store = store
        self._auto = dispatch is None
        self.dispatching = not service_running(store.home) if dispatch is None else dispatch
        self._checked = time.monotonic()
        self.config: dict[str, dict[str, Any]] = {
            name: dict(cfg) for name, cfg in (executors or {}).items()
        }
        self.config.setdefault("local", {})
        self.config["local"].setdefault("concurrency", concurrency)
        self.config["local"].setdefault("warm", warm)
        self.cwd = cwd
        self.poll_interval = poll_interval
        self._executors: dict[str, Executor] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._watcher: Any = None  # the loop's ChangeWatcher, while it waits

    # --- life cycle ----------------------------------------------------------------------------

    def executor(self, name: str) -> Executor:
        with self._lock:
            if name not in self._executors:
                self._executors[name] = EXECUTORS.create(
                    name, self.store, **self.config.get(name, {})
                )
            return self._executors[name]

    def start(self) -> None:
        if self._thread is not None:
            return
        for name in self.config:  # first: the warm launchers import while the rest goes on
            prestart = getattr(self.executor(name), "prestart", None)
            if prestart is not None and self.dispatching:
                prestart()
        for name in self.config:
            self.executor(name).recover()
        if self.dispatching:  # job processes leave the next dispatch to this service
            write_marker(
                self.store.home,
                dask=bool(self.config.get("dask", {}).get("api_url")),
                dask_scheduler=self.config.get("dask", {}).get("scheduler"),
            )
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mlp-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching and watching. Running jobs keep running."""
        self._stop.set()
        self._wake_up()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        remove_marker(self.store.home)
        if self.dispatching:
            # A job that ended while the marker was there left its successor to this service:
            # start it now. One that ends from here on starts the next itself (no marker).
            self.tick()
        with self._lock:
            for ex in self._executors.values():
                ex.close()
            self._executors.clear()

    def _loop(self) -> None:
        """A round every poll_interval, or as soon as the store changes (a job ended, one was
        queued: SQLite's data_version, read every few ms on a connection of its own), or when
        kicked; never more than one round per MIN_ROUND_S."""
        from ..store.db import ChangeWatcher

        watcher = self._watcher = ChangeWatcher(self.store.path)
        try:
            while not self._stop.is_set():
                version = watcher.version()
                started = time.monotonic()
                self.tick()
                watcher.wait(version, self.poll_interval, event=self._wake)
                self._wake.clear()
                rest = MIN_ROUND_S - (time.monotonic() - started)
                if rest > 0:
                    self._stop.wait(rest)
        finally:
            self._watcher = None
            watcher.close()

    def _wake_up(self) -> None:
        self._wake.set()
        watcher = self._watcher
        if watcher is not None:
            watcher.interrupt()

    def take_over(self, every: float = 0.5) -> bool:
        """A service made with dispatch=None that left the dispatching to another one starts
        dispatching itself once that one is gone (a pipeline's or a sweep's driver that ended
        while others still queue jobs: nobody would start those). Looks at most every `every` s.
        Two that take over at once are harmless: claiming a job is one transaction."""
        from .service_marker import service_running

        if self.dispatching or not self._auto:
            return False
        now = time.monotonic()
        if now - self._checked < every:
            return False
        self._checked = now
        if service_running(self.store.home):
            return False
        self.dispatching = True
        self.start()
        return True

    def tick(self) -> None:
        """One round: notice ended jobs, start queued ones (what the thread does; the CLI calls it)."""
        self.take_over()
        with self._lock:
            executors = list(self._executors.values())
        for ex in executors:
            try:
                ex.poll()
                if self.dispatching:
                    ex.dispatch()
            except Exception:  # a broken executor must not stop the others
                import logging

                logging.getLogger("jupyter_mlp").exception("executor %s failed", ex.name)

    def kick(self, executor: Executor) -> None:
        """Dispatch now what was queued for `executor` (a job, or a sweep trial queued in its own
        transaction), not at the next poll."""
        self.take_over(every=0.0)
        if self._thread is not None:
            self._wake_up()
        elif self.dispatching:  # no thread (the CLI): start it now
            executor.dispatch()

    def reserve(self, executor: str, kernel: str, n: int, starting: int = 0) -> None:
        """Keep `n` warm `kernel` kernels ready on `executor` for jobs about to be queued (a
        pipeline's next stages), `starting` of them queued now. Only where this service starts
        the jobs; best effort."""
        if not self.dispatching:
            return
        reserve = getattr(self.executor(executor), "reserve", None)
        if reserve is not None:
            reserve(kernel, n, starting)

    # --- submitting ----------------------------------------------------------------------------

    def submit_rerun(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        executor: str = "local",
        gpus: int | None = None,
        allow_new: bool = False,
        kernel: str | None = None,
        name: str | None = None,
        cwd: str | None = None,
        **extra: Any,
    ) -> str:
        """Queue a rerun of `run_id` with `params` overriding its parameters; returns the new
        run's id. gpus=None: as many as the parent run saw. JobError (or RunNotFound) on bad input,
        before anything is queued. extra: kind, pipeline_run_id, stage, options (pipelines), owner
        (who submits it; None: this process's user)."""
        request = prepare_rerun(
            self.store.connect(), self.store.blobs, run_id, params, executor=executor, gpus=gpus,
            allow_new=allow_new, kernel=kernel, name=name, cwd=cwd or self.cwd, **extra,
        )  # fmt: skip
        return self._queue(request)

    def submit_notebook(
        self,
        path: str | os.PathLike,
        params: dict[str, Any] | None = None,
        project: str | None = None,
        name: str | None = None,
        executor: str = "local",
        gpus: int = 0,
        allow_new: bool = False,
        kernel: str | None = None,
        cwd: str | None = None,
        **extra: Any,
    ) -> str:
        """Queue a notebook file as a job (its bytes now are the snapshot); returns the run id.
        extra: kind, pipeline_run_id, stage (pipelines), owner (who submits it)."""
        request = prepare_notebook(
            self.store.blobs, path, params, project=project, name=name, executor=executor,
            gpus=gpus, allow_new=allow_new, kernel=kernel, cwd=cwd or self.cwd, **extra,
        )  # fmt: skip
        return self._queue(request)

    def _queue(self, request: JobRequest) -> str:
        """The executor's own checks, then the job queued (one transaction); its run id."""
        ex = self.executor(request.executor)
        ex.validate(request)
        with self.store.write() as conn:
            new_id = enqueue(conn, request)
        self.kick(ex)
        return new_id

    # --- cancel and status ---------------------------------------------------------------------

    def cancel(self, run_id: str, wait: bool = False) -> dict[str, Any]:
        """Cancel a queued or running job; a job that already ended is left as it is.
        wait: block until its processes are gone (the CLI)."""
        conn = self.store.connect()
        rid = run_store.resolve_id(conn, run_id)
        with self.store.write() as wconn:
            job = transition(
                wconn,
                rid,
                CANCELLED,
                error={"ename": "Cancelled", "evalue": "cancelled by the user"},
            )
        if job is None:
            existing = get_job(conn, rid)
            if existing is None:
                raise JobNotFound(rid)
            return status(conn, rid)
        self.executor(job.executor).cancel(job, wait=wait)
        return status(conn, rid)

    def status(self, run_id: str) -> dict[str, Any]:
        conn = self.store.connect()
        return status(conn, run_store.resolve_id(conn, run_id))

    def executors_status(self) -> list[dict[str, Any]]:
        return [self.executor(name).capacity() for name in self.config]


def driver_service(store: Any, concurrency: int | None = None) -> JobService:
    """The job service of a pipeline's or a sweep's driver: it starts the jobs (its warm launcher
    and kernels start now), or, when another service (a server's, another driver's) dispatches
    for this store, submits and watches them until that one stops. The caller stops it."""
    service = JobService(store, concurrency=concurrency or 2, dispatch=None)
    if service.dispatching:
        service.start()
    return service


__all__ = ["JobService", "driver_service"]
