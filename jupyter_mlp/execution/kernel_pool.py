"""Warm kernels: started ahead, each handed to exactly one job, which shuts it down at its end.

The warm launcher (job_process.py) holds a `KernelPool`. A kernel is started as a cold job's
would be (the kernelspec's command and env, papermill's in-memory history, its own process
session), with no job in it yet: what a job needs that a kernel can only learn later is set
in the kernel before its first cell, by `prelude()` (environment variables, working directory,
`__session__`). Two rules keep a job from ever seeing what it would not see in a cold kernel:

- one kernel, one job: a pooled kernel is never reused; the job shuts it down as nbclient would;
- a kernel is handed only to a job it could have been started for: the same kernel name, the
  same `CUDA_VISIBLE_DEVICES` (the pool is keyed by card set, so a kernel started for cards 0,1
  is never handed to a job given card 2), and the same interpreter-start environment
  (`STARTUP_ENV`: PYTHONPATH, LD_PRELOAD, ...). A job that differs in any of these starts a
  cold kernel instead.

An idle kernel holds no GPU memory (ipykernel does not touch CUDA until the notebook does) and
costs one idle process. The pool keeps `size` kernels of the default key (`python3`, no card)
and, for `reserve()`d keys (a pipeline's next stages), as many as asked for a while.

This module does not start threads or zmq contexts in the launcher (which forks job processes):
ports come from plain sockets, the kernel is a plain subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from .launcher import STARTUP_ENV
from .processes import kill_group, proc_start, process_alive

DEFAULT_KERNEL = "python3"
RESERVE_S = 120.0  # a reserve() holds its kernels this long, then the key falls back to its size
IDLE_MAX_S = 1800.0  # an idle kernel older than this is replaced (a long-idle one may be stale)
WARMING_S = 0.5  # a kernel this young is still starting (its interpreter busy on a core)
JOB_START_S = 0.15  # a job handed a warm kernel is this long starting (its process busy)
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
TICK_S = 0.5  # a pool with what it wants looks again this often
BLOCKED_S = 0.05  # one that waits for a zygote or for an awaited kernel, this often
HIST = "--HistoryManager.hist_file=:memory:"  # what nbclient passes an ipykernel (papermill's)

# Set by whoever launched the kernel; not part of what the job asked for.
LAUNCH_ONLY = {"JPY_PARENT_PID"}
PORTS = ("shell", "iopub", "stdin", "control", "hb")


@dataclass
class PooledKernel:
    kernel_name: str
    cards: str
    pid: int
    start: str | None
    connection_file: str
    env: dict[str, str]  # what it was started with
    spec_env: dict[str, str]  # its kernelspec's env and language, to build a job's env alike
    language: str
    started: float = field(default_factory=time.monotonic)

    def job_env(self, base: dict[str, str]) -> dict[str, str]:
        """The environment a cold kernel of this kernelspec would get from `base`."""
        return kernel_env(base, self.spec_env, self.language, None)

    def alive(self) -> bool:
        return process_alive(self.pid, self.start)

    def discard(self) -> None:
        """Not used after all: stop it and remove its connection file."""
        kill_group(self.pid, signal.SIGKILL)
        if self.alive():  # forked a moment ago, it may not lead its own group yet
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.unlink(self.connection_file)
        except OSError:
            pass


def kernel_env(
    base: dict[str, str], spec_env: dict[str, str], language: str, cards: str | None
) -> dict[str, str]:
    """The environment a kernel is started with from `base`, as jupyter_client's provisioner
    builds it (the kernelspec's env with ${VAR} substitutions, no PYTHONEXECUTABLE for a Python
    kernel)."""
    env = dict(base)
    for key, value in spec_env.items():
        env[key] = Template(str(value)).safe_substitute(base)
    if language.lower().startswith("python"):
        env.pop("PYTHONEXECUTABLE", None)
    if cards is not None:
        env["CUDA_VISIBLE_DEVICES"] = cards
    return env


def fits(kernel: PooledKernel, kernel_name: str, env: dict[str, str]) -> str | None:
    """Why `kernel` is not the kernel a job with this name and (final) env would have been
    started with; None when it is."""
    if kernel.kernel_name != kernel_name:
        return f"kernel {kernel.kernel_name}, not {kernel_name}"
    if env.get("CUDA_VISIBLE_DEVICES", "") != kernel.cards:
        return "started for other GPU cards"
    for key in set(env) | set(kernel.env):
        if STARTUP_ENV.match(key) and env.get(key) != kernel.env.get(key):
            return f"started with another {key}"
    return None


def prelude(kernel: PooledKernel, env: dict[str, str], cwd: str | None) -> str:
    """Python for the kernel, run silently before the first cell: the environment variables the
    job's kernel would have been started with, its working directory and `__session__`.
    Values are Python string literals (repr), never code."""
    changed = {k: v for k, v in env.items() if kernel.env.get(k) != v and k not in LAUNCH_ONLY}
    removed = sorted(k for k in kernel.env if k not in env and k not in LAUNCH_ONLY)
    lines = ["import os as _mlp_os"]
    if changed:
        lines.append(f"_mlp_os.environ.update({dict(sorted(changed.items()))!r})")
    for key in removed:
        lines.append(f"_mlp_os.environ.pop({key!r}, None)")
    if cwd:
        lines.append(f"_mlp_os.chdir({cwd!r})")
    if env.get("JPY_SESSION_NAME"):  # ipykernel sets __session__ from it at start
        lines.append(
            "try:\n    get_ipython().user_ns['__session__'] = "
            f"{env['JPY_SESSION_NAME']!r}\nexcept NameError:\n    pass"
        )
    lines.append("del _mlp_os")
    return "\n".join(lines) + "\n"


class KernelPool:
    """Idle kernels by (kernel name, card set). Lives in the launcher's single thread: `tick()`
    reaps, tops up and retires; `take()` hands one out."""

    def __init__(self, folder: Path, size: int = 1, log: Path | int | None = None) -> None:
        """log: where the kernels' own console output goes: a file (appended), a file descriptor
        of this process (a Dask worker's stderr, where its cold kernels write), or nowhere."""
        self.folder = folder
        self.size = max(0, size)
        self.log = log
        self.idle: dict[tuple[str, str], list[PooledKernel]] = {}
        self.reserved: dict[tuple[str, str], tuple[int, float]] = {}
        self.started: dict[int, subprocess.Popen] = {}  # every kernel we started, to reap
        self.ports: dict[int, set[int]] = {}  # theirs, while they live
        self.failures: dict[tuple[str, str], int] = {}  # failed cold starts, by key
        self.zygote_failures: dict[tuple[str, str], int] = {}
        self.zygotes: dict[tuple[str, str], Zygote] = {}
        self.zygotes_enabled = os.environ.get("MLP_KERNEL_ZYGOTE", "1") != "0"
        # Start times of the kernels handed to jobs while still starting: while one is, no
        # kernel is started ahead for later jobs (it would slow down the one a job waits for).
        self._awaited: list[float] = []
        self._wave_until = 0.0  # a wave of jobs is starting until then
        (folder / "cwd").mkdir(parents=True, exist_ok=True)

    # --- what the launcher calls -------------------------------------------------------------

    def take(
        self, kernel_name: str, cards: str, wait: float = 0.0, burst: int = 1
    ) -> PooledKernel | None:
        """An idle kernel for this key; with none idle and `wait`, one forked now from the key's
        zygote (waiting up to `wait` s for it to finish its imports): ready in ~0.15 s, where a
        job's own start takes 0.5-1 s (more when several start at once). burst: how many jobs
        are being started together with this one (a wave of stages)."""
        key = (kernel_name, cards)
        kernels = self.idle.get(key, [])
        while kernels:
            kernel = kernels.pop(0)
            if kernel.alive():
                return self._handed(kernel, burst)
            kernel.discard()
        zygote = self.zygotes.get(key)
        if wait > 0 and zygote is not None and zygote.alive() and zygote.wait_ready(wait):
            fresh = self._start(kernel_name, cards)
            return self._handed(fresh, burst) if fresh is not None else None
        return None

    def _handed(self, kernel: PooledKernel, burst: int = 1) -> PooledKernel:
        """A kernel handed to a job. While it still starts, or while a wave of at least as many
        jobs as there are cores starts (each job process needs ~0.1 s of CPU before its first
        cell), no kernel is started ahead. A lone job (a chain's next stage) holds nothing up."""
        now = time.monotonic()
        if now - kernel.started < WARMING_S:
            self._awaited.append(kernel.started)
        if burst >= CORES:
            self._wave_until = now + JOB_START_S
        return kernel

    def _busy(self) -> bool:
        """Whether a kernel started ahead now would slow down one a job waits for."""
        return bool(self._awaited) or time.monotonic() < self._wave_until

    def reserve(
        self, kernel_name: str, cards: str, n: int, hold: float = RESERVE_S, starting: int = 0
    ) -> None:
        """Keep `n` idle kernels of this key for a while (`hold` s): jobs are coming, `starting`
        of them now. When those are a wave (as many as there are cores, or more), the kernels
        for the others are started only once the wave's jobs have (as after a wave's `take`s):
        a pipeline's second frontier waits for its first anyway."""
        now = time.monotonic()
        if starting >= CORES:
            self._wave_until = max(self._wave_until, now + JOB_START_S)
        self.reserved[(kernel_name, cards)] = (max(0, n), now + hold)

    def tick(self, most: int | None = None) -> float:
        """Reap, retire and top up (starting at most `most` kernels); the seconds until it is
        worth calling again: 0 when it stopped at `most` with kernels still wanted."""
        self._reap()
        later = TICK_S
        now = time.monotonic()
        for key, (_, until) in list(self.reserved.items()):
            if until < now:
                del self.reserved[key]
        self._awaited = [t for t in self._awaited if now - t < WARMING_S]
        for key in set(self.idle) | set(self.reserved) | {(DEFAULT_KERNEL, "")}:
            want = self.target(key)
            kernels = self.idle.setdefault(key, [])
            for kernel in list(kernels):
                if not kernel.alive() or now - kernel.started > IDLE_MAX_S:
                    kernels.remove(kernel)
                    kernel.discard()
            while len(kernels) > want:
                kernels.pop().discard()
            while len(kernels) < want and self.failures.get(key, 0) < 3:
                if self._zygote_starting(key) or self._busy():
                    later = min(later, BLOCKED_S)  # a cold start beside an importing zygote,
                    break  # or a kernel started ahead beside one a job waits for, would only
                    # slow both down
                if most is not None and most <= 0:
                    return 0.0
                fresh = self._start(*key)
                if fresh is None:
                    if not self._zygote_starting(key):
                        self.failures[key] = self.failures.get(key, 0) + 1
                    break
                kernels.append(fresh)
                most = None if most is None else most - 1
        return later

    def target(self, key: tuple[str, str]) -> int:
        base = self.size if key == (DEFAULT_KERNEL, "") else 0
        return max(base, self.reserved.get(key, (0, 0.0))[0])

    def close(self) -> None:
        """Stop the idle kernels (handed-out ones belong to their jobs) and the zygotes."""
        for kernels in self.idle.values():
            for kernel in kernels:
                kernel.discard()
        self.idle.clear()
        for zygote in self.zygotes.values():
            zygote.close()
        self.zygotes.clear()
        self._reap()

    # --- inside ------------------------------------------------------------------------------

    def _start(self, kernel_name: str, cards: str) -> PooledKernel | None:
        """A new idle kernel: forked from the key's zygote, or started the cold way where there
        can be no zygote; None while the zygote is still importing (or on failure)."""
        from jupyter_client.manager import KernelManager

        path = self.folder / f"kernel-{uuid.uuid4().hex}.json"
        try:
            km = KernelManager(kernel_name=kernel_name, connection_file=str(path))
            km.ip = "127.0.0.1"
            for _ in range(5):  # ports are picked free, then bound by the kernel as it starts:
                km.write_connection_file()  # never give two kernels starting together the same
                ports = {getattr(km, f"{c}_port") for c in PORTS}
                if not ports & self._ports_taken():
                    break
                path.unlink(missing_ok=True)
                km._connection_file_written = False
                for c in PORTS:
                    setattr(km, f"{c}_port", 0)
            spec = km.kernel_spec
            if spec is None:
                raise LookupError(f"no kernel named {kernel_name!r}")
            km._connection_file_written = False  # the file is the job's to remove, not km's __del__
            cmd = km.format_kernel_cmd([HIST] if km.ipykernel else [])
            spec_env = {str(k): str(v) for k, v in (spec.env or {}).items()}
            language = str(spec.language or "")
            env = kernel_env(dict(os.environ), spec_env, language, cards)
            env["JPY_PARENT_PID"] = str(os.getpid())
            pid = self._fork(kernel_name, cards, cmd, env)
            if pid == 0:  # its zygote is importing: a kernel comes from it in a moment
                path.unlink(missing_ok=True)
                return None
            if pid is None:
                pid = self._popen(cmd, env)
        except Exception as exc:  # no such kernel, a broken spec: jobs start cold and say so
            print(f"jupyter-mlp: cannot start a warm {kernel_name} kernel: {exc}", file=sys.stderr)
            try:
                path.unlink()
            except OSError:
                pass
            return None
        self.ports[pid] = ports
        return PooledKernel(kernel_name, cards, pid, proc_start(pid), str(path), env, spec_env,
                            language)  # fmt: skip

    def _popen(self, cmd: list[str], env: dict[str, str]) -> int:
        fd = isinstance(self.log, int)
        out: Any = self.log if fd else open(self.log or os.devnull, "ab")  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                cmd, env=env, cwd=str(self.folder / "cwd"), stdin=subprocess.DEVNULL,
                stdout=out, stderr=out, start_new_session=True, close_fds=True,
            )  # fmt: skip
        finally:
            if not fd:
                out.close()
        self.started[proc.pid] = proc
        return proc.pid

    def _fork(
        self, kernel_name: str, cards: str, cmd: list[str], env: dict[str, str]
    ) -> int | None:
        """A kernel forked from this key's zygote (0: the zygote is still importing; None: it
        cannot be: start one the cold way)."""
        args = zygote_args(cmd)
        if args is None or not self.zygotes_enabled:
            return None
        key = (kernel_name, cards)
        zygote = self.zygotes.get(key)
        if zygote is not None and (zygote.env != env or not zygote.alive()):
            if not zygote.alive() and not zygote.ready:  # it died importing
                self.zygote_failures[key] = self.zygote_failures.get(key, 0) + 1
            zygote.close()
            zygote = None
        if zygote is None:
            if self.zygote_failures.get(key, 0) >= 3:
                return None
            zygote = Zygote(cmd[0], env, str(self.folder / "cwd"), self.log)
            self.zygotes[key] = zygote
        pid = zygote.fork(args)
        if pid == 0:
            return 0
        if pid is None:
            self.zygote_failures[key] = self.zygote_failures.get(key, 0) + 1
            zygote.close(kill=True)
            del self.zygotes[key]
        return pid

    def _zygote_starting(self, key: tuple[str, str]) -> bool:
        """Whether this key's zygote is still importing (it forks kernels once it is done)."""
        zygote = self.zygotes.get(key)
        return zygote is not None and zygote.starting()

    def _reap(self) -> None:
        for pid, proc in list(self.started.items()):
            if proc.poll() is not None:
                del self.started[pid]
        Zygote.reap_closed()
        for pid in list(self.ports):  # forked ones are reaped by their zygote
            if pid not in self.started and not process_alive(pid):
                del self.ports[pid]

    def _ports_taken(self) -> set[int]:
        return {p for ports in self.ports.values() for p in ports}


