"""The sweep driver: Optuna's ask-and-tell loop over our job queue.

    sweep_id = submit(store, "ab12", ["lr=log:1e-4..1e-1", "depth=3,5,8"], "max:val_acc",
                      trials=40, concurrency=4)          # checked, recorded, nothing queued yet
    Driver(store, sweep_id).run()                        # or spawn(store, sweep_id): detached

Each asked trial becomes an ordinary job run (a rerun of the template with the sampled values,
`sweep_id` set, parent = the template run). A new trial is asked as soon as one ends (not in
waves), up to the sweep's concurrency. With pruning, the objective metric's points are read from
the store while a trial runs and reported to the trial; when the pruner says so, the trial's job
ends `pruned` and its kernel is stopped.

The Optuna study lives in memory: our store is the record of the trials, and a driver that
starts again (`resume`) replays them into a new study (finished, pruned and failed trials as
told; trials whose jobs still run are adopted and watched on), then goes on to the budget.

    python -m jupyter_mlp.sweeps.driver SWEEP_ID [--home DIR]   drives one sweep, detached

A pipeline's sweep stage uses the same pieces: plan() checks its block as submit() checks the
CLI's options, record() records it, and the pipeline's own loop drives it (start(), then step()
each round) with a TrialSource that makes each trial a stage job and finds earlier runs of the
same computation (the cache).
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..execution.errors import JobError
from ..execution.processes import driver_alive
from ..model import (
    CANCELLED,
    FAILED,
    FINAL_JOB_STATES,
    FINISHED,
    PRUNED,
    RUNNING,
    JobRequest,
    close_names,
)
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
# this many trials that finished without the objective, and none with it: the sweep asks no more
# (a misnamed objective would spend the whole budget reporting nothing)
NO_OBJECTIVE_STOP = 3


# --- submitting ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """A checked sweep: what `submit` records and a pipeline's sweep stage runs."""

    space: Space
    objective: Objective
    sampler: str
    trials: int
    concurrency: int
    seed: int | None
    prune: bool
    prune_startup: int
    prune_warmup: int
    timeout: float | None
    note: str | None = None


