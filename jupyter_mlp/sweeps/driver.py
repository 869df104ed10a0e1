"""The sweep driver: Optuna's ask-and-tell loop over our job queue.

    sweep_id = submit(store, "ab12", ["lr=log:1e-4..1e-1", "depth=3,5,8"], "max:val_acc",
                      trials=40, concurrency=4)          # checked, recorded, nothing queued yet
    Driver(store, sweep_id).run()                        # or spawn(home, sweep_id): detached

Each asked trial becomes an ordinary job run (a rerun of the template with the sampled values,
`sweep_id` set, parent = the template run). A new trial is asked as soon as one ends (not in
waves), up to the sweep's concurrency. With pruning, the objective metric's points are read from
the store while a trial runs and reported to the trial; when the pruner says so, the trial's job
ends `pruned` and its kernel is stopped.

The Optuna study lives in memory: our store is the record of the trials, and a driver that
starts again (`resume`) replays them into a new study (finished, pruned and failed trials as
told; trials whose jobs still run are adopted and watched on), then goes on to the budget.

    python -m jupyter_mlp.sweeps.driver SWEEP_ID [--home DIR]   drives one sweep, detached
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..execution.errors import JobError
from ..model import CANCELLED, FAILED, FINAL_JOB_STATES, FINISHED, PRUNED, RUNNING
from ..params import ParamError
from ..store import sweeps as S
from ..store.transitions import CANCELLING
from .objective import NoObjective, Objective, parse_objective
from .space import (
    Space,
    SweepError,
    check_grid,
    fixed_values,
    grid_space,
    parse_space,
    space_from_json,
    space_json,
    template_parameters,
)

POLL_S = 0.02
SAMPLERS = ("tpe", "random", "grid")
PRUNE_STARTUP = 5  # MedianPruner's default: trials that finish before any is pruned


# --- submitting ---------------------------------------------------------------------------------


def submit(
    store: Any, template: str, params: list[str] | dict[str, str], objective: str, *,
    trials: int | None = None, concurrency: int = 2, sampler: str = "tpe", seed: int | None = None,
    prune: bool = False, prune_startup: int = PRUNE_STARTUP, prune_warmup: int = 0,
    timeout: float | None = None, executor: str = "local", gpus: int | None = None,
    allow_new: bool = False, kernel: str | None = None, name: str | None = None,
) -> str:  # fmt: skip
    """Check everything and record the sweep (`queued`); returns its id. SweepError (or
    RunNotFound) on bad input, before anything is queued."""
    import importlib.util

    from ..execution.submit import prepare_rerun
    from ..store import runs as run_store

    if importlib.util.find_spec("optuna") is None:
        raise SweepError(
            "sweeps need Optuna, which is not installed: pip install 'jupyter-mlp[sweeps]'"
        )
    if sampler not in SAMPLERS:
        raise SweepError(f"--sampler {sampler!r}: pick one of {', '.join(SAMPLERS)}", "sampler")
    if trials is not None and (
        isinstance(trials, bool) or not isinstance(trials, int) or trials < 1
    ):
        raise SweepError(
            f"--trials must be a whole number of at least 1 (got {trials!r})", "trials"
        )
    if trials is None and sampler != "grid":
        raise SweepError(
            "--trials is required (the grid sampler alone defaults to the grid's size)", "trials"
        )
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise SweepError(
            f"--concurrency must be a whole number of at least 1 (got {concurrency!r})",
            "concurrency",
        )
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise SweepError(
            f"--timeout must be a number of seconds above 0 (got {timeout!r})", "timeout"
        )
    for option, value in (("--prune-startup", prune_startup), ("--prune-warmup", prune_warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SweepError(
                f"{option} must be a whole number >= 0 (got {value!r})",
                option[2:].replace("-", "_"),
            )
    conn = store.connect()
    template_id = run_store.resolve_id(conn, template)
    known = template_parameters(conn, store.blobs, template_id)
    space = parse_space(params, known, allow_new)
    try:
        goal = parse_objective(objective)
    except SweepError as exc:
        exc.field = exc.field or "objective"
        raise
    if prune and not goal.has_curve:
        raise SweepError(
            f"--prune needs a metric objective (the pruner reads its points while a trial runs); "
            f"{goal.text} is an output",
            "prune",
        )
    note = None
    if sampler == "grid":
        try:
            size = check_grid(space)
        except SweepError as exc:
            exc.field = exc.field or "sampler"
            raise
        if trials is None or trials > size:
            if trials is not None:
                note = f"the grid has {size} points: {size} trials, not {trials}"
            trials = size
    assert trials is not None
    # A dry rerun with the first point of the space: a snapshot, kernel, type or GPU problem is
    # said now, with the rerun's own words, not by every trial.
    first = {n: d.value_of(_first(d)) for n, d in space.items() if d.searched}
    try:
        request = prepare_rerun(
            conn, store.blobs, template_id, {**fixed_values(space), **first}, executor=executor,
            gpus=gpus, allow_new=allow_new, kernel=kernel,
        )  # fmt: skip
        from ..execution.registry import EXECUTORS

        if executor not in EXECUTORS.names():
            raise JobError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS.names())})")
        if executor == "local":  # the others need their settings (a scheduler) to check
            EXECUTORS.create(executor, store).validate(request)
    except (JobError, ParamError) as exc:
        raise SweepError(str(exc)) from None
    template_row = run_store.get_run(conn, template_id, with_cells=False)
    sweep_id = S.create(
        conn, name=name or f"{template_row['name'] or 'run'} sweep", template_id=template_id,
        space=space_json(space), objective=goal.as_json(), sampler=sampler,
        seed=seed if seed is not None else random.randrange(2**31), budget=trials,
        timeout_s=float(timeout) if timeout else None, concurrency=concurrency,
        executor=executor, gpus=gpus,
        options={"prune": bool(prune), "prune_startup": prune_startup,
                 "prune_warmup": prune_warmup, "allow_new": bool(allow_new), "kernel": kernel},
    )  # fmt: skip
    if note:
        S.update(conn, sweep_id, note=note)
    return sweep_id


def _first(d: Any) -> Any:
    from .space import CHOICE

    if d.kind == CHOICE:
        return 0 if d._by_index() else d.choices[0]
    return d.low


def cancel(store: Any, sweep_id: str, service: Any = None) -> str:
    """Ask the driver to stop every running trial; with no driver alive, do it here. Returns
    the sweep's status after the ask."""
    conn = store.connect()
    sweep = S.get(conn, sweep_id)
    if sweep["status"] in S.FINAL_SWEEP:
        return str(sweep["status"])
    if sweep["status"] == "failed":  # no driver: the trials that still run are stopped here
        _stop_trials(store, sweep_id, service)
        return "failed"
    S.set_status(conn, sweep_id, CANCELLING)
    if not driver_alive(sweep):
        _stop_trials(store, sweep_id, service)
        S.set_status(conn, sweep_id, CANCELLED)
        return CANCELLED
    return CANCELLING


