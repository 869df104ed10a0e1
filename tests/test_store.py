"""The store on its own: schema, filter language, listing, blobs, lost runs."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest

from jupyter_mlp.store import FilterError, RunNotFound, Store
from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.blobs import BlobNotFound
from jupyter_mlp.store.filter import compile_filter
from jupyter_mlp.store.records import apply_batch, metric_series
from jupyter_mlp.store.schema import SCHEMA_VERSION, SchemaTooNew, migrate


@pytest.fixture
def store(any_store):
    """Every test here runs on both engines (conftest.any_store)."""
    return any_store


def add_run(
    store,
    run_id,
    *,
    name,
    status="finished",
    params=None,
    metrics=None,
    tags=(),
    project="p",
    **fields,
):
    batch = {
        "run": {"name": name, "status": status, "project": project, "tags": list(tags),
                "started_at": 1000.0, "ended_at": 1010.0, **fields},
        "params": [(k, json.dumps(v), type(v).__name__, "api") for k, v in (params or {}).items()],
        "metrics": [(k, 0, float(v), 1.0) for k, v in (metrics or {}).items()],
    }  # fmt: skip
    with store.write() as conn:
        apply_batch(conn, run_id, batch)


@pytest.fixture
def runs(store):
    add_run(
        store,
        "aaaa00000001",
        name="baseline",
        params={"lr": 0.1, "opt": "sgd"},
        metrics={"acc": 0.95},
        tags=["base"],
    )
    add_run(
        store,
        "aaaa00000002",
        name="small lr",
        params={"lr": 0.001, "opt": "adam"},
        metrics={"acc": 0.97},
    )
    add_run(
        store,
        "bbbb00000003",
        name="broken",
        status="failed",
        params={"lr": 0.01},
        metrics={"acc": 0.5},
    )
    add_run(store, "bbbb00000004", name="other project", project="q", metrics={"acc": 0.99})
    return store


def names(store, **kw):
    return [r["name"] for r in run_store.list_runs(store.connect(), **kw)]


@pytest.mark.sqlite_only("PRAGMA user_version and WAL")
def test_schema_version_and_wal(store):
    conn = store.connect()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert migrate(conn) == SCHEMA_VERSION  # idempotent


def test_a_store_from_a_newer_version_is_refused_clearly(mlp_home):
    mlp_home.mkdir(parents=True)
    conn = sqlite3.connect(mlp_home / "mlp.sqlite")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match="upgrade jupyter-mlp"):
        Store(mlp_home).connect()


def test_concurrent_first_open_migrates_once(mlp_home):
    """Eight threads open a new store at once, a hundred times: none fails (switching a new file
    to WAL answered "database is locked" to one of them about one time in twenty)."""
    errors = []

    def open_store(home):
        try:
            Store(home).connect()
        except Exception as exc:  # pragma: no cover - the failure this test guards against
            errors.append(exc)

    for attempt in range(100):
        home = mlp_home / str(attempt)
        threads = [threading.Thread(target=open_store, args=(home,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_the_filter_language_selects_runs(runs):
    assert names(runs, filter="metrics.acc > 0.9 and params.lr <= 0.01 and status = finished") == [
        "small lr"
    ]
    assert names(runs, filter="params.opt = sgd") == ["baseline"]
    assert sorted(names(runs, filter="status != failed", project="p")) == ["baseline", "small lr"]
    assert names(runs, filter="tags = base") == ["baseline"]
    assert names(runs, filter="broken") == ["broken"]  # free text
    assert names(runs, filter='name ~ "small"') == ["small lr"]
    assert sorted(names(runs, filter="not (status = finished) or metrics.acc >= 0.99")) == [
        "broken",
        "other project",
    ]
    assert names(runs, filter="aaaa00000002") == ["small lr"]  # an id
    assert names(runs, filter="metrics.missing > 1") == []


def test_sorting_by_a_metric_and_a_column(runs):
    assert names(runs, sort="-metrics.acc", project="p") == ["small lr", "baseline", "broken"]
    assert names(runs, sort="params.lr", project="p") == ["small lr", "broken", "baseline"]
    assert names(runs, sort="name", project="p") == ["baseline", "broken", "small lr"]
    with pytest.raises(FilterError):
        names(runs, sort="bogus")


@pytest.mark.parametrize(
    ("expr", "position"),
    [
        ("metrics.acc >", 13),
        ("foo = 1", 0),
        ("status = finished and (lr", 25),
        ("status = @", 9),
        ("metrics.acc > 0.9 )", 18),
        ("metrics.acc = high", 14),  # the value it is about
    ],
)
def test_malformed_filters_say_where(expr, position):
    with pytest.raises(FilterError) as info:
        compile_filter(expr)
    assert info.value.position == position


def test_filter_values_are_parameters_never_sql(runs):
    sql, args = compile_filter('name = "x\'; DROP TABLE runs; --"')
    assert "DROP" not in sql and args == ["x'; DROP TABLE runs; --"]
    assert names(runs, filter='name = "x\'; DROP TABLE runs; --"') == []
    assert len(names(runs)) == 4


def test_run_ids_resolve_by_prefix(runs):
    conn = runs.connect()
    assert run_store.resolve_id(conn, "aaaa00000001") == "aaaa00000001"
    add_run(runs, "cafe12345678", name="unique")
    assert run_store.resolve_id(conn, "cafe") == "cafe12345678"
    with pytest.raises(RunNotFound, match="several runs"):
        run_store.resolve_id(conn, "aaaa")
    for bad in ("zz", "../etc", "%2e%2e", "ffff"):
        with pytest.raises(RunNotFound):
            run_store.resolve_id(conn, bad)


def test_blobs_are_content_addressed_and_refuse_paths(store, tmp_path):
    digest = store.blobs.put_bytes(b"hello")
    assert store.blobs.put_bytes(b"hello") == digest
    assert store.blobs.read_bytes(digest) == b"hello"
    f = tmp_path / "f.bin"
    f.write_bytes(b"hello")
    assert store.blobs.put_file(f) == (digest, 5)
    assert store.blobs.path(digest).parent.name == digest[:2]
    for bad in ("../../etc/passwd", "0" * 63, "g" * 64, ""):
        with pytest.raises(BlobNotFound):
            store.blobs.read_bytes(bad)
    assert not [p for p in store.blobs.root.rglob(".tmp-*")]


def test_a_blob_is_as_readable_as_any_file_its_writer_makes(store, tmp_path):
    """Not mkstemp's 0600: a team's servers, run as several OS users sharing a group folder,
    read each other's snapshots. The mode follows the umask, as open() would."""
    import os
    import stat

    from jupyter_mlp.store.blobs import file_mode

    umask = os.umask(0o022)
    os.umask(umask)
    assert file_mode() == 0o666 & ~umask
    f = tmp_path / "f.bin"
    f.write_bytes(b"a file")
    for digest in (store.blobs.put_bytes(b"some bytes"), store.blobs.put_file(f)[0]):
        mode = stat.S_IMODE(store.blobs.path(digest).stat().st_mode)
        assert mode == stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask


def test_a_run_whose_heartbeat_stopped_is_marked_lost(store):
    now = time.time()
    add_run(
        store,
        "cccc00000001",
        name="silent",
        status="running",
        host="elsewhere",
        heartbeat_at=now - 120,
    )
    add_run(
        store, "cccc00000002", name="alive", status="running", host="elsewhere", heartbeat_at=now
    )
    conn = store.connect()
    assert run_store.mark_lost(conn, heartbeat_timeout=60, now=now) == ["cccc00000001"]
    lost = run_store.get_run(conn, "cccc00000001")
    assert lost["status"] == "lost" and "no heartbeat" in lost["error"]["evalue"]
    assert run_store.get_run(conn, "cccc00000002")["status"] == "running"
    events = [e["type"] for e in conn.execute("SELECT type FROM events").fetchall()]
    assert "run" in events


def test_metric_chunks_keep_order_and_latest(store):
    with store.write() as conn:
        apply_batch(
            conn,
            "dddd00000001",
            {
                "run": {"name": "m"},
                "metrics": [("a", 2, 2.0, 1), ("b", 0, 9.0, 1), ("a", 0, 0.0, 1)],
            },
        )
        apply_batch(conn, "dddd00000001", {"metrics": [("a", 1, 1.0, 2)]})
    conn = store.connect()
    assert [(s, v) for s, v, _ in metric_series(conn, "dddd00000001", "a")] == [
        (0, 0.0),
        (1, 1.0),
        (2, 2.0),
    ]
    assert run_store.get_run(conn, "dddd00000001")["metrics"] == {"a": 2.0, "b": 9.0}


