"""Papermill is the floor: our own small notebooks run through the real papermill CLI and through
`jupyter mlp run` and `rerun`, the executed notebooks compared cell by cell (sources, outputs,
errors, the injected cell, papermill's metadata without times, paths and ids), with the exit
codes and the runs' statuses. Then each other papermill difference of issue 12 on its own.

The parity cases share one store and run three at a time (one module-scoped fixture), so the
kernels' start-up cost is paid in parallel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import wait_for, write_notebook

from jupyter_mlp.store import Store
from jupyter_mlp.store import jobs as jobs_store
from jupyter_mlp.store import runs as run_store

BIN = Path(sys.executable).parent
JUPYTER = shutil.which("jupyter", path=str(BIN)) or "jupyter"
PAPERMILL = shutil.which("papermill", path=str(BIN)) or "papermill"
MARKER = "papermill-error-cell-tag"


def _nb(cells: list[Any], kernel: str = "python3", language: str | None = "python") -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel}
    if language:
        nb.metadata["kernelspec"]["language"] = language
    for i, cell in enumerate(cells):
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}, id=f"c{i}"))
    return nb


PARAMS = ("x = 1\nname = 'n'", ["parameters"])

# name -> (notebook, -p given to papermill and to `jupyter mlp run` as NAME VALUE, or none)
CASES: dict[str, tuple[Any, list[str]]] = {
    "exit0": (_nb([PARAMS, "print(x)", "import sys\nsys.exit(0)", "print('never')"], "python"), ["x", "2"]),
    "exit1": (_nb([PARAMS, "raise SystemExit(1)", "print('never')"]), ["x", "2"]),
    "interrupt": (_nb([PARAMS, "print('before')\nraise KeyboardInterrupt", "print('never')"], "Python3"), ["x", "2"]),
    "error": (_nb([PARAMS, "print('a')\n1/0", "print('never')"]), ["x", "2"]),
    "raises": (_nb([PARAMS, ("1/0", ["raises-exception"]), "print('after', x)", "x * 3"]), ["x", "2"]),
    "files": (None, ["x", "2"]),  # nbformat 3, reads a file next to it, prints ~1 MB
    "injected": (_nb([PARAMS, ("# Parameters\nx = 7\n", ["injected-parameters"]), "print(x, name)"]), []),
}  # fmt: skip


# reruns of these (each costs a kernel): the kernel names kept, raises-exception, nbformat 3 and
# the notebook's folder, the injected cell regenerated from the parent's values
RERUN = ("exit0", "interrupt", "raises", "files", "injected")


def _v3_notebook() -> dict:
    def cell(source: str, tags: list[str] | None = None) -> dict:
        return {"cell_type": "code", "collapsed": False, "input": source, "language": "python",
                "metadata": {"tags": tags or []}, "outputs": [], "prompt_number": None}  # fmt: skip

    return {
        "nbformat": 3, "nbformat_minor": 0,
        "metadata": {"name": "", "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "worksheets": [{"cells": [
            cell("x = 1", ["parameters"]),
            cell("with open('data.txt') as f:\n    text = f.read()\nprint(text.strip(), x)"),
            cell("print('y' * 1_000_000)"),
            cell("{'len': len(text), 'x': x}"),
        ], "metadata": {}}],
    }  # fmt: skip


def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 180):
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


# --- normalising an executed notebook ------------------------------------------------------------


def _outputs(outputs: list[dict]) -> list[dict]:
    out: list[dict] = []
    for o in outputs:
        o = dict(o)
        kind = o["output_type"]
        if (
            kind == "stream"
            and out
            and out[-1]["output_type"] == "stream"
            and out[-1]["name"] == o["name"]
        ):
            out[-1]["text"] += "".join(o["text"])  # fmt: skip
            continue
        if kind == "stream":
            o["text"] = "".join(o["text"])
        if kind == "error":  # tracebacks name temp files of the kernel: compare what was raised
            o = {"output_type": "error", "ename": o["ename"], "evalue": o["evalue"]}
        o.pop("metadata", None) if not o.get("metadata") else None
        out.append(o)
    return out


def normal(nb: dict) -> dict:
    """What must be equal: cells (kind, source, tags, execution count, outputs, papermill's
    status and exception) and the notebook's papermill metadata without times and paths."""
    cells = []
    for c in nb["cells"]:
        meta = c.get("metadata") or {}
        pm = meta.get("papermill") or {}
        source = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        cells.append({
            "type": c["cell_type"], "source": source, "tags": meta.get("tags", []),
            "count": c.get("execution_count"), "outputs": _outputs(c.get("outputs", [])),
            "pm": {k: pm.get(k) for k in ("status", "exception")},
            "hidden": (meta.get("jupyter") or {}).get("source_hidden"),
        })  # fmt: skip
    pm = dict(nb["metadata"].get("papermill") or {})
    for key in ("start_time", "end_time", "duration", "input_path", "output_path"):
        pm.pop(key, None)
    return {
        "nbformat": nb["nbformat"],
        "kernelspec": nb["metadata"].get("kernelspec"),
        "language": (nb["metadata"].get("language_info") or {}).get("name"),
        "papermill": pm,
        "cells": cells,
    }


