"""Sweeps: start one from a run (its driver runs in a process of its own, so it outlives the
server), list them, show one with its trials, cancel one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from ... import records
from ...records import RecordError
from .. import services
from .base import MlpHandler

SAMPLERS = ("tpe", "random", "grid")  # sweeps.driver.SAMPLERS, without importing the driver


def _count(hi: int, lo: int = 1) -> Callable[[Any, str], int]:
    return lambda v, f: records.integer(v, f, lo, hi)


class SweepsHandler(MlpHandler):
    path = "/sweeps"
    # One checker per field; the sweep's own checks (the space against the template's
    # parameters, the objective, the executor) follow in sweeps.driver.submit.
    FIELDS: dict[str, Callable[[Any, str], Any]] = {
        "template": lambda v, f: records.text(v, f, 100, empty=False),
        "params": records.space_specs,
        "objective": lambda v, f: records.text(v, f, 300, empty=False),
        "trials": _count(records.SWEEP_TRIALS_MAX),
        "concurrency": _count(records.SWEEP_CONCURRENCY_MAX),
        "sampler": lambda v, f: records.choice(v, f, SAMPLERS),
        "seed": _count(2**31 - 1, 0),
        "prune": records.boolean,
        "prune_startup": _count(records.SWEEP_TRIALS_MAX, 0),
        "prune_warmup": _count(records.INT64_MAX, 0),
        "timeout": lambda v, f: records.number(v, f, 1e-3, records.DURATION_MAX),
        "executor": lambda v, f: records.text(v, f, 100, empty=False),
        "gpus": _count(records.GPU_MAX, 0),
        "allow_new": records.boolean,
        "kernel": lambda v, f: records.text(v, f, 200, empty=False),
        "name": records.name,
    }

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        limit = self.arg_int("limit", 50, 1, records.PAGE_MAX, clamp=True)
        self.reply({"sweeps": await self.store_call(services.list_sweeps, limit)})

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.object_body(self.FIELDS)
        for required in ("template", "params", "objective"):
            if required not in body:
                raise RecordError(required, "is required (template run, params, objective)")
        body.setdefault("executor", self.mlp.default_executor)
        self.reply(await self.call(services.start_sweep, self.mlp.store, body, self.who.name), 201)


class SweepHandler(MlpHandler):
    path = "/sweeps/{sweep_id}"

    @tornado.web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        self.reply(await self.store_call(services.sweep_detail, ref))


class SweepCancelHandler(MlpHandler):
    path = "/sweeps/{sweep_id}/cancel"

    @tornado.web.authenticated
    @authorized
    async def post(self, ref: str) -> None:
        self.reply(await self.call(
            services.cancel_sweep, self.mlp.store, self.mlp.jobs, ref, self.who, self.mlp.admins
        ))  # fmt: skip


HANDLERS: list[type[MlpHandler]] = [SweepsHandler, SweepHandler, SweepCancelHandler]
