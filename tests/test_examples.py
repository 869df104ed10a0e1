"""The example notebook, executed by real papermill as a user (or a CI job) would."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill

from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.records import metric_series

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_digits_example_is_tracked_under_papermill(store, tmp_path):
    notebook = tmp_path / "train_digits.ipynb"
    shutil.copy(EXAMPLES / "train_digits.ipynb", notebook)
    before = notebook.read_bytes()
    papermill.execute_notebook(
        str(notebook), str(tmp_path / "out.ipynb"), parameters={"lr": 0.3, "epochs": 5},
        cwd=str(tmp_path), kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    assert notebook.read_bytes() == before  # the user's notebook is never written
    conn = store.connect()
    (run,) = run_store.list_runs(store.connect(), project="digits")
    run = run_store.get_run(conn, run["id"])
    assert run["status"] == "finished"
    assert run["params"]["lr"] == 0.3 and run["params"]["epochs"] == 5
    assert [s for s, _, _ in metric_series(conn, run["id"], "val_acc")] == list(range(5))
    outputs = {o["name"]: o for o in run["outputs"]}
    assert 0.5 < outputs["val_acc"]["value"] <= 1.0
    assert outputs["model"]["kind"] == "artifact"
    assert store.blobs.read_bytes(outputs["model"]["blob"]) == (tmp_path / "model.pkl").read_bytes()
    # the status display was updated in place to the run's final state in the output notebook
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    (status,) = executed.cells[1].outputs
    assert status.output_type == "display_data"
    assert "[finished]" in status.data["text/plain"] and "val_acc=" in status.data["text/plain"]


def test_each_example_ends_its_run_while_the_kernel_lives_on(store, start_kernel, tmp_path):
    """A user runs the examples cell by cell in JupyterLab and pins their runs as stage
    templates: each must end `finished` at its last cell, not stay `running` until the kernel
    shuts down (an idle kernel read as a 14-minute job)."""
    from conftest import wait_for

    seen: set[str] = set()
    for name in ("prepare_digits", "train_digits", "evaluate_digits"):
        kernel = start_kernel(cwd=str(tmp_path))
        try:
            for cell in nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4).cells:
                if cell.cell_type == "code":
                    result = kernel.run(cell.source, cell_id=cell.id, timeout=120)
                    assert result.status == "ok", (name, result.ename, result.evalue)
            run = wait_for(
                lambda: next(
                    (r for r in run_store.list_runs(store.connect(), project="digits")
                     if r["status"] == "finished" and r["id"] not in seen), None),
                what=f"the {name} run to finish",
            )  # fmt: skip
            seen.add(run["id"])
        finally:
            kernel.shutdown()
    assert len(seen) == 3
