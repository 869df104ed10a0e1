"""`jupyter mlp ...`: the store from a terminal, no server needed."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .model import first_line, json_safe, terminal_table
from .model import terminal_text as _t
from .records import PAGE_MAX


def _store(args: argparse.Namespace):
    from .store import Store

    store = Store(args.home)
    store.connect()  # a broken store is named here (StoreUnavailable: exit 2)
    try:  # what kernels that died while the store was down kept in their spools
        from .tracker.sinks import replay_orphans

        for note in replay_orphans(store.home):
            print(f"jupyter mlp: {note}", file=sys.stderr)
    except Exception as exc:  # never stop a listing for it
        print(f"jupyter mlp: could not write spooled records: {exc}", file=sys.stderr)
    return store


def _heartbeat_timeout() -> float:
    try:
        return float(os.environ.get("MLP_HEARTBEAT_TIMEOUT", "60"))
    except ValueError:
        return 60.0


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return _t(json.dumps(v) if not isinstance(v, str) else v)


def _output_value(v: Any) -> str:
    """An output as the user gave it: one holding a type JSON has no word for (a set, a tuple)
    in Python's own spelling, not in its stored form ({"__py__": "set", ...})."""
    from .params import TAG, from_json

    if f'"{TAG}"' in json.dumps(v):
        try:
            return _t(repr(from_json(v)))
        except (TypeError, ValueError):
            pass
    return _value(v)


def _param_value(v: Any, typed: Any) -> str:
    """A parameter as the notebook got it, in Python's spelling (True, 1.0, (1, 2)), not JSON's."""
    from .params import decode_data, kind, literal

    try:
        value = decode_data(v, typed)  # a tuple row is a tuple again
        if kind(typed) == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # stored as 1, injected as 1.0
        return _t(value if isinstance(value, str) else literal(value))
    except (TypeError, ValueError):
        return _value(v)


def _print_json(data: Any) -> None:
    json.dump(json_safe(data), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def runs_list(args: argparse.Namespace) -> int:
    from .store import runs

    store = _store(args)
    conn = store.connect()
    runs.mark_lost(conn, _heartbeat_timeout())
    expr = _with_owner(args.filter, args.owner)
    page = runs.list_page(conn, project=args.project, filter=expr, sort=args.sort,
                          limit=args.limit)  # fmt: skip
    found = page["runs"]
    if page["next"]:  # said apart from the listing (stderr), also under --format json
        print(f"{len(found)} runs shown; there are more (--limit N shows up to {PAGE_MAX})",
              file=sys.stderr)  # fmt: skip
    hints = [f"hint: {_t(hint['message'])}" for hint in page["hints"]]
    if args.format == "json" or found:  # (a sort by a field no run has: said apart)
        for hint in hints:
            print(hint, file=sys.stderr)
    if args.format == "json":
        _print_json(found)
        return 0
    if not found:
        print(
            "no runs"
            + (f" in project {args.project!r}" if args.project else "")
            + f" ({store.where()})"
        )
        for hint in hints:
            print(hint)
        return 0
    now = time.time()
    # a team's store (or runs of several owners): who made each run is a column of its own
    owners = store.url is not None or len({r.get("owner") for r in found}) > 1
    rows = [["ID", "NAME", *(["OWNER"] if owners else []), "PROJECT", "STATUS", "STARTED", "TIME",
             "METRICS"]]  # fmt: skip
    for r in found:
        metrics = ", ".join(f"{_t(k)}={_value(v)}" for k, v in list(r["metrics"].items())[:4])
        status = _t(r["status"])
        if runs.is_idle(r, now):
            status += f" (idle {_duration(now - (r['last_activity_at'] or r['started_at']))})"
        rows.append([
            r["id"], _t(r["name"], 80), *([_t(r.get("owner") or "-", 40)] if owners else []),
            _t(r["project"], 40), status + (" *" if r["pinned"] else ""),
            _when(r["started_at"]), _run_time(r), metrics,
        ])  # fmt: skip
    terminal_table(rows, sys.stdout)
    return 0


def _page_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= PAGE_MAX:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 1 to {PAGE_MAX}, got {text!r}"
        )
    return value


def _with_owner(expr: str | None, owner: str | None) -> str | None:
    """The filter with `owner = NAME` and-ed in (`me`: this process's user, who owns what the
    CLI creates)."""
    if not owner:
        return expr
    if owner == "me":
        from .store.db import os_user

        owner = os_user()
    quoted = '"' + owner.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"owner = {quoted}" + (f" and ({expr})" if expr else "")


