"""The search space of a sweep: `-p NAME=SPEC` read and checked against the template run's
parameters (their names and the Python types they were recorded with), before anything is queued.

    -p lr=log:1e-4..1e-1     a float range on a log scale
    -p dropout=0.0..0.5      a float range (linear); 0.0..0.5:0.1 with a step
    -p depth=3..9            an int range (an int parameter); 2..10:2 with a step; log:1..1024
    -p depth=3,5,8           choices, each typed like the parameter (`-p opt=adam,sgd`)
    -p epochs=20             a fixed value (every trial gets it)

A range takes the parameter's type: an int parameter gets an int range (its bounds must be ints),
a float parameter a float range. Choices and fixed values are read as `jupyter mlp rerun -p`
reads a value and must fit the parameter's type the same way (params.fit).

Optuna sees each searched parameter as a distribution; no Optuna import happens here until
`distributions()` is called (the sweep CLI's checks stay cheap).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..params import (
    Given,
    Known,
    ParamError,
    check_name,
    decode,
    fit,
    from_json,
    kind,
    notebook_parameters,
    papermill_value,
    text_value,
    to_json,
)

GRID_MAX = 100_000  # points in a grid search
OPTUNA_SCALARS = (type(None), bool, int, float, str)


class SweepError(ValueError):
    """Bad sweep input: a message naming the parameter (or the option) and what to write;
    `field` says which part of a sweep request it is about (`params.lr`, `objective`,
    `trials`, ...), for the routes' error body."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


RANGE = "range"
CHOICE = "choice"
FIXED = "fixed"


@dataclass
class Dimension:
    name: str
    kind: str  # range | choice | fixed
    type: str | None  # the template parameter's type name
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    is_int: bool = False
    choices: list[Any] = field(default_factory=list)
    value: Any = None

    # --- what the sampler sees ------------------------------------------------------------------

    @property
    def searched(self) -> bool:
        return self.kind != FIXED

    def _by_index(self) -> bool:
        """Choices Optuna cannot hold (tuples, lists, ...) are searched by their index."""
        return not all(type(c) in OPTUNA_SCALARS for c in self.choices)

    def distribution(self) -> Any:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == CHOICE:
            values = list(range(len(self.choices))) if self._by_index() else self.choices
            return CategoricalDistribution(values)
        assert self.low is not None and self.high is not None
        if self.is_int:
            return IntDistribution(int(self.low), int(self.high), log=self.log,
                                   step=int(self.step or 1))  # fmt: skip
        high = self.high
        if self.step:
            high = self.low + self._steps() * self.step
        return FloatDistribution(float(self.low), float(high), log=self.log,
                                 step=float(self.step) if self.step else None)  # fmt: skip

    def _steps(self) -> int:
        assert self.low is not None and self.high is not None and self.step
        return int(math.floor((self.high - self.low) / self.step + 1e-9))

    def grid(self) -> list[Any] | None:
        """The points of a grid search (what GridSampler walks); None: not a grid dimension."""
        if self.kind == CHOICE:
            return list(range(len(self.choices))) if self._by_index() else list(self.choices)
        if self.kind != RANGE or self.log or (not self.is_int and not self.step):
            return None
        assert self.low is not None and self.high is not None
        step = self.step or 1
        count = self._steps() + 1 if self.step else int(self.high - self.low) + 1
        points = [self.low + i * step for i in range(count)]
        if self.is_int:
            return [int(p) for p in points]
        return [round(p, 12) for p in points]

    def value_of(self, sampled: Any) -> Any:
        """The value a trial's notebook gets for what the sampler chose."""
        if self.kind == CHOICE and self._by_index():
            return self.choices[int(sampled)]
        if self.kind == RANGE and self.is_int:
            return int(sampled)
        if self.kind == RANGE:
            return float(sampled)
        return sampled

    # --- the store's copy ------------------------------------------------------------------------

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "type": self.type}
        if self.kind == RANGE:
            doc.update(low=self.low, high=self.high, log=self.log, step=self.step,
                       int=self.is_int)  # fmt: skip
        elif self.kind == CHOICE:
            doc["choices"] = [to_json(c) for c in self.choices]
        else:
            doc["value"] = to_json(self.value)
        return doc

    @classmethod
    def from_json(cls, name: str, doc: dict[str, Any]) -> Dimension:
        d = cls(name=name, kind=doc["kind"], type=doc.get("type"))
        if d.kind == RANGE:
            d.low, d.high, d.log, d.step = doc["low"], doc["high"], doc["log"], doc.get("step")
            d.is_int = bool(doc.get("int"))
        elif d.kind == CHOICE:
            d.choices = [from_json(c) for c in doc["choices"]]
        else:
            d.value = from_json(doc.get("value"))
        return d

    def describe(self) -> str:
        if self.kind == RANGE:
            text = f"{'log:' if self.log else ''}{self.low}..{self.high}"
            return text + (f":{self.step}" if self.step else "")
        if self.kind == CHOICE:
            return ",".join(repr(c) for c in self.choices)
        return repr(self.value)


