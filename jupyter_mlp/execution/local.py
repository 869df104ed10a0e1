"""The local executor: each job a separate process on this machine, in its own session, so that
a Jupyter server restart does not take it down.

- Concurrency: at most `concurrency` local jobs run at once (default 2, `$MLP_LOCAL_CONCURRENCY`);
  the others stay `queued` in the store, so the queue survives restarts.
- GPUs: the machine's GPUs (NVML through `tracker.gpu.probe()`, or `$MLP_GPUS=0,1` / the `gpus`
  setting) are handed out through `CUDA_VISIBLE_DEVICES`; a card belongs to one running job at a
  time, and a job that asks for no GPU sees none.
- Starting: claiming a queued job (state -> running, GPUs assigned) is one write transaction, so
  the server, a CLI and a finishing job can all dispatch without starting a job twice. A job
  process is forked by a warm launcher (papermill already imported) when the service runs, or
  started cold (`python -m jupyter_mlp.execution.job_process RUN_ID`) from the CLI. When a job ends it
  dispatches the next queued one itself, so a queue drains with no server running.
- Cancel: SIGTERM to the job's process group (the job kills its kernel and ends `cancelled`),
  SIGKILL to the job's and the kernel's groups after a grace period.
- Recovery: a running job whose process is gone (and never reported) becomes `failed` with the
  reason; its kernel group is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model import CANCELLED, FAILED, PRUNED, QUEUED, RUNNING, Job, JobRequest
from ..store.jobs import list_jobs, transition, update_job
from .errors import JobError
from .executor import Executor
from .gpus import detect_gpus, parse_gpus
from .launcher import Launcher, keep_warm
from .processes import group_alive, kill_group, proc_start, process_alive
from .store_address import store_env

START_GRACE_S = 60.0  # a claimed job whose process never recorded itself is failed after this
CANCEL_GRACE_S = 5.0


def _setting(value: Any, env: str, default: Any) -> Any:
    if value is not None:
        return value
    return os.environ.get(env, default)


class LocalExecutor(Executor):
    name = "local"

    def __init__(
        self,
        store: Any,
        concurrency: int | None = None,
        gpus: list[str] | str | None = None,
        warm: bool = False,
        python: str | None = None,
        cancel_grace: float = CANCEL_GRACE_S,
        kernel_pool: int | None = None,
        tracking_url: str | Callable[[], str | None] | None = None,
        keep_warm: float | None = None,
        **config: Any,
    ) -> None:
        """tracking_url: where a job's kernel tracks to in team mode (the server's /mlp/api,
        read when a job starts): it gets that and its run's token instead of the store.
        keep_warm: how long the warm launcher and its kernels stay once this executor and its
        jobs are gone, for the next command (default $MLP_KEEP_WARM_S, else 600 s; a server: 0)."""
        super().__init__(store, **config)
        self._tracking_url = tracking_url
        self.concurrency = max(1, int(_setting(concurrency, "MLP_LOCAL_CONCURRENCY", 2)))
        self._gpus = parse_gpus(gpus) if gpus is not None else None
        self.warm = warm
        # warm kernels the launcher keeps for the default kernel (kernel_pool.py)
        self.kernel_pool = max(0, int(_setting(kernel_pool, "MLP_KERNEL_POOL", 1)))
        self.python = python or sys.executable
        self.keep_warm = keep_warm
        self.cancel_grace = cancel_grace
        self.host = socket.gethostname()
        self._lock = threading.RLock()
        self._launcher: Launcher | None = None
        self._children: list[subprocess.Popen] = []
        self._killing: dict[str, tuple[float, list[int]]] = {}

    # --- configuration -----------------------------------------------------------------------

    def gpus(self) -> list[str]:
        if self._gpus is None:
            self._gpus = detect_gpus()
        return self._gpus

    def log_path(self, run_id: str) -> Path:
        folder = self.store.home / "jobs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{run_id}.log"

    def validate(self, request: JobRequest) -> None:
        if request.gpus <= 0:
            return
        have = len(self.gpus())
        if request.gpus > have:
            raise JobError(
                f"the job asks for {request.gpus} GPU(s) but this machine has {have} "
                "(detected through NVML; set MLP_GPUS=0,1,... to say otherwise)"
            )

    def capacity(self) -> dict[str, Any]:
        conn = self.store.connect()
        running = self.jobs(conn, (RUNNING,))
        queued = self.jobs(conn, (QUEUED,))
        used = self._cards_in_use(conn)
        return {
            "executor": self.name, "slots": self.concurrency, "running": len(running),
            "queued": len(queued), "gpus": self.gpus(), "free_gpus": [g for g in self.gpus() if g not in used],
        }  # fmt: skip

    # --- starting -----------------------------------------------------------------------------

    def dispatch(self) -> list[str]:
        with self._lock:
            claimed = self._claim()
            for job in claimed:
                self._spawn(job, burst=len(claimed))
            return [j.run_id for j in claimed]

    def _claim(self) -> list[Job]:
        """Queued jobs -> running, with their GPUs, as long as there are slots (one transaction).
        The machine's cards are looked up (NVML) only once a job asks for one."""
        with self.store.write() as conn:
            slots = self.concurrency - len(self.jobs(conn, (RUNNING,)))
            if slots <= 0:
                return []
            queued = self.jobs(conn, (QUEUED,))
            free: list[str] = []
            if any(job.gpus_requested for job in queued):
                used = self._cards_in_use(conn)
                free = [g for g in self.gpus() if g not in used]
            claimed: list[Job] = []
            for job in queued:
                if len(claimed) >= slots:
                    break
                if job.gpus_requested > len(free):
                    continue  # waits for cards; smaller jobs behind it may go first
                assigned, free = free[: job.gpus_requested], free[job.gpus_requested :]
                moved = transition(conn, job.run_id, RUNNING, gpus=assigned, host=self.host)
                if moved is not None:
                    claimed.append(moved)
            return claimed

    def _cards_in_use(self, conn: Any) -> set[str]:
        """The GPU cards running local jobs hold on this machine, whoever dispatched them (the
        cards are this machine's, and so is every local job on it)."""
        return {
            g for j in list_jobs(conn, self.name, (RUNNING,)) if j.host in (None, self.host)
            for g in (j.gpus or [])
        }  # fmt: skip

    def tracking_url(self) -> str | None:
        url = self._tracking_url() if callable(self._tracking_url) else self._tracking_url
        return url or None

    def job_env(self, job: Job) -> dict[str, str]:
        """The job process's environment: the store (its address for a shared one: the job
        process is ours, its kernel never gets it), and in team mode where its kernel tracks to
        with a token for its run alone."""
        env = {
            **store_env(self.store),
            "MLP_LOCAL_CONCURRENCY": str(self.concurrency),
            "CUDA_VISIBLE_DEVICES": ",".join(job.gpus or []),
        }
        if self._gpus is not None:  # the cards as this executor knows them (else the job looks)
            env["MLP_GPUS"] = ",".join(self._gpus)
        url = self.tracking_url()
        if url:
            from ..store import tokens

            with self.store.write() as conn:
                token = tokens.issue(conn, job.run_id)
            env.update(MLP_TRACKING_URI=url, MLP_TRACKING_TOKEN=token)
        return env

    def _spawn(self, job: Job, burst: int = 1) -> None:
        env = self.job_env(job)
        log = self.log_path(job.run_id)
        try:
            pid = None
            if self.warm:
                try:
                    launcher = self._warm_launcher()
                    pid = launcher.launch(job.run_id, env, log, kernel=job.kernel,
                                          cards=env["CUDA_VISIBLE_DEVICES"],
                                          slots=self.concurrency, burst=burst)  # fmt: skip
                except Exception as exc:  # a broken launcher: start this job cold instead
                    if self._launcher is not None:
                        self._launcher.close()
                    self._launcher = None
                    if isinstance(exc, TimeoutError):  # it may have forked it: never run twice
                        raise
            if pid is None:
                with open(log, "ab") as out:
                    proc = subprocess.Popen(
                        [self.python, "-m", "jupyter_mlp.execution.job_process", job.run_id],
                        env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=out,
                        stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                    )  # fmt: skip
                self._children.append(proc)
                pid = proc.pid
            with self.store.write() as conn:
                update_job(conn, job.run_id, pid=pid, pgid=pid, proc_start=proc_start(pid))
        except Exception as exc:
            with self.store.write() as conn:
                transition(
                    conn, job.run_id, FAILED,
                    error={"ename": "JobStartError", "evalue": f"could not start the job process: {exc}"},
                )  # fmt: skip

    def _warm_launcher(self) -> Launcher:
        with self._lock:
            if self._launcher is None or not self._launcher.alive():
                if self._launcher is not None:  # gone or broken: let go of its socket now
                    self._launcher.close()
                self._launcher = Launcher.open(
                    self.python, self.store.home, self.kernel_pool, keep_warm(self.keep_warm)
                )
            return self._launcher

    def prestart(self) -> None:
        """Start the warm launcher (and its kernels) now, so the first job does not wait."""
        if self.warm:
            self._warm_launcher()

    def reserve(self, kernel: str, n: int, starting: int = 0) -> None:
        """Keep `n` warm kernels of `kernel` (GPU-less) ready for jobs about to come (a
        pipeline's next stages), `starting` of them now, for a while. Best effort: without a
        launcher, nothing."""
        if not self.warm or self.kernel_pool == 0:
            return
        try:
            self._warm_launcher().reserve(kernel, "", n, starting=min(starting, self.concurrency))
        except Exception:
            pass

    # --- watching ----------------------------------------------------------------------------

    def poll(self) -> None:
        self._children = [p for p in self._children if p.poll() is None]
        now = time.time()
        with self._lock:
            for job in self.jobs(self.store.connect(), (RUNNING,)):
                if job.host and job.host != self.host:
                    continue
                if job.pid is None:
                    if job.started_at and now - job.started_at > START_GRACE_S:
                        self._fail(
                            job, f"the job process did not start within {START_GRACE_S:.0f} s"
                        )
                    continue
                if not process_alive(job.pid, job.proc_start):
                    self._fail(
                        job,
                        f"the job process (pid {job.pid}) ended without reporting an outcome: it was "
                        f"killed or crashed (log: {self.log_path(job.run_id)})",
                    )
            for run_id, (deadline, groups) in list(self._killing.items()):
                alive = [g for g in groups if group_alive(g)]
                if not alive:
                    del self._killing[run_id]
                elif now >= deadline:
                    for g in alive:
                        kill_group(g, signal.SIGKILL)
                    del self._killing[run_id]

    def _fail(self, job: Job, reason: str) -> None:
        with self.store.write() as conn:
            transition(conn, job.run_id, FAILED, error={"ename": "JobLost", "evalue": reason})
        if job.kernel_pgid:
            kill_group(job.kernel_pgid, signal.SIGKILL)

    def recover(self) -> None:
        """After a restart: fail the dead, kill what is left of cancelled and pruned jobs (a
        service that stopped between the decision and the kill), then poll."""
        conn = self.store.connect()
        for job in self.jobs(conn, (CANCELLED, PRUNED)):
            if job.host == self.host and job.pid and process_alive(job.pid, job.proc_start):
                self.cancel(job)
        self.poll()

    # --- cancel -------------------------------------------------------------------------------

    def cancel(self, job: Job, wait: bool = False) -> None:
        """The job's state is already `cancelled`: stop its process and its kernel."""
        groups = []
        if job.pid and process_alive(job.pid, job.proc_start):
            groups.append(job.pgid or job.pid)
            kill_group(job.pgid or job.pid, signal.SIGTERM)  # the job kills its kernel and reports
        if job.kernel_pgid:
            groups.append(job.kernel_pgid)
        if not groups:
            return
        deadline = time.time() + self.cancel_grace
        if not wait:
            with self._lock:
                self._killing[job.run_id] = (deadline, groups)
            return
        while time.time() < deadline and any(group_alive(g) for g in groups):
            time.sleep(0.05)
        for g in groups:
            if group_alive(g):
                kill_group(g, signal.SIGKILL)

    def close(self) -> None:
        """Stop the launcher (it exits once its job processes have); running jobs keep running."""
        with self._lock:
            if self._launcher is not None:
                self._launcher.close()
                self._launcher = None
