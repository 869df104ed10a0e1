"""Route handlers: parse, authorize, call one store function, serialize. No logic here.

Every route needs a logged-in Jupyter user, except the ingest routes, which need a run token
(`X-MLP-Run-Token`) that can write to its own run only. The routes are described in openapi.yaml
beside this file; tests check that both agree."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized

try:
    from jupyter_server.auth.decorator import allow_unauthenticated
except ImportError:  # jupyter_server < 2.13 has no such setting to open routes against

    def allow_unauthenticated(method):  # type: ignore[no-redef]
        return method


from jupyter_server.base.handlers import APIHandler

from ..execution.jobs import BadReport, JobError, JobNotFound, apply_remote_report, get_job
from ..execution.jobs import progress as job_progress
from ..execution.params import ParamError
from ..model import json_safe
from ..pipelines import runner as pipeline_runner
from ..pipelines import spec as pipeline_spec
from ..pipelines import validate as pipeline_validate
from ..store import BlobNotFound, FilterError, RunNotFound, series, tokens
from ..store import pipelines as pipeline_store
from ..store import runs as run_store
from ..store.db import write
from ..store.records import BadBatch, apply_remote_batch, batch_rows

MAX_INGEST_BYTES = 64 * 1024 * 1024
MAX_INGEST_ROWS = 1_000_000
MAX_BLOB_BYTES = 2 * 1024**3


class MlpHandler(APIHandler):
    auth_resource = "mlp"
    path: str = ""  # the route, as openapi.yaml writes it

    @property
    def mlp(self) -> Any:
        return self.settings["mlp"]

    def conn(self):
        return self.mlp.store.connect()

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(json_safe(data)))

    def fail(self, status: int, message: str, **extra: Any) -> None:
        self.reply({"message": message, **extra}, status)

    def run_id(self, ref: str) -> str | None:
        """The full id of a run, or None after replying 404 (a bad or path-like id included)."""
        try:
            return run_store.resolve_id(self.conn(), ref)
        except RunNotFound as exc:
            self.fail(404, str(exc))
            return None

    def number(self, name: str, default: float | None, lo: float, hi: float) -> float | None:
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise tornado.web.HTTPError(400, f"{name} must be a number") from None
        return min(max(value, lo), hi)

    async def send_blob(self, digest: str, filename: str | None = None) -> None:
        """Stream a blob of the store (the caller checked that this request may have it)."""
        try:
            handle = open(self.mlp.store.blobs.path(digest), "rb")
        except (BlobNotFound, FileNotFoundError):
            return self.fail(404, "the blob is missing from the store")
        if filename is not None:
            self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        with handle:
            while chunk := handle.read(1 << 20):
                self.write(chunk)
                await self.flush()
        self.finish(set_content_type="application/octet-stream")

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise tornado.web.HTTPError(400, "the body is not JSON") from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))


class RunsHandler(MlpHandler):
    path = "/runs"

    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        limit = int(self.number("limit", 100, 1, 1000))
        try:
            page = run_store.list_page(
                self.conn(),
                project=self.get_argument("project", None) or None,
                filter=self.get_argument("filter", None),
                sort=self.get_argument("sort", None),
                limit=limit,
                cursor=self.get_argument("cursor", None),
            )
        except FilterError as exc:
            return self.fail(400, exc.message, position=exc.position)
        self.reply(page)

    @tornado.web.authenticated
    @authorized
    def post(self) -> None:
        """A run for a remote tracker (another machine): returns its id and write token."""
        body = self.json_body() or {}
        if not isinstance(body, dict) or set(body) - {"name", "project", "tags"}:
            return self.fail(400, "send a JSON object with name, project and tags")
        if not all(isinstance(body.get(k, ""), str) for k in ("name", "project")):
            return self.fail(400, "name and project are strings")
        fields = {"name": body.get("name") or "remote", "kind": "interactive",
                  "project": body.get("project") or "default", "tags": body.get("tags") or []}  # fmt: skip
        self.reply(run_store.create_run(self.conn(), fields, with_token=True), 201)


class RunHandler(MlpHandler):
    path = "/runs/{run_id}"

    @tornado.web.authenticated
    @authorized
    def get(self, ref: str) -> None:
        if run_id := self.run_id(ref):
            self.reply(run_store.get_run(self.conn(), run_id, with_cells=False))

    @tornado.web.authenticated
    @authorized
    def patch(self, ref: str) -> None:
        if run_id := self.run_id(ref):
            try:
                self.reply(run_store.patch_run(self.conn(), run_id, self.json_body()))
            except ValueError as exc:
                self.fail(400, str(exc))

    @tornado.web.authenticated
    @authorized
    def delete(self, ref: str) -> None:
        if run_id := self.run_id(ref):
            removed = run_store.delete_run(self.conn(), run_id, self.mlp.store.blobs)
            self.reply({"deleted": run_id, "blobs_removed": len(removed)})


class RunPartHandler(MlpHandler):
    """GET /runs/{id}/params|cells|outputs: one part of a run."""

    part = ""

    @tornado.web.authenticated
    @authorized
    def get(self, ref: str) -> None:
        if run_id := self.run_id(ref):
            self.reply({self.part: run_store.run_part(self.conn(), run_id, self.part)})


class ParamsHandler(RunPartHandler):
    path, part = "/runs/{run_id}/params", "params"


class CellsHandler(RunPartHandler):
    path, part = "/runs/{run_id}/cells", "cells"


class OutputsHandler(RunPartHandler):
    path, part = "/runs/{run_id}/outputs", "outputs"


class MetricsHandler(MlpHandler):
    path = "/runs/{run_id}/metrics"

    @tornado.web.authenticated
    @authorized
    def get(self, ref: str) -> None:
        if not (run_id := self.run_id(ref)):
            return
        key = self.get_argument("key", None)
        if key is None:
            return self.reply({"keys": run_store.run_part(self.conn(), run_id, "metric_keys")})
        points = int(self.number("points", 1000, 2, 100_000))
        start, end = self.number("start", None, -1e18, 1e18), self.number("end", None, -1e18, 1e18)
        self.reply(series.metric(self.conn(), run_id, key, points, start, end))


class GpuHandler(MlpHandler):
    path = "/runs/{run_id}/gpu"

    @tornado.web.authenticated
    @authorized
    def get(self, ref: str) -> None:
        if not (run_id := self.run_id(ref)):
            return
        points = int(self.number("points", 1000, 2, 100_000))
        gpu = self.number("gpu", None, 0, 1024)
        start, end = self.number("start", None, 0, 1e12), self.number("end", None, 0, 1e12)
        self.reply(
            {
                "gpus": series.gpu(
                    self.conn(), run_id, points, None if gpu is None else int(gpu), start, end
                )
            }
        )


class NotebookHandler(MlpHandler):
    """The notebook as it was at the run's start (`which=start`), end, or as executed."""

    path = "/runs/{run_id}/notebook"
    COLUMNS = {"start": "snapshot", "end": "end_snapshot", "output": "output_notebook"}

    @tornado.web.authenticated
    @authorized
    def get(self, ref: str) -> None:
        if not (run_id := self.run_id(ref)):
            return
        which = self.get_argument("which", "start")
        if which not in self.COLUMNS:
            return self.fail(400, f"which must be one of {', '.join(self.COLUMNS)}")
        digest = run_store.run_part(self.conn(), run_id, "notebook_" + which)
        if not digest:
            return self.fail(404, f"run {run_id} has no {which} notebook")
        try:
            data = self.mlp.store.blobs.read_bytes(digest)
        except BlobNotFound:
            return self.fail(404, "the notebook's blob is missing from the store")
        self.finish(data, set_content_type="application/x-ipynb+json")


