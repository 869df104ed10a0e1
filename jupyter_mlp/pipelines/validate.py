"""Validation with messages a researcher understands, each naming the stage and the field."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import close_names, is_run_id
from ..params import Given, ParamError, fit, notebook_parameters
from ..store.blobs import BlobNotFound, Blobs
from ..store.db import Connection
from ..store.templates import output_rows, param_rows, template_run
from . import spec as S
from . import sweep_stage


@dataclass
class Issue:
    level: str  # error | warning
    message: str
    stage: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "stage": self.stage,
            "field": self.field,
            "message": self.message,
        }


@dataclass
class Template:
    """What a stage's template run offers: its parameters (with types) and its outputs."""

    run_id: str | None  # None: a notebook file is the template
    snapshot: str | None
    kernel: str | None
    notebook: str | None
    params: dict[str, str | None] = field(default_factory=dict)  # name -> Python type name
    outputs: dict[str, Any] | None = field(
        default_factory=dict
    )  # name -> value, PATH for artifacts
    data: bytes | None = None  # a notebook template's content

    def code(self, blobs: Blobs) -> bytes:
        return self.data if self.data is not None else blobs.read_bytes(self.snapshot or "")


PATH = object()  # an artifact output: the stage gets a local path (a str)


def template(conn: Connection, blobs: Blobs, tmpl: Any, base: Path | None = None) -> Template | str:
    """What a stage's template offers, or why it cannot be one. A template is a run (pinned,
    usually) or, for a pipeline written before any run existed, a notebook file (relative to the
    .mlpipe's folder)."""
    if not isinstance(tmpl, dict):
        return "the template must be an object with a run id or a notebook path"
    run_id = tmpl.get("run")
    if run_id is None and tmpl.get("notebook"):
        return _notebook_template(Path(base or ".") / tmpl["notebook"])
    if not isinstance(run_id, str) or not is_run_id(run_id):
        return f"{run_id!r} is not a run id (12 hex digits)"
    row = template_run(conn, run_id)
    if row is None:
        return f"template run {run_id} does not exist (deleted?)"
    if not row["snapshot"]:
        return f"template run {run_id} has no notebook snapshot, so it cannot be rerun"
    t = Template(run_id, row["snapshot"], row["kernel"], row["notebook"])
    try:
        nb = json.loads(blobs.read_bytes(row["snapshot"]))
        t.params.update({k: v.type for k, v in notebook_parameters(nb).items()})
    except (BlobNotFound, ValueError):
        return f"the snapshot of template run {run_id} is missing or not a notebook"
    for param in param_rows(conn, run_id):
        t.params.setdefault(param["key"], param["type"])
    t.outputs = {
        name: json.loads(value or "null") if kind == "value" else PATH
        for name, kind, value in output_rows(conn, run_id)
    }
    return t


def _notebook_template(path: Path) -> Template | str:
    try:
        data = path.read_bytes()
        nb = json.loads(data)
    except OSError:
        return f"template notebook {str(path)!r} does not exist"
    except ValueError:
        return f"template notebook {str(path)!r} is not a notebook"
    kernel = (nb.get("metadata", {}).get("kernelspec") or {}).get("name")
    t = Template(None, None, kernel, str(path), data=data)
    t.params.update({k: v.type for k, v in notebook_parameters(nb).items()})
    return t


def _type_of_output(value: Any) -> Any:
    return "a path" if value is PATH else value


def executor_problem(name: Any) -> str | None:
    """Why `name` is not an executor jobs can be queued on (None: it is one)."""
    from ..execution.errors import JobError
    from ..execution.registry import EXECUTORS

    if not isinstance(name, str) or not name:
        return f"executor must be a name, got {name!r}"
    try:
        EXECUTORS.get(name)
    except JobError as exc:
        return str(exc)
    return None