def _assignments(source: str) -> dict[str, Any]:
    import ast

    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def _same_injection(ours: dict, theirs: dict, defaults: dict[str, Any]) -> None:
    """A rerun injects every parameter with its parent's value, so its injected cell also names
    those the parent left at their defaults: equal to papermill's once those are left out."""
    for a, b in zip(ours["cells"], theirs["cells"], strict=False):
        if "injected-parameters" in a["tags"] and "injected-parameters" in b["tags"]:
            mine, papermill = _assignments(a["source"]), _assignments(b["source"])
            extra = {k: v for k, v in mine.items() if k not in papermill}
            assert extra == {k: defaults[k] for k in extra}, (mine, papermill)
            assert {k: mine[k] for k in papermill} == papermill
            a["source"] = b["source"]
    pm = ours["papermill"].get("parameters") or {}
    ours["papermill"]["parameters"] = {
        k: v for k, v in pm.items() if k in (theirs["papermill"].get("parameters") or {})
    }


def assert_same(ours: dict, theirs: dict, what: str, rerun: bool = False) -> None:
    a, b = normal(ours), normal(theirs)
    if rerun:
        params_cell = next(c for c in b["cells"] if "parameters" in c["tags"])
        _same_injection(a, b, _assignments(params_cell["source"]))
    assert len(a["cells"]) == len(b["cells"]), (what, [c["source"][:30] for c in a["cells"]])
    for i, (x, y) in enumerate(zip(a["cells"], b["cells"], strict=True)):
        assert x == y, f"{what}: cell {i} differs:\nours   {str(x)[:600]}\npapermill {str(y)[:600]}"
    assert {k: v for k, v in a.items() if k != "cells"} == {
        k: v for k, v in b.items() if k != "cells"
    }, what