def test_an_idle_interactive_run_says_how_long_it_worked_and_since_when(store):
    """A kernel left open keeps its run `running`; busy_s is the time in cells (a cell still
    running counts up to now) and last_activity_at the end of the last cell or record."""
    cells = [
        (0, "a", 1, "x = 1", 1000.0, 2.0, "ok", None, None),
        (1, "b", 2, "train()", 1005.0, 3.5, "ok", None, None),
    ]
    add_run(store, "cccc00000001", name="open kernel", status="running", kind="interactive",
            ended_at=None)  # fmt: skip
    with store.write() as conn:
        apply_batch(conn, "cccc00000001", {"cells": cells})
    conn = store.connect()
    (listed,) = run_store.list_runs(conn, filter="status = running")
    assert listed["busy_s"] == 5.5 and listed["last_activity_at"] == 1008.5
    detail = run_store.get_run(conn, "cccc00000001")
    assert (detail["busy_s"], detail["last_activity_at"]) == (5.5, 1008.5)
    assert run_store.is_idle(detail, now=1008.5 + run_store.IDLE_AFTER_S + 1)
    assert not run_store.is_idle(detail, now=1010.0)
    with store.write() as conn:  # a metric logged later is activity too
        apply_batch(conn, "cccc00000001", {"metrics": [("loss", 0, 0.5, 2000.0)]})
    assert run_store.get_run(store.connect(), "cccc00000001")["last_activity_at"] == 2000.0
    with store.write() as conn:  # a cell that is running now: busy up to now, active now
        apply_batch(conn, "cccc00000001", {"cells": [(2, "c", 3, "fit()", 3000.0, 0.0, "running", None, None)]})  # fmt: skip
    got = run_store.activity_of(store.connect(), ["cccc00000001"], now=3010.0)
    assert got["cccc00000001"] == (15.5, 3010.0)


def test_filter_hints_name_misspelt_fields_with_close_matches(runs):
    conn = runs.connect()
    assert run_store.list_runs(conn, filter="metrics.accc > 0.9") == []
    (hint,) = run_store.filter_hints(conn, "metrics.accc > 0.9 and params.lr < 1")
    assert hint["field"] == "metrics.accc" and hint["suggestions"] == ["metrics.acc"]
    assert hint["message"] == "no run has metrics.accc; did you mean metrics.acc?"
    (hint,) = run_store.filter_hints(conn, 'params."zzz" = 1')
    assert hint["message"] == "no run has params.zzz" and hint["suggestions"] == []
    assert run_store.filter_hints(conn, "metrics.acc > 2") == []
    # the listing (and so GET /mlp/api/runs) carries them when nothing matched
    page = run_store.list_page(conn, filter="metrics.accc > 0.9")
    assert page["runs"] == [] and page["hints"][0]["suggestions"] == ["metrics.acc"]
    assert run_store.list_page(conn, filter="metrics.acc > 0.9")["hints"] == []
    # a sort by a field no run has lists the runs unsorted: said, whatever the listing holds
    page = run_store.list_page(conn, sort="-metrics.accc")
    assert page["runs"] and [h["field"] for h in page["hints"]] == ["metrics.accc"]
    assert page["hints"][0]["suggestions"] == ["metrics.acc"]
    assert run_store.list_page(conn, sort="-metrics.acc")["hints"] == []


