"""Every store module on both engines (conftest.any_store: the SQLite file, a PostgreSQL
database): jobs, pipelines, sweeps, tokens, GPU samples and their compaction, chart series,
events, user changes, deletion with its blobs. The same calls, the same answers."""

from __future__ import annotations

import json
import time

import pytest

from jupyter_mlp.model import JobRequest
from jupyter_mlp.store import events, jobs, series, tokens
from jupyter_mlp.store import gpu as store_gpu
from jupyter_mlp.store import pipelines as P
from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store import sweeps as S
from jupyter_mlp.store.db import write
from jupyter_mlp.store.records import apply_batch, metric_series


@pytest.fixture
def store(any_store):
    return any_store


def request(**kw) -> JobRequest:
    base = dict(executor="local", kernel="python3", snapshot="0" * 64, notebook="/nb.ipynb",
                params={"x": 1}, param_rows=[("x", "1", "int", "job")], project="p", name="job")  # fmt: skip
    return JobRequest(**{**base, **kw})


def test_jobs_queue_move_and_report(store):
    conn = store.connect()
    with write(conn):
        first = jobs.enqueue(conn, request(name="a", tags=["t"]), now=1000.0)
        second = jobs.enqueue(conn, request(name="b", owner="ann"), now=1001.0)
    assert [j.run_id for j in jobs.list_jobs(conn, "local", ("queued",))] == [first, second]
    with write(conn):
        assert jobs.transition(conn, first, "running", host="h").state == "running"
        jobs.update_job(conn, first, cells_total=3, gpus=["0"], pid=2**40)
        assert jobs.transition(conn, first, "queued") is None  # refused by the JOB table
        done = jobs.transition(conn, first, "failed", error={"ename": "E", "evalue": "v"})
    assert done.state == "failed" and done.error == {"ename": "E", "evalue": "v"}
    status = jobs.status(conn, first)
    assert status["run_status"] == "failed" and status["cells_total"] == 3
    assert status["gpus"] == ["0"] and jobs.get_job(conn, first).pid == 2**40
    run = run_store.get_run(conn, second)
    assert run["owner"] == "ann" and run["params"] == {"x": 1} and run["status"] == "queued"
    with write(conn):
        report = jobs.apply_remote_report(
            conn, second, {"state": "running", "worker": "w1", "attempt": "a1"}, lambda d: True
        )
    assert report == {"accepted": True, "state": "running"}
    assert jobs.get_job(conn, second).options == {"worker": "w1", "attempt": "a1"}


def test_pipeline_runs_and_stages_through_their_tables(store):
    conn = store.connect()
    spec = {"name": "t", "stages": {"a": {}, "b": {}}}
    pid = P.create(conn, spec, "v1", "/x.mlpipe", {"k": 1}, "local", {"concurrency": 2})
    assert P.resolve_id(conn, pid[:6].upper()) == pid
    assert P.set_status(conn, pid, "running", pid=12, host="h")
    assert P.set_stage(conn, pid, "a", "queued", run_id="aaaaaaaaaaaa", params={"x": 1})
    assert P.set_stage(conn, pid, "a", "succeeded", cache_key="ck")
    assert not P.set_stage(conn, pid, "b", "succeeded")
    got = P.get(conn, pid)
    assert list(got["stages"]) == ["a", "b"] and got["stages"]["a"]["params"] == {"x": 1}
    assert [r["id"] for r in P.list_runs(conn, path="/x.mlpipe")] == [pid]
    with store.write() as w:
        apply_batch(w, "aaaaaaaaaaaa", {"run": {"name": "stage", "status": "finished"}})
    assert P.cached_stage(conn, "ck") == {"pipeline_run_id": pid, "run_id": "aaaaaaaaaaaa"}
    assert P.stage_run_outcomes(conn, ["aaaaaaaaaaaa"]) == {"aaaaaaaaaaaa": ("finished", None)}
    assert P.set_status(conn, pid, "succeeded") and not P.set_status(conn, pid, "running")


