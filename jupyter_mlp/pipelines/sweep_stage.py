"""A stage with a `"sweep"` block: its template's parameters searched by a sweep, whose best
trial is the stage's run (its outputs feed the stages downstream).

    "train": {"template": {"notebook": "train.ipynb"},
              "parameters": {"data": "${prepare.outputs.data}", "epochs": 20},
              "sweep": {"params": {"lr": "log:1e-4..1e-1", "depth": "3,5,8"},
                        "objective": "max:val_acc", "trials": 8, "concurrency": 2,
                        "sampler": "tpe", "prune": false, "seed": 0}}

The block's texts and settings are those of `jupyter mlp sweep` (`-p`, `--objective`,
`--trials`, ...), read and checked by the same functions (sweeps.driver.plan); the stage's own
parameters, literal or bound from upstream, stay fixed for every trial, so a parameter is either
searched or given, never both. The seed defaults to 0 (a pipeline reruns the same search)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import records
from ..params import Known, notebook_parameters
from . import spec as S

if TYPE_CHECKING:
    from ..sweeps.driver import Plan

SETTINGS = ("params", "objective", "trials", "concurrency", "sampler", "seed", "prune",
            "prune_startup", "prune_warmup", "timeout")  # fmt: skip
DEFAULT_SEED = 0
DEFAULT_CONCURRENCY = 2


def is_sweep(stage: Any) -> bool:
    return isinstance(stage, dict) and "sweep" in stage


def concurrency(stage: dict[str, Any]) -> int:
    """How many trials of the stage's sweep run at once (warm kernels to keep for them)."""
    value = (stage.get("sweep") or {}).get("concurrency", DEFAULT_CONCURRENCY)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def flag(name: str) -> str:
    return f"sweep.{name}"


def known_parameters(conn: Any, blobs: Any, template: Any) -> dict[str, Known]:
    """The parameters a trial may set, with their types: a template run's as `jupyter mlp
    sweep` reads them, a notebook template's from its parameters cell. `template` is a
    validate.Template."""
    if template.run_id is not None:
        from ..sweeps.space import template_parameters

        return template_parameters(conn, blobs, template.run_id)
    return notebook_parameters(json.loads(template.code(blobs)))


def stage_plan(name: str, stage: dict[str, Any], known: dict[str, Known]) -> Plan:
    """The stage's sweep, checked; SweepError with a message that names the stage and a
    `field` under `sweep` (`sweep.params.lr`, `sweep.trials`, ...) on the first problem.
    (The sweep modules load here: a pipeline without a sweep stage does not import them.)"""
    from ..sweeps.driver import PRUNE_STARTUP, plan
    from ..sweeps.space import SweepError

    block = stage.get("sweep")
    if not isinstance(block, dict):
        raise SweepError(
            f"stage {name!r}: sweep must be an object with params and objective", "sweep"
        )
    for key in block:
        if key not in SETTINGS:
            raise SweepError(
                f"stage {name!r}: sweep has no setting {key!r} (it takes: {', '.join(SETTINGS)})",
                flag(key),
            )
    try:
        params = records.space_specs(block.get("params", {}), flag("params"))
        objective = block.get("objective")
        if objective is not None:
            records.text(objective, flag("objective"), 300, empty=False)
        for key, hi in (("trials", records.SWEEP_TRIALS_MAX),
                        ("concurrency", records.SWEEP_CONCURRENCY_MAX), ("seed", 2**31 - 1),
                        ("prune_startup", records.SWEEP_TRIALS_MAX),
                        ("prune_warmup", records.INT64_MAX)):  # fmt: skip
            value = block.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                records.integer(value, flag(key), records.INT64_MIN, hi)
        timeout = block.get("timeout")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
            records.number(timeout, flag("timeout"), 1e-3, records.DURATION_MAX)
    except records.RecordError as exc:
        raise SweepError(f"stage {name!r}: {exc}", exc.field) from None
    raw = stage.get("parameters")
    given: dict[str, Any] = raw if isinstance(raw, dict) else {}
    allow_new = stage.get("allow_new_params") is True
    for param, text in params.items():
        where = flag(f"params.{param}")
        if S.bare_dollar_brace(text):
            raise SweepError(
                f"stage {name!r}: {where}: {text!r} is a reference; a swept parameter takes a "
                "sweep text (log:1e-4..1e-1, 0..1:0.1, 3,5,8); give a value from upstream in "
                '"parameters" instead, where it stays fixed for every trial',
                where,
            )
        if param in given:
            ref = S.parse_ref(given[param])
            how = (
                f"bound from upstream ({ref})"
                if ref is not None and not ref.is_pipeline
                else f"given in parameters ({json.dumps(given[param])[:80]})"
            )
            raise SweepError(
                f"stage {name!r}: {where}: parameter {param!r} is swept and also {how}; a "
                "parameter of the stage stays fixed for every trial, so search it or give it, "
                "not both",
                where,
            )
        if param not in known and not allow_new:
            has = ", ".join(sorted(known)) or "none"
            raise SweepError(
                f"stage {name!r}: {where}: the template has no parameter {param!r} (it has: "
                f'{has}; "allow_new_params": true on the stage adds new ones)',
                where,
            )
    try:
        return plan(
            params, known, objective, trials=block.get("trials"),
            concurrency=block.get("concurrency", DEFAULT_CONCURRENCY),
            sampler=block.get("sampler", "tpe"), seed=block.get("seed", DEFAULT_SEED),
            prune=block.get("prune", False), prune_startup=block.get("prune_startup", PRUNE_STARTUP),
            prune_warmup=block.get("prune_warmup", 0), timeout=block.get("timeout"),
            allow_new=True, flag=flag,
        )  # fmt: skip
    except SweepError as exc:
        field = flag(exc.field) if exc.field else "sweep"
        if exc.field and exc.field.startswith("params"):
            message = f"stage {name!r}: {field}: {exc}"
        else:
            message = f"stage {name!r}: {exc}"
        raise SweepError(message, field) from None


def key_params(key_params: dict[str, Any], stage: dict[str, Any]) -> dict[str, Any]:
    """What the cache key of a whole sweep stage hashes beside the code and kernel: its fixed
    parameters and the sweep block (seed included). A name no parameter can have keeps it apart
    from a plain stage's key."""
    return {**key_params, "$sweep": stage.get("sweep")}
