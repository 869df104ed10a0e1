"""Who may change what (team mode): everyone on a store reads everything; changing a run
(rename, tags, pin, notes, delete, cancel), cancelling a pipeline run or a sweep is for its
owner and the team's admins. The one rule for the server's routes (server/permissions.py names
the requesting user) and the command line (`local_actor`: this process's OS user)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from .db import os_user


class NotYours(PermissionError):
    """A change of something another user owns (403); str() says whose it is and who may."""


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: `name` (what they create is theirs) and whether they may change
    what anyone owns (`admin`)."""

    name: str
    admin: bool = False


def may_change(who: Actor, owner: str | None) -> bool:
    return who.admin or (owner is not None and owner == who.name)


def check(
    who: Actor, what: str, ident: str, owner: str | None, verb: str, admins: frozenset[str]
) -> None:
    """Raise NotYours unless `who` may `verb` the `what` `ident` owned by `owner`."""
    if may_change(who, owner):
        return
    named = ", ".join(sorted(admins))
    if owner is None:
        may = f"only the team's admins ({named})" if admins else "only the team's admins (none set)"
        raise NotYours(f"{what} {ident} has no recorded owner; {may} may {verb} it")
    may = f"only {owner} and the team's admins ({named})" if admins else f"only {owner}"
    raise NotYours(f"{what} {ident} belongs to {owner}; {may} may {verb} it")


def env_admins() -> frozenset[str]:
    """The team's admins named by $MLP_TEAM_ADMINS (comma- or space-separated user names): the
    command line's, and the server's unless c.MlpApp.team_admins names them."""
    return frozenset(n for n in re.split(r"[,\s]+", os.environ.get("MLP_TEAM_ADMINS", "")) if n)


def check_local(store: Any, what: str, ident: str, owner: str | None, verb: str) -> None:
    """`check` for the command line's user (local_actor): NotYours on someone else's thing on
    a team's store."""
    who, admins = local_actor(store)
    check(who, what, ident, owner, verb, admins)


def local_actor(store: Any) -> tuple[Actor, frozenset[str]]:
    """The command line's user (this process's OS user) and the team's admins. On a store that
    is not shared (and no admins named) its one user changes everything, as the server's."""
    admins = env_admins()
    team = getattr(store, "url", None) is not None or bool(admins)
    name = os_user()
    return Actor(name, admin=(not team) or name in admins), admins