def _cli_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_settings(
    *, trials: Any = None, concurrency: Any = 2, sampler: Any = "tpe", seed: Any = None,
    prune: Any = False, prune_startup: Any = PRUNE_STARTUP, prune_warmup: Any = 0,
    timeout: Any = None, flag: Callable[[str], str] = _cli_flag,
) -> None:  # fmt: skip
    """The checks of a sweep's settings that need neither the template nor the space."""
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        raise SweepError(
            "sweeps need Optuna, which is not installed: pip install 'jupyter-mlp[sweeps]'"
        )
    if sampler not in SAMPLERS:
        raise SweepError(f"{flag('sampler')} {sampler!r}: pick one of {', '.join(SAMPLERS)}",
                         "sampler")  # fmt: skip
    if trials is not None and (
        isinstance(trials, bool) or not isinstance(trials, int) or trials < 1
    ):
        raise SweepError(
            f"{flag('trials')} must be a whole number of at least 1 (got {trials!r})", "trials"
        )
    if trials is None and sampler != "grid":
        raise SweepError(
            f"{flag('trials')} is required (the grid sampler alone defaults to the grid's size)",
            "trials",
        )
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise SweepError(
            f"{flag('concurrency')} must be a whole number of at least 1 (got {concurrency!r})",
            "concurrency",
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SweepError(f"{flag('seed')} must be a whole number >= 0 (got {seed!r})", "seed")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise SweepError(
            f"{flag('timeout')} must be a number of seconds above 0 (got {timeout!r})", "timeout"
        )
    if not isinstance(prune, bool):
        raise SweepError(f"{flag('prune')} must be true or false (got {prune!r})", "prune")
    for option, value in (("prune_startup", prune_startup), ("prune_warmup", prune_warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SweepError(f"{flag(option)} must be a whole number >= 0 (got {value!r})",
                             option)  # fmt: skip


def plan(
    params: list[str] | dict[str, str], known: dict[str, Any], objective: Any, *,
    trials: Any = None, concurrency: Any = 2, sampler: Any = "tpe", seed: Any = None,
    prune: Any = False, prune_startup: Any = PRUNE_STARTUP, prune_warmup: Any = 0,
    timeout: Any = None, allow_new: bool = False, flag: Callable[[str], str] = _cli_flag,
) -> Plan:  # fmt: skip
    """Every check of a sweep's settings that needs no store beyond the template's parameters
    (`known`: name -> params.Known): the space, the objective, the budget, the sampler. The one
    definition for `jupyter mlp sweep`, `POST /sweeps` and a pipeline's `"sweep"` block; `flag`
    is how messages name a setting (`--trials`; a pipeline's `sweep.trials`). SweepError with
    `field` on the first problem."""
    check_settings(
        trials=trials, concurrency=concurrency, sampler=sampler, seed=seed, prune=prune,
        prune_startup=prune_startup, prune_warmup=prune_warmup, timeout=timeout, flag=flag,
    )  # fmt: skip
    space = parse_space(params, known, allow_new)
    try:
        goal = parse_objective(objective, flag("objective"))
    except SweepError as exc:
        exc.field = exc.field or "objective"
        raise
    if prune and not goal.has_curve:
        raise SweepError(
            f"{flag('prune')} needs a metric objective (the pruner reads its points while a "
            f"trial runs); {goal.text} is an output",
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
    return Plan(space, goal, sampler, trials, concurrency, seed, prune, prune_startup,
                prune_warmup, float(timeout) if timeout else None, note)  # fmt: skip


def first_point(space: Space) -> dict[str, Any]:
    """The values of the space's first point (fixed values included): a dry run's."""
    first = {n: d.value_of(_first(d)) for n, d in space.items() if d.searched}
    return {**fixed_values(space), **first}


def values_of(space: Space, sampled: dict[str, Any]) -> dict[str, Any]:
    """What a trial's notebook gets: the fixed values, then what the sampler chose."""
    return {
        **fixed_values(space),
        **{n: space[n].value_of(v) for n, v in sampled.items() if n in space},
    }


def record(
    conn: Any, the_plan: Plan, *, template_id: str, name: str, executor: str = "local",
    gpus: int | None = None, allow_new: bool = False, kernel: str | None = None,
    options: dict[str, Any] | None = None, owner: str | None = None,
) -> str:  # fmt: skip
    """Record a checked sweep (`queued`); its id. `options`: more for the sweep's options
    (a pipeline stage's sweep names its pipeline run and stage there); owner: who runs it
    (None: this process's user), and so the owner of its trials."""
    p = the_plan
    sweep_id = S.create(
        conn, name=name, template_id=template_id, space=space_json(p.space),
        objective=p.objective.as_json(), sampler=p.sampler,
        seed=p.seed if p.seed is not None else random.randrange(2**31), budget=p.trials,
        timeout_s=p.timeout, concurrency=p.concurrency, executor=executor, gpus=gpus,
        options={"prune": p.prune, "prune_startup": p.prune_startup,
                 "prune_warmup": p.prune_warmup, "allow_new": bool(allow_new), "kernel": kernel,
                 **(options or {})},
        owner=owner,
    )  # fmt: skip
    if p.note:
        S.update(conn, sweep_id, note=p.note)
    return sweep_id


def submit(
    store: Any, template: str, params: list[str] | dict[str, str], objective: str, *,
    trials: int | None = None, concurrency: int = 2, sampler: str = "tpe", seed: int | None = None,
    prune: bool = False, prune_startup: int = PRUNE_STARTUP, prune_warmup: int = 0,
    timeout: float | None = None, executor: str = "local", gpus: int | None = None,
    allow_new: bool = False, kernel: str | None = None, name: str | None = None,
    owner: str | None = None, flag: Callable[[str], str] = _cli_flag,
) -> str:  # fmt: skip
    """Check everything and record the sweep (`queued`); returns its id. SweepError (or
    RunNotFound) on bad input, before anything is queued. owner: who runs it (None: this
    process's user). flag: how messages name a setting (`--trials`; the REST body's `trials`)."""
    from ..execution.submit import prepare_rerun
    from ..store import runs as run_store

    check_settings(  # before the template: the cheap refusals first
        trials=trials, concurrency=concurrency, sampler=sampler, seed=seed, prune=prune,
        prune_startup=prune_startup, prune_warmup=prune_warmup, timeout=timeout, flag=flag,
    )  # fmt: skip
    conn = store.connect()
    template_id = run_store.resolve_id(conn, template)
    known = template_parameters(conn, store.blobs, template_id)
    the_plan = plan(
        params, known, objective, trials=trials, concurrency=concurrency, sampler=sampler,
        seed=seed, prune=prune, prune_startup=prune_startup, prune_warmup=prune_warmup,
        timeout=timeout, allow_new=allow_new, flag=flag,
    )  # fmt: skip
    # A dry rerun with the first point of the space: a snapshot, kernel, type or GPU problem is
    # said now, with the rerun's own words, not by every trial.
    try:
        request = prepare_rerun(
            conn, store.blobs, template_id, first_point(the_plan.space), executor=executor,
            gpus=gpus, allow_new=allow_new, kernel=kernel,
        )  # fmt: skip
        from ..execution.registry import EXECUTORS

        EXECUTORS.get(executor)  # one not installed: the registry's JobError names those that are
        if executor == "local":  # the others need their settings (a scheduler) to check
            EXECUTORS.create(executor, store).validate(request)
    except (JobError, ParamError) as exc:
        raise SweepError(str(exc)) from None
    template_row = run_store.get_run(conn, template_id, with_cells=False)
    check_objective_seen(template_row, the_plan.objective)
    return record(
        conn, the_plan, template_id=template_id, name=name or f"{template_row['name'] or 'run'} sweep",
        executor=executor, gpus=gpus, allow_new=allow_new, kernel=kernel, owner=owner,
    )  # fmt: skip


def logged_names(template: dict[str, Any], objective: Any) -> set[str]:
    """What the template run logged that the objective could read: its metrics, its outputs."""
    seen = set()
    if objective.source != "output":
        seen |= set(template.get("metrics") or {})
    if objective.source != "metric":
        seen |= {o["name"] for o in template.get("outputs") or []}
    return seen


def check_objective_seen(template: dict[str, Any], objective: Any) -> None:
    """A misspelt objective is refused now, not once every trial has run without it: a name the
    template run never logged (as a metric or an output, as the objective reads it) that is
    close to one it did. Another name passes (a notebook may log it only with some values; if
    the first trials report none, the sweep stops: NO_OBJECTIVE_STOP)."""
    seen = logged_names(template, objective)
    if not seen or objective.key in seen:
        return
    close = close_names(objective.key, sorted(seen))
    if close:
        raise SweepError(
            f"--objective {objective.text!r}: the template run {template['id']} never logged "
            f"{objective.key!r} (it logged: {', '.join(sorted(seen))}); did you mean {close[0]!r}?",
            "objective",
        )


def _first(d: Any) -> Any:
    from .space import CHOICE

    if d.kind == CHOICE:
        return 0 if d._by_index() else d.choices[0]
    return d.low


def deadline(sweep: dict[str, Any]) -> float | None:
    """When the sweep's --timeout ends (counted from its first start); None: no timeout."""
    timeout = sweep.get("timeout_s")
    return (sweep.get("started_at") or 0.0) + timeout if timeout else None


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


class TrialSource(Protocol):
    """How the trials of a sweep run when it is part of something else (a pipeline's sweep
    stage): each trial's job, and the cache (an earlier finished run of the same computation,
    whose outcome the trial reuses instead of running again)."""

    def request(self, values: dict[str, Any], name: str) -> JobRequest: ...

    def cache_key(self, values: dict[str, Any]) -> str | None: ...

    def cached(self, key: str) -> str | None: ...


class Driver:
    def __init__(
        self, store: Any, sweep_id: str, service: Any = None, poll: float = POLL_S,
        trials: TrialSource | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.trials = trials
        self.id = sweep_id
        self.poll = poll
        self.conn = store.connect()
        row = S.get(self.conn, sweep_id)
        self.row = row
        self.space: Space = space_from_json(row["space"])
        self.objective = Objective.from_json(row["objective"])
        self.options = row["options"] or {}
        self.distributions = {n: d.distribution() for n, d in self.space.items() if d.searched}
        self.active: dict[int, Active] = {}
        self.asked = 0
        self.missing: tuple[int, str] = (0, "")  # trials with no objective; the last one's why
        self._unseen: bool | None = None  # whether the template run never logged the objective
        self._own_service = service is None
        self._service = service

    @property
    def service(self) -> Any:
        if self._service is None:
            from ..execution.service import driver_service

            self._service = driver_service(self.store, self.row["concurrency"])
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
        # the budget is spent on trials that ran: those a cancel stopped are asked again
        self.asked = sum(1 for row in rows if row["status"] != CANCELLED)

    # --- running --------------------------------------------------------------------------------

    def run(self) -> str:
        """Drive the sweep to its end (here, blocking); its final status."""
        self.conn = self.store.connect()  # this thread's connection (see pipelines.dag.Driver)
        try:
            if self.options.get("pipeline_run_id") and self.trials is None:
                return self._refuse_pipeline_stage()
            taken = self.start()
            if taken is not None:
                return taken
            while True:
                if self.store.gone():
                    print(f"sweep {self.id}: its store {self.store.path} was removed; leaving",
                          file=sys.stderr)  # fmt: skip
                    return FAILED
                status = self.step()
                if status is not None:
                    return status
                time.sleep(self.poll)
        except BaseException as exc:
            self.fail(exc)
            raise
        finally:
            if self._own_service and self._service is not None:
                self._service.stop()

    def start(self) -> str | None:
        """Take the sweep (running, driven by this process) and replay its trials; None when
        taken, else the status that refused it (cancelled, finished, ...). With step(), what a
        caller with a loop of its own (a pipeline) drives the sweep by."""
        pid, host = os.getpid(), socket.gethostname()
        if not S.set_status(self.conn, self.id, RUNNING, pid=pid, host=host):
            return str(S.get(self.conn, self.id)["status"])
        self.row = S.get(self.conn, self.id)
        self._replay()
        return None

    def step(self) -> str | None:
        """One round: the running trials watched, free slots filled; the final status once
        the sweep ended (finished, failed, cancelled), else None."""
        if S.get(self.conn, self.id)["status"] == CANCELLING:
            return self._cancel_all()
        if self._service is not None:
            self._service.take_over()  # the service that started our trials may have ended
        self._watch()
        self._fill()
        if not self.active and not self._may_ask():
            return self._finish()
        return None

    def fail(self, exc: BaseException) -> None:
        S.set_status(self.conn, self.id, FAILED,
                     error={"ename": type(exc).__name__, "evalue": str(exc)[:2000]})  # fmt: skip

    def cancel(self) -> str:
        """Stop every running trial now (the caller's own cancel); the sweep ends cancelled."""
        return self._cancel_all()

    def _refuse_pipeline_stage(self) -> str:
        """A pipeline stage's sweep runs only inside its pipeline's driver (its trials are stage
        jobs with the pipeline's inputs): driven alone (a server that starts, `sweep resume`),
        it says so and ends failed; the pipeline's `--resume` runs the stage again, reusing
        every trial that finished."""
        pid, stage = self.options["pipeline_run_id"], self.options.get("stage")
        S.set_status(self.conn, self.id, FAILED, error={
            "ename": "PipelineStage",
            "evalue": f"this sweep is stage {stage!r} of pipeline run {pid}, whose driver is "
            f"gone; run the pipeline again with --resume {pid} (finished trials are reused)",
        })  # fmt: skip
        return FAILED

    def _deadline(self) -> float | None:
        return deadline(self.row)

    def _may_ask(self) -> bool:
        if self.asked >= self.row["budget"]:
            return False
        if self.missing[0] >= NO_OBJECTIVE_STOP and self.row.get("best_value") is None:
            if self._objective_unseen():  # a misnamed objective: no more budget spent on it
                return False
        deadline = self._deadline()
        return deadline is None or time.time() < deadline

    def _objective_unseen(self) -> bool:
        """Whether the template run never logged the objective either (so a trial that reports
        none is the rule, not a value that happened to log nothing)."""
        if self._unseen is None:
            from ..store import runs as run_store

            template = run_store.get_run(self.conn, self.row["template_id"], with_cells=False)
            self._unseen = self.objective.key not in logged_names(template, self.objective)
        return self._unseen

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
        values = values_of(self.space, sampled)
        name = f"{self.row['name']} #{number}"
        try:
            if self.trials is not None:
                key = self.trials.cache_key(values)
                if key is not None:
                    system["cache_key"] = key
                    earlier = self.trials.cached(key)
                    if earlier is not None:
                        self._reuse(trial, number, earlier, sampled, system)
                        return
                request = self.trials.request(values, name)
            else:
                request = prepare_rerun(
                    self.conn, self.store.blobs, self.row["template_id"], values,
                    executor=self.row["executor"], gpus=self.row["gpus"],
                    allow_new=bool(self.options.get("allow_new")),
                    kernel=self.options.get("kernel"), name=name, owner=self.row.get("owner"),
                )  # fmt: skip
            ex = self.service.executor(request.executor)
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

    def _reuse(
        self, trial: Any, number: int, run_id: str, sampled: dict[str, Any],
        system: dict[str, Any],
    ) -> None:  # fmt: skip
        """A cache hit: the trial is the earlier run (no job), told at once with the objective
        read from that run (its metric's points reported first, for the pruner)."""
        S.reuse_trial(self.conn, self.id, number, run_id, sampled, {**system, "cached": True})
        act = self.active[number] = Active(trial, run_id)
        if self.options.get("prune"):
            self._report(act)
        self._tell(number, act, FINISHED, None)

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
                self._note(str(exc))
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

    def _note(self, why: str) -> None:
        missing = sum(
            1 for t in S.trials(self.conn, self.id)
            if t["status"] == FAILED and (t["error"] or {}).get("ename") == "NoObjective"
        )  # fmt: skip
        self.missing = (missing, why)
        if missing:
            S.update(self.conn, self.id, note=(
                f"{missing} trial(s) reported no objective {self.objective.key!r}: they failed and "
                "the sweep went on (jupyter mlp sweep status shows why)"
            ))  # fmt: skip

    def _finish(self) -> str:
        row = S.get(self.conn, self.id)
        if row["best_trial"] is None:
            evalue = f"no trial reported the objective {self.objective.text}"
            if self.missing[0] >= NO_OBJECTIVE_STOP and self.asked < row["budget"]:
                evalue = (
                    f"the first {self.missing[0]} trials reported no objective "
                    f"{self.objective.text} (the last: {self.missing[1]}); the sweep stopped "
                    f"there, {row['budget'] - self.asked} of its {row['budget']} trials unspent: "
                    "check --objective"
                )
            S.set_status(self.conn, self.id, FAILED, error={"ename": "NoObjective",
                                                            "evalue": evalue})  # fmt: skip
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


def spawn(store: Any, sweep_id: str) -> int:
    """Start the driver of `store`'s sweep in its own process session (it outlives the
    terminal); its pid."""
    from ..execution.processes import spawn_detached

    log = Path(store.home) / "sweeps" / f"{sweep_id}.log"
    return spawn_detached("jupyter_mlp.sweeps.driver", [sweep_id], store, log)


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
