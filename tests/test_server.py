"""The server extension through the real Jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest
import tornado.httpclient
import yaml

from jupyter_mlp.server.routes import HANDLERS, handlers, methods
from jupyter_mlp.store.records import apply_batch, metric_series

HERE = Path(__file__).parent


@pytest.fixture
def jp_server_config(mlp_home, request):
    """The server with the extension; a test parametrized with `store_file` (bytes, or a function
    of the path) gets that store file in place before the server starts."""
    callspec = getattr(request.node, "callspec", None)
    make = callspec.params.get("store_file") if callspec is not None else None
    if make is not None:
        mlp_home.mkdir(parents=True, exist_ok=True)
        if callable(make):
            make(mlp_home / "mlp.sqlite")
        else:
            (mlp_home / "mlp.sqlite").write_bytes(make)
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlp": True}}}


def seed(store, run_id, **fields):
    batch = {
        "run": {"name": fields.pop("name", run_id), "status": fields.pop("status", "finished"),
                "project": fields.pop("project", "web"), **fields.pop("run", {})},
        **fields,
    }  # fmt: skip
    with store.write() as conn:
        apply_batch(conn, run_id, batch)


@pytest.fixture
def seeded(store):
    seed(store, "abcd00000001", name="<img src=x onerror=alert(1)>", metrics=[("acc", 0, 0.9, 1.0)])
    return store


async def api(jp_fetch, *path, method="GET", body=None, headers=None, **params):
    kw = {"method": method, "params": params, "headers": headers or {}}
    if body is not None:
        kw["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = await jp_fetch("mlp", "api", *path, **kw)
    return (
        json.loads(response.body)
        if response.body and response.headers.get("Content-Type", "").startswith("application/json")
        else response.body
    )


async def refusal(coro) -> dict:
    """{"code", "body"} of a request that must be refused (its JSON error body)."""
    try:
        await coro
    except tornado.httpclient.HTTPClientError as exc:
        body = exc.response.body if exc.response is not None else b""
        return {"code": exc.code, "body": json.loads(body) if body else None}
    raise AssertionError("the request was accepted")


async def status_of(coro) -> int:
    try:
        await coro
    except tornado.httpclient.HTTPClientError as exc:
        return exc.code
    return 200


async def test_runs_list_and_detail(jp_fetch, seeded):
    body = await api(jp_fetch, "runs", project="web")
    assert [r["name"] for r in body["runs"]] == ["<img src=x onerror=alert(1)>"]
    run = await api(jp_fetch, "runs", "abcd00000001")
    assert run["metrics"] == {"acc": 0.9} and run["status"] == "finished"


async def test_listing_pages_through_every_run_once_sorted_by_a_metric(jp_fetch, store):
    for i in range(25):
        metrics = [("acc", 0, i / 25, 1.0)] if i % 5 else []  # some runs lack the metric
        seed(store, f"eeee{i:08x}", metrics=metrics)
    seen, cursor = [], None
    while True:
        params = {"sort": "-metrics.acc", "limit": 7, **({"cursor": cursor} if cursor else {})}
        page = await api(jp_fetch, "runs", **params)
        seen += page["runs"]
        cursor = page["next"]
        if not cursor:
            break
    assert len(seen) == 25 and len({r["id"] for r in seen}) == 25
    values = [r["metrics"].get("acc") for r in seen]
    with_metric = [v for v in values if v is not None]
    assert (
        with_metric == sorted(with_metric, reverse=True)
        and values[len(with_metric) :] == [None] * 5
    )


async def test_bad_filter_is_400_with_position(jp_fetch, seeded):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlp", "api", "runs", params={"filter": "metrics.acc >"})
    assert info.value.code == 400
    assert json.loads(info.value.response.body)["position"] == 13


@pytest.mark.parametrize("ref", ["..%2F..%2Fetc", "%2e%2e", "deadbeef0000", "zzzz"])
async def test_missing_or_path_like_run_is_404(jp_fetch, seeded, ref):
    for part in ((), ("cells",), ("notebook",), ("blobs", "0" * 64)):
        assert await status_of(jp_fetch("mlp", "api", "runs", ref, *part)) == 404


async def test_parts_series_and_notebook(jp_fetch, store):
    nb = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    digest = store.blobs.put_bytes(nb)
    points = [("loss", i, float(i % 100), float(i)) for i in range(10_000)]
    points[5000] = ("loss", 5000, 1e6, 5000.0)  # one spike
    seed(store, "ffff00000001", run={"snapshot": digest}, metrics=points,
         params=[("lr", "0.1", "float", "api")],
         cells=[(1, "c1", 1, "x = 1", 1.0, 0.5, "ok", None, None)])  # fmt: skip
    assert (await api(jp_fetch, "runs", "ffff00000001", "params"))["params"] == [
        {"key": "lr", "value": 0.1, "type": "float", "source": "api"}
    ]
    # a count in detail and listing
    assert (await api(jp_fetch, "runs", "ffff00000001"))["cells"] == 1
    assert [r["cells"] for r in (await api(jp_fetch, "runs"))["runs"]] == [1]
    cells = (await api(jp_fetch, "runs", "ffff00000001", "cells"))["cells"]
    assert cells[0]["source"] == "x = 1" and cells[0]["status"] == "ok"
    keys = (await api(jp_fetch, "runs", "ffff00000001", "metrics"))["keys"]
    assert keys == [{"key": "loss", "step": 9999, "value": 99.0, "count": 10_000}]
    series = await api(jp_fetch, "runs", "ffff00000001", "metrics", key="loss", points=100)
    assert series["total"] == 10_000 and len(series["points"]) == 100
    assert max(p[3] for p in series["points"]) == 1e6  # the spike survives downsampling
    zoom = await api(
        jp_fetch, "runs", "ffff00000001", "metrics", key="loss", points=100, start=100, end=149
    )
    assert [p[0] for p in zoom["points"]] == list(range(100, 150))  # full resolution when zoomed
    assert await api(jp_fetch, "runs", "ffff00000001", "notebook") == nb
    assert (
        await status_of(
            jp_fetch("mlp", "api", "runs", "ffff00000001", "notebook", params={"which": "end"})
        )
        == 404
    )
    # while a job runs, its output notebook is papermill's partial save (README: runs export)
    from jupyter_mlp.store.partial import partial_path

    partial = partial_path(store.home, "ffff00000001")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(nb)
    assert await api(jp_fetch, "runs", "ffff00000001", "notebook", which="output") == nb


async def test_blob_download_only_for_blobs_the_run_references(jp_fetch, store, tmp_path):
    mine = store.blobs.put_bytes(b"weights")
    other = store.blobs.put_bytes(b"someone else's")
    seed(
        store,
        "aaaa00000001",
        name='evil"/../name',
        outputs=[("model", "artifact", "{}", mine, 7, 'm"o/d\\el.pkl', 1.0)],
    )
    seed(store, "aaaa00000002", outputs=[("x", "artifact", "{}", other, 14, "x.bin", 1.0)])
    response = await jp_fetch("mlp", "api", "runs", "aaaa00000001", "blobs", mine)
    assert response.body == b"weights"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._ -]+"', disposition), disposition
    assert await status_of(jp_fetch("mlp", "api", "runs", "aaaa00000001", "blobs", other)) == 404
    assert (
        await status_of(
            jp_fetch("mlp", "api", "runs", "aaaa00000001", "blobs", "..%2F..%2Fmlp.sqlite")
        )
        == 404
    )


async def test_patch_and_delete(jp_fetch, store):
    shared = store.blobs.put_bytes(b"shared")
    own = store.blobs.put_bytes(b"own")
    seed(store, "bbbb00000001", outputs=[("a", "artifact", "{}", shared, 6, "a", 1.0), ("b", "artifact", "{}", own, 3, "b", 1.0)],
         cells=[(1, "c", 1, "unique source", 1.0, 0.1, "ok", None, None)])  # fmt: skip
    seed(store, "bbbb00000002", outputs=[("a", "artifact", "{}", shared, 6, "a", 1.0)])
    changed = await api(
        jp_fetch,
        "runs",
        "bbbb00000001",
        method="PATCH",
        body={"name": "best", "tags": ["x"], "pinned": True, "notes": "n"},
    )
    assert (changed["name"], changed["tags"], changed["pinned"], changed["notes"]) == (
        "best",
        ["x"],
        True,
        "n",
    )
    # a JSON merge patch: null clears tags and notes, and leaves the rest as it was
    cleared = await api(
        jp_fetch, "runs", "bbbb00000001", method="PATCH", body={"tags": None, "notes": None}
    )
    assert (cleared["name"], cleared["tags"], cleared["pinned"], cleared["notes"]) == (
        "best", [], True, "",
    )  # fmt: skip
    for bad in ({"status": "finished"}, {"pinned": "yes"}, {"tags": [1]}, [], {"name": None}):
        assert (
            await status_of(
                jp_fetch("mlp", "api", "runs", "bbbb00000001", method="PATCH", body=json.dumps(bad))
            )
            == 400
        )
    result = await api(jp_fetch, "runs", "bbbb00000001", method="DELETE")
    assert result == {"deleted": "bbbb00000001", "blobs_removed": 1}
    assert store.blobs.exists(shared) and not store.blobs.exists(own)
    assert await status_of(jp_fetch("mlp", "api", "runs", "bbbb00000001")) == 404
    assert (
        store.connect()
        .execute("SELECT COUNT(*) FROM texts WHERE text = 'unique source'")
        .fetchone()[0]
        == 0
    )


async def test_compare(jp_fetch, store):
    seed(
        store,
        "cccc00000001",
        params=[("lr", "0.1", "float", "api"), ("opt", '"sgd"', "str", "api")],
        metrics=[("acc", 0, 0.9, 1)],
    )
    seed(
        store,
        "cccc00000002",
        params=[("lr", "0.01", "float", "api"), ("opt", '"sgd"', "str", "api")],
        metrics=[("acc", 0, 0.95, 1)],
        run={"owner": "bob"},
    )
    body = await api(jp_fetch, "compare", ids="cccc00000001,cccc00000002")
    assert body["params"] == ["lr", "opt"] and body["params_differ"] == ["lr"]
    assert [r["metrics"]["acc"] for r in body["runs"]] == [0.9, 0.95]
    assert body["runs"][1]["owner"] == "bob"  # a team tells same-named runs apart by owner
    assert await status_of(jp_fetch("mlp", "api", "compare", params={"ids": "cccc00000001"})) == 400


async def test_compare_many_runs_and_their_series_in_one_answer(jp_fetch, store):
    """Compare takes a sweep's 200 trials; /compare/metrics gives one metric's series of every
    run in one answer (downsampled per run, the point budget shared), leaving out runs without it."""
    ids = [f"eeee{i:08d}" for i in range(200)]
    for i, run_id in enumerate(ids):
        seed(
            store,
            run_id,
            params=[("lr", json.dumps([0.1, 0.01][i % 2]), "float", "api"),
                    ("seed", str(i), "int", "api")],
            metrics=[("loss", s, 1.0 / (s + 1) + i, 1.0 + s) for s in range(3 if i else 50)],
        )  # fmt: skip
    seed(store, "eeee99999999", metrics=[("acc", 0, 0.5, 1.0)])
    body = await api(jp_fetch, "compare", ids=",".join(ids))
    assert len(body["runs"]) == 200 and body["params_differ"] == ["lr", "seed"]
    too_many = ",".join([*ids, "eeee99999999"])
    info = await refusal(jp_fetch("mlp", "api", "compare", params={"ids": too_many}))
    assert info["code"] == 400 and info["body"]["field"] == "ids"

    got = await api(
        jp_fetch, "compare", "metrics", ids=",".join([ids[0], ids[1], "eeee99999999"]), key="loss",
        points=10,
    )  # fmt: skip
    assert got["key"] == "loss" and got["points"] == 10
    assert list(got["series"]) == [ids[0], ids[1]]  # the run without `loss` is left out
    first = got["series"][ids[0]]
    assert first["total"] == 50 and len(first["points"]) == 10
    assert first["points"][0][:2] == [4, 1.0 / 5]  # a bucket keeps its last point
    assert got["series"][ids[1]]["points"] == [
        [s, 1.0 / (s + 1) + 1, 1.0 / (s + 1) + 1, 1.0 / (s + 1) + 1, 1.0 + s] for s in range(3)
    ]
    # the same series as /runs/{id}/metrics gives, zoom included
    one = await api(jp_fetch, "runs", ids[0], "metrics", key="loss", points=10, start=10, end=19)
    zoomed = await api(
        jp_fetch, "compare", "metrics", ids=ids[0], key="loss", points=10, start=10, end=19
    )
    assert zoomed["series"][ids[0]] == one
    # 200 runs share the budget of points
    all_of = await api(jp_fetch, "compare", "metrics", ids=",".join(ids), key="loss", points=5000)
    assert all_of["points"] == 1000 and len(all_of["series"]) == 200
    for params, field in (
        ({"key": "loss"}, "ids"),
        ({"ids": too_many, "key": "loss"}, "ids"),
        ({"ids": ids[0]}, "key"),
        ({"ids": ids[0], "key": "loss", "points": "nan"}, "points"),
    ):
        info = await refusal(jp_fetch("mlp", "api", "compare", "metrics", params=params))
        assert info["code"] == 400 and info["body"]["field"] == field, (params, info)
    missing = jp_fetch("mlp", "api", "compare", "metrics", params={"ids": "ffff0000", "key": "x"})
    assert (await refusal(missing))["code"] == 404


async def test_event_feed_wakes_a_waiting_client_on_another_process_write(jp_fetch, store):
    last = (await api(jp_fetch, "events"))["last"]
    waiting = asyncio.ensure_future(api(jp_fetch, "events", after=last, timeout=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    # a kernel writes the SQLite file directly: here a separate process does the same
    code = f"from jupyter_mlp.store import Store\nfrom jupyter_mlp.store.records import apply_batch\ns = Store({str(store.home)!r})\nwith s.write() as c: apply_batch(c, 'dddd00000001', {{'run': {{'name': 'new', 'status': 'running'}}}})"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    assert await proc.wait() == 0
    body = await asyncio.wait_for(waiting, 5)
    assert [(e["run_id"], e["type"]) for e in body["events"]] == [("dddd00000001", "run")]
    assert body["last"] == body["events"][-1]["id"]
    quiet = await api(jp_fetch, "events", after=body["last"], timeout=0.2)
    assert quiet == {"events": [], "last": body["last"]}


async def test_reconciler_marks_dead_runs_lost(jp_serverapp, store):
    seed(
        store,
        "dddd00000002",
        status="running",
        run={"host": os.uname().nodename, "pid": 2**22 + 7, "heartbeat_at": 1.0},
    )
    app = jp_serverapp.web_app.settings["mlp"]
    assert app.reconcile() == ["dddd00000002"]


async def ingest(jp_fetch, token, body):
    return await jp_fetch(
        "mlp",
        "api",
        "ingest",
        method="POST",
        body=json.dumps(body),
        headers={"X-MLP-Run-Token": token or ""},
    )


async def test_ingest_with_a_run_token(jp_fetch, store):
    created = await api(jp_fetch, "runs", method="POST", body={"name": "remote", "project": "r"})
    run_id, token = created["id"], created["token"]
    assert token.startswith(run_id + ".")
    batch = {
        "run": {"status": "running"},
        "metrics": [["loss", i, 1.0 / (i + 1), 1.0] for i in range(10)],
    }
    assert json.loads(
        (await ingest(jp_fetch, token, {"run_id": run_id, "seq": 1, "batch": batch})).body
    ) == {"applied": True}
    assert json.loads(
        (await ingest(jp_fetch, token, {"run_id": run_id, "seq": 1, "batch": batch})).body
    ) == {"applied": False}
    assert len(metric_series(store.connect(), run_id, "loss")) == 10  # the replay did not double
    # the token cannot write to another run, nor set what a tracker may not (refused alone)
    other = (await api(jp_fetch, "runs", method="POST", body={}))["id"]
    assert await status_of(ingest(jp_fetch, token, {"run_id": other, "seq": 2, "batch": {}})) == 403
    stolen = {"run_id": run_id, "seq": 3, "batch": {"run": {"project": "stolen"}}}
    info = await refusal(ingest(jp_fetch, token, stolen))
    assert info["code"] == 403 and info["body"]["refused"][0]["field"] == "run.project"
    assert (await api(jp_fetch, "runs", run_id))["project"] == "r"
    assert await status_of(ingest(jp_fetch, "", {"run_id": run_id, "seq": 4, "batch": {}})) == 401
    assert (
        await status_of(
            ingest(jp_fetch, run_id + ".forged", {"run_id": run_id, "seq": 4, "batch": {}})
        )
        == 401
    )
    # a malformed record is refused alone: the good ones of its batch still go in
    half = {"metrics": [["loss", 99, 1.0, 1.0]], "cells": [["not", "a", "cell"]]}
    info = await refusal(ingest(jp_fetch, token, {"run_id": run_id, "seq": 5, "batch": half}))
    assert info["code"] == 400 and info["body"]["applied"] is True
    assert [r["field"] for r in info["body"]["refused"]] == ["cells[0]"]
    assert len(metric_series(store.connect(), run_id, "loss")) == 11
    # blobs: the content must match its hash
    data = b"notebook bytes"
    digest = hashlib.sha256(data).hexdigest()

    def put(d, body):
        return jp_fetch(
            "mlp",
            "api",
            "ingest",
            "blobs",
            d,
            method="PUT",
            body=body,
            headers={"X-MLP-Run-Token": token},
        )

    assert await status_of(put(digest, data)) == 200 and store.blobs.read_bytes(digest) == data
    assert await status_of(put("0" * 64, data)) == 400
    # the token ends with its run
    await ingest(
        jp_fetch, token, {"run_id": run_id, "seq": 6, "batch": {"run": {"status": "finished"}}}
    )
    assert (
        await status_of(ingest(jp_fetch, token, {"run_id": run_id, "seq": 7, "batch": {}})) == 401
    )
    assert (
        store.connect()
        .execute("SELECT COUNT(*) FROM run_tokens WHERE run_id = ?", (run_id,))
        .fetchone()[0]
        == 0
    )


async def test_oversized_ingest_is_413_and_writes_nothing(jp_fetch, store, monkeypatch):
    from jupyter_mlp import records

    monkeypatch.setattr(records, "BATCH_ROWS_MAX", 100)
    created = await api(jp_fetch, "runs", method="POST", body={})
    batch = {"metrics": [["m", i, 1.0, 1.0] for i in range(101)]}
    assert (
        await status_of(
            ingest(jp_fetch, created["token"], {"run_id": created["id"], "seq": 1, "batch": batch})
        )
        == 413
    )
    assert metric_series(store.connect(), created["id"], "m") == []


async def test_a_remote_tracker_spools_while_the_server_is_down_then_replays_once(
    jp_fetch, jp_base_url, http_server_port, store, tmp_path
):
    created = await api(jp_fetch, "runs", method="POST", body={"name": "remote", "project": "r"})
    spool = tmp_path / "spool"
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent("""
        import sys
        import jupyter_mlp as mlp
        mlp.track("remote")
        for i in range(5000):
            mlp.log_metric("loss", 1 / (i + 1))
        mlp.output("val_acc", 0.9)
        mlp.finish()
    """)
    )
    base_env = {
        **os.environ,
        "MLP_SPOOL_DIR": str(spool),
        "MLP_TRACKING_TOKEN": created["token"],
        "MLP_HOME": str(tmp_path / "unused"),
    }

    async def run(uri):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            env={**base_env, "MLP_TRACKING_URI": uri},
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return err.decode()

    # 1. the server is unreachable: the script still succeeds, warns once, spools everything
    err = await run("http://127.0.0.1:9/mlp/api")
    assert err.count("jupyter-mlp warning") == 1 and "unreachable" in err
    assert (spool / f"{created['id']}.jsonl").exists()
    assert metric_series(store.connect(), created["id"], "loss") == []
    # 2. a later process of the same run (same spool) reaches the server: replays in order, once
    url = f"http://127.0.0.1:{http_server_port[-1]}{jp_base_url.rstrip('/')}/mlp/api"
    code = f"from jupyter_mlp.tracker.sinks import HttpSink\ns = HttpSink({url!r}, {created['token']!r}, {str(spool)!r})\ns.flush()"
    for _ in range(2):  # replaying twice changes nothing
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=base_env)
        assert await proc.wait() == 0
    series = metric_series(store.connect(), created["id"], "loss")
    assert [s for s, _, _ in series] == list(range(5000))
    run = await api(jp_fetch, "runs", created["id"])
    assert run["status"] == "finished" and run["outputs"][0]["value"] == 0.9
    assert not (spool / f"{created['id']}.jsonl").exists()


async def test_a_remote_sink_sends_from_two_threads_exactly_once(
    jp_fetch, jp_base_url, http_server_port, store, tmp_path
):
    """The tracker's writer thread sends batches while its start-up capture uploads blobs
    (snapshot, git diff) through the same sink: every point arrives once, nothing fails."""
    created = await api(jp_fetch, "runs", method="POST", body={"name": "threads"})
    url = f"http://127.0.0.1:{http_server_port[-1]}{jp_base_url.rstrip('/')}/mlp/api"
    code = textwrap.dedent(f"""
        import threading
        from jupyter_mlp.tracker.sinks import HttpSink
        sink = HttpSink({url!r}, {created["token"]!r}, {str(tmp_path / "spool")!r})
        def metrics():
            for b in range(40):
                sink.write("x", {{"metrics": [("loss", b * 500 + i, 0.5, 1.0) for i in range(500)]}})
        def blobs():
            for b in range(40):
                sink.put_bytes(b"blob %d " % b * 1000)
        threads = [threading.Thread(target=metrics), threading.Thread(target=blobs)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        sink.flush()
        assert not sink.pending
    """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    series = metric_series(store.connect(), created["id"], "loss")
    assert [step for step, _, _ in series] == list(range(40 * 500))


async def test_every_route_rejects_anonymous_requests(
    jp_serverapp, http_server_client, jp_base_url, seeded
):
    """Like the extension template's CI check: no registered handler answers without a login
    (or, for ingest, a run token); a run token opens no route but the ingest ones."""
    from jupyter_mlp.server.routes.base import TokenHandler
    from jupyter_mlp.store import tokens

    with seeded.write() as conn:
        run_token = tokens.issue(conn, "abcd00000001")
    seeded.connect().execute("UPDATE runs SET status = 'running' WHERE id = 'abcd00000001'")
    for pattern, handler in handlers():
        path = re.sub(r"\([^)]*\)", "abcd00000001", pattern)
        for method in sorted(m.upper() for m in methods(handler)):
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            for headers in ({}, {"X-MLP-Run-Token": run_token}):
                if headers and issubclass(handler, TokenHandler):
                    continue
                response = await http_server_client.fetch(
                    jp_base_url.rstrip("/") + path, method=method, body=body, headers=headers,
                    raise_error=False,
                )  # fmt: skip
                assert response.code in (401, 403), (method, pattern, headers, response.code)


async def test_writes_from_a_browser_session_need_the_xsrf_token(
    jp_serverapp, http_server_client, jp_base_url, jp_fetch, seeded
):
    token = jp_serverapp.identity_provider.token
    login = await http_server_client.fetch(
        f"{jp_base_url}?token={token}", follow_redirects=False, raise_error=False
    )
    cookies = "; ".join(c.split(";")[0] for c in login.headers.get_list("Set-Cookie"))
    assert "username" in cookies
    url = jp_base_url.rstrip("/") + "/mlp/api/runs/abcd00000001"
    body = json.dumps({"pinned": True})
    forged = await http_server_client.fetch(
        url, method="PATCH", body=body, headers={"Cookie": cookies}, raise_error=False
    )
    assert forged.code == 403
    xsrf = "; ".join(
        c.split(";")[0] for c in login.headers.get_list("Set-Cookie") if c.startswith("_xsrf")
    )
    if not xsrf:  # the server hands out the _xsrf cookie with a page
        page = await http_server_client.fetch(
            jp_base_url + "lab", headers={"Cookie": cookies}, raise_error=False
        )
        xsrf = "; ".join(
            c.split(";")[0] for c in page.headers.get_list("Set-Cookie") if c.startswith("_xsrf")
        )
    value = xsrf.split("=", 1)[1]
    ok = await http_server_client.fetch(
        url,
        method="PATCH",
        body=body,
        headers={"Cookie": f"{cookies}; {xsrf}", "X-XSRFToken": value},
        raise_error=False,
    )
    assert ok.code == 200


def test_openapi_describes_exactly_the_routes():
    spec = yaml.safe_load(
        (
            Path(__import__("jupyter_mlp.server", fromlist=["x"]).__file__).parent / "openapi.yaml"
        ).read_text()
    )
    described = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    served = {(h.path, m) for h in HANDLERS for m in methods(h)}
    assert described == served


async def poll(fetch_json, predicate, timeout: float = 90.0, what: str = "condition"):
    """Poll a route with a deadline (the server keeps running while we wait)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch_json()
        if predicate(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {value}")
        await asyncio.sleep(0.1)


TINY = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {"id": "p", "cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1", "outputs": [], "execution_count": None},
        {"id": "w", "cell_type": "code", "metadata": {}, "source": "y = x * 2", "outputs": [], "execution_count": None},
    ],
}  # fmt: skip


