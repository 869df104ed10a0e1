"""The service calls behind the routes that need more than one store function. Blocking: the
routes run them in the server's store thread pool. No HTTP here, and no SQL (that is store/'s)."""

from __future__ import annotations

import hashlib
from typing import Any

from ..pipelines.driver import orphaned, with_orphaned
from ..records import RecordError
from ..store import Store, series, tokens
from ..store import pipelines as pipeline_store
from ..store import records as store_records
from ..store import runs as run_store
from ..store.db import write
from ..store.jobs import apply_remote_report, get_job
from ..store.jobs import progress as job_progress
from .permissions import Actor, check

REFUSED_SHOWN = 100  # refused records listed in one answer (the count is always given)


class NotFound(LookupError):
    """Something a route names that is not there (404)."""


# --- runs ----------------------------------------------------------------------------------------


def run_detail(store: Store, ref: str) -> dict[str, Any]:
    conn = store.connect()
    return run_store.get_run(conn, run_store.resolve_id(conn, ref), with_cells=False)


def run_part(store: Store, ref: str, part: str) -> dict[str, Any]:
    """{part: ...} for params, cells, outputs; {"keys": ...} for metric keys."""
    conn = store.connect()
    found = run_store.run_part(conn, run_store.resolve_id(conn, ref), part)
    return {"keys" if part == "metric_keys" else part: found}


def metric_series(store: Store, ref: str, key: str, points: int, start: Any, end: Any) -> dict:
    conn = store.connect()
    return series.metric(conn, run_store.resolve_id(conn, ref), key, points, start, end)


def gpu_series(store: Store, ref: str, points: int, gpu: Any, start: Any, end: Any) -> dict:
    conn = store.connect()
    return {"gpus": series.gpu(conn, run_store.resolve_id(conn, ref), points, gpu, start, end)}


def _may_change_run(conn: Any, who: Actor, run_id: str, verb: str, admins: frozenset[str]) -> None:
    check(who, "run", run_id, run_store.owner_of(conn, run_id), verb, admins)


