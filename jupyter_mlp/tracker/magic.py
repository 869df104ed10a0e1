"""`%mlp_track`: start, stop or show the run of this kernel."""

from __future__ import annotations

import argparse
import shlex
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

USAGE = """%mlp_track [NAME] [--project P] [--tags a,b] [--params x,y] [--gpu-interval S] [--no-gpu] [--home DIR]
%mlp_track stop      finish the run of this kernel
%mlp_track status    show the run of this kernel"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # never sys.exit inside a kernel
        raise UsageError(f"%mlp_track: {message}\nusage:\n{USAGE}")


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


@magics_class
class TrackMagics(Magics):
    @line_magic
    def mlp_track(self, line: str) -> Any:
        from . import api

        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%mlp_track: {exc}\nusage:\n{USAGE}") from None
        if words and words[0] in ("stop", "status") and len(words) > 1:
            raise UsageError(f"%mlp_track {words[0]} takes no arguments\nusage:\n{USAGE}")
        if words == ["stop"]:
            run = api.active_run()
            if run is None or run.finished:
                print("jupyter-mlp: no active run")
                return None
            api.finish()
            return None
        if words == ["status"]:
            from .status import text_line

            run = api.active_run()
            print(text_line(run.summary()) if run is not None else "jupyter-mlp: no active run")
            return None
        args = parser().parse_args(words)
        if args.help:
            print(USAGE)
            return None
        api.track(
            name=args.name, project=args.project, tags=args.tags, param_names=args.params,
            gpu=not args.no_gpu, gpu_interval=args.gpu_interval, home=args.home, shell=self.shell,
        )  # fmt: skip
        return None