def test_dates_in_a_filter_are_local_dates_and_times(runs):
    """`started_at > 2026-01-01` (a date as runs list shows it) compares with the seconds the
    store keeps; it tokenized as the number 2026 and free text '-01' and matched nothing."""
    import datetime

    sql, args = compile_filter("started_at >= 2026-01-01 and ended_at < 2026-01-02T12:30")
    assert args == [
        datetime.datetime(2026, 1, 1).timestamp(),
        datetime.datetime(2026, 1, 2, 12, 30).timestamp(),
    ]
    add_run(
        runs, "dada00000001", name="dated", started_at=datetime.datetime(2026, 3, 1).timestamp()
    )
    assert "dated" in names(runs, filter="started_at > 2026-02-28")
    assert "dated" not in names(runs, filter="started_at > 2026-03-02")
    with pytest.raises(FilterError, match="'2026-13-45' is not a date"):
        compile_filter("started_at > 2026-13-45")


def test_a_word_a_time_column_cannot_compare_with_is_a_bad_filter(runs):
    """`started_at > yesterday` compared as text and matched nothing, silently."""
    for bad, word in (("started_at > yesterday", "yesterday"), ("duration < fast", "fast")):
        with pytest.raises(FilterError, match=f"compares with .*numbers, not '{word}'") as info:
            names(runs, filter=bad)
        assert info.value.position == bad.index(word)
    assert "dates (2026-01-02" in str(
        pytest.raises(FilterError, compile_filter, "ended_at < x").value
    )
    compile_filter("started_at > '1700000000'")  # a number in quotes is a number
    compile_filter("started_at ~ 2026")  # ~ reads the text


def test_a_bare_record_key_is_named_with_its_table(runs):
    """`lr > 0.05` (for params.lr) listed every field there is; it says which one is meant."""
    with pytest.raises(FilterError) as info:
        names(runs, filter="acc > 0.9 and lr > 0.05")
    assert str(info.value) == "unknown field 'acc'; did you mean metrics.acc? (at character 1)"
    with pytest.raises(FilterError, match=r"unknown field 'lr'; did you mean params.lr\?"):
        names(runs, filter="lr > 0.05")
    with pytest.raises(FilterError, match="did you mean status"):
        names(runs, filter="stauts = finished")
    with pytest.raises(FilterError, match=r"unknown field 'zzz' \(known: "):
        names(runs, filter="zzz > 1")


def test_a_status_a_run_never_has_is_a_bad_filter_not_an_empty_listing():
    with pytest.raises(FilterError) as info:
        compile_filter("metrics.acc > 0.9 and status = runing")
    assert info.value.position == 31 and "did you mean running?" in str(info.value)
    with pytest.raises(FilterError, match="did you mean finished"):
        compile_filter("status != Finished")
    for ok in ("status = lost", "status != pruned", "status ~ run", "status = null"):
        compile_filter(ok)


def test_filter_errors_count_characters_from_1_as_the_panel_does():
    with pytest.raises(FilterError) as info:
        compile_filter("metrics.acc > 0.9 )")
    assert info.value.position == 18 and str(info.value) == "unexpected ')' (at character 19)"


