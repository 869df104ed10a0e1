"""What a run records of its environment, and what it costs: the package list is scanned once
per interpreter and sys.path (kept in the process and on disk) and scanned again as soon as a
package is installed or removed; the git state is read fresh for every run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jupyter_mlp.tracker import environment


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path holding one installed distribution; the process memo cleared."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(environment, "_MEMO", {})
    scans = recorded(monkeypatch, environment, "_scan_packages")
    install(folder, "mlp-fake-one", "1.0")
    return folder, scans


def recorded(monkeypatch, owner, name: str) -> list:
    """The calls to owner.name from now on (each one's first argument, None without one); the
    real function still runs."""
    calls: list = []
    real = getattr(owner, name)

    def spy(*args, **kw):
        calls.append(args[0] if args else None)
        return real(*args, **kw)

    monkeypatch.setattr(owner, name, spy)
    return calls


def install(folder, name: str, version: str) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_packages_are_scanned_once_until_one_is_installed(site, tmp_path, monkeypatch):
    folder, scans = site
    cache = tmp_path / "cache"
    first = environment.packages(cache)
    assert first["mlp-fake-one"] == "1.0" and len(scans) == 1
    assert environment.packages(cache) == first and len(scans) == 1  # the process keeps it
    monkeypatch.setattr(environment, "_MEMO", {})  # a new process of this interpreter
    assert environment.packages(cache) == first and len(scans) == 1  # read from the disk cache
    install(folder, "mlp-fake-two", "2.0")  # pip install: the folder's mtime moves
    again = environment.packages(cache)
    assert again["mlp-fake-two"] == "2.0" and len(scans) == 2
    monkeypatch.setattr(environment, "_MEMO", {})
    assert environment.packages(cache)["mlp-fake-two"] == "2.0" and len(scans) == 2


def test_a_new_script_folder_or_a_file_written_in_the_working_directory_costs_no_scan(
    site, tmp_path, monkeypatch
):
    """The working directory and a script's folder are on sys.path and written to all the time
    (outputs, checkpoints), and differ from one script to the next: only a distribution
    appearing in one of them calls for a new scan (the first mlp.track() of each new script
    scanned every package, ~0.15 s of its finish())."""
    folder, scans = site
    cache = tmp_path / "cache"
    environment.packages(cache)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend("")
    for script_folder in ("a", "b"):
        (work / script_folder).mkdir()
        (work / "model.ckpt").write_bytes(b"weights")
        monkeypatch.syspath_prepend(str(work / script_folder))
        monkeypatch.setattr(environment, "_MEMO", {})  # a new process
        assert environment.packages(cache)["mlp-fake-one"] == "1.0"
    assert len(scans) == 1
    install(work, "mlp-fake-local", "0.1")  # a distribution in the working directory
    monkeypatch.setattr(environment, "_MEMO", {})
    assert environment.packages(cache)["mlp-fake-local"] == "0.1" and len(scans) == 2


def test_a_folder_is_listed_again_only_when_its_mtime_moves(tmp_path, monkeypatch):
    """Each run's start reads the stamp: a folder on sys.path that is not an installation is
    listed once while its mtime stays, and again when a distribution appears in it. A listing
    made in the mtime's own moment is not kept (a coarse file-system clock would not move it
    for an entry added in the same tick)."""
    import os
    import time

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.syspath_prepend(str(work))
    monkeypatch.setattr(environment, "_LISTED", {})
    listed = recorded(monkeypatch, os, "scandir")
    mine = lambda: [x for x in listed if x == str(work)]  # noqa: E731

    seen = work.stat().st_mtime_ns
    stamp = environment.packages_stamp()
    install(work, "mlp-fake-same-tick", "1.0")
    os.utime(work, ns=(seen, seen))  # added in the same tick: the mtime did not move
    assert environment.packages_stamp() != stamp  # seen: the fresh listing was not kept
    old = time.time_ns() - 5 * 10**9
    os.utime(work, ns=(old, old))
    environment.packages_stamp()
    count = len(mine())
    stamp = environment.packages_stamp()
    assert len(mine()) == count  # kept while the mtime stays
    install(work, "mlp-fake-later", "2.0")
    assert environment.packages_stamp() != stamp and len(mine()) == count + 1
    assert "mlp_fake_later-2.0.dist-info" in environment.packages_stamp()[-1][1]


def test_a_broken_or_unwritable_cache_only_costs_a_scan(site, tmp_path, monkeypatch):
    folder, scans = site
    cache = tmp_path / "cache"
    environment.packages(cache)
    (file,) = cache.iterdir()
    file.write_text("{not json")
    monkeypatch.setattr(environment, "_MEMO", {})
    assert environment.packages(cache)["mlp-fake-one"] == "1.0" and len(scans) == 2
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setattr(environment, "_MEMO", {})
    assert environment.packages(blocked / "cache")["mlp-fake-one"] == "1.0"


def git(cwd, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def test_git_state_is_read_fresh_for_every_run(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "_MEMO", {})
    monkeypatch.setattr(environment, "_GIT_READS", {})
    monkeypatch.setattr(environment, "GIT_SHARE_S", 0.0)  # runs far apart
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.py").write_text("x = 1\n")
    info, diff = environment.git_state(repo)
    assert info == {"root": str(repo.resolve()), "commit": None, "branch": "main", "dirty": True}
    git(repo, "add", "a.py")
    git(repo, "commit", "-q", "-m", "one")
    info, diff = environment.git_state(repo)
    assert info["commit"] == git(repo, "rev-parse", "HEAD") and not info["dirty"] and diff is None
    (repo / "a.py").write_text("x = 2\n")
    info, diff = environment.git_state(repo)
    assert info["dirty"] and "+x = 2" in diff
    git(repo, "commit", "-q", "-am", "two")
    info, _ = environment.git_state(repo)
    assert info["commit"] == git(repo, "rev-parse", "HEAD") and not info["dirty"]
    git(repo, "checkout", "-q", "--detach")
    assert environment.git_state(repo)[0]["branch"] == "HEAD"
    assert environment.git_state(tmp_path) == (None, None)  # not a repository


def committed_repo(tmp_path):
    """A repository with a.py committed once, on branch main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", "a.py")
    git(repo, "commit", "-q", "-m", "one")
    return repo


