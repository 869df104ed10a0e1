"""The one definition of every record that crosses a boundary, with its bounds.

Tracker calls, ingest batches, REST bodies and query parameters, spool lines and rows read back
are all checked here. Standard library only: the kernel imports this module, so it must stay
cheap (`import jupyter_mlp` < 60 ms) and free of pydantic and friends. Hot paths (log_metric at
>1 M points/s) use the inlined fast checks (`fast_key`, `fast_step`) that apply the same bounds.

A check raises `RecordError(field, message)`; callers refuse that record alone and keep going.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from collections.abc import Callable
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
SWEEP_TRIALS_MAX = 100_000  # trials of one sweep (the grid's GRID_MAX points at most too)
SWEEP_CONCURRENCY_MAX = 1_000
SWEEP_SPEC_MAX = 10_000  # one parameter's search text (`log:1e-4..1e-1`, `3,5,8`)


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
    if isinstance(value, int):
        n = value
    else:
        try:  # numpy integers and friends
            import operator

            n = operator.index(value)
        except TypeError:
            raise RecordError(field, f"must be an integer, not {type(value).__name__}") from None
    if not lo <= n <= hi:
        raise RecordError(field, f"{n} is outside [{lo}, {hi}]")
    return n


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
        f = float(value)
    except OverflowError:
        raise RecordError(field, "is too large for a float") from None
    if math.isnan(f) or math.isinf(f):
        if finite:
            raise RecordError(field, f"must be a finite number, not {f}")
        return f
    if not lo <= f <= hi:
        raise RecordError(field, f"{f} is outside [{lo}, {hi}]")
    return f


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
        deep = depth >= JSON_DEPTH_MAX  # a leaf inside is too deep too: walked, to say so
        if isinstance(v, dict):
            if len(v) > LIST_MAX:
                raise RecordError(where, f"has {len(v):,} keys (at most {LIST_MAX:,})", 413)
            cost = 2
            for k, item in v.items():
                if type(k) is type(item) is str and not deep and (k + item).isascii():
                    cost += len(k) + len(item) + 5  # the common case, without a call
                    continue
                if not isinstance(k, str):
                    raise RecordError(where, f"has a key of type {type(k).__name__}")
                if not k.isascii() and _has_surrogate(k):
                    raise RecordError(where, "has a key that is not valid Unicode")
                cost += len(k) + 3
                leaf = _leaf_cost(item)
                if leaf is None or leaf < 0 or deep:
                    walk(item, depth + 1, f"{where}.{k}" if len(k) < 40 else where)
                else:
                    cost += leaf
            budget[0] -= cost
        elif isinstance(v, (list, tuple)):
            if len(v) > LIST_MAX:
                raise RecordError(where, f"has {len(v):,} items (at most {LIST_MAX:,})", 413)
            cost = 2
            for i, item in enumerate(v):
                leaf = _leaf_cost(item)
                if leaf is None or leaf < 0 or deep:
                    walk(item, depth + 1, f"{where}[{i}]")
                else:
                    cost += leaf
            budget[0] -= cost
        else:
            leaf = _leaf_cost(v)
            if leaf is None:
                raise RecordError(where, f"holds a {type(v).__name__}, which JSON cannot hold")
            if leaf < 0:
                raise RecordError(where, "is not valid Unicode (it holds a lone surrogate)")
            budget[0] -= leaf
        if budget[0] < 0:
            raise RecordError(field, f"is larger than {max_bytes:,} bytes", 413)

    walk(value, 0, field)
    return value


def _leaf_cost(v: Any) -> int | None:
    """What a scalar adds to a JSON document's size budget; -1 for a string that is not valid
    Unicode; None for what is not a scalar (a container, or what JSON cannot hold)."""
    if isinstance(v, str):
        return len(v) + 2 if v.isascii() or not _has_surrogate(v) else -1
    if v is None or isinstance(v, bool):
        return 5
    if isinstance(v, int):
        return 20
    if isinstance(v, float):
        return 24
    return None


def json_object(value: Any, field: str, max_bytes: int = JSON_BYTES_MAX) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(field, f"must be an object, not {type(value).__name__}")
    json_value(value, field, max_bytes)  # checks it and gives it back as it is
    return value


def space_specs(value: Any, field: str = "params") -> dict[str, str]:
    """A sweep's search space as `-p` writes it: {parameter: "log:1e-4..1e-1" | "3,5,8" | "20"}.
    A number or bool stands for its fixed value; sweeps.space reads the texts."""
    if not isinstance(value, dict):
        raise RecordError(
            field, f"must be an object of parameter: text, not {type(value).__name__}"
        )
    if len(value) > LIST_MAX:
        raise RecordError(field, f"has more than {LIST_MAX:,} parameters")
    out = {}
    for name_, spec in value.items():
        where = f"{field}.{name_[:60]}"
        key(name_, where)
        if isinstance(spec, bool):
            spec = "True" if spec else "False"
        elif isinstance(spec, (int, float)):
            spec = repr(number(spec, where))
        out[name_] = text(spec, where, SWEEP_SPEC_MAX, empty=False)
    return out


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
    """True when `value` is a valid metric name (type, length, Unicode, no NUL); cheap for the
    usual short printable ASCII str, the full `key()` check otherwise."""
    if type(value) is str and 0 < len(value) <= KEY_MAX and value.isascii() and value.isprintable():
        return not value.isspace()
    return isinstance(value, str) and _key_ok(value)


def _key_ok(value: str) -> bool:
    try:
        key(value)
    except RecordError:
        return False
    return True


def fast_step(value: Any) -> bool:
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


# --- run fields: every column a batch, a route or a reader may touch -----------------------------

STATUSES = (
    "queued", "running", "finished", "failed", "interrupted", "lost", "cancelled", "pruned",
)  # fmt: skip
KINDS = ("interactive", "job", "stage")
CELL_STATUSES = (
    "ok",
    "error",
    "interrupted",
    "running",
)  # running: a job engine's row at cell start
OUTPUT_KINDS = ("value", "artifact")
PARAM_SOURCES_MAX = 50  # `parameters`, `magic`, `api`, `job`, ...
TYPE_NAME_MAX = 200  # a Python type name stored beside a parameter
CELL_ID_MAX = 200
PID_MAX = 2**32


def _opt(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def optional(value: Any, field: str) -> Any:
        return None if value is None else check(value, field)

    return optional


def _short(value: Any, field: str) -> str:
    return text(value, field, TEXT_MAX)


def _path(value: Any, field: str) -> str:
    return text(value, field, PATH_MAX)


def _project(value: Any, field: str) -> str:
    return text(value, field, PROJECT_MAX, empty=False).strip()


def _notes(value: Any, field: str) -> str:
    return text(value, field, NOTES_MAX)


def _pid(value: Any, field: str) -> int:
    return integer(value, field, 1, PID_MAX)


def _status(value: Any, field: str) -> str:
    return choice(value, field, STATUSES)


def _kind(value: Any, field: str) -> str:
    return choice(value, field, KINDS)


def error_doc(value: Any, field: str = "error") -> dict[str, Any]:
    """{ename, evalue, traceback?}: an object whose known keys are strings."""
    doc = json_object(value, field, 200_000)
    for k in ("ename", "evalue", "traceback"):
        if k in doc and not isinstance(doc[k], str):
            raise RecordError(f"{field}.{k}", f"must be a string, not {type(doc[k]).__name__}")
    return doc


def git_doc(value: Any, field: str = "git") -> dict[str, Any]:
    """{commit, branch, dirty, diff (a blob hash), ...}."""
    doc = json_object(value, field, 100_000)
    for k in ("commit", "branch", "root", "remote"):
        if doc.get(k) is not None and not isinstance(doc[k], str):
            raise RecordError(f"{field}.{k}", f"must be a string, not {type(doc[k]).__name__}")
    if doc.get("diff") is not None:
        blob_hash(doc["diff"], f"{field}.diff")
    return doc


def _pipeline_id(value: Any, field: str) -> str:
    return text(value, field, 64, empty=False)


# column -> checker(value, field) -> clean value. None is allowed where the column is nullable.
RUN_FIELDS: dict[str, Any] = {
    "project": _project,
    "name": lambda v, f: name(v, f),
    "status": _status,
    "kind": _kind,
    "parent_id": _opt(run_id),
    "pipeline_run_id": _opt(_pipeline_id),
    "stage": _opt(lambda v, f: name(v, f)),
    "notebook": _opt(_path),
    "snapshot": _opt(blob_hash),
    "end_snapshot": _opt(blob_hash),
    "output_notebook": _opt(blob_hash),
    "kernel": _opt(_short),
    "host": _opt(_short),
    "user": _opt(_short),
    "owner": _opt(_short),
    "pid": _opt(_pid),
    "git": _opt(git_doc),
    "env": _opt(json_object),
    "gpu": _opt(json_object),
    "created_at": timestamp,
    "started_at": optional_timestamp,
    "ended_at": optional_timestamp,
    "heartbeat_at": optional_timestamp,
    "pinned": boolean,
    "tags": lambda v, f: tags(v, f),
    "notes": _notes,
    "error": _opt(error_doc),
}
RUN_JSON_FIELDS = ("git", "env", "gpu", "tags", "error")
RUN_TIME_FIELDS = ("created_at", "started_at", "ended_at", "heartbeat_at")


def run_field(column: str, value: Any, field: str | None = None) -> Any:
    """One run column checked against its definition (RecordError naming `field`)."""
    check = RUN_FIELDS.get(column)
    where = field or f"run.{column}"
    if check is None:
        raise RecordError(where, "is not a run field")
    return check(value, where)


def check_run_fields(fields: Any, where: str = "run") -> tuple[dict[str, Any], list[RecordError]]:
    """Each field alone: the good ones kept, one RecordError per bad one."""
    if not isinstance(fields, dict):
        return {}, [RecordError(where, f"must be an object, not {type(fields).__name__}")]
    clean: dict[str, Any] = {}
    errors: list[RecordError] = []
    for column, value in fields.items():
        try:
            clean[column] = run_field(column, value, f"{where}.{column}")
        except RecordError as exc:
            errors.append(exc)
    return clean, errors


# --- readers: what an older version (or a bad token holder) may have stored ----------------------

_JSON_SHAPES = {"git": dict, "env": dict, "gpu": dict, "error": dict, "tags": list}


def read_json_column(column: str, raw: Any) -> Any:
    """A JSON run column as stored, in the shape readers expect, whatever was written: a wrong
    shape or broken JSON reads as None (tags as [], keeping only string tags)."""
    shape = _JSON_SHAPES.get(column)
    value = raw
    if isinstance(raw, (str, bytes)):
        try:
            import json

            value = json.loads(raw)
        except (ValueError, RecursionError):
            value = None
    if shape is list:
        return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
    if shape is dict and not isinstance(value, dict):
        return None
    return value


def read_number(raw: Any) -> float | None:
    """A REAL column as stored: a finite number, else None (e.g. a heartbeat stored as "later")."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def read_int(raw: Any) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        return None
    return raw


