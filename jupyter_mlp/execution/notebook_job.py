"""The job process: a temp copy of the snapshot -> papermill (engine `mlp`) -> the executed notebook
as a blob on the run. Never reads or writes the user's notebook file.

Works through a reporter (reporters.StoreReporter here; an HTTP one on a remote worker), so the same
class serves every executor. Cancel: SIGTERM to the job process kills the kernel's process group;
papermill then stops and the job ends `cancelled`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from ..model import CANCELLED
from .engine import CellRecorder, JobCancelled
from .lifecycle import JobProcess
from .processes import kill_group, process_alive

KERNEL_EXIT_S = 1.0  # a kernel asked to shut down gets this long to exit (as nbclient gives)


class NotebookJob(JobProcess):
    def __init__(
        self,
        reporter: Any,
        job: Any,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        kernel: Any = None,
    ) -> None:
        """kernel: a warm kernel (kernel_pool.PooledKernel) this job may use instead of starting
        one; it is this job's alone, used or not."""
        super().__init__(reporter, job)
        self.configured_cwd = cwd
        self.kernel = kernel
        self.extra_env = dict(env or {})
        self.tmp: Path | None = None
        self.workdir: Path | None = None
        self.output: Path | None = None
        self.output_stored = False
        self.recorder = CellRecorder(reporter, job.run_id)

    # --- cancel ------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.cancelled = True
        kill_group(self.recorder.kernel_pgid, signal.SIGKILL)

    def _should_stop(self) -> bool:
        """Checked before every cell: a signal, or a cancel that reached the store only."""
        if not self.cancelled and self._state() == CANCELLED:
            self.cancelled = True
        return self.cancelled

    def _kernel_started(self, pid: int | None, pgid: int | None) -> None:
        try:
            self.reporter.update(self.run_id, kernel_pid=pid, kernel_pgid=pgid)
        except Exception:
            pass
        if self.cancelled:  # the signal came while the kernel was starting
            kill_group(pgid, signal.SIGKILL)

    # --- template hooks ------------------------------------------------------------------------

    def before_start(self) -> None:
        super().before_start()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"mlp-job-{self.run_id}-"))
        self.output = self.tmp / "output.ipynb"
        # On this machine papermill saves its output where readers find it while the job runs
        # (store/partial.py); a remote worker keeps it in its temp folder.
        partial = getattr(self.reporter, "partial_path", None)
        if partial is not None:
            try:
                self.output = Path(partial(self.run_id))
                self.output.parent.mkdir(parents=True, exist_ok=True)
            except (OSError, ValueError):
                self.output = self.tmp / "output.ipynb"
        self.workdir, note = self._workdir()
        updates: dict[str, Any] = {
            "pid": os.getpid(),
            "pgid": os.getpgid(0),
            "host": socket.gethostname(),
        }
        if ((self.job.options or {}).get("papermill") or {}).get("prepare_only"):
            prepared = "--prepare-only: the parameters were injected, no cell was executed"
            note = f"{note}; {prepared}" if note else prepared
        if note:
            updates["note"] = note
        self.reporter.update(self.run_id, **updates)

    def _workdir(self) -> tuple[Path, str | None]:
        """The configured folder, else the original notebook's folder, else a temp folder."""
        wanted = self.configured_cwd or self.job.cwd
        if wanted:
            if Path(wanted).is_dir():
                return Path(wanted), None
            return self._scratch(f"working directory {wanted} does not exist")
        if self.job.notebook:
            folder = Path(self.job.notebook).parent
            if folder.is_dir():
                return folder, None
            return self._scratch(f"the notebook's folder {folder} no longer exists")
        return self._scratch("the run has no notebook path")

    def _scratch(self, why: str) -> tuple[Path, str]:
        assert self.tmp is not None
        folder = self.tmp / "work"
        folder.mkdir()
        return folder, f"{why}; ran in a temporary folder (relative paths will not find your files)"

    def execute(self) -> None:
        import papermill  # type: ignore[import-untyped]
        from papermill.engines import papermill_engines  # type: ignore[import-untyped]

        from .engine import MlpEngine
        from .param_translator import job_parameters, register

        papermill_engines.register("mlp", MlpEngine)  # also when the entry point is not installed
        register()  # tuples, sets, complex, bytes injected as what they are
        assert self.tmp is not None and self.workdir is not None
        name = Path(self.job.notebook).name if self.job.notebook else "notebook.ipynb"
        source = self.tmp / name
        source.write_bytes(self.reporter.snapshot(self.job.snapshot))
        env = {
            **self.extra_env,
            # what the tracker reads as the notebook path: the copy, whose bytes are the snapshot
            "JPY_SESSION_NAME": str(source),
        }
        if self.job.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.job.gpus)
        recorder = self.recorder
        recorder.on_total = lambda total: self.reporter.update(self.run_id, cells_total=total)
        options, files = self._papermill_options()
        try:
            papermill.execute_notebook(
                str(source), str(self.output), parameters=job_parameters(self.job.params),
                engine_name="mlp", kernel_name=self.job.kernel, mlp_cwd=str(self.workdir),
                progress_bar=False, mlp_recorder=recorder, mlp_env=env,
                mlp_should_stop=self._should_stop, mlp_on_kernel=self._kernel_started,
                mlp_kernel=self.kernel,
                # metadata.papermill: the notebook the run was made from, not the deleted copy;
                # the executed notebook is a blob of the run (`runs export` names its file)
                mlp_paths={"input_path": self.job.notebook, "output_path": None},
                **options,
            )  # fmt: skip
        finally:
            for f in files:
                f.close()

    def _papermill_options(self) -> tuple[dict[str, Any], list[Any]]:
        """papermill.execute_notebook keywords from the job's papermill options (checked when it
        was submitted), and the files opened for --stdout-file / --stderr-file."""
        from .papermill_options import KEY, PATHS

        options = dict((self.job.options or {}).get(KEY) or {})
        files = []
        for name in PATHS:
            if options.get(name):
                files.append(open(options[name], "w", encoding="utf-8"))  # noqa: SIM115
                options[name] = files[-1]
        if options.get("log_output"):
            import logging

            logging.basicConfig(level=logging.INFO, format="%(message)s")
        return options, files

    def _store_output(self) -> None:
        if self.output is not None and self.output.is_file():
            try:
                digest, _ = self.reporter.put_file(self.output)
                self.reporter.set_output_notebook(self.run_id, digest)
                self.output_stored = True
            except Exception:
                pass

    def on_complete(self) -> None:
        self._store_output()
        super().on_complete()

    def on_failure(self, exc: BaseException) -> None:
        self._store_output()
        if isinstance(exc, JobCancelled):
            self.cancelled = True
            return self.on_cancel()
        super().on_failure(exc)

    def on_cancel(self) -> None:
        self._store_output()
        super().on_cancel()

    def cleanup(self) -> None:
        if self.output_stored and self.output is not None:
            self.output.unlink(missing_ok=True)  # the partial file, now a blob of the run
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        recorder = self.recorder
        if recorder.kernel_exiting and recorder.kernel_pid:  # asked to shut down: let it
            deadline = time.monotonic() + KERNEL_EXIT_S
            while process_alive(recorder.kernel_pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        kill_group(recorder.kernel_pgid, signal.SIGKILL)  # normally gone by now
        if self.kernel is not None and self.kernel.alive():  # given to this job, never used
            self.kernel.discard()

    @staticmethod
    def describe(exc: BaseException) -> dict[str, Any]:
        error = JobProcess.describe(exc)
        if type(exc).__name__ == "DeadKernelError":
            error = {
                "ename": "DeadKernelError",
                "evalue": "the kernel died (out of memory, or killed)",
            }
        return error
