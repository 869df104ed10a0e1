"""Store figures for a team (issue 16): listing a million runs on SQLite and on PostgreSQL, metric
points per second from two users tracking through their own servers into one PostgreSQL store,
and how long a cell in one user's kernel takes to reach another user's event feed.

    python bench/store.py [--runs 1000000] [--points 500000] [--cells 15] [--skip-list]
                          [--skip-servers]

- list_1m_ms_sqlite / list_1m_ms_postgres: the first page (100 runs) of `--runs` runs filtered
  by `metrics.acc > 0.5 and status = finished` and sorted by `-metrics.acc`, through
  store.runs.list_page (what GET /mlp/api/runs calls), median of 7 after one warm-up. The runs
  are made inside the database by one INSERT ... SELECT per table over a generated sequence
  (a recursive CTE on SQLite, generate_series on PostgreSQL) into the store's own schema (made by
  Store.connect()): each run has a status (1 in 5 failed), an owner (alice or bob), a parameter
  `lr` and the latest metrics `acc` and `loss`, whose values come from the same integer hash on
  both engines, so that both must answer the same page (checked).
- ingest_two_users_per_s: two `jupyter server`s on loopback (alice's and bob's, each with
  JUPYTERHUB_USER set as the hub sets it) on one PostgreSQL database and one blobs folder, as the
  README's "For a team" configures them; each server's kernels track through it with its
  tracking key, and here one tracker process per server does the same (MLP_TRACKING_URI +
  MLP_TRACKING_KEY from the server): both log `--points` points at once; the figure is all the
  points over the time from the first log call to the last point stored (checked in the store).
- cross_user_event_ms: a cell ends in a kernel of alice's server (started through its REST API,
  driven over its websocket) -> the `cells` event arrives at a client long-polling bob's server
  (GET /mlp/api/events?after=N); the median of `--cells` cells (from the cell's own recorded end).
- mlflow_*: MLflow as a peer only where it is installed (it is not here: null).

PostgreSQL is tests/postgres.py's server (Debian's package; as `nobody` under root), started and
removed by this script. Prints one figure per line and, last, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # postgres.py (the server) and hub.py (the clients)

import postgres  # noqa: E402
from hub import ServerClient, free_port, poll  # noqa: E402

from jupyter_mlp.store import Store  # noqa: E402
from jupyter_mlp.store import runs as run_store  # noqa: E402

FILTER = "metrics.acc > 0.5 and status = finished"
SORT = "-metrics.acc"
PAGE = 100

# The same pseudo-random values on both engines: (i * A + B) mod M, over M (64-bit integer
# arithmetic in both; M is prime, so the values are distinct).
HASH_M = 1_000_003


def _value(i: str, a: int, b: int) -> str:
    return f"((({i}) * {a} + {b}) % {HASH_M}) * 1.0 / {HASH_M}"


def seed_sql(n: int, engine: str) -> list[str]:
    """The statements that make `n` runs in the store's schema (see the module's docstring)."""
    if engine == "sqlite":
        seq = f"WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n - 1}) "
        source, run_id = "seq", "printf('%012x', i)"
    else:
        # bigint: the hashes pass 2**31
        seq, source = "", f"generate_series(0::bigint, {n - 1}) AS seq(i)"
        run_id = "lpad(to_hex(i), 12, '0')"
    now = int(time.time())
    runs = (
        f"{seq}INSERT INTO runs (id, project, name, status, kind, created_at, started_at, "
        f"ended_at, owner) SELECT {run_id}, 'bench', 'run-' || i, "
        f"CASE WHEN i % 5 = 0 THEN 'failed' ELSE 'finished' END, 'interactive', "
        f"{now} - i, {now} - i, {now} - i + 60, "
        f"CASE WHEN i % 2 = 0 THEN 'alice' ELSE 'bob' END FROM {source}"
    )
    metric = (
        "{seq}INSERT INTO metrics_latest (run_id, key, step, value, time) "
        "SELECT {run_id}, '{key}', 0, {value}, 0 FROM {source}"
    )
    param = (
        f"{seq}INSERT INTO params (run_id, key, value, type, num, text, source) "
        f"SELECT {run_id}, 'lr', CAST({_value('i', 7919, 17)} AS TEXT), 'float', "
        f"{_value('i', 7919, 17)}, NULL, 'api' FROM {source}"
    )
    return [
        runs,
        metric.format(
            seq=seq, run_id=run_id, key="acc", value=_value("i", 48271, 11), source=source
        ),
        metric.format(
            seq=seq, run_id=run_id, key="loss", value=_value("i", 69621, 5), source=source
        ),
        param,
    ]


def list_figure(store: Store, n: int, engine: str) -> tuple[dict, list[str]]:
    """(figures, the ids of the first page)."""
    conn = store.connect()
    t = time.perf_counter()
    with store.write():
        for statement in seed_sql(n, engine):
            conn.execute(statement)
    conn.execute("ANALYZE")
    seeded_s = time.perf_counter() - t
    print(f"  {engine}: {n:,} runs made in {seeded_s:.1f} s", file=sys.stderr)
    times = []
    for _ in range(8):
        t = time.perf_counter()
        page = run_store.list_page(conn, filter=FILTER, sort=SORT, limit=PAGE)
        times.append((time.perf_counter() - t) * 1e3)
    runs = page["runs"]
    assert len(runs) == PAGE and page["next"], len(runs)
    values = [r["metrics"]["acc"] for r in runs]
    assert values == sorted(values, reverse=True) and values[-1] > 0.5, values
    assert all(r["status"] == "finished" for r in runs)
    newest = []
    for _ in range(5):
        t = time.perf_counter()
        run_store.list_page(conn, limit=PAGE)
        newest.append((time.perf_counter() - t) * 1e3)
    figures = {
        f"list_1m_ms_{engine}": round(statistics.median(times[1:]), 1),
        f"list_1m_first_call_ms_{engine}": round(times[0], 1),
        f"list_1m_newest_ms_{engine}": round(statistics.median(newest), 1),
        f"seed_1m_s_{engine}": round(seeded_s, 1),
        "list_runs": n,
    }
    return figures, [r["id"] for r in runs]


# --- two users' servers on one PostgreSQL store -------------------------------------------------


class Server:
    """A `jupyter server` of `user` on loopback with the team's store (MLP_STORE_URL) and the
    shared blobs folder (MLP_HOME), JUPYTERHUB_USER set as the hub sets it."""

    def __init__(self, user: str, store_url: str, shared: Path, folder: Path) -> None:
        self.user = user
        self.port = free_port()
        self.root = folder / user
        self.runtime = folder / f"{user}-runtime"
        self.root.mkdir(parents=True)
        token = f"bench-{user}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "JUPYTER"))}
        env.update(MLP_STORE_URL=store_url, MLP_HOME=str(shared), JUPYTERHUB_USER=user,
                   JUPYTER_RUNTIME_DIR=str(self.runtime), HOME=str(self.root))  # fmt: skip
        self.log = open(folder / f"{user}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--port={self.port}", "--ip=127.0.0.1",
             "--port-retries=0", f"--IdentityProvider.token={token}",
             "--ServerApp.allow_root=True", "--ServerApp.open_browser=False",
             f"--ServerApp.root_dir={self.root}", "--MlpApp.warm_kernels=0",
             "--MlpApp.team_admins=carol"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root,
        )  # fmt: skip
        self.client = ServerClient(f"http://127.0.0.1:{self.port}", token, user)
        self.api = f"{self.client.base}/mlp/api"

    def wait(self) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.user}'s server exited: {self.tail()}")
            return self.client.get("me").ok

        poll(f"{self.user}'s server", up, 120, every=0.2)
        assert self.client.json("me")["team"]  # (its token login is no hub user: a random name)

    def tracking_key(self) -> str:
        return (self.runtime / "jupyter-mlp-tracking-key").read_text().strip()

    def tail(self) -> str:
        return (self.root.parent / f"{self.user}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


TRACKER = """\
import sys, time, jupyter_mlp as mlp
mlp.track(sys.argv[1], project="bench", gpu=False)
log = mlp.log_metric
print("ready", flush=True)
sys.stdin.readline()
t0 = time.time()
for i in range({points}):
    log("loss", 0.5, step=i)
