"""`%mlp_track`: start, stop or show the run of this kernel."""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .track_args import USAGE, TrackArgsError, parser


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
        try:
            args = parser().parse_args(words)
        except TrackArgsError as exc:
            raise UsageError(str(exc)) from None
        if args.help:
            print(USAGE)
            return None
        api.track(
            name=args.name, project=args.project, tags=args.tags, param_names=args.params,
            gpu=not args.no_gpu, gpu_interval=args.gpu_interval, home=args.home, shell=self.shell,
        )  # fmt: skip
        return None