class BlobHandler(MlpHandler):
    """A file a run references (artifact, snapshot, git diff), as a download."""

    path = "/runs/{run_id}/blobs/{hash}"

    @tornado.web.authenticated
    @authorized
    async def get(self, ref: str, digest: str) -> None:
        if not (run_id := self.run_id(ref)):
            return
        name = run_store.run_blobs(self.conn(), run_id).get(digest)
        if name is None:
            return self.fail(404, "this run references no such blob")
        await self.send_blob(digest, name)


class CompareHandler(MlpHandler):
    path = "/compare"

    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        refs = [r for r in self.get_argument("ids", "").split(",") if r]
        try:
            self.reply(run_store.compare_runs(self.conn(), refs))
        except RunNotFound as exc:
            self.fail(404, str(exc))
        except ValueError as exc:
            self.fail(400, str(exc))


class EventsHandler(MlpHandler):
    """Long-poll: events after `after`, waiting up to `timeout` seconds for the first."""

    path = "/events"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        feed = self.mlp.feed
        if self.get_argument("after", None) is None:
            return self.reply({"events": [], "last": feed.last_id()})
        after = int(self.number("after", 0, 0, 2**62))
        timeout = self.number("timeout", 25, 0, 60)
        found = await feed.wait(after, timeout, int(self.number("limit", 1000, 1, 10_000)))
        self.reply({"events": found, "last": found[-1]["id"] if found else after})


