"""A team on a real JupyterHub (issue 16): alice, bob and carol (the team's admin) each have a
single-user server of their own, spawned by the hub; all three servers share one PostgreSQL store,
one blob store (c.MlpApp.blob_url) and one Dask cluster, as the README's "For a team" sets them
up. Everything goes through the hub's proxy with each user's own API token, and kernels are
driven over their websockets, as JupyterLab drives them (tests/hub.py starts it all).

What the team would notice: both track at once and each sees the other's runs, live; nobody
deletes someone else's run but the admin; bob's pipeline and bob's Dask rerun on alice's pinned
run run as bob's jobs; the database restarting while alice's kernel logs loses nothing."""

from __future__ import annotations

import json
import os
import time
import uuid

import hub as hub_module
import pytest
from hub import Hub, KernelSocket, UserClient, poll

USERS = ("alice", "bob", "carol")
ADMINS = ("carol",)
ALICE_ONLY = "belongs to alice; only alice and the team's admins (carol) may"

pytestmark = pytest.mark.timeout(300)

# alice's notebook: the template bob's pipeline stage is made from
NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {"id": "setup", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "%load_ext jupyter_mlp\n%mlp_track train --project team --no-gpu"},
        {"id": "params", "cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [],
         "execution_count": None, "source": "lr = 0.1\nsteps = 20"},
        {"id": "work", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import os, jupyter_mlp as mlp\nfor i in range(steps):\n"
                   "    mlp.log_metric('acc', min(1.0, lr * i), step=i)\n"
                   "mlp.output('score', lr * steps)\n"
                   "mlp.output('via', os.environ.get('MLP_TRACKING_URI'))"},
    ],
}  # fmt: skip
RUN_ID = "import jupyter_mlp as mlp; print(mlp.active_run().run_id)"


DB_PASSWORD = "team-db-pw"  # the team role's (what no answer may show)


