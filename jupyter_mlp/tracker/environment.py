"""What a run ran on: Python, packages, git state of the notebook's folder, host, user, kernel."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
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
    """getpass.getuser() without importing getpass (and termios): the login environment
    variables, else the password database, else the uid."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except Exception:  # no passwd entry in some containers, or no pwd (Windows)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


# What does not change while a process lives, or changes only with what `packages_stamp` sees.
_MEMO: dict[str, Any] = {}


def packages_stamp() -> list[list[Any]]:
    """What the packages found depend on: each folder of sys.path where packages are installed
    (under the interpreter's prefix, or a site-packages) with its mtime, as installing or
    removing one adds or removes an entry (a dist-info folder, a .pth file) there; and for the
    other folders (the working directory, a script's folder, PYTHONPATH's: written to all the
    time, and different from one script to the next) only the distributions they hold, so
    that the first run of each new script or folder does not scan every package again. A
    folder's listing is kept while its mtime stays (each run's start reads the stamp)."""
    stamp: list[list[Any]] = []
    local: list[str] = []
    for entry in sys.path:
        installed = _installed_here(entry)
        try:
            st = os.stat(entry or ".")
        except OSError:
            if installed:
                stamp.append([entry, None])
            continue
        if installed:
            stamp.append([entry, st.st_mtime_ns])
        else:
            local.extend(_distributions_in(entry or ".", st))
    stamp.append(["(distributions elsewhere)", sorted(local)])
    return stamp


_DIST_SUFFIXES = (".dist-info", ".egg-info")
_INSTALLED: dict[str, bool] = {}  # absolute sys.path entry -> _installed_here
_LISTED: dict[tuple[int, int], tuple[int, list[str]]] = {}  # folder -> (mtime, distributions)


def _distributions_in(folder: str, st: os.stat_result) -> list[str]:
    """The distributions a folder holds, listed again only when its mtime moved. A listing made
    within 0.1 s of the mtime is not kept: a file system's clock is coarse, and an entry added
    in the same tick would not move it."""
    key = (st.st_dev, st.st_ino)
    kept = _LISTED.get(key)
    if kept is not None and kept[0] == st.st_mtime_ns:
        return kept[1]
    try:
        with os.scandir(folder) as found:
            names = [f.name for f in found if f.name.endswith(_DIST_SUFFIXES)]
    except OSError:
        return []
    if time.time_ns() - st.st_mtime_ns > 100_000_000:
        _LISTED[key] = (st.st_mtime_ns, names)
    return names


def _installed_here(entry: str) -> bool:
    """Whether a sys.path entry is an installation folder (kept per absolute entry: the
    interpreter's prefixes do not move)."""
    if not entry:
        return False
    known = _INSTALLED.get(entry)
    if known is not None:
        return known
    path = os.path.abspath(entry)
    found = (
        "site-packages" in path
        or "dist-packages" in path
        or any(path.startswith(p + os.sep) or path == p for p in {sys.prefix, sys.base_prefix})
    )
    if os.path.isabs(entry):
        _INSTALLED[entry] = found
    return found


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
    return dict(_facts(cache_dir)[0])


def facts_known() -> bool:
    """Whether capture() answers from this process's memo (no sys.path folder changed)."""
    return _MEMO.get("stamp") == packages_stamp()


def _facts(cache_dir: str | os.PathLike | None) -> tuple[dict[str, str], dict[str, Any]]:
    """(packages, platform facts), from the process memo, else the disk cache, else found (and
    cached). The platform facts are kept with the packages: platform.platform() runs `uname -p`
    (a subprocess, ~10 ms); they are found again when the kernel (os.uname) changes."""
    import json

    stamp = packages_stamp()
    if _MEMO.get("stamp") == stamp:
        return _MEMO["packages"], _MEMO["platform"]
    uname = list(os.uname()) if hasattr(os, "uname") else None
    found = facts = None
    file = None
    if cache_dir is not None:
        import zlib

        kept = [e for e in sys.path if _installed_here(e)]  # the stamp tells the others apart
        key = f"{zlib.crc32(json.dumps([sys.executable, kept]).encode()):08x}"
        file = Path(cache_dir) / f"packages-{key}.json"
        try:
            doc = json.loads(file.read_text())
            if doc.get("stamp") == stamp and isinstance(doc.get("packages"), dict):
                found = {str(k): str(v) for k, v in doc["packages"].items()}
            if doc.get("uname") == uname and isinstance(doc.get("platform"), dict):
                facts = doc["platform"]
        except (OSError, ValueError, AttributeError):
            pass
    dirty = found is None or facts is None
    if found is None:
        found = _scan_packages()
    if facts is None:
        facts = _platform_facts()
    if dirty and file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
            doc = {"stamp": stamp, "packages": found, "uname": uname, "platform": facts}
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, file)
        except OSError:
            pass  # a read-only home: the process keeps its own copy
    _MEMO.update(stamp=stamp, packages=found, platform=facts)
    return found, facts


