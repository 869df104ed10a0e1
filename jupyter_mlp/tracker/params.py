"""Parameters: values kept as JSON with their Python type, and the papermill `parameters` cell."""

from __future__ import annotations

import ast
import json
import math
from typing import Any

INJECTED_HEADER = "# Parameters\n"  # papermill's Python translator starts the injected cell so


def encode_value(value: Any, what: str) -> tuple[str, str]:
    """(JSON text, Python type name) of a parameter or output value; TypeError if not JSON data."""
    type_name = "None" if value is None else type(value).__name__
    plain = _plain(value)
    try:
        text = json.dumps(plain, allow_nan=True, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} must be JSON data (number, string, bool, None, list, dict), "
            f"got {type(value).__name__}: {exc}"
        ) from None
    return text, type_name


def _plain(value: Any) -> Any:
    """numpy scalars and tuples into their plain JSON counterparts."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return value


def _key(k: Any) -> str:
    if not isinstance(k, str):
        raise TypeError(f"dict keys must be strings, got {type(k).__name__}")
    return k


def assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a parameters cell (`lr = 0.1`, `epochs: int = 5`)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            for t in ast.walk(target):
                if isinstance(t, ast.Name) and t.id not in names:
                    names.append(t.id)
    return names


def capture(namespace: dict[str, Any], names: list[str], source: str) -> list[tuple]:
    """Param rows for the names that hold JSON data; other values are skipped (modules, arrays)."""
    rows = []
    for name in names:
        if name not in namespace or name.startswith("_"):
            continue
        try:
            text, type_name = encode_value(namespace[name], f"parameter {name!r}")
        except TypeError:
            continue
        rows.append((name, text, type_name, source))
    return rows


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
