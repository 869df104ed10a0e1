"""The store on PostgreSQL (team mode): what only a server has. Event ids never visible out of
order under concurrent writers, LISTEN waking the feed and the drivers' watcher, a server that
restarts mid-write (nothing lost, the next call works), errors that name the URL without its
password, several processes migrating at once, and filters that answer as SQLite's do.

Every other store test runs on both engines (conftest.any_store); these need the session's
server (tests/postgres.py) and are skipped with the reason where there is none."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jupyter_mlp.store import SchemaTooNew, Store, StoreUnavailable, events
from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.db import ChangeWatcher, StoreUnreachable, safe_url, write
from jupyter_mlp.store.records import apply_batch, ingest_batch, metric_count, metric_series
from jupyter_mlp.store.schema import SCHEMA_VERSION

PASSWORD = "s3cret-pw"  # tests/postgres.py's


@pytest.fixture
def pg_store(pg_url, mlp_home):
    s = Store(mlp_home, url=pg_url)
    yield s
    s.close()


def no_password(text: str) -> None:
    assert PASSWORD not in text and "wrong-pw" not in text, text


# --- the event feed --------------------------------------------------------------------------


def test_event_ids_never_become_visible_out_of_order_under_concurrent_writers(pg_store, mlp_home):
    """Writers that hold their transaction open a while after appending: without the write
    lock a smaller id could commit after a larger one, and a reader at `id > last` skip it."""
    url = pg_store.url
    done = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        store = Store(mlp_home, url=url)
        rnd = random.Random(n)
        try:
            for i in range(40):
                with store.write() as conn:
                    apply_batch(conn, f"eeee{n:04d}{i:04d}", {"run": {"name": "w"},
                                "metrics": [("m", i, 1.0, time.time())]})  # fmt: skip
                    time.sleep(rnd.random() * 0.004)
        except BaseException as exc:  # pragma: no cover - the failure reported below
            errors.append(exc)
        finally:
            store.close()

    seen: list[int] = []

    def reader() -> None:
        conn = Store(mlp_home, url=url).connect()
        last = 0
        while True:
            finished = done.is_set()
            for event in events.after(conn, last):
                seen.append(event["id"])
                last = event["id"]
            if finished:
                return

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    read = threading.Thread(target=reader)
    read.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    read.join()
    assert not errors
    every = [r[0] for r in pg_store.connect().execute("SELECT id FROM events ORDER BY id")]
    assert len(every) == 4 * 40 * 2  # a run event and a metrics event per batch
    assert seen == every  # in order, none skipped


async def test_listen_wakes_the_event_feed_at_once(pg_store):
    from jupyter_mlp.server.feed import EventFeed

    feed = EventFeed(pg_store)
    last = feed.last_id()

    def later() -> None:
        time.sleep(0.5)
        other = Store(pg_store.home, url=pg_store.url)
        with other.write() as conn:
            events.append(conn, None, "ping", {})
        other.close()

    writer = threading.Thread(target=later)
    start = time.monotonic()
    writer.start()
    try:
        found = await feed.wait(last, timeout=20)
    finally:
        feed.stop()
        writer.join()
    took = time.monotonic() - start
    assert [e["type"] for e in found] == ["ping"]
    assert took < 5, took  # woken by the notification, not by the 20 s timeout


def test_the_change_watcher_wakes_on_any_commit_and_on_its_event(pg_store):
    watcher = ChangeWatcher(pg_store.path)
    try:
        version = watcher.version()
        assert watcher.wait(version, 0.2) is False  # nothing happened

        def later() -> None:
            time.sleep(0.3)
            with pg_store.write() as conn:
                apply_batch(conn, "abcd00000001", {"run": {"name": "x"}})

        threading.Thread(target=later).start()
        start = time.monotonic()
        assert watcher.wait(version, 20) is True
        assert time.monotonic() - start < 5
        stop = threading.Event()
        stop.set()
        assert watcher.wait(watcher.version(), 20, event=stop) is False
    finally:
        watcher.close()


# --- a server that goes away ----------------------------------------------------------------


def _restart(server, pause: float = 0.5) -> None:
    server.stop("fast")  # terminates every session, as an administrator's restart does
    time.sleep(pause)
    server.start()


def test_a_server_restarting_mid_write_loses_nothing_and_the_next_call_works(
    postgres_server, pg_store
):
    """A writer that retries what failed (as the tracker's spool does): every batch is there
    exactly once (ingest's seq makes a retried batch a no-op), the same Store object works
    after the restart, and the errors met name the URL without its password."""
    run = run_store.create_run(pg_store.connect(), {"name": "long", "status": "running"})
    run_id, total = run["id"], 120
    met: list[StoreUnavailable] = []

    def writer() -> None:
        for seq in range(total):
            while True:
                try:
                    with pg_store.write() as conn:
                        ingest_batch(conn, run_id, seq, {"metrics": [("m", seq, 1.0, time.time())]})
                    break
                except StoreUnavailable as exc:
                    met.append(exc)
                    time.sleep(0.05)
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 30
    while metric_count(pg_store.connect(), run_id) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    _restart(postgres_server)
    thread.join(60)
    assert not thread.is_alive()
    assert met, "the writer never saw the server go away"
    for exc in met:
        assert isinstance(exc, StoreUnreachable)
        no_password(str(exc))
        assert safe_url(pg_store.url) in str(exc)
    conn = pg_store.connect()
    assert metric_count(conn, run_id) == total
    steps = [r[0] for r in conn.execute("SELECT seq FROM ingested WHERE run_id = ?", (run_id,))]
    assert sorted(steps) == list(range(total))


def test_the_tracker_spools_while_the_server_restarts_and_writes_it_all_after(
    postgres_server, pg_store, tmp_path, monkeypatch
):
    from jupyter_mlp.tracker.sinks import Kept, StoreSink

    monkeypatch.setenv("MLP_STORE_URL", pg_store.url)
    monkeypatch.setenv("MLP_SPOOL_DIR", str(tmp_path / "spool"))
    run_id = "feed00000001"
    sink = StoreSink(pg_store.home, run_id)
    kept = 0
    for step in range(60):
        batch: dict = {"metrics": [("loss", step, 1.0 / (step + 1), time.time())]}
        if step == 0:
            batch["run"] = {"name": "spooled", "status": "running"}
        if step == 20:
            postgres_server.stop("fast")
        if step == 40:
            postgres_server.start()
        try:
            sink.write(run_id, batch)
        except Kept as exc:
            kept += 1
            no_password(str(exc))
    deadline = time.monotonic() + 30
    while True:
        try:
            sink.flush()
            break
        except Kept:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert kept == 20  # while the server was down: spooled, then written in order
    series = run_store.run_part(pg_store.connect(), run_id, "metric_keys")
    assert series[0]["key"] == "loss" and series[0]["step"] == 59
    steps = {s for s, _, _ in metric_series(pg_store.connect(), run_id, "loss")}
    assert steps == set(range(60))


# --- errors named, the password never shown -------------------------------------------------


def _refused(url: str, home: Path) -> StoreUnavailable:
    with pytest.raises(StoreUnavailable) as info:
        Store(home, url=url).connect()
    no_password(str(info.value))
    return info.value


def test_store_errors_name_the_url_without_its_password(postgres_server, pg_url, tmp_path):
    server = postgres_server
    exc = _refused("mysql://u:wrong-pw@db/x", tmp_path)
    assert "mysql://u:***@db/x" in str(exc) and "postgresql://" in str(exc)
    exc = _refused(server.url("postgres", password="wrong-pw"), tmp_path)
    assert isinstance(exc, StoreUnreachable) and "refused the credentials" in str(exc)
    assert f"mlp:***@127.0.0.1:{server.port}/postgres" in str(exc)
    import postgres

    down = f"postgresql://mlp:wrong-pw@127.0.0.1:{postgres.free_port()}/x"
    exc = _refused(down, tmp_path)
    assert "cannot be reached" in str(exc) and "is running" in str(exc)
    exc = _refused(server.url("no_such_db_here"), tmp_path)
    assert "no such database" in str(exc)
    exc = _refused(pg_url + "?password=wrong-pw", tmp_path)  # the parameter wins over the URL's
    assert "password=***" in str(exc)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://mlp:wrong-pw@[broken/db", "not a valid PostgreSQL URL"),
        ("postgresql://mlp:wrong-pw@127.0.0.1:99999/db", "not a valid PostgreSQL URL"),
        ("postgresql://mlp@127.0.0.1:1/db?password=wrong-pw&sslmode=bogus", "not a valid"),
        ("postgres://mlp:wrong-pw@host.invalid/db", "cannot be reached"),
    ],
)
def test_a_url_libpq_refuses_is_named_without_its_password(url, says, tmp_path):
    exc = _refused(url, tmp_path)
    assert says in str(exc) and "***" in str(exc)


def test_the_cli_prints_one_line_and_exits_2_without_the_password(postgres_server, tmp_path):
    jupyter = str(Path(sys.executable).parent / "jupyter")
    env = {**os.environ, "MLP_HOME": str(tmp_path / "h"),
           "MLP_STORE_URL": postgres_server.url("postgres", password="wrong-pw")}  # fmt: skip
    done = subprocess.run([jupyter, "mlp", "runs", "list"], env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the credentials" in lines[0], done.stderr
    no_password(done.stderr + done.stdout)


def test_messages_name_the_shared_store_not_the_unused_home(pg_store, pg_url, tmp_path):
    """On a PostgreSQL store a listing that finds nothing names that store (its password
    hidden), not the local home folder it does not use."""
    jupyter = str(Path(sys.executable).parent / "jupyter")
    env = {**os.environ, "MLP_HOME": str(tmp_path / "unused"), "MLP_STORE_URL": pg_url}
    done = subprocess.run([jupyter, "mlp", "runs", "list", "--filter", "name = nothing-here"],
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"no runs ({pg_store.where()})" in done.stdout and "unused" not in done.stdout
    assert pg_store.where().startswith("postgresql://")
    no_password(done.stdout + pg_store.where())


def test_a_schema_newer_than_the_code_is_refused_and_never_written(pg_url, tmp_path):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE mlp_schema (version BIGINT NOT NULL)")
        conn.execute("INSERT INTO mlp_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaTooNew) as info:
        Store(tmp_path, url=pg_url).connect()
    message = str(info.value)
    assert "newer than this jupyter-mlp" in message and "upgrade" in message
    no_password(message)
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == [("mlp_schema",)]


def test_several_processes_migrating_at_once_make_one_schema(pg_url, tmp_path):
    code = (
        "import sys; from jupyter_mlp.store import Store; "
        "from jupyter_mlp.store.schema import pg_version; "
        "print(pg_version(Store(sys.argv[1], url=sys.argv[2]).connect()))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / f"h{i}"), pg_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1] for o in outs]
    assert [o[0].strip() for o in outs] == [str(SCHEMA_VERSION)] * 4
    conn = Store(tmp_path, url=pg_url).connect()
    assert conn.execute("SELECT COUNT(*) FROM mlp_schema").fetchone()[0] == 1


# --- the same answers as SQLite --------------------------------------------------------------

FILTERS = [
    "", "metrics.acc > 0.9", "params.lr <= 0.01", "params.opt = sgd", "status = finished",
    "tags = base", "tags != base", "name ~ SMALL", "name !~ l", "Base", "aaaa", "created_at < '2000'",
    "created_at > '1000.5'", "created_at != 1000", "started_at >= 1000", "duration > 5", "duration < 3.5",
    "name = 5", "pinned = true", "pinned = false", "kernel = null", "outputs.score > 1",
    "outputs.label = cat", "started_at ~ 1001", "params.lr ~ 0.0", "user = me", "owner != me",
    "not (status = finished) or metrics.acc >= 0.99", "metrics.acc = null", 'params."x y" = 1',
]  # fmt: skip


def _fill(store) -> None:
    rows = [
        ("aaaa00000001", "baseline", "finished", {"lr": 0.1, "opt": "sgd", "x y": 1}, 0.95, ["base"]),
        ("aaaa00000002", "small lr", "finished", {"lr": 0.001, "opt": "adam"}, 0.97, []),
        ("bbbb00000003", "broken", "failed", {"lr": 0.01}, None, ["Base", "x"]),
        ("bbbb00000004", "5", "running", {}, 0.99, []),
    ]  # fmt: skip
    for i, (run_id, name, status, params, acc, tags) in enumerate(rows):
        batch: dict = {
            "run": {"name": name, "status": status, "tags": tags, "user": "me" if i % 2 else "you",
                    "started_at": 1000.0 + i, "ended_at": 1004.0 + 2 * i, "pinned": i == 1},
            "params": [(k, json.dumps(v), type(v).__name__, "api") for k, v in params.items()],
            "metrics": [("acc", 0, acc, 1.0)] if acc is not None else [],
            "outputs": [("score", "value", json.dumps(i), None, None, None, 1.0),
                        ("label", "value", json.dumps("cat" if i else "dog"), None, None, None, 1.0)],
        }  # fmt: skip
        with store.write() as conn:
            apply_batch(conn, run_id, batch)


def test_the_filter_language_answers_the_same_on_both_engines(pg_store, mlp_home):
    lite = Store(mlp_home / "lite")
    _fill(lite)
    _fill(pg_store)
    for sort in ("-created_at", "name", "-metrics.acc", "params.lr", "duration"):
        for expr in FILTERS:
            want = [r["id"] for r in run_store.list_runs(lite.connect(), filter=expr, sort=sort)]
            got = [r["id"] for r in run_store.list_runs(pg_store.connect(), filter=expr, sort=sort)]
            assert got == want, (expr, sort)
    page = run_store.list_page(pg_store.connect(), sort="-metrics.acc", limit=2)
    rest = run_store.list_page(
        pg_store.connect(), sort="-metrics.acc", limit=2, cursor=page["next"]
    )
    assert [r["name"] for r in page["runs"] + rest["runs"]] == [
        "5",
        "small lr",
        "baseline",
        "broken",
    ]
    a = run_store.get_run(lite.connect(), "aaaa00000002")
    b = run_store.get_run(pg_store.connect(), "aaaa00000002")
    for key in ("created_at",):
        a.pop(key), b.pop(key)
    assert a == b


def test_the_sqlite_path_never_imports_psycopg(tmp_path):
    code = (
        "import sys, jupyter_mlp, jupyter_mlp.tracker.sinks; from jupyter_mlp.store import Store, runs; "
        "runs.list_runs(Store(sys.argv[1]).connect()); print('psycopg' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLP_STORE_URL"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.stdout.strip() == "False", done.stderr


def test_connections_write_in_a_transaction_that_notifies(pg_store):
    conn = pg_store.connect()
    with write(conn):
        assert conn.raw.info.transaction_status.name == "INTRANS"
    assert conn.raw.info.transaction_status.name == "IDLE"
    with pytest.raises(RuntimeError), write(conn):
        events.append(conn, None, "x", {})
        raise RuntimeError("rolled back")
    assert conn.execute("SELECT COUNT(*) FROM events WHERE type = 'x'").fetchone()[0] == 0


# --- the server ------------------------------------------------------------------------------


@pytest.fixture
def jp_server_config(pg_url, monkeypatch):
    """The server with the extension on the test's PostgreSQL database."""
    monkeypatch.setenv("MLP_STORE_URL", pg_url)
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlp": True}}}


async def test_the_server_answers_503_while_postgresql_is_down_and_serves_again_after(
    jp_fetch, postgres_server, pg_store
):
    import tornado.httpclient

    with pg_store.write() as conn:
        apply_batch(conn, "abcd00000001", {"run": {"name": "shared", "status": "finished"}})

    async def names() -> list[str]:
        response = await jp_fetch("mlp", "api", "runs")
        return [r["name"] for r in json.loads(response.body)["runs"]]

    assert await names() == ["shared"]
    postgres_server.stop("fast")
    try:
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await names()
        assert info.value.code == 503
        assert info.value.response.headers.get("Retry-After") == "5"
        message = json.loads(info.value.response.body)["message"]
        assert safe_url(pg_store.url) in message and "cannot be reached" in message
        no_password(message)
    finally:
        postgres_server.start()
    assert await names() == ["shared"]  # connections opened again: no restart of Jupyter


@pytest.fixture
def postgres_down_at_start(pg_url, postgres_server, monkeypatch):
    """The team's database is down when Jupyter starts (the server is tried again every 0.2 s
    here, 5 s by default)."""
    monkeypatch.setattr("jupyter_mlp.server.app.STORE_RETRY_S", 0.2)
    postgres_server.stop("fast")
    yield postgres_server
    if not postgres_server.running():
        postgres_server.start()


async def test_a_server_started_while_postgresql_is_down_serves_once_it_is_up(
    postgres_down_at_start, jp_fetch, jp_serverapp
):
    import tornado.httpclient

    app = jp_serverapp.web_app.settings["mlp"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlp", "api", "runs")
    assert info.value.code == 503
    message = json.loads(info.value.response.body)["message"]
    assert "cannot be reached" in message
    no_password(message)
    assert app.jobs is None  # nothing started on a store it cannot read
    postgres_down_at_start.start()
    deadline = time.monotonic() + 30
    while True:  # no restart of Jupyter: it serves, and its job service runs, once the store is up
        try:
            response = await jp_fetch("mlp", "api", "runs")
            break
        except tornado.httpclient.HTTPClientError as exc:
            assert exc.code == 503 and time.monotonic() < deadline, exc
            await asyncio.sleep(0.1)
    assert json.loads(response.body)["runs"] == []
    assert app.jobs is not None and app._reconciler is not None


def test_a_role_that_may_not_create_tables_is_told_so(postgres_server, pg_url, tmp_path):
    import psycopg

    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS reader")
        conn.execute("CREATE ROLE reader LOGIN PASSWORD 'wrong-pw'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        url = postgres_server.url(name, password="wrong-pw", user="reader")
        exc = _refused(url, tmp_path)
        assert "could not make or migrate its tables" in str(exc) and "owns the database" in str(
            exc
        )
    finally:
        postgres_server.drop_database(name)  # its objects first: then the role can go
        postgres_server.admin("DROP ROLE IF EXISTS reader")
