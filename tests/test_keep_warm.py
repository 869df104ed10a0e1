"""A command's warm launcher stays for the next one (`$MLP_KEEP_WARM_S`): the next `jupyter mlp
run` gets a warm kernel that shows it what a cold one would (this command's environment, not
the first's), `jupyter mlp pool` lists and stops it, an idle one ends by itself, another
interpreter start gets a launcher of its own, and only this user's processes are served.
Real CLI processes, launcher and kernels."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from conftest import wait_for, write_notebook
from test_cli_and_scripts import cli
from test_kernel_pool import probe

from jupyter_mlp.execution import launcher
from jupyter_mlp.execution.processes import process_alive
from jupyter_mlp.store import Store, jobs
from jupyter_mlp.store import runs as run_store

PROBE = [
    {"id": "p", "source": "x = 1", "tags": ["parameters"]},
    {"id": "probe", "source": (
        "import os, json\n"
        "print(json.dumps({'x': x, 'ppid': os.getppid(), 'pid': os.getpid(),\n"
        "    'value': os.environ.get('MLP_TEST_VALUE'), 'gone': os.environ.get('MLP_TEST_GONE'),\n"
        "    'cwd': os.getcwd(), 'session': globals().get('__session__')}))"
    )},
]  # fmt: skip


@pytest.fixture
def env(mlp_home, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "JPY_"))}
    yield {**base, "MLP_HOME": str(mlp_home), "MLP_KEEP_WARM_S": "60"}
    for record in launcher.running(mlp_home):  # a failing test leaves nothing running
        os.kill(int(record["pid"]), signal.SIGKILL)


def run(nb, x: int, env: dict) -> tuple[dict, dict]:
    """`jupyter mlp run NB -p x X`: the probe's output and the job's row."""
    cli("run", str(nb), "-p", "x", str(x), env=env)
    store = Store(env["MLP_HOME"])
    try:
        latest = max(run_store.list_runs(store.connect()), key=lambda r: r["created_at"])
        done = run_store.get_run(store.connect(), latest["id"])
        assert done["status"] == "finished", done["error"]
        job = jobs.get_job(store.connect(), latest["id"])
        return probe(store, done), {"pid": job.pid, "kernel_pid": job.kernel_pid}
    finally:
        store.close()


def idle_kernels(home) -> int:
    found = launcher.running(home)
    if len(found) != 1:
        return 0
    one = launcher.client(found[0]["name"])
    if one is None:
        return 0
    try:
        return sum(one.status()["idle_kernels"].values())
    finally:
        one.close()


def test_the_next_command_gets_a_warm_kernel_with_its_own_environment(env, mlp_home, tmp_path):
    nb = write_notebook(tmp_path / "probe.ipynb", PROBE)
    first, first_job = run(nb, 1, {**env, "MLP_TEST_VALUE": "first", "MLP_TEST_GONE": "1"})
    assert (first["x"], first["value"], first["gone"]) == (1, "first", "1")
    [record] = launcher.running(mlp_home)  # the launcher outlived the command
    wait_for(lambda: idle_kernels(mlp_home) >= 1, timeout=30, what="a warm kernel for the next")

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    second, second_job = run(nb, 2, {**env, "MLP_TEST_VALUE": "second", "TMPDIR": str(scratch)})
    assert [r["pid"] for r in launcher.running(mlp_home)] == [record["pid"]]
    # the job's own temporary files (the notebook copy the kernel sees as __session__) follow
    # this command's TMPDIR, not the one the launcher started with
    assert second["session"].startswith(str(scratch)) and not first["session"].startswith(
        str(scratch)
    )
    # the kernel was the pool's (not the job process's child), and saw this command's variables
    assert second["ppid"] != second_job["pid"] and second["pid"] != first["pid"]
    assert (second["x"], second["value"], second["gone"]) == (2, "second", None)
    assert second["cwd"] == first["cwd"] == str(tmp_path)

    listed = cli("pool", "status", env=env).stdout
    assert f"pid {record['pid']}" in listed and "stays 60 s" in listed
    stopped = cli("pool", "stop", env=env).stdout
    assert "stopped" in stopped
    assert not process_alive(int(record["pid"]), record["start"])
    wait_for(lambda: not _pool_kernels(mlp_home), timeout=15, what="its idle kernels to stop")
    assert "no warm launcher" in cli("pool", "status", env=env).stdout


def test_an_idle_launcher_ends_after_its_time_however_often_its_status_is_asked(
    env, mlp_home, tmp_path
):
    """`pool status` (under `watch`, say) is not a use: it used to keep the launcher forever."""
    nb = write_notebook(tmp_path / "probe.ipynb", PROBE)
    run(nb, 1, {**env, "MLP_KEEP_WARM_S": "2"})
    [record] = launcher.running(mlp_home)
    listed = cli("pool", "status", env=env).stdout
    assert "stays 2 s once idle (idle " in listed and "s: ends in " in listed, listed

    def ended() -> bool:
        idle_kernels(mlp_home)  # asks its status, as `pool status` does
        return not process_alive(int(record["pid"]), record["start"])

    wait_for(ended, timeout=20, interval=0.2, what="the idle launcher to end")
    wait_for(lambda: not _pool_kernels(mlp_home), timeout=15, what="its kernels to stop")
    assert not list(launcher.records(mlp_home).glob("*.json"))


def test_another_interpreter_start_gets_its_own_launcher_and_the_old_one_ends(
    env, mlp_home, tmp_path
):
    nb = write_notebook(tmp_path / "probe.ipynb", PROBE)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run(nb, 1, {**env, "PYTHONPATH": str(tmp_path / "a")})
    [old] = launcher.running(mlp_home)
    run(nb, 2, {**env, "PYTHONPATH": str(tmp_path / "b")})
    # a kernel started with another PYTHONPATH is not this job's: a launcher of its own, and
    # the old one is retired once nobody uses it
    wait_for(lambda: not process_alive(int(old["pid"]), old["start"]), timeout=20,
             what="the older launcher to end")  # fmt: skip
    [new] = launcher.running(mlp_home)
    assert new["pid"] != old["pid"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_a_launcher_serves_only_its_own_user(env, mlp_home, tmp_path):
    nb = write_notebook(tmp_path / "probe.ipynb", PROBE)
    run(nb, 1, env)
    [record] = launcher.running(mlp_home)
    code = (
        "import os, socket, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "s.connect('\\0' + sys.argv[1])\n"
        "s.settimeout(10)\n"
        "try:\n"
        "    s.sendall(b'{\"status\": true}\\n')\n"
        "    print(repr(s.recv(4096)))\n"
        "except (BrokenPipeError, ConnectionResetError):\n"  # closed before or while we spoke
        "    print(repr(b''))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, launcher.address(record["name"])[1:]],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    # refused: the connection is closed unanswered
    assert done.stdout.strip() == "b''", done
    mine = launcher.client(record["name"])
    assert mine is not None and mine.status()["pid"] == record["pid"]
    mine.close()


def _pool_kernels(home) -> list[int]:
    folder = str(home / "jobs" / "pool")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(folder):
                    found.append(int(entry))
            except OSError:
                pass
    return [p for p in found if process_alive(p)]


def test_a_bad_request_is_refused_alone(env, mlp_home, tmp_path):
    nb = write_notebook(tmp_path / "probe.ipynb", PROBE)
    run(nb, 1, env)
    [record] = launcher.running(mlp_home)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(launcher.address(record["name"]))
    sock.settimeout(10)
    sock.sendall(b'not json\n[1, 2]\n{"run_id": "x"}\n{"reserve": {"n": "many"}}\n')
    replies = b""
    while replies.count(b"\n") < 4:
        replies += sock.recv(4096)
    assert ["error" in json.loads(line) for line in replies.splitlines()] == [True] * 4
    sock.close()
    second, _ = run(nb, 2, env)  # the launcher still serves
    assert second["x"] == 2


def test_a_launcher_that_hangs_is_ended_not_waited_for_again(mlp_home):
    """A launcher that stops answering (here: stopped) is killed by the client that timed out,
    so the next command starts a new one instead of waiting on it too."""
    first = launcher.Launcher.open(sys.executable, mlp_home, 0, linger=30.0)
    pid = first.status(timeout=60)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        second = launcher.Launcher.open(sys.executable, mlp_home, 0, linger=30.0)
        assert second.reused
        with pytest.raises(TimeoutError):
            second.reserve("python3", "", 0, timeout=1.0)
        wait_for(lambda: not process_alive(pid), timeout=10, what="the hung launcher to be killed")
        third = launcher.Launcher.open(sys.executable, mlp_home, 0, linger=30.0)
        assert not third.reused and third.status(timeout=60)["pid"] != pid
        third.stop()
        for one in (first, second, third):
            one.close()
    finally:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_two_launchers_started_together_leave_one(mlp_home, tmp_path, monkeypatch):
    """Two commands from two folders start launchers at the same moment: the newer retires the
    older (once nobody uses it), never both each other."""
    started = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        started.append(launcher.Launcher.open(sys.executable, mlp_home, 0, linger=30.0))
    for one in started:  # a use, as a command's (its status alone would not keep it)
        one.reserve("python3", "", 0, timeout=60)
    pids = [one.status(timeout=60)["pid"] for one in started]
    older, newer = sorted(launcher.running(mlp_home), key=lambda r: (r["since"], r["name"]))
    for one in started:
        one.close()
    wait_for(lambda: not process_alive(int(older["pid"]), older["start"]), timeout=20,
             what="the older launcher to end")  # fmt: skip
    assert process_alive(int(newer["pid"]), newer["start"]) and int(newer["pid"]) in pids
    launcher.client(newer["name"]).stop()


def test_asking_whether_the_launcher_lives_never_waits_on_another_threads_reply(monkeypatch):
    """A service's dispatch thread asks `alive()` while its driver thread waits for a reply to
    `reserve()`. The reply made the socket readable, the request took it, and the look that saw
    it readable then waited for a byte that never came: both threads hung, and the pipeline with
    them (found by a 4-stage chain run 4 times in one service). Here a fake launcher answers
    every request while another thread asks `alive()` over and over, and a look at the socket
    that finds it readable is slow to go on (as a thread the scheduler set aside is)."""
    import threading
    import time

    real_select = launcher.select.select

    def slow_select(r, w, x, timeout=None):
        ready = real_select(r, w, x, timeout)
        if timeout == 0 and ready[0]:
            time.sleep(0.002)
        return ready

    monkeypatch.setattr(launcher.select, "select", slow_select)
    ours, theirs = socket.socketpair()
    client = launcher.Launcher("test", {}, ours)

    def serve() -> None:
        with theirs.makefile("rb") as lines:
            for _line in lines:
                theirs.sendall(b'{"ok": true}\n')

    threading.Thread(target=serve, daemon=True).start()
    stop = threading.Event()
    answers: list[bool] = []

    def look() -> None:
        while not stop.is_set():
            answers.append(client.alive())

    looking = threading.Thread(target=look, daemon=True)
    looking.start()
    asking = threading.Thread(
        target=lambda: [client.reserve("python3", "", 1, timeout=5.0) for _ in range(300)],
        daemon=True,
    )
    asking.start()
    asking.join(timeout=60)
    stop.set()
    looking.join(timeout=5)
    assert not asking.is_alive() and not looking.is_alive(), "a thread hung on the socket"
    assert answers and all(answers)
    ours.close()
    theirs.close()


def test_the_look_at_the_launcher_never_waits_even_under_a_default_socket_timeout():
    """Python waits for a socket's timeout before a recv, MSG_DONTWAIT or not: a process that set
    socket.setdefaulttimeout (a library in the server may) made each alive() wait that long,
    holding the dispatcher's locks, and then call a healthy launcher dead."""
    import time

    name = f"test-timeout-{os.getpid()}"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(launcher.address(name))
    listening.listen()
    default = socket.getdefaulttimeout()
    socket.setdefaulttimeout(1.5)
    try:
        sock = launcher.connect(name)
        assert sock is not None
        client = launcher.Launcher(name, {}, sock)
        started = time.monotonic()
        assert client.alive()
        assert time.monotonic() - started < 0.5
        client.close()
    finally:
        socket.setdefaulttimeout(default)
        listening.close()


def test_a_keep_warm_that_is_not_a_number_of_seconds_is_named_and_the_default_taken(
    env, mlp_home, tmp_path
):
    nb = write_notebook(tmp_path / "probe.ipynb", PROBE)
    for value in ("abc", "-5", "1e9"):
        done = cli("run", str(nb), env={**env, "MLP_KEEP_WARM_S": value})
        assert f"MLP_KEEP_WARM_S={value!r} is not a number of seconds" in done.stderr, done.stderr
        assert "stays 600 s once idle" in cli("pool", "status", env=env).stdout
        cli("pool", "stop", env=env)
