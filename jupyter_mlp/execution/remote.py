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
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..model import CANCELLED, FAILED, FINAL_JOB_STATES, FINISHED, RUNNING, Job
from ..tracker.sinks import HttpSink, Kept, default_spool_dir
from .engine import JobCancelled
from .gpus import CARDS
from .notebook_job import NotebookJob
from .processes import kill_group

WATCH_S = 1.0  # how often a running remote job asks whether it should go on
REPORT_TRIES_S = 600.0  # how long a report is retried while the server cannot be reached


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

    def __init__(self, reporter: HttpReporter, job: Job, env: dict[str, str]) -> None:
        super().__init__(reporter, job, env=env)
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
    runner = RemoteNotebookJob(reporter, spec, env=env)
    inputs = spec.options.get("inputs") or {}
    folder = Path(tempfile.mkdtemp(prefix=f"mlp-inputs-{spec.run_id}-")) if inputs else None
    try:
        if folder is not None:
            try:
                spec.params = {**spec.params, **reporter.fetch_inputs(inputs, folder)}
            except Exception as exc:
                runner.on_failure(RuntimeError(f"could not fetch the stage's input files: {exc}"))
                return _outcome(runner, reporter)
        try:
            runner.process()
        except ConnectionError:
            pass  # the server is away: the outcome goes back as the task's result
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return _outcome(runner, reporter)


def _outcome(runner: RemoteNotebookJob, reporter: HttpReporter) -> dict[str, Any]:
    """What the task returns: the server records it if the job's own report did not arrive."""
    outcome = {"started": True, "state": CANCELLED, **runner.outcome}
    if reporter.output_notebook:
        outcome["output_notebook"] = reporter.output_notebook
    return outcome
