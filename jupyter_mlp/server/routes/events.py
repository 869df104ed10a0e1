"""The live event feed (long-poll): events after `after`, waiting up to `timeout` seconds."""

from __future__ import annotations

import tornado.web
from jupyter_server.auth.decorator import authorized

from ... import records
from .base import MlpHandler

AFTER_MAX = 2**62
EVENTS_LIMIT_MAX = 10_000


class EventsHandler(MlpHandler):
    path = "/events"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        feed = self.mlp.feed
        after = self.arg_int("after", None, 0, AFTER_MAX)
        timeout = self.arg_number("timeout", 25.0, 0.0, records.EVENTS_TIMEOUT_MAX, clamp=True)
        limit = self.arg_int("limit", 1000, 1, EVENTS_LIMIT_MAX, clamp=True)
        if after is None:
            return self.reply({"events": [], "last": await self.call(feed.last_id)})
        assert timeout is not None and limit is not None
        found = await feed.wait(after, timeout, limit)
        self.reply({"events": found, "last": found[-1]["id"] if found else after})


HANDLERS: list[type[MlpHandler]] = [EventsHandler]
