"""The `mlp` papermill engine (entry point `papermill.engine: mlp`).

papermill injects the parameters and executes; this engine records every executed cell's start,
end, status and error into the run from the outside, so a notebook without `%mlp_track` is
tracked cell by cell. Each execute_request carries JupyterLab's metadata (`cellId`, `tags`), and
the kernel gets `MLP_RUN_ID` / `MLP_KERNEL_NAME`, so a `%mlp_track` inside attaches to this run.

Cell rows use the tracker's batch shape (`store.records.apply_batch`); seq is the execution order.
The engine is the one writer of a job run's cells, status and snapshot: a tracker inside the
kernel (it sees `MLP_RUN_ID`) adds only metrics, params, outputs, artifacts and GPU figures.

Standalone: `papermill in.ipynb out.ipynb --engine mlp` records into `$MLP_RUN_ID` (or a new job
run) in the store at `$MLP_HOME`.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

from .. import model
from .store_address import job_kernel_env

CELL_RUNNING = model.RUNNING  # a cell row written at its start; replaced at its end
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class JobCancelled(Exception):
    """Raised inside the execution loop when the job was cancelled before its kernel could be."""


def error_of(content: dict[str, Any]) -> dict[str, Any]:
    """{ename, evalue, traceback} of an execute_reply / error message, as the tracker stores it."""
    tb = "\n".join(_ANSI.sub("", line) for line in content.get("traceback") or [])
    return {
        "ename": content.get("ename") or "Error",
        "evalue": str(content.get("evalue") or "")[:2000],
        "traceback": tb[-8000:],
    }


class CellRecorder:
    """Writes cell rows for one run through a reporter (`write(run_id, batch)`, optionally
    `cells(run_id)` to read rows back)."""

    def __init__(self, reporter: Any, run_id: str) -> None:
        self.reporter = reporter
        self.run_id = run_id
        self.rows: dict[int, tuple] = {}
        self.seq = 0
        self.current: tuple[int, Any, float, float] | None = None  # seq, cell, wall, perf
        self.total = 0
        self.kernel_pid: int | None = None
        self.kernel_pgid: int | None = None
        self.kernel_exiting = False  # asked to shut down; the job waits for its exit last
        self.on_total: Callable[[int], None] | None = None

    def notebook_start(self, nb: Any) -> None:
        self.total = sum(
            1 for c in nb.cells if c.get("cell_type") == "code" and str(c.get("source", "")).strip()
        )
        if self.on_total is not None:
            self.on_total(self.total)

    def _write(
        self, seq: int, cell: Any, count: Any, wall: float, took: float, status: str, error: Any
    ) -> None:
        row = model.Cell(
            seq, wall, took, status, cell_id=cell.get("id"), execution_count=count,
            source=cell.source, error=error,
        ).as_row()  # fmt: skip
        self.rows[seq] = row
        self.reporter.write(self.run_id, {"cells": [row]})

    def cell_start(self, cell: Any) -> None:
        self.seq += 1
        wall, perf = time.time(), time.perf_counter()
        self.current = (self.seq, cell, wall, perf)
        self._write(self.seq, cell, None, wall, 0.0, CELL_RUNNING, None)

    def cell_end(self, reply: dict[str, Any] | None) -> None:
        if self.current is None:
            return
        seq, cell, wall, perf = self.current
        self.current = None
        content = (reply or {}).get("content") or {}
        status, error = model.CELL_OK, None
        if content.get("status") == "error":
            error = error_of(content)
            interrupted = error["ename"] == "KeyboardInterrupt"
            status = model.CELL_INTERRUPTED if interrupted else model.CELL_ERROR
        took = time.perf_counter() - perf
        self._write(seq, cell, content.get("execution_count"), wall, took, status, error)

    def cell_abort(self, status: str, ename: str, evalue: str) -> None:
        """The running cell ended without a reply: the kernel died or the job was cancelled."""
        if self.current is None:
            return
        seq, cell, wall, perf = self.current
        self.current = None
        error = {"ename": ename, "evalue": evalue, "traceback": ""}
        self._write(seq, cell, None, wall, time.perf_counter() - perf, status, error)

    def done(self) -> int:
        return sum(1 for r in self.rows.values() if r[6] != CELL_RUNNING)


class CellMetadataClient(AsyncKernelClient):
    """Sends `execute_request` with the metadata JupyterLab sends (`cellId`, `tags`), which the
    kernel hands to IPython's cell hooks as `cell_id` / `cell_meta`."""

    next_metadata: dict[str, Any] | None = None

    @default("context")
    def _context_default(self) -> Any:
        """The client's own context (its kernel manager's is another): its channels try a
        kernel that has not bound its ports yet (forked for the job a moment ago, a pool's
        kernel still starting, a cold one) again every RECONNECT_MS, not ZeroMQ's 100 ms."""
        import zmq

        context = super()._context_default()
        context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        return context

    def execute(  # type: ignore[override]
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
    ) -> str:
        metadata, self.next_metadata = self.next_metadata or {}, None
        content = {
            "code": code, "silent": silent, "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
            "stop_on_error": stop_on_error,
        }  # fmt: skip
        msg = self.session.msg("execute_request", content, metadata=metadata)
        self.shell_channel.send(msg)
        return msg["header"]["msg_id"]


