"""Who asks, and what they may change (team mode).

Everyone on the store reads everything. Changing a run (rename, tags, pin, notes, delete,
cancel), a pipeline run (cancel) or a sweep (cancel) is for its owner and the team's admins.
The route handlers keep jupyter_server's `@authorized` (the server's Authorizer decides the
action on the resource "mlp"; under JupyterHub it composes with the Hub's scopes); this module is
the one ownership check after it, raised by the service layer as `NotYours` (a PermissionError:
403 in the routes' one error table) with a reason a person can act on."""

from __future__ import annotations

import os
from typing import Any

from ..store.db import os_user
from ..store.owners import Actor, NotYours, check, may_change

__all__ = ["Actor", "NotYours", "actor", "check", "hub_identity", "may_change", "owner_name"]


def hub_identity(identity_provider: Any = None) -> bool:
    """Whether the Jupyter login names a person: under JupyterHub (JUPYTERHUB_USER set), or with
    an identity provider other than jupyter_server's own token/password ones. A plain
    single-user server's token login is a random anonymous name, never stored as an owner."""
    if os.environ.get("JUPYTERHUB_USER"):
        return True
    if identity_provider is None:
        return False
    return not type(identity_provider).__module__.startswith("jupyter_server.")


def owner_name(current_user: Any, hub: bool) -> str:
    """The one rule for who owns what a request creates: the Jupyter user's name where the login
    names a person (`hub`), else this process's OS user (single-seat, as without a server)."""
    if hub:
        name = getattr(current_user, "username", None)
        if isinstance(name, str) and name:
            return name
    return os_user()


def actor(current_user: Any, hub: bool, team: bool, admins: frozenset[str]) -> Actor:
    """The Actor of a request. Where the store is not shared (single-seat), its one user may
    change everything in it, as before team mode."""
    name = owner_name(current_user, hub)
    return Actor(name, admin=(not team) or name in admins)
