"""Property-based fuzzing of every registered route (hypothesis): whatever a caller sends, the
server answers within a deadline, never with a 5xx, and what was already stored stays as it was.

The request strategies are bench/fuzz_server.py's (the same inputs as the `fuzz_*` figures); here
they run against pytest-jupyter's server with a bounded number of examples (CI time)."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import sys
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_mlp.records import FILTER_MAX
from jupyter_mlp.server.app import MAX_HEADER_BYTES, raise_header_limit
from jupyter_mlp.server.routes.base import TokenBuckets
from jupyter_mlp.store.filter import FilterError, compile_filter

_spec = importlib.util.spec_from_file_location(
    "bench_fuzz_server", Path(__file__).parents[1] / "bench" / "fuzz_server.py"
)
assert _spec is not None and _spec.loader is not None
fuzz_server = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = fuzz_server  # dataclasses look their module up
_spec.loader.exec_module(fuzz_server)

EXAMPLES = 500  # about 30 s on two busy cores; bench/fuzz_server.py sends 10,000


@pytest.fixture
def jp_server_config(mlp_home):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlp": True}}}


async def test_no_generated_request_gets_a_5xx_a_hang_or_changes_stored_runs(
    jp_serverapp, http_server, http_server_port, jp_base_url, store
):
    app = jp_serverapp.web_app.settings["mlp"]
    app.token_buckets = TokenBuckets(burst=10**9)  # bad tokens on purpose; their limit: test_server
    raise_header_limit(http_server, MAX_HEADER_BYTES)  # as the extension does to a real server
    seeded = fuzz_server.seed(store)
    before = fuzz_server.snapshot(store, seeded)
    base = f"http://127.0.0.1:{http_server_port[-1]}{jp_base_url.rstrip('/')}"
    login = jp_serverapp.identity_provider.token

    def session() -> fuzz_server.Tally:
        own, tokens = fuzz_server.own_runs(base, login, 8)
        blobs = sorted({d for r in before.values() for d in r["blobs"]})
        ids = fuzz_server.Ids(seeded=seeded, own=own, tokens=tokens, blobs=blobs)
        return fuzz_server.fuzz(fuzz_server.Client(base, login, tokens), ids, EXAMPLES, 120)

    tally = await asyncio.to_thread(session)
    assert tally.requests >= EXAMPLES * 0.9
    assert (tally.server_errors, tally.hangs, tally.dropped) == (0, 0, 0), tally.examples
    assert fuzz_server.snapshot(store, seeded) == before
    # the service still answers
    r = await asyncio.to_thread(
        requests.get, f"{base}/mlp/api/runs", headers={"Authorization": f"token {login}"}
    )
    assert r.status_code == 200 and len(r.json()["runs"]) >= len(seeded)


def test_every_registered_route_and_method_is_generated():
    """The fuzzer walks the handlers: each route and method it serves has requests made for it."""
    ids = fuzz_server.Ids(["5eed00000000"], ["aaaa00000000"], {"aaaa00000000": "t"}, ["0" * 64])
    routes = fuzz_server.registered_routes()
    assert len(routes) >= 20
    for route in routes:
        seen: set[tuple[str, str]] = set()

        @settings(max_examples=5, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(fuzz_server.strategies([route], ids))
        def collect(request) -> None:
            seen.add((request.route, request.method.lower()))  # noqa: B023

        collect()
        assert seen == {route}


@pytest.fixture(scope="module")
def filter_db(tmp_path_factory):
    from jupyter_mlp.store import Store

    store = Store(tmp_path_factory.mktemp("filters"))
    fuzz_server.seed(store)
    yield store.connect()
    store.close()


FILTER_WORDS = st.sampled_from(
    ["and", "or", "not", "(", ")", "metrics.acc", "params.lr", "outputs.val", "status", "tags",
     "name", "pinned", "=", "!=", "<", ">=", "~", "!~", "0.9", "1e999", "null", "true", "'x'",
     '"a b"', "\\", "%", "_", "metrics.\"a", "duration", "id", "5eed"]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(
        st.lists(FILTER_WORDS, max_size=60).map(" ".join),
        st.text(max_size=80),
        st.builds(lambda w, n: " or ".join([w] * n), FILTER_WORDS, st.integers(0, 2000)),
        st.builds(lambda n: "(" * n + "a" + ")" * n, st.integers(0, 1500)),
    )
)
def test_any_filter_compiles_to_sql_sqlite_runs_or_is_refused_with_a_position(filter_db, expr):
    try:
        where, args = compile_filter(expr)
    except FilterError as exc:
        assert 0 <= exc.position <= max(len(expr), FILTER_MAX)
        return
    try:
        filter_db.execute(f"SELECT COUNT(*) FROM runs WHERE {where}", args).fetchone()
    except sqlite3.Error as exc:  # pragma: no cover - what this test exists to catch
        pytest.fail(f"{expr!r} compiled to SQL that SQLite refused: {exc}")


@pytest.mark.parametrize("broken", ["corrupt", "newer-schema"])
def test_a_real_server_on_a_broken_store_answers_503_json_and_stops_on_sigterm(tmp_path, broken):
    """`jupyter server` as a user starts it: the broken store is logged, /mlp/api answers a JSON
    503 naming the file (not Jupyter's HTML 404), and SIGTERM stops the server."""
    home = tmp_path / "home"
    home.mkdir()
    if broken == "corrupt":
        (home / "mlp.sqlite").write_bytes(b"not a database at all" * 200)
    else:
        conn = sqlite3.connect(home / "mlp.sqlite")
        conn.execute("PRAGMA user_version = 999")
        conn.close()
    login = "fuzz-login-token"
    proc, base = fuzz_server.start_server(tmp_path, home, login, ready="/api/status")
    try:
        r = requests.get(
            f"{base}/mlp/api/runs", headers={"Authorization": f"token {login}"}, timeout=10
        )
        assert r.status_code == 503 and r.headers["Content-Type"].startswith("application/json")
        assert str(home / "mlp.sqlite") in r.json()["message"]
    finally:
        assert fuzz_server.stop_server(proc, timeout=30)
    assert "mlp.sqlite" in (tmp_path / "server.log").read_text()