class RerunHandler(MlpHandler):
    """Execute a run's snapshot again with new parameters (a job); 201 with the new run's id."""

    path = "/runs/{run_id}/rerun"

    @tornado.web.authenticated
    @authorized
    async def post(self, ref: str) -> None:
        if not (run_id := self.run_id(ref)):
            return
        body = self.json_body() or {}
        if not isinstance(body, dict) or set(body) - {
            "params",
            "executor",
            "gpus",
            "allow_new",
            "kernel",
            "name",
        }:
            return self.fail(400, "send {params, executor, gpus, allow_new, kernel, name}")
        try:
            # in a thread: the dask executor may wait for a scheduler to answer
            new_id = await asyncio.to_thread(
                self.mlp.jobs.submit_rerun, run_id, body.get("params") or {},
                executor=body.get("executor") or self.mlp.default_executor, gpus=body.get("gpus"),
                allow_new=bool(body.get("allow_new")), kernel=body.get("kernel"), name=body.get("name"),
            )  # fmt: skip
        except (JobError, ParamError) as exc:
            return self.fail(400, str(exc))
        self.reply({"id": new_id}, 201)


class CancelHandler(MlpHandler):
    path = "/runs/{run_id}/cancel"

    @tornado.web.authenticated
    @authorized
    async def post(self, ref: str) -> None:
        if not (run_id := self.run_id(ref)):
            return
        try:  # in a thread: a dask job's task is cancelled over the network
            self.reply(await asyncio.to_thread(self.mlp.jobs.cancel, run_id))
        except JobNotFound:
            self.fail(400, f"run {run_id} is not a job: only jobs can be cancelled")


class ExecutorsHandler(MlpHandler):
    path = "/executors"

    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        found = [{"name": e.get("executor"), **e} for e in self.mlp.jobs.executors_status()]
        self.reply({"executors": found, "default": self.mlp.default_executor})


class PipelineHandler(MlpHandler):
    async def pipeline_file(self, path: Any) -> tuple[dict[str, Any], Any] | None:
        """(spec, folder of the file) read through the contents manager, which keeps every path
        inside the server's root; None after replying 400/404."""
        if not isinstance(path, str) or not path:
            self.fail(400, "path must be the .mlpipe file's path")
            return None
        try:
            model = await ensure_async(
                self.contents_manager.get(path, content=True, type="file", format="text")
            )
            spec = pipeline_spec.loads(model["content"], path)
        except tornado.web.HTTPError as exc:
            self.fail(exc.status_code, exc.log_message or f"cannot read {path}")
            return None
        except pipeline_spec.SpecError as exc:
            self.fail(400, str(exc))
            return None
        os_path = getattr(self.contents_manager, "_get_os_path", None)
        folder = os_path(path).rsplit("/", 1)[0] if os_path else None
        return spec, folder


