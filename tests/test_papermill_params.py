"""Parameters as papermill has them: our cell reader against `papermill.inspect_notebook`, and
`jupyter mlp run | rerun` against the `papermill` command line on the same notebooks, with real
kernels, comparing the injected cell and what each cell printed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_notebook
from hypothesis import HealthCheck, given, settings
from test_params import same, values

from jupyter_mlp import params as P
from jupyter_mlp.store import runs as run_store

BIN = Path(sys.executable).parent
JUPYTER = shutil.which("jupyter", path=str(BIN)) or "jupyter"
PAPERMILL = shutil.which("papermill", path=str(BIN)) or "papermill"


# --- the parameters cell: ours and papermill's inspection -----------------------------------

AGREE = {
    "plain": "a = 1\nb = 'x'\nc = 0.5\n",
    "annotated": "epochs: int = 5\nname: str = 'n'\nrate = 0.1  # type: float\nq: 'float' = 2.0\n",
    "tuples": "pair = (1, 2)\nt = 1, 2\nnested = ((1, 2), [3])\n",
    "broken lines": "%matplotlib inline\nlr = 0.1\nepochs = \nname = 'n'\n",
    "comments": "# a comment\nlr = 0.1  # the learning rate\n\n   # indented comment\nseed = 0\n",
    "multi-line values": "layers = [\n    1,\n    2,\n]\nopts = {\n  'a': 1,\n  'b': (2, 3),\n}  # options\nx = 1\n",
    "None bool set": "n = None\nflag = True\ns = {1, 2}\nc = 1+2j\nby = b'x'\n",
    "magics": "%config InlineBackend.figure_format = 'svg'\n!echo hi\nlr = 0.1\n",
    "half-written": "lr = 0.1\nlayers = [1, 2\nseed = 3\n",
}

# Where papermill's line rules miss a name or invent one, ours reads Python as Python.
DIFFER = {
    "two '=' on a line": ('e = "a=b"\nf = 1\n', ["f"], ["e", "f"]),
    "chained": ("a = b = 1\nc = 2\n", ["c"], ["a", "b", "c"]),
    "unpacking": ("x, y = 1, 2\n", [], ["x", "y"]),
    "keyword call over lines": ("d = dict(\n    k=1,\n)\n", ["d", "k"], ["d"]),
    "inside a function": ("def f():\n    inner = 1\nouter = 2\n", ["inner", "outer"], ["outer"]),
}


def _nb(tmp_path: Path, source: str, name: str = "nb.ipynb") -> Path:
    return write_notebook(tmp_path / name, [{"id": "p", "source": source, "tags": ["parameters"]}])


@pytest.mark.parametrize("variant", sorted(AGREE))
def test_our_cell_reader_finds_what_papermills_inspection_finds(tmp_path, variant):
    import papermill

    source = AGREE[variant]
    theirs = papermill.inspect_notebook(str(_nb(tmp_path, source)))
    ours = {p.name: p for p in P.read_cell(source).params}
    assert list(ours) == list(theirs), variant
    for name, t in theirs.items():
        o = ours[name]
        assert (o.annotation or "None") == t["inferred_type_name"], name
        assert "".join(o.default.split()) == "".join(t["default"].split()), name
        assert o.help == t["help"], name


@pytest.mark.parametrize("variant", sorted(DIFFER))
def test_where_papermills_line_rules_differ_ours_reads_python(tmp_path, variant):
    import papermill

    source, papermill_names, our_names = DIFFER[variant]
    assert list(papermill.inspect_notebook(str(_nb(tmp_path, source)))) == papermill_names
    assert P.read_cell(source).names() == our_names


# --- the command line: papermill and `jupyter mlp run` on the same notebook -----------------

PARAMS = (
    "%config InlineBackend.figure_format = 'svg'\n"  # a line papermill's inspection skips
    "a = 0\nf = 0.0\nflag = False\nnone = 'default'\nraw = 'r'\ny = []\nwhen = 'never'\n"
    "s = 'x'\nname = 'n'\n"
)
SHOW = "for k in 'a f flag none raw y when s name'.split():\n    print(k, repr(globals()[k]))"


def _papermill(src: Path, out: Path, *args: str) -> dict:
    done = subprocess.run(
        [PAPERMILL, str(src), str(out), "-k", "python3", "--no-progress-bar", *args],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def _mlp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([JUPYTER, "mlp", *args], capture_output=True, text=True, timeout=180)


def _mlp_run(store, *args: str) -> tuple[dict, dict]:
    """(the run, its executed notebook) of `jupyter mlp <args>`."""
    before = {r["id"] for r in run_store.list_runs(store.connect())}
    done = _mlp(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    (new,) = [r for r in run_store.list_runs(store.connect()) if r["id"] not in before]
    run = run_store.get_run(store.connect(), new["id"])
    return run, json.loads(store.blobs.read_bytes(run["output_notebook"]))


def _cells(nb: dict) -> list[tuple]:
    """What to compare of an executed notebook, cell by cell: tags, source, printed text, errors."""
    out = []
    for c in nb["cells"]:
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        printed = "".join(
            "".join(o["text"]) if isinstance(o.get("text"), list) else o.get("text", "")
            for o in c.get("outputs", []) if o.get("output_type") == "stream"
        )  # fmt: skip
        errors = [o["ename"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        out.append((c["metadata"].get("tags", []), src, printed, errors))
    return out


def _types(store, run_id: str) -> dict[str, str]:
    return {p["key"]: p["type"] for p in run_store.run_part(store.connect(), run_id, "params")}


def test_papermills_value_forms_give_what_papermill_gives(store, tmp_path):
    nb = write_notebook(tmp_path / "forms.ipynb", [
        {"id": "p", "source": PARAMS, "tags": ["parameters"]}, {"id": "show", "source": SHOW},
    ])  # fmt: skip
    (tmp_path / "p.yaml").write_text("when: 2024-01-02\nf: 2.5\n")
    forms = ["-f", str(tmp_path / "p.yaml"), "-y", "{y: [1, 2], a: 1}", "-p", "a", "5",
             "-p", "flag", "True", "-p", "none", "None", "-p", "s", "a=b", "-r", "raw", "7"]  # fmt: skip
    theirs = _papermill(nb, tmp_path / "pm.ipynb", *forms)
    run, ours = _mlp_run(store, "run", str(nb), *forms)
    assert _cells(ours) == _cells(theirs)
    injected = _cells(ours)[1]
    assert injected[0] == ["injected-parameters"] and 'when = "2024-01-02"' in injected[1]
    printed = _cells(ours)[2][2]
    assert "a 5\n" in printed and "flag True\n" in printed and "none None\n" in printed
    assert "raw '7'\n" in printed and "s 'a=b'\n" in printed and "when '2024-01-02'\n" in printed
    assert run["params"]["a"] == 5 and run["params"]["none"] is None
    assert _types(store, run["id"])["a"] == "int" and _types(store, run["id"])["raw"] == "str"


def test_our_name_value_form_keeps_quotes_and_reads_true_and_none(store, tmp_path):
    nb = write_notebook(tmp_path / "ours.ipynb", [
        {"id": "p", "source": PARAMS, "tags": ["parameters"]}, {"id": "show", "source": SHOW},
    ])  # fmt: skip
    evil = '"); import os; ("'
    theirs = _papermill(nb, tmp_path / "pm.ipynb", "-y", "{y: [1, 2]}", "-p", "flag", "True",
                        "-p", "none", "None", "-p", "a", "5", "-r", "name", evil)  # fmt: skip
    run, ours = _mlp_run(store, "run", str(nb), "-p", "y=[1, 2]", "-p", "flag=True",
                         "-p", "none=None", "-p", "a=5", "-p", f"name={evil}")  # fmt: skip
    assert _cells(ours) == _cells(theirs)
    assert f"name {evil!r}\n" in _cells(ours)[2][2]
    assert run["params"]["name"] == evil and run["params"]["flag"] is True
    # typed against the template: a str parameter takes the text; an int refuses a word
    assert _mlp("run", str(nb), "-p", "s=5", "--detach").returncode == 0
    bad = _mlp("run", str(nb), "-p", "a=many")
    assert bad.returncode == 2 and "parameter 'a' expects an int, got a string: many" in bad.stderr
    unknown = _mlp("run", str(nb), "-p", "nope=1")
    assert unknown.returncode == 2 and "unknown parameter 'nope'" in unknown.stderr
    assert "known: a, f, flag, name, none, raw, s, when, y" in unknown.stderr  # %config skipped
    assert "--allow-new-params" in unknown.stderr


def test_a_notebook_with_papermills_injected_cell(store, tmp_path):
    nb = write_notebook(tmp_path / "src.ipynb", [
        {"id": "p", "source": "a = 0\nb = None\nt = (0,)\n", "tags": ["parameters"]},
        {"id": "show", "source": "print(repr(a), repr(b), repr(t))"},
    ])  # fmt: skip
    _papermill(nb, tmp_path / "once.ipynb", "-p", "a", "5", "-y", "{b: [1, 2]}")
    once = tmp_path / "once.ipynb"

    # run again without new values: papermill leaves the injected cell alone, so do we
    theirs = _papermill(once, tmp_path / "twice.ipynb")
    run, ours = _mlp_run(store, "run", str(once))
    assert _cells(ours) == _cells(theirs)
    assert _cells(ours)[2][2] == "5 [1, 2] (0,)\n"
    assert run["params"] == {"a": 5, "b": [1, 2], "t": [0]}  # recorded, not null
    assert _types(store, run["id"]) == {"a": "int", "b": "list", "t": "tuple"}

    # a rerun without -p keeps them
    rerun, again = _mlp_run(store, "rerun", run["id"])
    assert _cells(again)[2][2] == "5 [1, 2] (0,)\n" and rerun["params"] == run["params"]

    # new values: papermill replaces the injected cell with them alone, and so do we
    theirs = _papermill(once, tmp_path / "new.ipynb", "-p", "a", "6")
    run, ours = _mlp_run(store, "run", str(once), "-p", "a", "6")
    assert _cells(ours) == _cells(theirs) and _cells(ours)[2][2] == "6 None (0,)\n"
    assert run["params"]["a"] == 6 and run["params"]["b"] is None


def test_tuple_set_complex_bytes_and_int_keyed_defaults_survive_a_rerun(store, tmp_path):
    source = "t = (1, 2)\ns = {3, 1}\nc = 1+2j\nby = b'\\x00x'\nd = {1: 'a'}\nfs = frozenset()\nn = None\n"
    show = "print(*(f'{k}={v!r}' for k, v in [('t', t), ('s', s), ('c', c), ('by', by), ('d', d), ('fs', fs), ('n', n)]))"
    nb = write_notebook(tmp_path / "types.ipynb", [
        {"id": "p", "source": source, "tags": ["parameters"]}, {"id": "show", "source": show},
    ])  # fmt: skip
    run, first = _mlp_run(store, "run", str(nb))
    expected = "t=(1, 2) s={1, 3} c=(1+2j) by=b'\\x00x' d={1: 'a'} fs=frozenset() n=None\n"
    assert _cells(first)[1][2] == expected
    assert _types(store, run["id"]) == {
        "t": "tuple", "s": "set", "c": "complex", "by": "bytes", "d": "dict", "fs": "frozenset",
        "n": "None",
    }  # fmt: skip
    rerun, again = _mlp_run(store, "rerun", run["id"], "-p", "t=[3, 4]", "-p", "s=[5]")
    injected = _cells(again)[1]
    assert injected[0] == ["injected-parameters"]
    assert "t = (3, 4)" in injected[1] and 'd = {1: "a"}' in injected[1]
    assert _cells(again)[2][2] == expected.replace("t=(1, 2) s={1, 3}", "t=(3, 4) s={5}")
    assert _types(store, rerun["id"])["t"] == "tuple" and _types(store, rerun["id"])["s"] == "set"
    shown = _mlp("runs", "show", rerun["id"]).stdout
    params = shown.split("params:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[-1] for line in params.splitlines()] == [
        "bytes", "complex", "dict", "frozenset", "None", "set", "tuple",
    ]  # fmt: skip


# --- the injected cell: papermill's translator, taught the values JSON lacks -------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_the_injected_cell_gives_back_each_value_and_is_papermills_for_json(value):
    from papermill.translators import PythonTranslator

    from jupyter_mlp.execution.param_translator import job_parameters, translator

    injected = job_parameters({"v": P.to_json(value)})
    assert injected is not None
    json.dumps(injected, allow_nan=True)  # papermill writes them into the notebook's metadata
    source = translator().codify(injected)
    namespace: dict = {}
    exec(source, namespace)
    assert same(namespace["v"], value)
    if not P.needs_literal(value):
        assert source == PythonTranslator.codify({"v": value})


def test_the_tracker_records_every_default_with_its_type_in_an_interactive_run(
    start_kernel, store, tmp_path
):
    cell = (
        "%config InlineBackend.figure_format = 'svg'\n"
        "t = (1, 2)\ns = {1}\nc = 1j\nby = b'x'\nd = {1: 'a'}\nn = None\nlr = 0.1\nimport math\n"
    )
    track = "%load_ext jupyter_mlp\n%mlp_track types"
    nb = write_notebook(tmp_path / "types.ipynb", [
        {"id": "setup", "source": track}, {"id": "params", "source": cell, "tags": ["parameters"]},
    ])  # fmt: skip
    k = start_kernel(JPY_SESSION_NAME=str(nb))
    # as "Run All" does: the parameters cell right after the tracking one (CI once ran it before
    # the tracker had read which cells are tagged `parameters`, and recorded none)
    k.run(track, cell_id="setup")
    assert k.run(cell, cell_id="params").status == "ok"
    k.run("%mlp_track stop")
    (run,) = run_store.list_runs(store.connect())
    run_id = run["id"]
    assert _types(store, run_id) == {
        "t": "tuple", "s": "set", "c": "complex", "by": "bytes", "d": "dict", "n": "None",
        "lr": "float",
    }  # fmt: skip
    assert {
        p["key"]: P.decode(json.dumps(p["value"]), p["type"])
        for p in run_store.run_part(store.connect(), run_id, "params")
    } == {"t": (1, 2), "s": {1}, "c": 1j, "by": b"x", "d": {1: "a"}, "n": None, "lr": 0.1}
