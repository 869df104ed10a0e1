"""Route handlers: parse, authorize, call one store function, serialize. No logic here."""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler

from ..model import json_safe
from ..store import FilterError, RunNotFound
from ..store import runs as run_store


class MlpHandler(APIHandler):
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


class RunsHandler(MlpHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        try:
            limit = min(max(int(self.get_argument("limit", "100")), 1), 1000)
        except ValueError:
            return self.fail(400, "limit must be an integer")
        try:
            run_store.mark_lost(self.conn(), self.mlp.heartbeat_timeout)
            runs = run_store.list_runs(
                self.conn(),
                project=self.get_argument("project", None) or None,
                filter=self.get_argument("filter", None),
                sort=self.get_argument("sort", None),
                limit=limit,
            )
        except FilterError as exc:
            return self.fail(400, exc.message, position=exc.position)
        self.reply({"runs": runs, "next": None})


class RunHandler(MlpHandler):
    @tornado.web.authenticated
    def get(self, run_id: str) -> None:
        try:
            run = run_store.get_run(self.conn(), run_id)
        except RunNotFound as exc:
            return self.fail(404, str(exc))
        self.reply(run)


def handlers() -> list[tuple[str, type]]:
    return [
        (r"/mlp/api/runs", RunsHandler),
        (r"/mlp/api/runs/([^/]+)", RunHandler),
    ]