class PipelineValidateHandler(PipelineHandler):
    path = "/pipelines/validate"

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body() or {}
        if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
            return self.fail(400, "send {spec} (and path, for notebook templates)")
        folder = None
        if body.get("path"):
            found = await self.pipeline_file(body["path"])
            if found is None:
                return
            folder = found[1]
        issues = pipeline_validate.validate(
            body["spec"], self.conn(), self.mlp.store.blobs, folder and Path(folder)
        )
        self.reply({"issues": [i.as_dict() for i in issues]})


class PipelineRunsHandler(PipelineHandler):
    path = "/pipelines/runs"

    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        self.reply(
            {"runs": pipeline_store.list_runs(self.conn(), path=self.get_argument("path", None))}
        )

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        """Run a .mlpipe file: validated first; 201 with the pipeline run's id."""
        body = self.json_body() or {}
        if not isinstance(body, dict) or set(body) - {
            "path",
            "params",
            "executor",
            "no_cache",
            "resume",
        }:
            return self.fail(400, "send {path, params, executor, no_cache, resume}")
        found = await self.pipeline_file(body.get("path"))
        if found is None:
            return
        spec, folder = found
        try:
            pid = pipeline_runner.submit(
                self.mlp.store, spec, path=body["path"], params=body.get("params") or {},
                executor=body.get("executor") or self.mlp.default_executor,
                no_cache=bool(body.get("no_cache")), resume=body.get("resume"), base=folder,
                concurrency=self.mlp.local_concurrency,
            )  # fmt: skip
        except (pipeline_runner.PipelineError, pipeline_store.PipelineRunNotFound) as exc:
            return self.fail(400, str(exc))
        self.mlp.start_pipeline(pid)
        self.reply({"id": pid}, 201)


class PipelineRunHandler(MlpHandler):
    path = "/pipelines/runs/{pipeline_run_id}"

    @tornado.web.authenticated
    @authorized
    def get(self, pid: str) -> None:
        try:
            run = pipeline_store.get(self.conn(), pid)
        except pipeline_store.PipelineRunNotFound as exc:
            return self.fail(404, str(exc))
        for stage in run["stages"].values():
            done, total = (
                job_progress(self.conn(), stage["run_id"]) if stage["run_id"] else (0, None)
            )
            stage["cells_done"], stage["cells_total"] = done, total
        self.reply(run)


class PipelineCancelHandler(MlpHandler):
    path = "/pipelines/runs/{pipeline_run_id}/cancel"

    @tornado.web.authenticated
    @authorized
    def post(self, pid: str) -> None:
        try:
            pipeline_runner.cancel(self.mlp.store, pid)
        except pipeline_store.PipelineRunNotFound as exc:
            return self.fail(404, str(exc))
        self.reply(pipeline_store.get(self.conn(), pid))


class TokenHandler(MlpHandler):
    """Base of the routes a remote tracker calls with its run token instead of a login (so they
    stay open when the server refuses unauthenticated access by default)."""

    def check_xsrf_cookie(self) -> None:
        """No cookie is involved (the token is a header), so there is nothing to forge."""

    def token_run(self) -> str | None:
        run_id = tokens.run_of(self.conn(), self.request.headers.get("X-MLP-Run-Token"))
        if run_id is None:
            self.fail(401, "a valid X-MLP-Run-Token for a live run is required")
        return run_id