async def test_rerun_and_cancel_routes(jp_fetch, store):
    seed(store, "abab00000001", run={"snapshot": store.blobs.put_bytes(json.dumps(TINY).encode()), "kernel": "python3"},
         params=[("x", "1", "int", "parameters")])  # fmt: skip
    created = await api(
        jp_fetch, "runs", "abab00000001", "rerun", method="POST", body={"params": {"x": 5}}
    )
    child = await poll(
        lambda: api(jp_fetch, "runs", created["id"]),
        lambda r: r["status"] in ("finished", "failed"),
        what="rerun",
    )
    assert (
        child["status"] == "finished"
        and child["parent_id"] == "abab00000001"
        and child["params"]["x"] == 5
    )
    before = len((await api(jp_fetch, "runs"))["runs"])
    bad = jp_fetch(
        "mlp",
        "api",
        "runs",
        "abab00000001",
        "rerun",
        method="POST",
        body=json.dumps({"params": {"x": "five"}}),
    )
    assert await status_of(bad) == 400
    assert len((await api(jp_fetch, "runs"))["runs"]) == before  # nothing was queued
    not_a_job = jp_fetch("mlp", "api", "runs", "abab00000001", "cancel", method="POST", body="{}")
    said = await refusal(not_a_job)  # (the message said only the id)
    assert said["code"] == 400 and said["body"]["message"] == "run abab00000001 is not a job"
    executors = await api(jp_fetch, "executors")
    assert executors["default"] == "local" and executors["executors"][0]["name"] == "local"