def zygote_args(cmd: list[str]) -> list[str] | None:
    """The kernel's arguments when its kernelspec is ipykernel's own (`PYTHON -m
    ipykernel_launcher ARGS...`), which a zygote can fork; None for any other kernel."""
    if len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]:
        return cmd[3:]
    return None


# The zygote's command line, which its kernels keep (what `ps` shows for them): a short stub that
# runs ZYGOTE_CODE from the environment (taken out of it before anything else), and a label.
ZYGOTE_VAR = "MLP_KERNEL_ZYGOTE_CODE"
ZYGOTE_STUB = f"import os; exec(os.environ.pop({ZYGOTE_VAR!r}))"
ZYGOTE_LABEL = ("ipykernel_launcher", "(jupyter-mlp warm kernel)")

# Run by the kernel's interpreter (it need not have jupyter-mlp): import what every IPython kernel
# imports before it runs a cell, then fork one kernel per request line {"argv"} and answer its
# pid. The child is what `python -m ipykernel_launcher ARGV` would be: its own session, stdin
# from /dev/null, output to the zygote's stderr (the pool's log), sys.argv as the launcher's,
# JPY_PARENT_PID its parent, SIGCHLD as the system default. Refuses to start (exit 3) when an
# import left a thread running: forking then is not safe.
ZYGOTE_CODE = r"""
def _zygote():
    import json, os, signal, sys, threading
    parent = os.getppid()
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # as ipykernel_launcher does; the kernel's init_path adds it back
    import importlib.util
    launcher = importlib.util.find_spec("ipykernel_launcher").origin
    from ipykernel import kernelapp, ipkernel, zmqshell  # noqa: F401
    import IPython.core.interactiveshell  # noqa: F401
    # what a kernel imports as it starts, once here (~80 ms a kernel): its debugger's debugpy
    # and pydevd, psutil; the kernel's own start would import them just the same
    for name in ("ipykernel.debugger", "psutil", "pdb", "sqlite3", "IPython.core.completerlib"):
        try:
            __import__(name)
        except Exception:
            pass
    if threading.active_count() != 1:
        sys.exit(3)
    import gc

    # what is imported here is shared by every kernel forked: frozen, the kernels' collector
    # leaves it alone (a collection would walk it, and copy every page it touches)
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the system reaps the kernels
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        argv = json.loads(line)["argv"]
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.close(null)
                out.close()
                os.environ["JPY_PARENT_PID"] = str(os.getppid())
                sys.argv = [launcher, *argv]
                kernelapp.launch_new_instance(argv=argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
    # The pool let go (or its process died): the kernels forked here watch this process (their
    # JPY_PARENT_PID), so it stays while the pool's process lives, as their parent would.
    import time
    while os.getppid() == parent:
        time.sleep(0.2)
_zygote()
"""