class MlpKernelManager(AsyncKernelManager):
    @default("client_factory")
    def _client_factory_default(self) -> type:
        return CellMetadataClient

    @default("shutdown_wait_time")
    def _shutdown_wait_time_default(self) -> float:
        # A job's kernel has nothing left to do once the tracker inside has finished (done
        # before the shutdown request): do not wait 2.5 s for one that does not exit at once,
        # as the default does now and then.
        return 1.0


# Run in the kernel (silently) before it is shut down: a tracker inside sends what it holds
# (metrics, GPU figures) now, while the kernel is surely alive, not in an exit handler racing
# the shutdown. Only the public API: the tracker writes nothing of the run's lifecycle in a job.
FINISH_TRACKER = """\
import sys as _mlp_sys
if "jupyter_mlp" in _mlp_sys.modules:
    _mlp_sys.modules["jupyter_mlp"].finish()
del _mlp_sys
"""
FINISH_TIMEOUT_S = 30.0
RECONNECT_MS = 10  # how often a job's client tries a kernel it cannot reach yet


async def _warm_ready(kc: Any, km: Any, timeout: float, prelude_id: str | None = None) -> Any:
    """jupyter_client's wait_for_ready for a kernel that is already up, without its 0.2 s of
    IOPub silence at the end: IOPub connected, and a kernel_info reply on shell.

    kernel_info is asked at once, beside the prelude sent before it (`prelude_id`: the job's
    environment and folder), so that the kernel answers both while IOPub connects: one round
    trip in all. ipykernel greets a new IOPub subscriber (`iopub_welcome`): any IOPub message
    shows it is connected (what was published before it never comes, and nbclient reads only
    its own requests' messages). A kernel that does not greet is asked kernel_info until that
    request's `idle` comes on IOPub. Returns the prelude's shell reply."""
    from queue import Empty

    deadline = time.monotonic() + timeout
    replies: dict[str, Any] = {}

    async def reply_to(msg_id: str) -> Any:
        while msg_id not in replies:
            reply = await kc.shell_channel.get_msg(timeout=1)
            replies[reply["parent_header"].get("msg_id")] = reply
        return replies[msg_id]

    def answered(reply: Any) -> Any:
        handle = getattr(kc, "_handle_kernel_info_reply", None)
        if handle is not None:
            handle(reply)
        if prelude_id is None:
            return None
        if prelude_id not in replies:
            raise RuntimeError("the warm kernel did not answer the job's prelude")
        return replies[prelude_id]

    msg_id = kc.kernel_info()
    try:
        await kc.iopub_channel.get_msg(timeout=0.25)
        connected = True
    except Empty:  # no greeting: asked until a request's `idle` shows IOPub is connected
        connected = False
    while time.monotonic() < deadline:
        try:
            reply = await reply_to(msg_id)
            while not connected:
                msg = await kc.iopub_channel.get_msg(timeout=0.2)
                connected = (
                    msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"].get("execution_state") == "idle"
                )
            return answered(reply)
        except Empty:
            if not await km.is_alive():
                raise RuntimeError("the warm kernel died before replying to kernel_info") from None
            if not connected:
                msg_id = kc.kernel_info()
    raise RuntimeError(f"the warm kernel did not answer within {timeout:.0f} s")


