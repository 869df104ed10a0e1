"""Fuzz figures: generated requests against every route of a real Jupyter server.

    python bench/fuzz_server.py [--n 10000]

Starts `jupyter server` with the extension on 127.0.0.1 in a temporary folder, seeds a store,
walks the registered handlers and sends `n` generated requests (bodies, query strings, filter
expressions, path parameters; a login for the user routes, a run token for the ingest routes).
Counts answers of 5xx, requests not answered within DEADLINE_S (hangs) and dropped connections,
and checks that nothing already stored changed. Last line: one JSON object.

The request strategies (hypothesis) are shared with tests/test_fuzz.py, so that the test and the
figure exercise the same inputs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEADLINE_S = 15.0  # one request; the event feed's own wait is capped below (EVENTS_WAIT)
EVENTS_WAIT = "0.2"

# --- what each route reads (beside anything the generator makes up) ------------------------------
QUERY_NAMES = {
    "/runs": ["project", "filter", "sort", "limit", "cursor"],
    "/runs/{run_id}/metrics": ["key", "points", "start", "end"],
    "/runs/{run_id}/gpu": ["points", "gpu", "start", "end"],
    "/runs/{run_id}/notebook": ["which"],
    "/compare": ["ids"],
    "/compare/metrics": ["ids", "key", "points", "start", "end"],
    "/events": ["after", "timeout", "limit"],
    "/pipelines/runs": ["path"],
    "/sweeps": ["limit"],
}
BODY_FIELDS = {
    ("/runs", "post"): ["name", "project", "tags"],
    ("/runs/{run_id}", "patch"): ["name", "tags", "pinned", "notes"],
    ("/runs/{run_id}/rerun", "post"): ["params", "executor", "gpus", "allow_new", "kernel", "name"],
    ("/pipelines/validate", "post"): ["spec", "path"],
    ("/pipelines/runs", "post"): ["path", "params", "executor", "no_cache", "resume"],
    ("/sweeps", "post"): [
        "template",
        "params",
        "objective",
        "trials",
        "concurrency",
        "sampler",
        "seed",
        "prune",
        "prune_startup",
        "prune_warmup",
        "timeout",
        "executor",
        "gpus",
        "allow_new",
        "kernel",
        "name",
    ],  # fmt: skip
    ("/ingest/job", "post"): [
        "state",
        "error",
        "output_notebook",
        "gpus",
        "cells_total",
        "note",
        "host",
        "worker",
        "attempt",
    ],  # fmt: skip
}
RUN_FIELDS = [
    "project", "name", "status", "kind", "parent_id", "pipeline_run_id", "stage", "notebook",
    "snapshot", "end_snapshot", "output_notebook", "kernel", "host", "user", "pid", "git", "env",
    "gpu", "created_at", "started_at", "ended_at", "heartbeat_at", "pinned", "tags", "notes", "error",
]  # fmt: skip
BATCH_SECTIONS = ["run", "heartbeat", "params", "metrics", "cells", "outputs", "gpu", "compact_gpu"]
WEIRD_NUMBERS = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "-1", "0", "1", "2.5", "1e-400",
    "9" * 40, "-" + "9" * 40, "0x10", " 5 ", "", "[]", "{}", "null", "true", "1_000", "\u0661",
]  # fmt: skip
FILTER_FIELDS = [
    "metrics.acc", "params.lr", "outputs.o", "status", "name", "tags", "pinned", "duration", "id",
    "created_at", "nope", 'metrics."a b"', "metrics.", "params", "kind.x",
]  # fmt: skip
FILTER_OPS = ["=", "==", "!=", "<", "<=", ">", ">=", "~", "!~", "=<", "<>", ""]
MUTATING = {"post", "put", "patch", "delete"}


@dataclass
class Request:
    method: str
    path: str  # under /mlp/api, path parameters filled in
    route: str  # the route as openapi.yaml writes it
    query: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    token_run: str | None = None  # send this run's token instead of the login


@dataclass
class Ids:
    """What the generator may name: seeded runs (read only), the fuzzer's own runs (which it may
    change or delete), their tokens, and blob hashes."""

    seeded: list[str]
    own: list[str]
    tokens: dict[str, str]
    blobs: list[str]


def strategies(routes: list[tuple[str, str]], ids: Ids) -> Any:
    """A hypothesis strategy of `Request` over `routes` [(route, method)]."""
    from hypothesis import strategies as st

    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(),
        st.text(max_size=20), st.sampled_from(["x" * 600, "\ud800", "\x00", "finished", "running"]),
        st.sampled_from(ids.blobs + ids.own + ids.seeded),
    )  # fmt: skip

    def keyed(names: list[str]) -> Any:
        return st.one_of(st.sampled_from(names), st.text(max_size=8))

    json_values = st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.dictionaries(
                keyed(RUN_FIELDS + ["ename", "evalue", "diff", "commit"]), inner, max_size=5
            ),  # fmt: skip
        ),
        max_leaves=25,
    )
    deep = st.integers(30, 3000).map(lambda n: "[" * n + "]" * n)
    raw_bodies = st.one_of(st.binary(max_size=40), deep, st.just("{"), st.just('{"a": NaN}'))

    term = st.one_of(
        st.builds(lambda f, o, v: f"{f} {o} {v}", st.sampled_from(FILTER_FIELDS),
                  st.sampled_from(FILTER_OPS),
                  st.one_of(st.sampled_from(["0.9", "finished", "true", "null", "'x'", '"y z"',
                                             "1e999", "-0", "(", ")"]), st.text(max_size=8))),
        st.text(max_size=12),
    )  # fmt: skip
    filters = st.one_of(
        st.recursive(
            term,
            lambda inner: st.one_of(
                inner.map("({})".format),
                inner.map("not {}".format),
                st.builds(
                    lambda a, b, j: f"{a} {j} {b}",
                    inner,
                    inner,
                    st.sampled_from(["and", "or", "AND", ""]),
                ),  # fmt: skip
            ),
            max_leaves=12,
        ),
        st.builds(
            lambda t, n, j: f" {j} ".join([t] * n),
            term,
            st.integers(1, 1500),
            st.sampled_from(["and", "or"]),
        ),  # fmt: skip
        st.builds(lambda t, n: "(" * n + t + ")" * n, term, st.integers(0, 2000)),
        st.builds(lambda t, n: "not " * n + t, term, st.integers(0, 2000)),
        st.integers(0, 70_000).map(lambda n: "name ~ " + "x" * n),
    )
    cursors = st.one_of(
        json_values.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()),
        st.text(max_size=20),
    )
    query_values = st.one_of(
        st.sampled_from(WEIRD_NUMBERS), st.text(max_size=30), st.integers(-(2**70), 2**70).map(str),
        st.floats().map(repr), filters, cursors, st.sampled_from(ids.seeded + ids.own),
    )  # fmt: skip
    queries = st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(sorted({n for v in QUERY_NAMES.values() for n in v})),
                st.text(max_size=6),
            ),
            query_values,
        ),  # fmt: skip
        max_size=4,
    )

    rows = st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(["loss", "acc", ""]),
                st.integers(-(2**70), 2**70),
                st.floats(),
                st.floats(),
            ).map(list),  # fmt: skip
            st.lists(json_values, max_size=10),
            json_values,
        ),
        max_size=6,
    )
    batches = st.dictionaries(
        keyed(BATCH_SECTIONS),
        st.one_of(rows, json_values, st.dictionaries(keyed(RUN_FIELDS), json_values, max_size=6)),
        max_size=5,
    )

    def ingest_body(run_id: str) -> Any:
        envelope = st.fixed_dictionaries(
            {},
            optional={
                "run_id": st.one_of(st.just(run_id), json_values),
                "seq": st.one_of(st.integers(-(2**70), 2**70), json_values),
                "batch": st.one_of(batches, json_values),
            },
        )
        return st.one_of(envelope.map(lambda d: json.dumps(d, allow_nan=True).encode()), raw_bodies)

    def body_for(route: str, method: str) -> Any:
        names = BODY_FIELDS.get((route, method), [])
        objects = st.dictionaries(keyed(names or ["x"]), json_values, max_size=6)
        return st.one_of(
            objects.map(lambda d: json.dumps(d, allow_nan=True).encode()),
            json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
            raw_bodies.map(lambda b: b if isinstance(b, bytes) else b.encode()),
            st.none(),
        )

    def run_ref(mutating: bool) -> Any:
        pool = ids.own if mutating else ids.own + ids.seeded
        return st.one_of(
            st.sampled_from(pool), st.sampled_from([r[:6] for r in pool]),
            st.text(alphabet="0123456789abcdefABCDEF./%", max_size=14), st.just("..%2F..%2Fetc"),
        )  # fmt: skip

    hashes = st.one_of(
        st.sampled_from(ids.blobs), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        st.text(max_size=10).map(lambda t: t.replace("/", "") or "x"),
    )  # fmt: skip

    def one(route: str, method: str) -> Any:
        mutating = method in MUTATING
        token_route = route.startswith("/ingest")

        def build(run: str, digest: str, query: list, sent: tuple[str, Any]) -> Request:
            token_run, body = sent
            if route == "/ingest/blobs/{hash}" and digest == "SELF":
                digest = hashlib.sha256(body).hexdigest()
            path = (
                route.replace("{run_id}", run)
                .replace("{pipeline_run_id}", run)
                .replace("{sweep_id}", run)
            )
            path = path.replace("{hash}", digest)
            if route == "/events":  # the feed may wait as long as asked: ask briefly
                query = [(k, v) for k, v in query if k != "timeout"] + [("timeout", EVENTS_WAIT)]
            return Request(
                method.upper(), path, route, query, body, token_run if token_route else None
            )

        own = st.sampled_from(ids.own)
        hash_choice = hashes
        if route == "/ingest" and method == "post":
            sent = own.flatmap(lambda r: ingest_body(r).map(lambda b: (r, b)))
        elif route == "/ingest/blobs/{hash}":
            sent = st.tuples(own, st.binary(max_size=200))
            hash_choice = st.one_of(st.just("SELF"), hashes)
        elif method == "get":
            sent = st.tuples(own, st.none())
        else:
            sent = st.tuples(own, body_for(route, method))
        return st.builds(build, run_ref(mutating), hash_choice, queries, sent)

    return st.sampled_from(routes).flatmap(lambda rm: one(*rm))


def registered_routes() -> list[tuple[str, str]]:
    from jupyter_mlp.server.routes import HANDLERS, methods

    return sorted((h.path, m) for h in HANDLERS for m in methods(h))


# --- the store the fuzzer must not change ---------------------------------------------------------


def seed(store: Any) -> list[str]:
    """A few runs with every kind of record; returns their ids."""
    from jupyter_mlp.store.records import apply_batch

    nb = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    snap = store.blobs.put_bytes(nb)
    art = store.blobs.put_bytes(b"weights")
    ids = []
    for i in range(4):
        run_id = f"5eed{i:08x}"
        batch = {
            "run": {"name": f"seeded {i}", "status": "finished", "project": "fuzz", "tags": ["a"],
                    "snapshot": snap, "git": {"commit": "abc", "diff": art}, "created_at": 1.0 + i,
                    "started_at": 1.0 + i, "ended_at": 2.0 + i},
            "params": [["lr", "0.1", "float", "api"], ["name", '"x"', "str", "api"]],
            "metrics": [["acc", s, s / 10, 1.0 + s] for s in range(20)],
            "cells": [[1, "c1", 1, "x = 1", 1.0, 0.5, "ok", None, None]],
            "outputs": [["model", "artifact", "{}", art, 7, "m.bin", 1.0],
                        ["val", "value", "0.9", None, None, None, 1.0]],
            "gpu": [[0, 1.0 + s, 50.0, 1e9, 1e8, 100.0, 60.0, 1500.0, None] for s in range(5)],
        }  # fmt: skip
        with store.write() as conn:
            apply_batch(conn, run_id, batch)
        ids.append(run_id)
    return ids


def snapshot(store: Any, run_ids: list[str]) -> dict[str, Any]:
    """What a user would see of the seeded runs: each whole, its parts, series and blobs."""
    from jupyter_mlp.store import runs as run_store
    from jupyter_mlp.store import series

    conn = store.connect()
    found: dict[str, Any] = {}
    for run_id in run_ids:
        try:
            run = run_store.get_run(conn, run_id)
        except run_store.RunNotFound:
            found[run_id] = None
            continue
        blobs = run_store.run_blobs(conn, run_id)
        found[run_id] = {
            "run": run,
            "parts": [run_store.run_part(conn, run_id, p) for p in ("params", "cells", "outputs")],
            "acc": series.metric(conn, run_id, "acc", 1000),
            "gpu": series.gpu(conn, run_id, 1000),
            "blobs": {d: hashlib.sha256(store.blobs.read_bytes(d)).hexdigest() for d in blobs},
        }
    return json.loads(json.dumps(found, default=str))


# --- sending -----------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    server_errors: int = 0
    hangs: int = 0
    dropped: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # a few failing requests, for the log

    def add(self, request: Request, status: int | str) -> None:
        self.requests += 1
        if status == "hang":
            self.hangs += 1
        elif status == "dropped":
            self.dropped += 1
        else:
            assert isinstance(status, int)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status < 500:
                return
            self.server_errors += 1
        if len(self.examples) < 5:
            self.examples.append(f"{status} {request.method} {request.path[:200]} "
                                 f"{request.query!r:.200} {request.body!r:.200}")  # fmt: skip


class Client:
    """Blocking HTTP to the server (the caller runs it off the server's event loop)."""

    def __init__(self, base: str, login: str, tokens: dict[str, str]) -> None:
        import requests

        self.base = base.rstrip("/") + "/mlp/api"
        self.login = login
        self.tokens = tokens
        self.http = requests.Session()

    def send(self, request: Request) -> int | str:
        import requests

        headers = {"Content-Type": "application/json"}
        if request.token_run is not None:
            headers["X-MLP-Run-Token"] = self.tokens.get(request.token_run, "")
        else:
            headers["Authorization"] = f"token {self.login}"
        try:
            r = self.http.request(
                request.method, self.base + _quote_path(request.path), params=request.query,
                data=request.body, headers=headers, timeout=(5, DEADLINE_S), allow_redirects=False,
            )  # fmt: skip
        except requests.Timeout:
            return "hang"
        except requests.RequestException:
            return "dropped"
        return r.status_code


def _quote_path(path: str) -> str:
    from urllib.parse import quote

    return "/".join(quote(part, safe="%") for part in path.split("/"))


def fuzz(client: Client, ids: Ids, n: int, seconds: float, seed_value: int = 0) -> Tally:
    """Send `n` generated requests (at most `seconds` long) and count the answers."""
    from hypothesis import HealthCheck, Phase, given, settings

    tally = Tally()
    stop_at = time.monotonic() + seconds

    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategies(registered_routes(), ids))
    def send(request: Request) -> None:
        if time.monotonic() < stop_at:
            tally.add(request, client.send(request))

    send()
    return tally


