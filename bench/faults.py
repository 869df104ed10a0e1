"""Fault figures: nothing sent to jupyter-mlp is lost when kernels die, servers go away, disks
fill up or stores break.

    python bench/faults.py [--kill-trials 20] [--outage-points 1000000] [--cells 3000]

Prints one figure per line and, last, one JSON object with every figure:
  kill_trials, cells_lost_ended_200ms_before  SIGKILL of a tracked kernel at random moments
  outage_points, outage_points_lost, outage_points_doubled, outage_final_status
                                               a server outage of twice the heartbeat timeout
                                               with a tracker writing throughout
  torn_spool_batches_lost                      a spool torn at a random byte (the torn batch
                                               aside, every batch is delivered)
  disk_full_records_lost                       a full disk (a small tmpfs) under the store
  broken_store_cli_exit                        corrupt and newer-schema stores: `runs list` exit
  cell_overhead_us                             bench/tracker.py's method
and, when bench/fuzz_server.py exists, its fuzz_requests / fuzz_5xx / fuzz_hangs.

The scenarios are functions that tests/test_faults.py runs with small sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import queue
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    """Poll with a deadline (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "JPY_"))}
    env.update(MLP_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    env.setdefault("MLP_SPOOL_DIR", str(home.parent / "spool"))
    return env


# --- SIGKILL of a tracked kernel at random moments ---------------------------------------------


def kill_trials(
    trials: int = 20, seed: int = 0, workdir: Path | None = None, fake_gpu: bool = False
) -> dict:
    """Each trial: a real kernel tracks, runs short cells back to back, and is SIGKILLed at a
    random moment. Every cell whose reply arrived >= 200 ms before the kill must be stored."""

    rng = random.Random(seed)
    base = Path(workdir or tempfile.mkdtemp(prefix="mlp-kill-"))
    env: dict[str, str] = {}
    if fake_gpu:  # the GPU sampler on, against tests/fake_nvml (cell figures wait for a sample)
        script = base / "nvml.json"
        script.write_text(json.dumps({
            "driver": "550.54.15", "cuda": 12040,
            "devices": [{"uuid": "GPU-0", "name": "Fake H100", "memory_total": 80e9,
                         "energy_counter": True}],
            "readings": {"util": 50, "mem_used": 1e9, "power": 100.0, "temp": 40,
                         "sm_clock": 1410},
            "processes": [],
        }))  # fmt: skip
        env = {"PYTHONPATH": str(ROOT / "tests" / "fake_nvml"), "MLP_FAKE_NVML": str(script)}
    details = [
        _kill_trial(rng, base / f"home-{trial}", base, env, fake_gpu) for trial in range(trials)
    ]
    return {
        "kill_trials": trials,
        "cells_ended_200ms_before": sum(d["ended_200ms_before"] for d in details),
        "cells_lost_ended_200ms_before": sum(len(d["lost"]) for d in details),
        "kill_details": details,
    }


def _kill_trial(rng: random.Random, home: Path, cwd: Path, env: dict[str, str], gpu: bool) -> dict:
    from jupyter_client import KernelManager

    from jupyter_mlp.store import Store
    from jupyter_mlp.store import runs as run_store

    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=_env(home, MLP_HEARTBEAT_S="0.5", **env), cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        track = (
            "%mlp_track kill-trial --gpu-interval 0.5" if gpu else "%mlp_track kill-trial --no-gpu"
        )
        _execute(kc, "%load_ext jupyter_mlp\n" + track, timeout=60)
        ended: dict[str, float] = {}
        stop = threading.Event()

        def send_cells() -> None:
            i = 0
            while not stop.is_set():
                cell = f"cell-{i}"
                code = f"v{i} = {i}" if i % 3 else f"import time; time.sleep({rng.random() / 50})"
                try:
                    _execute(kc, code, cell_id=cell, timeout=2, stop=stop)
                except (TimeoutError, RuntimeError):
                    return
                ended[cell] = time.time()
                i += 1

        sender = threading.Thread(target=send_cells, daemon=True)
        sender.start()
        wait_for(lambda: len(ended) >= 3, 60, "the first cells")
        time.sleep(rng.uniform(0.05, 1.5))  # the random moment of the kill (not a sync)
        killed_at = time.time()
        os.kill(km.provisioner.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        stop.set()
        sender.join(timeout=10)
        wait_for(lambda: not km.is_alive(), 30, "the kernel's death")
        must = {c for c, t in ended.items() if t <= killed_at - 0.2}
        store = Store(home)
        found = run_store.list_runs(store.connect())
        stored, gpu_on = set(), None
        if found:
            run = run_store.get_run(store.connect(), found[0]["id"])
            stored = {c["cell_id"] for c in run["cells"]}
            gpu_on = bool((run.get("gpu") or {}).get("enabled"))
        store.close()
        return {
            "ended_200ms_before": len(must), "ended": len(ended), "lost": sorted(must - stored),
            "gpu_enabled": gpu_on,
        }  # fmt: skip
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def _execute(kc, code: str, cell_id: str | None = None, timeout: float = 60, stop=None) -> str:
    msg = kc.session.msg(
        "execute_request",
        {"code": code, "silent": False, "store_history": True, "user_expressions": {},
         "allow_stdin": False, "stop_on_error": False},
        metadata={"cellId": cell_id} if cell_id else {},
    )  # fmt: skip
    kc.shell_channel.send(msg)
    deadline = time.monotonic() + timeout
    err = []
    while True:
        if stop is not None and stop.is_set() and time.monotonic() > deadline:
            raise RuntimeError("stopped")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(code)
        try:
            m = kc.get_iopub_msg(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        if m["msg_type"] == "stream" and m["content"]["name"] == "stderr":
            err.append(m["content"]["text"])
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return "".join(err)


# --- a tiny ingest server over the real store functions -----------------------------------------


class IngestServer:
    """The ingest contract (POST /ingest, PUT /ingest/blobs/<sha256>) over the store functions
    the Jupyter server's routes call (tokens.run_of, records.ingest_batch, tokens.record_upload),
    plus the lost-run reconciler. `down = True` answers 503, as a restarting server would."""

    def __init__(self, home: Path, heartbeat_timeout: float) -> None:
        from jupyter_mlp.store import Store

        self.store = Store(home)
        self.down = False
        self.requests = 0
        self.lost_seen = False
        self.heartbeat_timeout = heartbeat_timeout
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                data = self._body()
                server.requests += 1
                if server.down:
                    return self._reply(503, {"message": "down"})
                code, body = server.ingest(self.headers.get("X-MLP-Run-Token"), data)
                self._reply(code, body)

            def do_PUT(self) -> None:
                data = self._body()
                if server.down:
                    return self._reply(503, {"message": "down"})
                code, body = server.put_blob(
                    self.headers.get("X-MLP-Run-Token"), self.path.rsplit("/", 1)[-1], data
                )
                self._reply(code, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, daemon=True),
            threading.Thread(target=self._reconcile, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def ingest(self, token: str | None, data: bytes) -> tuple[int, dict]:
        from jupyter_mlp.store import tokens
        from jupyter_mlp.store.db import write
        from jupyter_mlp.store.records import BadBatch, ingest_batch

        conn = self.store.connect()
        run_id = tokens.run_of(conn, token)
        if run_id is None:
            return 401, {"message": "a valid token is required"}
        try:
            body = json.loads(data)
            with write(conn):
                applied, refused = ingest_batch(conn, run_id, body["seq"], body["batch"])
        except (ValueError, KeyError, TypeError, BadBatch) as exc:
            return 400, {"message": str(exc)}
        return 200, {"applied": applied, "refused": [str(e) for e in refused]}

    def put_blob(self, token: str | None, digest: str, data: bytes) -> tuple[int, dict]:
        from jupyter_mlp.store import tokens
        from jupyter_mlp.store.db import write

        conn = self.store.connect()
        run_id = tokens.run_of(conn, token)
        if run_id is None:
            return 401, {"message": "a valid token is required"}
        if hashlib.sha256(data).hexdigest() != digest:
            return 400, {"message": "wrong hash"}
        self.store.blobs.put_bytes(data)
        with write(conn):
            tokens.record_upload(conn, run_id, digest)
        return 200, {"stored": digest}

    def _reconcile(self) -> None:
        from jupyter_mlp.store import Store
        from jupyter_mlp.store import runs as run_store

        store = Store(self.store.home)
        while not self._stop.wait(0.1):
            try:
                if run_store.mark_lost(store.connect(), self.heartbeat_timeout):
                    self.lost_seen = True
            except sqlite3.OperationalError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


OUTAGE_SCRIPT = """
import os, sys, time
from pathlib import Path
import jupyter_mlp as mlp

n, duration = int(os.environ["POINTS"]), float(os.environ["DURATION"])
mlp.track("outage", project="digits")
run = mlp.active_run()
start, i, chunk = time.time(), 0, max(n // 400, 1)
while i < n:
    for _ in range(min(chunk, n - i)):
        mlp.log_metric("m", float(i))
        i += 1
    pause = start + duration * i / n - time.time()
    if pause > 0:
        time.sleep(pause)
print("LOGGED", i, flush=True)
# the writer sends what it spooled by itself once the server is back, before any finish()
spool = Path(run._sink.spool)
deadline = time.time() + 120
while (spool.exists() or run._sink.pending) and time.time() < deadline:
    time.sleep(0.05)
print("BACKGROUND", not spool.exists() and not run._sink.pending, flush=True)
mlp.output("done", i)
mlp.finish()
"""


def outage(
    points: int = 1_000_000, heartbeat_timeout: float = 2.0, workdir: Path | None = None
) -> dict:
    """A remote tracker (MLP_TRACKING_URI + token) logs `points` metric points while the server
    is down for twice the heartbeat timeout. Nothing may be lost or doubled, and the run must end
    in its true state (finished) even though the reconciler marked it lost meanwhile."""
    from jupyter_mlp.store import runs as run_store
    from jupyter_mlp.store.records import metric_series

    base = Path(workdir or tempfile.mkdtemp(prefix="mlp-outage-"))
    home = base / "home"
    server = IngestServer(home, heartbeat_timeout)
    try:
        conn = server.store.connect()
        created = run_store.create_run(conn, {"name": "remote", "project": "digits"}, True)
        env = _env(
            home, MLP_TRACKING_URI=server.url, MLP_TRACKING_TOKEN=created["token"],
            MLP_HEARTBEAT_S="0.2", POINTS=str(points), DURATION=str(6 * heartbeat_timeout),
            MLP_SPOOL_DIR=str(base / "spool"),
        )  # fmt: skip
        script = base / "outage.py"
        script.write_text(textwrap.dedent(OUTAGE_SCRIPT))
        proc = subprocess.Popen(
            [sys.executable, str(script)], env=env, cwd=base, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_for(lambda: metric_series(conn, created["id"], "m"), 120, "the first points")
        server.down = True
        went_down = time.monotonic()
        wait_for(
            lambda: time.monotonic() - went_down >= 2 * heartbeat_timeout, 60, "the outage", 0.05
        )
        lost_during = run_store.get_run(conn, created["id"])["status"] == "lost"
        server.down = False
        out, err = proc.communicate(timeout=600)
        series = metric_series(conn, created["id"], "m")
        steps = [s for s, _v, _t in series]
        run = run_store.get_run(conn, created["id"])
        return {
            "outage_points": points,
            "outage_seconds": 2 * heartbeat_timeout,
            "heartbeat_timeout_s": heartbeat_timeout,
            "outage_points_lost": points - len(set(steps)),
            "outage_points_doubled": len(steps) - len(set(steps)),
            "outage_marked_lost_meanwhile": lost_during or server.lost_seen,
            "outage_final_status": run["status"],
            "outage_project": run["project"],
            "outage_replayed_in_background": "BACKGROUND True" in out,
            "outage_exit": proc.returncode,
            "outage_stderr": err[-2000:],
            "outage_outputs": [o["name"] for o in run["outputs"]],
        }
    finally:
        server.close()


def torn_spool(batches: int = 50, seed: int = 0, workdir: Path | None = None) -> dict:
    """A spool left by a dead tracker, torn at a random byte (the line holding that byte is cut
    there): a later tracker of the run skips the torn line with a note and delivers the rest."""
    from jupyter_mlp.store import runs as run_store
    from jupyter_mlp.store.records import metric_series
    from jupyter_mlp.tracker.sinks import HttpSink

    rng = random.Random(seed)
    base = Path(workdir or tempfile.mkdtemp(prefix="mlp-torn-"))
    server = IngestServer(base / "home", 3600)
    try:
        conn = server.store.connect()
        created = run_store.create_run(conn, {"name": "torn"}, True)
        run_id, spool_dir = created["id"], base / "spool"
        spool_dir.mkdir(parents=True)
        lines = [
            json.dumps({"seq": 1000 + b, "batch": {"metrics": [["m", b * 10 + j, 1.0, time.time()] for j in range(10)]}})
            for b in range(batches)
        ]  # fmt: skip
        data = "".join(line + "\n" for line in lines).encode()
        cut = rng.randrange(1, len(data) - 1)
        start = data.rfind(b"\n", 0, cut) + 1
        end = data.find(b"\n", cut)
        torn_index = data[:start].count(b"\n")
        (spool_dir / f"{run_id}.jsonl").write_bytes(data[:cut] + data[end:])
        sink = HttpSink(server.url, created["token"], spool_dir)
        sink.flush()
        delivered = {s // 10 for s, _v, _t in metric_series(conn, run_id, "m")}
        expected = set(range(batches))
        cut_inside_line = data[cut:end].strip() != b"" and cut > start
        if not cut_inside_line:  # the cut fell on a line's first byte: that line is intact
            pass
        lost = expected - delivered - ({torn_index} if cut_inside_line else set())
        return {
            "torn_spool_batches": batches,
            "torn_spool_batches_lost": len(lost),
            "torn_spool_notes": sink.notes,
            "torn_spool_left": (spool_dir / f"{run_id}.jsonl").exists(),
        }
    finally:
        server.close()


# --- a full disk under the store ------------------------------------------------------------------

DISK_SCRIPT = """
import os, sys, time
from pathlib import Path
import jupyter_mlp as mlp

home, rounds = Path(os.environ["MLP_HOME"]), int(os.environ["ROUNDS"])
art = Path(os.environ["ART_DIR"])
mlp.track("disk-full")
mlp.log_metric("warm", 0.0)
mlp.flush()
with open(home / "filler", "wb", buffering=0) as f:  # fill the disk (unbuffered: close never writes)
    try:
        while True:
            f.write(b"x" * 65536)
            f.flush()
    except OSError:
        pass
faults = 0
for i in range(rounds):
    mlp.log_metric("m", float(i))
    mlp.log_params({f"p{i}": i})
    mlp.output(f"o{i}", {"i": i})
    mlp.log_artifact(art / f"a{i}.bin")
    faults += bool(mlp.active_run()._failing_since)
mlp.flush()
print("FAULTS", faults, flush=True)
os.remove(home / "filler")  # room again: the writer writes what was spooled, by itself
run = mlp.active_run()
deadline = time.time() + 60
while run._sink.pending and time.time() < deadline:
    time.sleep(0.05)
print("DRAINED", not run._sink.pending, flush=True)
mlp.finish()
"""


def disk_full(rounds: int = 12, workdir: Path | None = None) -> dict:
    """MLP_HOME on a small tmpfs that the tracker's own process fills mid-run: metrics, params,
    outputs and artifacts logged while it is full raise nothing into the caller and are in the
    store after room is made. Skipped (with the reason) where tmpfs cannot be mounted."""
    from jupyter_mlp.store import Store
    from jupyter_mlp.store import runs as run_store

    base = Path(workdir or tempfile.mkdtemp(prefix="mlp-disk-"))
    mount = base / "small"
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        return {"disk_full_skipped": f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}"}
    try:
        home = mount / "mlp"
        home.mkdir()
        art = base / "artifacts"
        art.mkdir(exist_ok=True)
        for i in range(rounds):
            (art / f"a{i}.bin").write_bytes(os.urandom(100_000))
        script = base / "disk.py"
        script.write_text(textwrap.dedent(DISK_SCRIPT))
        env = _env(home, ROUNDS=str(rounds), ART_DIR=str(art), MLP_SPOOL_DIR=str(base / "spool"))
        proc = subprocess.run(
            [sys.executable, str(script)], env=env, cwd=base, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        store = Store(home)
        conn = store.connect()
        found = run_store.list_runs(conn)
        run = run_store.get_run(conn, found[0]["id"]) if found else None
        lost = 4 * rounds
        if run is not None:
            have_outputs = {o["name"]: o for o in run["outputs"]}
            lost = sum(f"p{i}" not in run["params"] for i in range(rounds))
            lost += sum(f"o{i}" not in have_outputs for i in range(rounds))
            lost += sum(
                not (f"a{i}.bin" in have_outputs and store.blobs.exists(have_outputs[f"a{i}.bin"]["blob"]))
                for i in range(rounds)
            )  # fmt: skip
            from jupyter_mlp.store.records import metric_series

            lost += rounds - len(metric_series(conn, run["id"], "m"))
        store.close()
        faults = next(
            (ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("FAULTS")), "?"
        )
        return {
            "disk_full_records": 4 * rounds,
            "disk_full_records_lost": lost,
            "disk_full_calls_during_fault": faults,
            "disk_full_exit": proc.returncode,
            "disk_full_status": run["status"] if run else None,
            "disk_full_drained_in_background": "DRAINED True" in proc.stdout,
            "disk_full_stderr": proc.stderr[-2000:],
        }
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# --- broken stores ----------------------------------------------------------------------------------


def broken_stores(workdir: Path | None = None) -> dict:
    """A corrupt store and one of a newer schema: `jupyter mlp runs list` says so in one line
    naming the file and exits 2; the newer one is not written to."""
    from jupyter_mlp.store import Store

    base = Path(workdir or tempfile.mkdtemp(prefix="mlp-broken-"))
    corrupt = base / "corrupt"
    corrupt.mkdir(parents=True, exist_ok=True)
    (corrupt / "mlp.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
    newer = base / "newer"
    store = Store(newer)
    store.connect().execute("PRAGMA user_version = 99")
    store.close()  # checkpointed into the file: what follows must leave it byte for byte
    before = hashlib.sha256((newer / "mlp.sqlite").read_bytes()).hexdigest()
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    out: dict = {"broken_store_cli_exit": [], "broken_store_cli_lines": []}
    for home in (corrupt, newer):
        done = subprocess.run(
            [jupyter, "mlp", "--home", str(home), "runs", "list"], capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        out["broken_store_cli_exit"].append(done.returncode)
        out["broken_store_cli_lines"].append(done.stderr.strip())
    out["newer_store_unchanged"] = (
        hashlib.sha256((newer / "mlp.sqlite").read_bytes()).hexdigest() == before
    )
    return out


# --- the figures --------------------------------------------------------------------------------------


def cell_overhead(cells: int, repeats: int = 3) -> dict:
    """bench/tracker.py's cell_overhead_us (alternating tracked/untracked blocks through
    run_cell), `repeats` times: the median, and every sample (a shared machine is noisy)."""
    spec = importlib.util.spec_from_file_location("bench_tracker", ROOT / "bench" / "tracker.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    import statistics

    samples = [module.cell_overhead_us(cells) for _ in range(repeats)]
    overhead = [s["cell_overhead_us"] for s in samples]
    return {
        "cell_overhead_us": round(statistics.median(overhead), 1),
        "cell_overhead_samples_us": overhead,
        "bare_run_cell_us": round(statistics.median(s["bare_run_cell_us"] for s in samples), 1),
    }


def _prefixed(prefix: str, figures: dict) -> dict:
    return {prefix + k: v for k, v in figures.items()}


def cell_hook_us(cells: int = 200_000) -> dict:
    """The hooks themselves (pre_run_cell + post_run_cell of a tracked run), called directly:
    the per-cell cost without run_cell's noise around it."""
    import statistics
    from types import SimpleNamespace

    import jupyter_mlp as mlp

    class Events:
        def register(self, *a):
            pass

        unregister = register

    shell = SimpleNamespace(events=Events(), user_ns={})
    run = mlp.track("bench-hooks", gpu=False, status_view=_Quiet(), shell=shell)
    info = SimpleNamespace(raw_cell="x = 1", cell_id="c", cell_meta=None)
    result = SimpleNamespace(success=True, execution_count=1)
    pre, post = run._pre_run_cell, run._post_run_cell
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(cells // 5):
            pre(info)
            post(result)
        samples.append((time.perf_counter() - t) / (cells // 5) * 1e6)
    mlp.finish()
    return {"cell_hook_us": round(statistics.median(samples), 2)}


class _Quiet:
    def show(self, s):
        pass

    refresh = close = show


def fuzz(n: int) -> dict:
    path = ROOT / "bench" / "fuzz_server.py"
    if not path.exists():
        return {"fuzz_skipped": "bench/fuzz_server.py is not there yet"}
    spec = importlib.util.spec_from_file_location("bench_fuzz_server", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # its dataclasses look it up
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return dict(module.run(n))
    except Exception as exc:  # report, never hide the other figures
        return {"fuzz_skipped": f"bench/fuzz_server.py failed: {type(exc).__name__}: {exc}"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kill-trials", type=int, default=20)
    p.add_argument("--outage-points", type=int, default=1_000_000)
    p.add_argument("--heartbeat-timeout", type=float, default=2.0)
    p.add_argument("--cells", type=int, default=3000)
    p.add_argument("--fuzz", type=int, default=10_000)
    args = p.parse_args()
    figures: dict = {"host": socket.gethostname(), "cpus": os.cpu_count()}
    steps = [
        ("cell overhead", lambda: cell_overhead(args.cells)),
        ("cell hooks", lambda: cell_hook_us()),
        ("kill trials", lambda: kill_trials(args.kill_trials)),
        (
            "kill trials, GPU sampler on (fake NVML)",
            lambda: _prefixed("gpu_", kill_trials(5, fake_gpu=True)),
        ),
        ("outage", lambda: outage(args.outage_points, args.heartbeat_timeout)),
        ("torn spool", lambda: torn_spool()),
        ("disk full", lambda: disk_full()),
        ("broken stores", lambda: broken_stores()),
        ("fuzz", lambda: fuzz(args.fuzz)),
    ]
    for label, step in steps:
        t = time.perf_counter()
        result = step()
        for key, value in result.items():
            if not key.endswith(("_details", "_stderr")):
                print(f"{key}: {value}", flush=True)
        print(f"({label}: {time.perf_counter() - t:.1f} s)", flush=True)
        figures.update({k: v for k, v in result.items() if not k.endswith("_details")})
    figures.pop("outage_stderr", None)
    figures.pop("disk_full_stderr", None)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
