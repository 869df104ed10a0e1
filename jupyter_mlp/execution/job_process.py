"""The job process and the warm launcher.

    python -m jupyter_mlp.execution.job_process RUN_ID      run one claimed job, then start the next
                                                        queued local job if no service is there
    python -m jupyter_mlp.execution.job_process --launcher  read {"run_id", "env", "log", "kernel",
                                                        "cards"} lines on stdin, fork a job process
                                                        for each (own session, output to the log,
                                                        a warm kernel of the launcher's pool when
                                                        one fits), reply {"pid"}

The job process is self-sufficient: it writes its own state, cells and output notebook into the
store, so neither the server nor the CLI that started it has to stay alive.
"""

from __future__ import annotations

import json
import os
import select
import sys
import traceback
from typing import Any

from . import skip_iri_grammar

skip_iri_grammar()  # before anything imports nbformat


def run(run_id: str, kernel: Any = None) -> int:
    from .. import model
    from ..store import Store
    from .notebook_job import NotebookJob
    from .reporters import StoreReporter

    store = Store()
    reporter = StoreReporter(store)
    job = reporter.job(run_id)
    runner = NotebookJob(reporter, job, kernel=kernel)
    runner.install_signal_handlers()
    try:
        state = runner.process()
    finally:
        if job.executor == "local":
            _next(store)
        store.close()
    return 0 if state == model.FINISHED else 1


def _next(store) -> None:
    """Start the next queued local job, unless a service is there to do it."""
    from .service_marker import service_running

    if service_running(store.home):
        return
    try:
        from .local import LocalExecutor

        LocalExecutor(store).dispatch()
    except Exception:
        traceback.print_exc()


def warm_up() -> None:
    """Pay once, in the launcher, what every job would pay on first use: imports, the notebook
    schema validator (compiled on first use), the kernel spec and provisioner lookups. Nothing
    here starts a thread or a zmq context: the launcher forks afterwards."""
    import tempfile
    from pathlib import Path

    import nbformat
    import papermill  # type: ignore[import-untyped]
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import KernelProvisionerFactory

    from ..store import Store  # noqa: F401
    from . import engine, local, notebook_job, reporters  # noqa: F401

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]})]
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "warm.ipynb", Path(tmp) / "out.ipynb"
        nbformat.write(nb, src)
        try:
            papermill.execute_notebook(str(src), str(out), parameters={"x": 1}, prepare_only=True,
                                       kernel_name="python3", progress_bar=False)  # fmt: skip
        except Exception:  # no python3 kernel: the jobs will say so
            pass
    try:
        spec = AsyncKernelManager(kernel_name="python3").kernel_spec
        KernelProvisionerFactory.instance().is_provisioner_available(spec)
    except Exception:
        pass
    try:  # a kernel manager's default ip lists this machine's interfaces (psutil): ~50 ms
        from jupyter_client import localinterfaces

        localinterfaces.local_ips()
    except Exception:
        pass


ZYGOTE_WAIT_S = 1.0  # a job with no idle kernel waits this long for its zygote's imports


def _pool() -> Any:
    """The launcher's warm kernels (`$MLP_KERNEL_POOL` of the default kernel, 0: none)."""
    from pathlib import Path

    from .kernel_pool import KernelPool

    try:
        size = int(os.environ.get("MLP_KERNEL_POOL", "1"))
    except ValueError:
        size = 1
    home = Path(os.environ.get("MLP_HOME") or ".")
    try:
        return KernelPool(home / "jobs" / "pool", size=size, log=home / "jobs" / "pool.log")
    except OSError:
        traceback.print_exc()
        return None


def launcher() -> int:
    replies = os.dup(1)  # replies go here; anything else printed to stdout goes to the log
    os.dup2(2, 1)
    pool = _pool()
    if pool is not None:  # the first warm kernel and its zygote start while the imports below run
        pool.tick()
    warm_up()
    import gc

    # What warm_up imported is shared with every forked job: freezing it keeps the children's
    # collector off those objects (a collection would touch, and so copy, their pages).
    gc.collect()
    gc.freeze()
    children: set[int] = set()
    buffer = b""
    try:
        while True:
            _reap(children)
            if pool is not None:
                pool.tick()
            ready, _, _ = select.select([0], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    reply = _serve(json.loads(line), pool, children, replies)
                    os.write(replies, (json.dumps(reply) + "\n").encode())
    except Exception:  # a service gone mid-reply (EPIPE), a bad line: serve no more
        traceback.print_exc()
    finally:
        if pool is not None:
            pool.close()
    # Stay while a job forked here runs: the warm kernels handed to jobs (and the zygotes that
    # forked them) watch this process as their parent, and would exit with it.
    while children:
        try:
            pid, _ = os.wait()  # any child: a job, or a kernel or zygote of the pool
            children.discard(pid)
        except ChildProcessError:
            children.clear()
        except InterruptedError:
            pass
    return 0


def _serve(request: dict, pool: Any, children: set[int], replies: int) -> dict:
    """A request: {"reserve": {"kernel", "cards", "n"}} (warm kernels for what comes next), or a
    job to fork {"run_id", "env", "log", "kernel", "cards"}, given a warm kernel if one fits."""
    if "reserve" in request:
        want = request["reserve"]
        if pool is not None:
            pool.reserve(str(want.get("kernel") or "python3"), str(want.get("cards") or ""),
                         int(want.get("n") or 0))  # fmt: skip
        return {"ok": True}
    kernel = None
    if pool is not None and request.get("kernel"):
        kernel = pool.take(
            str(request["kernel"]), str(request.get("cards") or ""), wait=ZYGOTE_WAIT_S
        )
    reply = _fork(request, children, replies, kernel)
    if kernel is not None:
        if "error" in reply:
            kernel.discard()
        else:
            reply["warm"] = True
    return reply


def _fork(request: dict, children: set[int], replies: int, kernel: Any = None) -> dict:
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        return {"error": f"cannot open the job log: {exc}"}
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(log)
        return {"error": f"fork failed: {exc}"}
    if pid == 0:  # the job process
        code = 1
        try:
            os.setsid()
            os.close(replies)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            # nothing of the launcher's (the pipes to its service and to its kernel zygotes)
            # stays open in a job: a zygote sees its end when the launcher's does
            os.closerange(3, 1 << 16)
            os.environ.update(request.get("env") or {})
            code = run(request["run_id"], kernel)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    os.close(log)
    children.add(pid)
    return {"pid": pid}


def _reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--launcher"]:
        return launcher()
    if len(args) != 1:
        print(
            "usage: python -m jupyter_mlp.execution.job_process RUN_ID | --launcher",
            file=sys.stderr,
        )
        return 2
    return run(args[0])


if __name__ == "__main__":
    sys.exit(main())
