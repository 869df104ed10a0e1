"""`python -m jupyter_mlp.pipelines.driver PIPELINE_RUN_ID [--home DIR]`: drive one pipeline run
in its own process session, so it outlives the server or terminal that started it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def spawn(store: Any, pipeline_run_id: str) -> int:
    """Start the driver of `store`'s pipeline run detached; returns its pid."""
    from ..execution.processes import spawn_detached

    log = Path(store.home) / "pipelines" / f"{pipeline_run_id}.log"
    return spawn_detached("jupyter_mlp.pipelines.driver", [pipeline_run_id], store, log)


def orphaned(run: dict[str, Any]) -> bool:
    """A run still running (or cancelling) on this machine whose driver process is gone (the
    terminal that drove it was killed): nobody moves it on until it is cancelled or resumed."""
    from ..execution.processes import driver_alive

    return (
        run["status"] in ("running", "cancelling")
        and bool(run.get("pid"))
        and not driver_alive(run)
    )


def with_orphaned(conn: Any, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listed pipeline runs, each with `orphaned` (a live one's driver looked at: a few)."""
    from ..store import pipelines as P

    for run in runs:
        live = run["status"] in ("running", "cancelling")
        run["orphaned"] = live and orphaned(P.get(conn, run["id"]))
    return runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jupyter_mlp.pipelines.driver")
    ap.add_argument("pipeline_run_id")
    ap.add_argument("--home")
    args = ap.parse_args(argv)
    from ..store import Store
    from .dag import run

    status = run(Store(args.home), args.pipeline_run_id)
    return 0 if status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
