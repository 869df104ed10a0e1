"""A job on a remote worker (the dask executor): the same NotebookJob as a local job, reporting
to the Jupyter server over HTTP with the run's token instead of writing the store.

    run_remote(job, snapshot, api_url, token) -> {"state", "error", "output_notebook"}

runs on the worker (a Dask task). No shared filesystem is assumed: the snapshot comes with the
task, cells and metrics go through `POST /ingest` (spooled while the server is unreachable, as a
remote tracker's), the executed notebook through `PUT /ingest/blobs/{hash}`, and the job's state
through `/ingest/job`. A tracker inside the notebook (`%mlp_track`) gets the same URL and token,
so it attaches to the job's run.

Cancel: the server ends the run; the token stops working; a watcher here notices within a
second and kills the kernel. The outcome is also the task's result, so the server can still
record it when the last report did not get through.

Warm kernels: each worker process holds one `WorkerKernels` (a kernel_pool.KernelPool of
`$MLP_KERNEL_POOL` kernels on the worker, default 1, 0 for none), started by the `WarmKernels`
worker plugin that the server registers when it connects (so a worker that joins later gets it
too), else by the worker's first job. A job takes a kernel started for its kernel name and its
card set (`CARDS.take()`), which it shuts down at its end; the pool refills in a thread of its
own. A job that no kernel fits starts a cold one, as before. The idle kernels are stopped when
the worker closes (the plugin's teardown, else at exit); a worker killed outright takes them
along (ipykernel watches its parent).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ..model import CANCELLED, FAILED, FINAL_JOB_STATES, FINISHED, RUNNING, Job
from ..tracker.sinks import HttpSink, Kept, default_spool_dir
from .engine import JobCancelled
from .gpus import CARDS
from .notebook_job import NotebookJob
from .processes import kill_group

try:  # the base of the warm-kernel plugin (distributed is there wherever this module runs)
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover
    WorkerPlugin = object  # type: ignore[misc,assignment]

WATCH_S = 1.0  # how often a running remote job asks whether it should go on
REPORT_TRIES_S = 600.0  # how long a report is retried while the server cannot be reached
POOL_TICK_S = 1.0  # how often the worker's pool replaces dead or stale idle kernels


class HttpReporter:
    """The reporter of reporters.StoreReporter's shape, over the server's token routes."""

    def __init__(
        self, api_url: str, token: str, run_id: str, snapshot: bytes, spool_dir: str | None = None
    ) -> None:
        # its own spool folder: a tracker inside the notebook spools the same run separately
        self.sink = HttpSink(api_url, token, Path(spool_dir or default_spool_dir()) / "jobs")
        self.url = self.sink.uri + "/ingest/job"
        self.run_id = run_id
        self._snapshot = snapshot
        self.attempt = secrets.token_hex(8)  # this start of the task (Dask may retry it elsewhere)
        self.ended = False  # the token was refused: the run has ended on the server
        self.output_notebook: str | None = None

    # --- the job route -----------------------------------------------------------------------

    def _job(self, body: dict[str, Any] | None = None, patience: float = REPORT_TRIES_S) -> Any:
        """GET (body None) or POST /ingest/job; None once the run has ended on the server.
        Retries while the server cannot be reached, for `patience` seconds."""
        import requests

        deadline = time.monotonic() + patience
        while True:
            try:
                if body is None:
                    r = self.sink.http.get(self.url, timeout=30)
                else:
                    r = self.sink.http.post(self.url, json=body, timeout=30)
            except (requests.RequestException, OSError):
                r = None
            if r is not None and r.status_code == 401:
                self.ended = True
                return None
            if r is not None and r.status_code < 500:
                r.raise_for_status()  # a refused report (400): a bug to see in the worker's log
                return r.json()
            if time.monotonic() >= deadline:
                raise ConnectionError(f"cannot report to {self.url}")
            time.sleep(1.0)

    def _post(self, body: dict[str, Any], patience: float = REPORT_TRIES_S) -> Any:
        return self._job({**body, "attempt": self.attempt}, patience)

    def start(self, worker: str | None, gpus: list[str] | None) -> dict[str, Any] | None:
        body: dict[str, Any] = {"state": RUNNING, "host": socket.gethostname()}
        if worker:
            body["worker"] = worker
        if gpus is not None:
            body["gpus"] = gpus
        return self._post(body)

    # --- what NotebookJob and CellRecorder call ------------------------------------------------

    def write(self, run_id: str, batch: dict[str, Any]) -> None:
        try:
            self.sink.write(run_id, batch)
        except Kept:
            pass  # spooled; sent with the next batch that gets through

    def flush(self, patience: float = REPORT_TRIES_S) -> bool:
        """Send what is spooled; False when it could not all go in time."""
        deadline = time.monotonic() + patience
        while self.sink.pending:
            try:
                self.sink.flush()
            except Kept:
                if self.ended or time.monotonic() >= deadline:
                    return False
                time.sleep(1.0)
        return True

    def transition(self, run_id: str, to: str, error: dict[str, Any] | None = None) -> bool:
        if to in FINAL_JOB_STATES:
            self.flush()  # the cells first, then the outcome
        body: dict[str, Any] = {"state": to}
        if error is not None:
            body["error"] = error
        reply = self._post(body)
        return bool(reply and reply.get("accepted"))

    def update(self, run_id: str, **values: Any) -> None:
        """Progress and notes, best effort (a server restart must not fail the job). Only what
        means something off the worker: pids there mean nothing to the server."""
        wanted = {k: v for k, v in values.items() if k in ("cells_total", "note", "host")}
        if wanted:
            try:
                self._post(wanted, patience=5.0)
            except Exception:
                pass

    def state(self, run_id: str) -> str:
        """The job's state on the server; `running` whenever that cannot be learnt now (a
        server restarting does not stop the job), `cancelled` once the run has ended there."""
        try:
            reply = self._job(patience=0.0)
        except Exception:
            return RUNNING
        if not reply:
            return CANCELLED
        return str(reply.get("state") or RUNNING)

    def snapshot(self, digest: str) -> bytes:
        return self._snapshot

    def put_file(self, path: Any) -> tuple[str, int]:
        return self.sink.put_file(path)

    def set_output_notebook(self, run_id: str, digest: str) -> None:
        self.output_notebook = digest  # also goes back as the task's result
        if self.flush():  # the blob is uploaded before it is named
            self._post({"output_notebook": digest})

    def fetch_inputs(self, inputs: dict[str, dict[str, str]], folder: Path) -> dict[str, str]:
        """Download the artifacts the job's parameters name: {parameter: local path}."""
        paths = {}
        for param, ref in inputs.items():
            digest = str(ref.get("blob", ""))
            name = Path(str(ref.get("filename") or "")).name
            target = folder / digest / (name if name not in ("", ".", "..") else digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            with self.sink.http.get(f"{self.sink.uri}/ingest/inputs/{digest}", stream=True,
                                    timeout=60) as r:  # fmt: skip
                r.raise_for_status()
                with open(target, "wb") as f:
                    for chunk in r.iter_content(1 << 20):
                        f.write(chunk)
            paths[param] = str(target)
        return paths


class RemoteNotebookJob(NotebookJob):
    """NotebookJob with a watcher that stops the kernel when the server ends the run."""

    def __init__(
        self, reporter: HttpReporter, job: Job, env: dict[str, str], kernel: Any = None
    ) -> None:
        super().__init__(reporter, job, env=env, kernel=kernel)
        self._done = threading.Event()
        self.outcome: dict[str, Any] = {}

    def _watch(self) -> None:
        while not self._done.wait(WATCH_S):
            if self.reporter.state(self.run_id) != RUNNING:
                self.cancelled = True
                kill_group(self.recorder.kernel_pgid, signal.SIGKILL)
                return

    def execute(self) -> None:
        watcher = threading.Thread(target=self._watch, name="mlp-job-watch", daemon=True)
        watcher.start()
        try:
            super().execute()
        finally:
            self._done.set()

    # The outcome is kept here too: once reported, the token no longer reads the job's state.

    def on_complete(self) -> None:
        self.outcome["state"] = FINISHED
        super().on_complete()

    def on_failure(self, exc: BaseException) -> None:
        if not isinstance(exc, JobCancelled):
            self.outcome.update(state=FAILED, error=self.describe(exc))
        super().on_failure(exc)

    def on_cancel(self) -> None:
        self.outcome["state"] = CANCELLED
        super().on_cancel()


# --- warm kernels ---------------------------------------------------------------------------


class WorkerKernels:
    """This worker process's warm kernels: a KernelPool, shared by the worker's task threads
    under a lock, topped up by a thread of its own (at once after a take, else every
    POOL_TICK_S). Connection files and the idle kernels' working folder are in a temporary
    folder of this process; the kernels' console output goes to the worker's stderr, as a cold
    kernel's does."""

    def __init__(self, size: int) -> None:
        from .kernel_pool import KernelPool

        self.folder = Path(tempfile.mkdtemp(prefix="mlp-kernels-"))
        self.pool = KernelPool(self.folder, size=size, log=2)
        self.closed = False
        self._lock = threading.Lock()  # over every use of the pool
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._refill, name="mlp-kernel-pool", daemon=True)
        self._thread.start()

    def _refill(self) -> None:
        warmed = False
        while True:
            with self._lock:
                if self.closed:
                    return
                try:
                    self.pool.tick()
                except Exception:  # never let the pool's thread die: jobs would start cold
                    traceback.print_exc()
            if not warmed:  # while the first kernel starts
                warmed = True
                _warm_up()
            self._wake.wait(POOL_TICK_S)
            self._wake.clear()

    def take(self, kernel_name: str, cards: str) -> Any:
        """An idle kernel started for this kernel name and card set (its job's alone), or None."""
        with self._lock:
            kernel = None if self.closed else self.pool.take(kernel_name, cards)
        if kernel is not None:
            self._wake.set()  # refill now
        return kernel

    def close(self) -> None:
        """Stop the idle kernels (those handed out belong to their jobs) and the thread."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.pool.close()
        self._wake.set()
        shutil.rmtree(self.folder, ignore_errors=True)


def _warm_up() -> None:
    """Import, ahead, what a worker's first job would import (papermill, nbclient, nbformat:
    seconds on a busy machine)."""
    try:
        import papermill  # type: ignore[import-untyped]  # noqa: F401
    except Exception:
        pass


_kernels: WorkerKernels | None = None
_kernels_lock = threading.Lock()
_atexit = False


def pool_size() -> int:
    """`$MLP_KERNEL_POOL` on the worker: how many warm kernels it keeps (default 1, 0: none)."""
    try:
        return max(0, int(os.environ.get("MLP_KERNEL_POOL", "1")))
    except ValueError:
        return 1


def worker_kernels() -> WorkerKernels | None:
    """This process's warm kernels, started on first use; None when they are turned off (or
    the pool cannot be made: jobs then start cold)."""
    global _kernels, _atexit
    with _kernels_lock:
        if _kernels is not None and not _kernels.closed:
            return _kernels
        size = pool_size()
        if not size:
            return None
        try:
            _kernels = WorkerKernels(size)
        except Exception as exc:
            print(f"jupyter-mlp: no warm kernels on this worker: {exc}", file=sys.stderr)
            return None
        if not _atexit:
            atexit.register(close_worker_kernels)
            _atexit = True
        return _kernels


def close_worker_kernels() -> None:
    global _kernels
    with _kernels_lock:
        kernels, _kernels = _kernels, None
    if kernels is not None:
        kernels.close()


class WarmKernels(WorkerPlugin):
    """Worker plugin: start the worker's warm kernels before its first job, stop the idle ones
    when it closes. The server registers it once per connection to a scheduler, which hands it
    to every worker, also those that join later; idempotent, so registering it again (another
    server, a reconnect) does not restart the pools."""

    name = "jupyter-mlp-warm-kernels"
    idempotent = True

    def setup(self, worker: Any) -> None:
        worker_kernels()

    def teardown(self, worker: Any) -> None:
        close_worker_kernels()


def _take_kernel(spec: Job) -> Any:
    """A warm kernel for this job, or None. A job whose cards are unknown here (None: it sees
    what the worker sees) gets none: the pool's kernels are started for a card set."""
    if spec.gpus is None:
        return None
    try:
        kernels = worker_kernels()
        return kernels.take(spec.kernel, ",".join(spec.gpus)) if kernels else None
    except Exception:
        traceback.print_exc()
        return None


def worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:
        return None


def run_remote(job: dict[str, Any], snapshot: bytes, api_url: str, token: str) -> dict[str, Any]:
    """The Dask task: run one job on this worker; returns its outcome."""
    spec = Job(**job)
    reporter = HttpReporter(api_url, token, spec.run_id, snapshot)
    # [] for no GPU (it sees none, as locally); None: this worker's cards are unknown, the
    # job sees what the worker sees
    spec.gpus = CARDS.take(spec.gpus_requested)
    try:
        reply = reporter.start(worker_address(), spec.gpus)
        if not reply or not reply.get("accepted"):
            # cancelled while queued, or another attempt already runs it (a retry after a
            # worker was lost): this attempt does nothing
            return {"state": reply["state"] if reply else CANCELLED, "started": False}
        return _run(spec, reporter, token)
    finally:
        CARDS.give_back(spec.gpus)


def _run(spec: Job, reporter: HttpReporter, token: str) -> dict[str, Any]:
    env = {"MLP_TRACKING_URI": reporter.sink.uri, "MLP_TRACKING_TOKEN": token}
    inputs = spec.options.get("inputs") or {}
    folder = Path(tempfile.mkdtemp(prefix=f"mlp-inputs-{spec.run_id}-")) if inputs else None
    kernel = None
    try:
        if folder is not None:
            try:
                spec.params = {**spec.params, **reporter.fetch_inputs(inputs, folder)}
            except Exception as exc:
                runner = RemoteNotebookJob(reporter, spec, env=env)
                runner.on_failure(RuntimeError(f"could not fetch the stage's input files: {exc}"))
                return _outcome(runner, reporter)
        kernel = _take_kernel(spec)  # the job's alone: it discards it if it does not fit
        runner = RemoteNotebookJob(reporter, spec, env=env, kernel=kernel)
        try:
            runner.process()
        except ConnectionError:
            pass  # the server is away: the outcome goes back as the task's result
    finally:
        if kernel is not None and kernel.alive():  # the job never reached its cleanup
            kernel.discard()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return _outcome(runner, reporter)


def _outcome(runner: RemoteNotebookJob, reporter: HttpReporter) -> dict[str, Any]:
    """What the task returns: the server records it if the job's own report did not arrive."""
    outcome = {"started": True, "state": CANCELLED, **runner.outcome}
    if reporter.output_notebook:
        outcome["output_notebook"] = reporter.output_notebook
    return outcome
