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
    (run,) = run_store.list_runs(conn, project="digits")
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
