"""jupyter_mlp.params, the one parameter model: infer, encode/decode, literal, fit, the cell
reader, the CLI value forms and the generated type table. No kernels here (see
test_papermill_params.py for the same rules against papermill and real kernels)."""

from __future__ import annotations

import argparse
import base64
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_mlp import params as P
from jupyter_mlp.execution import param_options as O

ROOT = Path(__file__).resolve().parents[1]


def same(a, b) -> bool:
    """Equal with the same types all the way down, NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        keys_b = list(b)
        for ka, va in a.items():
            match = [kb for kb in keys_b if same(ka, kb)]
            if not match or not same(va, b[match[0]]):
                return False
        return True
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    return a == b


# --- values -------------------------------------------------------------------------------------

ints = st.integers() | st.integers(min_value=2**63, max_value=2**200) | st.just(-(2**70))
floats = st.floats(allow_nan=True, allow_infinity=True)
texts = st.text(max_size=20) | st.sampled_from(
    ['"', "'", '\\"); import os; ("', "a\nb", "é€😀", ""]
)
hashables = st.recursive(
    st.none() | st.booleans() | ints | st.floats(allow_nan=False) | texts | st.binary(max_size=8),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
scalars = (
    st.none() | st.booleans() | ints | floats | texts | st.binary(max_size=8)
    | st.complex_numbers(allow_nan=True, allow_infinity=True)
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(texts, inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=3)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=3)
        | st.binary(max_size=4).map(bytearray)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_encode_decode_round_trip_keeps_values_and_types(value):
    text, type_name = P.encode(value)
    json.loads(text)  # JSON text (NaN/Infinity as Python's json writes them)
    assert type_name == P.infer(value)
    assert same(P.decode(text, type_name), value)
    # the self-describing form of job parameters, through JSON text
    assert same(P.from_json(json.loads(json.dumps(P.to_json(value)))), value)
    # the Python source injected for it reads back as the same value
    assert same(P.literal_value(P.literal(value)), value)


def test_values_json_lacks_are_recorded_with_their_type():
    cases = [
        ((1, 2), ("[1, 2]", "tuple")),
        ((), ("[]", "tuple")),
        ({3, 1, 2}, ("[1, 2, 3]", "set")),
        (frozenset({"b", "a"}), ('["a", "b"]', "frozenset")),
        (1 + 2j, ("[1.0, 2.0]", "complex")),
        (b"\x00ab", ('"\\u0000ab"', "bytes")),
    ]
    for value, expected in cases:
        assert P.encode(value) == expected
    assert P.encode({1: "a"}) == ('[[1, "a"]]', "dict")
    assert P.encode({"a": (1,)}) == ('{"a": {"__py__": "tuple", "value": [1]}}', "dict")
    # a dict of ours that looks like a tag is kept as what it is
    tricky = {"__py__": "tuple", "value": [1]}
    assert same(P.decode(*P.encode(tricky)), tricky)
    assert same(P.decode(*P.encode([tricky])), [tricky])
    # rows stored before tags existed read as they were written
    assert P.decode("[1, 2]", "list") == [1, 2] and P.decode("[1, 2]", "tuple") == (1, 2)
    assert P.decode("null", "NoneType") is None
    assert P.decode('{"a": 1}', "SomeClass") == {"a": 1}


def test_what_cannot_be_kept_is_a_type_error_naming_it():
    for bad in (object(), [1, object()], {"a": math}, range(3)):
        with pytest.raises(TypeError, match="cannot be stored|nested"):
            P.encode(bad, "parameter 'x'")
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(TypeError, match="nested"):
        P.encode(deep)
    loop: list = []
    loop.append(loop)
    with pytest.raises(TypeError):
        P.encode(loop)
    assert P.capture({"m": math, "x": 1, "_y": 2}, ["m", "x", "_y", "gone"], "parameters") == [
        ("x", "1", "int", "parameters")
    ]


def test_infer_names_numpy_types_without_importing_numpy():
    np = pytest.importorskip("numpy")
    cases = [
        (np.int64(3), "int64"), (np.float32(0.5), "float32"), (np.bool_(True), type(np.bool_(1)).__name__),
        (np.array(7), "int64"), (np.str_("s"), "str_"), (np.complex128(1j), "complex128"),
    ]  # fmt: skip
    for value, name in cases:
        assert P.infer(value) == name
        text, type_name = P.encode(value)
        assert type_name == name and P.kind(name) != "other"
        assert P.decode(text, type_name) == value.item()
    with pytest.raises(TypeError):
        P.encode(np.arange(3))
    out = subprocess.run(
        [sys.executable, "-c", "import sys, jupyter_mlp.params; print(sorted(m for m in sys.modules"
         " if m.split('.')[0] in ('numpy', 'yaml', 'papermill', 'IPython', 'tornado')))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_type_table_kinds_and_the_generated_json_is_fresh():
    assert P.kind("int64") == "int" and P.kind("float") == "float" and P.kind("bool_") == "bool"
    assert P.kind("None") == P.kind("NoneType") == P.kind(None) == "none"
    assert P.kind("tuple") == "tuple" and P.kind("frozenset") == "set"
    assert P.kind("ndarray") == "other" and P.kind("MyClass") == "other"
    names = [n for kind in P.TYPE_TABLE.values() for n in kind]
    assert len(names) == len(set(names)), "a type name in two kinds"
    path = ROOT / "labextension" / "src" / "paramTypes.json"
    # the same table (prettier may lay the file out its own way; what counts is the content)
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(P.table_json()), (
        "labextension/src/paramTypes.json is stale: run python -m jupyter_mlp.params --write-ts"
    )
    data = json.loads(path.read_text())
    assert set(data) >= {"int", "float", "bool", "str", "none", "list", "tuple", "dict", "set"}
    assert data["none"][0] == "None"


# --- fit ------------------------------------------------------------------------------------------


def test_fit_converts_what_loses_nothing_and_names_what_it_expects():
    G = P.Given
    ok = [
        (G(1), "float", 1.0), (G(2**70), "float", float(2**70)), (G(5), "int64", 5),
        (G(True), "bool", True), (G("false", "false"), "bool", False),
        (G(5, "5"), "str", "5"), (G([1], "[1]"), "str", "[1]"), (G(None, "None"), "str", None),
        (G([1, 2]), "tuple", (1, 2)), (G((1, 2)), "list", [1, 2]), (G([1, 2]), "set", {1, 2}),
        (G([1]), "frozenset", frozenset({1})), (G(2), "complex", 2 + 0j),
        (G("1+2j", "1+2j"), "complex", 1 + 2j), (G("ab"), "bytes", b"ab"),
        (G("anything"), "ndarray", "anything"), (G(None), "int", None), (G("x"), None, "x"),
        (G({"a": 1}), "dict", {"a": 1}),
    ]  # fmt: skip
    for g, type_name, expected in ok:
        assert same(P.fit("p", g, type_name), expected), (g, type_name)
    bad = [
        (G(1.5, "1.5"), "int", "parameter 'p' expects an int, got a float: 1.5"),
        (G(True), "int", "expects an int"), (G("abc", "abc"), "float", "expects a float"),
        (G("yes", "yes"), "bool", "expects a bool"), (G(5), "str", "expects a string"),
        (G("5"), "int64", "expects an int (it was int64), got a string: '5'"),
        (G([[1]]), "set", "expects a set"), (G([1]), "dict", "expects a dict"),
        (G(2**2000), "float", "expects a float"),
    ]  # fmt: skip
    for g, type_name, message in bad:
        with pytest.raises(P.ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
            P.fit("p", g, type_name)


def test_resolve_refuses_unknown_names_unless_allowed_and_checks_unless_told_not_to():
    known = {"lr": P.Known(0.1, "float"), "name": P.Known("a", "str")}
    with pytest.raises(
        P.ParamError, match=r"unknown parameter 'lrr'; known: lr, name \(pass --allow-new-params"
    ):
        P.resolve({"lrr": P.Given(1)}, known)
    assert P.resolve({"new": P.Given((1,))}, known, allow_new=True) == {"new": (1,)}
    with pytest.raises(P.ParamError, match=r"expects a float, got a string: ''$"):
        P.resolve({"lr": P.Given("", "")}, known)  # `-p lr=`: the empty text shown as such
    # a notebook with no parameters (no `parameters` cell): said so, with papermill's way out
    with pytest.raises(P.ParamError, match=r"the notebook takes none \(no cell tagged 'param"):
        P.resolve({"a": P.Given(1)}, {})
    with pytest.raises(P.ParamError, match="expects a float"):
        P.resolve({"lr": P.Given("fast", "fast")}, known)
    assert P.resolve({"lr": P.Given("fast", "fast")}, known, type_check=False) == {"lr": "fast"}
    assert P.resolve({"name": P.Given(5, "5")}, known, type_check=False) == {"name": 5}
    with pytest.raises(P.ParamError, match="cannot be stored"):
        P.as_given({"x": object()})
    with pytest.raises(P.ParamError, match="not a valid parameter name"):
        P.as_given({"class": 1})


# --- the parameters cell --------------------------------------------------------------------------


def test_cell_reader_values_types_annotations_and_help():
    src = (
        "a = 1\n"
        "b: float = 2  # type: ignore the help\n"
        "t = 1, 2\n"
        "x, y = (3, 's')\n"
        "d = [\n  1,\n  2]  # multi\n"
        'e = "a=b"\n'
        "if True:\n    f = {1, 2}\n"
        "def g():\n    h = 1\n"
        "n = float('nan')\n"
        "c = complex(1.0, -2.0)\n"
        "z = frozenset({1})\n"
        "k = {1: 'a'}\n"
        "path = os.path.join('a', 'b')\n"
        "m: int = compute()\n"
        "a = 10\n"
    )
    reading = P.read_cell(src)
    found = {p.name: p for p in reading.params}
    assert list(found) == ["b", "t", "x", "y", "d", "e", "f", "n", "c", "z", "k", "path", "m", "a"]
    assert reading.skipped == []
    assert found["a"].value == 10  # the last assignment wins
    assert found["b"].value == 2.0 and found["b"].type == "float" and found["b"].help == "the help"
    assert found["t"].value == (1, 2) and found["t"].type == "tuple"
    assert (found["x"].value, found["y"].value) == (3, "s")
    assert found["d"].value == [1, 2] and found["d"].help == "multi"
    assert found["f"].type == "set" and math.isnan(found["n"].value)
    assert found["c"].value == 1 - 2j and found["z"].value == frozenset({1})
    assert found["k"].value == {1: "a"}
    assert not found["path"].literal and found["path"].type is None
    assert not found["m"].literal and found["m"].type == "int"  # annotated: checked as an int
    assert "h" not in found and "g" not in found


def test_one_broken_line_costs_that_line_only():
    src = "%matplotlib inline\nlr = 0.1\nepochs = \nlayers = [1,\n  2]\n!pip install x==1\nname = 'n'\n"
    reading = P.read_cell(src)
    assert reading.names() == ["lr", "epochs", "layers", "name"]
    known = reading.known()
    assert known["lr"] == P.Known(0.1, "float") and known["layers"] == P.Known([1, 2], "list")
    assert known["epochs"] == P.Known(None, None)  # named as papermill names it; value unknown
    assert reading.skipped == [1, 3, 6]
    assert P.read_cell("").params == [] and P.read_cell("(((((").params == []


def test_notebook_parameters_take_papermills_injected_cell_over_the_defaults():
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# title"},
            {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["a = 1\n", "b = None\n", "c = 'x'"]},
            {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
             "source": "# Parameters\na = 5\nb = (1, 2)\nnew = True\n"},
        ]
    }  # fmt: skip
    assert P.notebook_parameters(nb) == {
        "a": P.Known(5, "int"), "b": P.Known((1, 2), "tuple"), "c": P.Known("x", "str"),
        "new": P.Known(True, "bool"),
    }  # fmt: skip
    assert P.notebook_parameters(nb, injected=False) == {
        "a": P.Known(1, "int"), "b": P.Known(None, "None"), "c": P.Known("x", "str"),
    }  # fmt: skip
    assert P.notebook_parameters({"cells": []}) == {}


# --- command-line forms ---------------------------------------------------------------------------


def test_values_typed_on_the_command_line():
    from papermill.cli import _resolve_type

    texts = ["5", "-5", " 7 ", "1_000", "1e3", "nan", "-inf", "True", "False", "None", "true",
             "null", "", "hello world", "1,2", '"5"', "'x'", '"); import os; ("', "0x10", "١٢"]  # fmt: skip
    for text in texts:  # -p NAME VALUE is papermill's rule, to the type
        a, b = P.papermill_value(text), _resolve_type(text)
        assert same(a, b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), text
    ours = {
        "5": 5, "0.1": 0.1, "True": True, "None": None, "true": "true", "null": "null",
        '"5"': '"5"', '"); import os; ("': '"); import os; ("', "[1, 2]": [1, 2],
        "(1, 2)": (1, 2), "(1,)": (1,), "(1)": "(1)", "{1, 2}": {1, 2}, '{"a": true}': {"a": True},
        "{1: 'a'}": {1: "a"}, "[1": "[1", "hello": "hello", "": "",
    }  # fmt: skip
    for text, expected in ours.items():
        assert same(P.text_value(text), expected), text


@given(st.text(max_size=30))
def test_our_rule_agrees_with_papermills_on_scalars(text):
    from papermill.cli import _resolve_type

    ours, theirs = P.text_value(text), _resolve_type(text)
    if not isinstance(ours, (list, tuple, dict, set)):
        assert same(ours, theirs) or (ours != ours and theirs != theirs)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("notebook")
    O.add_options(p)
    return p


def test_both_p_forms_and_papermills_other_options(tmp_path):
    (tmp_path / "p.yaml").write_text("lr: 0.01\nwhen: 2024-01-02\nlayers: [1, 2]\nraw: 1\n")
    b64 = base64.b64encode(b"b: 1\nlr: 9\n").decode()
    args = _parser().parse_args([
        "-p", "a=5", "nb.ipynb", "-p", "b", "-3", "-p", "s", "a=b", "-r", "raw", "7",
        "-f", str(tmp_path / "p.yaml"), "-y", "{lr: 0.5, y: [1, 2]}", "-b", b64,
        "-p", "name=\"); import os; (\"", "-p", "flag=True", "-p", "x=None", "-P", str(tmp_path / "p.yaml"),
    ])  # fmt: skip
    assert args.notebook == "nb.ipynb" and args.allow_new is False and args.type_check is True
    values = {k: g.value for k, g in O.given(args).items()}
    assert values == {
        "a": 5, "b": -3, "s": "a=b", "raw": "7", "lr": 0.5, "when": "2024-01-02",
        "layers": [1, 2], "y": [1, 2], "name": '"); import os; ("', "flag": True, "x": None,
    }  # fmt: skip
    given_ = O.given(args)
    assert given_["a"].text == "5" and given_["raw"].text is None  # -r is never re-typed
    parsed = _parser().parse_args(["nb", "--allow-new", "--no-type-check", "--param", "k", "v"])
    assert parsed.allow_new and not parsed.type_check and O.given(parsed)["k"].value == "v"
    for argv, message in [
        (["nb", "-p", "lr"], "expected NAME=VALUE or NAME VALUE"),
        (["nb", "-p", "class=1"], "not a valid parameter name"),
        (["nb", "-y", "[1, 2]"], "expected a mapping"),
        (["nb", "-y", "{a: [}"], "not valid YAML"),
        (["nb", "-f", str(tmp_path / "missing.yaml")], "cannot read the file"),
        (["nb", "-b", "!!!"], "not base64"),
    ]:
        with pytest.raises(P.ParamError, match=message):
            O.given(_parser().parse_args(argv))


def test_a_yaml_date_passes_as_papermill_passes_it(tmp_path):
    from papermill.iorw import read_yaml_file

    path = tmp_path / "p.yaml"
    path.write_text("when: 2024-01-02\nat: 2024-01-02T03:04:05\nn: .nan\ns: !!set {a: null}\n")
    ours = {k: g.value for k, g in O.load_file(path).items()}
    theirs = read_yaml_file(str(path))
    assert ours["when"] == theirs["when"] == "2024-01-02" and ours["at"] == theirs["at"]
    assert math.isnan(ours["n"]) and ours["s"] == theirs["s"] == {"a"}


def test_help_says_which_rule_applies():
    text = _parser().format_help()
    for words in ("NAME=VALUE | NAME VALUE", "papermill's rule", "-r NAME VALUE", "--allow-new-params",
                  "--no-type-check", "quotes included", "dates stay strings"):  # fmt: skip
        assert words in " ".join(text.split()), words
