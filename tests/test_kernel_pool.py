"""Warm kernels (execution/kernel_pool.py): a job given a warm kernel sees what a cold kernel would
have shown it, a kernel serves one job only, a job that needs other cards or another interpreter
start gets a cold kernel, and nothing is left running. Real launcher, real kernels."""

from __future__ import annotations

import json
import os
import signal

import pytest
from conftest import wait_for, write_notebook
from test_execution import executed, wait_final

from jupyter_mlp.execution import kernel_pool
from jupyter_mlp.execution.processes import process_alive
from jupyter_mlp.store import jobs

PROBE = [
    {"id": "p", "source": "x = 1", "tags": ["parameters"]},
    {"id": "probe", "source": (
        "import os, sys, json, helper\n"
        "leaked = 'secret' in globals()\n"
        "secret = x\n"
        "print(json.dumps({'cwd': os.getcwd(), 'helper': helper.VALUE, 'x': x,\n"
        "    'run': os.environ.get('MLP_RUN_ID'), 'kernel': os.environ.get('MLP_KERNEL_NAME'),\n"
        "    'cards': os.environ.get('CUDA_VISIBLE_DEVICES'), 'session': __session__,\n"
        "    'extra': os.environ.get('MLP_TEST_VALUE'), 'leaked': leaked,\n"
        "    'ppid': os.getppid(), 'pid': os.getpid(), 'path0': '' in sys.path}))"
    )},
]  # fmt: skip


def probe(store, run: dict) -> dict:
    out = executed(store, run)
    text = "".join(
        "".join(o.get("text", "")) for c in out["cells"] if c.get("id") == "probe"
        for o in c.get("outputs", [])
    )  # fmt: skip
    return json.loads(text)


def job_pid(store, run_id: str) -> int | None:
    job = jobs.get_job(store.connect(), run_id)
    return job.pid if job else None


@pytest.fixture
def folder(tmp_path):
    # a notebook whose name needs quoting, next to a module it imports
    work = tmp_path / 'it\'s "work" — ü'
    work.mkdir()
    (work / "helper.py").write_text("VALUE = 7\n")
    return work


def test_a_warm_kernel_shows_the_job_what_a_cold_one_would(store, service, folder, monkeypatch):
    nb = write_notebook(folder / "probe 'q'.ipynb", PROBE)
    monkeypatch.setenv("MLP_TEST_VALUE", "a 'quoted' \"value\"\nwith a newline")
    results = {}
    for warm in (False, True):
        svc = service(warm=warm, concurrency=1)
        if warm:  # the pool's kernel is up before the job comes
            wait_for(lambda: list((store.home / "jobs" / "pool").glob("kernel-*.json")),
                     timeout=60, what="a warm kernel")  # fmt: skip
        run_id = svc.submit_notebook(nb, {"x": 5})
        run = wait_final(store, run_id)
        assert run["status"] == "finished", run["error"]
        results[warm] = (probe(store, run), job_pid(store, run_id), run_id)
        svc.stop()
    (cold, cold_job, cold_id), (warm, warm_job, warm_id) = results[False], results[True]
    # a cold kernel is the job process's child; the warm one was the launcher's
    assert cold["ppid"] == cold_job and warm["ppid"] != warm_job
    for key in ("cwd", "helper", "x", "kernel", "cards", "extra", "leaked", "path0"):
        assert warm[key] == cold[key], key
    assert cold["cwd"] == str(folder) and cold["helper"] == 7 and cold["x"] == 5
    assert cold["extra"] == "a 'quoted' \"value\"\nwith a newline" and cold["cards"] == ""
    assert (cold["run"], warm["run"]) == (cold_id, warm_id)
    assert os.path.basename(warm["session"]) == os.path.basename(cold["session"]) == nb.name


