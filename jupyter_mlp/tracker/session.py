"""One tracked run in this process: cell hooks on the hot path, buffers, and a background writer.

The hot path (a cell's pre/post hooks, `log_metric`) only appends to deques; the writer thread
drains them into the sink every FLUSH_S seconds, adds heartbeats, and refreshes the status view.
Nothing here may raise into the user's cell: a broken store is one warning, and the records wait
in bounded buffers until it can be written again.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

from .. import model, records
from ..records import INT64_MAX, INT64_MIN
from . import environment

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any

    from .gpu import GpuSampler

FLUSH_S = 0.05
LIVE_VIEW_S = 1.0  # while metrics arrive, the status view is repainted at most this often
RETRY_S = 2.0
GPU_COMPACT_S = 600.0  # how often the store folds GPU samples older than an hour into buckets
UNSENT_LIMIT = 2_000_000  # metric points kept while the store cannot be written
REST_AFTER_S = 0.2  # the start-up capture's git read and spool replay wait this long for finish()
_perf = time.perf_counter
_now = time.time


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class RunSession:
    def __init__(
        self,
        name: str | None = None,
        project: str | None = None,
        tags: list[str] | None = None,
        param_names: list[str] | None = None,
        shell: Any = None,
        home: str | os.PathLike | None = None,
        gpu: bool = True,
        gpu_interval: float = 0.5,
        sink: Any = None,
    ) -> None:
        token = os.environ.get("MLP_TRACKING_TOKEN", "")
        self.job_run_id = os.environ.get("MLP_RUN_ID") or (
            token.split(".", 1)[0] if token else None
        )
        self.run_id = self.job_run_id or model.new_run_id()
        # One owner per run: a job's run belongs to the job (its engine writes status, snapshot,
        # cells, heartbeat); attached to one, this session only adds metrics, params, outputs,
        # artifacts and GPU figures.
        self.in_job = bool(os.environ.get("MLP_RUN_ID"))  # set by the papermill engine `mlp`
        self.name = name
        self.project = project
        self.tags = list(tags or [])
        self.param_names = list(param_names or [])
        self.shell = shell
        self.home = home
        self.want_gpu = gpu
        self.gpu_interval = gpu_interval
        self.started_at = _now()
        self.status = model.RUNNING
        # Started by the `papermill` command (its default engine): the run ends as papermill
        # exits (an error output anywhere fails it, sys.exit(0) does not), and the parameters
        # cell is known by its source (papermill's client sends no cell ids or tags).
        self.papermill = (
            None
            if self.in_job or os.environ.get("JPY_SESSION_NAME")
            else environment.papermill_parent()
        )
        self.notebook, self.notebook_note = environment.notebook_path(self.papermill)
        self._papermill_error: dict[str, Any] | None = None
        self._param_sources: set[str] = set()
        self.latest_metrics: dict[str, float] = {}
        self.cell_count = 0
        self.failed_cells = 0
        self.last_cell_status: str | None = None
        # What the status view says the run ends as, where papermill stops at a failed cell and
        # keeps the notebook's outputs as they are (a job, the `papermill` command); None: status
        self._ending: str | None = None

        self._sink = sink
        self._cells: deque = deque()
        self._cell_gpu: deque = deque()  # in a job: (seq, start, duration) of ended cells
        self._metrics: deque = deque()
        self._params: deque = deque()
        self._run_updates: dict[str, Any] = {}
        self._steps: dict[str, int] = {}
        self._cell: tuple | None = None
        self._param_cells: set[str] = set()  # cell ids of cells tagged `parameters`
        self._unsent: dict[str, Any] = {}
        self._io_lock = threading.RLock()
        self._stop = threading.Event()  # set by finish(): the writer lets go of this run
        # The writer's refresh and finish()'s close paint the status view one at a time, so that
        # a refresh built before the end never lands after the final state ("[running]" left in
        # an executed notebook).
        self._view_lock = threading.Lock()
        self._start_thread: threading.Thread | None = None
        self._captured = False  # the start-up capture's fields are handed over (under _io_lock)
        self._essentials = threading.Event()  # the capture's environment and GPU are handed over
        self._rest = threading.Event()  # the rest of the capture may go (see _capture_start)
        self._warned = False
        self._refusals: dict[tuple, int] = {}  # (call, field, kind of problem) -> calls refused
        self._said: set[str] = set()  # the end-of-run lines printed already
        self._failing_since: float | None = None
        self._dirty = False
        self._live = False  # metrics arrived since the view was painted
        self._painted = 0.0  # perf_counter of the last paint
        self._finished = False
        self._heartbeat_s = _env_float("MLP_HEARTBEAT_S", 5.0)
        self._last_beat = 0.0
        self._last_compact = _now()
        self.gpu: GpuSampler | None = None  # when a GPU is visible
        self.gpu_info: dict[str, Any] | None = None
        self.view: Any = None
        self._start_copy: bytes | None = None  # the notebook as read at start(), to be stored

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, view: Any = None) -> RunSession:
        if self._sink is None:
            from .sinks import make_sink

            try:
                self._sink = make_sink(self.home, self.run_id)
            except Exception as exc:  # a broken MLP_TRACKING_URI setup: record locally instead
                from .sinks import StoreSink

                self._warn(
                    f"remote tracking is misconfigured ({exc}); recording to the local store"
                )
                self._sink = StoreSink(self.home, self.run_id)
        fields: dict[str, Any] = {
            "status": model.RUNNING,
            "started_at": self.started_at,
            "heartbeat_at": self.started_at,
            "notebook": self.notebook,
            "kernel": os.environ.get("MLP_KERNEL_NAME") or ("python3" if self.shell else None),
            **environment.identity(),
        }
        if not self.job_run_id:
            fields.update(
                kind=model.INTERACTIVE,
                created_at=self.started_at,
                project=self.project or model.DEFAULT_PROJECT,
                name=self.name or self._default_name(),
                tags=self.tags,
            )
        else:
            fields.update({k: v for k, v in (("name", self.name), ("project", self.project)) if v})
            if self.tags:
                fields["tags"] = self.tags
        if self.in_job:
            fields = {}
        else:
            self._send({"run": fields})  # synchronous: a broken store warns in this very cell
        if self.papermill is not None:
            self._safe(self._read_parameters_sources)
        elif self.notebook and not self.in_job:
            # JupyterLab's "Run All" runs the parameters cell right after this one: which cells
            # are tagged `parameters` must be known by then (the kernel never sees tags), so the
            # notebook is read and scanned now (about a millisecond); the start-up thread stores
            # what was read as the run's snapshot.
            self._start_copy = self._safe_call(self._read_notebook, True)
        if self.shell is not None:
            self.shell.events.register("pre_run_cell", self._pre_run_cell)
            self.shell.events.register("post_run_cell", self._post_run_cell)
        self.view = view
        if view is not None:  # before the writer starts its start-up work: no GIL contention
            self._safe(view.show, self)
        _WRITER.serve(self)
        if not self._safe_call(self._capture_now):
            # The start-up capture (packages, git, NVML: up to seconds) runs beside the writer,
            # so that a cell that ended is written within FLUSH_S whatever the capture is doing,
            # and neither the first log_metric nor finish() waits for it.
            self._start_thread = threading.Thread(
                target=self._start_work, name="jupyter-mlp-start", daemon=True
            )
            self._start_thread.start()
        return self

    def finish(self, status: str | None = None, error: dict | None = None) -> str:
        """End the run: final flush, end snapshot, status. Idempotent."""
        if self._finished:
            return self.status
        self._finished = True
        if self.shell is not None:
            for event, hook in (
                ("pre_run_cell", self._pre_run_cell),
                ("post_run_cell", self._post_run_cell),
            ):
                try:
                    self.shell.events.unregister(event, hook)
                except ValueError:
                    pass
        # The environment and the GPU probe belong to the run when finish() returns (a process
        # killed right after keeps them): wait for that part of the start-up capture, which is
        # memoised per process; the git state and the snapshot may come after.
        if self._start_thread is not None and self._start_thread is not threading.current_thread():
            self._essentials.wait(timeout=30)
        if self.gpu is not None:
            self._safe(self.gpu.stop)
        self._stop.set()  # the writer lets go of the run; it never writes after the final batch
        _WRITER.release(self)
        start = self._start_thread
        if start is not None and not getattr(self._sink, "late_writes", False):
            # a sink that cannot take a finished run's fields (the server ends the run token
            # with the final status): the capture is waited for, as it always was
            self._rest.set()
            if start is not threading.current_thread():
                start.join(timeout=30)
        if status is None and self.papermill is not None:
            status = model.FAILED if self._papermill_error else model.FINISHED
            if error is None and self._papermill_error:
                error = self._papermill_error
        if status is None:
            status = {
                model.CELL_ERROR: model.FAILED,
                model.CELL_INTERRUPTED: model.INTERRUPTED,
            }.get(self.last_cell_status or "", model.FINISHED)
        self.status, self._ending = status, None
        end = _now()
        fields: dict[str, Any] = {"status": status, "ended_at": end, "heartbeat_at": end}
        if error is not None:
            fields["error"] = error
        snapshot = None if self.in_job else self._snapshot()
        if snapshot:
            fields["end_snapshot"] = snapshot
        if self.in_job:
            fields = {}
        if self.gpu is not None:
            fields["gpu"] = self._gpu_record()
        with self._io_lock:
            batch = self._drain()
            if fields:
                batch.setdefault("run", {}).update(fields)
            if self.gpu is not None:
                batch["compact_gpu"] = True
            self._send(batch)
            # The start-up capture still running writes its fields itself when it ends (the
            # process waits for it at exit, see wait_for_captures); what the user logged is
            # written by now.
            late = self._start_thread is not None and not self._captured
            if late:
                _LATE.add(self)
            self._say_what_is_kept(close=not late)
        self._rest.set()
        if self.view is not None:
            with self._view_lock:
                self._safe(self.view.close, self)
        return status

    def _say_what_is_kept(self, close: bool = True) -> None:
        """At the end, plainly: what could not be written, and where it is kept (or that it is
        lost, when even the spool could not take it)."""
        lines = []
        summary = None
        try:
            summary = self._sink.pending_summary() if self._sink is not None else None
        except Exception:
            pass
        if summary:
            lines.append(summary)
        if self._unsent:
            n = sum(len(v) for k, v in self._unsent.items() if isinstance(v, list))
            lines.append(
                f"{n} records held in memory could not be written or spooled and are lost "
                "when this process exits"
            )
        dropped = getattr(self._sink, "dropped", 0)
        if dropped:
            lines.append(f"{dropped} records were dropped because the spool was full")
        refused = sum(self._refusals.values())
        if refused > len(self._refusals):
            lines.append(f"{refused} calls in all were refused (see the warnings above)")
        for line in lines:
            if line not in self._said:  # said at finish(), not again when its capture ends
                self._said.add(line)
                self._print(f"jupyter-mlp: run {self.run_id}: {line}")
        if not summary and close:
            self._safe(getattr(self._sink, "close", lambda: None))

    @property
    def finished(self) -> bool:
        return self._finished

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, etype, value, tb) -> None:
        if etype is None:
            self.finish()
        else:
            status = model.INTERRUPTED if issubclass(etype, KeyboardInterrupt) else model.FAILED
            self.finish(status, {"ename": etype.__name__, "evalue": str(value)})

    def _default_name(self) -> str:
        if self.notebook:
            return Path(self.notebook).stem
        return time.strftime("run-%Y%m%d-%H%M%S", time.localtime(self.started_at))

    # --- hot path: cell hooks and logging ----------------------------------------------------

    def _pre_run_cell(self, info: Any) -> None:
        self._cell = (_now(), _perf(), info)
        if self.gpu is not None:
            self.gpu.poke()

    def _post_run_cell(self, result: Any) -> None:
        pending = self._cell
        if pending is None:
            return
        self._cell = None
        duration = _perf() - pending[1]
        if self.gpu is not None:
            self.gpu.poke()
        info = pending[2]
        try:
            if result.success:
                status, error = model.CELL_OK, None
            else:
                status, error = _describe_error(result)
            self.cell_count += 1
            if self.in_job and result.execution_count:  # the cells the job ran, as it counts them
                self.cell_count = max(self.cell_count, result.execution_count)
            self.last_cell_status = status
            if self.papermill is not None and error is not None and self._papermill_error is None:
                if not (error["ename"] == "SystemExit" and error["evalue"] in ("", "0")):
                    self._papermill_error = {"ename": error["ename"], "evalue": error["evalue"]}
            # In a job the engine records the same cells from outside, numbered in execution
            # order, which is the kernel's execution count: one row per cell, not two.
            seq = self.cell_count
            if self.in_job and result.execution_count:
                seq = result.execution_count
            if not self.in_job:  # in a job the engine records the cells
                self._cells.append((
                    seq, info.cell_id, result.execution_count, info.raw_cell,
                    pending[0], duration, status, error,
                ))  # fmt: skip
            elif self.gpu is not None:  # ... and this tracker adds only their GPU figures
                self._cell_gpu.append((seq, pending[0], duration))
            if status == model.CELL_OK:
                self._ending = None
                if self._is_parameters_cell(info):
                    self._capture_parameters(info.raw_cell, "parameters")
            else:
                self.failed_cells += 1
                if self.view is not None and (self.in_job or self.papermill is not None):
                    # papermill stops here and keeps the outputs as they are when this cell
                    # ends: the view says how the run ends now (a later paint is too late)
                    self._ending = (
                        model.INTERRUPTED if status == model.CELL_INTERRUPTED else model.FAILED
                    )
                    self._paint()
            self._dirty = True
        except Exception as exc:  # never break the user's cell
            self._warn(f"could not record a cell: {exc!r}")

    def _is_parameters_cell(self, info: Any) -> bool:
        source = info.raw_cell
        if source.startswith(model.INJECTED_HEADER):
            return True
        if info.cell_id and info.cell_id in self._param_cells:
            return True
        if source in self._param_sources:  # papermill's default engine: no cell id, no tags
            return True
        meta = getattr(info, "cell_meta", None)
        tags = meta.get("tags") if isinstance(meta, dict) else None
        if not tags:
            return False
        return "parameters" in tags or "injected-parameters" in tags

    def _capture_parameters(self, source: str, origin: str) -> None:
        if self.shell is None:
            return
        from ..params import assigned_names, capture

        rows = capture(self.shell.user_ns, assigned_names(source), origin)
        self._params.extend(rows)

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        if type(value) is not float:
            value = self.check_metric(key, value)
            if value is None:
                return
        steps = self._steps
        if type(key) is not str or key not in steps:
            if not self.new_metric_key(key):
                return
        if step is None:
            step = steps[key] + 1
        elif type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
            step = self.check_step(key, step)
            if step is None:
                return
        steps[key] = step
        self._metrics.append((key, step, value, _now()))

    # The slow paths of log_metric (the first point of a name, a value that is not a float, a
    # step that is not a small int): checked against jupyter_mlp.records; a bad call is refused
    # alone with one warning and None is returned.

    def new_metric_key(self, key: Any) -> bool:
        try:
            records.key(key, "name")
        except records.RecordError as exc:
            self.refuse("log_metric", key, exc)
            return False
        self._steps.setdefault(key, -1)
        return True

    def check_metric(self, key: Any, value: Any) -> float | None:
        if isinstance(value, (str, bytes)) or value is None:
            self.refuse(
                "log_metric", key,
                records.RecordError("value", f"must be a number, not {type(value).__name__}"),
            )  # fmt: skip
            return None
        try:
            return records.number(value, "value", finite=False)
        except records.RecordError as exc:
            self.refuse("log_metric", key, exc)
            return None

    def check_step(self, key: Any, step: Any) -> int | None:
        try:
            if isinstance(step, float):
                raise records.RecordError("step", f"must be an int, not float ({step!r})")
            return records.integer(step, "step")
        except records.RecordError as exc:
            self.refuse("log_metric", key, exc)
            return None

    def refuse(self, call: str, subject: Any, exc: BaseException) -> None:
        """One warning per call and field: what was refused and why; the call is dropped and
        every later call works. Never raises into the user's cell."""
        field = getattr(exc, "field", "")  # a RecordError names its field; a TypeError says all
        message = getattr(exc, "message", None) or str(exc)
        where = (call, field, _kind_of(message))
        count = self._refusals.get(where, 0)
        self._refusals[where] = count + 1
        if count:
            return
        shown = _shown(subject)
        self._print(
            f"jupyter-mlp warning: mlp.{call}({shown}) was not recorded: "
            f"{f'{field} {message}' if field else message}. "
            "Tracking goes on; further calls refused for the same reason are counted, not shown."
        )

    def log_params(self, params: Any, source: str = "api") -> None:
        if not isinstance(params, dict):
            self.refuse(
                "log_params", None,
                records.RecordError("params", f"must be a dict, not {type(params).__name__}"),
            )  # fmt: skip
            return
        rows = []
        for key, value in params.items():
            try:
                records.key(key, "name")
                text, type_name = _encode(value, f"parameter {key!r}")
                records.json_text(text, "value")
            except (records.RecordError, TypeError) as exc:
                self.refuse("log_param", key, exc)
                continue
            rows.append((key, text, type_name, source))
        self._params.extend(rows)
        self._dirty = True

    def output(self, name: Any, value: Any) -> None:
        try:
            records.key(name, "name")
            text, _ = _encode(value, f"output {name!r}")
            records.json_text(text, "value")
        except (records.RecordError, TypeError) as exc:
            self.refuse("output", name, exc)
            return
        self._write_now({"outputs": [(name, "value", text, None, None, None, _now())]})

    def log_artifact(self, path: Any, name: Any = None) -> str | None:
        """Copy a file (a folder as a zip) into the blob store; returns its sha256, or None when
        it was refused (a warning says why). A symbolic link is never followed out of the logged
        path: a link given as the path is refused, links inside a folder are stored as links."""
        try:
            source = Path(path)
            display = str(path)
        except TypeError as exc:
            self.refuse("log_artifact", path, records.RecordError("path", str(exc)))
            return None
        try:
            if name is not None:
                records.key(name, "name")
            if source.is_symlink():
                raise records.RecordError(
                    "path", f"{display!r} is a symbolic link; log the file it points to instead"
                )
            if not source.exists():
                raise records.RecordError("path", f"no such file {display!r}")
            name = name if name is not None else source.name
            records.key(name, "name")
        except records.RecordError as exc:
            self.refuse("log_artifact", path, exc)
            return None
        except Exception as exc:  # OSError, ValueError (a NUL in the path), ...
            self.refuse("log_artifact", path, records.RecordError("path", str(exc)))
            return None
        filename = source.name
        try:
            if source.is_dir():
                import tempfile

                with tempfile.TemporaryDirectory() as tmp:
                    archive = Path(tmp) / (source.name + ".zip")
                    skipped = _zip_folder(source, archive)
                    digest, size = self._sink.put_file(archive)
                if skipped:
                    self._print(
                        f"jupyter-mlp warning: log_artifact({display!r}) left out "
                        f"{len(skipped)} special files (sockets, devices): {', '.join(skipped[:5])}"
                    )
                filename += ".zip"
            elif source.is_file():
                digest, size = self._sink.put_file(source)
            else:
                raise OSError(f"{display!r} is not a regular file or a folder")
        except Exception as exc:  # unreadable file, no room even for the spool
            self.refuse(
                "log_artifact", path, records.RecordError("path", f"could not be read: {exc}")
            )
            return None
        meta = json.dumps({"path": str(source.absolute())})
        self._write_now({"outputs": [(name, "artifact", meta, digest, size, filename, _now())]})
        return digest

    def flush(self) -> None:
        with self._io_lock:
            self._send(self._drain())

    def _write_now(self, extra: dict[str, Any]) -> None:
        """Outputs are synchronous: what a downstream stage reads must be there when this returns."""
        with self._io_lock:
            batch = self._drain()
            for key, rows in extra.items():
                batch.setdefault(key, []).extend(rows)
            self._send(batch)
        self._dirty = True

    # --- background writer -------------------------------------------------------------------

    def _tick(self) -> None:
        """The writer's round for this run: its buffers, a heartbeat, the status view."""
        now = _now()
        if self._failing_since is not None and now - self._failing_since < RETRY_S:
            return
        with self._io_lock:
            if self._stop.is_set():  # finish() wrote the final batch meanwhile
                return
            batch = self._drain()
            if now - self._last_beat >= self._heartbeat_s and not self.in_job:
                batch["heartbeat"] = now
            if self.gpu is not None and now - self._last_compact >= GPU_COMPACT_S:
                batch["compact_gpu"] = True
                self._last_compact = now
            if batch or self._unsent or getattr(self._sink, "pending", None):
                self._send(batch)
        if self.view is not None and (
            self._dirty or (self._live and _perf() - self._painted >= LIVE_VIEW_S)
        ):
            self._paint()

    def _paint(self) -> None:
        """Refresh the status view, never after finish()'s final paint."""
        with self._view_lock:
            if not self._stop.is_set():
                self._dirty = self._live = False
                self._painted = _perf()
                self._safe(self.view.refresh, self)

    def _drain(self) -> dict[str, Any]:
        batch: dict[str, Any] = {}
        cells = _pop_all(self._cells)
        if cells:
            gpu = self.gpu
            batch["cells"] = [
                (*c, gpu.cell_figures(c[4], c[4] + c[5]) if gpu is not None else None)
                for c in cells
            ]
        ended = _pop_all(self._cell_gpu)
        if ended and self.gpu is not None:
            gpu = self.gpu
            figures = [(seq, gpu.cell_figures(t, t + took)) for seq, t, took in ended]
            batch["cell_gpu"] = [(seq, f) for seq, f in figures if f]
        metrics = _pop_all(self._metrics)
        if metrics:
            batch["metrics"] = metrics
            for key, _step, value, _t in metrics:
                self.latest_metrics[key] = value
            self._live = True  # a long cell's metrics show while it runs
        params = _pop_all(self._params)
        if params:
            batch["params"] = params
        if self._run_updates:
            batch["run"], self._run_updates = self._run_updates, {}
        if self.gpu is not None:
            samples = self.gpu.drain()
            if samples:
                batch["gpu"] = samples
        return batch

    def _send(self, batch: dict[str, Any]) -> None:
        """Write a batch (and whatever failed earlier) or keep it for the next try. A sink that
        spooled earlier batches sends those first (the writer calls this with an empty batch
        to retry them in the background)."""
        if self._unsent:
            batch = _merge(self._unsent, batch)
            self._unsent = {}
        try:
            if batch:
                self._sink.write(self.run_id, batch)
            elif getattr(self._sink, "pending", None):
                self._sink.flush()
            else:
                return
        except Exception as exc:
            self._failing_since = _now()
            if getattr(exc, "kept", False):  # the sink spooled it: nothing to keep here
                message = str(exc)
                if "keeps working" not in message:
                    message += ". Your notebook keeps working; the records are sent when it can"
                self._warn(message)
                return
            self._warn(
                f"cannot write run {self.run_id} to {self._sink.describe()}: {exc}. "
                "Your notebook keeps working; records are kept in memory and written when it can."
            )
            if len(batch.get("metrics", ())) > UNSENT_LIMIT:
                batch["metrics"] = batch["metrics"][-UNSENT_LIMIT:]
            self._unsent = batch
            return
        if self._failing_since is not None:
            self._failing_since = None
            self._print(
                f"jupyter-mlp: run {self.run_id} is written to {self._sink.describe()} again"
            )
            self._warned = False
        if "heartbeat" in batch or "run" in batch:
            self._last_beat = _now()
        refused = getattr(self._sink, "refused", None)
        if refused:
            first = refused[0]
            self.refuse("record", None, first if hasattr(first, "field") else RuntimeError(first))
            refused.clear()
        notes = getattr(self._sink, "notes", None)
        if notes:
            for note in notes[:3]:
                self._print(f"jupyter-mlp: {note}")
            notes.clear()

    # --- start-up work done off the user's thread ----------------------------------------------

    def _start_work(self) -> None:
        """The start thread: the capture, then its fields handed to the writer, or written here
        when the run finished meanwhile (the writer has stopped then)."""
        try:
            self._safe(self._capture_start)  # sets _essentials, whatever happens in it
        finally:
            with self._io_lock:
                self._captured = True
                late = self in _LATE
                if late:
                    self._send(self._drain())
            if late:
                self._say_what_is_kept()
                _LATE.discard(self)
            else:
                _WRITER.wake()

    def _capture_now(self) -> bool:
        """The start-up capture in this thread when all of it is at hand, as for a process's
        later runs: the environment and GPU probe memoised, git read by a run moments ago (see
        environment.git_state), no notebook to snapshot, the spools looked at lately. True when
        nothing is left for a start thread; it costs tens of microseconds then."""
        if self.notebook or not environment.facts_known() or not self._gpu_probed():
            return False
        read = environment.shared_git_read(Path.cwd())
        if read is None or not _orphans_seen(self._sink):
            return False
        git, diff = read.result()
        if git is not None and diff:
            digest = read.digests.get(self._sink.describe())
            if digest is None:
                return False
            git["diff"] = digest
        self._capture_essentials()
        with self._io_lock:
            if git is not None:
                self._run_updates["git"] = git
            self._captured = True
        return True

    def _gpu_probed(self) -> bool:
        if not self.want_gpu:
            return True
        gpu = sys.modules.get("jupyter_mlp.tracker.gpu")
        return gpu is not None and gpu.probed()

    def _capture_essentials(self) -> None:
        """What finish() waits for: the GPU probe and the environment (memoised per process, so
        cheap after a process's first run)."""
        try:
            self._start_gpu()  # here, not in %mlp_track: importing NVML costs ~20 ms
            from ..store.db import home_dir

            updates: dict[str, Any] = {"env": environment.capture(home_dir(self.home) / "cache")}
            if self.notebook_note:
                updates["env"]["notebook_note"] = self.notebook_note
            if self.gpu_info is not None:
                updates["gpu"] = self.gpu_info
            if self.param_names and self.shell is not None:
                from ..params import capture

                self._params.extend(capture(self.shell.user_ns, self.param_names, "magic"))
            with self._io_lock:
                self._run_updates.update(updates)
        finally:
            self._essentials.set()

    def _capture_start(self) -> None:
        """First what finish() waits for, then what may come after the run's end (the snapshot,
        git: a subprocess per run, orphaned spools)."""
        self._capture_essentials()
        data, self._start_copy = self._start_copy, None  # read and scanned by start()
        if data is None:
            data = self._read_notebook(scan=True)  # at once: it finds the parameters cell
        snapshot = self._snapshot(data)
        if snapshot and not self.in_job:
            with self._io_lock:
                self._run_updates["snapshot"] = snapshot
        # The rest (a subprocess to import and start, spools to read: milliseconds holding the
        # GIL) waits until finish() has written, or REST_AFTER_S: a short script's finish()
        # does not wait for the interpreter to come back from it, and its exit waits for it.
        self._rest.wait(REST_AFTER_S)
        folder = Path(self.notebook).parent if self.notebook else Path.cwd()
        git, diff = environment.git_state(folder)
        if git is not None:
            if diff:
                git["diff"] = self._sink.put_bytes(diff.encode("utf-8", "replace"))
                environment.remember_diff(folder, self._sink.describe(), git["diff"])
            with self._io_lock:
                self._run_updates["git"] = git
        from .sinks import StoreSink, replay_orphans

        if isinstance(self._sink, StoreSink):  # what dead kernels spooled for this store
            for note in self._safe_call(replay_orphans, self.home) or []:
                self._print(f"jupyter-mlp: {note}")
            _ORPHANS_SEEN[self._sink.describe()] = _perf()

    def _snapshot(self, data: bytes | None = None) -> str | None:
        """The notebook stored as a blob: `data` as read earlier, else the file now."""
        if data is None:
            data = self._read_notebook()
        return self._sink.put_bytes(data) if data is not None else None

    def _read_notebook(self, scan: bool = False) -> bytes | None:
        """The notebook file (None: none, or unreadable); with `scan`, its cells tagged
        `parameters` are noted (the JSON is parsed only when such a tag is in it: a notebook
        may be 100 MB)."""
        if not self.notebook:
            return None
        try:
            data = Path(self.notebook).read_bytes()
        except OSError:
            return None
        if scan and b'"parameters"' in data:
            self._scan_parameters_cell(data)
        return data

    def _read_parameters_sources(self) -> None:
        """The sources of the cells tagged `parameters` in the notebook papermill runs, read now
        (before the next cell runs), so that the parameters cell is recognised when it runs."""
        if not self.notebook:
            return
        nb = json.loads(Path(self.notebook).read_bytes())
        cells = nb.get("cells") or [c for w in nb.get("worksheets", []) for c in w.get("cells", [])]
        for cell in cells:
            if cell.get("cell_type") == "code" and "parameters" in (
                cell.get("metadata", {}).get("tags") or []
            ):
                source = cell.get("source", cell.get("input", ""))
                self._param_sources.add("".join(source) if isinstance(source, list) else source)

    def _scan_parameters_cell(self, data: bytes) -> None:
        """Remember the ids of cells tagged `parameters` (the kernel never sees tags), and take
        the values of a parameters cell that already ran before tracking started."""
        try:
            nb = json.loads(data)
        except ValueError:
            return
        for cell in nb.get("cells", []):
            tags = cell.get("metadata", {}).get("tags", [])
            if cell.get("cell_type") == "code" and "parameters" in tags:
                if cell.get("id"):
                    self._param_cells.add(cell["id"])
                source = cell.get("source", "")
                source = "".join(source) if isinstance(source, list) else source
                self._capture_parameters(source, "parameters")

    # --- GPU ------------------------------------------------------------------------------------

    def _start_gpu(self) -> None:
        if not self.want_gpu:
            self.gpu_info = {"enabled": False, "reason": "turned off (--no-gpu)"}
            return
        try:
            from .gpu import GpuSampler, probe

            found = probe()
        except Exception as exc:
            self.gpu_info = {"enabled": False, "reason": f"GPU probe failed: {exc!r}"}
            return
        self.gpu_info = {
            "enabled": found.ok,
            "reason": found.reason,
            "driver_version": found.driver_version,
            "cuda_version": found.cuda_version,
            "devices": found.devices,
            "interval": self.gpu_interval,
        }
        if found.ok:
            self.gpu = GpuSampler(found, interval=self.gpu_interval, pid=os.getpid())
            self.gpu.start()

    def _gpu_record(self) -> dict[str, Any]:
        record = dict(self.gpu_info or {})
        if self.gpu is not None:
            record["run"] = self.gpu.run_figures()
            record["notes"] = list(self.gpu.notes)
        return record

    # --- helpers ------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.run_id,
            "name": self.name,
            # a run made elsewhere (a job, a token's run) has the project it was made with,
            # which this process does not know unless it was given one: none is shown then
            "project": self.project or (None if self.job_run_id else model.DEFAULT_PROJECT),
            "status": self._ending or self.status,
            "cells": self.cell_count,
            "failed_cells": self.failed_cells,
            "elapsed": _now() - self.started_at,
            "metrics": dict(self.latest_metrics),
            "gpu": self.gpu.latest() if self.gpu is not None else None,
            "where": self._sink.describe() if self._sink is not None else None,
            "failing": self._failing_since is not None,
        }

    def _warn(self, message: str) -> None:
        if self._warned:
            return
        self._warned = True
        self._print(f"jupyter-mlp warning: {message}")

    @staticmethod
    def _print(message: str) -> None:
        try:
            print(message, file=sys.stderr, flush=True)
        except Exception:
            pass

    def _safe_call(self, fn, *args) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            self._warn(f"{getattr(fn, '__name__', fn)} failed: {exc!r}")
            return None

    def _safe(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._warn(f"{getattr(fn, '__name__', fn)} failed: {exc!r}")


class _Writer:
    """The process's writer thread: every FLUSH_S, or when woken, it writes what each live run
    buffered (cells, metrics, params), beats its heart and refreshes its status view. One for
    the process and kept between runs, so that a run's start starts no thread; started anew in
    a forked child."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._runs: list[RunSession] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def serve(self, run: RunSession) -> None:
        with self._lock:
            self._runs.append(run)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="jupyter-mlp-writer", daemon=True
                )
                self._thread.start()

    def release(self, run: RunSession) -> None:
        with self._lock:
            if run in self._runs:
                self._runs.remove(run)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_S)
            self._wake.clear()
            with self._lock:
                runs = list(self._runs)
            for run in runs:
                try:
                    run._tick()
                except Exception:  # never let one run stop the writer of all
                    pass


_WRITER = _Writer()
if hasattr(os, "register_at_fork"):  # a forked child starts with a writer of its own
    os.register_at_fork(after_in_child=_WRITER.reset)

# Finished runs whose start-up capture (environment, git, snapshot) is still being written.
_LATE: set[RunSession] = set()
# When this process last wrote into a store what dead processes spooled for it (by store).
_ORPHANS_SEEN: dict[str, float] = {}
ORPHANS_EVERY_S = 10.0


def _orphans_seen(sink: Any) -> bool:
    """Whether a run may skip looking for orphaned spools: not a local store, or this process
    looked at that store's spools in the last ORPHANS_EVERY_S."""
    from .sinks import StoreSink

    if not isinstance(sink, StoreSink):
        return True
    seen = _ORPHANS_SEEN.get(sink.describe())
    return seen is not None and _perf() - seen < ORPHANS_EVERY_S


def wait_for_captures(timeout: float = 10.0) -> None:
    """At exit: let the start-up captures of runs that finished before them be written (a
    script that ends right after finish() keeps its run's environment and git state)."""
    deadline = _perf() + timeout
    for session in list(_LATE):
        thread = session._start_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - _perf()))


