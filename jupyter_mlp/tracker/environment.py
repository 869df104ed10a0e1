"""What a run ran on: Python, packages, git state of the notebook's folder, host, user, kernel."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

GIT_DIFF_LIMIT = 5 * 1024 * 1024


def notebook_path() -> tuple[str | None, str | None]:
    """(path, note). jupyter_server sets JPY_SESSION_NAME for the kernels it starts; elsewhere
    (VS Code, Colab, a terminal) the path is unknown and we say so instead of guessing."""
    path = os.environ.get("JPY_SESSION_NAME")
    if path:
        return path, None
    return (
        None,
        "unknown notebook: JPY_SESSION_NAME is not set (kernel not started by Jupyter server)",
    )


def user_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


def packages() -> dict[str, str]:
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():
        try:
            name = dist.metadata["Name"]
        except Exception:
            continue
        if name:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def capture() -> dict[str, Any]:
    import platform

    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cwd": os.getcwd(),
        "packages": packages(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def _git(directory: Path, *args: str) -> str | None:
    import subprocess

    try:
        done = subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def git_state(directory: str | os.PathLike) -> tuple[dict[str, Any] | None, str | None]:
    """({commit, branch, dirty, root}, diff text or None) of the repository holding `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        return None, None
    root = _git(directory, "rev-parse", "--show-toplevel")
    if root is None:
        return None, None
    commit = (_git(directory, "rev-parse", "HEAD") or "").strip() or None
    branch = (_git(directory, "rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None
    status = _git(directory, "status", "--porcelain") or ""
    dirty = bool(status.strip())
    diff = None
    if dirty:
        diff = _git(directory, "diff", "HEAD") if commit else _git(directory, "diff")
        if diff and len(diff) > GIT_DIFF_LIMIT:
            diff = diff[:GIT_DIFF_LIMIT] + "\n... diff truncated by jupyter-mlp ...\n"
    info = {"root": root.strip(), "commit": commit, "branch": branch, "dirty": dirty}
    return info, diff


def identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "user": user_name(), "pid": os.getpid()}
