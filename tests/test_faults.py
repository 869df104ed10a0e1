"""Faults a user meets: a kernel killed, a server gone, a spool torn, a disk full, a store broken.

Each test asserts what the user notices: nothing lost, one clear message, tracking goes on. The
scenarios are bench/faults.py's functions (the bench runs them at full size)."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import only_run

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_faults", ROOT / "bench" / "faults.py")
faults = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(faults)  # type: ignore[union-attr]


def test_sigkill_at_random_moments_keeps_every_cell_that_ended_200ms_before(tmp_path):
    result = faults.kill_trials(trials=5, seed=11, workdir=tmp_path)
    assert result["cells_ended_200ms_before"] > 0, result
    assert result["cells_lost_ended_200ms_before"] == 0, result["kill_details"]


def test_a_server_outage_of_twice_the_heartbeat_timeout_loses_and_doubles_nothing(tmp_path):
    result = faults.outage(points=20_000, heartbeat_timeout=1.0, workdir=tmp_path)
    assert result["outage_exit"] == 0, result["outage_stderr"]
    assert result["outage_points_lost"] == 0 and result["outage_points_doubled"] == 0, result
    # the reconciler saw no heartbeat during the outage, yet the run ends in its true state
    assert result["outage_marked_lost_meanwhile"], result
    assert result["outage_final_status"] == "finished" and result["outage_outputs"] == ["done"]
    # the remote start batch with project= (README's example) is accepted
    assert result["outage_project"] == "digits"
    # the process that spooled sent its spool by itself once the server was back
    assert result["outage_replayed_in_background"], result
    assert result["outage_stderr"].count("jupyter-mlp warning") == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_spool_torn_at_a_random_byte_delivers_the_rest_with_a_note(tmp_path, seed):
    result = faults.torn_spool(batches=40, seed=seed, workdir=tmp_path)
    assert result["torn_spool_batches_lost"] == 0, result
    assert not result["torn_spool_left"]
    assert all("torn" in n for n in result["torn_spool_notes"]), result


def test_a_full_disk_raises_nothing_into_the_caller_and_loses_nothing(tmp_path):
    result = faults.disk_full(rounds=8, workdir=tmp_path)
    if "disk_full_skipped" in result:
        pytest.skip(result["disk_full_skipped"])
    assert result["disk_full_exit"] == 0, result["disk_full_stderr"]  # no exception in the script
    assert result["disk_full_calls_during_fault"] != "0", result  # the fault really happened
    assert result["disk_full_records_lost"] == 0, result
    assert result["disk_full_drained_in_background"] and result["disk_full_status"] == "finished"
    assert result["disk_full_stderr"].count("jupyter-mlp warning") == 1
    assert "database or disk is full" in result["disk_full_stderr"]


def test_corrupt_and_newer_stores_are_named_by_the_cli_in_one_line_with_exit_2(tmp_path):
    result = faults.broken_stores(workdir=tmp_path)
    assert result["broken_store_cli_exit"] == [2, 2]
    corrupt, newer = result["broken_store_cli_lines"]
    for line in (corrupt, newer):
        assert "\n" not in line and "Traceback" not in line and "mlp.sqlite" in line
    assert "not a readable SQLite database" in corrupt and "move it aside" in corrupt
    assert "newer than this jupyter-mlp" in newer and "upgrade" in newer
    assert result["newer_store_unchanged"]


def _newer_store(home: Path) -> bytes:
    from jupyter_mlp.store import Store

    store = Store(home)
    store.connect().execute("PRAGMA user_version = 99")
    store.close()
    return (home / "mlp.sqlite").read_bytes()


def test_a_kernel_on_a_newer_store_says_where_records_are_kept_and_never_writes_it(
    start_kernel, mlp_home, tmp_path
):
    before = _newer_store(mlp_home)
    spool = tmp_path / "spool"
    k = start_kernel(MLP_SPOOL_DIR=str(spool))
    r = k.run("%load_ext jupyter_mlp\n%mlp_track on-newer --no-gpu")
    assert r.status == "ok", r
    assert r.stderr.count("jupyter-mlp warning") == 1
    assert "newer than this jupyter-mlp" in r.stderr and str(spool) in r.stderr
    assert "written when the store can take them" in r.stderr
    for i in range(3):
        r = k.run(f"import jupyter_mlp as mlp\nmlp.log_metric('x', {i})\nmlp.output('o', {i})")
        assert r.status == "ok" and r.stderr == "", r
    r = k.run("%mlp_track stop")
    assert r.status == "ok"
    assert "could not be written to the store" in r.stderr and str(spool) in r.stderr
    assert (mlp_home / "mlp.sqlite").read_bytes() == before  # never written into


def test_a_corrupt_store_at_mlp_track_keeps_records_that_are_written_once_fixed(
    start_kernel, mlp_home, tmp_path
):
    """The user moves the broken file aside, as the message says: what the kernel kept is
    written, by its own writer, into the new store."""
    mlp_home.mkdir(parents=True)
    (mlp_home / "mlp.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    k = start_kernel(MLP_SPOOL_DIR=str(tmp_path / "spool"))
    r = k.run("%load_ext jupyter_mlp\n%mlp_track fix-me --no-gpu")
    assert "not a readable SQLite database" in r.stderr and "move it aside" in r.stderr
    assert (
        k.run("import jupyter_mlp as mlp\nmlp.log_metric('kept', 1.0)\nmlp.flush()").ename is None
    )
    (mlp_home / "mlp.sqlite").rename(mlp_home / "broken.sqlite")
    r = k.run(
        "import time\nrun = mlp.active_run()\ndeadline = time.time() + 30\n"
        "while run._sink.pending and time.time() < deadline: time.sleep(0.05)\n"
        "print(run._sink.pending)"
    )
    assert r.stdout.strip() == "False", r
    k.run("%mlp_track stop")
    from jupyter_mlp.store import Store

    store = Store(mlp_home)
    run = only_run(store)
    assert run["status"] == "finished" and run["metrics"] == {"kept": 1.0}
    store.close()


def test_spools_of_a_dead_kernel_are_written_by_the_next_cli_call(tmp_path, mlp_home):
    """A script that died while the store was broken left its spool; `jupyter mlp runs list`
    writes it into the store once the user moved the broken file aside."""
    spool = tmp_path / "spool"
    env = {**os.environ, "MLP_HOME": str(mlp_home), "MLP_SPOOL_DIR": str(spool)}
    mlp_home.mkdir(parents=True)
    (mlp_home / "mlp.sqlite").write_bytes(b"not a database at all" * 100)
    code = (
        "import os, jupyter_mlp as mlp\nmlp.track('died')\nmlp.log_metric('m', 3.0)\n"
        "mlp.output('o', 1)\nos._exit(9)"  # dies without finishing: a kill, for the store
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 9 and "kept in" in done.stderr, done.stderr
    (mlp_home / "mlp.sqlite").unlink()
    jupyter = str(Path(sys.executable).parent / "jupyter")
    listed = subprocess.run(
        [jupyter, "mlp", "runs", "list", "--format", "json"], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "wrote" in listed.stderr and "spooled" in listed.stderr
    import json

    runs = json.loads(listed.stdout)
    assert [r["name"] for r in runs] == ["died"] and runs[0]["metrics"] == {"m": 3.0}
    # the dead process's pid is gone: the reader marks the run lost, nothing is left running
    assert runs[0]["status"] == "lost"
    assert not list(spool.rglob("*.jsonl"))


def test_store_unavailable_is_exported_for_the_server(tmp_path):
    from jupyter_mlp.store import SchemaTooNew, Store, StoreUnavailable

    assert issubclass(SchemaTooNew, StoreUnavailable)
    (tmp_path / "mlp.sqlite").write_bytes(b"\x00" * 4096 + b"garbage" * 100)
    with pytest.raises(StoreUnavailable) as info:
        Store(tmp_path).connect()
    assert info.value.path.endswith("mlp.sqlite") and info.value.advice
    assert not isinstance(info.value, sqlite3.Error)


def test_a_newer_store_is_refused_before_anything_could_write_it(tmp_path):
    """Even switching a rollback-journal store to WAL would write its header: the version is
    read first, and the file stays byte for byte (no -wal or -shm appears either)."""
    from jupyter_mlp.store import SchemaTooNew, Store

    path = tmp_path / "mlp.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew, match="newer than this jupyter-mlp"):
        Store(tmp_path).connect()
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["mlp.sqlite"]


def test_two_runs_spooling_the_same_file_during_an_outage_both_keep_it(tmp_path):
    """The same notebook snapshot or artifact in two runs, both spooled while the server was
    down: each run uploads its own copy, so each may reference it (and neither loses it)."""
    import time as _time

    from jupyter_mlp.store import runs as run_store
    from jupyter_mlp.tracker.sinks import HttpSink, Kept

    server = faults.IngestServer(tmp_path / "home", 3600)
    try:
        conn = server.store.connect()
        made = [run_store.create_run(conn, {"name": f"r{i}"}, True) for i in range(2)]
        sinks = [HttpSink(server.url, m["token"], tmp_path / "spool") for m in made]
        server.down = True
        for sink in sinks:
            digest = sink.put_bytes(b"the same weights")
            row = ["model", "artifact", "{}", digest, 16, "model.bin", _time.time()]
            with pytest.raises(Kept):
                sink.write(sink.run_id, {"outputs": [row]})
        server.down = False
        for sink in sinks[::-1]:  # the second run goes first and removes its copy
            sink.flush()
            assert not sink.notes and not sink.refused, (sink.notes, sink.refused)
        for m in made:
            assert digest in run_store.run_blobs(conn, m["id"])
    finally:
        server.close()


def test_a_remote_tracker_whose_spool_cannot_be_written_still_delivers(tmp_path):
    """The spool's own disk is unusable (here: its folder would sit under a file): records wait
    in memory, nothing raises, and they are sent once the server is back."""
    import time as _time

    from jupyter_mlp.store import runs as run_store
    from jupyter_mlp.store.records import metric_series
    from jupyter_mlp.tracker.sinks import HttpSink, Kept

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    server = faults.IngestServer(tmp_path / "home", 3600)
    try:
        conn = server.store.connect()
        made = run_store.create_run(conn, {"name": "no-spool"}, True)
        sink = HttpSink(server.url, made["token"], blocker / "spool")
        server.down = True
        digest = sink.put_bytes(b"weights")
        with pytest.raises(Kept):
            sink.write(made["id"], {"metrics": [["m", 0, 1.0, _time.time()]],
                                    "outputs": [["w", "artifact", "{}", digest, 7, "w", _time.time()]]})  # fmt: skip
        assert "held in memory" in " ".join(sink.notes)
        assert "lost when this process exits" in sink.pending_summary()
        server.down = False
        sink.flush()
        assert len(metric_series(conn, made["id"], "m")) == 1
        assert digest in run_store.run_blobs(conn, made["id"]) and sink.pending_summary() is None
    finally:
        server.close()


def test_a_script_whose_token_is_refused_says_its_end_is_not_stored(tmp_path):
    """A remote tracker whose run token the server refuses: the script's last status line must
    not read as a stored "[finished]" run; it says the records wait in the spool, and where."""
    server = faults.IngestServer(tmp_path / "home", 3600)
    try:
        script = tmp_path / "train.py"
        script.write_text(
            "import jupyter_mlp as mlp\nmlp.track('remote')\nmlp.log_metric('x', 1.0)\nmlp.finish()\n"
        )
        spool = tmp_path / "spool"
        env = {**os.environ, "MLP_TRACKING_URI": server.url, "MLP_SPOOL_DIR": str(spool),
               "MLP_TRACKING_TOKEN": "abcd00000001.not-a-token", "MLP_HOME": str(tmp_path / "x")}  # fmt: skip
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              env=env, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        last = done.stdout.strip().splitlines()[-1]
        assert "[finished]" in last and "not in the store yet (kept in a spool)" in last, last
        # the run was made by POST /runs, perhaps in a project: this process does not know which
        assert "project" not in last, last
        assert "refused the run token (401" in done.stderr and str(spool) in done.stderr
    finally:
        server.close()