# --- the parity cases -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    home = root / "mlp-home"
    env = {**os.environ, "MLP_HOME": str(home), "MLP_LOCAL_CONCURRENCY": "3"}
    folder = root / "notebooks"
    folder.mkdir()
    (folder / "data.txt").write_text("from the notebook's folder\n")
    elsewhere = root / "elsewhere"  # `jupyter mlp run` is typed from another folder
    elsewhere.mkdir()
    for name, (nb, _) in CASES.items():
        path = folder / f"{name}.ipynb"
        if nb is None:
            path.write_text(json.dumps(_v3_notebook()))
        else:
            nbformat.write(nb, path)

    def papermill(name: str) -> dict:
        params = CASES[name][1]
        pm_out = root / f"pm-{name}.ipynb"
        pm_args = [a for i in range(0, len(params), 2) for a in ("-p", *params[i : i + 2])]
        # papermill runs in its process's folder: give it the notebook's, as our jobs default to
        for _ in range(3):
            pm = run(
                PAPERMILL, "--no-progress-bar", str(folder / f"{name}.ipynb"), str(pm_out),
                *pm_args, cwd=folder, env=env,
            )  # fmt: skip
            # jupyter_client's port race: a kernel started beside others (four papermills, our
            # warm kernels) may find a port it picked taken and die before it answers. That is
            # papermill's own start failing, not the notebook's outcome: ask it again.
            if "Kernel died before replying to kernel_info" not in pm.stderr:
                break
        return {"pm": pm, "pm_out": pm_out}

    def ours(name: str) -> dict:
        params = CASES[name][1]
        mlp_args = [
            a for i in range(0, len(params), 2) for a in ("-p", f"{params[i]}={params[i + 1]}")
        ]
        done = run(JUPYTER, "mlp", "run", str(folder / f"{name}.ipynb"), *mlp_args, cwd=elsewhere, env=env)  # fmt: skip
        found = {"ours": done, "run_id": done.stderr.split("run ", 1)[1].split(":", 1)[0]}
        if name in RERUN:
            again = run(JUPYTER, "mlp", "rerun", found["run_id"], cwd=elsewhere, env=env)
            found.update(again=again, rerun_id=again.stderr.split("run ", 1)[1].split(":", 1)[0])
        return found

    # As with a server on this machine: its job service starts the jobs the CLI submits, forked
    # from its warm launcher (papermill imported once), which keeps this suite's CPU time down.
    from jupyter_mlp.execution.service import JobService

    store = Store(home)
    service = JobService(store, concurrency=4, warm=True, poll_interval=0.05)
    service.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            theirs = {name: pool.submit(papermill, name) for name in CASES}
            mine = {name: pool.submit(ours, name) for name in CASES}
            results = {name: {**theirs[name].result(), **mine[name].result()} for name in CASES}
    finally:
        service.stop()
    yield store, results
    store.close()


def _executed(store: Store, run_id: str) -> dict:
    run = run_store.get_run(store.connect(), run_id)
    assert run["output_notebook"], f"run {run_id} kept no executed notebook"
    return json.loads(store.blobs.read_bytes(run["output_notebook"]))


@pytest.mark.parametrize("case", list(CASES))
def test_run_and_rerun_execute_as_papermill_does(parity, case):
    store, results = parity
    r = results[case]
    assert r["pm_out"].exists(), r["pm"].stderr[-2000:]
    theirs = json.loads(r["pm_out"].read_text())
    for key, what in (("run_id", "run"), ("rerun_id", "rerun"))[: 2 if case in RERUN else 1]:
        proc = r["ours" if what == "run" else "again"]
        status = run_store.get_run(store.connect(), r[key])["status"]
        # the same exit code, and a run that is finished exactly when papermill exits 0
        assert proc.returncode == r["pm"].returncode, (
            what,
            proc.stderr[-1500:],
            r["pm"].stderr[-1500:],
        )
        assert (status == "finished") == (r["pm"].returncode == 0), (what, status)
        assert_same(_executed(store, r[key]), theirs, f"{case} {what}", rerun=what == "rerun")


def test_the_cases_say_what_papermill_says(parity):
    """The expectations behind the comparisons, so that a papermill upgrade that changes them
    is seen here (papermill 2.x)."""
    _, results = parity
    codes = {case: r["pm"].returncode for case, r in results.items()}
    assert codes == {"exit0": 0, "exit1": 1, "interrupt": 1, "error": 1, "raises": 1,
                     "files": 0, "injected": 0}  # fmt: skip
    raises = json.loads(results["raises"]["pm_out"].read_text())
    assert "after 2" in json.dumps(raises)  # the cells after a raises-exception cell ran
    injected = json.loads(results["injected"]["pm_out"].read_text())
    assert "7 n" in json.dumps(injected)  # papermill left the injected cell alone


