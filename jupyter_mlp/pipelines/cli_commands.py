"""`jupyter mlp pipeline run | validate | status | runs | diff | cancel`: pipelines headless."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from typing import Any

STATUS_MARK = {
    "pending": ".", "queued": "q", "running": ">", "cached": "=", "succeeded": "+",
    "failed": "x", "skipped": "-", "cancelled": "!",
}  # fmt: skip
LEGEND = " ".join(f"{mark} {status}" for status, mark in STATUS_MARK.items())  # 80 characters


def add_commands(sub: Any) -> None:
    pipe = sub.add_parser("pipeline", help="run and inspect .mlpipe pipelines")
    psub = pipe.add_subparsers(dest="pipeline_command", required=True)

    run = psub.add_parser(
        "run", help="run a pipeline (cached, in parallel) and wait for it",
        description="Run a pipeline (cached, in parallel) and wait for it. While it runs, a "
        "progress line '[pipeline status] stage(mark) ...' shows each stage's state by a mark "
        f"after its name ({LEGEND}); at the end, a table of the stages with times and run ids.",
    )  # fmt: skip
    run.add_argument("file", help="a .mlpipe file")
    from ..execution.param_options import add_options

    add_options(run, checks=False, what="pipeline parameter")  # -p (both forms), -r, -y, -f/-P, -b
    run.add_argument("--executor", default="local", help="where stages run (default: local)")
    run.add_argument(
        "--concurrency", type=int, help="stages at once on the local executor (default 2)"
    )
    run.add_argument("--no-cache", action="store_true", help="recompute every stage")
    run.add_argument(
        "--resume", metavar="PIPELINE_RUN", help="redo only what did not succeed in that run"
    )
    run.add_argument("--detach", action="store_true", help="print the pipeline run id and return")
    run.set_defaults(func=cmd_run)

    val = psub.add_parser("validate", help="check a pipeline without running it")
    val.add_argument("file")
    val.set_defaults(func=cmd_validate)

    st = psub.add_parser("status", help="each stage's state and time (the newest run by default)")
    st.add_argument("id", nargs="?", help="pipeline run id (or a unique prefix of 4+ digits)")
    st.add_argument("--format", choices=("text", "json"), default="text")
    st.set_defaults(func=cmd_status)

    runs = psub.add_parser("runs", help="the runs of a pipeline file, with their versions")
    runs.add_argument("file", nargs="?")
    runs.add_argument("--format", choices=("table", "json"), default="table")
    runs.set_defaults(func=cmd_runs)

    diff = psub.add_parser("diff", help="what changed between the specs of two pipeline runs")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.set_defaults(func=cmd_diff)

    cancel = psub.add_parser("cancel", help="cancel a pipeline run and its running stages")
    cancel.add_argument("id", help="pipeline run id (or a unique prefix of 4+ digits)")
    cancel.set_defaults(func=cmd_cancel)


def _store(args: argparse.Namespace):
    from ..store import Store

    return Store(args.home)


def _fail(message: str, code: int = 2) -> int:
    print(f"jupyter mlp: {message}", file=sys.stderr)
    return code


def cmd_validate(args: argparse.Namespace) -> int:
    from .spec import SpecError, load
    from .validate import validate

    store = _store(args)
    try:
        spec = load(args.file)
    except SpecError as exc:
        return _fail(str(exc))
    from pathlib import Path

    issues = validate(spec, store.connect(), store.blobs, Path(args.file).resolve().parent)
    for i in issues:
        print(f"{i.level}: {i.message}")
    bad = [i for i in issues if i.level == "error"]
    warned = len(issues) - len(bad)
    if bad:
        print(f"{args.file}: {len(bad)} error(s), {warned} warning(s): it cannot run")
    else:
        noted = f", {warned} warning(s) above" if warned else ""
        print(f"{args.file}: ok ({len(spec.get('stages', {}))} stages{noted})")
    return 1 if bad else 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..execution.param_options import json_values
    from ..execution.service import driver_service
    from ..params import ParamError
    from ..store.pipelines import PipelineRunNotFound, resolve_id
    from .dag import PipelineError, cancel, run, submit
    from .spec import SpecError, identity, load

    store = _store(args)
    # Started first: its launcher and warm kernels start while the spec is read and submitted.
    service = None if args.detach else driver_service(store, args.concurrency)
    try:
        resume = resolve_id(store.connect(), args.resume) if args.resume else None
        spec = load(args.file)
        params: dict[str, Any] = json_values(args)
        pid = submit(store, spec, path=identity(args.file), params=params, executor=args.executor,
                     no_cache=args.no_cache, resume=resume, concurrency=args.concurrency)  # fmt: skip
    except BaseException as exc:
        if service is not None:
            service.stop()
        if isinstance(exc, (SpecError, PipelineError, ParamError, PipelineRunNotFound)):
            return _fail(str(exc))
        raise
    if service is None:
        from .driver import spawn

        spawn(store, pid)
        print(pid)
        return 0
    print(f"pipeline run {pid} (jupyter mlp pipeline cancel {pid} stops it)", file=sys.stderr)
    from ..execution.cli_commands import drive_here

    done: dict[str, str] = {}
    shown = [""]  # the line shown last

    def show() -> None:
        line = _progress(store, pid)
        if line != shown[0]:
            print(line, file=sys.stderr, flush=True)
            shown[0] = line

    print(f"progress: [pipeline status] stage(mark) ..., marks:\n{LEGEND}", file=sys.stderr)
    try:
        interrupted = drive_here(
            lambda: done.setdefault("status", run(store, pid, service)), show,
            lambda: cancel(store, pid), "mlp-pipeline",
        )  # fmt: skip
    finally:
        service.stop()
    print(_table(store, pid))
    if interrupted:
        return 130
    return 0 if done.get("status") == "succeeded" else 1


def _progress(store, pid: str) -> str:
    from ..store import pipelines as P

    run = P.get(store.connect(), pid)
    marks = " ".join(
        f"{name}({STATUS_MARK.get(s['status'], '?')})" for name, s in run["stages"].items()
    )
    return f"[{run['status']}] {marks}"


def _table(store, pid: str) -> str:
    from ..model import first_line
    from ..model import terminal_text as t
    from ..store import pipelines as P
    from ..store import sweeps as sweep_store
    from ..store.runs import run_times
    from .driver import orphaned

    conn = store.connect()
    run = P.get(conn, pid)
    sweeps = sweep_store.of_pipeline(conn, pid)
    lines = [
        f"pipeline run {run['id']}  {t(run['name'], 200)}  version {run['version']}  {run['status']}"
    ]
    if orphaned(run):
        lines[0] += (f"\n  its driver (pid {run['pid']}) is gone: `jupyter mlp pipeline cancel "
                     f"{run['id']}` ends it, `pipeline run FILE --resume {run['id']}` goes on")  # fmt: skip
    width = max((len(n) for n in run["stages"]), default=5)
    times = run_times(conn, [s["run_id"] for s in run["stages"].values() if s["run_id"]])
    lines.append(f"  {'stage':<{width}}  {'status':<9}  {'ran':>7}")
    for name, s in run["stages"].items():
        took = "-"
        started, ended = times.get(s["run_id"], (None, None))
        if started and ended and s["status"] != "cached":  # the job's time, not its wait
            took = f"{ended - started:.1f}s"
        extra = f"  from {s['cached_from']}" if s["status"] == "cached" and s["cached_from"] else ""
        if name in sweeps:  # a sweep stage: its run is the best trial's
            sw = sweeps[name]
            told = sum(sweep_store.counts(conn, sw["id"]).values())
            best = f", best {sw['best_value']:g}" if sw["best_value"] is not None else ""
            extra += f"  sweep {sw['id']} ({told}/{sw['budget']} trials{best})"
        if s["error"]:
            evalue = first_line(s["error"].get("evalue"))
            extra += f"  {t(s['error'].get('ename'), 80)}: {t(evalue, 100)}"
        lines.append(
            f"  {name:<{width}}  {s['status']:<9}  {took:>7}  run {s['run_id'] or '-'}{extra}"
        )
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    from ..store import pipelines as P

    store = _store(args)
    conn = store.connect()
    pid = args.id
    if pid is None:
        newest = P.list_runs(conn, limit=1)
        if not newest:
            print("no pipeline runs")
            return 0
        pid = newest[0]["id"]
    try:
        pid = P.resolve_id(conn, pid)
        run = P.get(conn, pid)
    except P.PipelineRunNotFound as exc:
        return _fail(str(exc), 1)
    if args.format == "json":
        from ..model import json_safe

        print(json.dumps(json_safe(run), indent=2))
    else:
        print(_table(store, pid))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from ..store import pipelines as P
    from .driver import with_orphaned
    from .spec import identity

    conn = _store(args).connect()
    found = with_orphaned(conn, P.list_runs(conn, path=identity(args.file) if args.file else None))
    if args.format == "json":
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no pipeline runs" + (f" of {args.file}" if args.file else ""))
    for r in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))
        status = "orphaned" if r["orphaned"] else r["status"]
        print(f"{r['id']}  {when}  version {r['version']}  {status:<10}  {json.dumps(r['params'])}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from ..store import pipelines as P
    from .spec import dumps

    conn = _store(args).connect()
    try:
        a, b = (P.get(conn, P.resolve_id(conn, ref)) for ref in (args.a, args.b))
    except P.PipelineRunNotFound as exc:
        return _fail(str(exc), 1)
    lines = list(difflib.unified_diff(
        dumps(a["spec"]).splitlines(), dumps(b["spec"]).splitlines(),
        f"{a['id']} (version {a['version']})", f"{b['id']} (version {b['version']})", lineterm="",
    ))  # fmt: skip
    if a["params"] != b["params"]:
        lines.append(f"parameters: {json.dumps(a['params'])} -> {json.dumps(b['params'])}")
    print("\n".join(lines) if lines else "same spec and parameters")
    stages = _stage_changes(a["stages"], b["stages"])
    if stages:
        print("stages:\n" + "\n".join(stages))
    return 0


def _stage_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """A line per stage whose outcome or inputs differ between two pipeline runs: its status in
    each, and whether its cache key (code cells, parameters, input contents, kernel) moved."""
    width = max((len(n) for n in {**a, **b}), default=5)
    lines = []
    for name in {**a, **b}:
        x, y = a.get(name) or {}, b.get(name) or {}
        moved = x.get("cache_key") and y.get("cache_key") and x["cache_key"] != y["cache_key"]
        if x.get("status") != y.get("status") or moved:
            change = f"{x.get('status') or '-'} -> {y.get('status') or '-'}"
            why = "  (its code, parameters or inputs differ)" if moved else ""
            lines.append(f"  {name:<{width}}  {change}{why}")
    return lines


def cmd_cancel(args: argparse.Namespace) -> int:
    from ..store import pipelines as P
    from ..store.owners import check_local
    from .dag import cancel

    store = _store(args)
    try:
        pid = P.resolve_id(store.connect(), args.id)
        found = P.get(store.connect(), pid)
        status = found["status"]
        check_local(store, "pipeline run", pid, found.get("owner"), "cancel")
        if status in P.FINAL_PIPELINE:
            print(f"pipeline run {pid} already ended ({status}); nothing to cancel")
            return 0
        cancel(store, pid)
    except P.PipelineRunNotFound as exc:
        return _fail(str(exc), 1)
    print(f"pipeline run {pid}: cancelling")
    return 0
