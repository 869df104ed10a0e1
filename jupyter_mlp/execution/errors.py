"""Errors of the execution layer that callers (the CLI, the server, pipelines) tell apart."""

from __future__ import annotations


class JobError(ValueError):
    """Bad input for a job, found before anything was queued."""
