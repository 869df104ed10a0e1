"""The one parameter model: what type a parameter has, how its value is stored, read back, checked
against a template and read out of a notebook's parameters cell.

Standard library only and cheap to import: the kernel imports it (`%mlp_track`), and so do the
job submitter, the pipeline validator and the server. Nothing else decides a parameter's type.

- `infer(value)`: the Python type name stored beside a value (`"None"` for None, numpy's names
  without importing numpy: `"int64"`, `"float32"`, ...).
- `encode(value)` -> (JSON text, type name) and `decode(text, type)` -> the value again. Values
  JSON has no word for are kept faithfully: the top level's type is the type column (a tuple is
  stored as the list `[1, 2]` with type `tuple`); inside a value they carry a tag,
  `{"__py__": "tuple", "value": [1, 2]}`. `to_json` / `from_json` are the self-describing form
  (tagged at the top too) used for job parameters.
- `literal(value)`: Python source for a value (what papermill's translator cannot write: tuples,
  sets, complex, bytes, dicts with keys that are not strings).
- `fit(name, given, type)`: a given value checked against the template's type, converted where
  nothing is lost, or a `ParamError` that says what the parameter expects.
- `read_cell(source)`: the names a parameters cell assigns, with their literal values, read by
  papermill's rules (a line that does not parse costs that line, not the cell).
- `TYPE_TABLE`: kind -> type names, written for the lab extension by
  `python -m jupyter_mlp.params --write-ts` (labextension/src/paramTypes.json).
"""

from __future__ import annotations

import ast
import io
import json
import keyword
import math
import re
import tokenize
from dataclasses import dataclass
from typing import Any

# --- the type table ---------------------------------------------------------------------------

#: kind -> the Python type names of that kind (numpy's scalar names included). A name in no list
#: is of kind "other": recorded, shown, never checked.
TYPE_TABLE: dict[str, tuple[str, ...]] = {
    "int": (
        "int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "intc", "uintc", "intp", "uintp", "int_", "uint", "short", "ushort", "byte", "ubyte",
        "long", "ulong", "longlong", "ulonglong",
    ),
    "float": (
        "float", "float16", "float32", "float64", "float96", "float128", "float_", "half",
        "single", "double", "longdouble",
    ),
    "bool": ("bool", "bool_"),
    "str": ("str", "str_"),
    "none": ("None", "NoneType"),
    "list": ("list",),
    "tuple": ("tuple",),
    "dict": ("dict", "OrderedDict", "defaultdict"),
    "set": ("set", "frozenset"),
    "complex": (
        "complex", "complex64", "complex128", "complex192", "complex256", "complex_",
        "csingle", "cdouble", "clongdouble",
    ),
    "bytes": ("bytes", "bytearray", "bytes_"),
    "other": (),
}  # fmt: skip

KINDS: dict[str, str] = {name: kind for kind, names in TYPE_TABLE.items() for name in names}

# How a kind is named in messages.
_EXPECTED = {
    "int": "an int",
    "float": "a float",
    "bool": "a bool (True or False)",
    "str": "a string",
    "list": "a list, e.g. [1, 2]",
    "tuple": "a tuple, e.g. (1, 2) or [1, 2]",
    "dict": 'a dict, e.g. {"a": 1}',
    "set": "a set, e.g. {1, 2} or [1, 2]",
    "complex": "a complex number, e.g. 1+2j",
    "bytes": "bytes",
}

# Values JSON has no word for carry this tag inside other values: {"__py__": "tuple", "value": [..]}
TAG = "__py__"

MAX_DEPTH = 64


class ParamError(ValueError):
    """A parameter that does not parse, is unknown, or does not fit its type."""


def kind(type_name: str | None) -> str:
    """The kind of a stored type name ("int", "float", ..., "none"; "other" when unknown)."""
    if type_name is None:
        return "none"
    return KINDS.get(type_name, "other")


def infer(value: Any) -> str:
    """The Python type name stored beside a value, so that a rerun gives it back its type."""
    if value is None:
        return "None"
    t = type(value)
    if t.__name__ == "ndarray" and t.__module__.startswith("numpy"):
        if getattr(value, "shape", None) == ():
            return str(value.dtype.name)  # a 0-d array is stored as its scalar
    return t.__name__


