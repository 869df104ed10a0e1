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
- Watching (poll, in the job service's thread): one query per scheduler asks for its workers
  and the states of the jobs' tasks (the scheduler's own view: a client's cached worker list
  or a future's status after a reconnect are not to be trusted). A running job whose worker
  left the cluster fails at once with that reason (Dask would otherwise wait for, or retry on,
  another worker); a task that erred (KilledWorker after repeated worker deaths, an exception
  before the job could report) fails it with the reason; a task the scheduler no longer knows
  fails it (a restarted scheduler, or a job that ended while no server heard its outcome); a
  task that ended without its last report getting through gives its outcome as its result,
  which is recorded. A scheduler that does not answer is asked again later; no job is failed
  for that. Connections are made in the background: a scheduler that is down never stalls
  the service (which also starts local jobs).
- Cancel: the job's state moves to `cancelled` (which ends its token), the task is cancelled;
  a running job notices within a second and kills its kernel.
- Warm kernels: on each new connection the dispatching executor registers the worker plugin
  `remote.WarmKernels` (in the background; idempotent on the scheduler), which starts each
  worker's pool of warm kernels before its first job, also on workers that join later. If that
  fails, jobs still run: the first job on each worker starts the pool (and a cold kernel).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from ..model import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, Job, JobRequest
from ..store import tokens
from ..store.jobs import get_job, set_output_notebook, transition, update_job
from .errors import JobError
from .executor import Executor

CONNECT_TIMEOUT_S = 10.0
GRACE_S = 30.0  # a task just submitted may not be on the scheduler yet


def task_key(run_id: str) -> str:
    return f"mlp-job-{run_id}"


NO_SCHEDULER = (
    "the dask executor has no scheduler address configured. Give the Jupyter server one: start "
    "it with `jupyter lab --MlpApp.dask_scheduler=tcp://HOST:PORT`, or put "
    'c.MlpApp.dask_scheduler = "tcp://HOST:PORT" in jupyter_server_config.py, or set the '
    "environment variable MLP_DASK_SCHEDULER=tcp://HOST:PORT where it starts (a running server "
    "reads these when it is restarted). From a terminal, `jupyter mlp rerun` and `jupyter mlp "
    "run` also take --scheduler tcp://HOST:PORT"
)


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
        self._connecting: set[str] = set()
        self._futures: dict[str, Any] = {}  # run id -> future, for jobs this process submitted
        self._workers: dict[str, dict[str, Any]] = {}  # address -> workers seen at the last poll
        self._lock = threading.RLock()  # guards the dicts above; never held over the network

    def api_url(self) -> str | None:
        url = self._api_url() if callable(self._api_url) else self._api_url
        return url.rstrip("/") if url else None

    # --- connections ------------------------------------------------------------------------------

    def client(self, address: str) -> Any:
        """A connected client for `address` (kept); JobError when the scheduler does not answer.
        Blocks up to connect_timeout: for submitting, where the user waits for the answer."""
        ready = self._ready(address, connect=False)
        if ready is not None:
            return ready
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
        with self._lock:
            old = self._clients.get(address)
            self._clients[address] = client
        if old is not None and old is not client:
            _close(old)
        if self.api_url():  # this executor dispatches: its jobs should find warm kernels
            threading.Thread(
                target=_register_warm_kernels, args=(client, address), name="mlp-dask-plugin",
                daemon=True,
            ).start()  # fmt: skip
        return client

    def _ready(self, address: str, connect: bool = True) -> Any:
        """The connected client for `address`, or None (then, with connect, one is being made
        in the background for a later round)."""
        with self._lock:
            client = self._clients.get(address)
            if client is not None and client.status == "running":
                return client
            if not connect or address in self._connecting:
                return None
            self._connecting.add(address)

        def work() -> None:
            try:
                self.client(address)
            except JobError:
                pass  # asked again at the next round
            finally:
                with self._lock:
                    self._connecting.discard(address)

        threading.Thread(target=work, name="mlp-dask-connect", daemon=True).start()
        return None

    def _view(self, address: str, keys: list[str]) -> dict[str, Any] | None:
        """The scheduler's own view: {"workers": {address: {nthreads, resources}}, "tasks":
        {key: {"state", "worker", "error"}}}; None when it cannot be asked now."""
        client = self._ready(address)
        if client is None:
            return None

        def view(dask_scheduler: Any = None, keys: list[str] = keys) -> dict[str, Any]:
            # runs on the scheduler (pickled by value: it need not have jupyter-mlp)
            workers = {
                w.address: {"nthreads": w.nthreads, "resources": dict(w.resources or {})}
                for w in dask_scheduler.workers.values()
            }
            tasks = {}
            for key in keys:
                ts = dask_scheduler.tasks.get(key)
                if ts is not None:
                    tasks[key] = {
                        "state": ts.state,
                        "worker": ts.processing_on.address if ts.processing_on else None,
                        "error": str(ts.exception_text or "")[:2000] or None,
                    }
            return {"workers": workers, "tasks": tasks}

        try:
            found = client.run_on_scheduler(view)
        except Exception:
            return None
        with self._lock:
            self._workers[address] = found["workers"]
        return found

    # --- submitting ------------------------------------------------------------------------------

    def validate(self, request: JobRequest) -> None:
        server: dict[str, Any] = {}
        if not self.api_url():
            from .service_marker import service_info

            server = service_info(self.store.home) or {}
            if not server.get("dask"):
                raise JobError(
                    "dask jobs report to a running Jupyter server over HTTP: start JupyterLab "
                    "(or `jupyter server`) with jupyter-mlp on this machine, then submit again"
                )
        address = request.options.get("scheduler") or self.scheduler or server.get("dask_scheduler")
        if not address:
            raise JobError(NO_SCHEDULER)
        request.options["scheduler"] = address
        self.client(address)  # JobError: unreachable
        if request.gpus:
            found = self._view(address, [])
            if found is None:
                raise JobError(f"the Dask scheduler at {address} did not answer; try again")
            workers = found["workers"]
            offered = [w["resources"].get("GPU", 0) for w in workers.values()]
            if not any(g >= request.gpus for g in offered):
                raise JobError(
                    f"the job asks for {request.gpus} GPU(s) but no worker of {address} offers "
                    "that many (start one worker per card with --resources GPU=1, or GPU=N)"
                )

    # --- dispatching and watching (the server only) ---------------------------------------------

    def dispatch(self) -> list[str]:
        url = self.api_url()
        if not url:
            return []
        started = []
        for job in self.jobs(self.store.connect(), (QUEUED,)):
            if not job.options.get("dask_key") and self._submit(job, url):
                started.append(job.run_id)
        return started

    def _submit(self, job: Job, url: str) -> bool:
        from .remote import run_remote

        address = job.options.get("scheduler") or self.scheduler or ""
        client = self._ready(address)
        if client is None:
            return False  # connecting: the next round submits it
        try:
            snapshot = self.store.blobs.read_bytes(job.snapshot)
        except Exception as exc:
            return self._fail(job, "JobStartError", f"could not read the snapshot: {exc}")
        key = f"{task_key(job.run_id)}-{secrets.token_hex(4)}"
        with self.store.write() as conn:
            token = tokens.issue(conn, job.run_id)
            update_job(
                conn, job.run_id,
                options={**job.options, "dask_key": key, "scheduler": address, "submitted_at": time.time()},
            )  # fmt: skip
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
        with self._lock:
            self._futures[job.run_id] = future
        return True

    def _fail(self, job: Job, ename: str, reason: str, cancel: bool = True) -> bool:
        with self.store.write() as conn:
            transition(conn, job.run_id, FAILED, error={"ename": ename, "evalue": reason})
        self._release(job, cancel=cancel)
        return False

    def _release(self, job: Job, cancel: bool = False) -> None:
        """Forget the job's future; with cancel, also take its task off the cluster."""
        with self._lock:
            future = self._futures.pop(job.run_id, None)
        if not cancel or not job.options.get("dask_key"):
            return
        client = self._ready(job.options.get("scheduler") or "", connect=False)
        if client is None:
            return
        try:
            client.cancel([future or job.options["dask_key"]], force=True)
        except Exception:
            pass

    def poll(self) -> None:
        if not self.api_url():
            return
        active = [
            j
            for j in self.jobs(self.store.connect(), (QUEUED, RUNNING))
            if j.options.get("dask_key")
        ]
        with self._lock:
            ended = [rid for rid in self._futures if rid not in {j.run_id for j in active}]
        for run_id in ended:  # finished, or cancelled from anywhere: take the task off
            job = get_job(self.store.connect(), run_id)
            if job is not None:
                self._release(job, cancel=job.state != FINISHED)
        by_scheduler: dict[str, list[Job]] = {}
        for job in active:
            by_scheduler.setdefault(job.options["scheduler"], []).append(job)
        for address, jobs in by_scheduler.items():
            found = self._view(address, [j.options["dask_key"] for j in jobs])
            if found is None:
                continue  # the scheduler does not answer now: ask again next round
            for job in jobs:
                try:
                    self._check(job, found)
                except Exception:
                    continue

    def _check(self, job: Job, found: dict[str, Any]) -> None:
        key = job.options["dask_key"]
        task = found["tasks"].get(key)
        with self._lock:
            future = self._futures.get(job.run_id)
        if future is not None and future.status == "finished":
            return self._record(job, future.result(timeout=5))
        worker = job.options.get("worker")
        if job.state == RUNNING and worker and worker not in found["workers"]:
            self._fail(
                job, "JobLost",
                f"the Dask worker {worker} running the job left the cluster (it died or was "
                "stopped)",
            )  # fmt: skip
        elif task is not None and task["state"] == "erred":
            reason = task["error"] or "unknown error"
            if "KilledWorker" in reason or "workers" in reason and "died" in reason:
                reason = f"the workers running the job died repeatedly ({reason})"
            self._fail(job, "JobLost", f"the Dask task failed: {reason}")
        elif task is None or task["state"] in ("released", "forgotten"):
            submitted = job.options.get("submitted_at") or 0
            if time.time() - submitted < GRACE_S:
                return  # just submitted: the scheduler may not have it yet
            self._fail(
                job, "JobLost",
                "the Dask scheduler no longer knows the job's task (it was restarted, or the "
                "job ended while no Jupyter server was there to record its outcome)",
                cancel=False,
            )  # fmt: skip

    def _record(self, job: Job, outcome: Any) -> None:
        """The task ended: its outcome counts if the job's own report did not get through."""
        current = get_job(self.store.connect(), job.run_id)
        if current is None or current.final:
            self._release(job)
            return
        outcome = outcome if isinstance(outcome, dict) else {}
        state = outcome.get("state")
        if state in (FINISHED, FAILED, CANCELLED) and outcome.get("started"):
            with self.store.write() as conn:
                digest = outcome.get("output_notebook")
                if isinstance(digest, str) and self.store.blobs.exists(digest):
                    set_output_notebook(conn, job.run_id, digest)
                if current.state == QUEUED:
                    transition(conn, job.run_id, RUNNING)
                error = outcome.get("error") if isinstance(outcome.get("error"), dict) else None
                transition(conn, job.run_id, state, error=error)
            self._release(job)
        else:
            self._fail(
                job,
                "JobLost",
                "the job's task ended on the worker without running it",
                cancel=False,
            )

    def recover(self) -> None:
        """Nothing to do at once: every poll asks the scheduler about every active job (in the
        service's thread, so a scheduler that is down does not hold up the server's start)."""

    def prestart(self) -> None:
        """Connect to the default scheduler in the background (the panel shows its workers)."""
        if self.scheduler and self.api_url():
            self._ready(self.scheduler)

    def cancel(self, job: Job, wait: bool = False) -> None:
        """The job is `cancelled` in the store already (its token is dead: a running job stops
        its kernel within a second). Take the task off the cluster if this process can reach it;
        otherwise the server's next poll does."""
        self._release(job, cancel=True)

    def capacity(self) -> dict[str, Any]:
        """From the last poll: never waits for the network."""
        conn = self.store.connect()
        info: dict[str, Any] = {
            "executor": self.name, "scheduler": self.scheduler,
            "running": len(self.jobs(conn, (RUNNING,))),
            "queued": len(self.jobs(conn, (QUEUED,))),
        }  # fmt: skip
        with self._lock:
            workers = self._workers.get(self.scheduler or "")
            connected = self._ready(self.scheduler or "", connect=False) is not None
        if self.scheduler and not connected:
            info["error"] = f"not connected to the Dask scheduler at {self.scheduler}"
        if workers is not None:
            info["workers"] = len(workers)
            info["slots"] = sum(w["nthreads"] for w in workers.values())
            info["gpus"] = sum(w["resources"].get("GPU", 0) for w in workers.values())
        return info

    def close(self) -> None:
        """Running jobs keep running (fire_and_forget); only the connections close."""
        with self._lock:
            self._futures.clear()
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            _close(client)


def _register_warm_kernels(client: Any, address: str) -> None:
    """Register the warm-kernel worker plugin; a failure only costs the workers' first jobs a
    cold start (it is said in the server's log)."""
    try:
        from .remote import WarmKernels

        register = getattr(client, "register_plugin", None) or client.register_worker_plugin
        register(WarmKernels())
    except Exception as exc:
        logging.getLogger("jupyter_mlp").warning(
            "jupyter-mlp: could not register warm kernels on the Dask workers of %s (%s: %s); "
            "each worker's first job starts its kernel cold",
            address, type(exc).__name__, exc,
        )  # fmt: skip


def _close(client: Any) -> None:
    try:
        client.close(timeout=2)
    except Exception:
        pass