# --- batch rows: the tuples a tracker buffers, the lists an ingest body carries -------------------


def _row(value: Any, field: str, width: int) -> Any:
    if not isinstance(value, (list, tuple)) or len(value) != width:
        raise RecordError(field, f"must be a list of {width} values")
    return value


def metric_point(point: Any, field: str = "metric") -> tuple[Any, ...]:
    """(key, step, value, time): a name, an int64 step, a number (NaN/inf kept), a time."""
    k, s, v, t = _row(point, field, 4)
    return (
        key(k, f"{field}.key"),
        integer(s, f"{field}.step"),
        number(v, f"{field}.value", finite=False),
        timestamp(t, f"{field}.time"),
    )


def param_row(row: Any, field: str = "param") -> tuple[Any, ...]:
    """(key, value as JSON text, Python type name, source)."""
    k, value_json, type_name, source = _row(row, field, 4)
    return (
        key(k, f"{field}.key"),
        json_text(value_json, f"{field}.value"),
        text(type_name, f"{field}.type", TYPE_NAME_MAX),
        text(source, f"{field}.source", PARAM_SOURCES_MAX),
    )


def json_text(value: Any, field: str, max_bytes: int = JSON_BYTES_MAX) -> str:
    """A JSON document as text (NaN/Infinity allowed), bounded like json_value."""
    import json

    doc = text(value, field, max_bytes)
    try:
        decoded = json.loads(doc)
    except RecursionError:
        raise RecordError(field, f"is nested deeper than {JSON_DEPTH_MAX} levels") from None
    except ValueError as exc:
        raise RecordError(field, f"is not JSON ({exc})") from None
    json_value(decoded, field, max_bytes)
    return doc