def _run_time(run: dict[str, Any]) -> str:
    """TIME: for an interactive run the time spent in cells (its kernel may idle for hours
    while the run is open), for a job or stage its wall-clock duration."""
    if run.get("kind") == "interactive" and run.get("cells"):
        return _duration(run.get("busy_s"))
    started = run.get("started_at")
    if run["duration"] is None and run.get("status") == "running" and isinstance(started, float):
        return _duration(max(0.0, time.time() - started)) + ".."  # so far
    return _duration(run["duration"])


def runs_show(args: argparse.Namespace) -> int:
    from .store import runs

    store = _store(args)
    conn = store.connect()
    runs.mark_lost(conn, _heartbeat_timeout())
    run = runs.get_run(conn, args.id)
    if args.format == "json":
        _print_json({**run, "lineage": runs.lineage(conn, run["id"])})
        return 0
    out = sys.stdout.write
    out(f"run {run['id']}  {_t(run['name'])}\n")
    out(
        f"  project   {_t(run['project'])}    kind {_t(run['kind'])}    status {_t(run['status'])}\n"
    )
    if run.get("tags"):
        out(f"  tags      {', '.join(_t(tag, 80) for tag in run['tags'])}\n")
    out(f"  started   {_when(run['started_at'])}    ended {_when(run['ended_at'])}"
        f"    duration {_duration(run['duration'])}\n")  # fmt: skip
    idle = "    (idle)" if runs.is_idle(run) else ""
    out(f"  in cells  {_duration(run['busy_s'])}    last activity "
        f"{_when(run['last_activity_at'])}{idle}\n")  # fmt: skip
    error = run.get("error")
    if isinstance(error, dict):
        out(f"  error     {_t(error.get('ename'))}: {_t(error.get('evalue'), indent=' ' * 12)}\n")
    if run["kind"] != "interactive":  # what the job said of how it ran (a --prepare-only, ...)
        from .store.jobs import get_job

        job = get_job(conn, run["id"])
        if job is not None and job.note:
            out(f"  note      {_t(job.note)}\n")
    out(f"  notebook  {_t(run['notebook'] or '(unknown)')}\n")
    out(f"  host      {_t(run['host'])}    user {_t(run['user'])}    kernel {_t(run['kernel'])}\n")
    env = run.get("env")
    if isinstance(env, dict) and env:
        packages = env.get("packages")
        count = len(packages) if isinstance(packages, (dict, list)) else 0
        out(
            f"  python    {_t(env.get('python'))} ({_t(env.get('executable'))}), {count} packages\n"
        )
    git = run.get("git")
    if isinstance(git, dict) and git:
        dirty = " (dirty, diff stored)" if git.get("dirty") else ""
        commit = git.get("commit")
        commit = commit[:12] if isinstance(commit, str) else ""
        out(f"  git       {_t(git.get('branch'))} @ {_t(commit)}{dirty}\n")
    gpu = run.get("gpu")
    if isinstance(gpu, dict) and gpu:
        try:
            _show_gpu(gpu, out)
        except (AttributeError, TypeError, ValueError, KeyError):
            out("  gpu       (the stored GPU record is unreadable)\n")
    types = {p["key"]: p["type"] for p in runs.run_part(conn, run["id"], "params")}
    for title, items in (("params", run["params"]), ("metrics (latest)", run["metrics"])):
        out(f"\n{title}:\n")
        shown = [
            f"{_t(k)} = {_param_value(v, types.get(k)) if title == 'params' else _value(v)}"
            for k, v in items.items()
        ]
        width = max(map(len, shown), default=0)
        for k, line in zip(items, shown):
            typed = title == "params" and types.get(k)  # the Python type the value was stored with
            out(f"  {line.ljust(width)}  {_t(typed)}\n" if typed else f"  {line}\n")
        if not items:
            out("  (none)\n")
    out("\noutputs:\n")
    for o in run["outputs"]:
        if o["kind"] == "value":
            out(f"  {_t(o['name'])} = {_output_value(o['value'])}\n")
        else:
            out(f"  {_t(o['name'])}: artifact {_t(o['filename'])} ({_t(o['size'])} bytes, "
                f"{_t((o['blob'] or '')[:12])})\n")  # fmt: skip
    if not run["outputs"]:
        out("  (none)\n")
    out(f"\ncells ({len(run['cells'])}):\n")
    for c in run["cells"]:
        source = c.get("source") if isinstance(c.get("source"), str) else ""
        first = source.strip().splitlines()
        line = _t(first[0][:60]) if first else ""
        extra = ""
        if isinstance(c["error"], dict):
            evalue = first_line(c["error"].get("evalue"))
            evalue = evalue[:80] if isinstance(evalue, str) else ""
            extra = f"  {_t(c['error'].get('ename'))}: {_t(evalue)}"
        if isinstance(c.get("gpu"), dict):
            try:
                extra += "  " + ", ".join(
                    f"GPU{_t(i)} {g.get('util_mean') or 0:.0f}% {(g.get('energy_j') or 0):.1f}J"
                    for i, g in c["gpu"].items()
                )
            except (AttributeError, TypeError, ValueError):
                pass
        shown_count = c["execution_count"] if c["execution_count"] is not None else "-"
        duration = _duration(c["duration"] if isinstance(c["duration"], (int, float)) else None)
        out(f"  {c['seq']:>4} [{shown_count}] {_t(c['status']):<11} {duration:>8}  {line}{extra}\n")
    # lineage of reruns (jupyter_mlp.execution): parent, params changed against it, children
    lineage = runs.lineage_lines(conn, run["id"])
    out("\nlineage:\n" + "".join(f"{_t(line)}\n" for line in lineage) if lineage else "")
    return 0