# --- a real server -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    root: Path, home: Path, login: str, ready: str = "/mlp/api/executors"
) -> tuple[subprocess.Popen, str]:
    """`jupyter server` with the extension on 127.0.0.1; returns once `ready` answers 200."""
    port = _free_port()
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"jupyter_mlp": True}, "open_browser": False},
        # the fuzzer sends bad tokens on purpose: their rate limit is tested elsewhere
        "MlpApp": {"token_failures_burst": 10**9},
    }))  # fmt: skip
    env = {**os.environ, "MLP_HOME": str(home), "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_DATA_DIR": str(root / "data"), "JUPYTER_RUNTIME_DIR": str(root / "runtime")}  # fmt: skip
    notebooks = root / "notebooks"
    notebooks.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={login}", f"--ServerApp.root_dir={notebooks}",
         "--ServerApp.allow_root=True"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(root / "server.log", "wb"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 60
    while True:
        try:
            r = requests.get(f"{base}{ready}", timeout=2,
                             headers={"Authorization": f"token {login}"})  # fmt: skip
            if r.status_code == 200:
                return proc, base
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(
                f"the server did not start: {(root / 'server.log').read_text()[-2000:]}"
            )
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen, timeout: float = 20) -> bool:
    """SIGTERM; True when the server exited within `timeout`."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def own_runs(base: str, login: str, count: int) -> tuple[list[str], dict[str, str]]:
    import requests

    ids, tokens = [], {}
    for i in range(count):
        r = requests.post(f"{base}/mlp/api/runs", json={"name": f"fuzz {i}", "project": "fuzz"},
                          headers={"Authorization": f"token {login}"}, timeout=10)  # fmt: skip
        r.raise_for_status()
        ids.append(r.json()["id"])
        tokens[r.json()["id"]] = r.json()["token"]
    return ids, tokens


def run(n: int = 10000, seconds: float = 900.0) -> dict:
    """Start a server, seed it, send `n` generated requests; the figures as a dict."""
    from jupyter_mlp.store import Store

    with tempfile.TemporaryDirectory(prefix="mlp-fuzz-") as tmp:
        root = Path(tmp)
        home = root / "home"
        store = Store(home)
        seeded = seed(store)
        before = snapshot(store, seeded)
        login = hashlib.sha256(os.urandom(16)).hexdigest()
        proc, base = start_server(root, home, login)
        started = time.monotonic()
        try:
            own, tokens = own_runs(base, login, 20)
            blobs = sorted({d for r in before.values() for d in (r or {}).get("blobs", {})})
            ids = Ids(seeded=seeded, own=own, tokens=tokens, blobs=blobs)
            tally = fuzz(Client(base, login, tokens), ids, n, seconds)
        finally:
            stopped = stop_server(proc)
        after = snapshot(store, seeded)
        changed = sorted(r for r in seeded if before[r] != after[r])
        store.close()
        errors = re.findall(r"Traceback|Uncaught exception", (root / "server.log").read_text())
        return {
            "fuzz_requests": tally.requests,
            "fuzz_5xx": tally.server_errors,
            "fuzz_hangs": tally.hangs,
            "fuzz_dropped": tally.dropped,
            "fuzz_seeded_runs_changed": len(changed),
            "fuzz_server_tracebacks": len(errors),
            "fuzz_statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
            "fuzz_seconds": round(time.monotonic() - started, 1),
            "fuzz_stopped_on_sigterm": stopped,
            "fuzz_examples": tally.examples,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=900.0, help="stop sending after this long")
    args = p.parse_args()
    figures = run(args.n, args.seconds)
    for k, v in figures.items():
        if not isinstance(v, (dict, list)):
            print(f"{k}: {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
