"""`jupyter mlp rerun | run | cancel | pool`: jobs from a terminal, no server needed.

Without a server the CLI has the job process forked by the warm launcher it finds (or starts;
the job runs in its own session and writes its own outcome, so `--detach` may return at once).
The launcher and its kernels stay `$MLP_KEEP_WARM_S` (600 s) for the next command; `jupyter mlp
pool status | stop` shows and ends them. With a server running on this machine the server's job
service starts the job. Both commands wait and show progress unless `--detach`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .. import model
from ..model import terminal_text


def add_commands(sub: Any) -> None:
    rerun = sub.add_parser(
        "rerun", help="execute a run's notebook snapshot again with new parameters"
    )
    rerun.add_argument("id", help="run id (or a unique prefix of at least 4 digits)")
    _job_options(rerun)
    rerun.add_argument(
        "--gpus", type=int, default=None, help="GPUs for the job (default: as many as the run had)"
    )
    rerun.add_argument("--name", help="name of the new run (default: the original's)")
    rerun.set_defaults(func=cmd_rerun)

    run = sub.add_parser(
        "run", help="execute a notebook file as a tracked job (snapshot taken now)"
    )
    run.add_argument("notebook", help="path of an .ipynb file")
    _job_options(run)
    run.add_argument("--gpus", type=int, default=0, help="GPUs for the job (default 0)")
    run.add_argument("--project", help="project of the run (default: the notebook's own "
                     "%%mlp_track --project, else 'default')")  # fmt: skip
    run.add_argument("--name", help="name of the run (default: the notebook's own %%mlp_track "
                     "NAME, else its file name)")  # fmt: skip
    run.set_defaults(func=cmd_run)

    cancel = sub.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("id", help="run id (or a unique prefix of at least 4 digits)")
    cancel.set_defaults(func=cmd_cancel)

    pool = sub.add_parser(
        "pool",
        help="the warm launcher and kernels a command leaves for the next one "
        "($MLP_KEEP_WARM_S, default 600 s)",
    )
    pool_sub = pool.add_subparsers(dest="pool_command", required=True)
    pool_sub.add_parser(
        "status", help="this store's launcher: its idle kernels, running jobs, when it ends"
    ).set_defaults(func=cmd_pool, stop=False)
    pool_sub.add_parser(
        "stop", help="stop them now (their idle kernels at once; jobs they run finish first)"
    ).set_defaults(func=cmd_pool, stop=True)


def _job_options(p: argparse.ArgumentParser) -> None:
    from .param_options import add_options

    add_options(p)  # -p (both forms), -r, -y, -f/-P, -b, --allow-new-params, --no-type-check
    p.add_argument("--executor", default="local", help="where to run: local (default) or dask")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="the Dask scheduler for --executor dask (default: the server's "
                        "c.MlpApp.dask_scheduler or $MLP_DASK_SCHEDULER)")  # fmt: skip
    p.add_argument("--kernel", "-k", help="kernel name, as jupyter_client finds it (default: the "
                   "notebook's; a rerun: its parent's)")  # fmt: skip
    p.add_argument("--cwd", help="working directory, relative to where you run this (default: the "
                   "notebook's folder; a rerun: its parent's)")  # fmt: skip
    from .papermill_options import add_options as add_papermill_options

    add_papermill_options(p)
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")


def _service(args: argparse.Namespace):
    from ..store import Store
    from .service import JobService

    return JobService(Store(args.home), dispatch=None)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    from .param_options import given

    return dict(given(args))


def _submit(args: argparse.Namespace, submit) -> int:
    from ..params import ParamError
    from .errors import JobError

    service = _service(args)
    try:  # (stopped at the end: a service that took over dispatching hands the queue back)
        try:
            run_id = submit(service, _params(args))
        except (JobError, ParamError) as exc:
            print(f"jupyter mlp: {exc}", file=sys.stderr)
            return 2
        if args.detach:
            print(run_id)
            return 0
        return wait(service, run_id, log=_output_log(service, run_id))
    finally:
        service.stop()


def _output_log(service: Any, run_id: str) -> Any:
    """The job's log when the notebook's output goes there (--log-output, also a parent's) and
    it runs on this machine: shown as it comes, as papermill's --log-output shows it."""
    from ..store.jobs import get_job
    from .papermill_options import KEY

    job = get_job(service.store.connect(), run_id)
    if job is None or job.executor != "local":
        return None
    if not ((job.options or {}).get(KEY) or {}).get("log_output"):
        return None
    return service.executor("local").log_path(run_id)


def cmd_rerun(args: argparse.Namespace) -> int:
    return _submit(
        args,
        lambda service, params: service.submit_rerun(
            args.id, params, executor=args.executor, gpus=args.gpus, allow_new=args.allow_new,
            kernel=args.kernel, name=args.name, cwd=args.cwd, options=_options(args),
            type_check=args.type_check,
        ),
    )  # fmt: skip


def cmd_run(args: argparse.Namespace) -> int:
    return _submit(
        args,
        lambda service, params: service.submit_notebook(
            args.notebook, params, project=args.project, name=args.name, executor=args.executor,
            gpus=args.gpus, allow_new=args.allow_new, kernel=args.kernel, cwd=args.cwd,
            options=_options(args), type_check=args.type_check,
        ),
    )  # fmt: skip


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from .papermill_options import KEY, from_args

    options: dict[str, Any] = {"scheduler": args.scheduler} if args.scheduler else {}
    papermill = from_args(args)
    if papermill:
        options[KEY] = papermill
    return options


def cmd_cancel(args: argparse.Namespace) -> int:
    from ..store import runs as run_store
    from ..store.jobs import JobNotFound
    from ..store.owners import check_local

    service = _service(args)
    conn = service.store.connect()
    run_id = run_store.resolve_id(conn, args.id)
    check_local(service.store, "run", run_id, run_store.owner_of(conn, run_id), "cancel")
    try:
        st = service.cancel(run_id, wait=True)
    except JobNotFound as exc:
        print(f"jupyter mlp: run {exc.args[0]} is not a job", file=sys.stderr)
        return 1
    if st["state"] != model.CANCELLED and st["state"] in model.FINAL_STATUSES:
        print(f"run {st['run_id']} already ended ({st['state']}); nothing to cancel")
        return 0
    print(f"run {st['run_id']}: {st['state']}")
    return 0 if st["state"] == model.CANCELLED else 1


def cmd_pool(args: argparse.Namespace) -> int:
    """`jupyter mlp pool status | stop`: the warm launchers serving this store's home."""
    from ..store.db import home_dir
    from .launcher import client, running
    from .processes import process_alive

    found = running(home_dir(args.home))
    if not found:
        print("no warm launcher for this store")
        return 0
    for record in found:
        launcher = client(str(record["name"]))
        try:
            if launcher is None:
                raise OSError("it does not answer")
            info = launcher.stop() if args.stop else launcher.status()
        except (OSError, RuntimeError) as exc:
            print(f"launcher {record['pid']}: {exc}")
            continue
        finally:
            if launcher is not None:
                launcher.close()
        idle = ", ".join(f"{n} {k}" for k, n in sorted(info["idle_kernels"].items())) or "none"
        where = f"pid {info['pid']}, started in {info['cwd']}"
        if not args.stop:
            linger, idle_s = float(info["linger"]), float(info.get("idle_s") or 0.0)
            when = f"stays {linger:g} s once idle"
            if not info["jobs"]:
                when += f" (idle {idle_s:.0f} s: ends in {max(0.0, linger - idle_s):.0f} s)"
            print(f"launcher {where}: idle kernels {idle}; jobs running {info['jobs']}; {when}")
            continue
        deadline = time.monotonic() + 10.0
        while info["jobs"] == 0 and process_alive(int(info["pid"])):
            if time.monotonic() > deadline:
                print(f"launcher {where}: asked to stop, still running", file=sys.stderr)
                return 1
            time.sleep(0.02)
        after = f" once its {info['jobs']} running job(s) end" if info["jobs"] else ""
        print(f"launcher {where}: stopped{after}")
    return 0


class _Follow:
    """The lines added to a file since this was made (the file may not exist yet)."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self.offset = 0
        self.rest = b""

    def lines(self, final: bool = False) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(1 << 20)
        except OSError:
            return []
        self.offset += len(data)
        parts = (self.rest + data).split(b"\n")
        self.rest = parts.pop()
        if final and self.rest:
            parts.append(self.rest)
            self.rest = b""
        return [p.decode("utf-8", "replace").rstrip("\r") for p in parts]


def wait(service, run_id: str, out=None, interval: float = 0.2, log: Any = None) -> int:
    """Show progress until the job ends; exit status 0 only for a finished run. log: a file
    whose new lines are shown too (escaped, as all text from a notebook) as they come."""
    out = out or sys.stderr
    live = out.isatty()
    print(f"run {run_id}: queued (jupyter mlp cancel {run_id} stops it)", file=out, flush=True)
    shown = None
    follow = _Follow(log) if log is not None else None
    try:
        while True:
            service.tick()
            st = service.status(run_id)
            lines = follow.lines(final=st["state"] in model.FINAL_JOB_STATES) if follow else []
            if lines:
                if live and shown:  # the progress line gives way, and comes back below
                    print("\r" + " " * 60 + "\r", end="", file=out)
                for text in lines:
                    print(terminal_text(text), file=out)
                shown = None
            line = f"run {run_id}: {st['state']}"
            if st["cells_total"]:
                line += f"  {min(st['cells_done'], st['cells_total'])}/{st['cells_total']} cells"
            if line != shown:
                print(
                    ("\r" if live else "") + line.ljust(60 if live else 0),
                    end="" if live else "\n",
                    file=out,
                    flush=True,
                )
                shown = line
            if st["state"] in model.FINAL_JOB_STATES:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        print(
            f"\nstopped waiting; the job goes on (jupyter mlp cancel {run_id} stops it)", file=out
        )
        return 130
    if live:
        print(file=out)
    if st.get("note"):
        print(f"note: {st['note']}", file=out)
    if st["state"] != model.FINISHED:
        error = st.get("error") or {}
        if error:
            print(f"{terminal_text(error.get('ename'), 80)}: "
                  f"{terminal_text(error.get('evalue'), indent='  ')}", file=out)  # fmt: skip
    print(f"details: jupyter mlp runs show {run_id}", file=out)
    return 0 if st["state"] == model.FINISHED else 1


def drive_here(drive: Any, show: Any, cancel: Any, name: str) -> bool:
    """Run a pipeline's or sweep's driver (`drive()`) in a thread of this command, `show()` its
    progress every 0.2 s, and on Ctrl-C `cancel()` it and wait while its driver stops the jobs;
    a second Ctrl-C leaves at once (`... cancel ID` finishes it then: its driver is gone). True
    when interrupted. Waits on an event the driver sets, not on Thread.join: a join that Ctrl-C
    interrupts leaves Python 3.11's thread marked as ended while it still runs, so the command
    left at once and its pipeline stayed `cancelling` for good."""
    import threading

    ended = threading.Event()

    def body() -> None:
        try:
            drive()
        finally:
            ended.set()

    threading.Thread(target=body, name=name, daemon=True).start()
    try:
        while True:
            show()
            if ended.wait(0.2):
                show()  # where it ended
                return False
    except KeyboardInterrupt:
        pass
    try:
        print("\ncancelling: the running jobs are being stopped (Ctrl-C again leaves now) ...",
              file=sys.stderr, flush=True)  # fmt: skip
        cancel()
        ended.wait()
        show()
    except KeyboardInterrupt:
        print("left while cancelling", file=sys.stderr)
    return True
