"""One definition of every record (jupyter_mlp.records), checked at every boundary: a bad record is
refused alone with a message naming the field, and everything else is still written."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jupyter_mlp import records
from jupyter_mlp.records import RecordError
from jupyter_mlp.store import Store, tokens
from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.db import is_sqlite, write
from jupyter_mlp.store.records import apply_batch, ingest_batch, metric_series

NOW = time.time()
BAD_TEXT = ["", "   ", "a\x00b", "bad\ud800", "x" * (records.KEY_MAX + 1)]
names = st.one_of(st.text(max_size=12), st.sampled_from(BAD_TEXT), st.integers(), st.none())
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), st.booleans(),
    st.text(max_size=3), st.none(), st.just([1.0]),
)  # fmt: skip
steps = st.one_of(
    st.none(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.booleans(),
    st.sampled_from([2**63, -(2**63) - 1, 2**63 - 1]),
)  # fmt: skip
json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=8),
              st.sampled_from(["\ud800", "x\x00"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), inner, max_size=4)
    ),
    max_leaves=20,
)  # fmt: skip


def deep(n: int):
    value: object = 1
    for _ in range(n):
        value = [value]
    return value


@pytest.fixture
def store(any_store):
    """The tests of the store here run on both engines (conftest.any_store)."""
    return any_store


# --- the definitions themselves ------------------------------------------------------------------


def test_fast_key_refuses_what_key_refuses_nul_included():
    for bad in BAD_TEXT + ["\t", None, 3]:
        assert not records.fast_key(bad), repr(bad)
    for good in ["loss", "val/acc", "é", "a b", "x" * records.KEY_MAX]:
        assert records.fast_key(good)
        assert records.key(good) == good


@given(st.text())
def test_fast_key_agrees_with_the_full_definition(text):
    try:
        records.key(text)
        ok = True
    except RecordError:
        ok = False
    assert records.fast_key(text) == ok


def test_check_batch_names_each_bad_field_and_keeps_the_rest():
    batch = {
        "run": {"name": "ok", "heartbeat_at": "later", "git": ["a"], "env": "x", "pid": 2**40},
        "heartbeat": "later",
        "metrics": [("a", 1, 1.0, NOW), ("b", 2**63, 1.0, NOW), ("c", 1, "x", NOW)],
        "cells": [(1, "c1", 1, "x = 1", NOW, 0.1, "ok", None, None), (2, None, None, None)],
        "outputs": [("o", "value", "1", None, None, None, NOW), ("p", "value", "{", None, None, None, NOW)],
        "params": [("lr", "0.1", "float", "api"), ("bad\ud800", "1", "int", "api")],
        "gpu": [(0, NOW, 50.0, 1, 1, 1, 1, 1, None), (0, NOW, math.nan, 1, 1, 1, 1, 1, None)],
        "surprise": 1,
    }  # fmt: skip
    clean, errors = records.check_batch(batch)
    fields = sorted(e.field for e in errors)
    assert fields == sorted([
        "run.heartbeat_at", "run.git", "run.env", "run.pid", "heartbeat", "metrics[1].step",
        "metrics[2].value", "cells[1]", "outputs[1].value", "params[1].key", "gpu[1].util",
        "batch.surprise",
    ])  # fmt: skip
    assert clean["run"] == {"name": "ok"}
    assert [m[0] for m in clean["metrics"]] == ["a"]
    assert len(clean["cells"]) == len(clean["outputs"]) == len(clean["params"]) == 1
    assert all(isinstance(e, ValueError) and e.status in (400, 413) for e in errors)


def test_bounds_are_one_size_per_field_whatever_the_route():
    with pytest.raises(RecordError) as info:
        records.run_field("name", "x" * (records.NAME_MAX + 1))
    assert info.value.status == 413 and info.value.field == "run.name"
    with pytest.raises(RecordError):
        records.run_field("tags", ["ok", "x" * (records.TAG_MAX + 1)])
    with pytest.raises(RecordError):
        records.run_field("notes", "n" * (records.NOTES_MAX + 1))
    with pytest.raises(RecordError):
        records.json_value(deep(records.JSON_DEPTH_MAX + 2), "value")
    with pytest.raises(RecordError):
        records.json_text(json.dumps(deep(records.JSON_DEPTH_MAX + 2)), "value")
    from jupyter_mlp.tracker import api

    assert (api._INT64_MIN, api._INT64_MAX) == (records.INT64_MIN, records.INT64_MAX)


def test_spool_lines_torn_or_foreign_are_refused_by_the_one_definition():
    good = json.dumps({"seq": 3, "batch": {"metrics": []}})
    assert records.spool_line(good)["seq"] == 3
    for bad in (good[:-3], "[]", '{"seq": "x", "batch": {}}', b"\xff\xfe", '{"blob": "../x"}'):
        with pytest.raises(RecordError):
            records.spool_line(bad)


def test_readers_give_every_json_column_its_shape():
    assert records.read_json_column("git", '["a"]') is None
    assert records.read_json_column("env", "not json") is None
    assert records.read_json_column("tags", '"x"') == []
    assert records.read_json_column("tags", '["a", 1]') == ["a"]
    assert records.read_json_column("error", '{"ename": "E"}') == {"ename": "E"}
    assert records.read_number("later") is None and records.read_number(5) == 5.0


# --- the tracker API: nothing reaches the caller, good calls after bad ones are stored -----------


class _Quiet:
    def show(self, s):
        pass

    refresh = close = show


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    import jupyter_mlp as mlp

    home = tmp_path_factory.mktemp("records-home")
    os.environ["MLP_SPOOL_DIR"] = str(home / "spool")
    run = mlp.track("property", home=home, gpu=False, status_view=_Quiet(), shell=None)
    yield mlp, run, home
    mlp.finish()
    os.environ.pop("MLP_SPOOL_DIR", None)


calls = st.lists(
    st.one_of(
        st.tuples(st.just("log_metric"), names, numbers, steps),
        st.tuples(st.just("log_metrics"), st.one_of(st.dictionaries(names, numbers, max_size=3), numbers), steps),
        st.tuples(st.just("log_params"), st.one_of(st.dictionaries(names, json_like, max_size=3), names)),
        st.tuples(st.just("log_param"), names, json_like),
        st.tuples(st.just("output"), names, st.one_of(json_like, st.just(deep(40)), st.just(object()))),
        st.tuples(st.just("log_artifact"), st.sampled_from(BAD_TEXT[1:] + [None, 3, "/no/such/file"])),
    ),
    max_size=6,
)  # fmt: skip
_counter = iter(range(10**9))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls)
def test_no_call_raises_and_the_good_calls_after_bad_ones_are_stored(tracked, script):
    mlp, run, home = tracked
    n = next(_counter)
    for name, *args in script:
        getattr(mlp, name)(*args)  # never raises: a bad call is a warning and is dropped
        mlp.log_metric(f"__good{n}", float(n))
    mlp.output(f"__good{n}", n)
    mlp.flush()
    conn = Store(home).connect()
    stored = run_store.get_run(conn, run.run_id, with_cells=False)
    assert stored["outputs"] and any(o["name"] == f"__good{n}" for o in stored["outputs"])
    if script:
        assert len(metric_series(conn, run.run_id, f"__good{n}")) == len(script)


# --- apply_batch: each record alone ---------------------------------------------------------------

good_points = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.integers(-(2**63), 2**63 - 1),
              st.floats(allow_nan=True), st.just(NOW)),
    max_size=20,
)  # fmt: skip
bad_points = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(BAD_TEXT + [None]), st.just(1), st.just(1.0), st.just(NOW)),
        st.tuples(st.just("a"), st.sampled_from([2**63, "1", None, 1.5]), st.just(1.0), st.just(NOW)),
        st.tuples(st.just("a"), st.just(1), st.sampled_from(["x", None, [1]]), st.just(NOW)),
        st.tuples(st.just("a"), st.just(1), st.just(1.0), st.sampled_from([-1.0, 1e300, "now", math.nan])),
        st.sampled_from([None, 3, "abc", ["a", 1], {"a": 1}]),
    ),
    max_size=6,
)  # fmt: skip
cells = st.lists(
    st.one_of(
        st.builds(lambda i: (i, f"c{i}", i, f"x = {i}", NOW, 0.5, "ok", None, None), st.integers(0, 10**6)),
        st.sampled_from([(1, None), (-5, None, None, "", NOW, 0.1, "ok", None, None),
                         (1, None, None, "s", NOW, -1.0, "ok", None, None),
                         (1, None, None, "s", NOW, 0.1, "weird", None, None),
                         (1, None, None, "s\ud800", NOW, 0.1, "ok", None, None)]),
    ),
    max_size=6,
)  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def batch_store(request, tmp_path_factory):
    """One store for the many examples of a property, on each engine."""
    url = name = None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        name = server.create_database()
        url = server.url(name)
    store = Store(tmp_path_factory.mktemp("batch-home"), url=url)
    yield store
    store.close()
    if name is not None:
        server.drop_database(name)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(good_points, bad_points, st.randoms(use_true_random=False), cells)
def test_apply_batch_writes_the_good_records_of_a_batch_with_bad_ones(
    batch_store, good, bad, rnd, cell_rows
):
    run_id = os.urandom(6).hex()
    mixed = good + bad
    rnd.shuffle(mixed)
    conn = batch_store.connect()
    with write(conn):
        refused = apply_batch(conn, run_id, {"run": {"name": "b", "status": "running"},
                                            "metrics": mixed, "cells": cell_rows})  # fmt: skip
    stored = sum(len(metric_series(conn, run_id, k)) for k in ("a", "b"))
    assert stored == len(good)
    assert len([e for e in refused if e.field.startswith("metrics")]) == len(bad)
    good_cells = {c[0] for c in cell_rows if len(c) == 9 and c[6] == "ok" and c[5] >= 0
                  and c[0] >= 0 and "\ud800" not in c[3]}  # fmt: skip
    assert {c["seq"] for c in run_store.get_run(conn, run_id)["cells"]} == good_cells


def test_the_issue_repro_ends_finished_with_its_metric_and_output(tmp_path):
    env = {**os.environ, "MLP_HOME": str(tmp_path / "h"), "MLP_SPOOL_DIR": str(tmp_path / "s")}
    code = (
        "import jupyter_mlp as mlp; mlp.track('p'); mlp.log_metric('a',1); mlp.flush(); "
        "mlp.log_metric('b',1,step=2**63); mlp.output('val',42); mlp.finish()"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.count("jupyter-mlp warning") == 1, done.stderr
    assert "mlp.log_metric('b')" in done.stderr and "step" in done.stderr
    store = Store(tmp_path / "h")
    run = run_store.list_runs(store.connect())[0]
    assert run["status"] == "finished" and run["metrics"] == {"a": 1.0}
    assert [o["name"] for o in run_store.get_run(store.connect(), run["id"])["outputs"]] == ["val"]


# --- readers tolerate what older versions (or a bad token holder) stored -------------------------


def test_wrong_shaped_rows_never_crash_list_show_mark_lost_delete_or_blobs(store, mlp_home):
    conn = store.connect()
    bad = {
        "heartbeat_at": "later", "git": '["a"]', "env": '"x"', "error": '"boom"', "gpu": "[1]",
        "tags": '"t"', "started_at": "soon", "pid": "nine", "host": "elsewhere",
    }  # fmt: skip
    duration = "'long'"
    if not is_sqlite(conn):  # typed columns: only the text ones can hold a wrong shape
        bad.update(heartbeat_at=NOW - 3600, started_at=None, pid=None)
        duration = "1.5"
    cols = ", ".join(bad)
    conn.execute(
        f"INSERT INTO runs (id, name, status, created_at, {cols}) VALUES (?, ?, ?, ?, "
        f"{', '.join('?' * len(bad))})",
        ["dddd00000001", "odd", "running", NOW, *bad.values()],
    )
    conn.execute(
        "INSERT INTO cells (run_id, seq, cell_id, source, started_at, duration, status, error, gpu)"
        f" VALUES (?, 1, 'c', 'h', ?, {duration}, 'ok', '\"e\"', '[1]')",
        ("dddd00000001", NOW),
    )
    assert run_store.mark_lost(conn, 60) == ["dddd00000001"]  # unreadable (old) heartbeat: lost
    run = run_store.get_run(conn, "dddd00000001")
    assert run["git"] is None and run["env"] is None and run["tags"] == [] and run["pid"] is None
    assert run["cells"][0]["error"] is None
    assert run_store.run_blobs(conn, "dddd00000001") == {}
    env = {**os.environ, "MLP_HOME": str(mlp_home)}
    jupyter = str(Path(sys.executable).parent / "jupyter")
    for args in (
        ["runs", "list"],
        ["runs", "show", "dddd"],
        ["runs", "show", "dddd", "--format", "json"],
    ):
        done = subprocess.run([jupyter, "mlp", *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
    assert run_store.delete_run(conn, "dddd00000001", store.blobs) == []


def test_terminal_output_escapes_control_characters(store, mlp_home):
    conn = store.connect()
    evil = "\x1b]0;pwned\x07\x1b[2Jname\nnext"
    with write(conn):
        apply_batch(conn, "eeee00000001", {"run": {"name": evil, "status": "finished",
                                                   "host": "\x1b[31mred"}})  # fmt: skip
    env = {**os.environ, "MLP_HOME": str(mlp_home)}
    jupyter = str(Path(sys.executable).parent / "jupyter")
    for args in (["runs", "list"], ["runs", "show", "eeee"]):
        out = subprocess.run(
            [jupyter, "mlp", *args], env=env, capture_output=True, text=True
        ).stdout
        assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned" in out, out


# --- tokens: lost runs come back, never-started runs expire, blobs are the run's own --------------


def _token_run(conn, **fields):
    return run_store.create_run(conn, {"name": "remote", **fields}, with_token=True)


def test_a_lost_run_keeps_its_token_and_returns_to_its_true_end_state(store):
    conn = store.connect()
    made = _token_run(conn, status="running", heartbeat_at=NOW - 600, host="elsewhere")
    assert run_store.mark_lost(conn, 60) == [made["id"]]
    assert tokens.run_of(conn, made["token"]) == made["id"]  # not revoked by `lost`
    with write(conn):
        applied, refused = ingest_batch(conn, made["id"], 7, {
            "metrics": [["m", 0, 1.0, NOW - 500]], "run": {"status": "finished", "ended_at": NOW},
        })  # fmt: skip
    assert applied and not refused
    run = run_store.get_run(conn, made["id"])
    assert run["status"] == "finished" and run["error"] is None
    assert tokens.run_of(conn, made["token"]) is None  # really ended: revoked now


def test_a_token_cannot_keep_its_run_alive_or_move_it(store):
    conn = store.connect()
    made = _token_run(conn, status="running", heartbeat_at=NOW, host="elsewhere", project="p")
    with write(conn):
        _, refused = ingest_batch(conn, made["id"], 1, {
            "heartbeat": 32_503_000_000.0,  # the year 3000
            "run": {"pid": 1, "project": "other", "kind": "job", "status": "lost"},
        })  # fmt: skip
    assert sorted(e.field for e in refused) == ["run.kind", "run.pid", "run.project", "run.status"]
    beat = conn.execute("SELECT heartbeat_at FROM runs WHERE id = ?", (made["id"],)).fetchone()[0]
    assert beat <= time.time()  # clamped to the server's now
    assert run_store.mark_lost(conn, 60, now=time.time() + 120) == [made["id"]]


def test_the_remote_start_batch_may_set_the_project_of_a_run_made_for_it(store):
    conn = store.connect()
    made = _token_run(conn)
    start = {"status": "running", "started_at": NOW, "pid": os.getpid(), "project": "digits"}
    with write(conn):
        _, refused = ingest_batch(conn, made["id"], 1, {"run": start})
    assert refused == [] and run_store.get_run(conn, made["id"])["project"] == "digits"
    with write(conn):
        _, refused = ingest_batch(conn, made["id"], 2, {"run": {"project": "elsewhere"}})
    assert [e.field for e in refused] == ["run.project"]


def test_tokens_of_never_started_runs_expire(store, monkeypatch):
    conn = store.connect()
    made = _token_run(conn)
    assert tokens.run_of(conn, made["token"]) == made["id"]
    assert tokens.run_of(conn, made["token"], now=time.time() + 86_401) is None
    monkeypatch.setenv("MLP_TOKEN_TTL_S", "5")
    assert tokens.run_of(conn, made["token"], now=time.time() + 6) is None
    with write(conn):
        assert tokens.expire(conn, now=time.time() + 6) == 1


def test_a_token_may_reference_only_blobs_its_run_uploaded(store):
    conn = store.connect()
    mine, other = _token_run(conn, status="running"), _token_run(conn, status="running")
    digest = store.blobs.put_bytes(b"secret of another run")
    with write(conn):
        tokens.record_upload(conn, other["id"], digest)
    art = ["model", "artifact", "{}", digest, 3, "model.bin", NOW]
    with write(conn):
        _, refused = ingest_batch(
            conn, mine["id"], 1, {"outputs": [art], "run": {"snapshot": digest}}
        )
    assert sorted(e.field for e in refused) == ["outputs[0].blob", "run.snapshot"]
    assert run_store.run_blobs(conn, mine["id"]) == {}
    with write(conn):
        tokens.record_upload(conn, mine["id"], digest)
        _, refused = ingest_batch(conn, mine["id"], 2, {"outputs": [art]})
    assert refused == [] and digest in run_store.run_blobs(conn, mine["id"])


# --- artifacts never follow a symbolic link out of the logged path --------------------------------


def test_log_artifact_never_follows_symlinks(tracked, tmp_path, capsys):
    mlp, run, home = tracked
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    link = tmp_path / "link.txt"
    link.symlink_to(secret)
    assert mlp.log_artifact(link) is None
    assert "symbolic link" in capsys.readouterr().err
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    (folder / "passwd").symlink_to("/etc/passwd")
    (folder / "up").symlink_to(tmp_path)
    digest = mlp.log_artifact(folder)
    data = Store(home).blobs.read_bytes(digest)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "a.zip"
        archive.write_bytes(data)
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            assert {"weights.bin", "passwd", "up"} <= names
            assert zf.read("passwd") == b"/etc/passwd"  # the link itself, not the file
            assert (zf.getinfo("passwd").external_attr >> 16) & 0o170000 == 0o120000
            assert not any(n.startswith("up/") for n in names)


def test_lost_means_no_heartbeat_and_no_live_process_of_the_run(store):
    """A live kernel on this host busy in C code (no heartbeat) is not lost; a reused pid (a
    process that started after the run) is not the run's kernel; a dead pid is lost at once."""
    import socket

    from jupyter_mlp.store.runs import process_started_at

    conn = store.connect()
    host, me = socket.gethostname(), os.getpid()
    began = process_started_at(me) or time.time()
    stale = time.time() - 3600
    rows = {
        "ffff00000001": {"pid": me, "started_at": began + 1},  # this very process: alive
        "ffff00000002": {"pid": me, "started_at": began - 3600},  # the pid was reused since
        "ffff00000003": {"pid": 2**31 - 2, "started_at": began},  # no such process
    }
    with write(conn):
        for run_id, fields in rows.items():
            apply_batch(conn, run_id, {"run": {"name": run_id, "status": "running", "host": host,
                                               "heartbeat_at": stale, **fields}})  # fmt: skip
    assert sorted(run_store.mark_lost(conn, 60)) == ["ffff00000002", "ffff00000003"]
    assert run_store.get_run(conn, "ffff00000001")["status"] == "running"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(-(2**80), 2**80),
              st.text(max_size=6), st.sampled_from(["running", "finished", "lost", "\ud800", NOW])),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=25,
)  # fmt: skip