def validate(
    spec: dict[str, Any], conn: Connection, blobs: Blobs, base: Path | None = None
) -> list[Issue]:
    """Every problem of a spec; `base` is the folder of the .mlpipe (notebook templates)."""
    issues: list[Issue] = []

    def error(message: str, stage: str | None = None, fld: str | None = None) -> None:
        issues.append(Issue("error", message, stage, fld))

    def warn(message: str, stage: str | None = None, fld: str | None = None) -> None:
        issues.append(Issue("warning", message, stage, fld))

    if spec.get("format") != S.FORMAT:
        error(f'"format" must be "{S.FORMAT}"', fld="format")
    version = spec.get("version")
    if not isinstance(version, int) or version > S.VERSION:
        error(
            f"format version {version!r} is not one this jupyter-mlp reads (up to {S.VERSION})",
            fld="version",
        )
    pipeline_params = spec.get("parameters") or {}
    if not isinstance(pipeline_params, dict):
        error('"parameters" must be an object of name: default value', fld="parameters")
        pipeline_params = {}
    stages = spec.get("stages")
    if not isinstance(stages, dict):
        error('"stages" must be an object of stage name: stage', fld="stages")
        return issues
    if not stages:
        warn("the pipeline has no stages yet: drag a pinned run onto the canvas")

    templates: dict[str, Template] = {}
    seen_cache: dict[str, tuple[dict[str, Any], str] | None] = {}
    for name, stage in stages.items():
        if not S.STAGE_NAME.match(name) or name == "pipeline":
            error(
                f"stage name {name!r} must start with a letter and use letters, digits, _ or - (and not be 'pipeline')",
                name,
                "name",
            )
        if not isinstance(stage, dict):
            error(f"stage {name!r} must be an object", name)
            continue
        tmpl = stage.get("template")
        if not isinstance(tmpl, dict) or not (tmpl.get("run") or tmpl.get("notebook")):
            error(f"stage {name!r} has no template (a run id or a notebook path)", name, "template")
            continue
        found = template(conn, blobs, tmpl, base)
        if isinstance(found, str):
            error(f"stage {name!r}: {found}", name, "template")
            continue
        templates[name] = found
        if found.run_id and tmpl.get("snapshot") and tmpl["snapshot"] != found.snapshot:
            warn(
                f"stage {name!r}: the template run's notebook differs from the one the stage was made with",
                name,
                "template",
            )
        for key in ("gpus", "retries"):
            if key in stage and (
                not isinstance(stage[key], int) or isinstance(stage[key], bool) or stage[key] < 0
            ):
                error(f"stage {name!r}: {key} must be a whole number >= 0", name, key)
        if "cache" in stage and not isinstance(stage["cache"], bool):
            error(f"stage {name!r}: cache must be true or false", name, "cache")
        if stage.get("executor") is not None:
            why = executor_problem(stage["executor"])
            if why:
                error(f"stage {name!r}: {why}", name, "executor")
        _check_run_settings(error, name, stage, base)
        for other in stage.get("after") or []:
            if other not in stages:
                error(f"stage {name!r} runs after {other!r}, which is not a stage"
                      f"{_did_you_mean(other, stages)}", name, "after")  # fmt: skip

    for name, stage in stages.items():
        if name not in templates or not isinstance(stage, dict):
            continue
        t = templates[name]
        values = stage.get("parameters") or {}
        if not isinstance(values, dict):
            error(f"stage {name!r}: parameters must be an object", name, "parameters")
            continue
        for key, value in values.items():
            where = f"parameters.{key}"
            if key not in t.params and stage.get("allow_new_params") is True:
                if S.bare_dollar_brace(value) and S.parse_ref(value) is None:
                    error(f"stage {name!r}: {value!r} is not a reference (write $${{ for a literal ${{)", name, where)  # fmt: skip
                continue  # a new name: papermill injects it as given (no type to fit)
            if key not in t.params:
                known = ", ".join(sorted(t.params)) or "none"
                error(
                    f"stage {name!r}: the template has no parameter {key!r} (it has: {known})",
                    name,
                    where,
                )
                continue
            expected = t.params[key]
            ref = S.parse_ref(value)
            if S.bare_dollar_brace(value) and ref is None:
                error(
                    f"stage {name!r}: {value!r} is not a reference (use ${{stage.outputs.name}} or ${{pipeline.name}}; write $${{ for a literal ${{)",
                    name,
                    where,
                )
                continue
            if ref is None:
                _check_fit(error, name, key, where, S.unescape(value), expected)
            elif ref.is_pipeline:
                if ref.name not in pipeline_params:
                    error(
                        f"stage {name!r}: parameter {key!r} uses pipeline parameter {ref.name!r}, which the pipeline does not define{_did_you_mean(ref.name, pipeline_params)}",
                        name,
                        where,
                    )
                else:
                    _check_fit(error, name, key, where, pipeline_params[ref.name], expected,
                               f"${{pipeline.{ref.name}}}")  # fmt: skip
            elif ref.stage not in stages:
                error(
                    f"stage {name!r}: parameter {key!r} uses stage {ref.stage!r}, which does not exist{_did_you_mean(ref.stage, stages)}",
                    name,
                    where,
                )
            elif ref.stage in templates and (
                seen := _seen_outputs(conn, templates[ref.stage], ref.stage, seen_cache)
            ):
                produced, source = seen
                if ref.name not in produced:
                    # A close name is a typo (the stage would fail only after its upstream ran);
                    # another name may be one the template produces only sometimes.
                    close = close_names(ref.name, produced)
                    if close:
                        error(
                            f"stage {name!r}: {ref} — {source} never produced output {ref.name!r}; did you mean {close[0]!r}?",
                            name,
                            where,
                        )
                    else:
                        warn(
                            f"stage {name!r}: {ref} — {source} never produced output {ref.name!r} (it produced: {', '.join(sorted(produced)) or 'none'}; it may this time)",
                            name,
                            where,
                        )
                elif templates[ref.stage].run_id is not None:
                    sample = produced[ref.name]
                    _check_fit(
                        error,
                        name,
                        key,
                        where,
                        "path" if sample is PATH else sample,
                        expected,
                        source=str(ref),
                    )

        if sweep_stage.is_sweep(stage):
            _check_sweep(error, warn, conn, blobs, name, stage, t)

    cycle = S.find_cycle(S.dependencies(spec))
    if cycle:
        flow = " -> ".join(reversed(cycle))
        error(f"the stages form a cycle: {flow}", cycle[0], "parameters")
    return issues


