"""%mlp_track in real ipykernel kernels driven through jupyter_client."""

from __future__ import annotations

import math
import os
import signal
import time

from conftest import only_run, wait_for, write_notebook

from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.records import metric_series

TRACK = "%load_ext jupyter_mlp\n%mlp_track baseline --project digits"


def test_cells_are_recorded_in_order_with_their_status(start_kernel, store):
    k = start_kernel()
    assert k.run(TRACK).status == "ok"
    k.run("x = 1", cell_id="c-ok")
    failed = k.run("raise ValueError('bad value')", cell_id="c-err")
    assert failed.ename == "ValueError"
    k.run("raise KeyboardInterrupt", cell_id="c-int")
    k.run("y = x + 1", cell_id="c-last")
    k.run("%mlp_track stop")

    run = only_run(store)
    assert (run["name"], run["project"], run["status"]) == ("baseline", "digits", "finished")
    cells = run["cells"]
    assert [c["cell_id"] for c in cells] == ["c-ok", "c-err", "c-int", "c-last"]
    assert [c["status"] for c in cells] == ["ok", "error", "interrupted", "ok"]
    assert [c["source"] for c in cells][0] == "x = 1"
    assert cells[1]["error"]["ename"] == "ValueError"
    assert "bad value" in cells[1]["error"]["evalue"]
    counts = [c["execution_count"] for c in cells]
    assert counts == sorted(counts) and len(set(counts)) == 4
    assert all(c["duration"] >= 0 and c["started_at"] >= run["started_at"] for c in cells)


def test_a_real_interrupt_marks_the_cell_and_the_run_interrupted(start_kernel, store):
    k = start_kernel()
    k.run(TRACK)
    msg_id = k.send(
        "import time\nprint('started', flush=True)\nfor _ in range(600): time.sleep(0.05)"
    )
    k.wait_stdout(msg_id, "started")
    k.km.interrupt_kernel()
    assert k.collect(msg_id).ename == "KeyboardInterrupt"
    k.run("%mlp_track stop")
    run = only_run(store)
    assert run["cells"][-1]["status"] == "interrupted"
    assert run["status"] == "interrupted"


def test_parameters_cell_snapshot_and_environment(start_kernel, store, tmp_path):
    nb = write_notebook(
        tmp_path / "train.ipynb",
        [
            {"id": "setup", "source": TRACK},
            {
                "id": "params",
                "source": "lr = 0.1\nepochs: int = 3\nname = 'adam'\nlayers = [64, 32]",
                "tags": ["parameters"],
            },
            {"id": "train", "source": "acc = 0.5"},
        ],
    )
    k = start_kernel(JPY_SESSION_NAME=str(nb))
    k.run(TRACK, cell_id="setup")
    # the writer thread reads the notebook to learn which cell is tagged `parameters`
    wait_for(
        lambda: run_store.list_runs(store.connect()) and only_run(store)["notebook"], what="run"
    )
    wait_for(lambda: (only_run(store).get("env") or {}).get("packages"), what="environment")
    k.run("lr = 0.1\nepochs: int = 3\nname = 'adam'\nlayers = [64, 32]", cell_id="params")
    k.run("acc = 0.5", cell_id="train")
    k.run("%mlp_track stop")

    run = only_run(store)
    assert run["params"] == {"lr": 0.1, "epochs": 3, "name": "adam", "layers": [64, 32]}
    types = {p["key"]: p["type"] for p in _param_details(store, run["id"])}
    assert types == {"lr": "float", "epochs": "int", "name": "str", "layers": "list"}
    assert run["notebook"] == str(nb)
    assert store.blobs.read_bytes(run["snapshot"]) == nb.read_bytes()
    assert run["end_snapshot"] == run["snapshot"]  # the file did not change
    env = run["env"]
    assert env["python"] and "ipykernel" in {p.lower() for p in env["packages"]}
    assert run["host"] and run["user"] and run["pid"] == k.pid
    assert run["gpu"]["enabled"] is False and run["gpu"]["reason"]