def driver_alive(sweep: dict[str, Any]) -> bool:
    """Whether the sweep's driver process still runs (on this machine)."""
    from ..execution.processes import process_alive

    if not sweep.get("pid"):
        return False
    if sweep.get("host") and sweep["host"] != socket.gethostname():
        return True  # another machine's: we cannot tell, so we do not take over
    return process_alive(int(sweep["pid"]), None)


def _stop_trials(store: Any, sweep_id: str, service: Any = None) -> None:
    conn = store.connect()
    running = [t for t in S.trials(conn, sweep_id) if t["status"] == RUNNING]
    if not running:
        return
    if service is None:
        from ..execution.service import JobService

        service = JobService(store, warm=False, dispatch=False)
    with ThreadPoolExecutor(max(1, min(8, len(running)))) as pool:
        list(pool.map(lambda t: _cancel_job(service, t["run_id"]), running))
    for t in running:
        S.set_trial(conn, sweep_id, t["number"], CANCELLED,
                    error={"ename": "Cancelled", "evalue": "the sweep was cancelled"})  # fmt: skip


def _cancel_job(service: Any, run_id: str | None) -> None:
    if not run_id:
        return
    try:
        service.cancel(run_id, wait=True)
    except Exception:  # the job may have ended meanwhile
        pass