@pytest.fixture(scope="module")
def hub(postgres_server, tmp_path_factory):
    """The hub, its proxy and the three users' servers, on a database of the session's
    PostgreSQL server made as the README says (a login role that owns it, no superuser). Warm
    kernels are off (`warm_kernels=0`): three servers each keeping a kernel started is more
    than this suite's two cores need."""
    reason = hub_module.missing_reason()
    if reason is not None:
        if os.geteuid() == 0:  # CI: scripts/test.sh installs jupyterhub and the proxy
            pytest.fail(reason)
        pytest.skip(reason)
    dask = hub_module.Dask(tmp_path_factory.mktemp("dask"))
    role = "team_" + uuid.uuid4().hex[:10]
    postgres_server.admin(f"CREATE ROLE {role} LOGIN PASSWORD '{DB_PASSWORD}'")
    postgres_server.admin(f"CREATE DATABASE {role} OWNER {role}")
    folder = tmp_path_factory.mktemp("hub")
    the_hub = None
    try:
        the_hub = Hub(
            folder, postgres_server.url(role, password=DB_PASSWORD, user=role), USERS, ADMINS,
            blob_url=f"file://{folder}/blobs", server_args=["--MlpApp.warm_kernels=0"],
            dask_scheduler=dask.start(),
        )  # fmt: skip
        the_hub.start()
        the_hub.spawn(*USERS)
        yield the_hub
    finally:
        if the_hub is not None:
            the_hub.stop()
        dask.stop()
        postgres_server.drop_database(role)
        postgres_server.admin(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture(scope="module")
def alice(hub) -> UserClient:
    return hub.user("alice")


@pytest.fixture(scope="module")
def bob(hub) -> UserClient:
    return hub.user("bob")


@pytest.fixture(scope="module")
def carol(hub) -> UserClient:
    return hub.user("carol")


@pytest.fixture(scope="module")
def kernels(alice, bob):
    """A notebook kernel in alice's server (train.ipynb) and one in bob's, over websockets."""
    alice.put_file("train.ipynb", NOTEBOOK)
    bob.put_file("notes.ipynb", {**NOTEBOOK, "cells": []})
    opened = {"alice": alice.kernel("train.ipynb"), "bob": bob.kernel("notes.ipynb")}
    yield opened
    for kernel in opened.values():
        kernel.close()


def events_until(user: UserClient, after: int, found, deadline_s: float) -> tuple[dict, float]:
    """Long-poll `user`'s event feed from `after` until `found(event)`: (the event, when it
    arrived by time.time())."""
    deadline = time.monotonic() + deadline_s
    seen: list[dict] = []
    while time.monotonic() < deadline:
        left = max(0.1, deadline - time.monotonic())
        body = user.json("events", after=after, timeout=min(left, 5))
        now = time.time()
        for event in body["events"]:
            if found(event):
                return event, now
            seen.append(event)
        after = body["last"]
    raise AssertionError(
        f"{user.name}'s event feed: nothing matched in {deadline_s} s; saw {seen[-20:]}"
    )


def track(kernel: KernelSocket, name: str) -> str:
    """`%mlp_track name` in `kernel`; the run's id."""
    out = kernel.run(f"%load_ext jupyter_mlp\n%mlp_track {name} --project team --no-gpu\n{RUN_ID}")
    return out["stdout"].strip().splitlines()[-1]


def refused(answer) -> dict:
    assert answer.status_code == 403, (answer.status_code, answer.text)
    return answer.json()


# --- who is who ----------------------------------------------------------------------------------


def test_each_server_knows_its_hub_user_and_the_admin(hub, alice, bob, carol):
    assert hub.login("alice", hub_module.PASSWORD) == 302  # the dummy authenticator's password
    assert hub.login("alice", "not-it") == 403
    mes = {u.name: u.json("me") for u in (alice, bob, carol)}
    assert {n: (m["name"], m["admin"], m["team"]) for n, m in mes.items()} == {
        "alice": ("alice", False, True), "bob": ("bob", False, True), "carol": ("carol", True, True),
    }  # fmt: skip
    stores = {m["store"] for m in mes.values()}
    assert len(stores) == 1 and stores.pop().startswith("postgresql://")
    assert all(DB_PASSWORD not in json.dumps(m) for m in mes.values())
    # one user's token does not open another user's server (the hub's own rule)
    assert alice.http.get(f"{bob.base}/mlp/api/me", timeout=30).status_code in (403, 404)


# --- both at once, each sees the other's, live -----------------------------------------------------


def test_two_users_track_at_once_and_each_sees_the_others_runs_live(alice, bob, kernels):
    ka, kb = kernels["alice"], kernels["bob"]
    # both kernels start tracking and log at the same time
    started = {who: k.send(f"%load_ext jupyter_mlp\n%mlp_track {who}-live --project team "
                           f"--no-gpu\n{RUN_ID}") for who, k in (("alice", ka), ("bob", kb))}  # fmt: skip
    ids = {who: k.wait(started[who])["stdout"].strip().splitlines()[-1]
           for who, k in (("alice", ka), ("bob", kb))}  # fmt: skip
    logging = {who: k.send("import os, jupyter_mlp as mlp\n"
                           "for i in range(200):\n    mlp.log_metric('loss', 1 / (i + 1), step=i)\n"
                           "print(os.environ.get('MLP_TRACKING_URI'), 'MLP_STORE_URL' in os.environ)")
               for who, k in (("alice", ka), ("bob", kb))}  # fmt: skip
    outs = {"alice": ka.wait(logging["alice"]), "bob": kb.wait(logging["bob"])}
    for who, out in outs.items():
        assert out["status"] == "ok", out
        # the kernel tracks through its own server and holds no database address
        uri, has_store_url = out["stdout"].split()
        assert uri.endswith(f"/user/{who}/mlp/api") and has_store_url == "False", out

    # alice's server lists both runs, running at once, each with its owner
    running = alice.json("runs", filter="project = team and status = running")["runs"]
    assert {(r["id"], r["owner"]) for r in running} >= {
        (ids["alice"], "alice"),
        (ids["bob"], "bob"),
    }
    bobs = poll("bob's 200 points on alice's server",
                lambda: (d := alice.json(f"runs/{ids['bob']}"))["metrics"].get("loss") == 1 / 200 and d)  # fmt: skip
    assert bobs["owner"] == "bob" and bobs["status"] == "running"
    assert bob.json(f"runs/{ids['alice']}")["owner"] == "alice"

    # live: a cell ending in bob's kernel reaches the event feed of alice's server
    last = alice.json("events")["last"]
    kb.run("x = 1", cell_id="bob-cell")
    events_until(alice, last, lambda e: e["run_id"] == ids["bob"] and e["type"] == "cells", 15)

    for k in (ka, kb):
        k.run("%mlp_track stop")
    for run_id in ids.values():
        poll(f"run {run_id} finished on bob's server",
             lambda r=run_id: bob.json(f"runs/{r}")["status"] == "finished")  # fmt: skip


# --- who may change what ---------------------------------------------------------------------------


def test_only_the_owner_and_the_admin_delete_a_run(alice, bob, carol):
    made = []
    for name in ("mine-1", "mine-2"):
        answer = alice.mlp("POST", "runs", json={"name": name, "project": "team"})
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    first, second = made
    assert bob.json(f"runs/{first}")["owner"] == "alice"

    answer = refused(bob.mlp("DELETE", f"runs/{first}"))
    assert answer["message"] == f"run {first} {ALICE_ONLY} delete it"
    answer = refused(bob.mlp("PATCH", f"runs/{first}", json={"name": "bobs-now"}))
    assert ALICE_ONLY in answer["message"]
    assert alice.json(f"runs/{first}")["name"] == "mine-1"

    assert alice.mlp("DELETE", f"runs/{first}").status_code == 200  # the owner
    assert carol.mlp("DELETE", f"runs/{second}").status_code == 200  # the admin
    for run_id in made:
        assert bob.get(f"runs/{run_id}").status_code == 404


# --- bob's pipeline on alice's pinned run ----------------------------------------------------------


@pytest.fixture(scope="module")
def alice_template(alice, kernels) -> str:
    """alice runs train.ipynb cell by cell (as JupyterLab sends it) and pins the run."""
    ka = kernels["alice"]
    cells = {c["id"]: c["source"] for c in NOTEBOOK["cells"]}
    ka.run(cells["setup"], cell_id="setup")
    run_id = ka.run(RUN_ID)["stdout"].strip().splitlines()[-1]
    ka.run(cells["params"], cell_id="params")
    ka.run(cells["work"], cell_id="work")
    ka.run("%mlp_track stop")
    poll("alice's template finished",
         lambda: alice.json(f"runs/{run_id}")["status"] == "finished")  # fmt: skip
    answer = alice.mlp("PATCH", f"runs/{run_id}", json={"pinned": True})
    assert answer.status_code == 200 and answer.json()["pinned"] is True, answer.text
    return run_id


def test_bobs_pipeline_runs_a_stage_made_from_alices_pinned_run(alice, bob, carol, alice_template):
    template = bob.json(f"runs/{alice_template}")
    assert template["pinned"] is True and template["owner"] == "alice"
    # alice's server put the notebook's snapshot into the team's blob store, not her home
    digest = template["snapshot"]
    assert (bob.hub.folder / "blobs" / "sha256" / digest[:2] / digest).is_file()
    assert not list((bob.hub.homes / "alice").rglob(digest))
    assert {p: v for p, v in template["params"].items()} == {"lr": 0.1, "steps": 20}
    assert refused(bob.mlp("PATCH", f"runs/{alice_template}", json={"pinned": False}))

    spec = {
        "format": "jupyter-mlp.pipeline", "version": 1, "name": "on-alices-run",
        "parameters": {"lr": 0.25},
        "stages": {"train": {"template": {"run": alice_template},
                             "parameters": {"lr": "${pipeline.lr}", "steps": 4}}},
    }  # fmt: skip
    bob.put_file("on-alice.mlpipe", json.dumps(spec))
    answer = bob.mlp("POST", "pipelines/runs", json={"path": "on-alice.mlpipe"})
    assert answer.status_code == 201, answer.text
    pipeline_id = answer.json()["id"]
    done = poll(
        f"pipeline run {pipeline_id} to end",
        lambda: (
            (p := bob.json(f"pipelines/runs/{pipeline_id}"))["status"]
            in ("succeeded", "failed", "cancelled")
            and p
        ),
        150,
        every=0.25,
        log=lambda: json.dumps(bob.json(f"pipelines/runs/{pipeline_id}"), indent=1),
    )
    errors = {name: stage.get("error") for name, stage in done["stages"].items()}
    hint = (
        " (the template's snapshot is in the team's blob store, c.MlpApp.blob_url: the pipeline's "
        "driver and its jobs must be told that address as they are told the store's)"
        if "snapshot" in json.dumps(errors)
        else ""
    )
    assert done["status"] == "succeeded", f"bob's pipeline {done['status']}: {errors}{hint}"
    stage = alice.json(f"runs/{done['stages']['train']['run_id']}")  # alice sees it too
    assert stage["owner"] == "bob" and stage["kind"] == "stage" and stage["status"] == "finished"
    assert stage["params"] == {"lr": 0.25, "steps": 4}
    outputs = {o["name"]: o.get("value") for o in stage["outputs"]}
    assert outputs["score"] == 1.0
    assert str(outputs["via"]).endswith("/user/bob/mlp/api"), (
        f"bob's stage ran as a job of another server (its kernel tracked through {outputs['via']}): "
        "each server on the shared store dispatches every queued job, not only its user's"
    )
    # alice may not cancel bob's pipeline run; carol may (it stays as it ended)
    assert refused(alice.mlp("POST", f"pipelines/runs/{pipeline_id}/cancel"))
    assert carol.mlp("POST", f"pipelines/runs/{pipeline_id}/cancel").status_code == 200
    # last, as it is what the server does not do yet (test_team.py's xfail says the same)
    assert done["owner"] == "bob", (
        f"pipeline run {pipeline_id} has owner {done['owner']!r}, not bob: the server does not "
        "record who started a pipeline run yet (store.pipelines.create takes no owner=)"
    )


# --- shared compute ---------------------------------------------------------------------------------


def test_bobs_rerun_of_alices_run_on_the_teams_dask_cluster_reports_to_bob(
    alice, bob, alice_template
):
    """Every server submits to the one scheduler; the job reports through the hub's proxy to the
    server of whoever asked (the worker holds neither the database's address nor the blobs)."""
    answer = bob.mlp("POST", f"runs/{alice_template}/rerun",
                     json={"executor": "dask", "params": {"lr": 0.5, "steps": 2}})  # fmt: skip
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["id"]
    run = poll(
        f"the Dask job {run_id} to end",
        lambda: (
            (r := alice.json(f"runs/{run_id}"))["status"] in ("finished", "failed", "cancelled")
            and r
        ),
        150,
        every=0.25,
    )
    assert run["status"] == "finished", (
        f"bob's Dask job ended {run['status']}: {run.get('error')} (seen here when every server "
        "on the shared store dispatches every queued job: alice's and carol's servers submit bob's "
        "job too, and each submission's run token displaces the one before)"
    )
    assert run["owner"] == "bob" and run["parent_id"] == alice_template
    via = {o["name"]: o.get("value") for o in run["outputs"]}["via"]
    assert via.startswith(alice.hub.url), via  # it reported through the hub's proxy
    assert via.endswith("/user/bob/mlp/api"), (
        f"bob's Dask job was submitted by another server (it reported to {via}): each server on "
        "the shared store dispatches every queued job, not only its user's"
    )
    assert run["params"] == {"lr": 0.5, "steps": 2}
    assert {o["name"]: o.get("value") for o in run["outputs"]}["score"] == 1.0
    assert run["metrics"]["acc"] == 0.5  # the tracker in the job's kernel, over HTTP too


# --- the database goes away mid-run ----------------------------------------------------------------


def test_the_database_restarting_mid_run_loses_nothing(postgres_server, alice, bob, kernels):
    ka, kb = kernels["alice"], kernels["bob"]
    run_id = track(ka, "through-restart")
    points = 600
    cell = ka.send(
        "import time, jupyter_mlp as mlp\n"
        f"for i in range({points}):\n"
        "    mlp.log_metric('m', i, step=i)\n    time.sleep(0.005)\n"
    )

    def arrived() -> int:
        answer = bob.get(f"runs/{run_id}/metrics", key="m", points=100_000)
        return answer.json().get("total", 0) if answer.ok else 0

    poll("the first points of alice's run", lambda: arrived() >= 50, 60)
    postgres_server.stop("fast")  # every session ends, as an administrator's restart does
    went_down = time.time()
    try:
        # while it is down, the servers say so (503), they do not fail (500) or hang
        (down,) = poll("alice's server to answer 503",  # (a 503 Response is falsy)
                       lambda: (a := alice.get("runs")).status_code != 200 and [a], 30)  # fmt: skip
        assert down.status_code == 503 and down.headers.get("Retry-After"), (down, down.text)
        assert DB_PASSWORD not in down.text and "team_" in down.text  # names the database
    finally:
        came_back = time.time()
        postgres_server.start()
    assert ka.wait(cell, 120)["status"] == "ok"
    ka.run("%mlp_track stop")

    def complete() -> dict | None:
        run = bob.json(f"runs/{run_id}")
        return run if run["status"] == "finished" and arrived() == points else None

    run = poll(f"all {points} points and the end of alice's run", complete, 90, every=0.25)
    assert run["owner"] == "alice" and run["metrics"] == {"m": points - 1}
    series = bob.json(f"runs/{run_id}/metrics", key="m", points=100_000)
    assert sorted(p[0] for p in series["points"]) == list(range(points))
    logged_while_down = [p for p in series["points"] if went_down < p[4] < came_back]
    assert logged_while_down, "alice's kernel logged nothing while the database was down"

    # and the live feed of alice's server works again: bob's next cell reaches it
    bobs = track(kb, "after-restart")
    last = alice.json("events")["last"]
    kb.run("y = 2", cell_id="after")
    events_until(alice, last, lambda e: e["run_id"] == bobs and e["type"] == "cells", 20)
    kb.run("%mlp_track stop")