def test_params_from_magic_option_and_api(start_kernel, store):
    k = start_kernel()
    k.run("batch = 32\nseed = 7")
    k.run("%load_ext jupyter_mlp\n%mlp_track --params batch,seed")
    k.run(
        "import jupyter_mlp as mlp\nmlp.log_params({'opt': 'sgd', 'decay': None})\nmlp.log_param('warm', True)"
    )
    k.run("%mlp_track stop")
    assert only_run(store)["params"] == {
        "batch": 32, "seed": 7, "opt": "sgd", "decay": None, "warm": True,
    }  # fmt: skip


def test_metrics_outputs_and_artifacts(start_kernel, store, tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"\x00weights" * 1000)
    k = start_kernel()
    k.run(TRACK)
    k.run(
        "import jupyter_mlp as mlp\n"
        "for i in reversed(range(100)): mlp.log_metric('loss', 1.0 / (i + 1), step=i)\n"
        "for i in range(50): mlp.log_metrics({'acc': i / 50, 'lr': 0.1})\n"
        "mlp.log_metric('odd', float('nan')); mlp.log_metric('odd', float('inf')); mlp.log_metric('odd', float('-inf'))\n"
        "mlp.output('val_acc', 0.93)\n"
        "mlp.output('report', {'classes': [0, 1], 'ok': True})\n"
        "mlp.log_artifact('model.pkl')\n"
    )
    k.run("%mlp_track stop")
    run = only_run(store)
    conn = store.connect()
    loss = metric_series(conn, run["id"], "loss")
    assert [s for s, _, _ in loss] == list(range(100))
    assert loss[0][1] == 1.0 and loss[-1][1] == 0.01
    acc = metric_series(conn, run["id"], "acc")
    assert [s for s, _, _ in acc] == list(range(50))  # steps count up when not given
    odd = [v for _, v, _ in metric_series(conn, run["id"], "odd")]
    assert math.isnan(odd[0]) and odd[1] == math.inf and odd[2] == -math.inf
    assert run["metrics"]["loss"] == 0.01 and run["metrics"]["acc"] == 49 / 50
    outputs = {o["name"]: o for o in run["outputs"]}
    assert outputs["val_acc"]["value"] == 0.93
    assert outputs["report"]["value"] == {"classes": [0, 1], "ok": True}
    art = outputs["model.pkl"]
    assert art["kind"] == "artifact" and art["size"] == 8000
    assert store.blobs.read_bytes(art["blob"]) == (tmp_path / "model.pkl").read_bytes()


def test_bad_api_calls_warn_once_and_never_raise_into_the_cell(start_kernel, store):
    k = start_kernel()
    r = k.run("import jupyter_mlp as mlp\nmlp.log_metric('loss', 1.0)")
    assert r.ename == "NoActiveRun" and "%mlp_track" in r.evalue  # documented: start a run first
    k.run(TRACK)
    cases = {
        "mlp.log_metric('loss', 'high')": "value must be a number",
        "mlp.log_metric('', 1.0)": "must not be empty",
        "mlp.log_metric('loss', 1.0, step=1.5)": "step must be an int",
        "mlp.log_metric('loss', 1.0, step=2**63)": "outside",
        "mlp.log_metric('bad\\ud800', 1.0)": "lone surrogate",
        "mlp.log_metric('x' * 10_000_000, 1.0)": "characters long",
        "mlp.log_params({'f': open})": "cannot be stored",
        "mlp.output('x', object())": "cannot be stored",
        "mlp.log_artifact('missing.bin')": "no such file",
        "mlp.log_metrics([1, 2])": "must be a dict",
    }
    for code, message in cases.items():
        r = k.run(code)
        assert r.status == "ok" and r.ename is None, (code, r.ename, r.evalue)
        assert r.stderr.count("jupyter-mlp warning") == 1, (code, r.stderr)
        assert message in r.stderr and "was not recorded" in r.stderr, (code, r.stderr)
        assert len(r.stderr) < 1000  # never the 10 MB name itself
    assert k.run("mlp.log_metric('loss', 'again')").stderr == ""  # the same refusal: counted
    assert k.run("mlp.log_metric('ok', 2)\nmlp.output('val', 42)").status == "ok"
    k.run("%mlp_track stop")
    run = only_run(store)
    assert run["status"] == "finished" and run["metrics"] == {"ok": 2.0}
    assert [o["name"] for o in run["outputs"]] == ["val"]