def test_rerun_of_a_papermill_output_keeps_its_injected_values(parity):
    store, results = parity
    run = run_store.get_run(store.connect(), results["injected"]["rerun_id"])
    assert run["params"]["x"] == 7 and run["status"] == "finished"


# --- the engine `mlp` under the papermill command --------------------------------------------------


def test_papermill_engine_mlp_ends_runs_as_papermill_exits(tmp_path):
    """`papermill in out --engine mlp`, no %mlp_track inside: sys.exit(0) finished (exit 0), a
    notebook that interrupts itself failed (exit 1); parameters, snapshot and the executed
    notebook kept, so the run can be rerun."""
    home = tmp_path / "home"
    env = {**os.environ, "MLP_HOME": str(home)}
    nbformat.write(_nb([PARAMS, "import sys; sys.exit(0)", "print('never')"]), tmp_path / "e.ipynb")
    nbformat.write(_nb([PARAMS, "raise KeyboardInterrupt"]), tmp_path / "k.ipynb")

    def pm(name: str):
        return run(PAPERMILL, "--no-progress-bar", "--engine", "mlp", "-p", "x", "5",
                   str(tmp_path / f"{name}.ipynb"), str(tmp_path / f"out-{name}.ipynb"), env=env)  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        exit0, interrupt = pool.map(pm, ["e", "k"])
    assert (exit0.returncode, interrupt.returncode) == (0, 1), interrupt.stderr[-1500:]
    store = Store(home)
    by_name = {
        r["name"]: run_store.get_run(store.connect(), r["id"])
        for r in run_store.list_runs(store.connect())
    }
    assert by_name["e"]["status"] == "finished" and by_name["k"]["status"] == "failed"
    assert by_name["k"]["error"]["ename"] == "KeyboardInterrupt", (
        by_name["k"]["error"],
        interrupt.stderr[-3000:],
    )
    for r in by_name.values():
        assert r["snapshot"] and r["output_notebook"] and r["params"] == {"x": 5, "name": "n"}
        assert (
            store.blobs.read_bytes(r["snapshot"]) == (tmp_path / f"{r['name']}.ipynb").read_bytes()
        )
    cells = run_store.run_part(store.connect(), by_name["e"]["id"], "cells")
    assert [c["status"] for c in cells] == ["ok", "ok", "error"]  # injected, parameters, exit
    store.close()


def test_papermill_default_engine_with_mlp_track_inside(tmp_path):
    """papermill's own engine, `%mlp_track` in the notebook: the parameters cell's defaults are
    recorded, the notebook kept as the snapshot (a rerun is possible), sys.exit(0) ends
    `finished` and an error in a raises-exception cell `failed`, as papermill exits."""
    home = tmp_path / "home"
    env = {**os.environ, "MLP_HOME": str(home)}
    track = "%load_ext jupyter_mlp\n%mlp_track"
    nbformat.write(_nb([track, PARAMS, "import sys; sys.exit(0)"]), tmp_path / "d.ipynb")
    nbformat.write(_nb([track, PARAMS, ("1/0", ["raises-exception"]), "print('after')"]), tmp_path / "r.ipynb")  # fmt: skip

    def pm(name: str):
        return run(PAPERMILL, "--no-progress-bar", "-p", "x", "3", f"{name}.ipynb",
                   f"out-{name}.ipynb", cwd=tmp_path, env=env)  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        exit0, raises = pool.map(pm, ["d", "r"])
    assert (exit0.returncode, raises.returncode) == (0, 1)
    store = Store(home)
    by_name = {
        r["name"]: run_store.get_run(store.connect(), r["id"])
        for r in run_store.list_runs(store.connect())
    }
    d, r = by_name["d"], by_name["r"]
    assert d["status"] == "finished" and r["status"] == "failed"
    assert r["error"]["ename"] == "ZeroDivisionError"
    assert d["params"] == {
        "x": 3,
        "name": "n",
    }  # the default of `name` too, not only what was injected
    assert d["notebook"] == str(tmp_path / "d.ipynb")
    assert store.blobs.read_bytes(d["snapshot"]) == (tmp_path / "d.ipynb").read_bytes()
    from jupyter_mlp.execution.submit import prepare_rerun  # a rerun can be made (not run: costly)

    again = prepare_rerun(store.connect(), store.blobs, d["id"], {"name": "m"})
    assert again.params == {"x": 3, "name": "m"} and again.snapshot == d["snapshot"]
    store.close()


