"""Where the store is, for the processes of ours that open it, and what a kernel must never get.

A shared store (PostgreSQL, `MLP_STORE_URL` / `c.MlpApp.store_url`) has an address with
credentials in it. The Jupyter server reads it and removes it from its own environment, so the
kernels it starts never inherit it; its own processes (job processes, pipeline and sweep drivers)
are told it explicitly (`store_env`, with the blobs' address), and a job's kernel is started without it (`without_secrets`):
kernels track through their server with a run token or the server's tracking key instead."""

from __future__ import annotations

from typing import Any

KERNEL_SECRETS = ("MLP_STORE_URL", "MLP_BLOB_URL", "MLP_TRACKING_KEY")


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


def store_env(store: Any) -> dict[str, str]:
    """The environment that opens `store` in a process of ours (a job process, a pipeline's or
    a sweep's driver): MLP_HOME, and for a team's store its address (MLP_STORE_URL) and its
    blobs' (MLP_BLOB_URL), which the server keeps out of its own environment."""
    env = {"MLP_HOME": str(store.home)}
    if getattr(store, "url", None):
        env["MLP_STORE_URL"] = store.url
    if getattr(store, "blob_url", None):
        env["MLP_BLOB_URL"] = store.blob_url
    return env