class Zygote:
    """One interpreter with ipykernel imported, forking kernels on request: a kernel is ready in
    ~150 ms instead of the ~0.5-1 s of a cold start (most of which is imports), so the pool
    refills before the next stage of a pipeline asks. One per (kernel name, card set), started
    with the environment its kernels would have had (STARTUP_ENV included), so a forked kernel
    is the kernel a cold start would give, down to its imported modules. Two differences: the
    kernels of one zygote share its string hash seed (set PYTHONHASHSEED to choose), and what
    the zygote imported is frozen out of their collector (gc.get_freeze_count() > 0);
    MLP_KERNEL_ZYGOTE=0 starts them the cold way."""

    START_S = 30.0
    closed: list[subprocess.Popen] = []  # let go (close), reaped once they exit (reap_closed)

    def __init__(self, python: str, env: dict[str, str], cwd: str, log: Any) -> None:
        self.env = env
        fd = isinstance(log, int)
        err: Any = log if fd else open(log or os.devnull, "ab")  # noqa: SIM115
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                [python, "-c", ZYGOTE_STUB, *ZYGOTE_LABEL], env={**env, ZYGOTE_VAR: ZYGOTE_CODE},
                cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        finally:
            if not fd:
                err.close()
        self.ready = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def starting(self) -> bool:
        """Alive and still importing (it has not said it is ready)."""
        proc = self.proc
        if self.ready or proc is None or proc.poll() is not None:
            return False
        return not self._waiting(proc)

    def fork(self, argv: list[str]) -> int | None:
        """A new kernel's pid; 0 while the zygote is still starting; None when it does not
        answer (it is then closed)."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            return None
        try:
            if not self.ready:
                if not self._waiting(proc):
                    return 0  # still importing
                self.ready = "ready" in self._answer(proc)
            proc.stdin.write((json.dumps({"argv": argv}) + "\n").encode())
            proc.stdin.flush()
            answer = self._answer(proc)
        except (OSError, ValueError, TimeoutError) as exc:
            print(
                f"jupyter-mlp: the kernel zygote failed ({exc}); kernels start cold",
                file=sys.stderr,
            )
            self.close()
            return None
        pid = answer.get("pid")
        return pid if isinstance(pid, int) and pid > 0 else None

    def wait_ready(self, timeout: float) -> bool:
        """Whether the zygote has finished its imports, waiting up to `timeout` s for it."""
        proc = self.proc
        if self.ready or proc is None or proc.stdout is None:
            return self.ready
        import select

        if select.select([proc.stdout], [], [], timeout)[0]:
            try:
                self.ready = "ready" in self._answer(proc)
            except (OSError, ValueError, TimeoutError):
                self.close(kill=True)
        return self.ready

    @staticmethod
    def _waiting(proc: subprocess.Popen) -> bool:
        """Whether the zygote has said something (or exited): readable now."""
        import select

        assert proc.stdout is not None
        return bool(select.select([proc.stdout], [], [], 0)[0])

    def _answer(self, proc: subprocess.Popen) -> dict[str, Any]:
        import select

        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], self.START_S)
        if not ready:
            raise TimeoutError(f"no answer in {self.START_S:.0f} s")
        line = proc.stdout.readline()
        if not line:
            raise OSError(f"it exited ({proc.poll()})")
        found = json.loads(line)
        if not isinstance(found, dict):
            raise ValueError(f"a bad answer {line[:80]!r}")
        return found

    def close(self, kill: bool = False) -> None:
        """Let the zygote go: it forks no more and stays, for the kernels it forked (their jobs'
        to stop), until this process ends; with kill (it hangs), stop it now."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        if kill and proc.poll() is None:
            kill_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        Zygote.closed.append(proc)

    @classmethod
    def reap_closed(cls) -> None:
        cls.closed[:] = [p for p in cls.closed if p.poll() is None]