async def test_pipeline_routes(jp_fetch, jp_root_dir, store):
    (jp_root_dir / "tiny.ipynb").write_text(json.dumps(TINY))
    spec = {"format": "jupyter-mlp.pipeline", "version": 1, "name": "p", "parameters": {"x": 3},
            "stages": {"only": {"template": {"notebook": "tiny.ipynb"}, "parameters": {"x": "${pipeline.x}"}}}}  # fmt: skip
    (jp_root_dir / "p.mlpipe").write_text(json.dumps(spec))
    issues = await api(
        jp_fetch, "pipelines", "validate", method="POST", body={"spec": spec, "path": "p.mlpipe"}
    )
    assert issues == {"issues": []}
    bad_spec = {
        **spec,
        "stages": {"only": {"template": {"notebook": "tiny.ipynb"}, "parameters": {"nope": 1}}},
    }
    found = (
        await api(
            jp_fetch,
            "pipelines",
            "validate",
            method="POST",
            body={"spec": bad_spec, "path": "p.mlpipe"},
        )
    )["issues"]
    assert found[0]["stage"] == "only" and found[0]["field"] == "parameters.nope"
    started = await api(
        jp_fetch, "pipelines", "runs", method="POST", body={"path": "p.mlpipe", "params": {"x": 4}}
    )
    run = await poll(
        lambda: api(jp_fetch, "pipelines", "runs", started["id"]),
        lambda r: r["status"] in ("succeeded", "failed"),
        what="pipeline",
    )
    assert run["status"] == "succeeded" and run["stages"]["only"]["status"] == "succeeded"
    assert (
        run["stages"]["only"]["cells_done"] == run["stages"]["only"]["cells_total"] == 3
    )  # with papermill's injected cell
    listed = await api(jp_fetch, "pipelines", "runs", path="p.mlpipe")
    assert [r["id"] for r in listed["runs"]] == [started["id"]] and listed["runs"][0]["params"] == {
        "x": 4
    }
    for path in ("../p.mlpipe", "/etc/passwd", "missing.mlpipe"):
        assert await status_of(
            jp_fetch(
                "mlp", "api", "pipelines", "runs", method="POST", body=json.dumps({"path": path})
            )
        ) in (400, 404)
    assert await status_of(jp_fetch("mlp", "api", "pipelines", "runs", "ffffffffffff")) == 404


