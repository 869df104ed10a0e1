"""`jupyter mlp runs ...` from a terminal, and the tracking API in plain Python scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

JUPYTER = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"


def cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [JUPYTER, "mlp", *args], capture_output=True, text=True, env=env, timeout=60
    )
    if check and done.returncode != 0:
        raise AssertionError(f"jupyter mlp {' '.join(args)} failed: {done.stderr}")
    return done


def script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )


def test_a_script_run_shows_in_list_and_show(mlp_home, tmp_path):
    done = script(
        tmp_path,
        """
        import jupyter_mlp as mlp
        mlp.track("from-script", project="cli", params={"lr": 0.01, "layers": [2, 3]})
        for i in range(3):
            mlp.log_metric("loss", 1.0 / (i + 1))
        mlp.output("val_acc", 0.9)
        mlp.log_artifact(__file__, name="code")
        """,
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(cli("runs", "list", "--format", "json").stdout)
    assert [r["name"] for r in listed] == ["from-script"]
    run = listed[0]
    for field in ("id", "name", "project", "status", "started_at", "ended_at", "params", "metrics"):
        assert field in run
    assert run["status"] == "finished" and run["params"] == {"lr": 0.01, "layers": [2, 3]}

    shown = json.loads(cli("runs", "show", run["id"][:6], "--format", "json").stdout)
    for field in (
        "id",
        "name",
        "project",
        "status",
        "started_at",
        "ended_at",
        "params",
        "metrics",
        "outputs",
        "cells",
        "env",
    ):
        assert field in shown, field
    assert shown["metrics"] == {"loss": pytest.approx(1 / 3)}
    assert {o["name"] for o in shown["outputs"]} == {"val_acc", "code"}

    table = cli("runs", "list", "--project", "cli").stdout
    assert "from-script" in table and "finished" in table and "loss=0.333333" in table
    text = cli("runs", "show", run["id"]).stdout
    assert "lr = 0.01" in text and "val_acc = 0.9" in text and "artifact train.py" in text


def test_an_uncaught_exception_fails_a_script_run(mlp_home, tmp_path):
    done = script(
        tmp_path,
        """
        import jupyter_mlp as mlp
        mlp.track("crash")
        mlp.log_metric("loss", 1.0)
        raise RuntimeError("diverged")
        """,
    )
    assert done.returncode == 1 and "diverged" in done.stderr
    run = json.loads(cli("runs", "list", "--format", "json").stdout)[0]
    assert run["status"] == "failed" and run["error"]["ename"] == "RuntimeError"


def test_with_block_finishes_or_fails(mlp_home, tmp_path):
    done = script(
        tmp_path,
        """
        import jupyter_mlp as mlp
        with mlp.track("ok-block"):
            mlp.log_metric("x", 1)
        try:
            with mlp.track("bad-block"):
                raise ValueError("nope")
        except ValueError:
            pass
        """,
    )
    assert done.returncode == 0, done.stderr
    statuses = {
        r["name"]: r["status"] for r in json.loads(cli("runs", "list", "--format", "json").stdout)
    }
    assert statuses == {"ok-block": "finished", "bad-block": "failed"}


def test_filter_and_errors_from_the_cli(mlp_home, tmp_path):
    script(
        tmp_path,
        "import jupyter_mlp as mlp\nmlp.track('a', params={'lr': 0.1})\nmlp.log_metric('acc', 0.95)\n",
    )
    script(
        tmp_path,
        "import jupyter_mlp as mlp\nmlp.track('b', params={'lr': 0.5})\nmlp.log_metric('acc', 0.5)\n",
    )
    got = json.loads(
        cli("runs", "list", "--filter", "metrics.acc > 0.9", "--format", "json").stdout
    )
    assert [r["name"] for r in got] == ["a"]
    # README writes the descending sort as `--sort -metrics.acc` (a value starting with '-')
    for sort, order in (("-metrics.acc", ["a", "b"]), ("metrics.acc", ["b", "a"])):
        ranked = json.loads(cli("runs", "list", "--sort", sort, "--format", "json").stdout)
        assert [r["name"] for r in ranked] == order, sort
    bad = cli("runs", "list", "--filter", "metrics.acc >", check=False)
    assert bad.returncode == 2 and "at character 14" in bad.stderr
    unsortable = cli("runs", "list", "--sort", "bogus", check=False)
    assert unsortable.returncode == 2 and unsortable.stderr.strip() == (
        "jupyter mlp: bad sort: cannot sort by 'bogus' (a run column, metrics.NAME or params.NAME)"
    )
    missing = cli("runs", "show", "deadbeef0000", check=False)
    assert missing.returncode == 1 and "no run 'deadbeef0000'" in missing.stderr
    empty = cli("runs", "list", "--project", "nothing-here").stdout
    assert "no runs" in empty


def test_an_argument_a_command_does_not_take_is_refused_with_that_commands_usage(mlp_home):
    """Not the top level's usage: the command's own, and papermill's output path is told where
    the executed notebook goes instead."""
    extra = cli("runs", "list", "--bogus", check=False)
    assert extra.returncode == 2 and extra.stderr.startswith("usage: jupyter mlp runs list ")
    assert "jupyter mlp runs list: error: unrecognized arguments: --bogus" in extra.stderr
    papermill_habit = cli("--home", str(mlp_home), "run", "in.ipynb", "out.ipynb", check=False)
    assert papermill_habit.returncode == 2
    assert papermill_habit.stderr.startswith("usage: jupyter mlp run ")
    assert "unrecognized arguments: out.ipynb" in papermill_habit.stderr
    assert "jupyter mlp runs export RUN_ID -o OUT.ipynb" in papermill_habit.stderr


def test_list_works_on_a_new_empty_home(tmp_path):
    env = {**os.environ, "MLP_HOME": str(tmp_path / "fresh")}
    assert "no runs" in cli("runs", "list", env=env).stdout


def test_time_of_a_job_still_running_is_its_time_so_far():
    import time

    from jupyter_mlp.cli import _run_time

    job = {"kind": "job", "status": "running", "started_at": time.time() - 30, "duration": None}
    assert _run_time(job) in ("30.0s..", "30.1s..", "30.2s..")
    assert _run_time({**job, "status": "queued", "started_at": None}) == "-"
    assert _run_time({**job, "status": "finished", "duration": 2.5}) == "2.5s"


def test_a_float_parameter_given_as_1_shows_as_the_notebook_got_it():
    from jupyter_mlp.cli import _param_value

    assert _param_value(1, "float") == "1.0" and _param_value(True, "bool") == "True"
    assert _param_value([1, 2], "tuple") == "(1, 2)" and _param_value([1, 2], "list") == "[1, 2]"


def test_an_idle_kernel_run_shows_time_in_cells_and_idle(store):
    """An interactive run left open reads as 5.5 s of work, idle, not as hours of running."""
    import time

    from jupyter_mlp.store.records import apply_batch

    long_ago = time.time() - 3 * 3600
    with store.write() as conn:
        apply_batch(conn, "dddd00000001", {
            "run": {"name": "prepare", "status": "running", "kind": "interactive",
                    "project": "p", "started_at": long_ago},
            "cells": [(0, "a", 1, "x = 1", long_ago, 2.0, "ok", None, None),
                      (1, "b", 2, "y = 2", long_ago + 3, 3.5, "ok", None, None)],
            "metrics": [("acc", 0, 0.9, long_ago + 6)],
        })  # fmt: skip
    table = cli("runs", "list").stdout
    header, row = table.splitlines()[:2]
    assert "TIME" in header and "DURATION" not in header
    assert "running (idle 2h59m)" in row and " 5.5s " in row, table
    shown = cli("runs", "show", "dddd").stdout
    assert "in cells  5.5s" in shown and "(idle)" in shown
    listed = json.loads(cli("runs", "list", "--format", "json").stdout)[0]
    assert (
        listed["busy_s"] == 5.5 and listed["last_activity_at"] == long_ago + 6.5
    )  # the last cell ended last


def test_a_filter_that_matches_nothing_hints_at_misspelt_names(store):
    from jupyter_mlp.store.records import apply_batch

    with store.write() as conn:
        apply_batch(conn, "eeee00000001", {
            "run": {"name": "a", "status": "finished", "project": "p", "started_at": 1000.0},
            "metrics": [("val_acc", 0, 0.9, 1001.0)],
        })  # fmt: skip
    out = cli("runs", "list", "--filter", "metrics.val_ac > 0.5").stdout
    assert "no runs" in out
    assert "hint: no run has metrics.val_ac; did you mean metrics.val_acc?" in out
    # a sort by a misspelt metric still lists the runs, and says so apart (stderr)
    done = cli("runs", "list", "--sort", "-metrics.val_ac")
    assert "eeee00000001" in done.stdout and "hint" not in done.stdout
    assert "hint: no run has metrics.val_ac; did you mean metrics.val_acc?" in done.stderr


def test_a_lost_run_ends_at_its_last_sign_of_life(store):
    """A kernel killed 1.5 s into its first cell wrote no heartbeat after its start: its run
    read `duration 0.0s`. It ends at the later of its heartbeat and what it last recorded."""
    import socket
    import subprocess
    import time

    from jupyter_mlp.store import runs as run_store
    from jupyter_mlp.store.records import apply_batch

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid of this host that no longer runs
    start = time.time() - 60
    with store.write() as conn:
        apply_batch(conn, "dddd00000002", {
            "run": {"name": "killed", "status": "running", "kind": "interactive", "project": "p",
                    "started_at": start, "heartbeat_at": start, "host": socket.gethostname(),
                    "pid": gone.pid},
            "cells": [(0, "a", 1, "train()", start + 0.1, 1.5, "ok", None, None)],
        })  # fmt: skip
    conn = store.connect()
    assert run_store.mark_lost(conn, 600) == ["dddd00000002"]
    run = run_store.get_run(conn, "dddd00000002", with_cells=False)
    assert run["status"] == "lost" and run["ended_at"] == pytest.approx(start + 1.6, abs=0.01)


def test_list_says_when_it_shows_only_some_runs_and_refuses_a_bad_limit(store):
    from jupyter_mlp.store.records import apply_batch

    with store.write() as conn:
        for i in range(3):
            apply_batch(conn, f"dddd0000001{i}", {"run": {"name": f"r{i}", "status": "finished",
                                                          "project": "p"}})  # fmt: skip
    some = cli("runs", "list", "--limit", "2")
    assert len(some.stdout.splitlines()) == 3  # the header and two runs
    assert "2 runs shown; there are more (--limit N shows up to 1000)" in some.stderr
    assert "there are more" not in cli("runs", "list", "--limit", "3").stderr
    for bad in ("0", "-1", "1001", "many"):
        done = cli("runs", "list", "--limit", bad, check=False)
        assert done.returncode == 2 and "expected a whole number from 1 to 1000" in done.stderr
        assert "Traceback" not in done.stderr


def test_export_into_a_folder_or_an_unwritable_path_says_so(store, tmp_path):
    """A folder takes the file under its usual name; a path that cannot be written is one line,
    never a traceback."""
    from jupyter_mlp.store.partial import executed_notebook  # noqa: F401 (what export reads)
    from jupyter_mlp.store.records import apply_batch

    nb = store.blobs.put_bytes(b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    with store.write() as conn:
        apply_batch(conn, "dddd00000020", {"run": {"name": "job", "status": "finished",
                                                   "output_notebook": nb}})  # fmt: skip
    into = cli("runs", "export", "dddd", "--output", str(tmp_path))
    assert (tmp_path / "job-dddd00000020.ipynb").is_file(), into.stdout
    bad = cli("runs", "export", "dddd", "--output", str(tmp_path / "no" / "x.ipynb"), check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("jupyter mlp: cannot write ")
    assert "Traceback" not in bad.stderr


def test_a_scripts_status_line_escapes_control_characters_and_says_refusals_once(
    mlp_home, tmp_path
):
    """The tracker's own line in a terminal shows a run's name and metric names as the CLI does
    (an ANSI escape in a name is shown, never sent); the end-of-run count of refused calls is
    said once."""
    done = script(tmp_path, r"""
        import jupyter_mlp as mlp
        mlp.track("evil\x1b[31mred\nline2")
        mlp.log_metric("m\x1b[2J", 1)
        mlp.log_metric("x", "bad")
        mlp.log_metric("y", "bad")
        mlp.finish()
    """)  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "\x1b" not in out and "evil\\x1b[31mred\\x0aline2" in out and "m\\x1b[2J=1" in out
    assert out.count("calls in all were refused") == 1, out


def test_show_lists_the_tags_and_an_output_as_python_spells_it(mlp_home, tmp_path):
    done = script(tmp_path, """
        import jupyter_mlp as mlp
        mlp.track("t", tags=["first", "k2"])
        mlp.log_params({"flag": True, "shape": (2, 3), "name": "resnet"})
        mlp.output("setdict", {"a": {1, 2}, "b": (3, 4)})
        mlp.output("plain", {"x": [1, 2]})
    """)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(cli("runs", "list", "--format", "json").stdout)
    shown = cli("runs", "show", run["id"]).stdout
    assert "  tags      first, k2\n" in shown
    assert "  setdict = {'a': {1, 2}, 'b': (3, 4)}\n" in shown and "__py__" not in shown
    assert '  plain = {"x": [1, 2]}\n' in shown  # JSON as it was
    # parameters as the notebook has them: Python's spelling, not JSON's (true, [2, 3])
    assert "  flag = True     bool\n" in shown and "  shape = (2, 3)  tuple\n" in shown
    assert "  name = resnet   str\n" in shown
