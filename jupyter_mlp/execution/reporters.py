"""What a job process writes, and where: `StoreReporter` writes the store on this machine; the
HTTP reporter of a remote worker (remote.py) has the same methods against the server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..model import Job
from ..store.jobs import (
    JobNotFound,
    get_job,
    set_output_notebook,
    transition,
    update_job,
)
from ..store.records import apply_batch


class StoreReporter:
    """What a job process writes, straight into the store on this machine."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.home: Path = store.home

    @classmethod
    def from_env(cls) -> StoreReporter:
        from ..store import Store

        return cls(Store())

    def write(self, run_id: str, batch: dict[str, Any]) -> None:
        with self.store.write() as conn:
            apply_batch(conn, run_id, batch)

    def transition(self, run_id: str, to: str, **kw: Any) -> bool:
        with self.store.write() as conn:
            return transition(conn, run_id, to, **kw) is not None

    def update(self, run_id: str, **values: Any) -> None:
        with self.store.write() as conn:
            update_job(conn, run_id, **values)

    def job(self, run_id: str) -> Job:
        job = get_job(self.store.connect(), run_id)
        if job is None:
            raise JobNotFound(run_id)
        return job

    def state(self, run_id: str) -> str:
        return self.job(run_id).state

    def snapshot(self, digest: str) -> bytes:
        return self.store.blobs.read_bytes(digest)

    def put_file(self, path: str | os.PathLike) -> tuple[str, int]:
        return self.store.blobs.put_file(path)

    def partial_path(self, run_id: str) -> Path:
        """Where the job's papermill saves its output notebook while it runs."""
        from ..store.partial import partial_path

        return partial_path(self.home, run_id)

    def set_output_notebook(self, run_id: str, digest: str) -> None:
        with self.store.write() as conn:
            set_output_notebook(conn, run_id, digest)
