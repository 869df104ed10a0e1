"""`%mlp_track`: start, stop or show the run of this kernel."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .track_args import USAGE, TrackArgsError, read


@magics_class
class TrackMagics(Magics):
    @line_magic
    def mlp_track(self, line: str) -> Any:
        from . import api

        try:
            what, args = read(line)
        except TrackArgsError as exc:
            raise UsageError(str(exc)) from None
        if what == "stop":
            run = api.active_run()
            if run is None or run.finished:
                print("jupyter-mlp: no active run")
                return None
            api.finish()
            return None
        if what == "status":
            from .status import text_line

            run = api.active_run()
            print(text_line(run.summary()) if run is not None else "jupyter-mlp: no active run")
            return None
        assert args is not None
        if args.help:
            print(USAGE)
            return None
        api.track(
            name=args.name, project=args.project, tags=args.tags, param_names=args.params,
            gpu=not args.no_gpu, gpu_interval=args.gpu_interval, home=args.home, shell=self.shell,
        )  # fmt: skip
        return None
