"""Job parameters: `-p k=v` and `-P file` parsing, the notebook's `parameters` cell, and the
checks that make a value fit the type the parent run recorded. Values stay data: papermill's
translator turns them into code in the injected cell, never us."""

from __future__ import annotations

import ast
import json
import keyword
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model import python_type


class ParamError(ValueError):
    """A parameter that does not parse, is unknown, or does not fit its type."""


@dataclass(frozen=True)
class Given:
    """A new value; `text` is what was typed after `-p name=` (None for values from a file/API)."""

    value: Any
    text: str | None = None


@dataclass(frozen=True)
class Known:
    """A parameter the template already has: its value and the Python type name it was stored with."""

    value: Any
    type: str | None  # None: not a literal in the parameters cell, any type goes


def parse_value(text: str) -> Any:
    """JSON when the text is valid JSON (`5`, `0.1`, `true`, `[1,2]`, `"5"`, `null`), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ParamError(f"{where}: {name!r} is not a valid parameter name (a Python identifier)")
    return name


def parse_assignments(items: list[str] | None) -> dict[str, Given]:
    """`-p name=value` items, in order (a later one wins)."""
    out: dict[str, Given] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep:
            raise ParamError(f"-p {item!r}: expected NAME=VALUE")
        name = check_name(name.strip(), f"-p {item!r}")
        out[name] = Given(parse_value(text), text)
    return out


def load_file(path: str | Path) -> dict[str, Given]:
    """`-P file.json|yaml|yml`: a mapping of names to values."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamError(f"-P {str(path)!r}: cannot read the file: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml  # type: ignore[import-untyped]

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise ParamError(
            f"-P {str(path)!r}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamError(
            f"-P {str(path)!r}: expected a mapping of names to values, got {type(data).__name__}"
        )
    out: dict[str, Given] = {}
    for name, value in data.items():
        out[check_name(name, f"-P {str(path)!r}")] = Given(check_json(name, value))
    return out


def check_json(name: str, value: Any) -> Any:
    """Parameters are JSON data; tuples become lists, anything else is refused."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (list, tuple)):
        return [check_json(name, v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ParamError(f"parameter {name!r}: dict keys must be strings")
        return {k: check_json(name, v) for k, v in value.items()}
    raise ParamError(
        f"parameter {name!r}: {type(value).__name__} is not JSON data "
        "(use numbers, strings, booleans, null, lists and dicts)"
    )


def as_given(params: dict[str, Any] | None) -> dict[str, Given]:
    """Typed values from the HTTP API or Python (no command-line text to fall back on)."""
    out: dict[str, Given] = {}
    for name, value in (params or {}).items():
        if isinstance(value, Given):
            out[check_name(name, "parameters")] = value
        else:
            out[check_name(name, "parameters")] = Given(check_json(name, value))
    return out


# --- the notebook's parameters cell ------------------------------------------------------------


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def parameters_cell(nb: dict[str, Any]) -> dict[str, Any] | None:
    """The first code cell tagged `parameters` (papermill injects right after it)."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in (
            cell.get("metadata", {}).get("tags") or []
        ):
            return cell
    return None


def notebook_parameters(nb: dict[str, Any]) -> dict[str, Known]:
    """Names assigned at the top level of the parameters cell, with their literal values."""
    cell = parameters_cell(nb)
    if cell is None:
        return {}
    try:
        tree = ast.parse(cell_source(cell))
    except SyntaxError:
        return {}
    found: dict[str, Known] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            try:
                literal = ast.literal_eval(value)
                literal = check_json(target.id, literal)
                found[target.id] = Known(literal, python_type(literal))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, ParamError):
                found[target.id] = Known(None, None)
    return found


# --- fitting new values to known types ---------------------------------------------------------

_INT = {
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "intc",
    "long",
}
_FLOAT = {"float", "float16", "float32", "float64", "double", "longdouble"}
_BOOL = {"bool", "bool_"}
_LIST = {"list", "tuple"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a dict"


def fit(name: str, given: Given, type_name: str | None) -> Any:
    """The value, converted where that loses nothing (int -> float; command-line text -> str),
    or a ParamError that says what the parameter expects."""
    value = given.value
    if value is None or type_name in (None, "None", "NoneType"):
        return value
    shown = given.text if given.text is not None else json.dumps(value)
    if type_name in _INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "an int"
    elif type_name in _FLOAT:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        expected = "a float"
    elif type_name in _BOOL:
        if isinstance(value, bool):
            return value
        if given.text is not None and given.text.strip().lower() in ("true", "false"):
            return given.text.strip().lower() == "true"
        expected = "a bool (true or false)"
    elif type_name == "str":
        if isinstance(value, str):
            return value
        if given.text is not None:
            return given.text  # `-p name=5` for a string parameter means the string "5"
        expected = "a string"
    elif type_name in _LIST:
        if isinstance(value, list):
            return value
        expected = "a list (JSON, e.g. [1, 2])"
    elif type_name == "dict":
        if isinstance(value, dict):
            return value
        expected = 'a dict (JSON, e.g. {"a": 1})'
    else:
        return value  # a type we cannot check (a numpy array's repr, a custom class): pass it on
    raise ParamError(
        f"parameter {name!r} expects {expected} (it was {type_name}), got {_kind(value)}: {shown}"
    )


def resolve(
    given: dict[str, Given], known: dict[str, Known], allow_new: bool = False
) -> dict[str, Any]:
    """Check every new value against the known parameters: unknown names are refused with the
    list of known ones (unless allow_new), values must fit the known type."""
    unknown = sorted(set(given) - set(known))
    if unknown and not allow_new:
        names = ", ".join(sorted(known)) or "none"
        which = ", ".join(repr(n) for n in unknown)
        raise ParamError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {which}; known: {names} "
            "(pass --allow-new to add new ones)"
        )
    return {
        name: fit(name, g, known[name].type if name in known else None) for name, g in given.items()
    }
