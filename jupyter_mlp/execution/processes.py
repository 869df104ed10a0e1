"""Processes on this machine: one process named by (pid, start time), liveness, process groups."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..store.runs import pid_alive


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].decode().split()


def proc_start(pid: int) -> str | None:
    """The process's start time (clock ticks after boot): with the pid, it names one process."""
    stat = _stat(pid)
    return stat[19] if stat and len(stat) > 19 else None


def process_alive(pid: int, start: str | None = None) -> bool:
    """Alive and still the same process (a zombie counts as gone)."""
    if os.path.isdir("/proc"):
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return start is None or len(stat) <= 19 or stat[19] == start
    return pid_alive(pid)


def group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process in the process group."""
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    target = str(pgid)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat and len(stat) > 2 and stat[2] == target and stat[0] not in ("Z", "X"):
            return True
    return False


def kill_group(pgid: int | None, sig: int) -> None:
    """Signal a process group, never our own (nor init's); gone or foreign groups are skipped."""
    if not pgid or pgid <= 1 or pgid == os.getpgid(0):
        return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def spawn_detached(module: str, args: list[str], store: Any, log: Path) -> int:
    """`python -m module args` in its own process session, so it outlives the terminal or server
    that started it (a pipeline or sweep driver), opening `store` (told its addresses: a server
    keeps a team store's out of its own environment); output appended to `log`. Its pid."""
    import subprocess
    import sys

    from .store_address import store_env

    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--home", str(store.home)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            env={**os.environ, **store_env(store)},
        )  # fmt: skip
    return proc.pid


def driver_alive(row: dict[str, Any]) -> bool:
    """Whether the driver process a sweep's or pipeline run's row names (`pid`, `host`) still
    runs. One on another machine counts as running: we cannot tell, so we do not take over."""
    if not row.get("pid"):
        return False
    if row.get("host") and row["host"] != os.uname().nodename:
        return True
    return process_alive(int(row["pid"]), None)
