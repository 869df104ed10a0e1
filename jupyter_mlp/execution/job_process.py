"""The job process and the warm launcher.

    python -m jupyter_mlp.execution.job_process RUN_ID      run one claimed job, then start the next
                                                        queued local job if no service is there
    python -m jupyter_mlp.execution.job_process --launcher NAME LINGER
        the warm launcher: listen on the socket NAME (launcher.py), read {"run_id", "env",
        "environ", "log", "kernel", "cards"} lines, fork a job process for each (own session,
        output to the log, the client's environment, a warm kernel of the launcher's pool when
        one fits), reply {"pid"}; stay LINGER seconds once no client and no job is left

The job process is self-sufficient: it writes its own state, cells and output notebook into the
store, so neither the server nor the CLI that started it has to stay alive.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
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

    from .. import params  # noqa: F401
    from ..store import Store, partial  # noqa: F401
    from . import (  # noqa: F401
        engine,
        local,
        notebook_job,
        papermill_options,
        param_translator,
        reporters,
        service_marker,
    )

    engine._papermill_classes()  # the engine's classes (and traitlets' set-up of them), once
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


def launcher(name: str, linger: float) -> int:
    """Serve the clients of the launcher socket `name` (launcher.py) until none is connected,
    no job forked here runs, and `linger` seconds have passed so (or a client asked it to stop,
    or the store's home was removed)."""
    import socket
    import time
    from pathlib import Path

    from .launcher import address, peer_is_me, records
    from .processes import proc_start

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address(name))
    except OSError:  # another launcher of this name was started at the same time: it serves
        return 0
    listener.listen(64)
    home = Path(os.environ.get("MLP_HOME") or ".")
    record = records(home) / f"{name}.json"
    me = {"name": name, "pid": os.getpid(), "start": proc_start(os.getpid()), "linger": linger,
          "cwd": os.getcwd(), "python": sys.executable, "since": time.time()}  # fmt: skip
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(me))
    except OSError:
        traceback.print_exc()
    pool = _pool()
    if pool is not None:  # the first warm kernel and its zygote start while the imports below run
        pool.tick()
    if linger > 0:
        _retire_others(home, name)
    warm_up()
    import gc

    # What warm_up imported is shared with every forked job: freezing it keeps the children's
    # collector off those objects (a collection would touch, and so copy, their pages).
    gc.collect()
    gc.freeze()
    children: dict[int, tuple[str, str] | None] = {}  # job pid -> the key of its pooled kernel
    clients: dict[socket.socket, bytes] = {}
    # peaks: the most jobs of a kernel key that ran at once, kept warm while the launcher lingers
    # served: a launcher no client asked anything yet waits for its first one a while (a
    # `retire` from another launcher does not count: the command that started this one is coming)
    # watchers: clients that only asked for its status (`pool status`, perhaps under `watch`):
    # they do not keep it from ending, as a command that runs or reserves does
    state: dict[str, Any] = {**me, "stop": False, "peaks": {}, "served": False,
                             "idle_since": time.monotonic(), "watchers": set(), "users": set()}  # fmt: skip
    wait = 0.0 if pool is not None else 0.5
    try:
        while not state["stop"]:
            _reap(children)
            ready = select.select([listener, *clients], [], [], wait)[0]
            # Requests first: the pool tops up (one kernel a turn) only when none is waiting.
            wait = pool.tick(most=1) if pool is not None and not ready else 0.0 if ready else 0.5
            for sock in ready:
                if sock is listener:
                    try:
                        conn, _ = listener.accept()
                    except OSError:  # out of descriptors: the client waits; so do we, a moment
                        time.sleep(0.05)
                        continue
                    try:
                        mine = peer_is_me(conn)
                    except OSError:
                        mine = False
                    if mine:
                        clients[conn] = b""
                    else:  # another user's process: refused unanswered
                        conn.close()
                elif not _read(sock, clients, pool, children, state):
                    clients.pop(sock, None)
                    state["watchers"].discard(sock)
                    state["users"].discard(sock)
                    sock.close()
                    if not clients and pool is not None and state["linger"] > 0:
                        for key, n in state["peaks"].items():  # what the next command needs
                            pool.reserve(*key, n, hold=state["linger"])
            now = time.monotonic()
            if children or state["users"]:
                state["idle_since"] = now
            elif now - state["idle_since"] >= max(
                state["linger"], 0.0 if state["served"] else 10.0
            ):
                # (a client connecting now, or one that has not said what it wants, first)
                silent = any(c not in state["watchers"] for c in clients)
                if not silent and not select.select([listener], [], [], 0)[0]:
                    break
            elif not home.is_dir():
                break
    except Exception:
        traceback.print_exc()
    finally:
        listener.close()
        for sock in clients:
            sock.close()
        try:
            if json.loads(record.read_text()).get("pid") == os.getpid():
                record.unlink()
        except (OSError, ValueError):
            pass
        if pool is not None:
            pool.close()
    # Stay while a job forked here runs: the warm kernels handed to jobs (and the zygotes that
    # forked them) watch this process as their parent, and would exit with it.
    while children:
        try:
            pid, _ = os.wait()  # any child: a job, or a kernel or zygote of the pool
            children.pop(pid, None)
        except ChildProcessError:
            children.clear()
        except InterruptedError:
            pass
    return 0