def test_a_kernel_serves_one_job_and_none_is_left_behind(store, service, folder):
    nb = write_notebook(folder / "probe.ipynb", PROBE)
    svc = service(warm=True, concurrency=1)
    seen = []
    for x in (1, 2, 3):
        run = wait_final(store, svc.submit_notebook(nb, {"x": x}))
        assert run["status"] == "finished", run["error"]
        seen.append(probe(store, run))
    assert len({p["pid"] for p in seen}) == 3  # never the same kernel twice
    assert not any(p["leaked"] for p in seen)  # no state of an earlier job
    for p in seen:  # each job shut its kernel down
        wait_for(lambda p=p: not process_alive(p["pid"]), timeout=10, what="the kernel to exit")
    wait_for(lambda: list((store.home / "jobs" / "pool").glob("kernel-*.json")),
             timeout=15, what="the pool to refill for the next job")  # fmt: skip
    svc.stop()  # the launcher stops its idle kernels
    wait_for(
        lambda: not [p for p in _kernel_pids() if _in_pool(p, store)],
        timeout=15, what="the idle warm kernels to stop",
    )  # fmt: skip


def test_a_job_on_a_gpu_card_never_gets_a_kernel_started_for_none(store, service, folder):
    nb = write_notebook(folder / "probe.ipynb", PROBE)
    svc = service(warm=True, concurrency=1, executors={"local": {"gpus": "0,1"}})
    wait_for(lambda: list((store.home / "jobs" / "pool").glob("kernel-*.json")),
             timeout=60, what="a warm kernel")  # fmt: skip
    run_id = svc.submit_notebook(nb, {"x": 1}, gpus=1)
    run = wait_final(store, run_id)
    assert run["status"] == "finished", run["error"]
    seen = probe(store, run)
    assert seen["cards"] == "0"
    assert seen["ppid"] == job_pid(store, run_id)  # a cold kernel, started for card 0


def test_of_jobs_claimed_together_one_that_cannot_start_fails_alone(store, service, folder):
    """Of the jobs one round claims, one the launcher cannot start (its log cannot be opened,
    nor by a cold start) fails with the reason; the others run."""
    nb = write_notebook(folder / "probe.ipynb", PROBE)
    queue = service(concurrency=3, dispatch=False)
    ids = [queue.submit_notebook(nb, {"x": x}) for x in (1, 2, 3)]
    (store.home / "jobs" / f"{ids[1]}.log").mkdir(parents=True)  # a folder where its log goes
    service(warm=True, concurrency=3)
    runs = [wait_final(store, run_id) for run_id in ids]
    assert [r["status"] for r in runs] == ["finished", "failed", "finished"], runs[1]["error"]
    assert runs[1]["error"]["ename"] == "JobStartError"
    assert "Is a directory" in runs[1]["error"]["evalue"]
    assert [probe(store, r)["x"] for r in (runs[0], runs[2])] == [1, 3]