python_type = infer  # the name model.py used


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- encode / decode --------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    """A numpy scalar (or 0-d array) as its plain Python value; anything else unchanged."""
    t = type(value)
    if t.__module__.startswith("numpy"):
        item = getattr(value, "item", None)
        if callable(item) and getattr(value, "shape", None) == ():
            return item()
    return value


def to_json(value: Any, _depth: int = 0) -> Any:
    """The value as JSON data; types JSON lacks become `{"__py__": type, "value": ...}`.
    TypeError for values that cannot be kept (modules, arrays, objects)."""
    if _depth > MAX_DEPTH:
        raise TypeError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or type(value) in (bool, int, float, str):
        return value
    value = _scalar(value)
    d = _depth + 1
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [to_json(v, d) for v in value]
    if isinstance(value, dict):
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: to_json(v, d) for k, v in value.items()}
        return {TAG: "dict", "value": [[to_json(k, d), to_json(v, d)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {TAG: "tuple", "value": [to_json(v, d) for v in value]}
    if isinstance(value, (set, frozenset)):
        items = sorted((to_json(v, d) for v in value), key=_sort_key)
        return {TAG: "frozenset" if isinstance(value, frozenset) else "set", "value": items}
    if isinstance(value, complex):
        return {TAG: "complex", "value": [value.real, value.imag]}
    if isinstance(value, (bytes, bytearray)):
        name = "bytearray" if isinstance(value, bytearray) else "bytes"
        return {TAG: name, "value": bytes(value).decode("latin-1")}
    raise TypeError(
        f"{type(value).__name__} cannot be stored (use numbers, strings, bools, None, lists, "
        "tuples, sets, dicts, complex or bytes)"
    )


def _sort_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True, allow_nan=True)


def from_json(data: Any, _depth: int = 0) -> Any:
    """The inverse of `to_json`."""
    if _depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(data, list):
        return [from_json(v, _depth + 1) for v in data]
    if isinstance(data, dict):
        if TAG in data and set(data) == {TAG, "value"}:
            try:
                return _untag(data[TAG], data["value"], _depth + 1)
            except (ValueError, TypeError, IndexError, OverflowError):
                pass  # not one of ours: a dict like any other
        return {k: from_json(v, _depth + 1) for k, v in data.items()}
    return data


def _untag(name: Any, payload: Any, depth: int) -> Any:
    if name == "tuple" and isinstance(payload, list):
        return tuple(from_json(v, depth) for v in payload)
    if name in ("set", "frozenset") and isinstance(payload, list):
        items = [from_json(v, depth) for v in payload]
        return set(items) if name == "set" else frozenset(items)
    if name == "dict" and isinstance(payload, list):
        return {_hashable(from_json(p[0], depth)): from_json(p[1], depth) for p in payload}
    if name == "complex" and isinstance(payload, list) and len(payload) == 2:
        return complex(float(payload[0]), float(payload[1]))
    if name in ("bytes", "bytearray") and isinstance(payload, str):
        raw = payload.encode("latin-1")
        return bytearray(raw) if name == "bytearray" else raw
    raise ValueError(f"unknown tagged value {name!r}")


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, set):
        return frozenset(key)
    return key


def encode(value: Any, what: str = "value") -> tuple[str, str]:
    """(JSON text, Python type name) of a parameter or output value; TypeError if it cannot be
    kept. The top level's tag is the type column: a tuple is `[1, 2]` with type `tuple`."""
    try:
        data = to_json(value)
    except RecursionError:
        raise TypeError(f"{what} is nested too deeply") from None
    except TypeError as exc:
        raise TypeError(f"{what}: {exc}") from None
    if isinstance(data, dict) and set(data) == {TAG, "value"}:
        data = data["value"]  # the type column says what it was
    try:
        text = json.dumps(data, allow_nan=True, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"{what} cannot be stored as JSON: {exc}") from None
    return text, infer(value)


encode_value = encode  # the name the tracker used


def decode(text: str, type_name: str | None) -> Any:
    """The value a stored (JSON text, type name) pair holds, with its type given back (a
    `tuple` row is a tuple again; numpy types come back as the plain Python value)."""
    data = json.loads(text)
    return decode_data(data, type_name)


def decode_data(data: Any, type_name: str | None) -> Any:
    k = kind(type_name)
    name = None
    if k == "tuple":
        name = "tuple"
    elif k == "set":
        name = "frozenset" if type_name == "frozenset" else "set"
    elif k == "complex":
        name = "complex"
    elif k == "bytes":
        name = "bytearray" if type_name == "bytearray" else "bytes"
    elif k == "dict":
        name = "dict" if isinstance(data, list) else None
    if name is not None:
        try:
            return _untag(name, data, 1)
        except (ValueError, TypeError, IndexError):
            pass  # not the shape that type is stored in: the JSON value as it is
    return from_json(data)


# --- Python source for values (papermill's injected cell) ------------------------------------


def needs_literal(value: Any) -> bool:
    """True for values papermill's translator would turn into a string (tuples, sets, ...)."""
    if isinstance(value, (tuple, set, frozenset, complex, bytes, bytearray)):
        return True
    if isinstance(value, dict):
        return any(type(k) is not str for k in value) or any(
            needs_literal(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(needs_literal(v) for v in value)
    return False


def literal(value: Any, translate: Any = None) -> str:
    """Python source that evaluates to `value`. `translate` writes the values inside containers
    (papermill's translator passes its own, so JSON values look as papermill writes them)."""
    sub = translate or literal
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        return _float_source(value)
    if isinstance(value, (int, str, bytes)):
        return repr(value)
    if isinstance(value, bytearray):
        return f"bytearray({bytes(value)!r})"
    if isinstance(value, complex):
        return f"complex({_float_source(value.real)}, {_float_source(value.imag)})"
    if isinstance(value, tuple):
        inner = ", ".join(sub(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, (set, frozenset)):
        items = sorted(sub(v) for v in value)
        body = "{" + ", ".join(items) + "}" if items else ""
        if isinstance(value, frozenset):
            return f"frozenset({body})"
        return body or "set()"
    if isinstance(value, list):
        return "[" + ", ".join(sub(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{sub(k)}: {sub(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Python literal for {type(value).__name__}")


def _float_source(x: float) -> str:
    if math.isfinite(x):
        return repr(x)
    if math.isnan(x):
        return "float('nan')"
    return "float('-inf')" if x < 0 else "float('inf')"


# --- reading values back from source ----------------------------------------------------------

_CALLS = {"set", "frozenset", "tuple", "list", "dict", "complex", "float", "bytes", "bytearray"}


class NotLiteral(ValueError):
    """Source that is not a literal value (a call, a name, an expression)."""


def evaluate(node: ast.AST, _depth: int = 0) -> Any:
    """The value of a literal expression: what `ast.literal_eval` reads, plus what papermill and
    `literal` write (`float('nan')`, `set()`, `frozenset({...})`, `complex(1.0, 2.0)`, ...)."""
    if _depth > MAX_DEPTH:
        raise NotLiteral("nested too deeply")
    d = _depth + 1
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = evaluate(node.operand, d)
        if isinstance(operand, (int, float, complex)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = evaluate(node.left, d), evaluate(node.right, d)
        if isinstance(right, complex) and isinstance(left, (int, float)):
            if not isinstance(left, bool):
                return left + right if isinstance(node.op, ast.Add) else left - right
    if isinstance(node, ast.Tuple):
        return tuple(evaluate(e, d) for e in node.elts)
    if isinstance(node, ast.List):
        return [evaluate(e, d) for e in node.elts]
    if isinstance(node, ast.Set):
        return {evaluate(e, d) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise NotLiteral("** in a dict")
        return {evaluate(k, d): evaluate(v, d) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _CALLS
        and not node.keywords
        and len(node.args) <= 2
    ):
        args = [evaluate(a, d) for a in node.args]
        f = node.func.id
        try:
            if f == "float" and len(args) == 1 and isinstance(args[0], str):
                return float(args[0])
            if f == "complex" and all(isinstance(a, (int, float)) for a in args):
                return complex(*args)
            if len(args) <= 1 and f not in ("float", "complex"):
                return {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list,
                        "dict": dict, "bytes": bytes, "bytearray": bytearray}[f](*args)  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise NotLiteral(str(exc)) from None
    raise NotLiteral(type(node).__name__)


def literal_value(source: str) -> Any:
    """The value of a literal written as source text; NotLiteral when it is not one."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise NotLiteral("not an expression") from None
    try:
        return evaluate(tree.body)
    except RecursionError:
        raise NotLiteral("nested too deeply") from None
    except TypeError as exc:  # an unhashable item of a set or a dict key
        raise NotLiteral(str(exc)) from None


# --- the parameters cell ----------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A parameter the template has: its value and the Python type name it was stored with."""

    value: Any
    type: str | None  # None: not a literal in the parameters cell, any type goes


@dataclass(frozen=True)
class CellParameter:
    """One name the parameters cell assigns, as papermill's inspection describes it."""

    name: str
    value: Any  # the literal value; None when `literal` is False
    literal: bool
    annotation: str | None  # `x: int = 1` or `x = 1  # type: int`
    default: str  # the source text of the value
    help: str  # the comment after the value
    line: int  # 1-based line of the assignment

    @property
    def type(self) -> str | None:
        """The type name checks use: the value's, else the annotation when it names a type."""
        if self.literal:
            return infer(self.value)
        if self.annotation in KINDS and kind(self.annotation) != "none":
            return self.annotation
        return None

    def known(self) -> Known:
        return Known(self.value if self.literal else None, self.type)


@dataclass(frozen=True)
class CellReading:
    params: list[CellParameter]
    skipped: list[int]  # 1-based first lines of statements that do not parse

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def known(self) -> dict[str, Known]:
        return {p.name: p.known() for p in self.params}


# papermill's pattern for one assignment (translators.PythonTranslator.PARAMETER_PATTERN)
_PM_PATTERN = re.compile(
    r"^(?P<target>\w[\w_]*)\s*(:\s*[\"']?(?P<annotation>\w[\w_\[\],\s]*)[\"']?\s*)?=\s*"
    r"(?P<value>.*?)(\s*#\s*(type:\s*(?P<type_comment>[^\s]*)\s*)?(?P<help>.*))?$"
)
_TYPE_COMMENT = re.compile(r"^#\s*type:\s*(?P<type>[^\s]*)\s*(?P<help>.*)$")
_NOT_A_START = re.compile(r"^(else|elif|except|finally|case)\b|^[)\]}]")
_BARE_WORDS = {"True", "False", "None"}


def read_cell(source: str) -> CellReading:
    """The names a parameters cell assigns, by papermill's rules: top-level assignments (also in
    `if`/`for`/`with`/`try` blocks, never in a function or class), with `x: int = 1` and
    `x = 1  # type: int  help` annotations. A statement that does not parse (an IPython magic,
    a half-written line) costs that statement only; when it looks like an assignment its name is
    still a parameter, of unknown value, as papermill's inspection lists it."""
    lines = source.splitlines(keepends=True)
    params: dict[str, CellParameter] = {}
    skipped: list[int] = []
    for first, chunk, tree in _statements(source, lines):
        if tree is None:
            skipped.append(first + 1)
            _broken(chunk, first, params)
            continue
        comments = _comments(chunk)
        for node in tree.body:
            _collect(node, first, chunk, comments, params)
    ordered = sorted(params.values(), key=lambda p: p.line)
    return CellReading(ordered, skipped)


def _statements(source: str, lines: list[str]) -> list[tuple[int, str, ast.Module | None]]:
    """(first line index, text, parsed module or None) of the cell's statements."""
    tree = _parse(source)
    if tree is not None:
        return [(0, source, tree)]
    starts = [
        i
        for i, line in enumerate(lines)
        if line.strip()
        and not line[0].isspace()
        and not line.lstrip().startswith("#")
        and not _NOT_A_START.match(line)
    ]
    starts.append(len(lines))
    out: list[tuple[int, str, ast.Module | None]] = []
    k = 0
    while k < len(starts) - 1:
        begin = starts[k]
        found = None
        for j in range(k + 1, min(len(starts), k + 64)):
            text = "".join(lines[begin : starts[j]])
            tree = _parse(text)
            if tree is not None:
                found = (j, text, tree)
                break
        if found is None:
            out.append((begin, "".join(lines[begin : starts[k + 1]]), None))
            k += 1
        else:
            j, text, tree = found
            out.append((begin, text, tree))
            k = j
    return out


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _comments(text: str) -> dict[int, str]:
    """1-based line -> the comment that ends it."""
    found: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def _broken(chunk: str, first: int, params: dict[str, CellParameter]) -> None:
    """A statement that does not parse: its name when papermill's pattern reads one."""
    head = chunk.strip().splitlines()[0] if chunk.strip() else ""
    if head.count("=") != 1:
        return  # papermill skips a line with more than one '='
    m = _PM_PATTERN.match(head)
    if m is None or keyword.iskeyword(m["target"]):
        return
    name = m["target"]
    params[name] = CellParameter(
        name=name, value=None, literal=False,
        annotation=(m["annotation"] or m["type_comment"] or None),
        default=(m["value"] or "").strip(), help=(m["help"] or "").strip(), line=first + 1,
    )  # fmt: skip


def _collect(
    node: ast.stmt, first: int, chunk: str, comments: dict[int, str], out: dict[str, CellParameter]
) -> None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return
    targets: list[ast.expr] = []
    value: ast.expr | None = None
    annotation = None
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
        annotation = _annotation_text(node.annotation)
    elif isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)):
        for child in [*node.body, *getattr(node, "orelse", [])]:
            _collect(child, first, chunk, comments, out)
        return
    elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
        for child in [*node.body, *node.orelse, *node.finalbody]:  # type: ignore[attr-defined]
            _collect(child, first, chunk, comments, out)
        for handler in node.handlers:  # type: ignore[attr-defined]
            for child in handler.body:
                _collect(child, first, chunk, comments, out)
        return
    if value is None:
        return
    default = ast.get_source_segment(chunk, value) or ""
    comment = comments.get(getattr(node, "end_lineno", node.lineno) or node.lineno, "")
    help_text = comment.lstrip("#").strip()
    tm = _TYPE_COMMENT.match(comment) if comment else None
    if tm is not None:
        annotation = annotation or tm["type"] or None
        help_text = tm["help"].strip()
    try:
        evaluated: Any = evaluate(value)
        is_literal = True
    except (NotLiteral, RecursionError, TypeError):
        evaluated, is_literal = None, False
    if is_literal and annotation in KINDS and evaluated is not None:
        try:  # `x: float = 1` is the float 1.0, `x: tuple = [1, 2]` the tuple (1, 2)
            evaluated = fit("", Given(evaluated), annotation)
        except ParamError:
            pass
    for target in targets:
        for name, v, lit in _unpack(target, evaluated, is_literal):
            out.pop(name, None)  # the last assignment wins, at its own line
            out[name] = CellParameter(
                name=name, value=v, literal=lit, annotation=annotation, default=default,
                help=help_text, line=first + node.lineno,
            )  # fmt: skip


def _unpack(target: ast.expr, value: Any, is_literal: bool) -> list[tuple[str, Any, bool]]:
    if isinstance(target, ast.Name):
        return [(target.id, value, is_literal)]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = target.elts
        if any(isinstance(e, ast.Starred) for e in names):
            is_literal = False
        values: list[Any] = [None] * len(names)
        if is_literal and isinstance(value, (tuple, list)) and len(value) == len(names):
            values = list(value)
        else:
            is_literal = False
        out: list[tuple[str, Any, bool]] = []
        for e, v in zip(names, values):
            out.extend(_unpack(e, v, is_literal))
        return out
    return []  # x.attr = ..., x[0] = ...: not a parameter


def _annotation_text(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    try:
        return ast.unparse(node)
    except Exception:
        return None


def assigned_names(source: str) -> list[str]:
    """Names the parameters cell assigns (what the tracker takes from the kernel's namespace)."""
    return read_cell(source).names()


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def tagged_cell(nb: dict[str, Any], tag: str) -> dict[str, Any] | None:
    """The first cell tagged `tag`, of any type (papermill's find_first_tagged_cell_index)."""
    for cell in nb.get("cells") or []:
        meta = cell.get("metadata") if isinstance(cell, dict) else None
        tags = meta.get("tags") if isinstance(meta, dict) else None
        if isinstance(tags, list) and tag in tags:
            return cell if isinstance(cell, dict) else None
    return None


def parameters_cell(nb: dict[str, Any]) -> dict[str, Any] | None:
    """The first cell tagged `parameters` (papermill injects right after it)."""
    return tagged_cell(nb, "parameters")


def injected_cell(nb: dict[str, Any]) -> dict[str, Any] | None:
    """papermill's `injected-parameters` cell (a papermill output run again)."""
    return tagged_cell(nb, "injected-parameters")


def notebook_parameters(nb: dict[str, Any], injected: bool = True) -> dict[str, Known]:
    """The parameters of a notebook: the names its parameters cell assigns with their literal
    values, and (injected=True) the values of papermill's injected cell over them: what the
    notebook runs with when papermill leaves that cell alone (nothing new is injected)."""
    found: dict[str, Known] = {}
    cell = parameters_cell(nb)
    if cell is not None and cell.get("cell_type", "code") == "code":
        found.update(read_cell(cell_source(cell)).known())
    cell = injected_cell(nb) if injected else None
    if cell is not None and cell.get("cell_type", "code") == "code":
        for name, k in read_cell(cell_source(cell)).known().items():
            if k.type is not None or name not in found:
                found[name] = k
    return found


def capture(
    namespace: dict[str, Any], names: list[str], source: str
) -> list[tuple[str, str, str, str]]:
    """Param rows (name, JSON, type, source) for the names whose values can be kept; others
    (modules, arrays, objects) are left out."""
    rows = []
    for name in names:
        if name not in namespace or name.startswith("_"):
            continue
        try:
            text, type_name = encode(namespace[name], f"parameter {name!r}")
        except (TypeError, ValueError, OverflowError, RecursionError):
            continue
        rows.append((name, text, type_name, source))
    return rows


# --- given values, checked against the template -----------------------------------------------


@dataclass(frozen=True)
class Given:
    """A new value; `text` is what was typed on the command line (None for values from a file,
    a YAML string, the API or `-r`): a typed text can still become the template's type."""

    value: Any
    text: str | None = None


def check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ParamError(f"{where}: {name!r} is not a valid parameter name (a Python identifier)")
    return name


def papermill_value(text: str) -> Any:
    """papermill's `-p NAME VALUE` rule (cli._resolve_type): True, False, None, an int, a
    float, else the text."""
    if text == "True":
        return True
    if text == "False":
        return False
    if text == "None":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


_CONTAINER_START = re.compile(r"^\s*[\[({]")


def text_value(text: str) -> Any:
    """Our `-p NAME=VALUE` rule, before the template's type is applied: papermill's rule
    (True, False, None, an int, a float), then a list, tuple, dict or set when the text starts
    with `[`, `(` or `{` and reads as a Python literal or JSON (`[1, (2, 3)]`, `{"a": true}`),
    else the text exactly as typed: quotes are part of the string, never taken off."""
    value = papermill_value(text)
    if not isinstance(value, str) or not _CONTAINER_START.match(text):
        return value
    try:
        parsed = literal_value(text)
    except NotLiteral:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return text
    return parsed if isinstance(parsed, (list, tuple, dict, set)) else text


def check_value(name: str, value: Any) -> Any:
    """A value that can be injected and stored (TypeError from to_json as ParamError)."""
    try:
        to_json(value)
    except (TypeError, RecursionError) as exc:
        raise ParamError(f"parameter {name!r}: {exc}") from None
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    k = kind(infer(_scalar(value)))
    return {"int": "an int", "float": "a float", "bool": "a bool", "str": "a string",
            "list": "a list", "tuple": "a tuple", "dict": "a dict", "set": "a set",
            "complex": "a complex number", "bytes": "bytes"}.get(k, f"a {type(value).__name__}")  # fmt: skip


def fit(name: str, given: Given, type_name: str | None) -> Any:
    """The value, converted where that loses nothing (int -> float, list -> tuple/set, typed
    text -> str or bool), or a ParamError that says what the parameter expects. None fits any
    type (papermill injects None into anything); a type we cannot check takes any value."""
    value = _scalar(given.value)
    k = kind(type_name)
    if value is None or k in ("none", "other"):
        return value
    text = given.text
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if k == "int":
        if is_int:
            return value
    elif k == "float":
        if isinstance(value, float):
            return value
        if is_int:
            try:
                return float(value)
            except OverflowError:
                pass
    elif k == "bool":
        if isinstance(value, bool):
            return value
        if text is not None and text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
    elif k == "str":
        if isinstance(value, str):
            return value
        if text is not None:
            return text  # `-p name=5` for a string parameter is the string "5"
    elif k == "list":
        if isinstance(value, list):
            return value
        if isinstance(value, tuple):
            return list(value)
    elif k == "tuple":
        if isinstance(value, tuple):
            return value
        if isinstance(value, list):
            return tuple(value)
    elif k == "set":
        if isinstance(value, (set, frozenset, list, tuple)):
            try:
                return frozenset(value) if type_name == "frozenset" else set(value)
            except TypeError:
                pass
    elif k == "dict":
        if isinstance(value, dict):
            return value
    elif k == "complex":
        if isinstance(value, complex):
            return value
        if is_int or isinstance(value, float):
            return complex(value)
        if text is not None:
            try:
                return complex(text.replace(" ", ""))
            except ValueError:
                pass
    elif k == "bytes":
        if isinstance(value, (bytes, bytearray)):
            return bytearray(value) if type_name == "bytearray" else bytes(value)
        if isinstance(value, str):
            raw = value.encode("utf-8")
            return bytearray(raw) if type_name == "bytearray" else raw
    shown = text if text is not None and text.strip() else _shown(value)  # (empty: '')
    was = "" if type_name == k else f" (it was {type_name})"  # an int64, a tuple's kind
    raise ParamError(
        f"parameter {name!r} expects {_EXPECTED.get(k, k)}{was}, got {_describe(value)}: {shown}"
    )


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def as_given(params: dict[str, Any] | None) -> dict[str, Given]:
    """Typed values from the HTTP API, a pipeline or Python (no command-line text)."""
    out: dict[str, Given] = {}
    for name, value in (params or {}).items():
        check_name(name, "parameters")
        out[name] = value if isinstance(value, Given) else Given(check_value(name, value))
    return out


def resolve(
    given: dict[str, Given],
    known: dict[str, Known],
    allow_new: bool = False,
    type_check: bool = True,
) -> dict[str, Any]:
    """Check every new value against the known parameters: unknown names are refused with the
    list of known ones (unless allow_new); values must fit the known type (unless not
    type_check, where they pass exactly as given, as papermill passes them)."""
    unknown = sorted(set(given) - set(known))
    if unknown and not allow_new:
        names = ", ".join(sorted(known)) or "none"
        which = ", ".join(repr(n) for n in unknown)
        if not known:  # papermill warns and injects at the top: say why, and how to do that
            raise ParamError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} {which}: the notebook takes "
                "none (no cell tagged 'parameters' assigns any); --allow-new-params injects "
                "them at its top, as papermill does"
            )
        raise ParamError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {which}; known: {names} "
            "(pass --allow-new-params to add new ones)"
        )
    out: dict[str, Any] = {}
    for name, g in given.items():
        if not type_check:
            out[name] = check_value(name, _scalar(g.value))
        else:
            out[name] = fit(name, g, known[name].type if name in known else None)
    return out


# --- the front end's copy of the table ----------------------------------------------------------


def table_json() -> str:
    """labextension/src/paramTypes.json: kind -> type names, generated from TYPE_TABLE."""
    return json.dumps({k: list(v) for k, v in TYPE_TABLE.items()}, indent=2) + "\n"


def _ts_path() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "labextension" / "src" / "paramTypes.json"


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m jupyter_mlp.params")
    p.add_argument("--write-ts", action="store_true", help=f"write {_ts_path()}")
    args = p.parse_args(argv)
    if args.write_ts:
        _ts_path().write_text(table_json(), encoding="utf-8")
        print(f"wrote {_ts_path()}")
    else:
        print(table_json(), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
