"""The output notebook of a job while it runs, and a run's executed notebook for export.

A local job's papermill writes its output notebook to `<home>/partial/<run_id>.ipynb` (at every
cell start and end, and every `--autosave-cell-every` seconds inside a long cell, as papermill
saves its output path); when the job ends, that file becomes the run's `output_notebook` blob and
is removed. `executed_notebook` reads whichever exists: the blob, else the partial file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from . import runs as run_store

FOLDER = "partial"


def partial_path(home: str | Path, run_id: str) -> Path:
    if not run_id.isalnum():  # run ids are hex; never a path out of the folder
        raise ValueError(f"bad run id {run_id!r}")
    return Path(home) / FOLDER / f"{run_id}.ipynb"


def read_partial(home: str | Path, run_id: str, tries: int = 5) -> bytes | None:
    """The partial output notebook, or None. papermill rewrites the file in place, so a read that
    meets a half-written file waits and reads again."""
    path = partial_path(home, run_id)
    for _ in range(tries):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            json.loads(data)
            return data
        except ValueError:
            time.sleep(0.05)
    return None


def executed_notebook(store: Any, run_id: str) -> tuple[bytes, bool] | None:
    """(bytes, partial?) of a run's executed notebook: the stored blob, else the partial output
    of a job still running; None when there is neither."""
    for _ in range(2):  # the job may store its blob and remove the file between the two reads
        digest = run_store.run_part(store.connect(), run_id, "notebook_output")
        if isinstance(digest, str) and digest:
            return store.blobs.read_bytes(digest), False
        data = read_partial(store.home, run_id)
        if data is not None:
            return data, True
    return None
