"""Plain data shared by every layer: run statuses, kinds, ids and JSON helpers. No I/O here."""

from __future__ import annotations

import math
import os
import re
from typing import Any

# Run statuses. `queued` and `running` are live; the rest are final.
QUEUED = "queued"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
INTERRUPTED = "interrupted"
LOST = "lost"
CANCELLED = "cancelled"
STATUSES = (QUEUED, RUNNING, FINISHED, FAILED, INTERRUPTED, LOST, CANCELLED)
FINAL_STATUSES = frozenset((FINISHED, FAILED, INTERRUPTED, LOST, CANCELLED))

# Cell outcomes.
CELL_OK = "ok"
CELL_ERROR = "error"
CELL_INTERRUPTED = "interrupted"

# Run kinds.
INTERACTIVE = "interactive"
JOB = "job"
STAGE = "stage"
KINDS = (INTERACTIVE, JOB, STAGE)

DEFAULT_PROJECT = "default"

RUN_ID_RE = re.compile(r"^[0-9a-f]{12}$")
BLOB_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def new_run_id() -> str:
    """12 hex digits: short enough to type, 48 random bits so kernels never collide."""
    return os.urandom(6).hex()


def is_run_id(value: str) -> bool:
    return bool(RUN_ID_RE.match(value))


def json_safe(value: Any) -> Any:
    """Make a value strict-JSON serialisable: non-finite floats become the strings JS uses."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def python_type(value: Any) -> str:
    """The type name stored beside a parameter, so reruns can give values back their type."""
    if value is None:
        return "None"
    return type(value).__name__