def test_sweeps_and_trials(store):
    conn = store.connect()
    sweep_id = S.create(
        conn, name="s", template_id="abcdabcdabcd", space={"x": {"kind": "float"}},
        objective={"direction": "min"}, sampler="tpe", seed=1, budget=4, timeout_s=None,
        concurrency=2, executor="local", gpus=None,
        options={"pipeline_run_id": "ffffffffffff", "stage": "tune"}, owner="bob",
    )  # fmt: skip
    sweep = S.get(conn, sweep_id)
    assert sweep["owner"] == "bob" and sweep["user"] and sweep["status"] == "queued"
    assert S.resolve_id(conn, sweep_id[:5]) == sweep_id
    assert S.set_status(conn, sweep_id, "running", pid=1, host="h")
    run_id = S.queue_trial(conn, sweep_id, 0, request(), {"x": 0.5}, {"cache_key": "k1"})
    S.failed_trial(conn, sweep_id, 1, {"x": 9}, {"ename": "E"})
    S.set_trial_step(conn, sweep_id, 0, 3)
    with write(conn):
        jobs.transition(conn, run_id, "running")
        jobs.transition(conn, run_id, "finished")
    assert S.set_trial(conn, sweep_id, 0, "finished", value=0.25)
    assert not S.set_trial(conn, sweep_id, 0, "pruned")
    assert S.cached_trial_run(conn, "k1") == run_id and S.cached_trial_run(conn, "k2") is None
    assert list(S.of_pipeline(conn, "ffffffffffff")) == ["tune"]
    trials = S.trials(conn, sweep_id)
    assert [(t["number"], t["status"], t["step"]) for t in trials] == [
        (0, "finished", 3),
        (1, "failed", None),
    ]
    assert trials[0]["params"] == {"x": 0.5} and trials[0]["run_status"] == "finished"
    assert S.counts(conn, sweep_id) == {"finished": 1, "failed": 1}
    assert S.job_states(conn, [run_id]) == {run_id: ("finished", None)}
    assert S.sweep_of_run(conn, run_id) == sweep_id
    S.update(conn, sweep_id, best_trial=0, best_run_id=run_id, best_value=0.25)
    assert [s["id"] for s in S.unfinished(conn)] == [sweep_id]
    assert [s["best_value"] for s in S.list_sweeps(conn)] == [0.25]


def test_tokens_uploads_and_ingest_replays(store):
    from jupyter_mlp.store.records import ingest_batch

    conn = store.connect()
    made = run_store.create_run(conn, {"name": "remote", "status": "running"}, with_token=True)
    token = made["token"]
    assert tokens.run_of(conn, token) == made["id"] and tokens.run_of(conn, token + "x") is None
    digest = "a" * 64
    with write(conn):
        tokens.record_upload(conn, made["id"], digest)
        tokens.record_upload(conn, made["id"], digest)  # once
        assert tokens.may_reference(conn, made["id"], digest)
        assert not tokens.may_reference(conn, made["id"], "b" * 64)
        assert ingest_batch(conn, made["id"], 7, {"metrics": [("m", 1, 2.0, time.time())]})[0]
        assert not ingest_batch(conn, made["id"], 7, {"metrics": [("m", 1, 2.0, time.time())]})[0]
    assert len(metric_series(conn, made["id"], "m")) == 1
    assert not tokens.expirable(conn)
    with write(conn):
        apply_batch(conn, made["id"], {"run": {"status": "finished"}})
    assert tokens.run_of(conn, token) is None  # the run ended: the token with it