def test_a_discarded_kernel_is_gone_even_before_it_leads_its_group(tmp_path):
    """A kernel the pool lets go of a moment after forking it (the reservation fell) has not yet
    called setsid: killing its group alone missed it, and it lived on, idle and untracked."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert os.getpgid(proc.pid) != proc.pid  # in our group, as a fork is before its setsid
        k = kernel_pool.PooledKernel("python3", "", proc.pid, kernel_pool.proc_start(proc.pid),
                                     str(tmp_path / "k.json"), {}, {}, "python")  # fmt: skip
        k.discard()
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()


def test_fits_refuses_other_cards_kernels_and_interpreter_starts():
    k = kernel_pool.PooledKernel(
        "python3", "", 1, None, "/x.json", {"PATH": "/bin", "A": "1"}, {}, "python"
    )
    assert kernel_pool.fits(k, "python3", {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": ""}) is None
    assert "GPU" in kernel_pool.fits(k, "python3", {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0"})
    assert "ir" in kernel_pool.fits(k, "ir", {"PATH": "/bin"})
    assert "PYTHONPATH" in kernel_pool.fits(k, "python3", {"PATH": "/bin", "PYTHONPATH": "/p"})
    assert "LD_PRELOAD" in kernel_pool.fits(k, "python3", {"PATH": "/bin", "LD_PRELOAD": "x.so"})
    # what is set at run time is no reason: the prelude sets it, and removes what is gone
    code = kernel_pool.prelude(k, {"PATH": "/bin", "B": "it's"}, "/tmp")
    scope: dict = {}
    env = {"PATH": "/bin", "A": "1"}

    class FakeOs:
        environ = env

        @staticmethod
        def chdir(path):
            scope["cwd"] = path

    import builtins

    real_import = builtins.__import__
    try:
        builtins.__import__ = lambda name, *a, **k: (
            FakeOs if name == "os" else real_import(name, *a, **k)
        )
        exec(compile(code, "prelude", "exec"), {})
    finally:
        builtins.__import__ = real_import
    assert env == {"PATH": "/bin", "B": "it's"} and scope["cwd"] == "/tmp"


def _kernel_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"ipykernel" in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def _in_pool(pid: int, store) -> bool:
    """Was this kernel started by the pool of this store (its connection file is there), or
    forked by its zygote (whose working folder is the pool's)?"""
    folder = str(store.home / "jobs" / "pool")
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().decode(errors="replace")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return process_alive(pid) and (folder in cmd or cwd.startswith(folder))


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_a_kernel_forked_by_the_zygote_is_the_kernel_a_start_would_give(tmp_path):
    """While its zygote imports ipykernel the pool starts no kernel the cold way beside it (two
    interpreters importing on the same cores slow each other down); then its kernels are forked
    from it: its children, with the launcher's argv, JPY_PARENT_PID naming the zygote (which
    the kernel watches), subprocesses that can be waited for (SIGCHLD is the default again), a
    fresh namespace, and the interpreter facts of a kernel started the cold way (a pool without
    zygotes, MLP_KERNEL_ZYGOTE=0, starts those)."""
    from jupyter_client import BlockingKernelClient

    pool = kernel_pool.KernelPool(tmp_path / "pool", size=1)
    cold_pool = kernel_pool.KernelPool(tmp_path / "cold", size=1)
    cold_pool.zygotes_enabled = False
    key = ("python3", "")
    code = (
        "import json, os, sys, subprocess, threading\n"
        "print(json.dumps({'argv0': os.path.basename(sys.argv[0]), 'parent': "
        "os.environ.get('JPY_PARENT_PID'), 'rc': subprocess.run(['true']).returncode, "
        "'path0': '' in sys.path, 'names': sorted(k for k in globals() if not k.startswith('_')), "
        "'exe': sys.executable, 'pid': os.getpid(), 'frozen': __import__('gc').get_freeze_count(), "
        "'env': sorted(k for k in os.environ if k.startswith('MLP_KERNEL_ZYGOTE')), "
        "'modules': sorted(m for m in sys.modules if m != 'runpy')}))"  # runpy: the cold start's
    )

    def run(kernel) -> dict:
        kc = BlockingKernelClient(connection_file=kernel.connection_file)
        kc.load_connection_file()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            out = []
            kc.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
                m["content"].get("text", "")) if m["msg_type"] == "stream" else None)  # fmt: skip
            return json.loads("".join(out))
        finally:
            kc.stop_channels()

    try:
        pool.tick()
        assert pool.zygotes[key].starting() and not pool.started and pool.take(*key) is None
        cold_pool.tick()
        cold = cold_pool.take(*key)
        assert cold is not None and _ppid(cold.pid) == os.getpid()
        wait_for(lambda: pool.zygotes[key].ready or pool.zygotes[key]._waiting(
            pool.zygotes[key].proc), timeout=60, what="the zygote to be ready")  # fmt: skip
        pool.tick()
        forked = pool.take(*key)
        zygote = pool.zygotes[key].proc.pid
        assert forked is not None and _ppid(forked.pid) == zygote
        seen = {"cold": run(cold), "forked": run(forked)}
        assert seen["forked"]["parent"] == str(zygote) and seen["cold"]["parent"] == str(
            os.getpid()
        )
        for k in ("argv0", "rc", "path0", "names", "exe", "modules", "env"):
            assert seen["forked"][k] == seen["cold"][k], k
        # what README says differs: the zygote's imports are frozen out of the collector
        assert seen["cold"]["frozen"] == 0 and seen["forked"]["frozen"] > 10_000
        assert seen["forked"]["argv0"] == "ipykernel_launcher.py" and seen["forked"]["rc"] == 0
        # what `ps` shows for a forked kernel: a short line that says what it is
        with open(f"/proc/{forked.pid}/cmdline", "rb") as f:
            shown = f.read().replace(b"\0", b" ").decode()
        assert len(shown) < 200 and shown.endswith("ipykernel_launcher (jupyter-mlp warm kernel) ")
        for kernel in (cold, forked):
            kernel.discard()
        wait_for(
            lambda: not process_alive(forked.pid), timeout=10, what="the forked kernel to stop"
        )
    finally:
        pool.close()
        cold_pool.close()
        for proc in kernel_pool.Zygote.closed:
            proc.kill()


