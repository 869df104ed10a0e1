"""The arguments of `%mlp_track`, one definition for the magic (in the kernel) and for a job's
submit, which reads a notebook's own `%mlp_track NAME --project P` so that the job's run carries
the name and project the notebook gives itself, as when it runs by hand. No IPython here: the
CLI imports this."""

from __future__ import annotations

import argparse
import shlex
from typing import Any, NoReturn

USAGE = """%mlp_track [NAME] [--project P] [--tags a,b] [--params x,y] [--gpu-interval S] [--no-gpu] [--home DIR]
%mlp_track stop      finish the run of this kernel
%mlp_track status    show the run of this kernel"""


class TrackArgsError(ValueError):
    """Arguments `%mlp_track` does not take (the message ends with the usage)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # never sys.exit inside a kernel
        raise TrackArgsError(f"%mlp_track: {message}\nusage:\n{USAGE}")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds as a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return names


def parser() -> _Parser:
    p = _Parser(prog="%mlp_track", add_help=False, usage=USAGE)
    p.add_argument("name", nargs="?")
    p.add_argument("--project")
    p.add_argument("--tags", type=_names)
    p.add_argument("--params", type=_names)
    p.add_argument("--gpu-interval", type=_positive_float, default=0.5)
    p.add_argument("--no-gpu", action="store_true")
    p.add_argument("--home")
    p.add_argument("-h", "--help", action="store_true")
    return p


def read(line: str) -> tuple[str, argparse.Namespace | None]:
    """What a `%mlp_track` line asks: ("stop" | "status", None), or ("track", its arguments).
    TrackArgsError for a line the magic refuses (its message ends with the usage)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise TrackArgsError(f"%mlp_track: {exc}\nusage:\n{USAGE}") from None
    if words[:1] in (["stop"], ["status"]):
        if len(words) > 1:
            raise TrackArgsError(f"%mlp_track {words[0]} takes no arguments\nusage:\n{USAGE}")
        return words[0], None
    return "track", parser().parse_args(words)


def in_notebook(nb: dict[str, Any]) -> argparse.Namespace | None:
    """The arguments of the notebook's first `%mlp_track` that starts a run (a line of a code
    cell); None when it has none, or its arguments do not parse (the magic says so when it
    runs)."""
    from ..params import cell_source

    for cell in nb.get("cells") or []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        for line in cell_source(cell).splitlines():
            line = line.strip()
            if not line.startswith("%mlp_track") or line[10:11] not in ("", " ", "\t"):
                continue
            try:
                what, args = read(line[10:])
            except TrackArgsError:
                return None
            if what == "track":
                return None if args is None or args.help else args
    return None