def output_row(row: Any, field: str = "output") -> tuple[Any, ...]:
    """(name, kind value|artifact, value JSON text, blob, size, filename, created time)."""
    n, kind, value_json, blob, size, filename, created = _row(row, field, 7)
    kind = choice(kind, f"{field}.kind", OUTPUT_KINDS)
    if kind == "artifact":
        blob_hash(blob, f"{field}.blob")
        size = integer(size, f"{field}.size", 0)
    else:
        if blob is not None:
            raise RecordError(f"{field}.blob", "only an artifact has a blob")
        size = None if size is None else integer(size, f"{field}.size", 0)
    return (
        key(n, f"{field}.name"),
        kind,
        json_text(value_json, f"{field}.value"),
        blob,
        size,
        None if filename is None else text(filename, f"{field}.filename", PATH_MAX),
        timestamp(created, f"{field}.created_at"),
    )


def cell_row(row: Any, field: str = "cell") -> tuple[Any, ...]:
    """(seq, cell_id, execution_count, source, started_at, duration, status, error, gpu)."""
    if type(row) is tuple and len(row) == 9 and _plain_cell(*row):
        return row  # the tracker's own usual tuple: the same bounds, inline (writer-thread cost)
    seq, cell_id, count, source, started, duration, status, error, gpu = _row(row, field, 9)
    return (
        integer(seq, f"{field}.seq", 0),
        None if cell_id is None else text(cell_id, f"{field}.cell_id", CELL_ID_MAX),
        None if count is None else integer(count, f"{field}.execution_count", 0),
        "" if source is None else text(source, f"{field}.source", SOURCE_MAX),
        timestamp(started, f"{field}.started_at"),
        number(duration, f"{field}.duration", 0.0, DURATION_MAX),
        choice(status, f"{field}.status", CELL_STATUSES),
        None if error is None else error_doc(error, f"{field}.error"),
        None if gpu is None else json_object(gpu, f"{field}.gpu", 100_000),
    )