def patch_run(
    store: Store,
    ref: str,
    changes: dict[str, Any],
    who: Actor,
    admins: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    conn = store.connect()
    run_id = run_store.resolve_id(conn, ref)
    verb = "pin" if set(changes) == {"pinned"} else "change"
    _may_change_run(conn, who, run_id, verb, admins)
    return run_store.patch_run(conn, run_id, changes)


def delete_run(
    store: Store, ref: str, who: Actor, admins: frozenset[str] = frozenset()
) -> dict[str, Any]:
    conn = store.connect()
    run_id = run_store.resolve_id(conn, ref)
    _may_change_run(conn, who, run_id, "delete", admins)
    removed = run_store.delete_run(conn, run_id, store.blobs)
    return {"deleted": run_id, "blobs_removed": len(removed)}


def cancel_run(
    store: Store, jobs: Any, ref: str, who: Actor, admins: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Cancel a queued or running job (a dask job's task is cancelled over the network)."""
    conn = store.connect()
    run_id = run_store.resolve_id(conn, ref)
    _may_change_run(conn, who, run_id, "cancel", admins)
    found: dict[str, Any] = jobs.cancel(run_id)
    return found


def compare(store: Store, refs: list[str]) -> dict[str, Any]:
    return run_store.compare_runs(store.connect(), refs)


def compare_metrics(
    store: Store, refs: list[str], key: str, points: int, start: Any, end: Any
) -> dict[str, Any]:
    """One metric's downsampled series of each run that logged it, by run id (runs without it
    are left out)."""
    conn = store.connect()
    out: dict[str, Any] = {}
    for ref in refs:
        run_id = run_store.resolve_id(conn, ref)
        found = series.metric(conn, run_id, key, points, start, end)
        if found["total"]:
            out[run_id] = found
    return {"key": key, "points": points, "series": out}


def notebook(store: Store, ref: str, which: str) -> bytes:
    """The notebook as it was at the run's start, end, or as executed."""
    conn = store.connect()
    run_id = run_store.resolve_id(conn, ref)
    if which == "output":  # a running job's partial output notebook until its blob is stored
        from ..store.partial import executed_notebook

        found = executed_notebook(store, run_id)
        if found is None:
            raise NotFound(f"run {run_id} has no output notebook")
        return found[0]
    digest = run_store.run_part(conn, run_id, "notebook_" + which)
    if not isinstance(digest, str) or not digest:
        raise NotFound(f"run {run_id} has no {which} notebook")
    return store.blobs.read_bytes(digest)


def run_blob(store: Store, ref: str, digest: str) -> tuple[Any, str]:
    """(open file, download name) of a blob the run references; NotFound for any other."""
    conn = store.connect()
    run_id = run_store.resolve_id(conn, ref)
    name = run_store.run_blobs(conn, run_id).get(digest)
    if name is None:
        raise NotFound("this run references no such blob")
    return open_blob(store, digest), name


def open_blob(store: Store, digest: str) -> Any:
    try:
        return open(store.blobs.path(digest), "rb")
    except FileNotFoundError:
        raise NotFound("the blob is missing from the store") from None


def rerun(
    store: Store, jobs: Any, ref: str, request: dict[str, Any], owner: str | None = None
) -> dict[str, Any]:
    """Queue a rerun (a job) owned by `owner`, whoever owns the run it reruns (everyone may
    rerun anyone's run); in the pool because the dask executor may wait for a scheduler."""
    run_id = run_store.resolve_id(store.connect(), ref)
    return {"id": jobs.submit_rerun(run_id, request.pop("params", {}), owner=owner, **request)}


def create_remote_run(
    store: Store, fields: dict[str, Any], owner: str | None = None
) -> dict[str, Any]:
    """A run for a remote tracker, owned by `owner`, with its write token."""
    run = {"name": "remote", "project": "default", "tags": [], **fields, "kind": "interactive"}
    if owner:
        run["owner"] = owner
    return run_store.create_run(store.connect(), run, with_token=True)


class RunExists(PermissionError):
    """A tracking key may open a new run only (403)."""


def open_tracked_run(
    store: Store, run_id: str, owner: str, created_at: float | None = None
) -> dict[str, Any]:
    """A run a tracker named (with this server's tracking key), created `queued` and owned by
    `owner`, and its write token: {"id", "token"}. A key never writes to a run that exists; the
    one exception is a retry of this very open (the answer was lost): a run of the same owner
    that the key opened and that never received a record gets a new token."""
    import time

    from ..store import events
    from ..store.db import write
    from ..store.records import upsert_run
    from ..store.templates import template_run

    now = time.time()
    conn = store.connect()
    with write(conn):
        if template_run(conn, run_id) is None:
            fields = {
                "status": "queued", "kind": "interactive", "project": "default",
                "name": "remote", "tags": [], "owner": owner,
                "created_at": min(created_at, now) if created_at is not None else now,
            }  # fmt: skip
            upsert_run(conn, run_id, fields)
            events.append(conn, run_id, "run", {"status": "queued"})
            return {"id": run_id, "token": tokens.issue(conn, run_id)}
        run = run_store.get_run(conn, run_id, with_cells=False)
        retry = (
            run.get("owner") == owner and run.get("kind") == "interactive"
            and run.get("status") == "queued" and get_job(conn, run_id) is None
            and not run.get("started_at") and not run.get("cells")
        )  # fmt: skip
        if not retry:
            raise RunExists(f"run {run_id} exists; a tracking key opens new runs only")
        return {"id": run_id, "token": tokens.issue(conn, run_id)}


def me(app: Any, who: Actor) -> dict[str, Any]:
    """What the UI needs to know of the user: their name (what they create is theirs), whether
    they may change everyone's things, whether the store is a team's, and where it is."""
    return {"name": who.name, "admin": who.admin, "team": app.team, "store": app.store_address()}


def pipeline_run_detail(store: Store, pipeline_run_id: str) -> dict[str, Any]:
    """A pipeline run with each stage's cell progress."""
    conn = store.connect()
    run = pipeline_store.get(conn, pipeline_store.resolve_id(conn, pipeline_run_id))
    for stage in (run.get("stages") or {}).values():
        done, total = job_progress(conn, stage["run_id"]) if stage.get("run_id") else (0, None)
        stage["cells_done"], stage["cells_total"] = done, total
    return {**run, "orphaned": orphaned(run)}


def validate_pipeline(store: Store, spec: dict[str, Any], folder: Any) -> dict[str, Any]:
    from ..pipelines import validate

    issues = validate.validate(spec, store.connect(), store.blobs, folder)
    return {"issues": [i.as_dict() for i in issues]}


def pipeline_identity(path: str, root_dir: Any) -> str:
    """The store's name of a pipeline file the editor names relative to the server's root: the
    resolved absolute path (pipelines.spec.identity), as the CLI stores it; a contents manager
    with no folder on disk keeps the contents path."""
    from ..pipelines.spec import identity

    return identity(path, root_dir) if isinstance(root_dir, str) and root_dir else path


def pipeline_runs(store: Store, path: str | None, root_dir: Any = None) -> dict[str, Any]:
    if path:
        path = pipeline_identity(path, root_dir)
    conn = store.connect()
    return {"runs": with_orphaned(conn, pipeline_store.list_runs(conn, path=path))}


def start_pipeline(
    app: Any, spec: dict[str, Any], request: dict[str, Any], root_dir: Any = None,
    owner: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Record a pipeline run (validated first) owned by `owner` and start its driver process."""
    from ..pipelines import dag

    if request.get("path"):
        request["path"] = pipeline_identity(request["path"], root_dir)
    if request.get("resume"):
        request["resume"] = pipeline_store.resolve_id(app.store.connect(), request["resume"])
    pid = dag.submit(app.store, spec, params=request.pop("params", {}),
                     concurrency=app.local_concurrency, owner=owner, **request)  # fmt: skip
    app.start_pipeline(pid)
    return {"id": pid}


def cancel_pipeline(
    store: Store, pipeline_run_id: str, who: Actor, admins: frozenset[str] = frozenset()
) -> dict[str, Any]:
    from ..pipelines import dag

    conn = store.connect()
    pipeline_run_id = pipeline_store.resolve_id(conn, pipeline_run_id)
    owner = pipeline_store.get(conn, pipeline_run_id).get("owner")
    check(who, "pipeline run", pipeline_run_id, owner, "cancel", admins)
    dag.cancel(store, pipeline_run_id)
    return pipeline_store.get(conn, pipeline_run_id)


# --- ingest (run tokens) -------------------------------------------------------------------------


def ingest_batch(store: Store, run_id: str, seq: int, batch: dict[str, Any]) -> dict[str, Any]:
    """Apply one tracker batch for the token's run, once per `seq`. Bad records (and what a token
    may not write) are refused alone, the rest written:
    {"applied": bool, "refused": [{field, message}], "refused_count": n}."""
    conn = store.connect()
    with write(conn):
        applied, refused = store_records.ingest_batch(conn, run_id, seq, batch)
    answer: dict[str, Any] = {"applied": bool(applied)}
    if refused:
        shown = refused[:REFUSED_SHOWN]
        answer["refused"] = [{"field": e.field, "message": e.message} for e in shown]
        answer["refused_count"] = len(refused)
        answer["message"] = f"{len(refused)} record(s) refused; first: {refused[0]}"
        answer["field"] = refused[0].field
        answer["status"] = refused[0].status
    return answer


def refused_status(answer: dict[str, Any]) -> int:
    """200 when every record went in, else the status of the first refused one (400, 403, 413)."""
    return int(answer.pop("status", 200))


def put_blob(store: Store, run_id: str, digest: str, data: bytes) -> str:
    """Store an uploaded blob (its content must hash to `digest`) as one of this run's own."""
    if hashlib.sha256(data).hexdigest() != digest:
        raise RecordError("body", "the content does not match its sha256")
    stored = store.blobs.put_bytes(data)
    with write(store.connect()) as conn:
        tokens.record_upload(conn, run_id, stored)
    return stored


def job_state(store: Store, run_id: str) -> dict[str, Any]:
    job = get_job(store.connect(), run_id)
    if job is None:
        raise NotFound(f"run {run_id} is not a job")
    return {"run_id": run_id, "state": job.state}


def job_report(store: Store, run_id: str, report: dict[str, Any]) -> dict[str, Any]:
    conn = store.connect()

    def own_blob(digest: str) -> bool:  # the executed notebook: one this run uploaded
        return store.blobs.exists(digest) and tokens.may_reference(conn, run_id, digest)

    with write(conn):
        return apply_remote_report(conn, run_id, report, own_blob)


def job_input(store: Store, run_id: str, digest: str) -> str:
    """`digest` when it is an input artifact of the token's job (a remote stage may read only
    those), else NotFound."""
    job = get_job(store.connect(), run_id)
    options = job.options if job is not None and isinstance(job.options, dict) else {}
    inputs = options.get("inputs")
    if isinstance(inputs, dict) and any(
        isinstance(i, dict) and i.get("blob") == digest for i in inputs.values()
    ):
        return digest
    raise NotFound("not an input of this job")


# --- sweeps --------------------------------------------------------------------------------------


def list_sweeps(conn: Any, limit: int) -> list[dict[str, Any]]:
    """The newest sweeps, each with its trials counted by status."""
    from ..store import sweeps as sweep_store

    return [
        {**s, "counts": sweep_store.counts(conn, s["id"])}
        for s in sweep_store.list_sweeps(conn, limit)
    ]


def sweep_detail(conn: Any, ref: str) -> dict[str, Any]:
    """A sweep (id or prefix) with its counts and every trial (parameters, status, objective)."""
    from ..store import sweeps as sweep_store

    sweep = sweep_store.get(conn, sweep_store.resolve_id(conn, ref))
    return {
        **sweep,
        "counts": sweep_store.counts(conn, sweep["id"]),
        "trials": sweep_store.trials(conn, sweep["id"]),
    }


def start_sweep(store: Store, body: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
    """Check and record the sweep (owned by `owner`, as its trials are), then start its driver
    in a process of its own (it outlives this server; the server dispatches the trials' jobs
    while it runs)."""
    from ..sweeps.driver import spawn, submit

    options = dict(body)
    template, params, objective = (options.pop(k) for k in ("template", "params", "objective"))
    sweep_id = submit(store, template, params, objective, owner=owner, flag=str, **options)
    spawn(store, sweep_id)
    return {"id": sweep_id}


def cancel_sweep(
    store: Store, jobs: Any, ref: str, who: Actor, admins: frozenset[str] = frozenset()
) -> dict[str, Any]:
    from ..store import sweeps as sweep_store
    from ..sweeps.driver import cancel

    conn = store.connect()
    sweep_id = sweep_store.resolve_id(conn, ref)
    check(who, "sweep", sweep_id, sweep_store.get(conn, sweep_id).get("owner"), "cancel", admins)
    return {"id": sweep_id, "status": cancel(store, sweep_id, jobs)}


def resume_sweeps(store: Store) -> list[str]:
    """At server start: every unfinished sweep of this machine whose driver is gone (killed, or
    the machine restarted) is driven again in a process of its own (it replays its trials from
    the store); a cancel that was asked of a dead driver is carried out. Their ids."""
    import importlib.util

    from ..store import sweeps as sweep_store
    from ..sweeps.driver import cancel, driver_alive, spawn

    if importlib.util.find_spec("optuna") is None:
        return []
    conn = store.connect()
    resumed = []
    for sweep in sweep_store.unfinished(conn):
        if driver_alive(sweep):
            continue
        if sweep["status"] == "cancelling":
            cancel(store, sweep["id"])
        else:
            spawn(store, sweep["id"])
        resumed.append(sweep["id"])
    return resumed