def test_a_jobs_client_tries_a_kernel_that_is_not_listening_yet_every_10_ms():
    """A job's channels come from its client's own context (not its kernel manager's): that is
    where ZeroMQ's reconnect interval must be short, or a kernel forked for the job a moment
    ago is reached ~100 ms late."""
    import zmq

    from jupyter_mlp.execution.engine import RECONNECT_MS, MlpKernelManager

    km = MlpKernelManager(kernel_name="python3")
    kc = km.client()
    socket = kc.context.socket(zmq.DEALER)
    try:
        assert kc.context is not km.context
        assert socket.getsockopt(zmq.RECONNECT_IVL) == RECONNECT_MS == 10
    finally:
        socket.close(linger=0)
        kc.context.destroy(linger=0)


def test_no_kernel_is_started_ahead_beside_one_a_job_waits_for(tmp_path):
    """A job given a kernel that is still starting (forked for it, none was idle) waits for it:
    the kernels the pool keeps for later jobs start once it is up, not beside it on the same
    cores (at a pipeline's start, eight such kernels delayed its first four stages)."""
    pool = kernel_pool.KernelPool(tmp_path / "pool", size=2)
    key = ("python3", "")
    given = None
    try:
        pool.tick()
        wait_for(lambda: not pool.zygotes[key].starting(), timeout=60, what="the zygote")
        given = pool.take(*key, wait=5)  # none idle: forked for this job now
        assert given is not None and not pool.idle.get(key)
        pool.tick()
        assert not pool.idle.get(key)  # nothing started beside it
        wait_for(lambda: (pool.tick(), len(pool.idle.get(key, [])) == 2)[1], timeout=10,
                 what="the pool to fill once the job's kernel is up")  # fmt: skip
    finally:
        if given is not None:
            given.discard()
        pool.close()
        for proc in kernel_pool.Zygote.closed:
            proc.kill()


def test_a_wave_of_jobs_starts_before_the_pool_refills_but_a_lone_job_holds_nothing(
    tmp_path, monkeypatch
):
    """Kernels handed out to a wave of jobs (a pipeline's first stages, as many as there are
    cores or more) are replaced only once those jobs had their moment of CPU; a lone job (a
    chain's next stage) is replaced at once, or the stage after it would wait."""
    monkeypatch.setattr(kernel_pool, "CORES", 2)
    pool = kernel_pool.KernelPool(tmp_path / "pool", size=3)
    key = ("python3", "")
    given = []
    try:
        wait_for(lambda: (pool.tick(), len(pool.idle.get(key, [])) == 3)[1], timeout=60,
                 what="three idle kernels")  # fmt: skip
        for kernel in pool.idle[key]:
            kernel.started -= kernel_pool.WARMING_S  # up for a while: a job waits for none
        given.append(pool.take(*key, burst=1))
        pool.tick()
        assert len(pool.idle[key]) == 3  # replaced at once
        for kernel in pool.idle[key]:
            kernel.started -= kernel_pool.WARMING_S
        given += [pool.take(*key, burst=2), pool.take(*key, burst=2)]
        pool.tick()
        assert len(pool.idle[key]) == 1  # not beside the two jobs starting
        wait_for(lambda: (pool.tick(), len(pool.idle.get(key, [])) == 3)[1], timeout=10,
                 what="the pool to refill after the wave")  # fmt: skip
    finally:
        for kernel in given:
            if kernel is not None:
                kernel.discard()
        pool.close()
        for proc in kernel_pool.Zygote.closed:
            proc.kill()