def _plain_cell(seq: Any, cell_id: Any, count: Any, source: Any, started: Any, duration: Any,
                status: Any, error: Any, gpu: Any) -> bool:  # fmt: skip
    return (
        type(seq) is int
        and 0 <= seq <= INT64_MAX
        and (cell_id is None or (type(cell_id) is str and _plain_text(cell_id, CELL_ID_MAX)))
        and (count is None or (type(count) is int and 0 <= count <= INT64_MAX))
        and type(source) is str
        and _plain_text(source, SOURCE_MAX)
        and type(started) is float
        and TIME_MIN <= started <= TIME_MAX
        and type(duration) is float
        and 0.0 <= duration <= DURATION_MAX
        and status in CELL_STATUSES
        and error is None
        and gpu is None
    )


def _plain_text(value: str, max_len: int) -> bool:
    """ASCII without NUL, within max_len: valid by `text()` without the encode round trip."""
    return len(value) <= max_len and value.isascii() and "\x00" not in value


GPU_MAX = 1024  # device index


def gpu_sample(row: Any, field: str = "gpu") -> tuple[Any, ...]:
    """(gpu, time, util, mem_used, proc_mem, power_w, temp_c, sm_clock_mhz, energy_j): readings
    may be None (not supported by the card) but never NaN."""
    gpu, t, *readings = _row(row, field, 9)
    names = ("util", "mem_used", "proc_mem", "power", "temp", "sm_clock", "energy")
    return (
        integer(gpu, f"{field}.gpu", 0, GPU_MAX),
        timestamp(t, f"{field}.time"),
        *(None if r is None else number(r, f"{field}.{n}") for r, n in zip(readings, names)),
    )


def cell_gpu_row(row: Any, field: str = "cell_gpu") -> tuple[int, dict[str, Any]]:
    """(seq, figures): the GPU figures of one cell of a job's run, which a tracker inside the job
    measures while the engine owns the cell row itself."""
    seq, figures = _row(row, field, 2)
    return integer(seq, f"{field}.seq", 0), json_object(figures, f"{field}.gpu", 200_000)


ROW_CHECKS = {
    "params": param_row, "cells": cell_row, "outputs": output_row, "gpu": gpu_sample,
    "cell_gpu": cell_gpu_row,
}  # fmt: skip
BATCH_KEYS = (
    "run", "heartbeat", "params", "metrics", "cells", "outputs", "gpu", "compact_gpu", "cell_gpu",
)  # fmt: skip


