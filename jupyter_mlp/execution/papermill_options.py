"""papermill's execution options for `jupyter mlp run | rerun` and pipeline stages.

    --execution-timeout S     seconds one cell may run (default: no limit)
    --start-timeout S         seconds the kernel may take to start (default 60)
    --autosave-cell-every S   save the partial output notebook every S seconds during a long cell
                              (default 30; 0 turns it off)
    --report-mode             hide the code cells' input in the executed notebook
    --log-output              write the notebook's output to the job's log as it comes
    --prepare-only            inject the parameters, execute nothing
    --language LANG           the notebook's language when its metadata names none
    --stdout-file / --stderr-file FILE   the kernel's stdout / stderr written to FILE

They are kept in the job row (`options["papermill"]`), validated when the job is submitted
(paths made absolute then), inherited by a rerun, and passed to papermill.execute_notebook by the
job process. The names are papermill's (`execute_notebook` keyword arguments).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import JobError

INTS = {"execution_timeout": 1, "start_timeout": 1, "autosave_cell_every": 0}  # name -> minimum
FLAGS = ("report_mode", "log_output", "prepare_only")
PATHS = ("stdout_file", "stderr_file")
TEXTS = ("language",)
NAMES = (*INTS, *FLAGS, *PATHS, *TEXTS)
KEY = "papermill"  # where they live in a job's options


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("papermill options (as papermill's; a rerun keeps its parent's)")
    g.add_argument("--execution-timeout", type=int, metavar="SECONDS", default=None,
                   help="seconds one cell may run before the job fails (default: no limit)")  # fmt: skip
    g.add_argument("--start-timeout", "--start_timeout", type=int, metavar="SECONDS", default=None,
                   help="seconds the kernel may take to start (default 60)")  # fmt: skip
    g.add_argument("--autosave-cell-every", type=int, metavar="SECONDS", default=None,
                   help="save the partial output notebook every SECONDS during a long cell "
                        "(default 30, 0: only at cell start and end)")  # fmt: skip
    for flag, off, name, text in (
        ("--report-mode", "--no-report-mode", "report_mode", "hide code cells' input in the executed notebook"),
        ("--log-output", "--no-log-output", "log_output", "write the notebook's output to the job's log"),
        ("--prepare-only", "--prepare-execute", "prepare_only", "inject the parameters and execute nothing"),
    ):  # fmt: skip
        g.add_argument(flag, dest=name, action="store_true", default=None, help=text)
        g.add_argument(off, dest=name, action="store_false", help=argparse.SUPPRESS)
    g.add_argument("--request-save-on-cell-execute", action="store_true", dest="_save_on_cell",
                   help="papermill's default, always so here (accepted for its command lines)")  # fmt: skip
    g.add_argument("--language", "-l", metavar="LANG", default=None,
                   help="the notebook's language when its metadata names none (e.g. python)")  # fmt: skip
    g.add_argument("--stdout-file", metavar="FILE", default=None,
                   help="write the kernel's stdout to FILE (relative: to --cwd if given, as "
                        "papermill's, else to where you run this)")  # fmt: skip
    g.add_argument("--stderr-file", metavar="FILE", default=None,
                   help="write the kernel's stderr to FILE (relative: as --stdout-file)")  # fmt: skip


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line (those not given are left out)."""
    return {n: getattr(args, n) for n in NAMES if getattr(args, n, None) is not None}


def check(options: Any, where: str = "papermill options", base: str | Path | None = None) -> dict:
    """Validated options; relative file paths resolved against `base` (default: the current
    folder) now, at submit time. JobError names the option."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise JobError(f"{where} must be an object of papermill option names to values")
    out: dict[str, Any] = {}
    for name, value in options.items():
        label = f"{where}: {str(name).replace('_', '-')}"
        if name not in NAMES:
            known = ", ".join(n.replace("_", "-") for n in NAMES)
            raise JobError(f"{where}: unknown option {name!r} (known: {known})")
        if value is None:
            continue
        if name in INTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < INTS[name]:
                raise JobError(f"{label} must be a whole number >= {INTS[name]}, got {value!r}")
        elif name in FLAGS:
            if not isinstance(value, bool):
                raise JobError(f"{label} must be true or false, got {value!r}")
        elif not isinstance(value, str) or not value.strip() or len(value) > 4096:
            raise JobError(f"{label} must be a non-empty text, got {value!r}")
        elif name in PATHS:
            path = Path(value).expanduser()
            if not path.is_absolute():
                path = Path(base or Path.cwd()) / path
            path = path.resolve()
            if not path.parent.is_dir():
                raise JobError(f"{label}: the folder {str(path.parent)!r} does not exist")
            value = str(path)
        out[name] = value
    return out


def merged(parent: dict[str, Any] | None, given: dict[str, Any] | None) -> dict[str, Any]:
    """A rerun's options: its parent's, then those given now."""
    return {**(parent or {}), **(given or {})}