def test_kernels_reserved_for_later_stages_wait_for_the_wave_starting_now(tmp_path, monkeypatch):
    """A pipeline that queues a wave of stages at once (as many as there are cores, or more)
    and reserves kernels for its second frontier: those are started only once the wave's jobs
    had their moment of CPU, not beside them. A reserve for one stage starting now (a chain)
    starts them at once."""
    monkeypatch.setattr(kernel_pool, "CORES", 2)
    pool = kernel_pool.KernelPool(tmp_path / "pool", size=1)
    key = ("python3", "")
    try:
        wait_for(lambda: (pool.tick(), len(pool.idle.get(key, [])) == 1)[1], timeout=60,
                 what="an idle kernel")  # fmt: skip
        pool.idle[key][0].started -= kernel_pool.WARMING_S  # up for a while: a job waits for none
        pool.reserve(*key, 3, starting=1)
        pool.tick()
        assert len(pool.idle[key]) == 3  # a chain's next stage: started at once
        pool.reserve(*key, 6, starting=4)
        pool.tick()
        assert len(pool.idle[key]) == 3  # not beside the wave
        wait_for(lambda: (pool.tick(), len(pool.idle.get(key, [])) == 6)[1], timeout=20,
                 what="the kernels for the later stages once the wave started")  # fmt: skip
    finally:
        pool.close()
        for proc in kernel_pool.Zygote.closed:
            proc.kill()


@pytest.fixture(autouse=True)
def _no_stray_kernels(store):
    yield
    for pid in _kernel_pids():
        if _in_pool(pid, store):
            os.kill(pid, signal.SIGKILL)


def test_a_running_job_keeps_its_warm_kernel_when_the_service_dies_mid_reply(
    store, service, folder
):
    """The process that drove the launcher (a sweep's or a pipeline's driver) is killed while
    the launcher answers it: the launcher's reply fails (EPIPE), and it must still stay for the
    jobs it forked, whose warm kernels (and their zygote) watch it as their parent."""
    nb = write_notebook(folder / "slow.ipynb", [
        {"id": "p", "source": "x = 1", "tags": ["parameters"]},
        {"id": "w", "source": "import time\ntime.sleep(4)\nprint('done', x)"},
    ])  # fmt: skip
    svc = service(warm=True, concurrency=2)
    wait_for(lambda: list((store.home / "jobs" / "pool").glob("kernel-*.json")),
             timeout=60, what="a warm kernel")  # fmt: skip
    run_id = svc.submit_notebook(nb, {"x": 3})
    wait_for(lambda: job_pid(store, run_id), timeout=30, what="the job to start")
    launcher = svc.executor("local")._launcher
    assert launcher is not None and launcher.alive()
    sock = launcher._connected()  # the service asks, and is gone before the reply comes
    sock.sendall(b'{"reserve": {"kernel": "python3", "cards": "", "n": 1}}\n')
    sock.close()
    run = wait_final(store, run_id)
    assert run["status"] == "finished", run["error"]
    assert "done 3" in json.dumps(executed(store, run))


