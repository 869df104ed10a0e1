"""What a run ran on: Python, packages, git state of the notebook's folder, host, user, kernel."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

GIT_DIFF_LIMIT = 5 * 1024 * 1024


def notebook_path(papermill: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """(path, note). jupyter_server sets JPY_SESSION_NAME for the kernels it starts; elsewhere
    (VS Code, Colab, a terminal) the path is unknown and we say so instead of guessing."""
    path = os.environ.get("JPY_SESSION_NAME")
    if path:
        return path, None
    # the papermill command line, read once by the caller (papermill_parent)
    if papermill is not None and papermill.get("input_path"):
        return papermill["input_path"], None
    return (
        None,
        "unknown notebook: JPY_SESSION_NAME is not set (kernel not started by Jupyter server)",
    )


# papermill 2.x options that take values (the others are flags); `--opt=value` takes none
_PAPERMILL_VALUES = {
    "-p": 2, "--parameters": 2, "-r": 2, "--parameters_raw": 2, "-f": 1, "--parameters_file": 1,
    "-y": 1, "--parameters_yaml": 1, "-b": 1, "--parameters_base64": 1, "--engine": 1,
    "--autosave-cell-every": 1, "-k": 1, "--kernel": 1, "-l": 1, "--language": 1, "--cwd": 1,
    "--stdout-file": 1, "--stderr-file": 1, "--log-level": 1, "--start-timeout": 1,
    "--start_timeout": 1, "--execution-timeout": 1,
}  # fmt: skip


def papermill_parent() -> dict[str, str] | None:
    """{"input_path", "output_path"} (absolute) when this kernel was started by the `papermill`
    command line (its default engine: no JPY_SESSION_NAME, no MLP_RUN_ID), read from the parent
    process's arguments (jupyter_client sets JPY_PARENT_PID); None otherwise. papermill called
    from Python code leaves no such trace."""
    pid = os.environ.get("JPY_PARENT_PID")
    if not pid or not pid.isdigit() or os.environ.get("MLP_RUN_ID"):
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    start = None
    for i, arg in enumerate(argv[:3]):
        if Path(arg).name == "papermill":
            start = i + 1
        elif arg == "-m" and i + 1 < len(argv) and argv[i + 1] == "papermill":
            start = i + 2
    if start is None:
        return None
    positional: list[str] = []
    i = start
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            positional.extend(argv[i + 1 :])
            break
        if arg.startswith("-") and arg != "-":
            i += 1 + (0 if "=" in arg else _PAPERMILL_VALUES.get(arg, 0))
            continue
        if arg:
            positional.append(arg)
        i += 1
    if not positional or "://" in positional[0]:  # a remote notebook: nothing to snapshot here
        return None

    def absolute(path: str) -> str:
        return path if "://" in path else os.path.normpath(os.path.join(cwd, path))

    found = {"input_path": absolute(positional[0])}
    if len(positional) > 1:
        found["output_path"] = absolute(positional[1])
    return found


def user_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


# What does not change while a process lives, or changes only with what `_path_stamp` sees.
_MEMO: dict[str, Any] = {}


def _path_stamp() -> list[list[Any]]:
    """sys.path with each folder's mtime: installing or removing a package adds or removes an
    entry (a dist-info folder, a .pth file) in one of them, which moves its mtime."""
    stamp: list[list[Any]] = []
    for entry in sys.path:
        try:
            stamp.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            stamp.append([entry, None])
    return stamp


def _scan_packages() -> dict[str, str]:
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


def packages(cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """{distribution: version} of this interpreter. Scanning them takes 100 ms or more, so the
    result is kept for the process and, with `cache_dir`, on disk for the next processes of this
    interpreter and sys.path; either is used only while no sys.path folder has changed."""
    import hashlib
    import json

    stamp = _path_stamp()
    if _MEMO.get("stamp") == stamp:
        return dict(_MEMO["packages"])
    found = None
    file = None
    if cache_dir is not None:
        key = hashlib.sha1(json.dumps([sys.executable, sys.path]).encode()).hexdigest()[:16]
        file = Path(cache_dir) / f"packages-{key}.json"
        try:
            doc = json.loads(file.read_text())
            if doc.get("stamp") == stamp and isinstance(doc.get("packages"), dict):
                found = {str(k): str(v) for k, v in doc["packages"].items()}
        except (OSError, ValueError):
            pass
    if found is None:
        found = _scan_packages()
        if file is not None:
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
                tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps({"stamp": stamp, "packages": found}))
                os.replace(tmp, file)
            except OSError:
                pass  # a read-only home: the process keeps its own copy
    _MEMO.update(stamp=stamp, packages=found)
    return dict(found)


def capture(cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    if "platform" not in _MEMO:
        import platform

        _MEMO["platform"] = {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "platform": platform.platform(),
            "machine": platform.machine(),
        }
    return {
        **_MEMO["platform"],
        "cwd": os.getcwd(),
        "packages": packages(cache_dir),
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
    """({commit, branch, dirty, root}, diff text or None) of the repository holding `directory`.
    Read fresh for every run (commits and edits happen between runs) in one `git status` call,
    plus `git diff` when the tree is dirty; only the repository's root is kept per folder."""
    directory = Path(directory)
    if not directory.is_dir():
        return None, None
    roots: dict[str, str | None] = _MEMO.setdefault("git_roots", {})
    where = str(directory.resolve())
    if where not in roots:
        found = _git(directory, "rev-parse", "--show-toplevel")
        roots[where] = found.strip() if found else None
    root = roots[where]
    if root is None:
        return None, None
    status = _git(directory, "status", "--porcelain=v2", "--branch")
    if status is None:
        return None, None
    commit = branch = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            branch = "HEAD" if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    diff = None
    if dirty:
        diff = _git(directory, "diff", "HEAD") if commit else _git(directory, "diff")
        if diff and len(diff) > GIT_DIFF_LIMIT:
            diff = diff[:GIT_DIFF_LIMIT] + "\n... diff truncated by jupyter-mlp ...\n"
    info = {"root": root, "commit": commit, "branch": branch, "dirty": dirty}
    return info, diff


def identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "user": user_name(), "pid": os.getpid()}
