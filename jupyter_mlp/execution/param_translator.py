"""papermill's Python translator, taught the values JSON lacks.

papermill writes str, bool, int, float, None, list and dict itself and turns anything else into a
string (a tuple arrives as "(1, 2)"). This translator writes tuples, sets, frozensets, complex
numbers, bytes and dicts with keys that are not strings as Python literals (jupyter_mlp.params
`literal`), and leaves everything else to papermill, so an injected cell of JSON values is
byte for byte papermill's. papermill is imported on first use, never by the kernel.
"""

from __future__ import annotations

import json
from typing import Any

from ..params import encode, from_json, literal, needs_literal

_TRANSLATOR: Any = None
_LITERAL_TYPES = (tuple, set, frozenset, complex, bytes, bytearray)


def translator() -> Any:
    global _TRANSLATOR
    if _TRANSLATOR is None:
        from papermill.translators import PythonTranslator  # type: ignore[import-untyped]

        class MlpPythonTranslator(PythonTranslator):  # type: ignore[misc]
            @classmethod
            def translate(cls, val: Any) -> str:
                if isinstance(val, _Marked):
                    return literal(val.value, cls.translate)
                if isinstance(val, _LITERAL_TYPES) or (
                    isinstance(val, dict) and any(type(k) is not str for k in val)
                ):
                    return literal(val, cls.translate)
                return str(super().translate(val))

        _TRANSLATOR = MlpPythonTranslator
    return _TRANSLATOR


def register() -> None:
    """Use it for Python kernels in this process (papermill looks translators up per call)."""
    from papermill.translators import papermill_translators  # type: ignore[import-untyped]

    papermill_translators.register("python", translator())


def job_parameters(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """A job's stored parameters (jupyter_mlp.params `to_json` form) as the values to inject.
    papermill also writes them into the notebook's metadata as JSON, so a value JSON lacks goes
    in as its stored JSON (a tuple as a list) that remembers the value it stands for."""
    if not params:
        return None
    return {k: _marked(from_json(v)) for k, v in params.items()}


class _Marked:
    value: Any


class _MarkedList(list, _Marked):  # type: ignore[type-arg]
    pass


class _MarkedDict(dict, _Marked):  # type: ignore[type-arg]
    pass


class _MarkedStr(str, _Marked):
    pass


def _marked(value: Any) -> Any:
    if not needs_literal(value):
        return value
    data = json.loads(encode(value)[0])
    kinds: dict[type, type] = {list: _MarkedList, dict: _MarkedDict, str: _MarkedStr}
    marked = kinds[type(data)](data)
    marked.value = value
    return marked