def test_a_job_whose_warm_kernel_dies_fails_at_once_and_says_so(store, service, folder):
    """A warm kernel's client has no heartbeat: whether the kernel lives is asked of the
    kernel manager, which knows the pooled pid. A kernel that dies mid-cell fails its job
    within seconds, as "the kernel died", not at a timeout."""
    import time

    nb = write_notebook(folder / "dies.ipynb", [
        {"id": "p", "source": "x = 1", "tags": ["parameters"]},
        {"id": "d", "source": "import os, time\ntime.sleep(0.5)\nos._exit(1)"},
        {"id": "n", "source": "print('never')"},
    ])  # fmt: skip
    svc = service(warm=True)
    wait_for(lambda: list((store.home / "jobs" / "pool").glob("kernel-*.json")),
             timeout=60, what="a warm kernel")  # fmt: skip
    run_id = svc.submit_notebook(nb, {"x": 2})
    started = time.monotonic()
    run = wait_final(store, run_id)
    assert run["status"] == "failed", run
    assert run["error"]["ename"] == "DeadKernelError", run["error"]
    assert time.monotonic() - started < 20
    cells = {c["id"]: c for c in executed(store, run)["cells"]}
    assert cells["n"]["outputs"] == [] and cells["n"]["execution_count"] is None


class _Channel:
    """A kernel client's channel: what the kernel sent, read as jupyter_client's get_msg does."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.reads = 0

    async def get_msg(self, timeout: float = 1.0) -> dict:
        from queue import Empty

        self.reads += 1
        if not self.sent:
            raise Empty
        return self.sent.pop(0)


class _Kernel:
    """A warm kernel seen through its client: it answers each request on shell, and publishes
    on IOPub only once subscribed (`greets`: it says so with iopub_welcome)."""

    def __init__(self, greets: bool, subscribed_after: int) -> None:
        self.shell, self.iopub = _Channel(), _Channel()
        self.greets, self.subscribed_after, self.asked, self.handled = (
            greets,
            subscribed_after,
            0,
            [],
        )
        self.shell.sent.append(
            {"parent_header": {"msg_id": "prelude"}, "content": {"status": "ok"}}
        )
        if greets:
            self.iopub.sent.append({"msg_type": "iopub_welcome", "parent_header": {}})

    @property
    def shell_channel(self):
        return self.shell

    @property
    def iopub_channel(self):
        return self.iopub

    def kernel_info(self) -> str:
        if not self.asked:
            self.waited_first = self.iopub.reads + self.shell.reads  # reads before asking
        self.asked += 1
        msg_id = f"info{self.asked}"
        self.shell.sent.append({"parent_header": {"msg_id": msg_id}, "content": {}})
        if self.greets or self.asked > self.subscribed_after:  # published while subscribed
            self.iopub.sent.append({"msg_type": "status", "parent_header": {"msg_id": msg_id},
                                    "content": {"execution_state": "idle"}})  # fmt: skip
        return msg_id

    def _handle_kernel_info_reply(self, reply: dict) -> None:
        self.handled.append(reply["parent_header"]["msg_id"])

    async def is_alive(self) -> bool:
        return True


@pytest.mark.parametrize("greets", [True, False])
def test_a_warm_kernel_answers_the_prelude_and_kernel_info_in_one_round_trip(greets):
    """The prelude is sent first, kernel_info at once after it: a kernel that greets its IOPub
    subscriber is ready with both replies, asked once. One that does not is asked again until
    a request's `idle` shows IOPub connected (here the first was published before that)."""
    import asyncio

    from jupyter_mlp.execution.engine import _warm_ready

    kernel = _Kernel(greets, subscribed_after=1)
    reply = asyncio.run(_warm_ready(kernel, kernel, timeout=5, prelude_id="prelude"))
    assert reply["content"]["status"] == "ok"
    assert kernel.waited_first == 0  # asked at once, not after waiting for IOPub
    assert kernel.asked == (1 if greets else 2)
    assert kernel.handled == [f"info{kernel.asked}"]
