"""The public tracking functions (`import jupyter_mlp as mlp`). One active run per process."""

from __future__ import annotations

import atexit
import os
from time import time as _now
from typing import Any

from .session import RunSession

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
    if name is not None and not isinstance(name, str):
        raise TypeError(f"run name must be a string, got {type(name).__name__}")
    if project is not None and (not isinstance(project, str) or not project.strip()):
        raise TypeError(f"project must be a non-empty string, got {project!r}")
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    if tags is not None and not all(isinstance(t, str) for t in tags):
        raise TypeError("tags must be strings")
    if (
        not isinstance(gpu_interval, (int, float))
        or isinstance(gpu_interval, bool)
        or gpu_interval <= 0
    ):
        raise TypeError(f"gpu_interval must be a positive number of seconds, got {gpu_interval!r}")
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
    session.start(status_view)
    if shell is None:
        _record_uncaught_exceptions()
    return session


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
    """Buffer one point (about a microsecond); the writer thread stores it in a batch."""
    run = _active
    if run is None or run._finished:
        run = _run()
    if type(value) is not float or type(key) is not str or not key:
        value = run.check_metric(key, value)
    if step is None:
        steps = run._steps
        step = steps.get(key, -1) + 1
        steps[key] = step
    else:
        if type(step) is not int:
            step = run.check_step(key, step)
        run._steps[key] = step
    run._metrics.append((key, step, value, _now()))


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    if not isinstance(metrics, dict):
        raise TypeError(f"log_metrics takes a dict, got {type(metrics).__name__}")
    run = _run()
    for key, value in metrics.items():
        run.log_metric(key, value, step)


def log_param(key: str, value: Any) -> None:
    _run().log_params({key: value})


def log_params(params: dict[str, Any]) -> None:
    _run().log_params(params)


def output(name: str, value: Any) -> None:
    _run().output(name, value)


def log_artifact(path: str | os.PathLike, name: str | None = None) -> str:
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
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    _active = None
    return run.finish(status, error)


@atexit.register
def _at_exit() -> None:
    """Kernel shutdown or script end finishes the run."""
    try:
        finish()
    except Exception:
        pass