def _seen_outputs(
    conn: Connection, t: Template, stage: str, cache: dict
) -> tuple[dict[str, Any], str] | None:
    """(outputs the stage's template is known to produce, whose they are): a template run's
    own, or for a notebook template those of the notebook's newest finished run; None when no
    run of it is known (nothing to check against)."""
    if stage in cache:
        return cache[stage]
    found: tuple[dict[str, Any], str] | None = None
    if t.run_id is not None:
        found = (t.outputs or {}), f"the template run of {stage!r}"
    elif t.notebook:
        from ..store.runs import notebook_outputs

        earlier = notebook_outputs(conn, str(Path(t.notebook).resolve()))
        if earlier is not None:
            run_id, names = earlier
            found = dict.fromkeys(names), f"the last run of {Path(t.notebook).name} ({run_id})"
    cache[stage] = found
    return found


def _check_sweep(
    error: Any, warn: Any, conn: Connection, blobs: Blobs, name: str,
    stage: dict[str, Any], t: Template,
) -> None:  # fmt: skip
    """A `"sweep"` block, checked as `jupyter mlp sweep` checks its options (sweep_stage)."""
    from ..sweeps.space import SweepError

    try:
        sweep_stage.stage_plan(name, stage, sweep_stage.known_parameters(conn, blobs, t))
    except SweepError as exc:
        error(str(exc), name, exc.field or "sweep")
    except (BlobNotFound, ValueError) as exc:  # the template went away meanwhile
        error(f"stage {name!r}: sweep: {exc}", name, "sweep")
    if stage.get("retries"):
        warn(
            f"stage {name!r}: retries do not apply to a sweep stage (a failed trial is told "
            "failed and the sweep goes on)",
            name,
            "retries",
        )


RUN_SETTINGS_TEXT = ("kernel", "cwd")


def _check_run_settings(error: Any, name: str, stage: dict[str, Any], base: Any) -> None:
    """How the stage's job runs: kernel, cwd (relative to the pipeline file's folder),
    allow_new_params, and papermill's options (execution_timeout, start_timeout, ...)."""
    from ..execution.errors import JobError
    from ..execution.papermill_options import check

    for key in RUN_SETTINGS_TEXT:
        if key in stage and not (isinstance(stage[key], str) and stage[key].strip()):
            error(f"stage {name!r}: {key} must be a non-empty text", name, key)
    if "allow_new_params" in stage and not isinstance(stage["allow_new_params"], bool):
        error(f"stage {name!r}: allow_new_params must be true or false", name, "allow_new_params")
    if "papermill" in stage:
        try:
            check(stage["papermill"], f"stage {name!r}: papermill", base=base)
        except JobError as exc:
            error(str(exc), name, "papermill")


def _check_fit(
    error,
    stage: str,
    key: str,
    where: str,
    value: Any,
    expected: str | None,
    source: str | None = None,
) -> None:
    try:
        fit(key, Given(value), expected)
    except ParamError as exc:
        detail = str(exc).replace(f"parameter {key!r} ", "")
        error(
            f"stage {stage!r}: parameter {key!r} {detail}"
            + (f" (from {source})" if source else ""),
            stage,
            where,
        )


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.level == "error"]


def _did_you_mean(name: str, known: Any) -> str:
    """`; did you mean 'prepare'?` for a name close to one of `known`, else nothing."""
    close = close_names(name, known)
    return f"; did you mean {close[0]!r}?" if close else ""
