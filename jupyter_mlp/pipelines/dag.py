"""The DAG runner: a stage starts as soon as its inputs exist, cached stages are reused, a failure
skips what depends on it while independent branches finish; retries, resume and cancel.

The runner is a loop over the store (the pipeline run's stages and their runs), so the same code
drives a pipeline from the CLI, from a detached driver process started by the server, or in a
test thread, and a pipeline's state is always what the store says."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..execution.errors import JobError
from ..model import CANCELLED, FAILED, FINISHED, INTERRUPTED, LOST, QUEUED, RUNNING
from ..params import ParamError
from ..store import pipelines as P
from ..store import runs as run_store
from ..store.blobs import BlobNotFound
from ..store.db import ChangeWatcher
from ..store.templates import output_row
from ..store.transitions import (
    CACHED,
    CANCELLING,
    PENDING,
    SKIPPED,
    SUCCEEDED,
)
from . import spec as S
from . import sweep_stage
from .cache import cache_key, code_of
from .validate import PATH, errors, executor_problem, template, validate

POLL_S = 0.02
WAIT_S = 0.25  # the longest a round waits when nothing is written to the store
FAILED_RUN = frozenset((FAILED, LOST, INTERRUPTED, CANCELLED))


class PipelineError(ValueError):
    pass


def submit(
    store: Any, spec: dict[str, Any], path: str | None = None, params: dict[str, Any] | None = None,
    executor: str = "local", no_cache: bool = False, resume: str | None = None,
    concurrency: int | None = None, base: str | Path | None = None, owner: str | None = None,
) -> str:  # fmt: skip
    """Validate and record a pipeline run (queued); returns its id. Raises PipelineError with
    every validation error when the spec cannot run. owner: who runs it (None: this process's
    user); its stage jobs and sweeps are that owner's too."""
    conn = store.connect()
    given = dict(params or {})
    declared = spec.get("parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise PipelineError(
            f"unknown pipeline parameter(s) {', '.join(unknown)}; the pipeline has: {', '.join(sorted(declared)) or 'none'}"
        )
    resolved_params = {**declared, **given}
    why = executor_problem(executor)
    if why:  # refused before anything is queued, as a rerun refuses it
        raise PipelineError(why)
    base = Path(base) if base is not None else (Path(path).resolve().parent if path else None)
    problems = errors(validate({**spec, "parameters": resolved_params}, conn, store.blobs, base))
    if problems:
        raise PipelineError(
            "the pipeline cannot run:\n" + "\n".join(f"  - {i.message}" for i in problems)
        )
    options: dict[str, Any] = {"no_cache": bool(no_cache), "base": str(base) if base else None}
    if concurrency:
        options["concurrency"] = int(concurrency)
    if resume:
        previous = P.get(conn, resume)  # raises PipelineRunNotFound
        theirs, ours = (previous["path"], path) if previous["path"] and path else (
            previous["name"], spec.get("name"))  # fmt: skip
        if theirs != ours:  # its stages' runs would feed this pipeline's stages of the same name
            raise PipelineError(
                f"pipeline run {previous['id']} is a run of {theirs}, not of {ours}: --resume "
                "takes a run of the same pipeline"
            )
        options["resumed_from"] = previous["id"]
    return P.create(
        conn, spec, S.version_hash(spec), path, resolved_params, executor, options, owner=owner
    )


def cancel(store: Any, pipeline_run_id: str) -> None:
    """Ask the driver to stop everything (it cancels the running stage jobs); with no driver
    left on this machine (the terminal that drove it closed, its command killed), do that here,
    or the run would stay `cancelling` for good."""
    from ..execution.processes import driver_alive

    conn = store.connect()
    run = P.get(conn, pipeline_run_id)
    if run["status"] in P.FINAL_PIPELINE:
        return
    P.set_status(conn, pipeline_run_id, CANCELLING)
    if run["status"] != QUEUED and not driver_alive(run):
        from ..execution.service import JobService

        service = JobService(store, warm=False, dispatch=False)
        try:
            _cancel_stages(store, pipeline_run_id, run["stages"], service)
        finally:
            service.stop()