# --- input checks at submit time (no kernel) -------------------------------------------------------


def test_kernel_names_resolve_as_jupyter_client_does():
    from jupyter_mlp.execution.errors import JobError
    from jupyter_mlp.execution.submit import check_kernel

    assert check_kernel("python") == "python"  # KernelManager runs the native python3
    assert check_kernel("Python3") == "Python3"  # kernel spec names match whatever their case
    with pytest.raises(JobError, match="not installed"):
        check_kernel("no-such-kernel")


def test_python3_is_checked_without_listing_the_kernels():
    """A submit of a python3 notebook (most of them) does not import jupyter_client to list the
    kernels (~0.2 s of a CLI's start); the shortcut holds because jupyter_client adds the
    native python3 wherever ipykernel can be imported."""
    code = (
        "import sys\n"
        "from jupyter_mlp.execution.submit import check_kernel\n"
        "assert check_kernel('python3') == 'python3' and check_kernel('python') == 'python'\n"
        "assert 'jupyter_client' not in sys.modules, 'jupyter_client imported'\n"
        "from jupyter_client.kernelspec import KernelSpecManager\n"
        "assert 'python3' in KernelSpecManager().find_kernel_specs()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_relative_cwd_kernel_language_and_nbformat3_are_settled_before_queueing(
    store, tmp_path, monkeypatch
):
    from jupyter_mlp.execution.errors import JobError
    from jupyter_mlp.execution.submit import prepare_notebook, prepare_rerun

    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    nb = write_notebook(
        tmp_path / "n.ipynb", [{"id": "p", "source": "x = 1", "tags": ["parameters"]}]
    )
    req = prepare_notebook(store.blobs, nb, {"x": 2}, cwd="sub", kernel="Python3",
                           options={"papermill": {"execution_timeout": 5, "stdout_file": "o.txt"}})  # fmt: skip
    assert req.cwd == str(tmp_path / "sub")  # absolute now, whoever starts the job later
    assert req.options["papermill"] == {  # a relative file in --cwd, where papermill writes it
        "execution_timeout": 5,
        "stdout_file": str(tmp_path / "sub" / "o.txt"),
    }
    with pytest.raises(JobError, match="does not exist"):
        prepare_notebook(store.blobs, nb, {}, cwd="missing")
    with pytest.raises(JobError, match="execution-timeout must be a whole number"):
        prepare_notebook(store.blobs, nb, {}, options={"papermill": {"execution_timeout": 0}})

    # a rerun keeps its parent's working directory, kernel and papermill options
    with store.write() as conn:
        parent = jobs_store.enqueue(conn, req)
    monkeypatch.chdir(tmp_path / "sub")
    rerun = prepare_rerun(store.connect(), store.blobs, parent, {},
                          options={"papermill": {"report_mode": True}})  # fmt: skip
    assert (rerun.cwd, rerun.kernel) == (str(tmp_path / "sub"), "Python3")
    assert rerun.options["papermill"] == {**req.options["papermill"], "report_mode": True}
    other = prepare_rerun(store.connect(), store.blobs, parent, {}, cwd="..", kernel="python")
    assert (other.cwd, other.kernel) == (str(tmp_path), "python")
    (tmp_path / "gone").mkdir()
    with store.write() as conn:
        gone = jobs_store.enqueue(
            conn, prepare_notebook(store.blobs, nb, {}, cwd=str(tmp_path / "gone"))
        )
    (tmp_path / "gone").rmdir()  # an inherited folder gone since: the job notes it and runs on
    assert prepare_rerun(store.connect(), store.blobs, gone, {}).cwd == str(tmp_path / "gone")

    # no language in the metadata: papermill could not inject, so say so now; --language helps
    bare = json.loads(nb.read_text())
    bare["metadata"] = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    (tmp_path / "bare.ipynb").write_text(json.dumps(bare))
    with pytest.raises(JobError, match="--language"):
        prepare_notebook(store.blobs, tmp_path / "bare.ipynb", {"x": 2})
    ok = prepare_notebook(store.blobs, tmp_path / "bare.ipynb", {"x": 2},
                          options={"papermill": {"language": "python"}})  # fmt: skip
    assert ok.params == {"x": 2}
    with pytest.raises(JobError, match="cannot inject"):
        prepare_notebook(store.blobs, tmp_path / "bare.ipynb", {"x": 2},
                         options={"papermill": {"language": "cobol"}})  # fmt: skip

    # nbformat 3: read as papermill reads it (upgraded), the snapshot keeps the file's bytes
    (tmp_path / "v3.ipynb").write_text(json.dumps(_v3_notebook()))
    v3 = prepare_notebook(store.blobs, tmp_path / "v3.ipynb", {"x": 4})
    assert v3.params == {"x": 4} and ("x", "1", "int", "parameters") not in v3.param_rows
    assert store.blobs.read_bytes(v3.snapshot) == (tmp_path / "v3.ipynb").read_bytes()