def check_metrics(
    points: Any, field: str = "metrics", max_rows: int | None = BATCH_ROWS_MAX
) -> tuple[list[Any], list[RecordError]]:
    """Metric points, each alone. A cheap inline test per point; the full definition
    (`metric_point`) only for a point that fails it, to name the field. The store's writer checks
    the same bounds in C speed while packing (`store.records.write_metrics`)."""
    if not isinstance(points, (list, tuple)):
        return [], [RecordError(field, f"must be a list, not {type(points).__name__}")]
    if max_rows is not None and len(points) > max_rows:
        return [], [RecordError(field, f"has {len(points):,} rows (at most {max_rows:,})", 413)]
    if not points:
        return [], []
    clean: list[Any] = []
    errors: list[RecordError] = []
    good_keys: set[str] = set()
    lo, hi, tlo, thi = INT64_MIN, INT64_MAX, TIME_MIN, TIME_MAX
    append = clean.append
    for i, point in enumerate(points):
        if type(point) in (tuple, list) and len(point) == 4:
            k, s, v, t = point
            if (
                type(s) is int
                and lo <= s <= hi
                and type(v) in (float, int)
                and type(t) is float
                and tlo <= t <= thi
                and (k in good_keys if type(k) is str else False)
            ):
                append(point)
                continue
        try:
            point = metric_point(point, f"{field}[{i}]")
        except RecordError as exc:
            errors.append(exc)
        else:
            good_keys.add(point[0])
            append(point)
    return clean, errors


def check_rows(
    section: str, rows: Any, max_rows: int | None = BATCH_ROWS_MAX
) -> tuple[list[Any], list[RecordError]]:
    """The rows of one batch section, each alone (max_rows=None: no count limit, for a local
    tracker's own batches)."""
    if section == "metrics":
        return check_metrics(rows, max_rows=max_rows)
    if not isinstance(rows, (list, tuple)):
        return [], [RecordError(section, f"must be a list, not {type(rows).__name__}")]
    if max_rows is not None and len(rows) > max_rows:
        return [], [RecordError(section, f"has {len(rows):,} rows (at most {max_rows:,})", 413)]
    check = ROW_CHECKS[section]
    clean, errors = [], []
    for i, row in enumerate(rows):
        try:
            clean.append(check(row, f"{section}[{i}]"))
        except RecordError as exc:
            errors.append(exc)
    return clean, errors


def check_batch(
    batch: Any, max_rows: int | None = BATCH_ROWS_MAX
) -> tuple[dict[str, Any], list[RecordError]]:
    """A tracker batch checked record by record: (what may be written, what was refused and why).
    A bad record is dropped alone; field names say where (`metrics[3].step`, `run.heartbeat_at`)."""
    if not isinstance(batch, dict):
        return {}, [RecordError("batch", f"must be an object, not {type(batch).__name__}")]
    clean: dict[str, Any] = {}
    errors: list[RecordError] = []
    for section, value in batch.items():
        if section not in BATCH_KEYS:
            shown = section if isinstance(section, str) and len(section) < 60 else "?"
            errors.append(RecordError(f"batch.{shown}", "is not a batch section"))
        elif section == "run":
            fields, bad = check_run_fields(value)
            errors.extend(bad)
            if fields:
                clean["run"] = fields
        elif section == "heartbeat":
            if value is None or value is False:
                continue
            try:
                clean["heartbeat"] = timestamp(value, "heartbeat")
            except RecordError as exc:
                errors.append(exc)
        elif section == "compact_gpu":
            if value:
                clean["compact_gpu"] = True
        else:
            rows, bad = check_rows(section, value, max_rows)
            errors.extend(bad)
            if rows:
                clean[section] = rows
    return clean, errors


# --- spool lines: one JSON object per line, written by the tracker, read back after a crash ------


def spool_line(line: Any, field: str = "spool") -> dict[str, Any]:
    """One line of a tracker spool: {"seq": int, "batch": {...}} or {"blob": sha256}. A torn or
    foreign line raises RecordError (the reader skips it with a note and goes on)."""
    import json

    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError(field, "is not UTF-8 text") from None
    try:
        item = json.loads(line)
    except (ValueError, RecursionError):
        raise RecordError(field, "is not a complete JSON line (torn by a crash?)") from None
    if not isinstance(item, dict):
        raise RecordError(field, "must be a JSON object")
    if "blob" in item:
        blob_hash(item["blob"], f"{field}.blob")
        return item
    integer(item.get("seq"), f"{field}.seq", 0)
    if not isinstance(item.get("batch"), dict):
        raise RecordError(f"{field}.batch", "must be an object")
    return item