# --- issue 11: nothing a caller sends yields a 5xx or a hang ----------------------------------


def _cursor(value) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps([0, value, "abcd00000001"]).encode()).decode()


MALFORMED_QUERIES = [
    (("runs",), {"filter": " or ".join(["name ~ a"] * 1200)}, "filter"),
    (("runs",), {"filter": "(" * 1000 + "a" + ")" * 1000}, "filter"),
    (("runs",), {"filter": "not " * 2000 + "a"}, "filter"),
    (("runs",), {"filter": "name ~ " + "x" * 60_000}, "filter"),
    (("runs",), {"cursor": _cursor([1, 2])}, "cursor"),
    (("runs",), {"cursor": _cursor({"a": 1})}, "cursor"),
    (("runs",), {"cursor": "!!!"}, "cursor"),
    (("runs",), {"limit": "nan"}, "limit"),
    (("runs",), {"limit": "1e999"}, "limit"),
    (("events",), {"after": "nan"}, "after"),
    (("events",), {"after": "1e400"}, "after"),
    (("events",), {"after": "0", "limit": "nan"}, "limit"),
    (("runs", "abcd00000001", "metrics"), {"key": "acc", "points": "nan"}, "points"),
    (("runs", "abcd00000001", "metrics"), {"key": "acc", "start": "inf"}, "start"),
    (("runs", "abcd00000001", "gpu"), {"gpu": "nan"}, "gpu"),
    (("runs", "abcd00000001", "gpu"), {"gpu": "-1"}, "gpu"),
    (("runs", "abcd00000001", "gpu"), {"points": "[1]"}, "points"),
    (("runs", "abcd00000001", "notebook"), {"which": "../x"}, "which"),
    (("compare",), {"ids": ",".join(["abcd"] * 201)}, "ids"),
    (("compare", "metrics"), {"ids": ",".join(["abcd"] * 201), "key": "acc"}, "ids"),
    (("compare", "metrics"), {"ids": "abcd00000001", "key": "acc", "end": "nan"}, "end"),
]


