"""What a sweep optimises: `--objective DIRECTION:[metric.|output.]NAME[:last|min|max]`.

    max:val_acc          the last value of metric val_acc (else an output val_acc), maximised
    min:loss:min         the lowest value metric loss reached, minimised
    max:output.score     the output `score` (mlp.output("score", 0.93)), maximised

A metric objective also gives the pruner its intermediate values (the metric's points while the
trial runs); an output has none, so `--prune` needs a metric."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .space import SweepError

AGGREGATES = ("last", "min", "max")
_NAME = re.compile(r"^[^\s:]{1,200}$")


class NoObjective(Exception):
    """A finished trial that reported no usable objective: the trial fails with this reason."""


@dataclass(frozen=True)
class Objective:
    direction: str  # maximize | minimize
    key: str
    source: str = "auto"  # auto (a metric, else an output) | metric | output
    agg: str = "last"

    @property
    def text(self) -> str:
        prefix = "" if self.source == "auto" else f"{self.source}."
        suffix = "" if self.agg == "last" else f":{self.agg}"
        return f"{'max' if self.direction == 'maximize' else 'min'}:{prefix}{self.key}{suffix}"

    @property
    def has_curve(self) -> bool:
        return self.source != "output"

    def better(self, a: float, b: float | None) -> bool:
        if b is None:
            return True
        return a > b if self.direction == "maximize" else a < b

    def as_json(self) -> dict[str, Any]:
        return {"direction": self.direction, "key": self.key, "source": self.source,
                "agg": self.agg, "text": self.text}  # fmt: skip

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Objective:
        return cls(doc["direction"], doc["key"], doc.get("source", "auto"), doc.get("agg", "last"))

    # --- reading a trial's value from the store --------------------------------------------------

    def value(self, conn: Any, run_id: str) -> float:
        """The objective of a finished trial run; NoObjective says why there is none."""
        from ..store.records import metric_keys, metric_series
        from ..store.templates import output_row, output_rows

        if self.source in ("auto", "metric"):
            points = metric_series(conn, run_id, self.key)
            if points:
                return self._reduce([v for _, v, _ in points])
        if self.source in ("auto", "output"):
            row = output_row(conn, run_id, self.key)
            if row is not None:
                if self.agg != "last":
                    raise NoObjective(
                        f"output {self.key!r} is one value: {self.agg} of it is not defined"
                    )
                value = (
                    json.loads(row["value"]) if row["kind"] == "value" and row["value"] else None
                )
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise NoObjective(f"output {self.key!r} is not a number ({row['value']!r:.80})")
                if not math.isfinite(value):
                    raise NoObjective(f"output {self.key!r} is {value}")
                return float(value)
        what = {"auto": "metric or output", "metric": "metric", "output": "output"}[self.source]
        metrics = ", ".join(metric_keys(conn, run_id)) or "none"
        outputs = ", ".join(name for name, _, _ in output_rows(conn, run_id)) or "none"
        raise NoObjective(
            f"the trial reported no {what} {self.key!r} (its metrics: {metrics}; outputs: {outputs})"
        )

    def _reduce(self, values: list[float]) -> float:
        if self.agg == "last":
            value = values[-1]
        else:
            finite = [v for v in values if math.isfinite(v)]
            if not finite:
                raise NoObjective(f"metric {self.key!r} has no finite value")
            value = min(finite) if self.agg == "min" else max(finite)
        if not math.isfinite(value):
            raise NoObjective(f"metric {self.key!r} ended {value}")
        return float(value)

    def curve(self, conn: Any, run_id: str, after: int | None) -> list[tuple[int, float]]:
        """The metric's points past step `after` (what the pruner has not seen yet)."""
        if not self.has_curve:
            return []
        from ..store.records import metric_series

        return [
            (s, v) for s, v, _ in metric_series(conn, run_id, self.key)
            if (after is None or s > after) and s >= 0 and math.isfinite(v)
        ]  # fmt: skip


def parse_objective(text: str | None, flag: str = "--objective") -> Objective:
    """`flag` is how messages name the option (`--objective`; a pipeline's `sweep.objective`)."""
    if not isinstance(text, str) or not text.strip():
        raise SweepError(f"{flag} is required, e.g. max:val_acc or min:loss")
    parts = text.strip().split(":")
    direction = {"max": "maximize", "maximize": "maximize", "min": "minimize",
                 "minimize": "minimize"}.get(parts[0].lower())  # fmt: skip
    if direction is None or len(parts) not in (2, 3):
        raise SweepError(
            f"{flag} {text!r}: write max:NAME or min:NAME, optionally with :last, :min or "
            ":max for a metric (e.g. max:val_acc, min:loss:min, max:output.score)"
        )
    name = parts[1]
    agg = parts[2].lower() if len(parts) == 3 else "last"
    if agg not in AGGREGATES:
        raise SweepError(f"{flag} {text!r}: {parts[2]!r} is not one of last, min, max")
    source = "auto"
    for prefix in ("metric.", "output."):
        if name.startswith(prefix):
            source, name = prefix[:-1], name[len(prefix) :]
    if not _NAME.match(name):
        raise SweepError(f"{flag} {text!r}: {name!r} is not a metric or output name")
    if source == "output" and agg != "last":
        raise SweepError(f"{flag} {text!r}: an output is one value, {agg} of it is not defined")
    return Objective(direction, name, source, agg)