def test_unknown_magic_options_and_wrong_types_give_usage(start_kernel, store):
    k = start_kernel()
    k.run("%load_ext jupyter_mlp")
    for line in (
        "%mlp_track --bogus",
        "%mlp_track --gpu-interval abc",
        "%mlp_track --gpu-interval -1",
        "%mlp_track stop now",
    ):
        r = k.run(line)  # IPython prints a UsageError on stderr and fails the cell
        assert r.status == "error" and r.stderr.startswith("UsageError: %mlp_track"), line
        assert "usage:" in r.stderr and "%mlp_track [NAME]" in r.stderr, r.stderr
    assert run_store.list_runs(store.connect()) == []


def test_two_runs_in_one_kernel(start_kernel, store):
    k = start_kernel()
    k.run("%load_ext jupyter_mlp\n%mlp_track first")
    k.run("a = 1", cell_id="a")
    k.run("%mlp_track second")
    k.run("b = 2", cell_id="b")
    k.run("%mlp_track stop")
    runs = {r["name"]: r for r in run_store.list_runs(store.connect())}
    assert runs["first"]["status"] == runs["second"]["status"] == "finished"
    get = lambda name: run_store.get_run(store.connect(), runs[name]["id"])  # noqa: E731
    assert [c["cell_id"] for c in get("first")["cells"]] == ["a"]
    assert [c["cell_id"] for c in get("second")["cells"]] == ["b"]


def test_kernel_shutdown_finishes_the_run(start_kernel, store):
    k = start_kernel()
    k.run(TRACK)
    k.run("z = 3")
    k.shutdown()
    assert only_run(store)["status"] == "finished"


def test_sigkill_keeps_cells_and_the_run_is_marked_lost(start_kernel, store):
    k = start_kernel()
    k.run(TRACK)
    for i in range(20):
        k.run(f"v{i} = {i}", cell_id=f"cell-{i}")
    k.run(
        "import jupyter_mlp as mlp\nfor i in range(1000): mlp.log_metric('m', i)", cell_id="metrics"
    )
    time.sleep(0.2)  # the promise under test: what ended 200 ms before the kill is stored
    os.kill(k.pid, signal.SIGKILL)
    wait_for(lambda: not k.km.is_alive(), what="kernel death")
    conn = store.connect()
    run = only_run(store)
    assert [c["cell_id"] for c in run["cells"]] == [f"cell-{i}" for i in range(20)] + ["metrics"]
    assert len(metric_series(conn, run["id"], "m")) == 1000
    # a reader (CLI, server) notices the dead kernel instead of leaving the run `running`
    assert run_store.mark_lost(conn, heartbeat_timeout=60) == [run["id"]]
    run = only_run(store)
    assert run["status"] == "lost" and "ended without finishing" in run["error"]["evalue"]


def test_eight_kernels_tracking_at_once_lose_nothing(start_kernel, store):
    kernels = [start_kernel() for _ in range(8)]
    for i, k in enumerate(kernels):
        k.run(f"%load_ext jupyter_mlp\n%mlp_track worker-{i} --project load")
    code = (
        "import jupyter_mlp as mlp\n"
        "for i in range(5000): mlp.log_metric('loss', i * 0.5)\n"
        "mlp.output('done', True)"
    )
    for _round in range(5):
        ids = [k.send(code) for k in kernels]
        results = [k.collect(i) for k, i in zip(kernels, ids)]
        for r in results:
            assert r.status == "ok" and "locked" not in r.stderr and "warning" not in r.stderr
    for k in kernels:
        assert k.run("%mlp_track stop").status == "ok"
    conn = store.connect()
    found = run_store.list_runs(conn, project="load")
    assert len(found) == 8 and {r["status"] for r in found} == {"finished"}
    for r in found:
        assert len(metric_series(conn, r["id"], "loss")) == 25_000
        assert len(run_store.get_run(conn, r["id"])["cells"]) == 5


