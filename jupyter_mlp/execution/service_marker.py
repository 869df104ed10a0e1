"""The marker of the JobService running for a store on this machine (`<home>/jobs/service.json`):
job processes and the CLI read it to leave dispatching to that service."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from .processes import proc_start, process_alive


def marker_path(home: Path) -> Path:
    return home / "jobs" / "service.json"


def service_info(home: Path) -> dict[str, Any] | None:
    """The JobService running on this machine for this store, if any: {"pid", "host", "dask",
    "dask_scheduler"} ("dask": it dispatches dask jobs, i.e. it is a Jupyter server that workers
    report to; "dask_scheduler": its default scheduler)."""
    try:
        data = json.loads(marker_path(home).read_text())
    except (OSError, ValueError):
        return None
    if data.get("host") == socket.gethostname() and process_alive(
        int(data["pid"]), data.get("start")
    ):
        return data
    return None


def service_running(home: Path) -> bool:
    """Is a JobService running on this machine for this store? (Job processes then leave the
    dispatching to it.)"""
    return service_info(home) is not None


def write_marker(home: Path, **info: Any) -> None:
    """Say that this process's JobService dispatches for the store at `home`."""
    marker = marker_path(home)
    marker.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "start": proc_start(os.getpid()), "host": socket.gethostname()}
    marker.write_text(json.dumps({**me, **info}))


def remove_marker(home: Path) -> None:
    """Take this process's marker away (another process's is left alone)."""
    try:
        data = json.loads(marker_path(home).read_text())
        if data.get("pid") == os.getpid():
            marker_path(home).unlink()
    except (OSError, ValueError):
        pass
