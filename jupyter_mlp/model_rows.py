"""The rows of model.py: a job and its request, a run, a cell, a GPU sample (dataclasses,
apart from model.py so that a tracker in a script never imports `dataclasses`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .model import DEFAULT_PROJECT, FINAL_JOB_STATES, FINAL_STATUSES, INTERACTIVE, JOB


@dataclass
class Job:
    """The `jobs` row beside a job's run: what to run, where, and how it went."""

    run_id: str
    executor: str
    state: str
    kernel: str
    submitted_at: float
    params: dict[str, Any] = field(default_factory=dict)
    notebook: str | None = None
    snapshot: str | None = None
    cwd: str | None = None
    gpus_requested: int = 0
    gpus: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    pgid: int | None = None
    proc_start: str | None = None
    kernel_pid: int | None = None
    kernel_pgid: int | None = None
    host: str | None = None
    cells_total: int | None = None
    note: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: dict[str, Any] | None = None
    dispatcher: str | None = None  # the user whose services start it (team mode)

    @property
    def final(self) -> bool:
        return self.state in FINAL_JOB_STATES

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class JobRequest:
    """A validated job, ready to queue (execution/submit.py builds it, store/jobs.py queues it)."""

    executor: str
    kernel: str
    snapshot: str
    notebook: str | None
    params: dict[str, Any]  # what papermill injects
    param_rows: list[tuple[str, str, str, str]]  # the run's params: (key, JSON, type, source)
    project: str
    name: str
    parent_id: str | None = None
    kind: str = JOB
    pipeline_run_id: str | None = None
    stage: str | None = None
    gpus: int = 0
    cwd: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    owner: str | None = None  # who submitted it (the Jupyter user; None: this process's user)


@dataclass
class Run:
    """One run as the store keeps it (the `runs` row; JSON columns decoded)."""

    id: str
    status: str
    created_at: float
    project: str = DEFAULT_PROJECT
    name: str = ""
    kind: str = INTERACTIVE
    parent_id: str | None = None
    pipeline_run_id: str | None = None
    stage: str | None = None
    notebook: str | None = None
    snapshot: str | None = None
    end_snapshot: str | None = None
    output_notebook: str | None = None
    kernel: str | None = None
    host: str | None = None
    user: str | None = None
    pid: int | None = None
    git: dict[str, Any] | None = None
    env: dict[str, Any] | None = None
    gpu: dict[str, Any] | None = None
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    pinned: bool = False
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    error: dict[str, Any] | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        """From a row or a run dict; keys that are not run fields are left out."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Cell:
    """One executed cell of a run (the `cells` row): seq is the execution order in the run."""

    seq: int
    started_at: float
    duration: float
    status: str  # CELL_OK | CELL_ERROR | CELL_INTERRUPTED, or RUNNING while it runs
    cell_id: str | None = None
    execution_count: int | None = None
    source: str | None = None
    error: dict[str, Any] | None = None  # {ename, evalue, traceback}
    gpu: dict[str, Any] | None = None  # per-GPU figures of this cell

    def as_row(self) -> tuple[Any, ...]:
        """The batch shape (store.records.apply_batch `cells`)."""
        return (self.seq, self.cell_id, self.execution_count, self.source, self.started_at,
                self.duration, self.status, self.error, self.gpu)  # fmt: skip


@dataclass
class GpuSample:
    """One GPU reading (or a compacted span of readings) of a run (the `gpu_samples` row)."""

    gpu: int
    time: float
    span: float = 0.0
    util: float | None = None
    util_min: float | None = None
    util_max: float | None = None
    mem_used: float | None = None
    mem_used_max: float | None = None
    proc_mem: float | None = None
    proc_mem_max: float | None = None
    power: float | None = None
    power_max: float | None = None
    temp: float | None = None
    sm_clock: float | None = None
    energy: float | None = None
