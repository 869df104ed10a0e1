"""Server figures: listing 100k runs, a trivial rerun through the server, event latency from a
tracked kernel, HTTP ingest rate.

    python bench/server.py [--runs 100000] [--skip-kernel] [--skip-ingest]

Prints one figure per line and, last, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_mlp.store import Store  # noqa: E402
from jupyter_mlp.store import runs as run_store  # noqa: E402

FILTER = "metrics.m0 > 0.5 and params.p1 <= 0.5 and status = finished"
SORT = "-metrics.m1"


def seed_runs(store: Store, n: int) -> None:
    """n runs of 10 params and 10 metrics, written directly (the listing is what we measure)."""
    rnd = random.Random(0)
    now = time.time()
    conn = store.connect()
    with store.write():
        conn.executemany(
            "INSERT INTO runs (id, project, name, status, kind, created_at, started_at, ended_at) "
            "VALUES (?, 'bench', ?, ?, 'interactive', ?, ?, ?)",
            [
                (
                    f"{i:012x}",
                    f"run-{i}",
                    "finished" if i % 5 else "failed",
                    now - i,
                    now - i,
                    now - i + 60,
                )
                for i in range(n)
            ],
        )
        conn.executemany(
            "INSERT INTO params (run_id, key, value, type, num, text, source) VALUES (?, ?, ?, 'float', ?, NULL, 'api')",
            [
                (f"{i:012x}", f"p{k}", json.dumps(v), v)
                for i in range(n)
                for k, v in ((k, rnd.random()) for k in range(10))
            ],
        )
        conn.executemany(
            "INSERT INTO metrics_latest (run_id, key, step, value, time) VALUES (?, ?, 0, ?, 0)",
            [(f"{i:012x}", f"m{k}", rnd.random()) for i in range(n) for k in range(10)],
        )
    conn.execute("ANALYZE")


def list_figure(store: Store, n: int) -> dict:
    seed_runs(store, n)
    conn = store.connect()
    times = []
    for _ in range(7):
        t = time.perf_counter()
        page = run_store.list_runs(conn, filter=FILTER, sort=SORT, limit=100)
        times.append((time.perf_counter() - t) * 1e3)
    assert len(page) == 100, len(page)
    values = [r["metrics"]["m1"] for r in page]
    assert values == sorted(values, reverse=True)
    unfiltered = []
    for _ in range(5):
        t = time.perf_counter()
        run_store.list_runs(conn, limit=100)
        unfiltered.append((time.perf_counter() - t) * 1e3)
    return {"list_100k_ms": round(statistics.median(times), 1),
            "list_100k_newest_ms": round(statistics.median(unfiltered), 1), "runs": n}  # fmt: skip


class Server:
    """A real `jupyter server` with the extension, on a free loopback port."""

    def __init__(self, home: str) -> None:
        import socket
        import subprocess

        import requests

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token = "bench-token"
        self.url = f"http://127.0.0.1:{self.port}/mlp/api"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--port={self.port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={self.token}", "--ServerApp.allow_root=True",
             "--ServerApp.open_browser=False", f"--ServerApp.root_dir={home}"],
            env={**os.environ, "MLP_HOME": home}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get(self.url + "/events", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def event_latency(server: Server, home: str, cells: int) -> dict:
    """A cell ends in a tracked kernel -> its `cells` event reaches a long-polling client."""
    import threading

    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "MLP_HOME": home})
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    quiet = {"output_hook": lambda msg: None}  # the status display is not for our stdout
    kc.execute_interactive(
        "%load_ext jupyter_mlp\n%mlp_track latency --no-gpu", timeout=60, **quiet
    )
    arrivals: dict[int, float] = {}
    last = server.http.get(server.url + "/events").json()["last"]
    stop = threading.Event()

    def client() -> None:
        after = last
        while not stop.is_set():
            body = server.http.get(
                server.url + "/events", params={"after": after, "timeout": 5}
            ).json()
            now = time.time()
            for e in body["events"]:
                if e["type"] == "cells":
                    arrivals.setdefault(e["data"]["last_seq"], now)
            after = body["last"]

    t = threading.Thread(target=client, daemon=True)
    t.start()
    for i in range(cells):
        kc.execute_interactive(f"x = {i}", timeout=30, **quiet)
        time.sleep(0.3)  # spacing between cells, so each cell's event is its own
    stop.set()
    store = Store(home)
    conn = store.connect()
    run_id = run_store.list_runs(conn)[0]["id"]
    latencies = []
    for cell in run_store.get_run(conn, run_id)["cells"]:
        if cell["seq"] in arrivals:
            latencies.append(
                (arrivals[cell["seq"]] - (cell["started_at"] + cell["duration"])) * 1e3
            )
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return {"event_latency_ms": round(statistics.median(latencies), 1),
            "event_latency_max_ms": round(max(latencies), 1), "event_samples": len(latencies)}  # fmt: skip


def rerun_figure(server: Server, home: str, runs: int) -> dict:
    """`POST /runs/{id}/rerun` of a trivial notebook until the run reads `finished` over HTTP,
    through the running server and its warm kernels (the papermill CLI runs the same notebook
    beside it, as the peer)."""
    import importlib.util
    import subprocess

    spec = importlib.util.spec_from_file_location(
        "bench_rerun", Path(__file__).with_name("rerun.py")
    )
    rerun = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(rerun)  # type: ignore[union-attr]
    notebook = Path(home) / "trivial.ipynb"
    notebook.write_text(json.dumps(rerun.NOTEBOOK))
    parent = rerun.parent_run(Store(home), notebook)

    def once(i: int) -> float:
        t = time.perf_counter()
        made = server.http.post(f"{server.url}/runs/{parent}/rerun", json={"params": {"x": i}})
        made.raise_for_status()
        run_id = made.json()["id"]
        while True:
            status = server.http.get(f"{server.url}/runs/{run_id}").json()["status"]
            if status in ("finished", "failed", "cancelled", "lost"):
                break
            time.sleep(0.01)
        assert status == "finished", status
        return (time.perf_counter() - t) * 1e3

    once(-1)  # the launcher's first job
    ours = []
    for i in range(runs):
        time.sleep(1.5)  # a user's pace: the pool has refilled
        ours.append(once(i))
    figures = {"rerun_trivial_server_ms": round(statistics.median(ours), 1),
               "rerun_trivial_server_max_ms": round(max(ours), 1)}  # fmt: skip
    out = Path(home) / "out.ipynb"
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "papermill", str(notebook), str(out), "-p", "x", "1",
                           "--no-progress-bar"], capture_output=True)  # fmt: skip
    if done.returncode == 0:
        figures["papermill_cli_ms"] = round((time.perf_counter() - t) * 1e3, 1)
    return figures


def ingest_rate(server: Server, points: int) -> dict:
    """One remote tracker (MLP_TRACKING_URI) logs `points` metric points and flushes them."""
    import subprocess

    created = server.http.post(server.url + "/runs", json={"name": "ingest-bench"}).json()
    code = (
        "import time, jupyter_mlp as mlp\n"
        "mlp.track('ingest-bench', gpu=False)\n"
        "log = mlp.log_metric\n"
        f"t0 = time.perf_counter()\nfor i in range({points}): log('loss', 0.5)\n"
        "t1 = time.perf_counter(); mlp.flush(); t2 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1); mlp.finish()\n"
    )
    with tempfile.TemporaryDirectory() as spool:
        env = {
            **os.environ,
            "MLP_TRACKING_URI": server.url,
            "MLP_TRACKING_TOKEN": created["token"],
            "MLP_SPOOL_DIR": spool,
        }
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
    log_s, flush_s = map(float, out.strip().splitlines()[-2].split())
    stored = (
        Store(os.environ["MLP_BENCH_HOME"])
        .connect()
        .execute("SELECT COALESCE(SUM(count), 0) FROM metrics WHERE run_id = ?", (created["id"],))
        .fetchone()[0]
    )
    assert stored == points, (stored, points)
    return {
        "ingest_per_s": round(points / flush_s),
        "ingest_end_to_end_per_s": round(points / (log_s + flush_s)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--cells", type=int, default=15)
    ap.add_argument("--reruns", type=int, default=5)
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as home:
        figures.update(list_figure(Store(home), args.runs))
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLP_BENCH_HOME"] = home
        server = Server(home)
        try:
            figures.update(rerun_figure(server, home, args.reruns))
            figures.update(event_latency(server, home, args.cells))
            figures.update(ingest_rate(server, args.points))
        finally:
            server.stop()
    for k, v in figures.items():
        print(f"{k:>22}: {v}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
