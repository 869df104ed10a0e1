"""The public tracking functions (`import jupyter_mlp as mlp`). One active run per process."""

from __future__ import annotations

import atexit
import os
from time import time as _now

from .session import RunSession

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any

_active: RunSession | None = None


class NoActiveRun(RuntimeError):
    pass


def _run() -> RunSession:
    run = _active
    if run is None and os.environ.get("MLP_RUN_ID"):
        # a job (`jupyter mlp run|rerun`, a pipeline stage): its run is there already, so
        # mlp.output() and friends work without %mlp_track
        run = track()
    if run is None or run.finished:
        raise NoActiveRun("no active run: start one with %mlp_track (or mlp.track()) first")
    return run


def track(
    name: str | None = None,
    project: str | None = None,
    tags: list[str] | str | None = None,
    params: dict[str, Any] | None = None,
    param_names: list[str] | None = None,
    gpu: bool = True,
    gpu_interval: float = 0.5,
    home: str | os.PathLike | None = None,
    shell: Any = None,
    status_view: Any = None,
) -> RunSession:
    """Start a run (finishing the active one). In IPython the cells are recorded too."""
    global _active
    problems: list[str] = []
    name, project, tags, gpu_interval = _check_track(name, project, tags, gpu_interval, problems)
    if shell is None:
        shell = _ipython()
    if _active is not None:
        _active.finish()
        _active = None
    session = RunSession(
        name=name, project=project, tags=tags, param_names=param_names, shell=shell,
        home=home, gpu=gpu, gpu_interval=float(gpu_interval),
    )  # fmt: skip
    if params:
        session.log_params(params)
    if status_view is None:
        from .status import TextStatus, make_status

        status_view = make_status(shell) if shell is not None else TextStatus()
    _active = session
    for problem in problems:
        session._print(f"jupyter-mlp warning: mlp.track(): {problem}")
    session.start(status_view)
    if shell is None:
        _record_uncaught_exceptions()
    return session


def _check_track(
    name: Any, project: Any, tags: Any, gpu_interval: Any, problems: list[str]
) -> tuple[str | None, str | None, list[str] | None, float]:
    """track()'s arguments against jupyter_mlp.records: a bad one is replaced by its default
    with a warning (the run still starts)."""
    from .. import records

    if name is not None:
        try:
            name = records.name(name, "name")
        except records.RecordError as exc:
            problems.append(f"{exc}; the run gets a default name")
            name = None
    if project is not None:
        try:
            project = records.run_field("project", project, "project")
        except records.RecordError as exc:
            problems.append(f"{exc}; the run goes to the default project")
            project = None
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    if tags is not None:
        try:
            tags = records.tags(tags, "tags")
        except records.RecordError as exc:
            problems.append(f"{exc}; the run has no tags")
            tags = None
    if (
        not isinstance(gpu_interval, (int, float))
        or isinstance(gpu_interval, bool)
        or not 0 < gpu_interval < 86_400
    ):
        problems.append(f"gpu_interval must be a positive number of seconds, not {gpu_interval!r}")
        gpu_interval = 0.5
    return name, project, tags, gpu_interval


def _record_uncaught_exceptions() -> None:
    """In a script, an uncaught exception fails the run (atexit alone cannot tell)."""
    import sys

    previous = sys.excepthook
    if getattr(previous, "_mlp", False):
        return

    def hook(etype, value, tb):
        run = _active
        if run is not None and not run.finished:
            status = "interrupted" if issubclass(etype, KeyboardInterrupt) else "failed"
            finish(status, error={"ename": etype.__name__, "evalue": str(value)})
        previous(etype, value, tb)

    hook._mlp = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _ipython() -> Any:
    import sys

    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def active_run() -> RunSession | None:
    return _active


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Buffer one point (about a microsecond); the writer thread stores it in a batch. A bad
    point (a name that is not valid text, a value that is not a number, a step outside int64)
    is refused alone with one warning."""
    run = _active
    if run is None or run._finished:
        run = _run()
    if type(value) is not float:
        checked = run.check_metric(key, value)
        if checked is None:
            return
        value = checked
    steps = run._steps
    if type(key) is not str or key not in steps:
        if not run.new_metric_key(key):
            return
    if step is None:
        step = steps[key] + 1
    elif type(step) is not int or not _INT64_MIN <= step <= _INT64_MAX:
        step = run.check_step(key, step)
        if step is None:
            return
    steps[key] = step
    run._metrics.append((key, step, value, _now()))


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # = records.INT64_MIN/MAX (asserted in the tests)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    run = _run()
    if not isinstance(metrics, dict):
        from ..records import RecordError

        run.refuse(
            "log_metrics", None,
            RecordError("metrics", f"must be a dict, not {type(metrics).__name__}"),
        )  # fmt: skip
        return
    for key, value in metrics.items():
        run.log_metric(key, value, step)


def log_param(key: str, value: Any) -> None:
    _run().log_params({key: value})


def log_params(params: dict[str, Any]) -> None:
    _run().log_params(params)


def output(name: str, value: Any) -> None:
    _run().output(name, value)


def log_artifact(path: str | os.PathLike, name: str | None = None) -> str | None:
    return _run().log_artifact(path, name)


def flush() -> None:
    _run().flush()


def finish(status: str | None = None, error: dict | None = None) -> str | None:
    """End the active run; returns its final status (None when no run was active)."""
    global _active
    run = _active
    if run is None:
        return None
    if status is not None:
        from ..model import STATUSES

        if status not in STATUSES:
            run._print(
                f"jupyter-mlp warning: mlp.finish(): status must be one of {', '.join(STATUSES)}, "
                f"not {status!r}; the run ends with the status of its last cell"
            )
            status = None
    if error is not None and not isinstance(error, dict):
        error = {"ename": "Error", "evalue": str(error)[:2000]}
    _active = None
    return run.finish(status, error)


@atexit.register
def _at_exit() -> None:
    """Kernel shutdown or script end finishes the run, and lets the start-up captures still
    running be written."""
    try:
        finish()
    except Exception:
        pass
    from .session import wait_for_captures

    wait_for_captures()