def _pop_all(dq: deque) -> list:
    pop = dq.popleft
    return [pop() for _ in range(len(dq))]


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in new.items():
        if key == "run":
            out["run"] = {**out.get("run", {}), **value}
        elif key in ("heartbeat", "compact_gpu"):
            out[key] = value
        else:
            out[key] = list(out.get(key, [])) + list(value)
    return out


def _kind_of(message: str) -> str:
    """A refusal's message without its numbers: `step 2**63 is outside ...` and `step 2**64 is
    outside ...` are one kind of problem, warned once."""
    import re

    return re.sub(r"[-\d.,]+", "#", message)[:80]


def _shown(subject: Any) -> str:
    """A call's subject for a warning: short, one line, never the 10 MB name itself."""
    if subject is None:
        return ""
    try:
        text = repr(subject)
    except Exception:
        text = f"<{type(subject).__name__}>"
    text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _encode(value: Any, what: str) -> tuple[str, str]:
    try:
        from ..params import encode_value  # parses nothing: cheap, but not needed by every run

        return encode_value(value, what)
    except TypeError:
        raise
    except (ValueError, RecursionError, OverflowError) as exc:
        raise TypeError(f"{what} cannot be stored as JSON ({type(exc).__name__}: {exc})") from None


def _zip_folder(folder: Path, archive: Path) -> list[str]:
    """A folder as a zip, never following a symbolic link: a link is stored as a link (its
    target text, with the link mode bits), so an artifact cannot carry a file from outside the
    folder. Returns the special files (sockets, devices, fifos) left out."""
    import stat
    import zipfile

    skipped: list[str] = []
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(folder, followlinks=False):
            here = Path(root)
            for entry in sorted(dirs) + sorted(files):
                path = here / entry
                rel = path.relative_to(folder).as_posix()
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):
                    link = zipfile.ZipInfo(rel)
                    link.create_system = 3  # unix: the mode bits below are read back
                    link.external_attr = (stat.S_IFLNK | 0o777) << 16
                    zf.writestr(link, os.readlink(path))
                elif stat.S_ISDIR(info.st_mode):
                    zf.write(path, rel + "/")
                elif stat.S_ISREG(info.st_mode):
                    zf.write(path, rel)
                else:
                    skipped.append(rel)
    return skipped


def _describe_error(result: Any) -> tuple[str, dict[str, Any]]:
    exc = result.error_in_exec or result.error_before_exec
    status = model.CELL_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else model.CELL_ERROR
    if exc is None:
        return status, {"ename": "Error", "evalue": "", "traceback": ""}
    import traceback

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=20))
    return status, {"ename": type(exc).__name__, "evalue": str(exc)[:2000], "traceback": tb[-8000:]}