def _plain_json_check(value, depth=0):
    """The JSON rule stated plainly (slow): what records.json_value must accept and refuse."""
    if depth > records.JSON_DEPTH_MAX:
        return "deep"
    if isinstance(value, str):
        return None if not any(0xD800 <= ord(c) <= 0xDFFF for c in value) else "unicode"
    if value is None or isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, dict):
        if any(not isinstance(k, str) or _plain_json_check(k) for k in value):
            return "key"
        items = list(value.values())
    else:
        return "type"
    for item in items:
        problem = _plain_json_check(item, depth + 1)
        if problem:
            return problem
    return None


def _nested(inner, levels, in_dicts):
    for _ in range(levels):
        inner = {"k": inner} if in_dicts else [inner]
    return inner


@given(
    json_values
    | st.builds(_nested, json_values, st.integers(28, 36), st.booleans())
    | st.builds(set)
)
@example(_nested({"a": "b"}, records.JSON_DEPTH_MAX, True))  # the leaves one level too deep
@example(_nested(["b"], records.JSON_DEPTH_MAX, False))
def test_json_values_are_checked_as_the_plain_definition_says(value):
    expected = _plain_json_check(value)
    try:
        assert records.json_value(value, "v", max_bytes=10**9) is value
    except RecordError as exc:
        assert expected, f"refused a good value: {exc}"
    else:
        assert expected is None, f"accepted a value with a problem: {expected}"


