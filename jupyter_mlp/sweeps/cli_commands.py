"""`jupyter mlp sweep RUN_ID -p ... --objective ...` and `jupyter mlp sweep status|cancel|resume|list`.

A sweep started here is driven in this process (Ctrl-C cancels it) unless `--detach`, where a
driver process of its own runs it (it outlives the terminal; `sweep status` watches it)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

COMMANDS = ("status", "cancel", "resume", "list")


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "sweep", help="search a run's parameters (Optuna), each trial a rerun of it",
        description="jupyter mlp sweep RUN_ID -p lr=log:1e-4..1e-1 -p depth=3,5,8 -p epochs=20 "
        "--objective max:val_acc --trials 40 --concurrency 4;  jupyter mlp sweep status [ID] | "
        "cancel ID | resume ID | list",
    )  # fmt: skip
    p.add_argument("target", metavar="RUN_ID|status|cancel|resume|list",
                   help="the template run (id or a unique prefix), or a command")  # fmt: skip
    p.add_argument("sweep", nargs="?", metavar="SWEEP_ID", help="for status, cancel, resume")
    p.add_argument("-p", "--param", dest="params", action="append", default=[],
                   metavar="NAME=SPEC",
                   help="log:LOW..HIGH, LOW..HIGH[:STEP], a,b,c (choices) or a fixed value")  # fmt: skip
    p.add_argument("--objective", help="max:NAME or min:NAME[:last|min|max] (metric or output; "
                   "metric.NAME / output.NAME to say which)")  # fmt: skip
    p.add_argument("--trials", type=int,
                   help="the budget: how many trials (required; grid: default the grid's size)")  # fmt: skip
    p.add_argument("--concurrency", type=int, default=2, help="trials at once (default 2)")
    p.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    p.add_argument("--seed", type=int, help="the sampler's seed (default: a random one, recorded)")
    p.add_argument("--prune", action="store_true",
                   help="stop trials whose objective metric is worse than the median (MedianPruner)")  # fmt: skip
    p.add_argument("--prune-startup", type=int, default=5,
                   help="trials that finish before any is pruned (default 5)")  # fmt: skip
    p.add_argument("--prune-warmup", type=int, default=0,
                   help="steps of a trial before it may be pruned (default 0)")  # fmt: skip
    p.add_argument("--timeout", type=float, help="no new trial after this many seconds")
    p.add_argument("--executor", default="local", help="where trials run (default local)")
    p.add_argument("--gpus", type=int, help="GPUs per trial (default: as many as the run had)")
    p.add_argument("--kernel", "-k", help="kernel of the trials (default: the run's)")
    p.add_argument("--allow-new-params", dest="allow_new", action="store_true",
                   help="search parameters the run does not have")  # fmt: skip
    p.add_argument("--name", help="name of the sweep (default: '<run name> sweep')")
    p.add_argument("--detach", action="store_true", help="drive it in the background; print its id")
    p.add_argument("--format", choices=("text", "json"), default="text", help="sweep status")
    p.set_defaults(func=cmd_sweep)


def _store(args: argparse.Namespace) -> Any:
    from ..store import Store

    return Store(args.home)


def _fail(message: str, code: int = 2) -> int:
    print(f"jupyter mlp: {message}", file=sys.stderr)
    return code


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..store.sweeps import SweepNotFound

    command = args.target
    try:
        if command == "list":
            if args.sweep:
                return _fail(f"jupyter mlp sweep list takes no sweep id (got {args.sweep!r})")
            return cmd_list(args)
        if command in COMMANDS:
            if not args.sweep and command != "status":
                return _fail(f"jupyter mlp sweep {command} needs the sweep's id "
                             "(jupyter mlp sweep list shows them)")  # fmt: skip
            return {"status": cmd_status, "cancel": cmd_cancel, "resume": cmd_resume}[command](args)
        if args.sweep:
            return _fail(f"unexpected {args.sweep!r} after the run id")
        return cmd_start(args)
    except SweepNotFound as exc:
        return _fail(str(exc), 1)


def cmd_start(args: argparse.Namespace) -> int:
    from ..params import ParamError
    from .driver import submit
    from .space import SweepError

    store = _store(args)
    try:
        sweep_id = submit(
            store, args.target, args.params, args.objective, trials=args.trials,
            concurrency=args.concurrency, sampler=args.sampler, seed=args.seed, prune=args.prune,
            prune_startup=args.prune_startup, prune_warmup=args.prune_warmup,
            timeout=args.timeout, executor=args.executor, gpus=args.gpus,
            allow_new=args.allow_new, kernel=args.kernel, name=args.name,
        )  # fmt: skip
    except (SweepError, ParamError) as exc:
        return _fail(str(exc))
    return _drive(store, sweep_id, args.detach)


def _drive(store: Any, sweep_id: str, detach: bool) -> int:
    from ..store import sweeps as S
    from .driver import cancel, run, spawn

    if detach:
        spawn(store, sweep_id)
        print(sweep_id)
        return 0
    print(f"sweep {sweep_id} (jupyter mlp sweep cancel {sweep_id} stops it)", file=sys.stderr)
    from ..execution.cli_commands import drive_here

    out = sys.stderr
    live = out.isatty()
    shown = [""]  # the line shown last

    def drive() -> None:
        try:
            run(store, sweep_id)
        except Exception:  # recorded in the sweep row by the driver
            pass

    def show() -> None:
        line = progress_line(store.connect(), sweep_id)
        if line != shown[0]:
            print(("\r" if live else "") + line.ljust(90 if live else 0),
                  end="" if live else "\n", file=out, flush=True)  # fmt: skip
            shown[0] = line

    interrupted = drive_here(drive, show, lambda: cancel(store, sweep_id), "mlp-sweep")
    if live:
        print(file=out)
    print(table(store.connect(), sweep_id))
    if interrupted:
        return 130
    return 0 if S.get(store.connect(), sweep_id)["status"] == "finished" else 1


def progress_line(conn: Any, sweep_id: str) -> str:
    """`[running] 12 of 40 trials started: 9 done (1 pruned, 2 failed), 3 running; best 0.93 (#7,
    run ab..)`, and `, N cancelled` where trials were (they are not done)."""
    from ..store import sweeps as S

    sweep = S.get(conn, sweep_id)
    n = S.counts(conn, sweep_id)
    told = sum(v for k, v in n.items() if k not in ("running", "cancelled"))
    line = (f"[{sweep['status']}] {sum(n.values())} of {sweep['budget']} trials started: {told} "
            f"done ({n.get('pruned', 0)} pruned, {n.get('failed', 0)} failed), "
            f"{n.get('running', 0)} running")  # fmt: skip
    if n.get("cancelled"):
        line += f", {n['cancelled']} cancelled"
    if sweep["best_trial"] is not None:
        line += (
            f"; best {sweep['best_value']:.6g} (#{sweep['best_trial']}, run {sweep['best_run_id']})"
        )
    return line


def _shown(params: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) and len(repr(v)) > 8 else repr(v)

    return ", ".join(f"{k}={one(v)}" for k, v in params.items())


def table(conn: Any, sweep_id: str) -> str:
    from ..model import first_line
    from ..model import terminal_text as tt
    from ..store import sweeps as S
    from ..store.runs import run_times
    from .space import space_from_json

    sweep = S.get(conn, sweep_id)
    space = space_from_json(sweep["space"])
    lines = [
        f"sweep {sweep['id']}  {tt(sweep['name'], 200)}  {sweep['status']}  template run "
        f"{sweep['template_id']}  objective {sweep['objective']['text']}  sampler "
        f"{sweep['sampler']} (seed {sweep['seed']})",
        "  space: " + "; ".join(f"{n}={d.describe()}" for n, d in space.items()),
        "  " + progress_line(conn, sweep_id),
    ]
    trials = S.trials(conn, sweep_id)
    times = run_times(conn, [t["run_id"] for t in trials if t["run_id"]])
    for t in trials:
        values = {n: space[n].value_of(v) for n, v in (t["params"] or {}).items() if n in space}
        value = f"{t['value']:.6g}" if t["value"] is not None else "-"
        # the trial's run's own time (as runs list shows it), not its wait for a slot
        started, ended = times.get(t["run_id"], (None, None))
        took = "-"
        if started and ended:
            took = f"{ended - started:.1f}s"
        elif started:
            took = f"{time.time() - started:.0f}s.."
        extra = ""
        if t["error"]:
            evalue = first_line(t["error"].get("evalue"))
            extra = f"  {tt(t['error'].get('ename'), 80)}: {tt(evalue, 120)}"
        lines.append(f"  #{t['number']:<3} {t['status']:<9} {value:>10} {took:>7}  run "
                     f"{t['run_id'] or '-':<12}  {_shown(values)}{extra}")  # fmt: skip
    if sweep["best_trial"] is not None:
        lines.append(f"best: {sweep['objective']['text']} = {sweep['best_value']:.6g}  trial "
                     f"#{sweep['best_trial']}, run {sweep['best_run_id']} "
                     f"(jupyter mlp runs show {sweep['best_run_id']})")  # fmt: skip
    if sweep["note"]:
        lines.append(f"note: {sweep['note']}")
    if sweep["error"]:
        lines.append(
            f"error: {tt(sweep['error'].get('ename'), 80)}: "
            f"{tt(sweep['error'].get('evalue'), indent='  ')}"
        )
    return "\n".join(lines)


def _resolve(args: argparse.Namespace, conn: Any) -> str:
    from ..store import sweeps as S

    if args.sweep:
        return S.resolve_id(conn, args.sweep)
    newest = S.list_sweeps(conn, limit=1)
    if not newest:
        raise S.SweepNotFound("no sweeps yet")
    return str(newest[0]["id"])


def cmd_status(args: argparse.Namespace) -> int:
    from ..store import sweeps as S

    conn = _store(args).connect()
    sweep_id = _resolve(args, conn)
    if args.format == "json":
        from ..model import json_safe

        print(json.dumps(json_safe({**S.get(conn, sweep_id), "trials": S.trials(conn, sweep_id)}),
                         indent=2))  # fmt: skip
    else:
        print(table(conn, sweep_id))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..model import terminal_table
    from ..model import terminal_text as tt
    from ..store import sweeps as S

    conn = _store(args).connect()
    found = S.list_sweeps(conn)
    if not found:
        print("no sweeps")
        return 0
    rows = [["ID", "CREATED", "STATUS", "TRIALS", "RUN", "OBJECTIVE", "BEST"]]
    for s in found:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["created_at"]))
        told = sum(S.counts(conn, s["id"]).values())
        best = f"{s['best_value']:.6g}" if s["best_trial"] is not None else "-"
        rows.append([s["id"], when, tt(s["status"], 20), f"{told}/{s['budget']}",
                     s["template_id"], tt(s["objective"]["text"], 40), best])  # fmt: skip
    terminal_table(rows, sys.stdout)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from ..store import sweeps as S
    from ..store.owners import check_local
    from .driver import cancel

    store = _store(args)
    conn = store.connect()
    sweep_id = S.resolve_id(conn, args.sweep)
    found = S.get(conn, sweep_id)
    before = found["status"]
    check_local(store, "sweep", sweep_id, found.get("owner"), "cancel")
    if before in S.FINAL_SWEEP:
        print(f"sweep {sweep_id} already ended ({before}); nothing to cancel")
        return 0
    status = cancel(store, sweep_id)
    deadline = time.monotonic() + 60
    while status == "cancelling" and time.monotonic() < deadline:  # the driver answers
        time.sleep(0.1)
        status = S.get(conn, sweep_id)["status"]
    print(f"sweep {sweep_id}: {status}")
    return 0 if status == "cancelled" or before == "failed" else 1


def cmd_resume(args: argparse.Namespace) -> int:
    from ..store import sweeps as S
    from .driver import deadline, driver_alive

    store = _store(args)
    conn = store.connect()
    sweep_id = S.resolve_id(conn, args.sweep)
    sweep = S.get(conn, sweep_id)
    if sweep["status"] == "cancelled":  # goes on to its budget: the cancelled trials run again
        ends = deadline(sweep)
        if ends is not None and time.time() > ends:
            return _fail(f"sweep {sweep_id} is cancelled and its --timeout of "
                         f"{sweep['timeout_s']:g} s, counted from its start, has passed: "
                         "nothing to resume", 1)  # fmt: skip
        if not S.set_status(conn, sweep_id, "queued"):
            return _fail(f"sweep {sweep_id} changed meanwhile; try again", 1)
        print(f"sweep {sweep_id} was cancelled; it goes on to its budget (the trials the cancel "
              "stopped run again)")  # fmt: skip
    elif sweep["status"] in S.FINAL_SWEEP or sweep["status"] == "cancelling":
        return _fail(f"sweep {sweep_id} is {sweep['status']}: nothing to resume", 1)
    if sweep["status"] == "running" and driver_alive(sweep):
        return _fail(
            f"sweep {sweep_id} is still driven (pid {sweep['pid']} on {sweep['host']}); "
            "`jupyter mlp sweep status` watches it", 1,
        )  # fmt: skip
    return _drive(store, sweep_id, args.detach)