def _retire_others(home: Any, name: str) -> None:
    """One launcher stays for a store: the others left by earlier commands (another interpreter,
    folder or version) end once nobody uses them. A server's (it stays 0 s) is left alone."""
    from .launcher import client, running

    records = running(home)
    mine = next((r for r in records if r.get("name") == name), None)
    if mine is None:
        return
    for record in records:
        if record.get("name") == name or not record.get("linger"):
            continue
        if (record.get("since", 0), record["name"]) > (mine.get("since", 0), name):
            continue  # a newer one: it retires this one (two started together keep one)
        other = client(str(record["name"]))
        if other is not None:
            try:
                other.retire()
            except (OSError, RuntimeError):
                pass
            finally:
                other.close()


def _read(sock: Any, clients: dict, pool: Any, children: dict, state: dict) -> bool:
    """Serve what a client sent; False when it is gone (closed, or its reply cannot be sent)."""
    try:
        chunk = sock.recv(65536)
    except OSError:
        return False
    if not chunk:
        return False
    clients[sock] += chunk
    while b"\n" in clients[sock]:
        line, clients[sock] = clients[sock].split(b"\n", 1)
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            reply = _serve(request, pool, children, state)
            if not request.get("status"):
                state["users"].add(sock)
                state["watchers"].discard(sock)
            elif sock not in state["users"]:
                state["watchers"].add(sock)
        except Exception as exc:  # this request is refused; the launcher serves on
            reply = {"error": f"bad request: {type(exc).__name__}: {exc}"}
        try:
            sock.sendall((json.dumps(reply) + "\n").encode())
        except OSError:  # the client is gone (its jobs are not: they are ours)
            return False
    return True


def _serve(request: dict, pool: Any, children: dict, state: dict) -> dict:
    """A request: {"reserve": {"kernel", "cards", "n", "starting"}} (warm kernels for what
    comes next, `starting` jobs of it now), {"status": true}, {"stop": true}, or a job to fork
    {"run_id", "env", "environ", "log", "kernel", "cards"}, given a warm kernel if one fits."""
    if "reserve" in request:
        want = request["reserve"]
        if pool is not None:
            pool.reserve(str(want.get("kernel") or "python3"), str(want.get("cards") or ""),
                         int(want.get("n") or 0), starting=int(want.get("starting") or 0))  # fmt: skip
        return {"ok": True}
    if "retire" in request:  # a newer launcher serves this store: end once no one uses this
        state["linger"] = 0.0
        return {"ok": True}
    state["served"] = True
    if "status" in request or "stop" in request:
        state["stop"] = state["stop"] or bool(request.get("stop"))
        idle = {
            f"{k}{'/' + c if c else ''}": len(v)
            for (k, c), v in (pool.idle if pool else {}).items()
            if v
        }
        return {"pid": state["pid"], "jobs": len(children), "idle_kernels": idle,
                "linger": state["linger"], "cwd": state["cwd"], "since": state["since"],
                "idle_s": round(time.monotonic() - state["idle_since"], 1)}  # fmt: skip
    kernel = key = None
    if pool is not None and request.get("kernel"):
        key = (str(request["kernel"]), str(request.get("cards") or ""))
        kernel = pool.take(*key, wait=ZYGOTE_WAIT_S, burst=int(request.get("burst") or 1))
    reply = _fork(request, kernel)
    if "pid" in reply:
        children[reply["pid"]] = key
        if key is not None:  # (jobs still ending count too: at most the client's slots)
            running = sum(1 for k in children.values() if k == key)
            slots = int(request.get("slots") or running)
            state["peaks"][key] = min(max(state["peaks"].get(key, 0), running), slots)
    if kernel is not None:
        if "error" in reply:
            kernel.discard()
        else:
            reply["warm"] = True
    return reply


def _fork(request: dict, kernel: Any = None) -> dict:
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
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            # nothing of the launcher's (its socket and clients, the pipes to its kernel
            # zygotes) stays open in a job: a zygote sees its end when the launcher's does
            os.closerange(3, 1 << 16)
            if request.get("environ"):  # the environment of the client that asked for it
                os.environ.clear()
                os.environ.update(request["environ"])
            os.environ.update(request.get("env") or {})
            import tempfile

            tempfile.tempdir = None  # warm_up found the launcher's TMPDIR: the client's counts
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
    return {"pid": pid}


def _reap(children: dict) -> None:
    for pid in list(children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.pop(pid, None)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "--launcher":
        return launcher(args[1], float(args[2]))
    if len(args) != 1:
        print(
            "usage: python -m jupyter_mlp.execution.job_process RUN_ID | --launcher NAME LINGER",
            file=sys.stderr,
        )
        return 2
    return run(args[0])


if __name__ == "__main__":
    sys.exit(main())