@pytest.mark.parametrize("path,params,field", MALFORMED_QUERIES)
async def test_malformed_query_parameters_are_4xx_naming_the_field(
    jp_fetch, seeded, path, params, field
):
    info = await asyncio.wait_for(refusal(jp_fetch("mlp", "api", *path, params=params)), 10)
    assert 400 <= info["code"] < 500, info
    assert info["body"]["field"] == field, info["body"]


async def test_a_limit_past_a_page_is_a_page(jp_fetch, seeded):
    """`limit` is clamped into its range, however large (not refused with int64's bounds)."""
    for limit in ("1" + "0" * 30, "1e30", "5000"):
        assert (await api(jp_fetch, "runs", limit=limit))["runs"], limit


async def test_events_with_a_nan_or_huge_timeout_answer_at_once(jp_fetch, seeded):
    for timeout in ("nan", "inf", "-inf", "[]"):
        info = await asyncio.wait_for(
            refusal(jp_fetch("mlp", "api", "events", params={"after": 0, "timeout": timeout})), 5
        )
        assert info["code"] == 400 and info["body"]["field"] == "timeout", info
    # a finite timeout past the bound is clamped: data present answers at once
    body = await asyncio.wait_for(api(jp_fetch, "events", after=0, timeout=1e300), 5)
    assert body["events"]