class IngestHandler(TokenHandler):
    path = "/ingest"

    @allow_unauthenticated
    def post(self) -> None:
        if not (run_id := self.token_run()):
            return
        if len(self.request.body) > MAX_INGEST_BYTES:
            return self.fail(
                413, f"batches are limited to {MAX_INGEST_BYTES} bytes; send smaller ones"
            )
        body = self.json_body()
        if not isinstance(body, dict) or {"run_id", "seq", "batch"} - set(body):
            return self.fail(400, "send {run_id, seq, batch}")
        if body["run_id"] != run_id:
            return self.fail(403, "this token cannot write to that run")
        if not isinstance(body["batch"], dict) or not isinstance(body["seq"], int):
            return self.fail(400, "seq is an integer and batch an object")
        if batch_rows(body["batch"]) > MAX_INGEST_ROWS:
            return self.fail(
                413, f"batches are limited to {MAX_INGEST_ROWS} records; send smaller ones"
            )
        conn = self.conn()
        try:
            with write(conn):
                applied = apply_remote_batch(conn, run_id, body["seq"], body["batch"])
        except BadBatch as exc:
            return self.fail(400, str(exc))
        self.reply({"applied": applied})


class IngestBlobHandler(TokenHandler):
    path = "/ingest/blobs/{hash}"

    @allow_unauthenticated
    def put(self, digest: str) -> None:
        if not self.token_run():
            return
        if len(self.request.body) > MAX_BLOB_BYTES:
            return self.fail(413, "blob too large")
        if hashlib.sha256(self.request.body).hexdigest() != digest:
            return self.fail(400, "the content does not match its sha256")
        self.reply({"stored": self.mlp.store.blobs.put_bytes(self.request.body)})


class IngestJobHandler(TokenHandler):
    """A job on a remote worker (the dask executor) reports its state and learns whether it
    should go on: once its run has ended (cancelled, or failed by the server) the token stops
    working and the answer is 401."""

    path = "/ingest/job"

    @allow_unauthenticated
    def get(self) -> None:
        if not (run_id := self.token_run()):
            return
        job = get_job(self.conn(), run_id)
        if job is None:
            return self.fail(404, f"run {run_id} is not a job")
        self.reply({"run_id": run_id, "state": job.state})

    @allow_unauthenticated
    def post(self) -> None:
        if not (run_id := self.token_run()):
            return
        if len(self.request.body) > 64 * 1024:
            return self.fail(413, "a job report is a small JSON object")
        body = self.json_body()
        if not isinstance(body, dict):
            return self.fail(400, "send a JSON object")
        conn = self.conn()
        try:
            with write(conn):
                answer = apply_remote_report(conn, run_id, body, self.mlp.store.blobs.exists)
        except BadReport as exc:
            return self.fail(400, str(exc))
        self.reply(answer)


class IngestInputHandler(TokenHandler):
    """A remote pipeline stage downloads the artifacts its parameters name (only those)."""

    path = "/ingest/inputs/{hash}"

    @allow_unauthenticated
    async def get(self, digest: str) -> None:
        if not (run_id := self.token_run()):
            return
        job = get_job(self.conn(), run_id)
        wanted = {
            i.get("blob") for i in ((job.options if job else {}).get("inputs") or {}).values()
        }
        if digest not in wanted:
            return self.fail(404, "not an input of this job")
        await self.send_blob(digest)


HANDLERS: list[type[MlpHandler]] = [
    RerunHandler,
    CancelHandler,
    ExecutorsHandler,
    PipelineValidateHandler,
    PipelineRunsHandler,
    PipelineRunHandler,
    PipelineCancelHandler,
    RunsHandler, RunHandler, ParamsHandler, CellsHandler, OutputsHandler, MetricsHandler,
    GpuHandler, NotebookHandler, BlobHandler, CompareHandler, EventsHandler, IngestHandler,
    IngestBlobHandler, IngestJobHandler, IngestInputHandler,
]  # fmt: skip


def methods(handler: type[MlpHandler]) -> set[str]:
    """The HTTP methods a handler of ours implements (not tornado's 405 defaults)."""
    own = [c for c in handler.__mro__ if c.__module__ == __name__]
    return {m for m in ("get", "post", "put", "patch", "delete") if any(m in vars(c) for c in own)}


def handlers() -> list[tuple[str, type[MlpHandler]]]:
    """(tornado pattern, handler) for every route; `{name}` in a path matches one segment."""
    import re

    return [(r"/mlp/api" + re.sub(r"\{[^}]+\}", "([^/]+)", h.path), h) for h in HANDLERS]
