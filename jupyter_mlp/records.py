"""The one definition of every record that crosses a boundary, with its bounds.

Tracker calls, ingest batches, REST bodies and query parameters, spool lines and rows read back
are all checked here. Standard library only: the kernel imports this module, so it must stay
cheap (`import jupyter_mlp` < 60 ms) and free of pydantic and friends. Hot paths (log_metric at
>1 M points/s) use the inlined fast checks (`fast_key`, `fast_step`) that apply the same bounds.

A check raises `RecordError(field, message)`; callers refuse that record alone and keep going.
"""

from __future__ import annotations

import math
from typing import Any

# --- bounds: one size limit per field, whatever the route ---------------------------------------
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NAME_MAX = 500  # run name, stage name, pipeline name (characters)
KEY_MAX = 250  # metric / parameter / output name
PROJECT_MAX = 200
TAG_MAX = 100  # one tag
TAGS_MAX = 100  # tags per run
NOTES_MAX = 10_000
TEXT_MAX = 10_000  # short free text: host, user, kernel, an error message
PATH_MAX = 4_096  # a notebook path or a working directory
SOURCE_MAX = 10_000_000  # one cell's source text
JSON_DEPTH_MAX = 32  # nesting of any JSON value we store
JSON_BYTES_MAX = 1_000_000  # one parameter / output value / env document, encoded
LIST_MAX = 10_000  # items of a JSON list or dict we accept
FILTER_MAX = 10_000  # a filter expression (characters)
FILTER_TERMS_MAX = 200  # comparisons in one filter
FILTER_DEPTH_MAX = 32  # parentheses / `not` nesting
BATCH_ROWS_MAX = 500_000  # records in one ingest request
PAGE_MAX = 1_000  # runs in one listing page
POINTS_MAX = 100_000  # points of a downsampled series
EVENTS_TIMEOUT_MAX = 60.0  # seconds an event long-poll may wait
TIME_MIN = 0.0  # a wall-clock time (seconds since the epoch)
TIME_MAX = 32_503_680_000.0  # year 3000
DURATION_MAX = 10 * 365 * 86_400.0