t1 = time.time()
mlp.flush()
t2 = time.time()
print("result", mlp.active_run().run_id, t0, t1, t2, flush=True)
mlp.finish()
"""


def ingest_figure(servers: list[Server], store: Store, points: int, spool: Path) -> dict:
    """One tracker per server, started together; all the points over (last stored - first log)."""
    procs = []
    for server in servers:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLP_")}
        env.update(MLP_TRACKING_URI=server.api, MLP_TRACKING_KEY=server.tracking_key(),
                   MLP_SPOOL_DIR=str(spool / server.user))  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-c", TRACKER.format(points=points), f"ingest-{server.user}"],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        while (line := proc.stdout.readline()) and line.strip() != "ready":
            pass  # the tracker's status line
        assert line, f"{server.user}'s tracker ended before it was ready"
        procs.append(proc)
    for proc in procs:  # go
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        (line,) = [x for x in out.splitlines() if x.startswith("result ")]
        run_id, t0, t1, t2 = line.split()[1:]
        results.append((run_id, float(t0), float(t1), float(t2)))
    conn = store.connect()
    for server, (run_id, *_) in zip(servers, results):
        stored, owner = conn.execute(
            "SELECT (SELECT COALESCE(SUM(count), 0) FROM metrics WHERE run_id = ?), owner "
            "FROM runs WHERE id = ?",
            (run_id, run_id),
        ).fetchone()
        assert stored == points and owner == server.user, (stored, owner, server.user)
    first = min(r[1] for r in results)
    last = max(r[3] for r in results)
    return {
        "ingest_two_users_per_s": round(2 * points / (last - first)),
        "ingest_two_users_flush_s": round(max(r[3] - r[2] for r in results), 2),
        "ingest_points_per_user": points,
    }


def cross_user_event_figure(alice: Server, bob: Server, store: Store, cells: int) -> dict:
    """A cell ends in a kernel of alice's server -> its `cells` event reaches bob's feed."""
    kernel = alice.client.kernel()
    try:
        out = kernel.run(
            "%load_ext jupyter_mlp\n%mlp_track latency --project bench --no-gpu\n"
            "import jupyter_mlp as mlp; print(mlp.active_run().run_id)"
        )
        run_id = out["stdout"].strip().splitlines()[-1]
        arrivals: dict[int, float] = {}
        last = bob.client.json("events")["last"]
        stop = threading.Event()

        def follow() -> None:
            after = last
            while not stop.is_set():
                body = bob.client.json("events", after=after, timeout=2)
                now = time.time()
                for event in body["events"]:
                    if event["run_id"] == run_id and event["type"] == "cells":
                        arrivals.setdefault(event["data"]["last_seq"], now)
                after = body["last"]

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        for i in range(cells):
            seen = len(arrivals)
            kernel.run(f"x = {i}")
            poll("the cell's event on bob's feed", lambda n=seen: len(arrivals) > n, 30)
        stop.set()
        kernel.run("%mlp_track stop")
        follower.join(10)
    finally:
        kernel.close()
    latencies = []
    for cell in run_store.get_run(store.connect(), run_id)["cells"]:
        if cell["seq"] in arrivals:
            ended = cell["started_at"] + cell["duration"]
            latencies.append((arrivals[cell["seq"]] - ended) * 1e3)
    assert len(latencies) >= min(cells, 10), (len(latencies), arrivals)
    return {
        "cross_user_event_ms": round(statistics.median(latencies), 1),
        "cross_user_event_max_ms": round(max(latencies), 1),
        "cross_user_event_samples": len(latencies),
    }


def servers_figures(pg: postgres.PgServer, points: int, cells: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="mlp-bench-team-"))
    database = pg.create_database()
    url = pg.url(database)
    servers: list[Server] = []
    try:
        shared = folder / "shared"
        Store(shared, url=url).connect()  # the schema once, not by two servers at once
        servers = [Server(user, url, shared, folder) for user in ("alice", "bob")]
        for server in servers:
            server.wait()
        store = Store(shared, url=url)
        figures = ingest_figure(servers, store, points, folder / "spool")
        figures.update(cross_user_event_figure(servers[0], servers[1], store, cells))
        return figures
    finally:
        for server in servers:
            server.stop()
        pg.drop_database(database)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--points", type=int, default=500_000, help="metric points per user")
    ap.add_argument("--cells", type=int, default=15)
    ap.add_argument("--skip-list", action="store_true")
    ap.add_argument("--skip-servers", action="store_true")
    args = ap.parse_args()
    os.environ.pop("MLP_STORE_URL", None)  # the SQLite figure is of the file under its home
    reason = postgres.missing_reason()
    if reason is not None:
        sys.exit(f"bench/store.py: {reason}")
    figures: dict = {}
    pg = postgres.start_server()
    try:
        if not args.skip_list:
            with tempfile.TemporaryDirectory() as home:
                store = Store(home, url=None)
                found, sqlite_page = list_figure(store, args.runs, "sqlite")
                figures.update(found)
                store.close()
            database = pg.create_database()
            with tempfile.TemporaryDirectory() as home:
                store = Store(home, url=pg.url(database))
                found, pg_page = list_figure(store, args.runs, "postgres")
                figures.update(found)
                store.close()
            pg.drop_database(database)
            assert sqlite_page == pg_page, "the engines answered different first pages"
        if not args.skip_servers:
            figures.update(servers_figures(pg, args.points, args.cells))
    finally:
        pg.cleanup()
    peer = importlib.util.find_spec("mlflow") is not None
    figures["mlflow_list_1m_ms"] = None  # no MLflow here: no peer figure (see the docstring)
    figures["mlflow_installed"] = peer
    for k, v in figures.items():
        print(f"{k:>30}: {v}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