def _cancel_stages(
    store: Any, pipeline_run_id: str, stages: dict[str, dict[str, Any]], service: Any
) -> None:
    """Stop the stages' running jobs (and sweeps whose driver is gone), then mark every stage
    not yet ended and the run `cancelled`."""
    from ..store import sweeps as sweep_store
    from ..sweeps.driver import cancel as cancel_sweep

    conn = store.connect()
    for sweep in sweep_store.of_pipeline(conn, pipeline_run_id).values():
        try:
            cancel_sweep(store, sweep["id"], service)
        except Exception:  # it may have ended meanwhile
            pass
    for name in _finished_jobs(conn, stages):  # ended well before the cancel could stop them
        P.set_stage(conn, pipeline_run_id, name, SUCCEEDED)
        stages = {**stages, name: {**stages[name], "status": SUCCEEDED}}
    for name, stage in stages.items():
        if stage["status"] in (QUEUED, RUNNING) and stage["run_id"]:
            try:
                service.cancel(stage["run_id"], wait=True)
            except Exception:  # the job may have ended meanwhile
                pass
        if stage["status"] not in P.FINAL_STAGE:
            P.set_stage(conn, pipeline_run_id, name, CANCELLED)
    P.set_status(conn, pipeline_run_id, CANCELLED)


def _finished_jobs(conn: Any, stages: dict[str, dict[str, Any]]) -> set[str]:
    """The stages still queued or running in the pipeline run whose job has in fact finished
    (its driver did not see it end, or not yet)."""
    open_ = {n: s["run_id"] for n, s in stages.items() if s["status"] in (QUEUED, RUNNING)
             and s["run_id"]}  # fmt: skip
    outcomes = P.stage_run_outcomes(conn, list(open_.values()))
    return {n for n, run_id in open_.items() if outcomes.get(run_id, (None,))[0] == FINISHED}