def test_unwritable_store_warns_once_and_the_notebook_keeps_working(start_kernel, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    spool = tmp_path / "spool"
    # cannot be created, even as root
    k = start_kernel(MLP_HOME=str(blocker / "mlp"), MLP_SPOOL_DIR=str(spool))
    r = k.run(TRACK)
    assert r.status == "ok"
    assert r.stderr.count("jupyter-mlp warning") == 1 and "cannot write run" in r.stderr
    assert f"records are kept in {spool}" in r.stderr  # on disk, not in memory
    for i in range(5):
        r = k.run(f"import jupyter_mlp as mlp\nmlp.log_metric('x', {i})\nq = {i}")
        assert r.status == "ok" and "warning" not in r.stderr
    assert k.run("q").status == "ok"
    r = k.run("%mlp_track stop")
    assert r.status == "ok" and "could not be written to the store" in r.stderr
    assert list(spool.rglob("*.jsonl"))  # kept for the next process that can open the store


def test_the_status_display_updates_in_place_after_cells(start_kernel, store):
    k = start_kernel()
    r = k.run(TRACK, cell_id="track")
    (shown,) = r.displays
    display_id = shown["transient"]["display_id"]
    assert (
        "<b>jupyter-mlp</b>" in shown["data"]["text/html"]
        and "'baseline'" in shown["data"]["text/plain"]
    )
    k.run("import jupyter_mlp as mlp\nmlp.log_metric('loss', 0.25)")

    def updated():
        k.run("pass")  # reading iopub while cells run collects the updates
        return [
            u
            for u in k.updates
            if u["transient"]["display_id"] == display_id
            and "loss <b>0.25</b>" in u["data"]["text/html"]
        ]

    wait_for(updated, what="status update")
    k.run("%mlp_track stop")
    k.run("pass")
    final = [u for u in k.updates if u["transient"]["display_id"] == display_id][-1]
    assert "finished" in final["data"]["text/plain"]


def test_a_long_cells_metrics_show_while_it_runs(start_kernel, store):
    """A training cell logs its loss for minutes: the status display shows it as it comes (at
    most once a second), not only when the cell ends."""
    k = start_kernel()
    (shown,) = k.run(TRACK, cell_id="track").displays
    display_id = shown["transient"]["display_id"]
    cell = "import jupyter_mlp as mlp, time\nmlp.log_metric('loss', 0.75)\ntime.sleep(2.5)\nmlp.log_metric('done', 1)"
    assert k.run(cell).status == "ok"
    during = [
        u["data"]["text/plain"] for u in k.updates
        if u["transient"]["display_id"] == display_id and "loss=0.75" in u["data"]["text/plain"]
        and "done=" not in u["data"]["text/plain"]
    ]  # fmt: skip
    assert during, k.updates
    assert len(during) <= 4, during  # at most about one a second, not one per writer round


def test_a_refresh_in_flight_never_paints_over_the_final_status(store):
    """The writer builds a refresh of the status view ("[running]") while the last cell's
    `%mlp_track stop` paints "[finished]": the refresh must not land after it (CI once kept
    "[running]" in an executed notebook)."""
    import threading

    from jupyter_mlp.tracker.session import RunSession

    painted: list[str] = []
    building, release, refreshed = threading.Event(), threading.Event(), threading.Event()

    class View:
        def show(self, run):
            painted.append(run.status)

        def refresh(self, run):
            status = run.status  # the bundle is built first, as DisplayStatus does
            building.set()
            release.wait(10)
            painted.append(status)
            refreshed.set()

        def close(self, run):
            painted.append(run.status)

    run = RunSession(name="race", home=store.home, gpu=False).start(view=View())
    run.log_metric("loss", 1.0)
    run.output("n", 1)  # marks the view for a refresh at the writer's next round
    wait_for(building.is_set, what="the writer's refresh")
    ending = threading.Thread(target=run.finish)
    ending.start()
    wait_for(run._stop.is_set, what="finish() to begin")
    release.set()
    wait_for(refreshed.is_set, what="the refresh to end")
    ending.join(10)
    assert painted[-1] == "finished", painted


def _param_details(store, run_id):
    from jupyter_mlp.store.records import param_details

    return param_details(store.connect(), run_id)