class MlpEngine:
    """papermill engine `mlp`. Engine kwargs (all optional):
    mlp_recorder: a CellRecorder (the job runner passes one; standalone use makes one from env),
    mlp_env: extra environment for the kernel, mlp_should_stop / mlp_on_kernel: callbacks.

    papermill imports its entry points while it is itself being imported, so this module must
    not import papermill at the top: the papermill-derived classes are built on first use."""

    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, **kwargs: Any) -> Any:
        return _papermill_classes()[1].execute_notebook(nb, kernel_name, **kwargs)

    @classmethod
    def nb_kernel_name(cls, nb: Any, name: str | None = None) -> str:
        from papermill.utils import nb_kernel_name  # type: ignore[import-untyped]

        return nb_kernel_name(nb, name)

    @classmethod
    def nb_language(cls, nb: Any, language: str | None = None) -> str:
        from papermill.utils import nb_language  # type: ignore[import-untyped]

        return nb_language(nb, language)


_classes: tuple[Any, Any] | None = None


def _papermill_classes() -> tuple[Any, Any]:
    """(MlpNotebookClient, the NBClientEngine subclass), built once."""
    global _classes
    if _classes is not None:
        return _classes
    from nbclient.util import ensure_async, run_sync
    from nbclient.util import run_hook as _run_hook
    from papermill.clientwrap import PapermillNotebookClient  # type: ignore[import-untyped]
    from papermill.engines import NBClientEngine  # type: ignore[import-untyped]

    class MlpNotebookClient(PapermillNotebookClient):
        """papermill's client with hooks that feed a CellRecorder."""

        km: Any  # (annotations only: nbclient sets both)
        kc: Any

        def __init__(
            self,
            nb_man: Any,
            recorder: CellRecorder,
            should_stop: Callable[[], bool] | None = None,
            on_kernel: Callable[[int | None, int | None], None] | None = None,
            warm: tuple[Any, str] | None = None,
            **kw: Any,
        ) -> None:
            kw.setdefault("kernel_manager_class", MlpKernelManager)
            super().__init__(nb_man, **kw)
            self.warm = warm  # (a PooledKernel, its prelude): connect to it, start none
            self.prelude_reply: dict[str, Any] | None = None
            self.finish_id: str | None = None  # the tracker's finish, sent after the cells
            self.cold_start: dict[str, Any] = {}  # how to start a kernel if the warm one fails
            self.recorder = recorder
            self.should_stop = should_stop or (lambda: False)
            self.on_kernel = on_kernel
            self.on_notebook_start = self._notebook_started
            self.on_cell_start = self._check_stop
            self.on_cell_execute = self._cell_execute
            self.on_cell_executed = self._cell_executed

        def create_kernel_manager(self) -> Any:
            km: Any = super().create_kernel_manager()
            if self.warm is not None:
                from .kernel_pool import AdoptedKernel

                AdoptedKernel(self.warm[0]).adopt(km)
            return km

        async def async_start_new_kernel_client(self) -> Any:
            if self.warm is None:
                return await super().async_start_new_kernel_client()
            km: Any = self.km
            self.kc = km.client()
            # no heartbeat (a thread with its own event loop): a client made by its kernel
            # manager asks the manager whether the kernel lives (here the pooled pid)
            await ensure_async(self.kc.start_channels(hb=False))
            # what a cold start gives the kernel (env, cwd), sent ahead of the readiness check:
            # the kernel runs it, then answers kernel_info
            prelude_id = self.kc.execute(self.warm[1], silent=True, store_history=False)
            try:
                self.prelude_reply = await _warm_ready(
                    self.kc, km, self.startup_timeout, prelude_id
                )
            except Exception as exc:  # a warm kernel that died or hangs: start a cold one
                self.log.warning("jupyter-mlp: %s; starting a kernel for this job", exc)
                await ensure_async(self.kc.stop_channels())
                self.warm[0].discard()
                self.warm, self.kc = None, None
                self.km = super().create_kernel_manager()
                await self.async_start_new_kernel(**self.cold_start)
                return await super().async_start_new_kernel_client()
            self.kc.allow_stdin = False
            await _run_hook(self.on_notebook_start, notebook=self.nb)
            return self.kc

        async def _notebook_started(self, notebook: Any) -> None:
            if self.warm is not None:  # the prelude, answered before kernel_info
                content = (self.prelude_reply or {}).get("content") or {}
                if content.get("status") != "ok":
                    raise RuntimeError(
                        "the warm kernel could not be given the job's environment: "
                        f"{content.get('ename')}: {content.get('evalue')}"
                    )
            provisioner = getattr(self.km, "provisioner", None)
            pid = getattr(provisioner, "pid", None)
            pgid = getattr(provisioner, "pgid", None)
            self.recorder.kernel_pid, self.recorder.kernel_pgid = pid, pgid
            if self.on_kernel is not None:
                self.on_kernel(pid, pgid)
            self.recorder.notebook_start(notebook)

        def papermill_execute_cells(self) -> None:
            super().papermill_execute_cells()
            # papermill asks kernel_info next: the kernel's tracker is told to finish right
            # behind it, so the kernel runs that while this process reads the reply and ends
            # its context (the finish is awaited in _async_cleanup_kernel, as before)
            kc = self.kc
            ask = kc.kernel_info

            def kernel_info(*args: Any, **kw: Any) -> str:
                kc.kernel_info = ask
                msg_id = ask(*args, **kw)
                self.finish_id = kc.execute(FINISH_TRACKER, silent=True, store_history=False)
                return msg_id

            kc.kernel_info = kernel_info

        def _check_stop(self, cell: Any, cell_index: int) -> None:
            if self.should_stop():
                raise JobCancelled("the job was cancelled")

        def _cell_execute(self, cell: Any, cell_index: int) -> None:
            self.kc.next_metadata = {
                "cellId": cell.get("id"),
                "tags": list(cell.metadata.get("tags", [])),
            }
            self.recorder.cell_start(cell)

        def _cell_executed(self, cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
            self.recorder.cell_end(execute_reply)

        async def _async_cleanup_kernel(self) -> None:
            finished = False
            try:
                if self.kc is not None and self.km is not None and await self.km.is_alive():
                    msg_id = self.finish_id or self.kc.execute(
                        FINISH_TRACKER, silent=True, store_history=False
                    )
                    await asyncio.wait_for(self.async_wait_for_reply(msg_id), FINISH_TIMEOUT_S)
                    finished = True
            except Exception:  # a kernel that died or hangs: shut it down all the same
                pass
            if finished and self.owns_km and await self._ask_shutdown():
                return
            await super()._async_cleanup_kernel()

        async def _ask_shutdown(self) -> bool:
            """Ask the idle kernel to shut down, and leave without waiting for it to exit (a few
            hundred ms no job should wait for): the job reports its outcome first, then waits
            for the kernel's exit and kills what is left (NotebookJob.cleanup)."""
            km: Any = self.km
            kc: Any = self.kc
            try:
                await km.request_shutdown()
                self.recorder.kernel_exiting = True
                await km.cleanup_resources()
                await ensure_async(kc.stop_channels())
            except Exception:
                return False
            self.kc = None
            self.km = None
            return True

        # nbclient binds its sync wrappers to its own coroutines: papermill's (sync)
        # setup_kernel would never reach the overrides here without these
        _cleanup_kernel = run_sync(_async_cleanup_kernel)
        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    class Engine(NBClientEngine):
        @classmethod
        def execute_notebook(
            cls,
            nb: Any,
            kernel_name: str,
            mlp_paths: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> Any:
            if mlp_paths:  # before papermill's first save of the output notebook
                nb.metadata.papermill.update(mlp_paths)
            if kwargs.get("mlp_recorder") is not None:
                return super().execute_notebook(nb, kernel_name, **kwargs)
            # `papermill in.ipynb out.ipynb --engine mlp` outside a job: this engine owns the run
            standalone = _Standalone(kernel_name, kwargs.get("input_path"), nb)
            kwargs["mlp_recorder"] = standalone.recorder
            try:
                result = super().execute_notebook(nb, kernel_name, **kwargs)
            except BaseException as exc:
                standalone.end(nb, exc)
                raise
            standalone.end(nb, None)
            return result

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: int | None = None,
            mlp_recorder: CellRecorder | None = None,
            mlp_env: dict[str, str] | None = None,
            mlp_should_stop: Callable[[], bool] | None = None,
            mlp_on_kernel: Callable[[int | None, int | None], None] | None = None,
            mlp_cwd: str | None = None,
            mlp_kernel: Any = None,
            **kwargs: Any,
        ) -> Any:
            return _execute(
                MlpNotebookClient, nb_man, kernel_name, log_output, stdout_file, stderr_file,
                start_timeout, execution_timeout, mlp_recorder, mlp_env, mlp_should_stop,
                mlp_on_kernel, kwargs, mlp_cwd, mlp_kernel,
            )  # fmt: skip

    _classes = (MlpNotebookClient, Engine)
    return _classes


def _execute(
    client_class: type,
    nb_man: Any,
    kernel_name: str,
    log_output: bool,
    stdout_file: Any,
    stderr_file: Any,
    start_timeout: int,
    execution_timeout: int | None,
    recorder: CellRecorder | None,
    extra_env: dict[str, str] | None,
    should_stop: Callable[[], bool] | None,
    on_kernel: Callable[[int | None, int | None], None] | None,
    kwargs: dict[str, Any],
    cwd: str | None = None,
    pooled: Any = None,
) -> Any:
    if recorder is None:  # called without Engine.execute_notebook: record into a new run anyway
        recorder = _Standalone(kernel_name, kwargs.get("input_path"), None).recorder
    env = job_kernel_env({**os.environ, **(extra_env or {})})
    env["MLP_RUN_ID"] = recorder.run_id
    env["MLP_KERNEL_NAME"] = kernel_name
    home = getattr(recorder.reporter, "home", None)
    if home is not None:
        env["MLP_HOME"] = str(home)
    for name in ("input_path", "timeout", "startup_timeout"):
        kwargs.pop(name, None)
    warm = None
    if pooled is not None:  # a warm kernel from the pool, if it is the one this job would start
        from .kernel_pool import fits, prelude

        final = pooled.job_env(env)
        why = fits(pooled, kernel_name, final)
        if why is None:
            warm = (pooled, prelude(pooled, final, cwd))
        else:
            pooled.discard()
            _logger().info("a cold kernel: the warm one was %s", why)
    client = client_class(
        nb_man, recorder, should_stop=should_stop, on_kernel=on_kernel, warm=warm,
        timeout=execution_timeout or None, startup_timeout=start_timeout,
        kernel_name=kernel_name, log=_logger(), log_output=log_output,
        stdout_file=stdout_file, stderr_file=stderr_file, **kwargs,
    )  # fmt: skip
    try:
        # the kernel's working directory, given to the kernel alone: papermill's own `cwd`
        # changes the whole process's, which jobs sharing a process (Dask threads) cannot have
        start = {"env": env, **({"cwd": cwd} if cwd else {})}
        client.cold_start = start
        result = client.execute(**start)
    except BaseException as exc:
        stopped = isinstance(exc, (JobCancelled, KeyboardInterrupt)) or (
            should_stop is not None and should_stop()
        )
        if stopped:  # the kernel was killed because the job was cancelled: say so, not "died"
            recorder.cell_abort(model.CELL_INTERRUPTED, "Cancelled", "the job was cancelled")
        else:
            recorder.cell_abort(
                model.CELL_ERROR, type(exc).__name__, str(exc)[:2000] or "the kernel died"
            )
        raise
    return result


def papermill_error(nb: Any) -> dict[str, Any] | None:
    """What papermill's raise_for_execution_errors would raise for an executed notebook, as
    {ename, evalue, cell_index, execution_count}, or None when papermill exits 0: an error output
    anywhere fails it (also in a `raises-exception` cell, though later cells ran), except
    SystemExit with no code or code 0 (`sys.exit(0)`)."""
    for index, cell in enumerate(nb.get("cells", [])):
        has_sys_exit = False
        for output in cell.get("outputs") or []:
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "SystemExit" and output.get("evalue") in ("", "0"):
                has_sys_exit = True
                continue
            return {
                "ename": str(output.get("ename") or "Error"),
                "evalue": str(output.get("evalue") or "")[:2000],
                "cell_index": index, "execution_count": cell.get("execution_count"),
            }  # fmt: skip
        pm = (cell.get("metadata") or {}).get("papermill") or {}
        if not has_sys_exit and pm.get("exception") is True:
            return {"ename": "CellExecutionError", "evalue": "", "cell_index": index,
                    "execution_count": cell.get("execution_count")}  # fmt: skip
    return None


def _logger() -> Any:
    from papermill.log import logger  # type: ignore[import-untyped]

    return logger


class _Standalone:
    """`papermill --engine mlp` outside a job: record into $MLP_RUN_ID or a new job run, as a job
    would: status, cells, the input notebook as the snapshot (so the run can be rerun), its
    parameters (the parameters cell's defaults and what papermill injected) and the executed
    notebook. The run ends as papermill exits: `finished` for exit status 0 (`sys.exit(0)`
    included), `failed` otherwise (an error anywhere, a notebook that interrupts itself)."""

    def __init__(self, kernel_name: str, input_path: Any, nb: Any) -> None:
        from ..tracker.environment import identity
        from .reporters import StoreReporter

        self.reporter = StoreReporter.from_env()
        run_id = os.environ.get("MLP_RUN_ID") or model.new_run_id()
        local = isinstance(input_path, str) and os.path.isfile(input_path)
        notebook = os.path.abspath(input_path) if local else None
        self.run_id = run_id
        now = time.time()
        fields = {"status": model.RUNNING, "started_at": now, "kernel": kernel_name, **identity()}
        if not os.environ.get("MLP_RUN_ID"):
            fields.update(kind=model.JOB, created_at=now, notebook=notebook,
                          name=os.path.splitext(os.path.basename(notebook or "notebook"))[0])  # fmt: skip
        batch: dict[str, Any] = {"run": fields}
        try:
            batch.update(self._snapshot_and_params(notebook, nb))
        except Exception:  # never stop papermill for what the record could not keep
            pass
        batch["run"].update(batch.pop("snapshot_fields", {}))
        self.reporter.write(run_id, batch)
        self.recorder = CellRecorder(self.reporter, run_id)

    def _snapshot_and_params(self, notebook: str | None, nb: Any) -> dict[str, Any]:
        from ..params import encode, notebook_parameters

        out: dict[str, Any] = {}
        injected = dict(
            ((nb or {}).get("metadata") or {}).get("papermill", {}).get("parameters") or {}
        )
        rows: list[tuple[str, str, str, str]] = []
        if notebook is not None:
            data = open(notebook, "rb").read()
            digest = self.reporter.store.blobs.put_bytes(data)
            out["snapshot_fields"] = {"snapshot": digest}
            source = _as_v4(data)
            before = (source.get("metadata") or {}).get("papermill", {}).get("parameters")
            if injected and before == injected:  # a papermill output run again, nothing new:
                injected = {}  # papermill left its injected cell (and that metadata) alone
            for key, k in notebook_parameters(source, injected=not injected).items():
                if key not in injected and k.type is not None:
                    rows.append((key, *encode(k.value, f"parameter {key!r}"), "parameters"))
        for key, value in injected.items():
            try:
                rows.append((key, *encode(value, f"parameter {key!r}"), "job"))
            except (TypeError, ValueError, OverflowError, RecursionError):
                pass
        if rows:
            out["params"] = rows
        return out

    def end(self, nb: Any, exc: BaseException | None) -> None:
        fields: dict[str, Any] = {"ended_at": time.time()}
        error = papermill_error(nb) if nb is not None else None
        if exc is not None and error is None:
            error = {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}
        fields["status"] = model.FAILED if error else model.FINISHED
        if error:
            fields["error"] = error
        self.reporter.write(self.run_id, {"run": fields})
        if nb is not None:
            try:
                import nbformat

                digest = self.reporter.store.blobs.put_bytes(nbformat.writes(nb).encode("utf-8"))
                self.reporter.set_output_notebook(self.run_id, digest)
            except Exception:
                pass


def _as_v4(data: bytes) -> dict[str, Any]:
    """A notebook file as nbformat 4 (papermill upgrades nbformat 3 the same way)."""
    import json

    import nbformat

    return json.loads(nbformat.writes(nbformat.reads(data.decode("utf-8"), as_version=4)))