# --- the loop -----------------------------------------------------------------------------------


@dataclass
class Active:
    trial: Any  # optuna.trial.Trial
    run_id: str
    last_step: int | None = None
    last_value: float | None = None


class Driver:
    def __init__(
        self, store: Any, sweep_id: str, service: Any = None, poll: float = POLL_S
    ) -> None:
        self.store = store
        self.id = sweep_id
        self.poll = poll
        self.conn = store.connect()
        row = S.get(self.conn, sweep_id)
        self.row = row
        self.space: Space = space_from_json(row["space"])
        self.objective = Objective.from_json(row["objective"])
        self.options = row["options"] or {}
        self.distributions = {n: d.distribution() for n, d in self.space.items() if d.searched}
        self.fixed = fixed_values(self.space)
        self.active: dict[int, Active] = {}
        self.asked = 0
        self._own_service = service is None
        self._service = service

    @property
    def service(self) -> Any:
        if self._service is None:
            from ..execution.service import JobService
            from ..execution.service_marker import service_running

            self._service = JobService(
                self.store, concurrency=self.row["concurrency"],
                dispatch=not service_running(self.store.home),
            )  # fmt: skip
            if self._service.dispatching:
                self._service.start()
        return self._service

    # --- the study ------------------------------------------------------------------------------

    def _study(self, replayed: int) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = self.row["seed"]
        kind = self.row["sampler"]
        if kind == "grid":
            sampler: Any = optuna.samplers.GridSampler(grid_space(self.space), seed=seed)
        else:
            # A resumed sweep must not ask the first trials' points again: the seed moves on.
            seed = None if seed is None else seed + replayed
            if kind == "random":
                sampler = optuna.samplers.RandomSampler(seed=seed)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # constant_liar is "experimental"
                    sampler = optuna.samplers.TPESampler(
                        seed=seed, constant_liar=self.row["concurrency"] > 1
                    )
        pruner: Any = optuna.pruners.NopPruner()
        if self.options.get("prune"):
            pruner = optuna.pruners.MedianPruner(
                n_startup_trials=int(self.options.get("prune_startup", PRUNE_STARTUP)),
                n_warmup_steps=int(self.options.get("prune_warmup", 0)),
            )
        return optuna.create_study(direction=optuna.study.StudyDirection[self.objective.direction.upper()], sampler=sampler,
                                   pruner=pruner)  # fmt: skip

    def _replay(self) -> None:
        """The trials in the store, told again (finished, pruned, failed) or adopted (running)."""
        from optuna.trial import Trial, TrialState, create_trial

        rows = S.trials(self.conn, self.id)
        self.study = self._study(len(rows))
        states = {FINISHED: TrialState.COMPLETE, PRUNED: TrialState.PRUNED}
        for row in rows:
            curve = {}
            if row["run_id"] and row["status"] in (FINISHED, PRUNED, RUNNING):
                curve = dict(self.objective.curve(self.conn, row["run_id"], None))
            state = states.get(row["status"], TrialState.FAIL)
            if row["status"] == RUNNING:
                state = TrialState.RUNNING
            params = {k: v for k, v in (row["params"] or {}).items() if k in self.distributions}
            frozen = create_trial(
                state=state, value=row["value"] if state == TrialState.COMPLETE else None,
                params=params, distributions={k: self.distributions[k] for k in params},
                intermediate_values=curve if state != TrialState.RUNNING else None,
                system_attrs=row["system"] or {},
            )  # fmt: skip
            self.study.add_trial(frozen)
            if row["status"] == RUNNING:
                added = self.study.get_trials(deepcopy=False)[-1]
                self.active[row["number"]] = Active(
                    Trial(self.study, added._trial_id), row["run_id"]
                )
        self.asked = len(rows)

    # --- running --------------------------------------------------------------------------------

    def run(self) -> str:
        pid, host = os.getpid(), socket.gethostname()
        if not S.set_status(self.conn, self.id, RUNNING, pid=pid, host=host):
            return str(S.get(self.conn, self.id)["status"])
        self.row = S.get(self.conn, self.id)
        try:
            self._replay()
            while True:
                if S.get(self.conn, self.id)["status"] == CANCELLING:
                    return self._cancel_all()
                self._watch()
                self._fill()
                if not self.active and not self._may_ask():
                    return self._finish()
                time.sleep(self.poll)
        except BaseException as exc:
            S.set_status(self.conn, self.id, FAILED,
                         error={"ename": type(exc).__name__, "evalue": str(exc)[:2000]})  # fmt: skip
            raise
        finally:
            if self._own_service and self._service is not None:
                self._service.stop()

    def _deadline(self) -> float | None:
        timeout = self.row["timeout_s"]
        return self.row["started_at"] + timeout if timeout else None

    def _may_ask(self) -> bool:
        if self.asked >= self.row["budget"]:
            return False
        deadline = self._deadline()
        return deadline is None or time.time() < deadline

    def _fill(self) -> None:
        while len(self.active) < self.row["concurrency"] and self._may_ask():
            self._ask()

    def _ask(self) -> None:
        from ..execution.submit import prepare_rerun

        trial = self.study.ask(fixed_distributions=self.distributions)
        number = trial.number
        self.asked += 1
        frozen = self.study.get_trials(deepcopy=False)[number]
        system = {k: frozen.system_attrs[k] for k in ("grid_id", "search_space")
                  if k in frozen.system_attrs}  # fmt: skip
        sampled = dict(trial.params)
        values = {**self.fixed, **{n: self.space[n].value_of(v) for n, v in sampled.items()}}
        template = self.row["template_id"]
        executor = self.row["executor"]
        try:
            request = prepare_rerun(
                self.conn, self.store.blobs, template, values, executor=executor,
                gpus=self.row["gpus"], allow_new=bool(self.options.get("allow_new")),
                kernel=self.options.get("kernel"), name=f"{self.row['name']} #{number}",
            )  # fmt: skip
            ex = self.service.executor(executor)
            ex.validate(request)
            run_id = S.queue_trial(self.conn, self.id, number, request, sampled, system)
        except (JobError, ParamError, LookupError) as exc:
            from optuna.trial import TrialState

            S.failed_trial(self.conn, self.id, number, sampled,
                           {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}, system)  # fmt: skip
            self._told(trial, state=TrialState.FAIL)
            return
        self.active[number] = Active(trial, run_id)
        self.service.kick(ex)  # start it now, not at the service's next poll

    def _watch(self) -> None:
        if not self.active:
            return
        states = S.job_states(self.conn, [a.run_id for a in self.active.values()])
        prune = bool(self.options.get("prune"))
        for number, act in list(self.active.items()):
            state, error = states.get(act.run_id, (FAILED, {"ename": "JobLost",
                                                            "evalue": "the trial's job is gone"}))  # fmt: skip
            if prune and state in (RUNNING, FINISHED):
                self._report(act)
                if state == RUNNING and act.last_step is not None and act.trial.should_prune():
                    if self._prune(number, act):
                        continue
                    state, error = S.job_states(self.conn, [act.run_id])[act.run_id]
            if state in FINAL_JOB_STATES:
                self._tell(number, act, state, error)

    def _report(self, act: Active) -> None:
        for step, value in self.objective.curve(self.conn, act.run_id, act.last_step):
            if act.last_step is not None and step <= act.last_step:
                continue
            act.trial.report(value, step)
            act.last_step, act.last_value = step, value

    def _prune(self, number: int, act: Active) -> bool:
        """End the trial's job `pruned` and stop its kernel; False when its job ended first."""
        from ..store.jobs import transition

        reason = (f"pruned at step {act.last_step}: {self.objective.key} = {act.last_value:g} is worse than "
                  "the median of the earlier trials at that step")  # fmt: skip
        with self.store.write() as conn:
            job = transition(conn, act.run_id, PRUNED, error={"ename": "Pruned", "evalue": reason})
        if job is None:
            return False
        try:
            self.service.executor(job.executor).cancel(job)
        except Exception:  # the process may be gone already
            pass
        self._tell(number, act, PRUNED, None)
        return True

    def _tell(self, number: int, act: Active, state: str, error: dict[str, Any] | None) -> None:
        from optuna.trial import TrialState

        del self.active[number]
        if state == FINISHED:
            try:
                value = self.objective.value(self.conn, act.run_id)
            except NoObjective as exc:
                self._told(act.trial, state=TrialState.FAIL)
                S.set_trial(self.conn, self.id, number, FAILED,
                            error={"ename": "NoObjective", "evalue": str(exc)})  # fmt: skip
                self._note()
                return
            self._told(act.trial, value)
            S.set_trial(self.conn, self.id, number, FINISHED, value=value, step=act.last_step)
            best = self.row.get("best_value")
            if self.objective.better(value, best):
                S.update(self.conn, self.id, best_trial=number, best_run_id=act.run_id,
                         best_value=value)  # fmt: skip
                self.row["best_value"] = value
            return
        if state == PRUNED:
            self._told(act.trial, state=TrialState.PRUNED)
            S.set_trial(self.conn, self.id, number, PRUNED, step=act.last_step)
            return
        self._told(act.trial, state=TrialState.FAIL)
        S.set_trial(self.conn, self.id, number, CANCELLED if state == CANCELLED else FAILED,
                    error=self._why(act.run_id, state, error))  # fmt: skip

    def _told(self, trial: Any, value: float | None = None, state: Any = None) -> None:
        """study.tell, as the ask-and-tell loop outside study.optimize() may: GridSampler asks
        the study to stop once its grid is walked, which only optimize() allows. The trial is
        told all the same (Optuna stores the state in a `finally`); the budget is ours."""
        try:
            self.study.tell(trial, value, state=state)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise

    def _why(self, run_id: str, state: str, error: dict[str, Any] | None) -> dict[str, Any]:
        if error:
            return {"ename": error.get("ename"), "evalue": error.get("evalue")}
        from ..store.pipelines import last_failed_cell_error

        failed = last_failed_cell_error(self.conn, run_id)
        if failed:
            found = json.loads(failed)
            return {"ename": found.get("ename"), "evalue": found.get("evalue")}
        return {"ename": state, "evalue": f"the trial's job ended {state}"}

    def _note(self) -> None:
        missing = sum(
            1 for t in S.trials(self.conn, self.id)
            if t["status"] == FAILED and (t["error"] or {}).get("ename") == "NoObjective"
        )  # fmt: skip
        if missing:
            S.update(self.conn, self.id, note=(
                f"{missing} trial(s) reported no objective {self.objective.key!r}: they failed and "
                "the sweep went on (jupyter mlp sweep status shows why)"
            ))  # fmt: skip

    def _finish(self) -> str:
        row = S.get(self.conn, self.id)
        if row["best_trial"] is None:
            S.set_status(self.conn, self.id, FAILED, error={
                "ename": "NoObjective",
                "evalue": f"no trial reported the objective {self.objective.text}",
            })  # fmt: skip
            return FAILED
        S.set_status(self.conn, self.id, FINISHED)
        return FINISHED

    def _cancel_all(self) -> str:
        for act in self.active.values():
            from optuna.trial import TrialState

            self._told(act.trial, state=TrialState.FAIL)
        self.active.clear()
        _stop_trials(self.store, self.id, self.service)
        S.set_status(self.conn, self.id, CANCELLED)
        return CANCELLED


def run(store: Any, sweep_id: str, service: Any = None) -> str:
    return Driver(store, sweep_id, service).run()


# --- the detached process -----------------------------------------------------------------------


def spawn(home: Path, sweep_id: str) -> int:
    """Start the driver in its own process session (it outlives the terminal); its pid."""
    from ..execution.processes import spawn_detached

    log = Path(home) / "sweeps" / f"{sweep_id}.log"
    return spawn_detached("jupyter_mlp.sweeps.driver", [sweep_id], Path(home), log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jupyter_mlp.sweeps.driver")
    ap.add_argument("sweep_id")
    ap.add_argument("--home")
    args = ap.parse_args(argv)
    from ..store import Store

    status = run(Store(args.home), args.sweep_id)
    return 0 if status == FINISHED else 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["submit", "cancel", "run", "spawn", "Driver", "SweepError", "driver_alive"]
