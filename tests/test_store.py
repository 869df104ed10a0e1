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
    errors = []

    def open_store():
        try:
            Store(mlp_home).connect()
        except Exception as exc:  # pragma: no cover - the failure this test guards against
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(8)]
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
        ("metrics.acc = high", 13),
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