def test_reading_git_state_never_rewrites_the_index(tmp_path, monkeypatch):
    """A run's read of git takes no lock of the repository: a plain `git status` on a file whose
    mtime changed rewrites the index under .git/index.lock, which the user's own git command at
    that moment would find taken (and a git killed with its kernel would leave behind)."""
    import os

    monkeypatch.setattr(environment, "_MEMO", {})
    monkeypatch.setattr(environment, "_GIT_READS", {})
    repo = committed_repo(tmp_path)
    os.utime(repo / "a.py", (1, 1))  # same content, other stat: the index looks stale
    index = repo / ".git" / "index"
    before = (index.stat().st_ino, index.stat().st_mtime_ns)
    info, diff = environment.git_state(repo)
    assert info is not None and not info["dirty"] and diff is None
    assert (index.stat().st_ino, index.stat().st_mtime_ns) == before
    git(repo, "status", "--porcelain")  # (what the test relies on: git's own status rewrites it)
    assert (index.stat().st_ino, index.stat().st_mtime_ns) != before


def test_runs_starting_together_share_one_read_of_git_until_a_commit(tmp_path, monkeypatch):
    """A loop of short runs in one process starts git once a second, not once a run; a commit
    (or `git add`, a checkout) in between is seen at once."""
    monkeypatch.setattr(environment, "_MEMO", {})
    monkeypatch.setattr(environment, "_GIT_READS", {})
    monkeypatch.setattr(environment, "GIT_SHARE_S", 60.0)
    calls = []
    real = environment._git
    monkeypatch.setattr(environment, "_git", lambda d, *a: calls.append(a[0]) or real(d, *a))
    repo = committed_repo(tmp_path)
    first = environment.git_state(repo)
    reads = calls.count("status")
    assert [environment.git_state(repo) for _ in range(5)] == [first] * 5
    assert calls.count("status") == reads
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    info, _ = environment.git_state(repo)
    assert calls.count("status") == reads + 1 and info["commit"] == git(repo, "rev-parse", "HEAD")
    info["dirty"] = "changed by a caller"
    assert environment.git_state(repo)[0]["dirty"] is False  # each run gets its own copy


def test_capture_keeps_the_interpreter_facts(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "_MEMO", {})
    env = environment.capture(tmp_path / "cache")
    assert env["python"] == sys.version.split()[0] and env["executable"] == sys.executable
    monkeypatch.chdir(tmp_path)
    assert environment.capture(tmp_path / "cache")["cwd"] == str(tmp_path)


def test_a_process_killed_right_after_finish_keeps_the_whole_run(tmp_path):
    """finish() returns once the run is durable, environment and git included: a process that
    is killed (SIGKILL, no exit handlers) the moment it returns loses nothing."""
    from jupyter_mlp.store import Store
    from jupyter_mlp.store import runs as run_store

    code = (
        "import os, signal, jupyter_mlp as mlp\n"
        "mlp.track('killed', project='k', gpu=False)\n"
        "mlp.log_metric('loss', 0.5)\n"
        "mlp.finish()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={**__import__("os").environ, "MLP_HOME": str(home)}, timeout=60,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr
    conn = Store(home).connect()
    (row,) = run_store.list_runs(conn, limit=10)
    run = run_store.get_run(conn, row["id"], with_cells=False)
    assert run["status"] == "finished" and run["metrics"]["loss"] == 0.5, run
    assert run["env"]["packages"] and run["env"]["cwd"] == str(tmp_path)


def test_finish_does_not_wait_for_git_and_an_exit_right_after_still_records_it(tmp_path):
    """git runs beside the run (here a git that takes 3 s): finish() returns with the run
    finished but its git state not yet there; the script then ends at once, and its exit waits
    for the git state, which is recorded."""
    from jupyter_mlp.store import Store
    from jupyter_mlp.store import runs as run_store

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    slow = tmp_path / "bin"
    slow.mkdir()
    real = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    (slow / "git").write_text(f'#!/bin/sh\nsleep 3\nexec {real} "$@"\n')
    (slow / "git").chmod(0o755)
    home = tmp_path / "home"
    code = (
        "import jupyter_mlp as mlp\n"
        "from jupyter_mlp.store import Store\n"
        "from jupyter_mlp.store import runs\n"
        "run = mlp.track('quick', gpu=False)\n"
        "mlp.log_metric('loss', 0.5)\n"
        "mlp.finish()\n"
        "row = runs.get_run(Store().connect(), run.run_id, with_cells=False)\n"
        "print('AT-FINISH', row['status'], row['git'] is None, bool(row['env']['packages']))\n"
    )
    import os

    env = {**os.environ, "MLP_HOME": str(home), "PATH": f"{slow}:{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "AT-FINISH finished True True" in done.stdout, done.stdout + done.stderr
    conn = Store(home).connect()
    (row,) = run_store.list_runs(conn, limit=10)
    run = run_store.get_run(conn, row["id"], with_cells=False)
    assert run["status"] == "finished" and run["metrics"] == {"loss": 0.5}
    assert run["git"]["commit"] == git(repo, "rev-parse", "HEAD"), run["git"]