Space = dict[str, Dimension]


# --- the template's parameters ------------------------------------------------------------------


def template_parameters(conn: Any, blobs: Any, run_id: str) -> dict[str, Known]:
    """The parameters a rerun of `run_id` may set, with their recorded types: the run's stored
    parameters, then the names of its snapshot's parameters cell (as execution.submit reads them)."""
    from ..execution.errors import JobError
    from ..execution.submit import read_notebook
    from ..store.blobs import BlobNotFound
    from ..store.templates import param_rows, template_run

    parent = template_run(conn, run_id)
    if parent is None:
        raise SweepError(f"no run {run_id!r}")
    known: dict[str, Known] = {
        r["key"]: Known(decode(r["value"], r["type"]), r["type"]) for r in param_rows(conn, run_id)
    }
    if parent["snapshot"]:
        try:
            nb = read_notebook(
                blobs.read_bytes(parent["snapshot"]), f"the snapshot of run {run_id}"
            )
        except (BlobNotFound, JobError):
            nb = None  # the dry submit says why, with the rerun's own words
        if nb is not None:
            for key, k in notebook_parameters(nb).items():
                known.setdefault(key, k)
    return known


# --- reading -p ---------------------------------------------------------------------------------

_RANGE = re.compile(
    r"^\s*(?P<log>log:)?\s*(?P<low>[^.:][^:]*?)\s*\.\.\s*(?P<high>[^:]+?)\s*(?::\s*(?P<step>.+?))?\s*$"
)


def _name(name: str) -> str:
    try:
        return check_name(name, "-p")
    except ParamError as exc:
        raise SweepError(str(exc)) from None


def split_assignment(text: str) -> tuple[str, str]:
    name, sep, spec = text.partition("=")
    if not sep:
        raise SweepError(f"-p {text!r}: write NAME=SPEC (e.g. lr=log:1e-4..1e-1, depth=3,5,8)")
    return _name(name.strip()), spec


def _split_choices(spec: str) -> list[str] | None:
    """Top-level commas (outside brackets and quotes) split choices; None: no such comma."""
    parts, depth, quote, current = [], 0, "", ""
    for ch in spec:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    if not parts:
        return None
    parts.append(current)
    return [p.strip() for p in parts]