def test_gpu_samples_compact_into_the_same_buckets(store):
    conn = store.connect()
    now = 1_700_010_000.0
    start = now - 3 * 3600
    samples = [
        (g, start + k * 10, float((k % 6) * 10 + g), 1e9 + k, None, 100.0 + k % 6, 50.0, 1400.0,
         1000.0 + k)
        for k in range(3 * 3600 // 10) for g in (0, 1)
    ]  # fmt: skip
    with write(conn):
        store_gpu.insert_samples(conn, "r1", samples)
        removed = store_gpu.compact(conn, "r1", now=now)
    assert removed == 2 * (2 * 3600 // 10)
    rows = store_gpu.series(conn, "r1", gpu=0)
    buckets = [r for r in rows if r["span"] == 60]
    assert len(buckets) == 120 and buckets[0]["time"] == start
    first = buckets[0]
    assert (first["util_min"], first["util"], first["util_max"]) == (0.0, 25.0, 50.0)
    assert first["energy"] == 1000.0 and first["proc_mem"] is None
    with write(conn):
        assert store_gpu.compact(conn, "r1", now=now) == 0
    charted = series.gpu(conn, "r1", points=50)
    assert sorted(charted) == ["0", "1"] and len(charted["0"]) <= 50


def test_chart_series_events_and_user_changes(store):
    conn = store.connect()
    points = [("loss", s, 1.0 / (s + 1), 1000.0 + s) for s in range(3000)]
    with store.write() as w:
        apply_batch(w, "abab00000001", {"run": {"name": "c", "status": "running"},
                                       "metrics": points[:1000]})  # fmt: skip
        apply_batch(w, "abab00000001", {"metrics": points[1000:]})
    got = series.metric(conn, "abab00000001", "loss", points=100)
    assert got["total"] == 3000 and len(got["points"]) == 100
    assert got["points"][-1][0] == 2999
    last = events.last_id(conn)
    changed = run_store.patch_run(conn, "abab", {"pinned": True, "tags": ["x"], "notes": "n"})
    assert changed["pinned"] is True and changed["tags"] == ["x"]
    new = events.after(conn, last)
    assert [e["type"] for e in new] == ["run"] and new[0]["data"] == {
        "fields": ["notes", "pinned", "tags"]
    }
    assert run_store.list_runs(conn, filter="pinned = true")[0]["id"] == "abab00000001"
    keys = run_store.run_part(conn, "abab00000001", "metric_keys")
    assert keys == [{"key": "loss", "step": 2999, "value": 1 / 3000, "count": 3000}]


def test_deleting_a_run_removes_its_blobs_unless_another_run_names_them(store):
    conn = store.connect()
    shared = store.blobs.put_bytes(b"shared notebook")
    own = store.blobs.put_bytes(b"own artifact")
    diff = store.blobs.put_bytes(b"a diff")
    with store.write() as w:
        apply_batch(w, "dede00000001", {
            "run": {"name": "a", "snapshot": shared, "git": {"diff": diff, "commit": "c"}},
            "outputs": [("model", "artifact", json.dumps({}), own, 12, "m.pkl", 1.0)],
            "cells": [(0, "c", 1, "x = 1", 1000.0, 1.0, "ok", None, None)],
        })  # fmt: skip
        apply_batch(w, "dede00000002", {"run": {"name": "b", "snapshot": shared}})
    assert run_store.run_blobs(conn, "dede00000001") == {
        shared: "a.ipynb", diff: "a.diff", own: "m.pkl",
    }  # fmt: skip
    removed = run_store.delete_run(conn, "dede00000001", store.blobs)
    assert removed == sorted([own, diff])
    assert store.blobs.exists(shared) and not store.blobs.exists(own)
    with pytest.raises(run_store.RunNotFound):
        run_store.get_run(conn, "dede00000001")
    assert conn.execute("SELECT COUNT(*) FROM texts").fetchone()[0] == 0


def test_lineage_compare_and_notebook_outputs(store):
    conn = store.connect()
    with store.write() as w:
        apply_batch(w, "aaaa00000001", {
            "run": {"name": "parent", "status": "finished", "notebook": "/n.ipynb"},
            "params": [("lr", "0.1", "float", "api"), ("k", "1", "int", "api")],
            "outputs": [("acc", "value", "0.5", None, None, None, 1.0)],
        })  # fmt: skip
        apply_batch(w, "aaaa00000002", {
            "run": {"name": "child", "status": "finished", "parent_id": "aaaa00000001"},
            "params": [("lr", "0.2", "float", "api"), ("k", "1", "int", "api")],
        })  # fmt: skip
    info = run_store.lineage(conn, "aaaa00000002")
    assert info["parent"]["name"] == "parent"
    assert info["param_changes"] == [
        {"key": "lr", "change": "changed", "parent": 0.1, "value": 0.2}
    ]
    assert [c["id"] for c in run_store.lineage(conn, "aaaa00000001")["children"]] == [
        "aaaa00000002"
    ]
    both = run_store.compare_runs(conn, ["aaaa00000001", "aaaa00000002"])
    assert both["params_differ"] == ["lr"]
    assert run_store.notebook_outputs(conn, "/n.ipynb") == ("aaaa00000001", ["acc"])


def test_a_nul_inside_a_json_value_is_kept_on_both_engines(store):
    """PostgreSQL's text cannot hold a NUL (SQLite's can): the JSON column keeps it escaped, and
    the plain-text copy kept for filters has U+FFFD instead; nothing is refused."""
    with store.write() as conn:
        refused = apply_batch(conn, "abcd00000001", {
            "run": {"name": "nul"},
            "params": [("p", json.dumps("x\x00y"), "str", "api")],
            "outputs": [("o", "value", json.dumps({"k": "a\x00"}), None, None, None, 1.0)],
        })  # fmt: skip
    assert refused == []
    run = run_store.get_run(store.connect(), "abcd00000001")
    assert run["params"] == {"p": "x\x00y"} and run["outputs"][0]["value"] == {"k": "a\x00"}
    assert len(run_store.list_runs(store.connect(), filter="params.p ~ x")) == 1