class Driver:
    def __init__(
        self, store: Any, pipeline_run_id: str, service: Any = None, poll: float = POLL_S
    ) -> None:
        self.store = store
        self.id = pipeline_run_id
        self.poll = poll
        self.conn = store.connect()
        run = P.get(self.conn, pipeline_run_id)
        self.spec = run["spec"]
        self.params = run["params"]
        self.executor = run["executor"]
        self.owner = run.get("owner")  # its stages' jobs and sweeps are the pipeline run's owner's
        self.options = run["options"] or {}
        self.base = Path(self.options["base"]) if self.options.get("base") else None
        self.deps = S.dependencies(self.spec)
        self.stages = S.stages(self.spec)
        self._own_service = service is None
        self.service = service or self._make_service()
        self._kernels: dict[str, str] = {}
        self._key_parts: dict[str, tuple[list[str], str | None]] = {}
        self._sweeps: dict[str, Any] = {}  # stage -> its running sweeps.driver.Driver
        self._reserved: dict[str, int] = {}
        self._reserved_at = 0.0

    def _make_service(self) -> Any:
        from ..execution.service import driver_service

        return driver_service(self.store, self.options.get("concurrency"))

    # --- the loop ----------------------------------------------------------------------------------

    def run(self) -> str:
        # the store gives each thread its connection: this one is the running thread's, also
        # for a driver made in another thread (which may go on writing through its own)
        self.conn = self.store.connect()
        P.set_status(self.conn, self.id, RUNNING, pid=os.getpid(), host=os.uname().nodename)
        watcher = ChangeWatcher(self.store.path)
        try:
            self._resume_from(self.options.get("resumed_from"))
            while True:
                if self.store.gone():
                    print(f"pipeline run {self.id}: its store {self.store.path} was removed; "
                          "leaving", file=sys.stderr)  # fmt: skip
                    return FAILED
                version = watcher.version()  # before the reads: no write slips between
                status = P.get(self.conn, self.id)
                if status["status"] == CANCELLING:
                    return self._cancel_all(status["stages"])
                stages = status["stages"]
                self.service.take_over()  # the service that started our jobs may have ended
                self._watch(stages)
                self._watch_sweeps(stages)
                self._start_ready(stages)
                self._prespawn(stages)
                stages = P.get(self.conn, self.id)["stages"]
                if all(s["status"] in P.FINAL_STAGE for s in stages.values()):
                    final = (
                        SUCCEEDED
                        if all(s["status"] in P.DONE_STAGE for s in stages.values())
                        else FAILED
                    )
                    P.set_status(self.conn, self.id, final)
                    return final
                # the next round as soon as a job (or anything) wrote to the store
                watcher.wait(version, max(self.poll, WAIT_S))
        except Exception as exc:
            P.set_status(
                self.conn,
                self.id,
                FAILED,
                error={"ename": type(exc).__name__, "evalue": str(exc)},
            )
            raise
        finally:
            watcher.close()
            if self._own_service:
                self.service.stop()

    def _resume_from(self, previous_id: str | None) -> None:
        """Stages that succeeded (or were cached) in the earlier run are reused as they are, and
        so are those whose job finished after that run's driver was gone (it never saw them end:
        the terminal that drove it was killed)."""
        if not previous_id:
            return
        previous = P.get(self.conn, previous_id)
        finished = _finished_jobs(self.conn, previous["stages"])
        for name, stage in previous["stages"].items():
            done = stage["status"] in P.DONE_STAGE or name in finished
            if name in self.stages and done and stage["run_id"]:
                P.set_stage(self.conn, self.id, name, CACHED, run_id=stage["run_id"],
                            cached_from=stage["cached_from"] or previous_id, cache_key=stage["cache_key"],
                            params=stage["params"])  # fmt: skip

    def _watch(self, stages: dict[str, dict[str, Any]]) -> None:
        active = {
            name: s
            for name, s in stages.items()
            if s["status"] in (QUEUED, RUNNING) and name not in self._sweeps
        }
        if not active:
            return
        ids = [s["run_id"] for s in active.values()]
        # A stage's run is a job: it is done when the job is, not when a `%mlp_track stop`
        # inside the notebook wrote `finished` into the run while the job still runs.
        rows = P.stage_run_outcomes(self.conn, ids)
        for name, stage in active.items():
            status, error = rows.get(stage["run_id"], (LOST, None))
            if status == RUNNING and stage["status"] == QUEUED:
                P.set_stage(self.conn, self.id, name, RUNNING)
            elif status == FINISHED:
                P.set_stage(self.conn, self.id, name, SUCCEEDED)
            elif status in FAILED_RUN:
                retries = self.stages[name].get("retries", 0) or 0
                if stage["attempt"] < retries:
                    self._submit(
                        name,
                        stage["params"] or {},
                        stage["cache_key"],
                        attempt=stage["attempt"] + 1,
                    )
                else:
                    P.set_stage(
                        self.conn,
                        self.id,
                        name,
                        FAILED,
                        error=self._why(stage["run_id"], status, error),
                    )

    def _prespawn(self, stages: dict[str, dict[str, Any]]) -> None:
        """Warm kernels for the stages that come next, while earlier ones run: queued stages and
        the DAG's next two frontiers (pending stages whose upstream is all queued, running, done
        or in the frontier before), local and GPU-less (cards are handed out at start; a GPU
        stage starts its own kernel). Two frontiers: a short stage ends before a kernel started
        for the stage after it could be ready."""
        soon = {n for n, s in stages.items() if s["status"] in (QUEUED, RUNNING)}
        soon |= {n for n, s in stages.items() if s["status"] in P.DONE_STAGE}
        frontiers: set[str] = set()
        for _ in range(2):
            ready = {
                name
                for name, stage in stages.items()
                if stage["status"] == PENDING
                and name not in frontiers
                and all(d in soon or d in frontiers for d in self.deps.get(name, ()) if d in stages)
            }
            frontiers |= ready
        coming: dict[str, int] = {}
        queued: dict[str, int] = {}  # of which queued now: the jobs that start next
        for name, stage in stages.items():
            conf = self.stages[name]
            if (conf.get("executor") or self.executor) != "local" or conf.get("gpus"):
                continue
            sweeping = sweep_stage.is_sweep(conf)
            if stage["status"] == PENDING:
                if name not in frontiers:
                    continue
            elif stage["status"] != QUEUED and not (sweeping and stage["status"] == RUNNING):
                continue
            kernel = self._kernel(name)
            coming[kernel] = coming.get(kernel, 0) + (
                sweep_stage.concurrency(conf) if sweeping else 1
            )
            if stage["status"] == QUEUED:
                queued[kernel] = queued.get(kernel, 0) + 1
        slots = int(self.options.get("concurrency") or 2)
        want = {k: min(n, 2 * slots) for k, n in coming.items()}  # two frontiers at most
        now = time.monotonic()
        if want != self._reserved or now - self._reserved_at > 60:
            for kernel in set(want) | set(self._reserved):
                self.service.reserve("local", kernel, want.get(kernel, 0), queued.get(kernel, 0))
            self._reserved, self._reserved_at = want, now

    def _kernel(self, name: str) -> str:
        """The kernel a stage's job will run in: its own setting, its template run's, its
        notebook's kernelspec; python3 when none says."""
        if name not in self._kernels:
            conf, kernel = self.stages[name], None
            tmpl = conf.get("template") or {}
            try:
                if conf.get("kernel"):
                    kernel = conf["kernel"]
                elif tmpl.get("run"):
                    kernel = run_store.get_run(self.conn, tmpl["run"], with_cells=False)["kernel"]
                elif tmpl.get("notebook"):
                    path = Path(self.base or ".") / tmpl["notebook"]
                    nb = json.loads(path.read_text(encoding="utf-8"))
                    kernel = nb["metadata"]["kernelspec"]["name"]
            except (LookupError, OSError, ValueError, TypeError):
                kernel = None
            self._kernels[name] = str(kernel or "python3")
        return self._kernels[name]

    def _why(self, run_id: str, status: str, error: str | None) -> dict[str, Any]:
        """The run's error, else its failing cell's, else the status it ended with."""
        if error:
            return json.loads(error)
        failed = P.last_failed_cell_error(self.conn, run_id)
        if failed:
            found = json.loads(failed)
            return {"ename": found.get("ename"), "evalue": found.get("evalue")}
        return {"ename": status, "evalue": f"the stage's run ended {status}"}

    def _start_ready(self, stages: dict[str, dict[str, Any]]) -> None:
        for name, stage in stages.items():
            if stage["status"] != PENDING:
                continue
            upstream = [stages[d] for d in self.deps.get(name, ()) if d in stages]
            if any(u["status"] in (FAILED, SKIPPED, CANCELLED) for u in upstream):
                blocked = sorted(
                    d
                    for d in self.deps[name]
                    if stages[d]["status"] in (FAILED, SKIPPED, CANCELLED)
                )
                P.set_stage(self.conn, self.id, name, SKIPPED,
                            error={"ename": "Skipped", "evalue": f"upstream {', '.join(blocked)} did not succeed"})  # fmt: skip
                stages[name]["status"] = SKIPPED
                continue
            if not all(u["status"] in P.DONE_STAGE for u in upstream):
                continue
            sweep = sweep_stage.is_sweep(self.stages[name])
            try:
                params, key_params = self._resolve(name, stages)
                key = self._cache_key(
                    name,
                    sweep_stage.key_params(key_params, self.stages[name]) if sweep else key_params,
                )
            except (PipelineError, BlobNotFound, ParamError) as exc:
                P.set_stage(
                    self.conn,
                    self.id,
                    name,
                    FAILED,
                    error={"ename": type(exc).__name__, "evalue": str(exc)},
                )
                stages[name]["status"] = FAILED
                continue
            hit = self._cached(key) if self._use_cache(name) else None
            if hit is not None:
                if sweep:  # the earlier sweep's best run: what it was given
                    params = {**params, **self._swept_values(name, hit["run_id"])}
                P.set_stage(self.conn, self.id, name, CACHED, run_id=hit["run_id"],
                            cached_from=hit["pipeline_run_id"], cache_key=key, params=params)  # fmt: skip
                stages[name]["status"] = CACHED
                stages[name]["run_id"] = hit["run_id"]
                continue
            if sweep:
                self._start_sweep(name, params, key_params, key)
            else:
                self._submit(name, params, key)
            stages[name]["status"] = QUEUED

    def _use_cache(self, name: str) -> bool:
        return bool(self.stages[name].get("cache", True)) and not self.options.get("no_cache")

    def _cached(self, key: str) -> dict[str, Any] | None:
        """An earlier finished run with this cache key: a stage's, else a sweep trial's (a
        plain stage and a trial with the same notebook code, values and kernel are one
        computation). {run_id, pipeline_run_id} or None."""
        from ..store import sweeps as sweep_store

        hit = P.cached_stage(self.conn, key)
        if hit is not None:
            return hit
        run_id = sweep_store.cached_trial_run(self.conn, key)
        if run_id is None:
            return None
        run = run_store.get_run(self.conn, run_id, with_cells=False)
        return {"run_id": run_id, "pipeline_run_id": run.get("pipeline_run_id")}

    def _job(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """The settings of a stage's job (and of each trial of a sweep stage): executor, GPUs,
        kind, its inputs and papermill options, kernel, working directory."""
        stage = self.stages[name]
        common = dict(
            executor=stage.get("executor") or self.executor, gpus=stage.get("gpus", 0),
            kind="stage", pipeline_run_id=self.id, stage=name,
            name=f"{self.spec.get('name') or 'pipeline'}:{name}", owner=self.owner,
        )  # fmt: skip
        inputs = self._inputs(params)
        options: dict[str, Any] = {}
        if inputs:  # a remote worker fetches these over HTTP (it may not see this disk)
            options["inputs"] = inputs
        if isinstance(stage.get("papermill"), dict):  # checked when submitted (below)
            from ..execution.papermill_options import KEY, PATHS

            papermill = dict(stage["papermill"])
            for option in PATHS:  # relative files: the pipeline's folder
                if isinstance(papermill.get(option), str):
                    papermill[option] = str(Path(self.base or ".") / papermill[option])
            options[KEY] = papermill
        if options:
            common["options"] = options
        for setting in ("kernel", "cwd"):  # how the stage's job runs (default: as its template)
            if stage.get(setting):
                common[setting] = stage[setting]
        if common.get("cwd"):
            common["cwd"] = str(Path(self.base or ".") / common["cwd"])
        if stage.get("allow_new_params"):
            common["allow_new"] = True
        return common

    def _notebook(self, name: str) -> Path:
        return Path(self.base or ".") / self.stages[name]["template"]["notebook"]

    def _submit(self, name: str, params: dict[str, Any], key: str | None, attempt: int = 0) -> None:
        tmpl = self.stages[name]["template"]
        common = self._job(name, params)
        try:
            if tmpl.get("run"):
                run_id = self.service.submit_rerun(tmpl["run"], params, **common)
            else:
                run_id = self.service.submit_notebook(
                    self._notebook(name), params, project=self.spec.get("project"), **common
                )
        except (JobError, ParamError, LookupError) as exc:
            P.set_stage(
                self.conn,
                self.id,
                name,
                FAILED,
                error={"ename": type(exc).__name__, "evalue": str(exc)},
            )
            return
        P.set_stage(
            self.conn,
            self.id,
            name,
            QUEUED,
            run_id=run_id,
            cache_key=key,
            params=params,
            attempt=attempt,
        )

    # --- sweep stages ------------------------------------------------------------------------------

    def _start_sweep(
        self, name: str, params: dict[str, Any], key_params: dict[str, Any], key: str
    ) -> None:
        """Record the stage's sweep and take it: its trials are stage jobs with the stage's
        parameters and the sampled values, driven by this loop (_watch_sweeps)."""
        from ..store import sweeps as sweep_store
        from ..sweeps.driver import Driver as SweepDriver
        from ..sweeps.driver import record

        stage = self.stages[name]
        tmpl = stage["template"]
        sweep_id = None
        try:
            found = template(self.conn, self.store.blobs, tmpl, self.base)
            if isinstance(found, str):
                raise PipelineError(f"stage {name!r}: {found}")
            the_plan = sweep_stage.stage_plan(
                name, stage, sweep_stage.known_parameters(self.conn, self.store.blobs, found)
            )
            job = self._job(name, params)
            sweep_id = record(
                self.conn, the_plan,
                template_id=tmpl.get("run") or str(self._notebook(name).resolve()),
                name=f"{job['name']} sweep", executor=job["executor"], gpus=job["gpus"],
                allow_new=bool(job.get("allow_new")), kernel=job.get("kernel"),
                options={"pipeline_run_id": self.id, "stage": name}, owner=self.owner,
            )  # fmt: skip
            code, kernel = self._parts(name)
            trials = StageTrials(self, name, params, key_params, code, kernel)
            driver = SweepDriver(self.store, sweep_id, self.service, self.poll, trials=trials)
            refused = driver.start()
            if refused is not None:
                raise PipelineError(f"stage {name!r}: its sweep {sweep_id} is {refused}")
        except Exception as exc:  # a sweep that cannot start fails its stage, not the pipeline
            error = {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}
            if sweep_id is not None:
                sweep_store.set_status(self.conn, sweep_id, FAILED, error=error)
            P.set_stage(self.conn, self.id, name, FAILED, error=error)
            return
        self._sweeps[name] = driver
        P.set_stage(self.conn, self.id, name, QUEUED, cache_key=key, params=params)

    def _watch_sweeps(self, stages: dict[str, dict[str, Any]]) -> None:
        """One round of each running sweep; a sweep that ended ends its stage: succeeded with
        the best trial's run (its outputs are the stage's), or failed with why."""
        from ..store import sweeps as sweep_store

        for name, driver in list(self._sweeps.items()):
            try:
                status = driver.step()
            except Exception as exc:  # a broken sweep fails its stage, not the pipeline
                driver.fail(exc)
                status = FAILED
            stage = stages[name]
            if status is None:
                if stage["status"] == QUEUED and sweep_store.counts(self.conn, driver.id):
                    P.set_stage(self.conn, self.id, name, RUNNING)
                continue
            del self._sweeps[name]
            row = sweep_store.get(self.conn, driver.id)
            if status == FINISHED and row["best_run_id"]:
                best = row["best_run_id"]
                params = {**(stage["params"] or {}), **self._swept_values(name, best)}
                P.set_stage(self.conn, self.id, name, SUCCEEDED, run_id=best, params=params)
            elif status == CANCELLED:
                P.set_stage(self.conn, self.id, name, CANCELLED, error={
                    "ename": "Cancelled", "evalue": f"its sweep {driver.id} was cancelled"})  # fmt: skip
            else:
                P.set_stage(self.conn, self.id, name, FAILED, error=self._sweep_failure(row))

    def _sweep_failure(self, row: dict[str, Any]) -> dict[str, Any]:
        """Why a sweep found no best trial: how many trials failed, and the first one's error."""
        from ..store import sweeps as sweep_store

        trials = sweep_store.trials(self.conn, row["id"])
        failed = [t for t in trials if t["status"] != FINISHED]
        first = next((t["error"] for t in failed if t["error"]), None) or row["error"] or {}
        reason = f"{first.get('ename')}: {first.get('evalue')}" if first else "no reason given"
        return {
            "ename": "SweepFailed",
            "evalue": f"sweep {row['id']}: no trial reported the objective "
            f"{(row['objective'] or {}).get('text')} ({len(failed)} of {len(trials)} trials "
            f"failed; the first: {reason})",
        }

    def _swept_values(self, name: str, run_id: str) -> dict[str, Any]:
        """The values run `run_id` (a sweep stage's best trial) got for the swept parameters."""
        from ..store.records import params_of

        swept = (self.stages[name].get("sweep") or {}).get("params") or {}
        got = params_of(self.conn, [run_id]).get(run_id, {})
        return {k: got[k] for k in swept if k in got}

    def _cancel_all(self, stages: dict[str, dict[str, Any]]) -> str:
        for name, driver in list(self._sweeps.items()):
            try:
                driver.cancel()
            except Exception:  # its trials may have ended meanwhile
                pass
            del self._sweeps[name]
        _cancel_stages(self.store, self.id, stages, self.service)
        return CANCELLED

    # --- parameters, outputs, cache --------------------------------------------------------------

    def _resolve(
        self, name: str, stages: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(values the stage gets, values for its cache key: artifacts by content hash)."""
        params: dict[str, Any] = {}
        key_params: dict[str, Any] = {}
        for key, value in (self.stages[name].get("parameters") or {}).items():
            ref = S.parse_ref(value)
            if ref is None:
                params[key] = key_params[key] = S.unescape(value)  # `$${` is a literal `${`
            elif ref.is_pipeline:
                params[key] = key_params[key] = self.params[ref.name]
            else:
                params[key], key_params[key] = self._output(stages[ref.stage]["run_id"], ref)
        return params, key_params

    def _output(self, run_id: str, ref: S.Ref) -> tuple[Any, Any]:
        row = output_row(self.conn, run_id, ref.name)
        if row is None:
            raise PipelineError(
                f"{ref}: stage {ref.stage!r} (run {run_id}) did not produce output {ref.name!r}"
            )
        if row["kind"] == "value":
            value = json.loads(row["value"])
            return value, value
        return str(self._materialize(row["blob"], row["filename"])), {"$blob": row["blob"]}

    def _inputs(self, params: dict[str, Any]) -> dict[str, dict[str, str]]:
        """The parameters that are materialized artifacts: {name: {"blob", "filename"}}."""
        root = self.store.home / "materialized"
        found = {}
        for key, value in params.items():
            if isinstance(value, str) and Path(value).parent.parent == root:
                found[key] = {"blob": Path(value).parent.name, "filename": Path(value).name}
        return found

    def _materialize(self, digest: str, filename: str | None) -> Path:
        """An artifact as a file with its own name, for the next stage to open."""
        folder = self.store.home / "materialized" / digest
        target = folder / (filename or digest)
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{target.name}.tmp-{os.getpid()}"
            shutil.copyfile(self.store.blobs.path(digest), tmp)
            os.replace(tmp, target)
        return target

    def _parts(self, name: str) -> tuple[list[str], str | None]:
        """(the template's code cells, the kernel): what a cache key hashes beside the values."""
        if name not in self._key_parts:
            found = template(self.conn, self.store.blobs, self.stages[name]["template"], self.base)
            if isinstance(found, str):
                raise PipelineError(f"stage {name!r}: {found}")
            kernel = self.stages[name].get("kernel") or found.kernel
            self._key_parts[name] = (code_of(found.code(self.store.blobs)), kernel)
        return self._key_parts[name]

    def _cache_key(self, name: str, key_params: dict[str, Any]) -> str:
        code, kernel = self._parts(name)
        return cache_key(code, key_params, kernel)


class StageTrials:
    """The trials of a sweep stage (sweeps.driver.TrialSource): each a stage job with the
    stage's parameters and the trial's values, and a cache key made as a plain stage's is, so a
    trial whose notebook code, values and kernel ran before reuses that run."""

    def __init__(
        self, driver: Driver, name: str, params: dict[str, Any], key_params: dict[str, Any],
        code: list[str], kernel: str | None,
    ) -> None:  # fmt: skip
        self.driver = driver
        self.name = name
        self.params = params
        self.key_params = key_params
        self.code = code
        self.kernel = kernel

    def request(self, values: dict[str, Any], name: str) -> Any:
        from ..execution.submit import prepare_notebook, prepare_rerun

        d = self.driver
        params = {**self.params, **values}
        common = {**d._job(self.name, params), "name": name}
        common["cwd"] = common.get("cwd") or d.service.cwd
        tmpl = d.stages[self.name]["template"]
        if tmpl.get("run"):
            return prepare_rerun(d.conn, d.store.blobs, tmpl["run"], params, **common)
        return prepare_notebook(d.store.blobs, d._notebook(self.name), params,
                                project=d.spec.get("project"), **common)  # fmt: skip

    def cache_key(self, values: dict[str, Any]) -> str | None:
        return cache_key(self.code, {**self.key_params, **values}, self.kernel)

    def cached(self, key: str) -> str | None:
        if not self.driver._use_cache(self.name):
            return None
        hit = self.driver._cached(key)
        return hit["run_id"] if hit else None


def run(store: Any, pipeline_run_id: str, service: Any = None) -> str:
    return Driver(store, pipeline_run_id, service).run()


__all__ = ["submit", "run", "cancel", "Driver", "PipelineError", "PATH"]
