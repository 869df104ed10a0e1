"""The warm launcher's client: where a launcher listens, and how a service talks to it.

A warm launcher (`job_process.py --launcher`) is a process with papermill imported and a pool of
warm kernels (`kernel_pool.py`) that forks job processes. It listens on a Unix socket in the
abstract namespace (no file to go stale, no path length limit) and serves only processes of its
own user (the peer's credentials are checked on every connection).

Its name is a digest of what its forks inherit from it and cannot be told per job: the user,
the interpreter, the store's home, the working directory, the variables read when an interpreter
starts (`STARTUP_ENV`), the process state (umask, affinity, nice value, limits, cgroup), the
pool's settings, how long it stays (`linger`) and a stamp of the installed code. Any other variable is sent with each job: a fork takes the environment of the
client that asked for it, and its kernel gets it through the pool's prelude. So a launcher left
by one command serves the next one from the same place alike, and a change of interpreter,
PYTHONPATH or installed packages gets a launcher of its own.

`linger`: how long a launcher stays once no client is connected and none of its jobs runs. A
server's is 0 (its pool lives with it). A CLI's (`$MLP_KEEP_WARM_S`, default 600 s) lets the
next `jupyter mlp pipeline run` find its kernels warm; `jupyter mlp pool stop` ends it at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .store_address import without_secrets

LAUNCH_TIMEOUT_S = 120.0  # the first launch waits for the launcher's imports
CONNECT_TIMEOUT_S = 30.0  # a launcher binds its socket before its imports: ~0.05 s
KEEP_WARM_S = 600.0
KEEP_WARM_MAX_S = 86400.0  # a day: a longer $MLP_KEEP_WARM_S is taken for a typo
_WARNED: set[str] = set()  # the bad $MLP_KEEP_WARM_S values named already

# Read when the kernel's interpreter starts (or by the dynamic loader): a kernel started with
# other values is not the kernel this job would have had, whatever the prelude sets.
STARTUP_ENV = re.compile(
    r"^(PYTHON\w*|LD_\w+|VIRTUAL_ENV|CONDA_PREFIX|PATH|IPYTHONDIR|JUPYTER_\w+|MPLBACKEND"
    r"|LANG|LC_\w+|TZ)$"
)


def keep_warm(value: float | None = None) -> float:
    """How long a CLI's launcher stays idle: `value`, else $MLP_KEEP_WARM_S, else 600 s. A
    value that is not a number of seconds from 0 to a day is named on stderr, and the default
    taken."""
    if value is None:
        text = os.environ.get("MLP_KEEP_WARM_S")
        if text is None:
            return KEEP_WARM_S
        try:
            value = float(text)
            if not 0.0 <= value <= KEEP_WARM_MAX_S:
                raise ValueError
        except ValueError:
            if text not in _WARNED:
                _WARNED.add(text)
                print(f"jupyter-mlp: MLP_KEEP_WARM_S={text!r} is not a number of seconds from 0 "
                      f"to {KEEP_WARM_MAX_S:g}; the launcher stays {KEEP_WARM_S:g} s",
                      file=sys.stderr)  # fmt: skip
            return KEEP_WARM_S
    return max(0.0, float(value))


def records(home: Path) -> Path:
    """Where each launcher of this store says who it is (`<digest>.json`), for `jupyter mlp pool`."""
    return home / "jobs" / "launchers"


def _code_stamp() -> list[Any]:
    """What changes when the code a launcher imported changes: this package's sources, and the
    installed packages (the tracker's stamp for its package list: an install or removal touches
    their folders)."""
    from ..tracker.environment import packages_stamp

    package = Path(__file__).resolve().parents[1]
    newest = max((p.stat().st_mtime_ns for p in package.rglob("*.py")), default=0)
    return [newest, packages_stamp()]


def _process_state() -> list[Any]:
    """What a fork inherits from the launcher besides its environment, and a job cannot be told:
    the umask, the CPU affinity, the nice value, the resource limits and the cgroup (a command
    run under `taskset`, `ulimit` or `systemd-run -p MemoryMax=` gets a launcher of its own)."""
    import resource

    mask = os.umask(0o022)
    os.umask(mask)
    limits = [resource.getrlimit(getattr(resource, name)) for name in (
        "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_STACK",
    ) if hasattr(resource, name)]  # fmt: skip
    try:
        with open("/proc/self/cgroup") as f:
            cgroup = f.read()
    except OSError:
        cgroup = ""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return [mask, affinity, os.nice(0), limits, cgroup]


def digest(home: Path, python: str, env: dict[str, str], linger: float) -> str:
    """The launcher's name: this user's, for this interpreter, store, folder, interpreter-start
    variables, process state, pool settings, linger and installed code."""
    startup = sorted((k, v) for k, v in env.items() if STARTUP_ENV.match(k))
    pool = [env.get("MLP_KERNEL_POOL"), env.get("MLP_KERNEL_ZYGOTE")]
    key = [os.getuid(), str(home.resolve()), python, os.getcwd(), startup, _process_state(), pool,
           linger, _code_stamp()]  # fmt: skip
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]


def address(name: str) -> str:
    """The socket's name in the abstract namespace (every user sees these names: the uid in the
    digest keeps two users of one venv and store from ever wanting the same one)."""
    return f"\0jupyter-mlp-launcher-{name}"


def peer_is_me(sock: socket.socket) -> bool:
    """Whether the process at the other end runs as this process's user (SO_PEERCRED)."""
    import struct

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def connect(name: str) -> socket.socket | None:
    """A connection to the launcher `name`, if one listens (and runs as this user)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # blocking, whatever socket.setdefaulttimeout says: with a timeout Python waits for it
    # before a recv, MSG_DONTWAIT or not, and Launcher.alive()'s peek must never wait
    sock.settimeout(None)
    try:
        sock.connect(address(name))
        if peer_is_me(sock):
            return sock
    except OSError:
        pass
    sock.close()
    return None


class Launcher:
    """A connection to a warm launcher. `Launcher.open()`: the one that listens for this
    interpreter, store and place, or one started now (it binds in ~0.05 s and imports while the
    caller goes on; the first request waits for it)."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        sock: socket.socket | None = None,
        proc: subprocess.Popen | None = None,
    ) -> None:
        self.name = name
        self.home = Path(env["MLP_HOME"]) if env.get("MLP_HOME") else None
        self.env = env  # what a job forked for this client starts from
        self.sock = sock
        self.proc = proc  # when this client started it
        self._lock = threading.Lock()
        self._buffer = b""
        self._broken = False

    @classmethod
    def open(cls, python: str, home: Path, kernel_pool: int = 1, linger: float = 0.0) -> Launcher:
        env = {**without_secrets(dict(os.environ)), "MLP_HOME": str(home),
               "MLP_KERNEL_POOL": str(kernel_pool)}  # fmt: skip
        name = digest(home, python, env, linger)
        sock = connect(name)
        if sock is not None:
            return cls(name, env, sock)
        folder = home / "jobs"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "launcher.log", "ab") as log:
            proc = subprocess.Popen(
                [python, "-m", "jupyter_mlp.execution.job_process", "--launcher", name,
                 str(linger)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                start_new_session=True, env=env,
            )  # fmt: skip
        return cls(name, env, None, proc)

    @property
    def reused(self) -> bool:
        """Whether this client found the launcher running (its kernels warm)."""
        return self.proc is None

    def _connected(self) -> socket.socket:
        """The connection, made now if the launcher was just started. Two clients may start one
        at once: the second launcher cannot bind the name and exits, and both connect to the
        first."""
        if self.sock is not None:
            return self.sock
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        pause = 0.002
        while True:
            self.sock = connect(self.name)
            if self.sock is not None:
                return self.sock
            gone = self.proc is not None and self.proc.poll() is not None
            if gone:  # ours could not bind (another won: it is about to listen) or crashed
                deadline = min(deadline, time.monotonic() + 1.0)
            if time.monotonic() > deadline:
                raise RuntimeError("the job launcher did not start (see jobs/launcher.log)")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def alive(self) -> bool:
        """Whether it still serves. Asked under the lock every request holds (another thread's
        request must not read its reply between this look and this peek), and the peek never
        waits: a socket with nothing to read is a launcher still there."""
        with self._lock:
            if self._broken:
                return False
            if self.sock is None:
                return self.proc is None or self.proc.poll() is None
            try:
                return bool(self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
            except BlockingIOError:
                return True
            except OSError:
                return False

    def launch(
        self,
        run_id: str,
        env: dict[str, str],
        log: Path,
        timeout: float = LAUNCH_TIMEOUT_S,
        kernel: str | None = None,
        cards: str = "",
        slots: int = 1,
        burst: int = 1,
    ) -> int:
        """Fork a job process (given a warm `kernel` kernel for `cards` if the pool has one);
        its pid. It gets this client's environment with `env` on top. slots: how many jobs this
        client runs at once (what a lingering launcher keeps warm for the next command); burst: how
        many jobs it is starting together with this one.
        Raises when the launcher is gone (the caller may start the job another way), and
        TimeoutError when it did not answer in time (it is then ended; it may have forked the
        job, so the caller must not start it again)."""
        data = self._ask(
            {"run_id": run_id, "env": env, "log": str(log), "kernel": kernel, "cards": cards,
             "environ": self.env, "slots": slots, "burst": burst},
            timeout, kill=True,
        )  # fmt: skip
        return int(data["pid"])

    def reserve(
        self, kernel: str, cards: str, n: int, timeout: float = LAUNCH_TIMEOUT_S, starting: int = 0
    ) -> None:
        """Keep `n` warm kernels for jobs about to come, `starting` of them now (kernels for the
        others are started once those have)."""
        self._ask({"reserve": {"kernel": kernel, "cards": cards, "n": n, "starting": starting}},
                  timeout, kill=True)  # fmt: skip

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        return self._ask({"status": True}, timeout)

    def retire(self) -> None:
        """Tell it to end once no client is connected and none of its jobs runs (sent, not
        waited for: it reads it when it serves, which a launcher still importing does not).
        Its answer is never read, so this client is done: alive() would take it for a launcher
        still there."""
        self._connected().sendall(b'{"retire": true}\n')
        self._broken = True

    def stop(self, timeout: float = 5.0) -> dict[str, Any]:
        """Ask it to end: it stops its idle kernels, and exits once its running jobs have."""
        return self._ask({"stop": True}, timeout)

    def _ask(self, message: dict[str, Any], timeout: float, kill: bool = False) -> dict[str, Any]:
        """Send `message`, wait `timeout` s for the reply. kill: a launcher that does not answer
        a job's request in time is broken for every command that would use it: end it."""
        request = json.dumps(message).encode() + b"\n"
        with self._lock:
            try:
                sock = self._connected()
                sock.sendall(request)
                reply = self._line(sock, time.monotonic() + timeout)
            except Exception as exc:
                self._broken = True
                if kill and isinstance(exc, TimeoutError):
                    self._kill()
                raise
        data = json.loads(reply)
        if "error" in data:
            raise RuntimeError(data["error"])
        return data

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            return
        for record in running(self.home) if self.home else []:
            if record.get("name") == self.name:
                import signal

                os.kill(int(record["pid"]), signal.SIGKILL)

    def _line(self, sock: socket.socket, deadline: float) -> bytes:
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise TimeoutError("the job launcher did not answer")
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("the job launcher exited")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def close(self) -> None:
        """Leave it: a launcher with no client and no job ends (at once, or after its linger)."""
        if self.sock is not None:
            self.sock.close()
        self._broken = True
        if self.proc is not None:  # ours: reap it when it ends, so none lingers as a zombie
            threading.Thread(target=self.proc.wait, name="mlp-launcher-reaper", daemon=True).start()


def running(home: Path) -> list[dict[str, Any]]:
    """The launchers that said they serve this store and still run: their records."""
    from .processes import process_alive

    found = []
    for path in sorted(records(home).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if process_alive(int(record.get("pid", 0)), record.get("start")):
            found.append(record)
        else:  # one that was killed could not take its record away
            path.unlink(missing_ok=True)
    return found


def client(name: str) -> Launcher | None:
    """A client of the running launcher `name` (for status and stop), or None."""
    sock = connect(name)
    return None if sock is None else Launcher(name, {}, sock)


__all__ = ["Launcher", "keep_warm", "running", "client", "STARTUP_ENV", "LAUNCH_TIMEOUT_S"]