def _number(name: str, text: str, what: str) -> int | float:
    value = papermill_value(text.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SweepError(f"parameter {name!r}: the range's {what} {text.strip()!r} is not a number")
    return value


def parse_dimension(name: str, spec: str, known: Known | None) -> Dimension:
    """One `-p NAME=SPEC` checked against the template's parameter (None: not a parameter of it,
    refused by parse_space unless new parameters are allowed)."""
    type_name = known.type if known else None
    k = kind(type_name)
    m = _RANGE.match(spec)
    if m and not spec.strip().startswith(("[", "(", "{", "'", '"')):
        return _range(name, spec, m, type_name, k)
    if spec.strip().startswith("log:"):
        raise SweepError(f"parameter {name!r}: a log range is written log:LOW..HIGH, got {spec!r}")
    items = _split_choices(spec)
    if items is not None:
        if any(not i for i in items):
            raise SweepError(f"parameter {name!r}: an empty choice in {spec!r}")
        choices: list[Any] = []
        for item in items:
            value = _fit(name, item, type_name, "choice")
            if any(type(c) is type(value) and c == value for c in choices):
                raise SweepError(f"parameter {name!r}: the choice {item!r} is given twice")
            choices.append(value)
        if len(choices) < 2:  # pragma: no cover - a comma always makes two
            raise SweepError(f"parameter {name!r}: give at least two choices")
        return Dimension(name, CHOICE, type_name, choices=choices)
    return Dimension(name, FIXED, type_name, value=_fit(name, spec, type_name, "value"))


def _fit(name: str, text: str, type_name: str | None, what: str) -> Any:
    try:
        return fit(name, Given(text_value(text), text), type_name)
    except ParamError as exc:
        raise SweepError(f"{what} {text!r} does not fit: {exc}") from None


def _range(name: str, spec: str, m: re.Match[str], type_name: str | None, k: str) -> Dimension:
    if k not in ("int", "float", "none", "other"):
        raise SweepError(
            f"parameter {name!r} is {type_name} in the template run: a range (LOW..HIGH) needs "
            "an int or float parameter; give choices (a,b,c) instead"
        )
    low = _number(name, m["low"], "low end")
    high = _number(name, m["high"], "high end")
    step = _number(name, m["step"], "step") if m["step"] else None
    log = bool(m["log"])
    ints = all(isinstance(v, int) for v in (low, high, step) if v is not None)
    if k == "int" and not ints:
        raise SweepError(
            f"parameter {name!r} is an int in the template run: its range {spec.strip()!r} "
            "must have int bounds and step (e.g. 2..10 or 2..10:2)"
        )
    is_int = k == "int" or (k in ("none", "other") and ints)
    if low == high:
        raise SweepError(
            f"parameter {name!r}: the range {spec.strip()!r} is empty (low equals high); "
            f"give a fixed value ({name}={m['low'].strip()}) instead"
        )
    if low > high:
        raise SweepError(
            f"parameter {name!r}: the range {spec.strip()!r} is inverted (low > high); "
            f"write {m['high'].strip()}..{m['low'].strip()}"
        )
    if log and low <= 0:
        raise SweepError(f"parameter {name!r}: a log range must lie above 0, got {spec.strip()!r}")
    if step is not None:
        if log:
            raise SweepError(
                f"parameter {name!r}: a log range takes no step ({spec.strip()!r}); give choices "
                "for log-spaced points (e.g. 1e-4,1e-3,1e-2)"
            )
        if step <= 0 or step > high - low:
            raise SweepError(
                f"parameter {name!r}: the step {m['step'].strip()} of {spec.strip()!r} must be "
                f"above 0 and at most high - low ({high - low:g})"
            )
    if not is_int:
        low, high = float(low), float(high)
        step = float(step) if step is not None else None
    return Dimension(name, RANGE, type_name, low=low, high=high, log=log, step=step,
                     is_int=is_int)  # fmt: skip


def parse_space(
    specs: list[str] | dict[str, str], known: dict[str, Known], allow_new: bool = False
) -> Space:
    """`-p` texts (or {name: spec}) to a checked space; SweepError names the first bad one."""
    items = list(specs.items()) if isinstance(specs, dict) else [split_assignment(s) for s in specs]
    space: Space = {}
    for name, spec in items:
        try:
            _name(name)
            if name in space:
                raise SweepError(f"parameter {name!r} is given twice")
            if name not in known and not allow_new:
                names = ", ".join(sorted(known)) or "none"
                raise SweepError(
                    f"unknown parameter {name!r}; the template run has: {names} "
                    "(pass --allow-new-params to add new ones)"
                )
            space[name] = parse_dimension(name, spec, known.get(name))
        except SweepError as exc:
            exc.field = exc.field or f"params.{name}"
            raise
    if not any(d.searched for d in space.values()):
        raise SweepError(
            "nothing to search: give at least one parameter choices (-p depth=3,5,8) or a range "
            "(-p lr=log:1e-4..1e-1)",
            "params",
        )
    return space


def check_grid(space: Space) -> int:
    """The size of the grid; SweepError for a dimension that has no grid."""
    size = 1
    for d in space.values():
        if not d.searched:
            continue
        points = d.grid()
        if points is None:
            how = "a log range" if d.log else "a float range without a step"
            raise SweepError(
                f"parameter {d.name!r}: the grid sampler needs choices or a step, and "
                f"{d.describe()} is {how}; write e.g. {d.name}={_example(d)}"
            )
        size *= len(points)
        if size > GRID_MAX:
            raise SweepError(f"the grid has more than {GRID_MAX} points; search fewer values")
    return size


def _example(d: Dimension) -> str:
    if d.log:
        lo, hi = float(d.low or 1), float(d.high or 10)
        return ",".join(f"{v:g}" for v in (lo, math.sqrt(lo * hi), hi))
    return f"{d.low}..{d.high}:{((d.high or 0) - (d.low or 0)) / 4:g}"


def space_json(space: Space) -> dict[str, Any]:
    return {name: d.as_json() for name, d in space.items()}


def space_from_json(doc: dict[str, Any]) -> Space:
    return {name: Dimension.from_json(name, d) for name, d in doc.items()}


def fixed_values(space: Space) -> dict[str, Any]:
    return {name: d.value for name, d in space.items() if not d.searched}


def grid_space(space: Space) -> dict[str, list[Any]]:
    out = {}
    for name, d in space.items():
        if d.searched:
            points = d.grid()
            assert points is not None
            out[name] = points
    return out