sections = st.sampled_from(list(records.BATCH_KEYS) + ["other"])
run_keys = st.sampled_from(sorted(records.RUN_FIELDS) + ["bogus"])
remote_batches = st.one_of(
    st.dictionaries(sections, json_values, max_size=6),
    st.fixed_dictionaries({"run": st.dictionaries(run_keys, json_values, max_size=6)}),
    json_values,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.integers(-(2**70), 2**70), json_values), remote_batches)
def test_any_ingest_body_is_applied_or_refused_never_an_error(batch_store, seq, batch):
    from jupyter_mlp.store.records import BadBatch

    conn = batch_store.connect()
    made = run_store.create_run(conn, {"name": "fuzz", "status": "running"}, with_token=True)
    try:
        with write(conn):
            applied, refused = ingest_batch(conn, made["id"], seq, batch)
    except BadBatch:
        assert not isinstance(batch, dict) or not records.fast_step(seq)
        return
    assert all(isinstance(e, RecordError) and e.status in (400, 403, 413) for e in refused)
    run = run_store.get_run(conn, made["id"])  # whatever was written reads back
    assert run["status"] in records.STATUSES and isinstance(run["tags"], list)
    run_store.list_runs(conn, limit=5)
    run_store.mark_lost(conn, 60)


def test_a_running_job_is_never_marked_lost_by_heartbeats(store):
    """A job's run belongs to its job: its executor watches the process or the Dask task. A cell
    that stays silent on a worker (no tracker heartbeats) must not turn the run `lost`; once the
    job has ended, the reconciler has nothing to say either way."""
    from jupyter_mlp.model import JobRequest
    from jupyter_mlp.store import jobs

    conn = store.connect()
    stale = time.time() - 3600
    with write(conn):
        run_id = jobs.enqueue(
            conn,
            JobRequest(executor="dask", kernel="python3", snapshot="0" * 64, notebook=None,
                       params={}, param_rows=[], project="p", name="long-cell"),
        )  # fmt: skip
        jobs.transition(conn, run_id, "running", now=stale)
        apply_batch(conn, run_id, {"run": {"heartbeat_at": stale}})
        tokens.issue(conn, run_id)  # a Dask job reports with a token
    assert run_store.mark_lost(conn, 60) == []
    assert run_store.get_run(conn, run_id)["status"] == "running"
