"""A `"sweep"` stage in a .mlpipe, through real kernels, papermill and Optuna: a grid sweep's
best trial feeds the next stage, a rerun is taken from the cache (the whole stage, and trial by
trial when the block grows), a sweep whose trials all fail fails its stage with the reason, and
bad blocks are refused before anything is queued, naming the stage and the field (validate, the
CLI, the server's routes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tracked_run, wait_for, write_notebook

pytest.importorskip("optuna")

from jupyter_mlp import cli  # noqa: E402
from jupyter_mlp.execution.service import JobService  # noqa: E402
from jupyter_mlp.pipelines import spec as S  # noqa: E402
from jupyter_mlp.pipelines.dag import Driver, PipelineError, cancel, submit  # noqa: E402
from jupyter_mlp.pipelines.validate import validate  # noqa: E402
from jupyter_mlp.store import pipelines as P  # noqa: E402
from jupyter_mlp.store import runs as run_store  # noqa: E402
from jupyter_mlp.store import sweeps as sweep_store  # noqa: E402
from jupyter_mlp.store.records import params_of  # noqa: E402

pytestmark = pytest.mark.timeout(240)

TRACK = {"id": "track", "source": "%load_ext jupyter_mlp\n%mlp_track"}
SEARCH_CODE = """\
import time
import jupyter_mlp as mlp
time.sleep(nap)
if boom:
    raise ValueError("boom: this trial was told to fail")
mlp.log_metric("score", -(x - 3) ** 2 - (y - 0.5) ** 2)
mlp.output("x", x + shift)
mlp.output("y", y)
"""


@pytest.fixture
def notebooks(tmp_path) -> Path:
    write_notebook(tmp_path / "search.ipynb", [
        TRACK, {"id": "p", "source": "x = 0\ny = 0.0\nshift = 0\nboom = False\nnap = 0.0", "tags": ["parameters"]},
        {"id": "w", "source": SEARCH_CODE},
    ])  # fmt: skip
    write_notebook(tmp_path / "use.ipynb", [
        TRACK, {"id": "p", "source": "x = 0\ny = 0.0", "tags": ["parameters"]},
        {"id": "w", "source": "import jupyter_mlp as mlp\nmlp.output('z', x * 10 + y)"},
    ])  # fmt: skip
    return tmp_path


@pytest.fixture
def jobs(store):
    svc = JobService(store, concurrency=3, poll_interval=0.05)
    svc.start()
    yield svc
    svc.stop()


def pipeline(stages: dict, parameters: dict | None = None) -> dict:
    return {"format": S.FORMAT, "version": 1, "name": "t", "parameters": parameters or {},
            "stages": stages}  # fmt: skip


def two_stages(x: str = "1,3,5", **search: object) -> dict:
    """search: a grid sweep over x and y (best: x=3, y=0.5) with shift fixed from the pipeline;
    use: takes the best trial's outputs."""
    block = {"params": {"x": x, "y": "0.0..0.5:0.5"}, "objective": "max:score",
             "sampler": "grid", "concurrency": 2}  # fmt: skip
    return pipeline({
        "search": {"template": {"notebook": "search.ipynb"},
                   "parameters": {"shift": "${pipeline.shift}", **search}, "sweep": block},
        "use": {"template": {"notebook": "use.ipynb"},
                "parameters": {"x": "${search.outputs.x}", "y": "${search.outputs.y}"}},
    }, {"shift": 100})  # fmt: skip


def run_pipeline(store, jobs, spec, base) -> dict:
    pid = submit(store, spec, base=base)
    Driver(store, pid, service=jobs).run()
    return P.get(store.connect(), pid)


def statuses(run: dict) -> dict[str, str]:
    return {name: s["status"] for name, s in run["stages"].items()}


def run_ids(store) -> set[str]:
    return {r["id"] for r in run_store.list_runs(store.connect(), limit=1000)}


def output(store, run_id: str, name: str):
    found = {o["name"]: o for o in run_store.get_run(store.connect(), run_id)["outputs"]}
    return found[name]["value"]