class AdoptedKernel:
    """Job side: make an (async) KernelManager manage a pooled kernel, so that nbclient connects to
    it instead of starting one, and shuts it down as its own at the end."""

    def __init__(self, kernel: PooledKernel) -> None:
        self.kernel = kernel

    def adopt(self, km: Any) -> Any:
        km.connection_file = self.kernel.connection_file
        km.load_connection_file()
        km._connection_file_written = True  # so cleanup removes it, as for a kernel it wrote
        km.provisioner = _provisioner_class()(
            kernel_id=km.kernel_id or str(uuid.uuid4()), kernel_spec=km.kernel_spec, parent=km,
            pid=self.kernel.pid, start=self.kernel.start,
        )  # fmt: skip
        return km


_provisioner: type | None = None


def _provisioner_class() -> type:
    """A jupyter_client provisioner for a kernel process this process did not start (built on
    first use: jupyter_client is not imported at module import)."""
    global _provisioner
    if _provisioner is not None:
        return _provisioner
    from jupyter_client.provisioning import KernelProvisionerBase

    class AdoptedProvisioner(KernelProvisionerBase):  # type: ignore[misc]
        def __init__(self, pid: int, start: str | None, **kw: Any) -> None:
            super().__init__(**kw)
            self.pid: int | None = pid
            self.pgid = pid  # started in its own session
            self._start = start

        @property
        def has_process(self) -> bool:
            return self.pid is not None

        async def poll(self) -> int | None:
            if self.pid is not None and process_alive(self.pid, self._start):
                return None
            return 0

        async def wait(self) -> int | None:
            while await self.poll() is None:
                await asyncio.sleep(0.02)
            return 0

        async def send_signal(self, signum: int) -> None:
            kill_group(self.pgid, signum)

        async def kill(self, restart: bool = False) -> None:
            kill_group(self.pgid, signal.SIGKILL)

        async def terminate(self, restart: bool = False) -> None:
            kill_group(self.pgid, signal.SIGTERM)

        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            raise RuntimeError("a warm kernel is adopted, not launched")

        async def cleanup(self, restart: bool = False) -> None:
            self.pid = None

    _provisioner = AdoptedProvisioner
    return _provisioner
