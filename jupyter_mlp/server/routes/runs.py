"""Runs: listing, one run and its parts, series, notebooks and blobs, changes, rerun, cancel,
compare, executors. Each handler: parse (records.py) -> one service call -> serialize."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from ... import records
from ...model import json_safe
from ...records import RecordError
from ...store.runs import COMPARE_MAX
from .. import services
from .base import MlpHandler

CURSOR_MAX = 2_000
SORT_MAX = records.KEY_MAX + 20
COMPARE_POINTS_MAX = 200_000  # series points in one /compare/metrics answer, all runs together
NOTEBOOKS = ("start", "end", "output")
SERIES_SPAN = 1e18  # start/end of a series: any finite step or time


def _cursor(value: Any, field: str = "cursor") -> str:
    """A cursor this server handed out: base64 of JSON [phase, scalar sort value, run id]."""
    value = records.text(value, field, CURSOR_MAX)
    try:
        phase, sort_value, run_id = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise RecordError(field, "is not a cursor this server gave out") from None
    if phase not in (0, 1) or not isinstance(run_id, str) or isinstance(sort_value, (list, dict)):
        raise RecordError(field, "is not a cursor this server gave out")
    return value


class RunsHandler(MlpHandler):
    path = "/runs"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        query = {
            "project": self.arg_text("project", records.PROJECT_MAX) or None,
            "filter": self.arg_text("filter", records.FILTER_MAX),
            "sort": self.arg_text("sort", SORT_MAX),
            "limit": self.arg_int("limit", 100, 1, records.PAGE_MAX, clamp=True),
            "cursor": _cursor(c) if (c := self.get_argument("cursor", None)) else None,
        }
        from ...store import runs as run_store

        self.reply(await self.store_call(run_store.list_page, **query))

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        """A run for a remote tracker (another machine): returns its id and write token."""
        fields = self.object_body({
            "name": lambda v, f: records.name(v, f) if v != "" else None,
            "project": lambda v, f: records.run_field("project", v, f) if v != "" else None,
            "tags": records.tags,
        })  # fmt: skip
        fields = {k: v for k, v in fields.items() if v is not None}
        self.reply(
            await self.call(services.create_remote_run, self.mlp.store, fields, self.who.name), 201
        )


class RunHandler(MlpHandler):
    path = "/runs/{run_id}"
    PATCHABLE: dict[str, Callable[[Any, str], Any]] = {
        "name": lambda v, f: records.run_field("name", v, f),
        "tags": lambda v, f: records.run_field("tags", v, f),
        "pinned": lambda v, f: records.run_field("pinned", v, f),
        "notes": lambda v, f: records.run_field("notes", v, f),
    }

    @tornado.web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        self.reply(await self.call(services.run_detail, self.mlp.store, ref))

    @tornado.web.authenticated
    @authorized
    async def patch(self, ref: str) -> None:
        changes = self.object_body(self.PATCHABLE, cleared={"tags": [], "notes": ""})
        if not changes:
            raise RecordError("body", "send a JSON object with some of: name, tags, pinned, notes")
        self.reply(await self.call(
            services.patch_run, self.mlp.store, ref, changes, self.who, self.mlp.admins
        ))  # fmt: skip

    @tornado.web.authenticated
    @authorized
    async def delete(self, ref: str) -> None:
        self.reply(
            await self.call(services.delete_run, self.mlp.store, ref, self.who, self.mlp.admins)
        )


class RunPartHandler(MlpHandler):
    """GET /runs/{id}/params|cells|outputs: one part of a run."""

    part = ""

    @tornado.web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        self.reply(await self.call(services.run_part, self.mlp.store, ref, self.part))


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
    async def get(self, ref: str) -> None:
        key = self.arg_text("key", records.KEY_MAX)
        if key is None:
            return self.reply(
                await self.call(services.run_part, self.mlp.store, ref, "metric_keys")
            )
        points = self.arg_int("points", 1000, 2, records.POINTS_MAX, clamp=True)
        start = self.arg_number("start", None, -SERIES_SPAN, SERIES_SPAN, clamp=True)
        end = self.arg_number("end", None, -SERIES_SPAN, SERIES_SPAN, clamp=True)
        self.reply(
            await self.call(services.metric_series, self.mlp.store, ref, key, points, start, end)
        )


class GpuHandler(MlpHandler):
    path = "/runs/{run_id}/gpu"

    @tornado.web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        points = self.arg_int("points", 1000, 2, records.POINTS_MAX, clamp=True)
        gpu = self.arg_int("gpu", None, 0, records.GPU_MAX)
        start = self.arg_number("start", None, 0, records.TIME_MAX, clamp=True)
        end = self.arg_number("end", None, 0, records.TIME_MAX, clamp=True)
        self.reply(
            await self.call(services.gpu_series, self.mlp.store, ref, points, gpu, start, end)
        )


class NotebookHandler(MlpHandler):
    """The notebook as it was at the run's start (`which=start`), end, or as executed."""

    path = "/runs/{run_id}/notebook"

    @tornado.web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        which = records.choice(self.get_argument("which", "start"), "which", NOTEBOOKS)
        data = await self.call(services.notebook, self.mlp.store, ref, which)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(data, set_content_type="application/x-ipynb+json")


