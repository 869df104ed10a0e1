"""Who the user is to jupyter-mlp: what the UI shows or hides (team mode)."""

from __future__ import annotations

import tornado.web
from jupyter_server.auth.decorator import authorized

from .. import services
from .base import MlpHandler


class MeHandler(MlpHandler):
    """{name, admin, team, store}: the name what this user creates is owned by, whether they
    may change what anyone owns, whether the store is a team's, and its address (no password)."""

    path = "/me"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(services.me(self.mlp, self.who))


HANDLERS: list[type[MlpHandler]] = [MeHandler]