def test_a_grid_sweep_stage_hands_its_best_trial_to_the_next_stage_and_reruns_from_the_cache(
    store, jobs, notebooks, capsys
):
    conn = store.connect()
    first = run_pipeline(store, jobs, two_stages(), notebooks)
    assert first["status"] == "succeeded", first["stages"]
    assert statuses(first) == {"search": "succeeded", "use": "succeeded"}
    sweep = sweep_store.of_pipeline(conn, first["id"])["search"]
    assert (sweep["status"], sweep["budget"], sweep["sampler"]) == ("finished", 6, "grid")
    search, use = first["stages"]["search"], first["stages"]["use"]
    # The stage's run is the best trial's: the known best of the grid, x=3, y=0.5.
    assert search["run_id"] == sweep["best_run_id"] and sweep["best_value"] == 0.0
    best = params_of(conn, [search["run_id"]])[search["run_id"]]
    assert (best["x"], best["y"], best["shift"]) == (3, 0.5, 100)
    assert search["params"] == {"shift": 100, "x": 3, "y": 0.5}
    # Every trial is a stage job of this pipeline run with the stage's fixed parameter.
    trials = sweep_store.trials(conn, sweep["id"])
    assert len(trials) == 6 and {t["status"] for t in trials} == {"finished"}
    got = {(t["params"]["x"], t["params"]["y"]) for t in trials}
    assert got == {(x, y) for x in (1, 3, 5) for y in (0.0, 0.5)}
    trial_runs = [run_store.get_run(conn, t["run_id"], with_cells=False) for t in trials]
    assert {(r["kind"], r["pipeline_run_id"], r["stage"], r["sweep_id"]) for r in trial_runs} == {
        ("stage", first["id"], "search", sweep["id"])
    }
    assert {params_of(conn, [r["id"]])[r["id"]]["shift"] for r in trial_runs} == {100}
    # Downstream got the best trial's outputs, and started only once the sweep had ended.
    assert use["params"] == {"x": 103, "y": 0.5}
    assert output(store, use["run_id"], "z") == 1030.5
    use_run = run_store.get_run(conn, use["run_id"], with_cells=False)
    assert max(r["ended_at"] for r in trial_runs) <= use_run["started_at"]
    assert cli.main(["--home", str(store.home), "pipeline", "status", first["id"]]) == 0
    table = capsys.readouterr().out
    assert f"run {search['run_id']}  sweep {sweep['id']} (6/6 trials, best 0)" in table

    # The same pipeline again: the whole sweep stage is taken from the cache, no trial runs.
    before = run_ids(store)
    again = run_pipeline(store, jobs, two_stages(), notebooks)
    assert statuses(again) == {"search": "cached", "use": "cached"}
    assert again["stages"]["search"]["run_id"] == search["run_id"]
    assert again["stages"]["search"]["cached_from"] == first["id"]
    assert again["stages"]["search"]["params"] == {"shift": 100, "x": 3, "y": 0.5}
    assert sweep_store.of_pipeline(conn, again["id"]) == {}
    assert run_ids(store) == before

    # A bigger grid: the six points that ran before are reused trial by trial, only x=7 runs.
    grown = run_pipeline(store, jobs, two_stages("1,3,5,7"), notebooks)
    assert statuses(grown) == {"search": "succeeded", "use": "cached"}
    new_sweep = sweep_store.of_pipeline(conn, grown["id"])["search"]
    new_trials = sweep_store.trials(conn, new_sweep["id"])
    assert len(new_trials) == 8 and {t["status"] for t in new_trials} == {"finished"}
    reused = [t for t in new_trials if t["system"].get("cached")]
    assert {t["run_id"] for t in reused} == {t["run_id"] for t in trials}
    fresh = [t for t in new_trials if not t["system"].get("cached")]
    assert sorted((t["params"]["x"], t["params"]["y"]) for t in fresh) == [(7, 0.0), (7, 0.5)]
    assert run_ids(store) - before == {t["run_id"] for t in fresh}
    assert grown["stages"]["search"]["run_id"] == search["run_id"]  # still the best, reused

    # A plain stage with the best trial's values is the same computation: cached from it.
    plain = pipeline({"search": {"template": {"notebook": "search.ipynb"},
                                 "parameters": {"shift": 100, "x": 3, "y": 0.5}}})  # fmt: skip
    assert statuses(run_pipeline(store, jobs, plain, notebooks)) == {"search": "cached"}
    assert run_ids(store) - before == {t["run_id"] for t in fresh}


