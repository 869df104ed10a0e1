"""Where the store is, for the processes of ours that open it, and what a kernel must never get.

A shared store (PostgreSQL, `MLP_STORE_URL` / `c.MlpApp.store_url`) has an address with
credentials in it. The Jupyter server reads it and removes it from its own environment, so the
kernels it starts never inherit it; its own processes (job processes, pipeline and sweep drivers)
are told it explicitly (`store_env`), and a job's kernel is started without it (`without_secrets`):
kernels track through their server with a run token or the server's tracking key instead."""

from __future__ import annotations

import contextlib
import inspect
import os
from pathlib import Path
from typing import Any

KERNEL_SECRETS = ("MLP_STORE_URL", "MLP_TRACKING_KEY")


def without_secrets(env: dict[str, str]) -> dict[str, str]:
    """`env` less KERNEL_SECRETS: the environment a kernel may be started with."""
    return {k: v for k, v in env.items() if k not in KERNEL_SECRETS}


def job_kernel_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a job's kernel from its job process's: never the server's tracking
    key (the job has its run), and not the store's address either when the kernel tracks
    through the server with its run's token (team mode). A job started without a server (the
    CLI) keeps it: its kernel's tracker writes to the store the job process writes to."""
    if env.get("MLP_TRACKING_TOKEN"):
        return without_secrets(env)
    return {k: v for k, v in env.items() if k != "MLP_TRACKING_KEY"}


def store_url_of(store: Any) -> str | None:
    """The address of a store that is not the SQLite file under its home (a shared store), or
    None: what a process of ours must be told to open the same store."""
    url = getattr(store, "url", None)
    return url if isinstance(url, str) and url and not url.startswith("sqlite") else None


def store_env(home: Path | str, store_url: str | None = None) -> dict[str, str]:
    """The environment that opens the same store in a process of ours: MLP_HOME, and
    MLP_STORE_URL for a shared store."""
    env = {"MLP_HOME": str(home)}
    if store_url:
        env["MLP_STORE_URL"] = store_url
    return env


def open_store(
    home: str | os.PathLike[str] | None = None, url: str | None = None, blob_url: str | None = None
) -> Any:
    """The store at `url` (a shared one), else the SQLite store under `home`; StoreUnavailable
    when this jupyter-mlp's store cannot open such an address."""
    from ..store import Store, StoreUnavailable
    from ..store.db import safe_url

    accepted = inspect.signature(Store).parameters
    given: dict[str, str] = {}
    for name, value in (("url", url), ("blob_url", blob_url)):
        if not value:
            continue
        if name not in accepted:
            raise StoreUnavailable(
                safe_url(value), "cannot be opened by this jupyter-mlp (it has no backend "
                "for such an address)", "install a jupyter-mlp that has one, or leave "
                f"{'MLP_STORE_URL' if name == 'url' else 'the blob address'} unset",
            )  # fmt: skip
        given[name] = value
    store = Store(home or None, **given)
    if url and not getattr(store, "url", None):  # so that our processes are told it (store_env)
        with contextlib.suppress(AttributeError):
            store.url = url
    return store