@pytest.mark.parametrize(
    "sort", ["-metrics.acc", "params.lr", "-created_at", "name", "-started_at", "duration"]
)
def test_keyset_pages_walk_every_run_once_in_order(store, sort):
    for i in range(23):
        add_run(store, f"eeee{i:08d}", name=f"r{i % 7}", params={"lr": (i % 5) / 10},
                metrics={"acc": (i % 4) / 4} if i % 6 else {}, started_at=1000.0 + i % 3)  # fmt: skip
    conn = store.connect()
    whole = [r["id"] for r in run_store.list_runs(conn, sort=sort, limit=100)]
    paged, cursor = [], None
    while True:
        page = run_store.list_page(conn, sort=sort, limit=4, cursor=cursor)
        paged += [r["id"] for r in page["runs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert paged == whole and len(whole) == 23


@pytest.mark.sqlite_only("SQLite's planner statistics")
def test_sqlite_gets_planner_statistics_as_the_store_grows(store):
    conn = store.connect()
    with store.write() as w:
        w.executemany(
            "INSERT INTO runs (id, name, status, created_at) VALUES (?, ?, ?, ?)",
            [(f"{i:012x}", "r", ("finished", "failed")[i % 2], float(i)) for i in range(3000)],
        )
    store.close()
    conn = store.connect()  # a new connection: statistics for 3000 runs
    stat = conn.execute(
        "SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs' AND idx = 'runs_created'"
    ).fetchone()[0]
    assert stat.split()[0] == "3000"
    from jupyter_mlp.store import db

    # at a million runs, the averages they give make a page of the newest finished runs walk
    # created_at in order (not sort the fifth of the runs the status index has)
    conn.executemany("UPDATE sqlite_stat1 SET stat = ? WHERE tbl = ? AND idx = ?",
                     [(stat, tbl, idx) for tbl, idx, stat in db._stats(1_000_000)])  # fmt: skip
    conn.execute("ANALYZE sqlite_master")

    class Recorder:  # the statements list_page runs, with their parameters
        def __init__(self):
            self.seen = []

        def execute(self, sql, args=()):
            self.seen.append((sql, args))
            return conn.execute(sql, args)

    recorder = Recorder()
    run_store.list_page(recorder, filter="status = finished", limit=10)
    sql, args = recorder.seen[0]
    plan = " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
    assert "runs_created" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
    store.close()
    assert not db.refresh_stats(store.connect())  # not again until the store doubles


@pytest.mark.parametrize(
    "expr",
    ["metrics.nope > 1", "not metrics.nope > 1", "metrics.nope = null", "metrics.nope != null",
     "params.nope != x", "not params.nope = 2", "params.nope ~ a or name ~ base",
     "(metrics.acc > 0.9 or params.nope = 1) and not params.nope2 = null"],
)  # fmt: skip
def test_a_field_no_run_has_filters_as_its_subquery_would(runs, expr):
    from jupyter_mlp.store.db import dialect

    conn = runs.connect()
    absent = run_store.absent_fields(conn, expr)
    assert absent and all(key.startswith("nope") for _, key in absent)

    def ids(where, args):
        return sorted(r[0] for r in conn.execute(f"SELECT id FROM runs WHERE {where}", args))

    fast = compile_filter(expr, dialect(conn), absent)
    assert "nope" not in fast[0] and "nope" not in str(fast[1])
    assert ids(*fast) == ids(*compile_filter(expr, dialect(conn)))


@pytest.mark.parametrize("notified", [True, False])
def test_a_change_watcher_wakes_on_a_commit_and_sleeps_while_nothing_is_written(
    mlp_home, monkeypatch, notified
):
    """A pipeline's driver and the job service wait for the store's next commit. On Linux the
    watcher sleeps until the write-ahead log is written (here with its safety check far away,
    so only the notification can wake it): a commit from another connection wakes it at once,
    `interrupt()` too, and a second of waiting costs little CPU (asking SQLite every 2 ms cost
    ~33 ms a second). Without inotify it asks every few milliseconds, as before."""
    from jupyter_mlp.store import db

    if not notified:
        monkeypatch.setattr(db, "_watch_writes", lambda path: None)
    monkeypatch.setattr(db.ChangeWatcher, "CHECK_S", 30.0)
    store = Store(mlp_home)
    store.connect()
    watcher = db.ChangeWatcher(store.path)
    try:
        assert (watcher._notify is not None) == notified
        version = watcher.version()
        cpu = time.thread_time()
        assert watcher.wait(version, 0.5) is False
        if notified:
            assert time.thread_time() - cpu < 0.02
        writer = threading.Timer(0.2, lambda: apply_batch_now(store))
        writer.start()
        started = time.monotonic()
        assert watcher.wait(version, 10.0) is True
        assert time.monotonic() - started < 5.0
        writer.join()
        if notified:
            version = watcher.version()
            threading.Timer(0.2, watcher.interrupt).start()
            started = time.monotonic()
            assert watcher.wait(version, 10.0) is False
            assert time.monotonic() - started < 5.0
    finally:
        watcher.close()
        store.close()


def apply_batch_now(store) -> None:
    with store.write() as conn:
        apply_batch(conn, "ab0000000001", {"run": {"name": "x", "status": "running"}})