def test_a_sweep_whose_trials_all_fail_fails_its_stage_with_the_reason(store, jobs, notebooks):
    template = tracked_run(
        store, notebooks / "search.ipynb", {"x": 0, "y": 0.0, "shift": 0, "boom": False}
    )
    spec = pipeline({
        "search": {"template": {"run": template}, "parameters": {"boom": True},
                   "sweep": {"params": {"x": "1,3"}, "objective": "max:score",
                             "sampler": "grid"}},
        "use": {"template": {"notebook": "use.ipynb"}, "parameters": {"x": "${search.outputs.x}"}},
    })  # fmt: skip
    run = run_pipeline(store, jobs, spec, notebooks)
    assert run["status"] == "failed" and statuses(run) == {"search": "failed", "use": "skipped"}
    error = run["stages"]["search"]["error"]
    assert error["ename"] == "SweepFailed", error
    assert "2 of 2 trials failed" in error["evalue"]
    assert "ValueError: boom: this trial was told to fail" in error["evalue"]
    sweep = sweep_store.of_pipeline(store.connect(), run["id"])["search"]
    trials = sweep_store.trials(store.connect(), sweep["id"])
    assert {t["status"] for t in trials} == {"failed"}
    # the trials are reruns of the template run
    assert {
        run_store.get_run(store.connect(), t["run_id"], with_cells=False)["parent_id"]
        for t in trials
    } == {template}


def test_cancelling_the_pipeline_stops_its_sweeps_running_trials(store, jobs, notebooks):
    import threading

    from jupyter_mlp.execution.processes import process_alive
    from jupyter_mlp.store import jobs as jobs_store

    pid = submit(store, two_stages(nap=60.0), base=notebooks)
    done: dict[str, str] = {}
    driver = threading.Thread(
        target=lambda: done.setdefault("status", Driver(store, pid, service=jobs).run())
    )
    driver.start()
    sweep = wait_for(lambda: sweep_store.of_pipeline(store.connect(), pid).get("search"), 30,
                     what="the stage's sweep")  # fmt: skip

    def running() -> list[dict]:
        conn = store.connect()
        found = [t for t in sweep_store.trials(conn, sweep["id"]) if t["job_state"] == "running"]
        ready = [t for t in found if jobs_store.get_job(conn, t["run_id"]).pid]
        return ready if len(ready) == 2 else []

    trials = wait_for(running, 60, 0.05, what="two running trials")
    cancel(store, pid)
    driver.join(60)
    assert not driver.is_alive() and done["status"] == "cancelled"
    run = P.get(store.connect(), pid)
    assert statuses(run) == {"search": "cancelled", "use": "cancelled"}
    conn = store.connect()
    assert sweep_store.get(conn, sweep["id"])["status"] == "cancelled"
    told = sweep_store.trials(conn, sweep["id"])
    assert len(told) == 2 and {(t["status"], t["job_state"]) for t in told} == {
        ("cancelled", "cancelled")
    }
    for t in trials:
        job = jobs_store.get_job(conn, t["run_id"])
        wait_for(lambda job=job: not process_alive(job.pid, job.proc_start), 15,
                 what="a trial's job to stop")  # fmt: skip