def runs_export(args: argparse.Namespace) -> int:
    """The run's executed notebook (a running job's partial one) into a file, with
    metadata.papermill.output_path naming that file."""
    from .store import runs
    from .store.partial import executed_notebook

    store = _store(args)
    run = runs.get_run(store.connect(), args.id)
    found = executed_notebook(store, run["id"])
    if found is None:
        print(f"jupyter mlp: run {run['id']} has no executed notebook (only jobs have one)",
              file=sys.stderr)  # fmt: skip
        return 1
    data, partial = found
    stdout = args.output == "-"
    stem = Path(run["notebook"]).stem if run.get("notebook") else (run["name"] or "run")
    target = None if stdout else Path(args.output or f"{stem}-{run['id']}.ipynb").resolve()
    if target is not None and target.is_dir():  # a folder: the file goes in it, as it is named
        target = target / f"{stem}-{run['id']}.ipynb"
    try:
        nb = json.loads(data)
        nb.setdefault("metadata", {}).setdefault("papermill", {})["output_path"] = (
            None if target is None else str(target)
        )
        data = (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    except (ValueError, AttributeError):
        pass  # not JSON: written as stored
    if target is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            target.write_bytes(data)
        except OSError as exc:
            print(f"jupyter mlp: cannot write {_t(target)}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(_t(target))
    if partial:
        print(f"note: run {run['id']} is {run['status']}; this is its notebook so far",
              file=sys.stderr)  # fmt: skip
    return 0


def runs_pin(args: argparse.Namespace) -> int:
    from .store import runs
    from .store.owners import check_local

    store = _store(args)
    conn = store.connect()
    run_id = runs.resolve_id(conn, args.id)
    check_local(
        store, "run", run_id, runs.owner_of(conn, run_id), "pin" if args.pinned else "unpin"
    )
    run = runs.patch_run(conn, run_id, {"pinned": args.pinned})
    print(f"run {run['id']} {'pinned' if run['pinned'] else 'unpinned'}")
    return 0


def _show_gpu(gpu: dict[str, Any], out) -> None:
    if not gpu.get("enabled"):
        out(f"  gpu       none ({_t(gpu.get('reason'))})\n")
        return
    out(f"  gpu       driver {_t(gpu.get('driver_version'))}, CUDA {_t(gpu.get('cuda_version'))}\n")
    figures = gpu.get("run") or {}
    for dev in gpu.get("devices", []):
        f = figures.get(str(dev.get("index")), {})
        mem = dev.get("memory_total")
        line = f"            GPU{_t(dev.get('index'))} {_t(dev.get('name'))}"
        if mem:
            line += f" {mem / 2**30:.0f} GiB"
        if f:
            line += (f": util mean {f.get('util_mean') or 0:.0f}% max {f.get('util_max') or 0:.0f}%,"
                     f" peak mem {(f.get('mem_peak') or 0) / 2**30:.2f} GiB,"
                     f" energy {(f.get('energy_j') or 0):.1f} J ({_t(f.get('energy_source'))})")  # fmt: skip
        out(line + "\n")
    for note in gpu.get("notes") or []:
        out(f"            note: {_t(note)}\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jupyter mlp", description="jupyter-mlp runs from the terminal"
    )
    p.add_argument("--home", help="store folder (default: $MLP_HOME or <jupyter data dir>/mlp)")
    p.add_argument(
        "--store-url", metavar="URL",
        help="a team's shared store, postgresql://USER:PASSWORD@HOST/DB (default: "
        "$MLP_STORE_URL, else the SQLite file under --home)",
    )  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    runs_p = sub.add_parser("runs", help="list and inspect runs")
    runs_sub = runs_p.add_subparsers(dest="runs_command", required=True)
    lst = runs_sub.add_parser("list", help="list runs, newest first")
    lst.add_argument("--project")
    lst.add_argument("--filter", help="e.g. 'metrics.acc > 0.9 and status = finished'")
    lst.add_argument("--owner", metavar="NAME", help="only NAME's runs ('me': your own)")
    lst.add_argument("--sort", help="column or metric, '-' for descending: -metrics.acc")
    lst.add_argument("--limit", type=_page_size, default=50, metavar="N",
                     help=f"at most N runs, newest first (default 50, at most {PAGE_MAX})")  # fmt: skip
    lst.add_argument("--format", choices=("table", "json"), default="table")
    lst.set_defaults(func=runs_list)
    show = runs_sub.add_parser("show", help="one run: params, metrics, outputs, environment, cells")
    show.add_argument("id", help="run id (or a unique prefix of at least 4 digits)")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(func=runs_show)
    export = runs_sub.add_parser(
        "export", help="write a run's executed notebook (a running job's: as far as it got)"
    )
    export.add_argument("id", help="run id (or a unique prefix of at least 4 digits)")
    export.add_argument("--output", "-o", metavar="FILE",
                        help="where to write it ('-': stdout; default: NAME-ID.ipynb here)")  # fmt: skip
    export.set_defaults(func=runs_export)
    for verb, value in (("pin", True), ("unpin", False)):
        pin = runs_sub.add_parser(
            verb,
            help=f"{verb} a run ({'pinned runs become pipeline stages' if value else 'undo pin'})",
        )
        pin.add_argument("id")
        pin.set_defaults(func=runs_pin, pinned=value)
    from .execution.cli_commands import add_commands
    from .pipelines.cli_commands import add_commands as add_pipeline_commands
    from .sweeps.cli_commands import add_commands as add_sweep_commands

    add_commands(sub)
    add_pipeline_commands(sub)
    add_sweep_commands(sub)
    return p


# Options whose value may start with '-' (`--sort -metrics.acc` means descending, as README says);
# argparse would take such a value for an option of its own.
_DASH_VALUE_OPTIONS = ("--sort",)


def _dash_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in _DASH_VALUE_OPTIONS:
            value = next(it, None)
            out.append(arg if value is None else f"{arg}={value}")
        else:
            out.append(arg)
    return out


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments; one the command does not take is refused with that command's usage (not
    the top level's), and papermill's output path with where the executed notebook goes."""
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    command, rest = parser, list(argv)
    while True:  # the command the arguments went to: the last subcommand named
        subs = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        named = next((i for i, a in enumerate(rest) if subs and a in subs[0].choices), None)
        if named is None:
            break
        command, rest = subs[0].choices[rest[named]], rest[named + 1 :]
    message = f"unrecognized arguments: {' '.join(extra)}"
    if any(a.endswith(".ipynb") for a in extra) and command.prog.split()[-1] in ("run", "rerun"):
        message += (
            "\n(no output path: the executed notebook is kept with the run; "
            "`jupyter mlp runs export RUN_ID -o OUT.ipynb` writes it)"
        )
    command.error(message)
    raise AssertionError  # (error() exits)


def main(argv: list[str] | None = None) -> int:
    from .execution import skip_iri_grammar
    from .store import FilterError, RunNotFound, StoreUnavailable
    from .store.owners import NotYours

    skip_iri_grammar()  # submitting imports papermill: 1-4 s less for run, rerun, pipeline run

    args = _parse(build_parser(), _dash_values(sys.argv[1:] if argv is None else argv))
    if args.store_url:  # as $MLP_STORE_URL: every command, and the drivers and jobs it starts
        os.environ["MLP_STORE_URL"] = args.store_url
    try:
        return args.func(args)
    except StoreUnavailable as exc:
        print(f"jupyter mlp: {exc}", file=sys.stderr)
        return 2
    except RunNotFound as exc:
        print(f"jupyter mlp: {exc}", file=sys.stderr)
        return 1
    except FilterError as exc:
        print(f"jupyter mlp: bad {exc.field}: {exc}", file=sys.stderr)
        return 2
    except NotYours as exc:  # another team member's run, pipeline run or sweep
        print(f"jupyter mlp: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


def console() -> None:  # pragma: no cover (the `jupyter-mlp` command; tests run it)
    """`jupyter mlp ...` from a shell: main(), then leave without the interpreter's teardown.
    The last process to close a SQLite store merges its write-ahead log into the file (a
    checkpoint, with fsyncs): ~0.1 s after a pipeline run, paid by a user waiting for the
    prompt. The log is left for the next writer to merge; what it holds is already written."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    import logging

    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