# --- papermill's options on a job; the partial notebook; export; --name ----------------------------


def _wait_final(store: Store, run_id: str, timeout: float = 90) -> dict:
    wait_for(
        lambda: jobs_store.get_job(store.connect(), run_id).final,
        timeout=timeout,
        what=f"job {run_id}",
    )
    return run_store.get_run(store.connect(), run_id)


def test_papermill_options_partial_notebook_export_and_name(tmp_path):
    """--report-mode, --log-output, --stdout-file, --autosave-cell-every on `jupyter mlp run`; the
    partial output notebook readable (runs export) while a long cell runs; --name kept although
    %mlp_track inside names the run; metadata.papermill paths: the run's notebook, the export
    target. Then --execution-timeout fails a slow cell and --prepare-only executes nothing."""
    home = tmp_path / "home"
    env = {**os.environ, "MLP_HOME": str(home)}
    nb = write_notebook(tmp_path / "opts.ipynb", [
        {"id": "t", "source": "%load_ext jupyter_mlp\n%mlp_track inside-name"},
        {"id": "p", "source": "x = 1\nwait = 0.0", "tags": ["parameters"]},
        {"id": "a", "source": "import time\nprint('started', x, flush=True)\ntime.sleep(1.2)\nprint('mid', flush=True)\ntime.sleep(wait)\nprint('slept')"},
    ])  # fmt: skip
    log = tmp_path / "kernel-out.txt"
    done = run(JUPYTER, "mlp", "run", str(nb), "-p", "wait=4", "--name", "given-name", "--detach",
               "--report-mode", "--log-output", "--stdout-file", str(log), "--autosave-cell-every", "1",
               env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    store = Store(home)
    partial = tmp_path / "partial.ipynb"

    from jupyter_mlp.store.partial import executed_notebook

    def printed(data: bytes) -> str:
        return json.dumps([c.get("outputs") for c in json.loads(data)["cells"]])

    def started() -> bool:  # papermill autosaves on an output 1 s or more after its last save
        found = executed_notebook(store, run_id)
        text = printed(found[0]) if found else ""
        return "started 1" in text and "mid" in text and "slept" not in text

    wait_for(started, timeout=60, interval=0.1, what="the partial notebook")
    got = run(JUPYTER, "mlp", "runs", "export", run_id, "-o", str(partial), env=env)
    assert got.returncode == 0 and "this is its notebook so far" in got.stderr, got.stderr
    assert "mid" in printed(partial.read_bytes())
    final = _wait_final(store, run_id)
    assert final["status"] == "finished" and final["name"] == "given-name"
    out = tmp_path / "exported.ipynb"
    got = run(JUPYTER, "mlp", "runs", "export", run_id[:6], "--output", str(out), env=env)
    assert got.returncode == 0, got.stderr
    executed = json.loads(out.read_text())
    assert executed["metadata"]["papermill"]["input_path"] == str(nb)
    assert executed["metadata"]["papermill"]["output_path"] == str(out)
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert all(c["metadata"]["jupyter"]["source_hidden"] for c in code)  # --report-mode
    assert "slept" in json.dumps(executed)
    assert "started" in log.read_text()  # --stdout-file
    assert "Executing Cell 3" in (home / "jobs" / f"{run_id}.log").read_text()  # --log-output
    assert not (home / "partial" / f"{run_id}.ipynb").exists()  # now a blob of the run

    # --log-output while the command waits: the notebook's output on its stderr, as papermill's
    # (and papermill's --request-save-on-cell-execute, its default and always so here, taken)
    shown = run(JUPYTER, "mlp", "run", str(nb), "-p", "x=7", "--log-output",
                "--request-save-on-cell-execute", env=env)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "Executing Cell 3" in shown.stderr and "started 7" in shown.stderr, shown.stderr
    # a relative --stdout-file with --cwd lands in that folder, as papermill writes it
    (tmp_path / "wd").mkdir()
    done = run(JUPYTER, "mlp", "run", str(nb), "-p", "x=8", "--cwd", "wd", "--stdout-file",
               "rel.txt", cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "started 8" in (tmp_path / "wd" / "rel.txt").read_text()

    slow = run(JUPYTER, "mlp", "run", str(nb), "-p", "wait=30", "--execution-timeout", "1", env=env)
    assert slow.returncode == 1 and "Timeout" in slow.stderr, slow.stderr[-1500:]
    prep = run(JUPYTER, "mlp", "run", str(nb), "-p", "x=9", "--prepare-only", "--detach", env=env)
    prepared = _wait_final(store, prep.stdout.strip())
    assert prepared["status"] == "finished" and prepared["cells"] == []
    shown = run(JUPYTER, "mlp", "runs", "show", prepared["id"], env=env).stdout
    assert "note      --prepare-only: the parameters were injected, no cell was executed" in shown
    prepared_nb = json.loads(store.blobs.read_bytes(prepared["output_notebook"]))
    assert "x = 9" in json.dumps(prepared_nb)  # the injected cell
    assert all(not c.get("outputs") for c in prepared_nb["cells"])  # nothing executed
    store.close()


def test_cancel_records_the_cancel_not_a_dead_kernel(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "MLP_HOME": str(home)}
    nb = write_notebook(
        tmp_path / "long.ipynb", [{"id": "s", "source": "import time\ntime.sleep(60)"}]
    )
    done = run(JUPYTER, "mlp", "run", str(nb), "--detach", env=env)
    run_id = done.stdout.strip()
    store = Store(home)

    def sleeping() -> bool:
        cells = run_store.run_part(store.connect(), run_id, "cells")
        return bool(cells) and cells[0]["status"] == "running"

    wait_for(sleeping, timeout=60, interval=0.1, what="the running cell")
    time.sleep(0.3)
    cancelled = run(JUPYTER, "mlp", "cancel", run_id, env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    final = _wait_final(store, run_id)
    assert final["status"] == "cancelled"
    (cell,) = run_store.run_part(store.connect(), run_id, "cells")
    assert cell["status"] == "interrupted"
    assert cell["error"]["ename"] == "Cancelled", cell["error"]
    store.close()


# --- pipeline stages ------------------------------------------------------------------------------


def test_stage_settings_and_the_dollar_escape(store, tmp_path):
    """A stage sets its kernel, working directory (relative to the pipeline file), a timeout and
    allows a new parameter name; `$${` in a string value reaches the notebook as `${`."""
    from jupyter_mlp.execution.service import JobService
    from jupyter_mlp.pipelines import spec as S
    from jupyter_mlp.pipelines.dag import Driver, submit
    from jupyter_mlp.pipelines.validate import validate
    from jupyter_mlp.store import pipelines as P

    (tmp_path / "work").mkdir()
    write_notebook(tmp_path / "stage.ipynb", [
        {"id": "t", "source": "%load_ext jupyter_mlp\n%mlp_track"},
        {"id": "p", "source": "path = ''", "tags": ["parameters"]},
        {"id": "w", "source": "import os, jupyter_mlp as mlp\nmlp.output('path', path)\nmlp.output('cwd', os.getcwd())\nmlp.output('extra', extra)"},
    ])  # fmt: skip
    stage = {"template": {"notebook": "stage.ipynb"}, "kernel": "Python3", "cwd": "work",
             "allow_new_params": True, "papermill": {"execution_timeout": 60},
             "parameters": {"path": "$${HOME}/data", "extra": 5}}  # fmt: skip
    spec = {"format": S.FORMAT, "version": 1, "name": "t", "parameters": {}, "stages": {"a": stage}}
    problems = validate(spec, store.connect(), store.blobs, tmp_path)
    assert not [p for p in problems if p.level == "error"], problems
    bad = json.loads(json.dumps(spec))
    bad["stages"]["a"].update(
        parameters={"path": "${HOME}/data"}, papermill={"execution_timeout": "soon"}, kernel=""
    )
    messages = " | ".join(p.message for p in validate(bad, store.connect(), store.blobs, tmp_path))
    assert (
        "write $${ for a literal ${" in messages
        and "execution-timeout" in messages
        and "kernel" in messages
    )

    service = JobService(store, concurrency=2, poll_interval=0.05)
    service.start()
    try:
        pid = submit(store, spec, base=tmp_path)
        Driver(store, pid, service=service).run()
    finally:
        service.stop()
    result = P.get(store.connect(), pid)
    assert result["stages"]["a"]["status"] == "succeeded", result
    run = run_store.get_run(store.connect(), result["stages"]["a"]["run_id"])
    outs = {o["name"]: o["value"] for o in run["outputs"]}
    assert outs["path"] == "${HOME}/data" and outs["extra"] == 5
    assert outs["cwd"] == str(tmp_path / "work") and run["kernel"] == "Python3"
    job = jobs_store.get_job(store.connect(), run["id"])
    assert job.options["papermill"] == {"execution_timeout": 60}


def test_a_python_notebook_is_checked_without_importing_papermill():
    """papermill injects parameters into any Python notebook, whatever its kernel's name (its
    translator for the language): submitting one (the CLI that drives a pipeline does, for each
    stage, beside the kernels its first stages wait for) need not import papermill (~0.3 s of
    CPU). Another language is still checked by papermill itself."""
    import subprocess
    import sys

    from papermill.translators import papermill_translators  # type: ignore[import-untyped]

    assert papermill_translators.find_translator("no-such-kernel", "python")  # the rule relied on
    code = (
        "import sys\n"
        "from jupyter_mlp.execution.errors import JobError\n"
        "from jupyter_mlp.execution.submit import check_language\n"
        "check_language({'metadata': {'kernelspec': {'language': 'python'}}}, 'k', {}, {'x': 1})\n"
        "print('papermill' in sys.modules)\n"
        "try:\n"
        "    check_language({'metadata': {'language_info': {'name': 'cobol'}}}, 'k', {}, {'x': 1})\n"
        "except JobError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert lines[0] == "False", out.stderr
    assert lines[1].startswith("cannot inject parameters into a 'cobol' notebook"), out.stdout