def test_a_pipeline_stages_sweep_driven_alone_says_whose_it_is(store, notebooks):
    """What a server that starts does with an unfinished sweep whose driver is gone: a pipeline
    stage's sweep is not driven without its pipeline; it ends failed, saying how to resume."""
    from jupyter_mlp.pipelines.sweep_stage import stage_plan
    from jupyter_mlp.sweeps.driver import Driver as SweepDriver
    from jupyter_mlp.sweeps.driver import record
    from jupyter_mlp.sweeps.space import template_parameters

    template = tracked_run(store, notebooks / "search.ipynb", {"x": 0, "y": 0.0})
    conn = store.connect()
    stage = {"template": {"run": template}, "sweep": {"params": {"x": "1,3"},
                                                      "objective": "max:score", "trials": 2}}  # fmt: skip
    plan = stage_plan("search", stage, template_parameters(conn, store.blobs, template))
    sweep_id = record(conn, plan, template_id=template, name="t:search sweep",
                      options={"pipeline_run_id": "abcdef012345", "stage": "search"})  # fmt: skip
    assert SweepDriver(store, sweep_id).run() == "failed"
    row = sweep_store.get(conn, sweep_id)
    assert "stage 'search' of pipeline run abcdef012345" in row["error"]["evalue"]
    assert "--resume abcdef012345" in row["error"]["evalue"]
    assert sweep_store.trials(conn, sweep_id) == []


# --- bad blocks: refused before anything is queued, naming the stage and the field ---------------


def sweep_stage(block: dict, **parameters: object) -> dict:
    return {"template": {"notebook": "search.ipynb"}, "parameters": parameters, "sweep": block}


OK = {"objective": "max:score", "sampler": "grid"}
BAD = [
    ({"params": {"y": "0.5..0.5"}, **OK}, {}, "sweep.params.y", "the range '0.5..0.5' is empty"),
    ({"params": {"y": "0.5..0.1"}, **OK}, {}, "sweep.params.y", "is inverted (low > high)"),
    (
        {"params": {"y": "log:0..1"}, "objective": "max:score", "trials": 3},
        {},
        "sweep.params.y",
        "a log range must lie above 0",
    ),
    (
        {"params": {"width": "1,2"}, **OK},
        {},
        "sweep.params.width",
        "the template has no parameter 'width' (it has: boom, nap, shift, x, y",
    ),
    (
        {"params": {"x": "1,3"}, **OK},
        {"x": "${prep.outputs.x}"},
        "sweep.params.x",
        "parameter 'x' is swept and also bound from upstream (${prep.outputs.x})",
    ),
    (
        {"params": {"x": "1,3"}, **OK},
        {"x": 2},
        "sweep.params.x",
        "parameter 'x' is swept and also given in parameters (2)",
    ),
    (
        {"params": {"x": "1,3"}, "objective": "max:score", "trials": 0},
        {},
        "sweep.trials",
        "sweep.trials must be a whole number of at least 1 (got 0)",
    ),
    (
        {"params": {"x": "1,3"}, "objective": "max:score", "trials": 2, "sampler": "bayes"},
        {},
        "sweep.sampler",
        "sweep.sampler 'bayes': pick one of tpe, random, grid",
    ),
    (
        {"params": {"x": "1,3"}, "objective": "best:score", "trials": 2},
        {},
        "sweep.objective",
        "sweep.objective 'best:score': write max:NAME or min:NAME",
    ),
    ({"params": {"x": "1,3"}, "trials": 2}, {}, "sweep.objective", "sweep.objective is required"),
    (
        {"params": {"x": "1,3"}, "objective": "max:score", "trails": 2},
        {},
        "sweep.trails",
        "sweep has no setting 'trails'",
    ),
    ({"params": {"x": "3"}, **OK}, {}, "sweep.params", "nothing to search"),
    ({"params": {"x": "1,five"}, **OK}, {}, "sweep.params.x", "expects an int"),
    (
        {"params": {"y": "0.0..1.0"}, **OK},
        {},
        "sweep.sampler",
        "parameter 'y': the grid sampler needs choices or a step",
    ),
    (
        {"params": {"x": "${pipeline.x}"}, **OK},
        {},
        "sweep.params.x",
        "is a reference; a swept parameter takes a sweep text",
    ),
    (
        {"params": {"x": "1,3"}, "objective": "max:output.x", "prune": True, "trials": 2},
        {},
        "sweep.prune",
        "sweep.prune needs a metric objective",
    ),
    ("lr=1..2", {}, "sweep", "sweep must be an object"),
]


