"""The package's layers, read from its source with `ast` (no module is imported): no import
circle inside execution/ or pipelines/, and every import points the way DESIGN.md's arrows do:

    model <- store <- tracker, execution <- sweeps <- pipelines <- server, cli

Every import counts, also one inside a function: a lazy import that runs back up a layer is
still a circle the moment it runs. One test runs a script's tracked run in a fresh interpreter,
for what that run loads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jupyter_mlp"
NAME = "jupyter_mlp"

# What each layer may import of the package (besides itself). params.py and records.py are the
# shared definitions (stdlib only) every layer may use; the package root is the public API glue.
SHARED = {"model", "params", "records", "_version"}
MAY_IMPORT = {
    "model": set(),
    "params": {"model"},
    "records": {"model", "params"},
    "store": {"model", "params", "records"},
    "tracker": {"model", "params", "records", "store"},
    "execution": {"model", "params", "records", "store", "tracker"},
    # A pipeline stage may be a sweep (pipelines.sweep_stage drives sweeps.driver), so sweeps
    # sit below pipelines.
    "sweeps": {"model", "params", "records", "store", "tracker", "execution"},
    "pipelines": {"model", "params", "records", "store", "tracker", "execution", "sweeps"},
    "server": {
        "model",
        "params",
        "records",
        "store",
        "tracker",
        "execution",
        "pipelines",
        "sweeps",
    },
    "cli": {"model", "params", "records", "store", "tracker", "execution", "pipelines", "sweeps"},
}
# The store knows nothing of Jupyter (jupyter_core's path helper for the default home aside).
STORE_FORBIDDEN = ("jupyter_server", "jupyter_client", "tornado", "IPython", "ipykernel",
                   "nbformat", "nbclient", "papermill")  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {
        module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "labextension" not in p.parts
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Absolute names of everything `name` imports, a submodule where `from X import sub` is one."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    found.add(sub)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {
        name: {m for m in imports_of(name, path, known) if m in known and m != name}
        for name, path in mods.items()
    }


def cycles(edges: dict[str, set[str]], within: str) -> list[list[str]]:
    """Every import circle among the modules under `within` (one path per circle found)."""
    nodes = {n for n in edges if n == within or n.startswith(within + ".")}
    found, state, stack = [], {}, []

    def visit(n: str) -> None:
        state[n] = "open"
        stack.append(n)
        for m in sorted(edges[n] & nodes):
            if state.get(m) == "open":
                found.append(stack[stack.index(m) :] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(nodes):
        if n not in state:
            visit(n)
    return found


def layer(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) < 2:
        return None  # the package root is glue, not a layer
    return "model" if parts[1] == "model_rows" else parts[1]  # model's row classes, apart


@pytest.mark.parametrize(
    "package", ["jupyter_mlp.execution", "jupyter_mlp.sweeps", "jupyter_mlp.pipelines"]
)
def test_no_import_circle(package):
    found = cycles(graph(), package)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_every_import_points_down_the_layers():
    wrong = []
    for name, targets in graph().items():
        mine = layer(name)
        if mine is None or mine not in MAY_IMPORT:
            continue
        for target in targets:
            theirs = layer(target)
            if theirs is not None and theirs != mine and theirs not in MAY_IMPORT[mine]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against DESIGN.md's layers:\n" + "\n".join(sorted(wrong))


def test_the_store_imports_nothing_of_jupyter():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        if layer(name) != "store":
            continue
        for target in imports_of(name, path, set(mods)):
            if target.split(".")[0] in STORE_FORBIDDEN:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_circle():
    """The circle the execution layer had (executors -> local -> executors) is one it finds."""
    edges = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert cycles(edges, "p") == [["p.a", "p.b", "p.c", "p.a"]]


# Never loaded by a script's run: the server side, papermill and friends, and what only the
# type checker reads (typing: ~3 ms of a fresh script's run start) or a cache miss needs.
RUN_FORBIDDEN = ("typing", "importlib.metadata", "tornado", "jupyter_server", "jupyter_client",
                 "IPython", "zmq", "papermill", "nbformat", "requests", "dask", "optuna",
                 "pydantic")  # fmt: skip


def test_a_scripts_run_loads_only_what_it_uses(tmp_path):
    """mlp.track() -> log_metric -> finish() in a fresh interpreter (the second one on its home:
    the package list is cached by the first) loads none of RUN_FORBIDDEN."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import jupyter_mlp as mlp\n"
        "class Quiet:\n"
        "    def show(self, s): pass\n"
        "    def refresh(self, s): pass\n"
        "    def close(self, s): pass\n"
        "mlp.track('t', gpu=False, status_view=Quiet())\n"
        "mlp.log_metric('loss', 0.5)\n"
        "mlp.finish()\n"
        f"print(sorted(m for m in {RUN_FORBIDDEN!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "MLP_HOME": str(tmp_path / "home")}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout


def test_a_command_that_queues_and_claims_a_job_loads_only_what_it_uses(tmp_path):
    """What every `jupyter mlp run` / `pipeline run` pays before its first job starts: finding
    the local executor reads no installed entry points (importlib.metadata), a python3 job's
    kernel is checked without jupyter_client's kernel list, and a job that asks for no GPU is
    claimed without NVML (pynvml)."""
    import json
    import os
    import subprocess
    import sys

    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}},
          "cells": [{"id": "a", "cell_type": "code", "metadata": {}, "outputs": [],
                     "execution_count": None, "source": "x = 1"}]}  # fmt: skip
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb))
    code = (
        "import sys\n"
        "from jupyter_mlp.store import Store\n"
        "from jupyter_mlp.execution.service import JobService\n"
        "service = JobService(Store(), dispatch=False)\n"
        "run_id = service.submit_notebook('nb.ipynb')\n"
        "claimed = service.executor('local')._claim()\n"
        "assert [j.run_id for j in claimed] == [run_id], claimed\n"
        "print(sorted(m for m in ('importlib.metadata', 'pynvml', 'jupyter_client')"
        " if m in sys.modules))\n"
    )
    env = {**os.environ, "MLP_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout


def test_the_runs_panel_marks_a_run_idle_when_the_cli_does():
    """One threshold for "idle" (store/runs.py), which the front end's copy must equal: the
    panel read "idle" after one minute while `runs list` and README said five."""
    import re

    from jupyter_mlp.store.runs import IDLE_AFTER_S

    ts = (PACKAGE.parent / "labextension" / "src" / "components" / "format.ts").read_text()
    (value,) = re.findall(r"export const IDLE_AFTER_S = (\d+);", ts)
    assert float(value) == IDLE_AFTER_S
