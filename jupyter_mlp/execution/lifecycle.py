"""The template of one job's life inside its process (as jupyter-scheduler's ExecutionManager):
before_start -> execute -> on_complete | on_failure | on_cancel, then cleanup. Each hook writes
through a reporter (reporters.StoreReporter here, remote.HttpReporter on a Dask worker)."""

from __future__ import annotations

from typing import Any

from ..model import CANCELLED, FAILED, FINISHED, RUNNING, Job


class JobProcess:
    """The template of one job's life inside its process. Subclasses implement execute()."""

    def __init__(self, reporter: Any, job: Job) -> None:
        self.reporter = reporter
        self.job = job
        self.run_id = job.run_id
        self.cancelled = False

    def process(self) -> str:
        """Run the job to its end; returns the final state."""
        try:
            try:
                self.before_start()
                self.execute()
            except BaseException as exc:
                if self.cancelled or self._state() == CANCELLED:
                    self.on_cancel()
                else:
                    self.on_failure(exc)
                if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: still leave
                    raise
            else:
                if self.cancelled or self._state() == CANCELLED:
                    self.on_cancel()
                else:
                    self.on_complete()
        finally:
            self.cleanup()  # also when reporting the outcome failed
        return self._state()

    def _state(self) -> str:
        try:
            return self.reporter.state(self.run_id)
        except Exception:
            return RUNNING

    # hooks -----------------------------------------------------------------------------------

    def before_start(self) -> None:
        """Claimed (`running`) by the executor before the process started; refuse otherwise."""
        state = self._state()
        if state != RUNNING:
            self.cancelled = state == CANCELLED
            raise RuntimeError(f"job {self.run_id} is {state}, not running")

    def execute(self) -> None:
        raise NotImplementedError

    def on_complete(self) -> None:
        self.reporter.transition(self.run_id, FINISHED)

    def on_failure(self, exc: BaseException) -> None:
        self.reporter.transition(self.run_id, FAILED, error=self.describe(exc))

    def on_cancel(self) -> None:
        self.reporter.transition(
            self.run_id, CANCELLED, error={"ename": "Cancelled", "evalue": "the job was cancelled"}
        )

    def cleanup(self) -> None:
        """Whatever the outcome: release what the job holds (subclasses)."""

    @staticmethod
    def describe(exc: BaseException) -> dict[str, Any]:
        ename = getattr(exc, "ename", None) or type(exc).__name__
        evalue = getattr(exc, "evalue", None)
        if evalue is None:
            evalue = str(exc)
        error: dict[str, Any] = {"ename": str(ename), "evalue": str(evalue)[:2000]}
        count = getattr(exc, "exec_count", None)
        if count is not None:
            error["execution_count"] = count
        index = getattr(exc, "cell_index", None)
        if index is not None:
            error["cell_index"] = index
        return error