def _platform_facts() -> dict[str, Any]:
    import platform

    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def capture(cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    found, facts = _facts(cache_dir)
    return {
        **facts,
        "cwd": os.getcwd(),
        "packages": dict(found),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def _git(directory: Path, *args: str) -> str | None:
    """git's output, read without taking the repository's optional locks: a plain `git status`
    rewrites a stale index under `.git/index.lock`, so the user's own `git commit` at that moment
    failed ("index.lock: File exists"), and a git killed with its kernel left the lock behind."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args], cwd=directory, capture_output=True,
            timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


GIT_SHARE_S = 1.0  # runs started this close together in one process share one read of git


def git_state(directory: str | os.PathLike) -> tuple[dict[str, Any] | None, str | None]:
    """({commit, branch, dirty, root}, diff text or None) of the repository holding `directory`.
    Read fresh for a run (commits and edits happen between runs) in one `git status` call, plus
    `git diff` when the tree is dirty; only the repository's root is kept per folder. Runs that
    start in one process within GIT_SHARE_S of a read of the same folder, its HEAD and index
    untouched since, share that read (a loop of short runs does not start git for each), and a
    run whose read is under way waits for it rather than starting another."""
    where = str(Path(directory).absolute())
    with _GIT_LOCK:
        shared = _GIT_READS.get(where)
        reusable = shared is not None and (not shared.done.is_set() or shared.fresh())
        if not reusable:
            shared = _GIT_READS[where] = _GitRead()
    assert shared is not None
    if reusable:
        shared.done.wait(30)
        return shared.result()
    try:
        shared.found = _read_git_state(Path(directory))
        shared.stamp = _git_stamp(shared.found)
    finally:
        shared.done.set()
    return shared.result()


def shared_git_read(directory: str | os.PathLike) -> _GitRead | None:
    """The finished read of `directory` a run starting now may share, without waiting."""
    with _GIT_LOCK:
        shared = _GIT_READS.get(str(Path(directory).absolute()))
    if shared is not None and shared.done.is_set() and shared.fresh():
        return shared
    return None


def remember_diff(directory: str | os.PathLike, store: str, digest: str) -> None:
    """The blob the diff of the latest read of `directory` was stored as, in `store`."""
    with _GIT_LOCK:
        shared = _GIT_READS.get(str(Path(directory).absolute()))
    if shared is not None:
        shared.digests[store] = digest


class _GitRead:
    """One read of a folder's git state, shared by the runs that start around it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.at = time.monotonic()
        self.stamp: Any = None
        self.found: tuple[dict[str, Any] | None, str | None] = (None, None)
        self.digests: dict[str, str] = {}  # store -> the diff's blob there

    def fresh(self) -> bool:
        return time.monotonic() - self.at < GIT_SHARE_S and _git_stamp(self.found) == self.stamp

    def result(self) -> tuple[dict[str, Any] | None, str | None]:
        """A copy: each run gets its own dict."""
        info, diff = self.found
        return (dict(info) if info is not None else None), diff


_GIT_LOCK = threading.Lock()
_GIT_READS: dict[str, _GitRead] = {}


def _git_stamp(found: tuple[dict[str, Any] | None, str | None]) -> Any:
    """What moves when a commit, checkout or `git add` happens: HEAD (and the ref it names),
    the index and packed-refs, by mtime."""
    info = found[0]
    if info is None:
        return None
    git_dir = Path(info["root"]) / ".git"
    names = ["HEAD", "index", "packed-refs"]
    try:
        head = (git_dir / "HEAD").read_text()
    except OSError:
        head = ""
    if head.startswith("ref: "):
        names.append(head[5:].strip())
    stamp: list[Any] = [head]
    for name in names:
        try:
            stamp.append(os.stat(git_dir / name).st_mtime_ns)
        except OSError:
            stamp.append(None)
    return stamp


def _read_git_state(directory: Path) -> tuple[dict[str, Any] | None, str | None]:
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
    return {"host": host_name(), "user": user_name(), "pid": os.getpid()}


def host_name() -> str:
    """socket.gethostname() without importing socket (it is uname's nodename on POSIX)."""
    try:
        return os.uname().nodename
    except AttributeError:  # pragma: no cover - Windows
        import socket

        return socket.gethostname()
