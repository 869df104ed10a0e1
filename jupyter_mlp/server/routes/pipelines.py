"""Pipelines: validate a spec, run a .mlpipe file, list and show pipeline runs, cancel one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized

from ... import records
from ...records import RecordError
from .. import services
from .base import MlpHandler


def _path(value: Any, field: str) -> str:
    return records.text(value, field, records.PATH_MAX, empty=False)


class PipelineHandler(MlpHandler):
    async def pipeline_file(self, path: str) -> tuple[dict[str, Any], Path | None]:
        """(spec, folder of the file) read through the contents manager, which keeps every path
        inside the server's root. The folder (for notebook templates named relative to the
        file) is the root joined with the path, checked to stay inside it; None for a contents
        manager that is not a folder on disk."""
        from ...pipelines import spec as pipeline_spec

        cm = self.contents_manager
        try:
            model = await ensure_async(cm.get(path, content=True, type="file", format="text"))
        except tornado.web.HTTPError as exc:
            raise RecordError(
                "path", exc.log_message or f"cannot read {path}", exc.status_code
            ) from None
        spec = pipeline_spec.loads(model["content"], path)
        return spec, _folder_of(getattr(cm, "root_dir", None), path)


def _folder_of(root_dir: Any, path: str) -> Path | None:
    if not isinstance(root_dir, str) or not root_dir:
        return None
    root = Path(root_dir).resolve()
    target = (root / path.lstrip("/")).resolve()
    if target != root and root not in target.parents:
        raise RecordError("path", "is outside the server's root", 404)
    return target.parent


class PipelineValidateHandler(PipelineHandler):
    path = "/pipelines/validate"

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.object_body({"spec": records.json_object, "path": _path})
        if "spec" not in body:
            raise RecordError("spec", "send {spec} (and path, for notebook templates)")
        folder = (await self.pipeline_file(body["path"]))[1] if body.get("path") else None
        self.reply(
            await self.call(services.validate_pipeline, self.mlp.store, body["spec"], folder)
        )


class PipelineRunsHandler(PipelineHandler):
    path = "/pipelines/runs"
    FIELDS: dict[str, Callable[[Any, str], Any]] = {
        "path": _path,
        "params": records.json_object,
        "executor": lambda v, f: records.text(v, f, 100, empty=False),
        "no_cache": records.boolean,
        "resume": lambda v, f: records.text(v, f, 64, empty=False),
    }

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.arg_text("path", records.PATH_MAX)
        root = getattr(self.contents_manager, "root_dir", None)
        self.reply(await self.call(services.pipeline_runs, self.mlp.store, path, root))

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        """Run a .mlpipe file: validated first; 201 with the pipeline run's id."""
        body = self.object_body(self.FIELDS)
        if "path" not in body:
            raise RecordError("path", "must be the .mlpipe file's path")
        spec, folder = await self.pipeline_file(body["path"])
        request = {"executor": self.mlp.default_executor, **body, "base": folder}
        root = getattr(self.contents_manager, "root_dir", None)
        self.reply(await self.call(
            services.start_pipeline, self.mlp, spec, request, root, self.who.name
        ), 201)  # fmt: skip


class PipelineRunHandler(MlpHandler):
    path = "/pipelines/runs/{pipeline_run_id}"

    @tornado.web.authenticated
    @authorized
    async def get(self, pid: str) -> None:
        self.reply(await self.call(services.pipeline_run_detail, self.mlp.store, pid))


class PipelineCancelHandler(MlpHandler):
    path = "/pipelines/runs/{pipeline_run_id}/cancel"

    @tornado.web.authenticated
    @authorized
    async def post(self, pid: str) -> None:
        self.reply(await self.call(
            services.cancel_pipeline, self.mlp.store, pid, self.who, self.mlp.admins
        ))  # fmt: skip


HANDLERS: list[type[MlpHandler]] = [
    PipelineValidateHandler, PipelineRunsHandler, PipelineRunHandler, PipelineCancelHandler,
]  # fmt: skip