async def _remote_run(jp_fetch, **body):
    created = await api(jp_fetch, "runs", method="POST", body={"name": "remote", **body})
    return created["id"], created["token"]


async def test_ingest_refuses_bad_records_alone_and_names_them(jp_fetch, store):
    run_id, token = await _remote_run(jp_fetch, project="r")
    batch = {
        "heartbeat": "later",
        "run": {"status": "running", "git": ["not", "an", "object"], "host": None},
        "metrics": [["loss", 1, 0.5, 1.0], ["loss", 2**63, 0.5, 1.0], [None, 3, 0.5, 1.0]],
        "params": [["lr", "0.1", "float", "api"], ["bad", {"x": 1}, "dict", "api"]],
    }
    info = await refusal(ingest(jp_fetch, token, {"run_id": run_id, "seq": 1, "batch": batch}))
    assert info["code"] == 400 and info["body"]["applied"] is True
    fields = {r["field"] for r in info["body"]["refused"]}
    assert {
        "heartbeat",
        "run.git",
        "metrics[1].step",
        "metrics[2].key",
        "params[1].value",
    } <= fields
    assert [s for s, _, _ in metric_series(store.connect(), run_id, "loss")] == [1]
    run = await api(jp_fetch, "runs", run_id)
    assert run["status"] == "running" and run["params"] == {"lr": 0.1}
    # the service still answers for everyone: listing, detail, blobs, delete
    assert (await api(jp_fetch, "runs"))["runs"]
    assert await status_of(jp_fetch("mlp", "api", "runs", run_id, "blobs", "0" * 64)) == 404
    assert (await api(jp_fetch, "runs", run_id, method="DELETE"))["deleted"] == run_id


@pytest.mark.parametrize(
    "body,field,code",
    [
        ({"run_id": None, "seq": 1, "batch": {}}, "run_id", 400),
        ({"seq": 1, "batch": {}}, "run_id", 400),
        ({"run_id": "RUN", "seq": 2**64, "batch": {}}, "seq", 400),
        ({"run_id": "RUN", "seq": "1", "batch": {}}, "seq", 400),
        ({"run_id": "RUN", "seq": None, "batch": {}}, "seq", 400),
        ({"run_id": "RUN", "seq": 1, "batch": None}, "batch", 400),
        ({"run_id": "RUN", "seq": 1, "batch": [1, 2]}, "batch", 400),
        ([1, 2, 3], "body", 400),
    ],
)
async def test_ingest_envelope_errors_are_400_naming_the_field(jp_fetch, store, body, field, code):
    run_id, token = await _remote_run(jp_fetch)
    if isinstance(body, dict) and body.get("run_id") == "RUN":
        body["run_id"] = run_id
    info = await refusal(ingest(jp_fetch, token, body))
    assert info["code"] == code and info["body"]["field"] == field, info


