"""The routes a remote tracker or a remote job calls with its run token (`X-MLP-Run-Token`):
batches of records, blobs, the job's own state, and a stage's input artifacts; and the one a
kernel of this server calls with its tracking key to open its run (`X-MLP-Tracking-Key`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import records
from ...records import RecordError
from .. import services
from .base import Refused, TokenHandler, allow_unauthenticated

MAX_INGEST_BYTES = 64 * 1024 * 1024
MAX_BLOB_BYTES = 2 * 1024**3
MAX_REPORT_BYTES = 64 * 1024


def _batch_rows(batch: dict) -> int:
    sections = ("params", "metrics", "cells", "outputs", "gpu")
    return sum(len(v) for k in sections if isinstance(v := batch.get(k), (list, tuple)))


class IngestHandler(TokenHandler):
    path = "/ingest"

    @allow_unauthenticated
    async def post(self) -> None:
        run_id = await self.token_run()
        if len(self.request.body) > MAX_INGEST_BYTES:
            raise RecordError(
                "body", f"is over {MAX_INGEST_BYTES:,} bytes; send smaller batches", 413
            )
        body = await self.call(self.json_body)  # megabytes of metrics: off the event loop
        if not isinstance(body, dict):
            raise RecordError("body", "send {run_id, seq, batch}")
        if records.run_id(body.get("run_id"), "run_id") != run_id:
            raise Refused(403, "this token cannot write to that run")
        seq = records.integer(body.get("seq"), "seq", 0)
        batch = body.get("batch")
        if not isinstance(batch, dict):
            raise RecordError("batch", f"must be an object, not {type(batch).__name__}")
        if _batch_rows(batch) > records.BATCH_ROWS_MAX:
            raise RecordError(
                "batch", f"holds over {records.BATCH_ROWS_MAX:,} records; send smaller ones", 413
            )
        answer = await self.call(services.ingest_batch, self.mlp.store, run_id, seq, batch)
        self.reply(answer, services.refused_status(answer))


class IngestBlobHandler(TokenHandler):
    path = "/ingest/blobs/{hash}"

    @allow_unauthenticated
    async def put(self, digest: str) -> None:
        run_id = await self.token_run()
        records.blob_hash(digest, "hash")
        if len(self.request.body) > MAX_BLOB_BYTES:
            raise RecordError("body", "blob too large", 413)
        stored = await self.call(
            services.put_blob, self.mlp.store, run_id, digest, self.request.body
        )
        self.reply({"stored": stored})


class IngestJobHandler(TokenHandler):
    """A job on a remote worker (the dask executor) reports its state and learns whether it
    should go on: once its run has ended (cancelled, or failed by the server) the token stops
    working and the answer is 401."""

    path = "/ingest/job"

    @allow_unauthenticated
    async def get(self) -> None:
        run_id = await self.token_run()
        self.reply(await self.call(services.job_state, self.mlp.store, run_id))

    @allow_unauthenticated
    async def post(self) -> None:
        run_id = await self.token_run()
        if len(self.request.body) > MAX_REPORT_BYTES:
            raise RecordError("body", "a job report is a small JSON object", 413)
        body = self.json_body()
        report = records.json_object(body, "body", MAX_REPORT_BYTES)
        self.reply(await self.call(services.job_report, self.mlp.store, run_id, report))


class IngestInputHandler(TokenHandler):
    """A remote pipeline stage downloads the artifacts its parameters name (only those)."""

    path = "/ingest/inputs/{hash}"

    @allow_unauthenticated
    async def get(self, digest: str) -> None:
        run_id = await self.token_run()
        found = await self.call(services.job_input, self.mlp.store, run_id, digest)
        await self.send_file(await self.call(services.open_blob, self.mlp.store, found))


class IngestOpenHandler(TokenHandler):
    """A tracker in a kernel this server started (it holds the server's tracking key, not a run
    token) opens the run it named: created for this server's user, answered with its token."""

    path = "/ingest/open"
    FIELDS: dict[str, Callable[[Any, str], Any]] = {
        "id": records.run_id,
        "created_at": lambda v, f: records.number(v, f, 0, records.TIME_MAX),
    }

    @allow_unauthenticated
    async def post(self) -> None:
        owner = self.key_owner()
        body = self.object_body(self.FIELDS)
        if "id" not in body:
            raise RecordError("id", "is required: the id of the run the tracker opens")
        self.reply(await self.call(
            services.open_tracked_run, self.mlp.store, body["id"], owner, body.get("created_at")
        ), 201)  # fmt: skip


HANDLERS: list[type[TokenHandler]] = [
    IngestHandler, IngestBlobHandler, IngestJobHandler, IngestInputHandler, IngestOpenHandler,
]  # fmt: skip
