"""The dask executor: jobs run as tasks on a `distributed` cluster and report over HTTP.

- Submitting (any process: the server, the CLI, a pipeline driver) validates and queues the
  job in the store, as for the local executor: the scheduler must answer, and with `--gpus N`
  some worker must offer the resource `GPU >= N`.
- Dispatching is done by the Jupyter server's job service only: it is the one that has an
  HTTP address the workers report to (`/ingest`, `/ingest/job`, `/ingest/blobs`). It issues the
  job's run token, submits `remote.run_remote` with `resources={"GPU": N}` under the key
  `mlp-job-<run id>` and lets go of it with fire_and_forget, so a server restart does not cancel
  running jobs; the restarted server finds their futures by key.
- The job stays `queued` until its task starts on a worker and says so (`running`, with the
  worker's address); Dask does the queueing and the resource accounting.
- Watching (poll): a task that errs (KilledWorker after repeated worker deaths, an exception
  before the job could report) fails the job with the reason; a running job whose worker left
  the cluster fails at once with that reason (Dask would otherwise wait for, or retry on,
  another worker); a task that ended without the job's last report getting through gives its
  outcome as its result, which is recorded.
- Cancel: the job's state moves to `cancelled` (which ends its token), the future is cancelled;
  a running job notices within a second and kills its kernel.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from ..store import tokens
from .executors import Executor
from .jobs import (
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    Job,
    JobError,
    JobRequest,
    get_job,
    list_jobs,
    transition,
    update_job,
)

CONNECT_TIMEOUT_S = 10.0


def task_key(run_id: str) -> str:
    return f"mlp-job-{run_id}"


class DaskExecutor(Executor):
    name = "dask"

    def __init__(
        self,
        store: Any,
        scheduler: str | None = None,
        api_url: str | Callable[[], str | None] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        **config: Any,
    ) -> None:
        """scheduler: default address (else $MLP_DASK_SCHEDULER); api_url: where workers reach
        this server's /mlp/api (set by the server extension only: without it this executor
        queues and validates but does not dispatch)."""
        super().__init__(store, **config)
        self.scheduler = scheduler or os.environ.get("MLP_DASK_SCHEDULER") or None
        self._api_url = api_url
        self.connect_timeout = connect_timeout
        self._clients: dict[str, Any] = {}
        self._futures: dict[str, Any] = {}
        self._lock = threading.RLock()

    def api_url(self) -> str | None:
        url = self._api_url() if callable(self._api_url) else self._api_url
        return url.rstrip("/") if url else None

    def client(self, address: str) -> Any:
        """A connected client for `address` (kept); JobError when the scheduler does not answer."""
        with self._lock:
            client = self._clients.get(address)
            if client is not None and client.status == "running":
                return client
            try:
                from distributed import Client
            except ImportError:
                raise JobError(
                    "the dask executor needs `distributed`: pip install 'jupyter-mlp[dask]'"
                ) from None
            try:
                client = Client(address, timeout=self.connect_timeout, set_as_default=False)
            except Exception as exc:
                raise JobError(
                    f"cannot reach the Dask scheduler at {address}: {type(exc).__name__}: {exc}"
                ) from None
            self._clients[address] = client
            return client

    # --- submitting ------------------------------------------------------------------------------

    def validate(self, request: JobRequest) -> None:
        server: dict[str, Any] = {}
        if not self.api_url():
            from .service import service_info

            server = service_info(self.store.home) or {}
            if not server.get("dask"):
                raise JobError(
                    "dask jobs report to a running Jupyter server over HTTP: start JupyterLab "
                    "(or `jupyter server`) with jupyter-mlp on this machine, then submit again"
                )
        address = request.options.get("scheduler") or self.scheduler or server.get("dask_scheduler")
        if not address:
            raise JobError(
                "no Dask scheduler: pass --scheduler tcp://HOST:PORT, or set "
                "c.MlpApp.dask_scheduler (or $MLP_DASK_SCHEDULER) for the server"
            )
        request.options["scheduler"] = address
        workers = self.client(address).scheduler_info()["workers"]
        if request.gpus:
            offered = [w.get("resources", {}).get("GPU", 0) for w in workers.values()]
            if not any(g >= request.gpus for g in offered):
                raise JobError(
                    f"the job asks for {request.gpus} GPU(s) but no worker of {address} offers "
                    "that many (start workers with --resources GPU=N)"
                )

    # --- dispatching and watching (the server only) ---------------------------------------------

    def dispatch(self) -> list[str]:
        url = self.api_url()
        if not url:
            return []
        started = []
        with self._lock:
            for job in list_jobs(self.store.connect(), self.name, (QUEUED,)):
                if job.options.get("dask_key"):
                    continue  # submitted; queued on the cluster
                if self._submit(job, url):
                    started.append(job.run_id)
        return started

    def _submit(self, job: Job, url: str) -> bool:
        from .remote import run_remote

        address = job.options.get("scheduler") or self.scheduler or ""
        key = task_key(job.run_id)
        try:
            client = self.client(address)
            snapshot = self.store.blobs.read_bytes(job.snapshot)
        except Exception as exc:
            return self._fail(job, "JobStartError", f"could not submit the job: {exc}")
        with self.store.write() as conn:
            token = tokens.issue(conn, job.run_id)
            update_job(conn, job.run_id, options={**job.options, "dask_key": key, "scheduler": address})  # fmt: skip
        from distributed import fire_and_forget

        resources = {"GPU": job.gpus_requested} if job.gpus_requested else None
        try:
            future = client.submit(
                run_remote, job.as_dict(), snapshot, url, token, key=key, pure=False,
                resources=resources, retries=0,
            )  # fmt: skip
            fire_and_forget(future)
        except Exception as exc:
            return self._fail(job, "JobStartError", f"could not submit the job: {exc}")
        self._futures[job.run_id] = future
        return True

    def _fail(self, job: Job, ename: str, reason: str) -> bool:
        with self.store.write() as conn:
            transition(conn, job.run_id, FAILED, error={"ename": ename, "evalue": reason})
        self._drop(job.run_id, cancel=True)
        return False

    def _future(self, job: Job) -> Any:
        future = self._futures.get(job.run_id)
        if future is None:  # submitted by an earlier server: find it by key
            from distributed import Future

            future = Future(job.options["dask_key"], self.client(job.options["scheduler"]))
            self._futures[job.run_id] = future
        return future

    def _drop(self, run_id: str, cancel: bool = False) -> None:
        future = self._futures.pop(run_id, None)
        if future is not None and cancel:
            try:
                future.cancel(force=True)
            except Exception:
                pass

    def poll(self) -> None:
        if not self.api_url():
            return
        with self._lock:
            active = {
                j.run_id: j
                for j in list_jobs(self.store.connect(), self.name, (QUEUED, RUNNING))
                if j.options.get("dask_key")
            }
            for run_id in list(self._futures):
                if run_id not in active:  # ended (or cancelled from anywhere): let the task go
                    self._drop(run_id, cancel=True)
            live: dict[str, set[str]] = {}
            for job in active.values():
                try:
                    self._check(job, live)
                except Exception:
                    continue  # the scheduler is away for now: look again next round

    def _check(self, job: Job, live: dict[str, set[str]]) -> None:
        worker = job.options.get("worker")
        if job.state == RUNNING and worker:
            address = job.options["scheduler"]
            if address not in live:
                live[address] = set(self.client(address).scheduler_info()["workers"])
            if worker not in live[address]:
                self._fail(
                    job, "JobLost",
                    f"the Dask worker {worker} running the job left the cluster (it died or "
                    "was stopped)",
                )  # fmt: skip
                return
        future = self._future(job)
        status = future.status
        if status == "error":
            exc = future.exception(timeout=5)
            name = type(exc).__name__
            reason = f"the Dask task failed: {name}: {exc}"
            if name == "KilledWorker":
                reason = f"the workers running the job died repeatedly ({exc})"
            self._fail(job, "JobLost", reason)
        elif status == "finished":
            self._record(job, future.result(timeout=5))
        elif status in ("cancelled", "lost"):
            self._fail(job, "JobLost", "the Dask scheduler dropped the job (was it restarted?)")

    def _record(self, job: Job, outcome: Any) -> None:
        """The task ended: its outcome counts if the job's own report did not get through."""
        current = get_job(self.store.connect(), job.run_id)
        if current is None or current.final:
            self._drop(job.run_id)
            return
        outcome = outcome if isinstance(outcome, dict) else {}
        state = outcome.get("state")
        if state in (FINISHED, FAILED, CANCELLED) and outcome.get("started"):
            with self.store.write() as conn:
                if outcome.get("output_notebook") and self.store.blobs.exists(
                    outcome["output_notebook"]
                ):
                    from .jobs import set_output_notebook

                    set_output_notebook(conn, job.run_id, outcome["output_notebook"])
                if current.state == QUEUED:
                    transition(conn, job.run_id, RUNNING)
                transition(conn, job.run_id, state, error=outcome.get("error"))
            self._drop(job.run_id)
        else:
            self._fail(job, "JobLost", "the job's task ended on the worker without running it")

    def prestart(self) -> None:
        """Connect to the default scheduler in the background (the panel shows its workers)."""
        if self.scheduler and self.api_url():

            def connect() -> None:
                try:
                    self.client(self.scheduler or "")
                except JobError:
                    pass  # said again, with the reason, when a job is submitted

            threading.Thread(target=connect, name="mlp-dask-connect", daemon=True).start()

    def recover(self) -> None:
        """At service start: a job whose task the scheduler no longer knows (the scheduler was
        restarted, or the task ended while no server was there to hear its outcome) would wait
        forever; it fails with that reason. The others are followed by key."""
        if not self.api_url():
            return
        by_scheduler: dict[str, list[Job]] = {}
        for job in list_jobs(self.store.connect(), self.name, (QUEUED, RUNNING)):
            if job.options.get("dask_key"):
                by_scheduler.setdefault(job.options["scheduler"], []).append(job)
        for address, jobs in by_scheduler.items():
            keys = [j.options["dask_key"] for j in jobs]

            def states(dask_scheduler: Any = None, keys: list[str] = keys) -> dict[str, str]:
                # runs on the scheduler (pickled by value: it need not have jupyter-mlp)
                tasks = dask_scheduler.tasks
                return {k: tasks[k].state for k in keys if k in tasks}

            try:
                known = self.client(address).run_on_scheduler(states)
            except Exception:
                continue  # the scheduler is away: poll keeps trying
            for job in jobs:
                if known.get(job.options["dask_key"]) in (None, "released", "forgotten"):
                    self._fail(
                        job, "JobLost",
                        "the Dask scheduler no longer knows the job's task (it was restarted, or "
                        "the job ended while no Jupyter server was there to record its outcome)",
                    )  # fmt: skip
        self.poll()

    def cancel(self, job: Job, wait: bool = False) -> None:
        """The job is `cancelled` in the store already (its token is dead: a running job stops
        its kernel within a second). Cancel the task if this process holds it; otherwise the
        server's next poll does."""
        with self._lock:
            self._drop(job.run_id, cancel=True)

    def capacity(self) -> dict[str, Any]:
        conn = self.store.connect()
        info: dict[str, Any] = {
            "executor": self.name, "scheduler": self.scheduler,
            "running": len(list_jobs(conn, self.name, (RUNNING,))),
            "queued": len(list_jobs(conn, self.name, (QUEUED,))),
        }  # fmt: skip
        client = self._clients.get(self.scheduler or "")
        if client is not None and client.status == "running":  # never waits for a connection
            try:
                workers = client.scheduler_info()["workers"]
            except Exception as exc:
                info["error"] = f"the scheduler does not answer: {exc}"
            else:
                info["workers"] = len(workers)
                info["slots"] = sum(w.get("nthreads", 0) for w in workers.values())
                info["gpus"] = sum(w.get("resources", {}).get("GPU", 0) for w in workers.values())
        return info

    def close(self) -> None:
        """Running jobs keep running (fire_and_forget); only the connections close."""
        with self._lock:
            self._futures.clear()
            for client in self._clients.values():
                try:
                    client.close(timeout=2)
                except Exception:
                    pass
            self._clients.clear()