async def test_deeply_nested_json_bodies_are_400(jp_fetch, seeded):
    deep = "[" * 100_000 + "]" * 100_000
    for path, method in ((("runs", "abcd00000001"), "PATCH"), (("pipelines", "validate"), "POST")):
        info = await refusal(jp_fetch("mlp", "api", *path, method=method, body=deep))
        assert info["code"] == 400 and info["body"]["field"] == "body", info
    nested = {"spec": json.loads("[" * 30 + "]" * 30)}
    for _ in range(40):
        nested = {"spec": nested}
    info = await refusal(
        jp_fetch("mlp", "api", "pipelines", "validate", method="POST", body=json.dumps(nested))
    )
    assert info["code"] == 400 and info["body"]["field"] == "spec", info
    run_id, token = await _remote_run(jp_fetch)
    info = await refusal(ingest(jp_fetch, token, deep))
    assert info["code"] == 400 and info["body"]["field"] == "body"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": {"a": 1}}, "name"),
        ({"name": "x" * 600}, "name"),
        ({"params": [1]}, "params"),
        ({"gpus": float("nan")}, "gpus"),
        ({"gpus": 10**30}, "gpus"),
        ({"allow_new": "yes"}, "allow_new"),
        ({"kernel": ["python3"]}, "kernel"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_rerun_bodies_are_checked_before_anything_is_queued(jp_fetch, seeded, body, field):
    before = len((await api(jp_fetch, "runs"))["runs"])
    info = await refusal(
        jp_fetch(
            "mlp", "api", "runs", "abcd00000001", "rerun", method="POST", body=json.dumps(body)
        )
    )
    assert 400 <= info["code"] < 500 and info["body"]["field"] == field, info
    assert len((await api(jp_fetch, "runs"))["runs"]) == before


@pytest.mark.parametrize(
    "method,path,body,field,code",
    [
        ("POST", ("runs",), {"name": "x" * 10_000_000}, "name", 413),
        ("POST", ("runs",), {"tags": ["t"] * 500}, "tags", 413),
        ("POST", ("runs",), {"tags": [1]}, "tags[0]", 400),
        ("POST", ("runs",), {"project": {"p": 1}}, "project", 400),
        ("PATCH", ("runs", "abcd00000001"), {"notes": "n" * 20_000}, "notes", 413),
        ("PATCH", ("runs", "abcd00000001"), {"name": "\ud800"}, "name", 400),
        ("PATCH", ("runs", "abcd00000001"), {"pinned": None, "x": 1}, "x", 400),
        ("PATCH", ("runs", "abcd00000001"), {"name": "y", "pinned": None}, "pinned", 400),
        ("POST", ("pipelines", "runs"), {"path": ["p.mlpipe"]}, "path", 400),
        ("POST", ("pipelines", "runs"), {"path": "p.mlpipe", "no_cache": "no"}, "no_cache", 400),
        ("POST", ("pipelines", "validate"), {"spec": "x"}, "spec", 400),
    ],
)
async def test_rest_bodies_have_one_bound_per_field(
    jp_fetch, seeded, method, path, body, field, code
):
    info = await refusal(
        jp_fetch(
            "mlp",
            "api",
            *path,
            method=method,
            body=json.dumps(body).encode("utf-8", "surrogatepass"),
        )
    )
    assert (info["code"], info["body"]["field"]) == (code, field), info
    assert (await api(jp_fetch, "runs", "abcd00000001"))["name"] == "<img src=x onerror=alert(1)>"


async def test_blobs_are_downloads_a_browser_never_renders(jp_fetch, store):
    page = store.blobs.put_bytes(b"<html><script>alert(1)</script></html>")
    seed(store, "cccc00000001", outputs=[("page", "artifact", "{}", page, 38, "page.html", 1.0)])
    response = await jp_fetch("mlp", "api", "runs", "cccc00000001", "blobs", page)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == 'attachment; filename="page.html"'


async def test_a_run_token_may_name_only_blobs_its_run_uploaded(jp_fetch, store):
    theirs = store.blobs.put_bytes(b"another run's secret")
    seed(store, "cccc00000002", outputs=[("secret", "artifact", "{}", theirs, 20, "s.bin", 1.0)])
    run_id, token = await _remote_run(jp_fetch)
    mine = b"my own artifact"
    digest = hashlib.sha256(mine).hexdigest()
    await jp_fetch("mlp", "api", "ingest", "blobs", digest, method="PUT", body=mine,
                   headers={"X-MLP-Run-Token": token})  # fmt: skip
    outputs = [["stolen", "artifact", "{}", theirs, 20, "s.bin", 1.0],
               ["mine", "artifact", "{}", digest, len(mine), "m.bin", 1.0]]  # fmt: skip
    batch = {"outputs": outputs, "run": {"snapshot": theirs}}
    info = await refusal(ingest(jp_fetch, token, {"run_id": run_id, "seq": 1, "batch": batch}))
    assert info["code"] == 403
    assert {r["field"] for r in info["body"]["refused"]} == {"outputs[0].blob", "run.snapshot"}
    assert [o["name"] for o in (await api(jp_fetch, "runs", run_id, "outputs"))["outputs"]] == [
        "mine"
    ]
    assert await status_of(jp_fetch("mlp", "api", "runs", run_id, "blobs", theirs)) == 404


async def test_failed_token_attempts_are_rate_limited_per_client(jp_fetch, jp_serverapp, store):
    run_id, token = await _remote_run(jp_fetch)
    from jupyter_mlp.server.routes.base import TokenBuckets

    app = jp_serverapp.web_app.settings["mlp"]
    assert app.token_buckets.burst == app.token_failures_burst == 20  # the configured default
    burst = 5
    app.token_buckets = TokenBuckets(burst, rate=1e-3)  # no refill while the test runs
    codes = [
        await status_of(
            ingest(jp_fetch, f"{run_id}.guess{i}", {"run_id": run_id, "seq": i, "batch": {}})
        )
        for i in range(burst + 3)
    ]
    assert codes[:burst] == [401] * burst and codes[burst:] == [429] * 3
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await ingest(jp_fetch, token, {"run_id": run_id, "seq": 1, "batch": {}})
    assert info.value.code == 429 and int(info.value.response.headers["Retry-After"]) >= 1
    app.token_buckets = TokenBuckets(burst, rate=1e-3)  # as if time had passed
    assert json.loads(
        (await ingest(jp_fetch, token, {"run_id": run_id, "seq": 1, "batch": {}})).body
    )["applied"]


async def test_a_2mb_url_is_answered_414_not_dropped(jp_fetch, http_server, seeded):
    from jupyter_mlp.server.app import MAX_HEADER_BYTES, raise_header_limit

    raise_header_limit(http_server, MAX_HEADER_BYTES)  # what the extension does to its server
    info = await refusal(jp_fetch("mlp", "api", "runs", params={"filter": "x" * 2_000_000}))
    assert info["code"] == 414 and info["body"]["field"] == "url"
    assert (await api(jp_fetch, "runs"))["runs"]  # the server still answers


def _newer_schema(path):
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()


@pytest.mark.parametrize(
    "store_file,says",
    [
        (b"this is not a database" * 100, "not a readable SQLite database"),
        (_newer_schema, "newer than this jupyter-mlp"),
    ],
    ids=["corrupt", "newer-schema"],
)
async def test_a_broken_store_is_a_json_503_and_the_extension_stops(
    jp_fetch, jp_serverapp, store_file, says
):
    await _assert_503_then_stop(jp_fetch, jp_serverapp, says)


async def _assert_503_then_stop(jp_fetch, jp_serverapp, says):
    for path in (("runs",), ("runs", "abcd00000001"), ("events",), ("executors",)):
        info = await refusal(jp_fetch("mlp", "api", *path))
        assert info["code"] == 503 and says in info["body"]["message"], info
    created = await refusal(jp_fetch("mlp", "api", "runs", method="POST", body="{}"))
    assert created["code"] == 503
    await jp_serverapp.web_app.settings["mlp"].stop_extension()  # no AttributeError


async def test_runs_stored_with_wrong_shapes_still_list_show_download_and_delete(jp_fetch, store):
    """Rows an older version (or a token before the checks) wrote: git as a list or a string,
    env and error of the wrong shape, a heartbeat as text. Readers tolerate them."""
    art = store.blobs.put_bytes(b"artifact")
    seed(store, "dddd0000000a", outputs=[("a", "artifact", "{}", art, 8, "a.bin", 1.0)])
    seed(store, "dddd0000000b")
    with store.write() as conn:
        conn.execute(
            "UPDATE runs SET git = '[1, 2]', env = '\"x\"', error = '[]', heartbeat_at = 'later' "
            "WHERE id = 'dddd0000000a'"
        )
        conn.execute("UPDATE runs SET git = '\"main\"', gpu = '7' WHERE id = 'dddd0000000b'")
    assert len((await api(jp_fetch, "runs"))["runs"]) == 2
    assert (await api(jp_fetch, "runs", "dddd0000000a"))["id"] == "dddd0000000a"
    response = await jp_fetch("mlp", "api", "runs", "dddd0000000a", "blobs", art)
    assert response.body == b"artifact"
    for run_id in ("dddd0000000a", "dddd0000000b"):
        assert (await api(jp_fetch, "runs", run_id, method="DELETE"))["deleted"] == run_id


async def test_unknown_paths_under_the_api_are_json_404s(jp_fetch, seeded):
    for path in (("nope",), ("runs", "abcd00000001", "nope"), ("runs", "E", "6%E1fC")):
        info = await refusal(jp_fetch("mlp", "api", *path))
        assert info["code"] in (400, 404) and "message" in info["body"], info


SCORED = {
    **TINY,
    "cells": [
        {**TINY["cells"][0], "source": "x = 1\ngate = ''"},
        {"id": "g", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import os, time\nimport jupyter_mlp as mlp\n"
                   "mlp.log_metric('score', x * 10)\nmlp.flush()\n"
                   "while gate and not os.path.exists(gate):\n    time.sleep(0.05)"},
    ],
}  # fmt: skip


async def test_sweep_routes_start_show_list_and_cancel(jp_fetch, store, tmp_path):
    """A sweep started over HTTP runs its trials (a driver process of its own, the server's
    job service), shows them live, is listed, and a cancel stops the running trials; a bad
    body is 400 naming the field, nothing recorded."""
    pytest.importorskip("optuna")
    snapshot = store.blobs.put_bytes(json.dumps(SCORED).encode())
    seed(store, "5e5e00000001", run={"snapshot": snapshot, "kernel": "python3"},
         params=[("x", "1", "int", "parameters"), ("gate", '""', "str", "parameters")])  # fmt: skip

    async def refused(body) -> dict:
        return await refusal(api(jp_fetch, "sweeps", method="POST", body=body))

    base = {"template": "5e5e00000001", "objective": "max:score", "sampler": "grid"}
    for body, field, words in [
        ({**base, "params": {"x": "3..1"}}, "params.x", "parameter 'x'"),
        ({**base, "params": {"x": "1,2"}, "objective": "maybe:score"}, "objective", "objective"),
        ({**base, "params": {"x": "1"}}, "params", "nothing to search"),
        # (named as the body names it, not as the command line's --trials)
        ({**base, "params": {"x": "1,2"}, "sampler": "tpe"}, "trials", "trials is required"),
        ({**base, "params": {"x": "1,2"}, "trials": 0}, "trials", "outside [1, 100000]"),
        ({**base, "params": {"x": "1,2"}, "sampler": "anneal"}, "sampler", "not one of"),
        ({**base, "params": ["x=1,2"]}, "params", "must be an object"),
        ({**base, "params": {"x": "1,2"}, "lr": 1}, "lr", "not a field"),
        ({"template": "5e5e00000001", "params": {"x": "1"}}, "objective", "is required"),
    ]:
        answer = await refused(body)
        assert answer["code"] == 400, (body, answer)
        assert words in answer["body"]["message"], (body, answer)
        assert "--" not in answer["body"]["message"], answer
        assert answer["body"]["field"] == field, answer
    missing = await refused({**base, "template": "ffff00000009", "params": {"x": "1"}})
    assert missing["code"] == 404
    assert (await api(jp_fetch, "sweeps"))["sweeps"] == []  # none of those was recorded

    created = await api(
        jp_fetch, "sweeps", method="POST", body={**base, "params": {"x": "1,2,3"}, "concurrency": 2}
    )
    done = await poll(
        lambda: api(jp_fetch, "sweeps", created["id"][:6]),
        lambda s: s["status"] in ("finished", "failed", "cancelled"),
        what="the sweep to end",
    )
    assert done["status"] == "finished", done
    assert done["counts"] == {"finished": 3}, [(t["status"], t["error"]) for t in done["trials"]]
    assert done["best_value"] == 30
    best = next(t for t in done["trials"] if t["number"] == done["best_trial"])
    assert best["params"] == {"x": 3} and best["run_id"] == done["best_run_id"]
    assert {t["run_status"] for t in done["trials"]} == {"finished"}
    (listed,) = (await api(jp_fetch, "sweeps"))["sweeps"]
    assert listed["id"] == created["id"] and listed["counts"] == {"finished": 3}
    trial_run = await api(jp_fetch, "runs", best["run_id"])
    assert trial_run["parent_id"] == "5e5e00000001" and trial_run["params"]["x"] == 3

    # Cancel: two trials wait on a gate that never opens.
    gate = str(tmp_path / "never")
    held = await api(jp_fetch, "sweeps", method="POST", body={
        **base, "params": {"x": "1,2", "gate": gate}, "concurrency": 2,
    })  # fmt: skip
    await poll(
        lambda: api(jp_fetch, "sweeps", held["id"]),
        lambda s: (
            s["counts"].get("running") == 2
            and all(t["run_status"] == "running" for t in s["trials"])
        ),
        what="both trials to run",
    )
    answer = await api(jp_fetch, "sweeps", held["id"], "cancel", method="POST", body="{}")
    assert answer["status"] in ("cancelling", "cancelled")
    ended = await poll(
        lambda: api(jp_fetch, "sweeps", held["id"]),
        lambda s: s["status"] == "cancelled" and not s["counts"].get("running"),
        what="the sweep and its trials to be cancelled",
    )
    assert {t["status"] for t in ended["trials"]} == {"cancelled"}
    assert {t["job_state"] for t in ended["trials"]} == {"cancelled"}
    gone = await refusal(api(jp_fetch, "sweeps", "0123456789ab"))
    assert gone["code"] == 404 and "no sweep" in gone["body"]["message"]