class RecordError(ValueError):
    """A record that does not fit its definition. `field` names where (`metrics[3].step`,
    `run.tags`, `name`); `status` is the HTTP answer a route gives for it."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


# --- primitives ---------------------------------------------------------------------------------


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text(value: Any, field: str, max_len: int = TEXT_MAX, *, empty: bool = True) -> str:
    """A string of valid Unicode, at most max_len characters, no NUL."""
    if not isinstance(value, str):
        raise RecordError(field, f"must be a string, not {type(value).__name__}")
    if len(value) > max_len:
        raise RecordError(field, f"is {len(value):,} characters long (at most {max_len:,})", 413)
    if not empty and not value.strip():
        raise RecordError(field, "must not be empty")
    if "\x00" in value:
        raise RecordError(field, "holds a NUL character")
    if _has_surrogate(value):
        raise RecordError(field, "is not valid Unicode (it holds a lone surrogate)")
    return value


def optional_text(value: Any, field: str, max_len: int = TEXT_MAX) -> str | None:
    return None if value is None else text(value, field, max_len)


def name(value: Any, field: str = "name") -> str:
    return text(value, field, NAME_MAX, empty=False)


def key(value: Any, field: str = "key") -> str:
    """A metric, parameter or output name."""
    return text(value, field, KEY_MAX, empty=False)


def tags(value: Any, field: str = "tags") -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise RecordError(field, f"must be a list of strings, not {type(value).__name__}")
    if len(value) > TAGS_MAX:
        raise RecordError(field, f"has {len(value)} tags (at most {TAGS_MAX})", 413)
    out: list[str] = []
    for i, tag in enumerate(value):
        tag = text(tag, f"{field}[{i}]", TAG_MAX, empty=False).strip()
        if tag not in out:
            out.append(tag)
    return out


def integer(value: Any, field: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    """An int (not a bool), inside [lo, hi] (int64 by default). Integral floats are accepted."""
    if isinstance(value, bool):
        raise RecordError(field, "must be an integer, not a bool")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        try:  # numpy integers and friends
            import operator

            value = operator.index(value)
        except TypeError:
            raise RecordError(field, f"must be an integer, not {type(value).__name__}") from None
    if not lo <= value <= hi:
        raise RecordError(field, f"{value} is outside [{lo}, {hi}]")
    return value


def number(value: Any, field: str, lo: float = -math.inf, hi: float = math.inf,
           *, finite: bool = True) -> float:  # fmt: skip
    """A real number (not a bool); finite unless finite=False (metric values keep NaN/inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, Decimal
        except (TypeError, ValueError):
            raise RecordError(field, f"must be a number, not {type(value).__name__}") from None
        if isinstance(value, bool):
            raise RecordError(field, "must be a number, not a bool")
    try:
        value = float(value)
    except OverflowError:
        raise RecordError(field, "is too large for a float") from None
    if math.isnan(value) or math.isinf(value):
        if finite:
            raise RecordError(field, f"must be a finite number, not {value}")
        return value
    if not lo <= value <= hi:
        raise RecordError(field, f"{value} is outside [{lo}, {hi}]")
    return value


def timestamp(value: Any, field: str) -> float:
    return number(value, field, TIME_MIN, TIME_MAX)


def optional_timestamp(value: Any, field: str) -> float | None:
    return None if value is None else timestamp(value, field)


def choice(value: Any, field: str, allowed: Any) -> str:
    if not isinstance(value, str) or value not in allowed:
        shown = value if isinstance(value, str) and len(value) < 60 else type(value).__name__
        raise RecordError(field, f"{shown!r} is not one of {', '.join(sorted(allowed))}")
    return value


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise RecordError(field, f"must be true or false, not {type(value).__name__}")
    return value


def json_value(value: Any, field: str, max_bytes: int = JSON_BYTES_MAX) -> Any:
    """A JSON document of bounded depth, length and size, with valid Unicode strings and string
    keys. Non-finite floats are allowed (stored as JS does: "NaN" etc. by model.json_safe)."""
    budget = [max_bytes]

    def walk(v: Any, depth: int, where: str) -> None:
        if depth > JSON_DEPTH_MAX:
            raise RecordError(field, f"is nested deeper than {JSON_DEPTH_MAX} levels")
        if v is None or isinstance(v, bool):
            budget[0] -= 5
        elif isinstance(v, int):
            budget[0] -= 20
        elif isinstance(v, float):
            budget[0] -= 24
        elif isinstance(v, str):
            if _has_surrogate(v):
                raise RecordError(where, "is not valid Unicode (it holds a lone surrogate)")
            budget[0] -= len(v) + 2
        elif isinstance(v, (list, tuple)):
            if len(v) > LIST_MAX:
                raise RecordError(where, f"has {len(v):,} items (at most {LIST_MAX:,})", 413)
            budget[0] -= 2
            for i, item in enumerate(v):
                walk(item, depth + 1, f"{where}[{i}]")
        elif isinstance(v, dict):
            if len(v) > LIST_MAX:
                raise RecordError(where, f"has {len(v):,} keys (at most {LIST_MAX:,})", 413)
            budget[0] -= 2
            for k, item in v.items():
                if not isinstance(k, str):
                    raise RecordError(where, f"has a key of type {type(k).__name__}")
                if _has_surrogate(k):
                    raise RecordError(where, "has a key that is not valid Unicode")
                budget[0] -= len(k) + 3
                walk(item, depth + 1, f"{where}.{k}" if len(k) < 40 else where)
        else:
            raise RecordError(where, f"holds a {type(v).__name__}, which JSON cannot hold")
        if budget[0] < 0:
            raise RecordError(field, f"is larger than {max_bytes:,} bytes", 413)

    walk(value, 0, field)
    return value


def json_object(value: Any, field: str, max_bytes: int = JSON_BYTES_MAX) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(field, f"must be an object, not {type(value).__name__}")
    return json_value(value, field, max_bytes)


def run_id(value: Any, field: str = "run_id") -> str:
    from .model import RUN_ID_RE

    if not isinstance(value, str) or not RUN_ID_RE.match(value):
        raise RecordError(field, "must be a run id (12 hex digits)")
    return value


def blob_hash(value: Any, field: str = "blob") -> str:
    from .model import BLOB_HASH_RE

    if not isinstance(value, str) or not BLOB_HASH_RE.match(value):
        raise RecordError(field, "must be a sha256 hex digest")
    return value


def optional_blob(value: Any, field: str) -> str | None:
    return None if value is None else blob_hash(value, field)


# --- the hot path: the same bounds, inlined for log_metric at >1 M points/s ------------------


def fast_key(value: Any) -> bool:
    """True when `value` is a valid metric name (type, length, Unicode); cheap for the usual str."""
    return (
        type(value) is str
        and 0 < len(value) <= KEY_MAX
        and value.isascii()
        or (isinstance(value, str) and _key_ok(value))
    )


def _key_ok(value: str) -> bool:
    try:
        key(value)
    except RecordError:
        return False
    return True


def fast_step(value: Any) -> bool:
    return type(value) is int and INT64_MIN <= value <= INT64_MAX