class BlobHandler(MlpHandler):
    """A file a run references (artifact, snapshot, git diff), as a download."""

    path = "/runs/{run_id}/blobs/{hash}"

    @tornado.web.authenticated
    @authorized
    async def get(self, ref: str, digest: str) -> None:
        handle, name = await self.call(services.run_blob, self.mlp.store, ref, digest)
        await self.send_file(handle, name)


class CompareHandler(MlpHandler):
    path = "/compare"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        refs = _compare_ids(self, 2)
        self.reply(await self.call(services.compare, self.mlp.store, refs))


def _compare_ids(handler: MlpHandler, least: int) -> list[str]:
    """The comma-separated `ids` of a compare route: `least` to COMPARE_MAX of them."""
    raw = handler.arg_text("ids", COMPARE_MAX * 40, "") or ""
    refs = [r for r in raw.split(",") if r]
    if not least <= len(refs) <= COMPARE_MAX:
        raise RecordError("ids", f"takes {least} to {COMPARE_MAX} run ids")
    return refs


class CompareMetricsHandler(MlpHandler):
    """One metric's series of several runs in one answer (the compare view's charts)."""

    path = "/compare/metrics"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        refs = _compare_ids(self, 1)
        key = self.arg_text("key", records.KEY_MAX)
        if not key:
            raise RecordError("key", "is required (a metric name)")
        points = self.arg_int("points", 1000, 2, records.POINTS_MAX, clamp=True) or 1000
        points = max(2, min(points, COMPARE_POINTS_MAX // len(refs)))
        start = self.arg_number("start", None, -SERIES_SPAN, SERIES_SPAN, clamp=True)
        end = self.arg_number("end", None, -SERIES_SPAN, SERIES_SPAN, clamp=True)

        def answer() -> str:  # up to a few MB of JSON: encoded off the event loop too
            found = services.compare_metrics(self.mlp.store, refs, key, points, start, end)
            return json.dumps(json_safe(found))

        body = await self.call(answer)
        self.set_header("Content-Type", "application/json")
        self.finish(body)


class RerunHandler(MlpHandler):
    """Execute a run's snapshot again with new parameters (a job); 201 with the new run's id."""

    path = "/runs/{run_id}/rerun"
    FIELDS: dict[str, Callable[[Any, str], Any]] = {
        "params": records.json_object,
        "executor": lambda v, f: records.text(v, f, 100, empty=False),
        "gpus": lambda v, f: records.integer(v, f, 0, records.GPU_MAX),
        "allow_new": records.boolean,
        "kernel": lambda v, f: records.text(v, f, 200, empty=False),
        "name": records.name,
    }

    @tornado.web.authenticated
    @authorized
    async def post(self, ref: str) -> None:
        request = {"executor": self.mlp.default_executor, **self.object_body(self.FIELDS)}
        self.reply(await self.call(
            services.rerun, self.mlp.store, self.mlp.jobs, ref, request, self.who.name
        ), 201)  # fmt: skip


class CancelHandler(MlpHandler):
    path = "/runs/{run_id}/cancel"

    @tornado.web.authenticated
    @authorized
    async def post(self, ref: str) -> None:
        # in the pool: a dask job's task is cancelled over the network
        self.reply(await self.call(
            services.cancel_run, self.mlp.store, self.mlp.jobs, ref, self.who, self.mlp.admins
        ))  # fmt: skip


class ExecutorsHandler(MlpHandler):
    path = "/executors"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        found = await self.call(self.mlp.jobs.executors_status)
        executors = [{"name": e.get("executor"), **e} for e in found]
        self.reply({"executors": executors, "default": self.mlp.default_executor})


HANDLERS: list[type[MlpHandler]] = [
    RerunHandler, CancelHandler, ExecutorsHandler, RunsHandler, RunHandler, ParamsHandler,
    CellsHandler, OutputsHandler, MetricsHandler, GpuHandler, NotebookHandler, BlobHandler,
    CompareHandler, CompareMetricsHandler,
]  # fmt: skip
