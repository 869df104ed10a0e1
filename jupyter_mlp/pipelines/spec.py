"""The `.mlpipe` format: reading and writing it (unknown fields kept), references, edges.

A parameter value that is exactly `${stage.outputs.name}` or `${pipeline.name}` is a reference;
references are the edges of the DAG, and a stage's `after` list adds order-only edges. In any
other string `$${` stands for a literal `${` (as in a Makefile's `$$`): `"$${HOME}/data"` reaches
the notebook as `"${HOME}/data"`."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "jupyter-mlp.pipeline"
VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("pipeline.schema.json")
STAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
REFERENCE = re.compile(r"^\$\{\s*([A-Za-z_][A-Za-z0-9_-]*)\.(?:(outputs)\.)?([^}\s]+)\s*\}$")


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class Ref:
    """`${prepare.outputs.data_path}` -> Ref("prepare", "data_path"); `${pipeline.epochs}` ->
    Ref("pipeline", "epochs")."""

    stage: str
    name: str

    @property
    def is_pipeline(self) -> bool:
        return self.stage == "pipeline"

    def __str__(self) -> str:
        return (
            f"${{pipeline.{self.name}}}"
            if self.is_pipeline
            else f"${{{self.stage}.outputs.{self.name}}}"
        )


ESCAPE = "$${"


def bare_dollar_brace(value: Any) -> bool:
    """A string holding `${` that is not written `$${`: a reference, or a mistake."""
    return isinstance(value, str) and "${" in value.replace(ESCAPE, "")


def unescape(value: Any) -> Any:
    """A literal value as the notebook gets it: `$${` -> `${` in every string inside it."""
    if isinstance(value, str):
        return value.replace(ESCAPE, "${")
    if isinstance(value, list):
        return [unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: unescape(v) for k, v in value.items()}
    return value


def parse_ref(value: Any) -> Ref | None:
    if not isinstance(value, str) or "${" not in value:
        return None
    m = REFERENCE.match(value.strip())
    if not m:
        return None
    stage, outputs, name = m.groups()
    if stage == "pipeline" and outputs is None:
        return Ref("pipeline", name)
    if stage != "pipeline" and outputs:
        return Ref(stage, name)
    return None


def new_spec(name: str = "pipeline") -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "name": name, "parameters": {}, "stages": {}}


def loads(text: str, where: str = "the pipeline") -> dict[str, Any]:
    """Parse a spec; duplicate keys (two stages of one name) are an error, not a silent overwrite."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise SpecError(f"{where}: {key!r} appears twice (names must be unique)")
            seen[key] = value
        return seen

    try:
        spec = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise SpecError(f"{where} must be a JSON object")
    return spec


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from None
    return loads(text, str(path))


def identity(path: str | Path, root: str | Path | None = None) -> str:
    """What a pipeline file is known by in the store (pipeline_runs.path): its resolved absolute
    path. A path typed in a terminal resolves against the working directory (root None); a path
    from the server (relative to its root, as the editor names files) against `root`, the
    server's root_dir. So `jupyter mlp pipeline run examples/digits.mlpipe` and the editor's
    `digits.mlpipe` (server started in examples/) are one pipeline with one history."""
    if root is None:
        return str(Path(path).expanduser().resolve())
    return str((Path(root).expanduser() / str(path).lstrip("/")).resolve())


def dumps(spec: dict[str, Any]) -> str:
    """Readable, diff-friendly JSON: 2-space indent, keys in the order they came (unknown kept)."""
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def save(spec: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(dumps(spec))


def version_hash(spec: dict[str, Any]) -> str:
    """The pipeline's version: a hash of what runs (layout positions do not count)."""
    stripped = {
        **spec,
        "stages": {
            name: {k: v for k, v in stage.items() if k != "position"}
            for name, stage in (spec.get("stages") or {}).items()
            if isinstance(stage, dict)
        },
    }
    return hashlib.sha256(json.dumps(stripped, sort_keys=True).encode()).hexdigest()[:12]


def stages(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = spec.get("stages")
    return raw if isinstance(raw, dict) else {}


def dependencies(spec: dict[str, Any]) -> dict[str, set[str]]:
    """stage -> the stages it waits for (references and `after`), unknown names included."""
    deps: dict[str, set[str]] = {}
    for name, stage in stages(spec).items():
        found: set[str] = set()
        if isinstance(stage, dict):
            for value in (stage.get("parameters") or {}).values():
                ref = parse_ref(value)
                if ref is not None and not ref.is_pipeline:
                    found.add(ref.stage)
            found.update(s for s in stage.get("after") or [] if isinstance(s, str))
        deps[name] = found
    return deps


def find_cycle(deps: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of stage names (first repeated at the end), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(deps.get(node, ())):
            if nxt not in deps:
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if state.get(nxt) is None and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(deps):
        if state.get(node) is None and (cycle := visit(node)):
            return cycle
    return None