@pytest.mark.parametrize("block, parameters, field, message", BAD, ids=[m for *_, m in BAD])
def test_a_bad_sweep_block_is_refused_naming_the_stage_and_the_field(
    store, notebooks, block, parameters, field, message
):
    stages = {"search": sweep_stage(block, **parameters)}
    if "prep" in json.dumps(parameters):
        stages["prep"] = {"template": {"notebook": "search.ipynb"}}
    spec = pipeline(stages)
    found = [
        i for i in validate(spec, store.connect(), store.blobs, notebooks) if i.level == "error"
    ]
    assert [(i.stage, i.field) for i in found] == [("search", field)], found
    assert found[0].message.startswith("stage 'search': ") and message in found[0].message
    with pytest.raises(PipelineError) as refused:
        submit(store, spec, base=notebooks)
    assert message in str(refused.value)
    conn = store.connect()
    for table in ("pipeline_runs", "sweeps", "jobs"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table


def test_the_cli_refuses_a_bad_sweep_block(store, notebooks, capsys):
    spec = pipeline({"search": sweep_stage({"params": {"y": "log:0..1"}, "objective": "max:score",
                                            "trials": 2})})  # fmt: skip
    path = notebooks / "p.mlpipe"
    S.save(spec, path)
    assert cli.main(["--home", str(store.home), "pipeline", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert (
        "error: stage 'search': sweep.params.y: parameter 'y': a log range must lie above 0" in out
    )
    assert cli.main(["--home", str(store.home), "pipeline", "run", str(path)]) == 2
    assert "sweep.params.y" in capsys.readouterr().err
    assert store.connect().execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


@pytest.fixture
def jp_server_config(mlp_home):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlp": True}}}


async def test_the_server_names_the_field_of_a_bad_sweep_block(jp_fetch, jp_root_dir, store):
    import tornado.httpclient

    write_notebook(jp_root_dir / "search.ipynb", [
        {"id": "p", "source": "x = 0\ny = 0.0", "tags": ["parameters"]},
        {"id": "w", "source": "pass"},
    ])  # fmt: skip
    spec = pipeline({"search": sweep_stage({"params": {"x": "1,3"}, "objective": "max:score",
                                            "trials": 0})})  # fmt: skip
    (jp_root_dir / "p.mlpipe").write_text(json.dumps(spec))
    response = await jp_fetch("mlp", "api", "pipelines", "validate", method="POST",
                              body=json.dumps({"spec": spec, "path": "p.mlpipe"}))  # fmt: skip
    issues = json.loads(response.body)["issues"]
    assert [(i["stage"], i["field"], i["level"]) for i in issues] == [
        ("search", "sweep.trials", "error")
    ]
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await jp_fetch("mlp", "api", "pipelines", "runs", method="POST",
                       body=json.dumps({"path": "p.mlpipe"}))  # fmt: skip
    assert refused.value.code == 400
    assert b"sweep.trials must be a whole number" in refused.value.response.body
    assert store.connect().execute("SELECT COUNT(*) FROM pipeline_runs").fetchone()[0] == 0


def test_whatever_a_sweep_block_holds_validate_answers_with_issues(store, notebooks):
    """No block makes validate raise (the server's validate route would answer 500)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["1,3", "log:1e-4..1", "0..1:0.25", "max:score", "grid", "${a.outputs.b}"]),
    )  # fmt: skip
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)  # fmt: skip
    keys = st.sampled_from(["params", "objective", "trials", "concurrency", "sampler", "seed",
                            "prune", "prune_startup", "prune_warmup", "timeout", "x"])  # fmt: skip
    params = st.dictionaries(
        st.sampled_from(["x", "y", "shift", "nope", "1bad"]), values, max_size=3
    )
    blocks = st.one_of(values, st.dictionaries(keys, values, max_size=6),
                       st.fixed_dictionaries({"params": params}, optional={"objective": values,
                                             "trials": values, "sampler": values}))  # fmt: skip

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(block=blocks)
    def check(block):
        spec = pipeline({"search": sweep_stage(block)})
        for issue in validate(spec, store.connect(), store.blobs, notebooks):
            assert issue.stage == "search" and issue.field and issue.field.startswith("sweep")

    check()
