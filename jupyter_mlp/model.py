"""Plain data shared by every layer: run statuses, kinds, ids and JSON helpers. No I/O here."""

from __future__ import annotations

import math
import os
import re

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from hashlib import _Hash
    from typing import Any

    from .model_rows import Cell as Cell
    from .model_rows import GpuSample as GpuSample
    from .model_rows import Job as Job
    from .model_rows import JobRequest as JobRequest
    from .model_rows import Run as Run

# Run statuses. `queued` and `running` are live; the rest are final.
QUEUED = "queued"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
INTERRUPTED = "interrupted"
LOST = "lost"
CANCELLED = "cancelled"
PRUNED = "pruned"  # a sweep trial its pruner stopped early (the curve was worse than the median)
STATUSES = (QUEUED, RUNNING, FINISHED, FAILED, INTERRUPTED, LOST, CANCELLED, PRUNED)
FINAL_STATUSES = frozenset((FINISHED, FAILED, INTERRUPTED, LOST, CANCELLED, PRUNED))

# Job states: a job is queued, then running, then one of the final ones.
JOB_STATES = (QUEUED, RUNNING, FINISHED, FAILED, CANCELLED, PRUNED)
FINAL_JOB_STATES = frozenset((FINISHED, FAILED, CANCELLED, PRUNED))

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

# papermill's Python translator starts the cell it injects with this line
INJECTED_HEADER = "# Parameters\n"

RUN_ID_RE = re.compile(r"^[0-9a-f]{12}$")
BLOB_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def new_run_id() -> str:
    """12 hex digits: short enough to type, 48 random bits so kernels never collide."""
    return os.urandom(6).hex()


def sha256(data: bytes = b"") -> _Hash:
    """hashlib.sha256, imported on first use: a run that hashes nothing (a script's track ->
    log_metric -> finish) never loads OpenSSL's hashes (~4 ms of a fresh process)."""
    import hashlib

    return hashlib.sha256(data)


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


ROWS = ("Job", "JobRequest", "Run", "Cell", "GpuSample")


def __getattr__(name: str) -> Any:
    """The row classes (model_rows.py) load on first use: a script's tracker needs none of them
    and so never pays for importing `dataclasses`."""
    if name in ROWS:
        from . import model_rows

        return getattr(model_rows, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- user text shown in a terminal ---------------------------------------------------------------

_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
_CONTROL.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def terminal_text(value: Any, limit: int = 2000, indent: str | None = None) -> str:
    """Text from the store made safe for a terminal: control characters (ANSI escapes, bells,
    newlines, bidi overrides) are shown escaped, never sent raw; at most `limit` characters (an
    old row's 10 MB name does not flood the screen). indent: text of several lines (an error's
    message) keeps its line breaks, each line after the first starting with `indent`."""
    if value is None:
        return "-"
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if indent is None:
        return text.translate(_CONTROL)
    return ("\n" + indent).join(line.translate(_CONTROL) for line in text.split("\n"))


def terminal_table(rows: list[list[str]], out: Any) -> None:
    """Rows of cells (already made safe: terminal_text) in columns, the first row a header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")


def first_line(value: Any) -> Any:
    """The first line of a message shown in a table's row, with "…" if more lines follow."""
    if not isinstance(value, str) or "\n" not in value.strip():
        return value.strip() if isinstance(value, str) else value
    return value.strip().split("\n", 1)[0] + " …"


def close_names(name: str, known: Any, n: int = 1) -> list[str]:
    """The names of `known` closest to a misspelt `name` (difflib's ratio of 0.6 or more), the
    closest first: the "did you mean" of every message that names an unknown field."""
    import difflib  # (on a mistake only: nothing's start pays for it)

    return difflib.get_close_matches(str(name), [str(k) for k in known], n=n)
