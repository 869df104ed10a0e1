"""Team mode (issue 16) through the real Jupyter server: owners, who may change what, /me, and
kernels that track through their server with its tracking key (also across an outage).

Two (three) people share one server here: a test identity provider names the user from a header,
as JupyterHub's names the user from its login; carol is the team's admin."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat

import pytest
import tornado.httpclient
from jupyter_server.auth import IdentityProvider, User
from test_server import poll

from jupyter_mlp.store.db import os_user
from jupyter_mlp.store.records import apply_batch, metric_series

OWNER_HEADER = "X-Test-User"


class HeaderIdentity(IdentityProvider):
    """The user the `X-Test-User` header names (a stand-in for the Hub's login); requests
    without it log in with the server's token, as usual."""

    def get_user(self, handler):  # type: ignore[override]
        name = handler.request.headers.get(OWNER_HEADER)
        if name:
            handler._token_authenticated = True  # an API login, as a Hub token is: no XSRF
            return User(username=name)
        return super().get_user(handler)


TEAM = {"team_admins": ["carol"], "kernels_through_server": True}


@pytest.fixture
def server_settings(request) -> dict:
    """MlpApp settings (a test parametrizes this indirectly; `identity: "token"` keeps
    jupyter_server's own token login: a plain single-user server)."""
    return dict(getattr(request, "param", TEAM))


@pytest.fixture
def jp_server_config(mlp_home, server_settings, request):
    """The team's server by default: header identities, carol the admin, kernels tracking
    through it. `store_url: "postgresql"`: a new database on the test PostgreSQL server."""
    mlp = dict(server_settings)
    if mlp.get("store_url") == "postgresql":
        mlp["store_url"] = request.getfixturevalue("pg_url")
    server: dict = {"jpserver_extensions": {"jupyter_mlp": True}}
    if mlp.pop("identity", "header") == "header":
        server["identity_provider_class"] = HeaderIdentity
    return {"ServerApp": server, "MlpApp": mlp}


@pytest.fixture
def hub_user(monkeypatch):
    """The server runs for alice under JupyterHub: what its kernels track is hers."""
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    return "alice"


async def api(jp_fetch, *path, user="alice", method="GET", body=None, headers=None, **params):
    kw = {"method": method, "params": params, "headers": {OWNER_HEADER: user, **(headers or {})}}
    if body is not None:
        kw["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
    elif method in ("POST", "PUT", "PATCH"):
        kw["body"] = "{}"
    response = await jp_fetch("mlp", "api", *path, **kw)
    return json.loads(response.body) if response.body else None


async def refusal(coro) -> dict:
    try:
        await coro
    except tornado.httpclient.HTTPClientError as exc:
        body = exc.response.body if exc.response is not None else b""
        return {"code": exc.code, "body": json.loads(body) if body else None}
    raise AssertionError("the request was accepted")


def seed(store, run_id, owner, **run):
    with store.write() as conn:
        apply_batch(conn, run_id, {"run": {"name": run_id, "status": "finished",
                                           "project": "team", "owner": owner, **run}})  # fmt: skip


TINY = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {"id": "p", "cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1",
         "outputs": [], "execution_count": None},
        {"id": "w", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import os\nimport jupyter_mlp as mlp\nmlp.log_metric('score', x * 10)\n"
                   "mlp.output('uri', os.environ.get('MLP_TRACKING_URI'))\n"
                   "mlp.output('token_run', os.environ.get('MLP_TRACKING_TOKEN', '').split('.')[0])\n"
                   "mlp.output('key', 'MLP_TRACKING_KEY' in os.environ)"},
    ],
}  # fmt: skip

ALICE_ONLY = "belongs to alice; only alice and the team's admins (carol) may"


# --- who is asking --------------------------------------------------------------------------------


async def test_me_names_the_user_and_whether_they_may_change_everyones(jp_fetch, mlp_home):
    store_address = "sqlite:///" + (mlp_home / "mlp.sqlite").resolve().as_posix()
    alice = await api(jp_fetch, "me", user="alice")
    assert alice == {"name": "alice", "admin": False, "team": True, "store": store_address}
    assert (await api(jp_fetch, "me", user="carol"))["admin"] is True


@pytest.mark.parametrize("server_settings", [{"identity": "token"}], indirect=True)
async def test_a_plain_single_user_server_is_single_seat_as_before(jp_fetch, jp_serverapp, store):
    """The token login's anonymous name is never an owner: the server's OS user is, and outside
    team mode that user may change everything (a run someone else recorded included); the
    kernels it starts still open the store themselves."""
    response = await jp_fetch("mlp", "api", "me")
    me = json.loads(response.body)
    assert me["name"] == os_user() and me["admin"] is True and me["team"] is False
    assert jp_serverapp.identity_provider.token  # a token login, whose user has a random name
    created = json.loads(
        (await jp_fetch("mlp", "api", "runs", method="POST", body="{}")).body
    )  # fmt: skip
    assert (await api(jp_fetch, "runs", created["id"]))["owner"] == os_user()
    seed(store, "0b0b00000001", "somebody-else")
    patched = await jp_fetch(
        "mlp", "api", "runs", "0b0b00000001", method="PATCH", body=json.dumps({"pinned": True})
    )
    assert json.loads(patched.body)["pinned"] is True
    assert "MLP_TRACKING_KEY" not in os.environ and "MLP_TRACKING_URI" not in os.environ
    key = await refusal(jp_fetch("mlp", "api", "ingest", "open", method="POST",
                                 body=json.dumps({"id": "0c0c00000001"}),
                                 headers={"X-MLP-Tracking-Key": "anything"}))  # fmt: skip
    assert key["code"] == 401 and "gives its kernels none" in key["body"]["message"]


# --- owners and permissions -----------------------------------------------------------------------


async def test_everyone_reads_everything_but_only_owner_and_admins_change_a_run(jp_fetch, store):
    created = await api(jp_fetch, "runs", user="alice", method="POST", body={"name": "hers"})
    run_id = created["id"]
    listed = await api(jp_fetch, "runs", user="bob", filter="owner = 'alice'")
    assert [(r["id"], r["owner"]) for r in listed["runs"]] == [(run_id, "alice")]
    assert (await api(jp_fetch, "runs", run_id, user="bob"))["owner"] == "alice"

    for method, path, body, verb in [
        ("PATCH", (run_id,), {"name": "mine now"}, "change"),
        ("PATCH", (run_id,), {"pinned": True}, "pin"),
        ("DELETE", (run_id,), None, "delete"),
        ("POST", (run_id, "cancel"), {}, "cancel"),
    ]:
        answer = await refusal(api(jp_fetch, "runs", *path, user="bob", method=method, body=body))
        assert answer["code"] == 403, (method, path, answer)
        assert answer["body"]["message"] == f"run {run_id} {ALICE_ONLY} {verb} it"
    run = await api(jp_fetch, "runs", run_id, user="bob")
    assert run["name"] == "hers" and run["pinned"] is False  # nothing of bob's went in

    assert (await api(jp_fetch, "runs", run_id, user="alice", method="PATCH",
                      body={"name": "renamed"}))["name"] == "renamed"  # fmt: skip
    assert (await api(jp_fetch, "runs", run_id, user="carol", method="PATCH",
                      body={"pinned": True}))["pinned"] is True  # fmt: skip
    # not a job: the owner's cancel gets past the check to the job's own answer
    assert (await refusal(api(jp_fetch, "runs", run_id, "cancel", method="POST")))["code"] == 400
    assert (await api(jp_fetch, "runs", run_id, user="carol", method="DELETE"))["deleted"] == run_id

    seed(store, "0d0d00000001", None)  # an old run with no owner recorded: admins only
    nobody = await refusal(api(jp_fetch, "runs", "0d0d00000001", user="bob", method="DELETE"))
    assert nobody["code"] == 403 and "has no recorded owner" in nobody["body"]["message"]


async def test_a_rerun_belongs_to_who_asked_and_its_kernel_tracks_with_a_token(jp_fetch, store):
    """Anyone may rerun anyone's run; the rerun is theirs (bob's cancel is refused). In team
    mode the job's kernel holds its run's token and the server's address, not the key."""
    snapshot = store.blobs.put_bytes(json.dumps(TINY).encode())
    seed(store, "0e0e00000001", "bob", snapshot=snapshot, kernel="python3")
    with store.write() as conn:
        apply_batch(conn, "0e0e00000001", {"params": [("x", "1", "int", "parameters")]})
    created = await api(jp_fetch, "runs", "0e0e00000001", "rerun", user="alice", method="POST",
                        body={"params": {"x": 4}})  # fmt: skip
    answer = await refusal(
        api(jp_fetch, "runs", created["id"], "cancel", user="bob", method="POST")
    )
    assert answer["code"] == 403 and ALICE_ONLY in answer["body"]["message"]
    child = await poll(
        lambda: api(jp_fetch, "runs", created["id"]),
        lambda r: r["status"] in ("finished", "failed"),
        what="the rerun",
    )
    assert child["status"] == "finished" and child["owner"] == "alice"
    assert child["parent_id"] == "0e0e00000001" and child["metrics"] == {"score": 40}
    outputs = {o["name"]: o["value"] for o in child["outputs"]}
    assert outputs["uri"] and outputs["uri"].endswith("/mlp/api")
    assert outputs["token_run"] == created["id"] and outputs["key"] is False
    assert (await api(jp_fetch, "runs", created["id"], "cancel", user="alice",
                      method="POST"))["state"] == "finished"  # fmt: skip


async def test_a_pipeline_run_its_stages_and_its_cancel_are_the_owners(
    jp_fetch, jp_root_dir, store
):
    (jp_root_dir / "tiny.ipynb").write_text(json.dumps(TINY))
    spec = {"format": "jupyter-mlp.pipeline", "version": 1, "name": "p", "parameters": {"x": 3},
            "stages": {"only": {"template": {"notebook": "tiny.ipynb"},
                                "parameters": {"x": "${pipeline.x}"}}}}  # fmt: skip
    (jp_root_dir / "p.mlpipe").write_text(json.dumps(spec))
    started = await api(jp_fetch, "pipelines", "runs", user="alice", method="POST",
                        body={"path": "p.mlpipe"})  # fmt: skip
    answer = await refusal(
        api(jp_fetch, "pipelines", "runs", started["id"], "cancel", user="bob", method="POST")
    )
    assert answer["code"] == 403
    assert answer["body"]["message"] == f"pipeline run {started['id']} {ALICE_ONLY} cancel it"
    run = await poll(
        lambda: api(jp_fetch, "pipelines", "runs", started["id"], user="bob"),
        lambda r: r["status"] in ("succeeded", "failed"),
        what="the pipeline",
    )
    assert run["status"] == "succeeded" and run["owner"] == "alice"
    listed = await api(jp_fetch, "pipelines", "runs", user="bob", path="p.mlpipe")
    assert [(r["id"], r["owner"]) for r in listed["runs"]] == [(started["id"], "alice")]
    stage_run = await api(jp_fetch, "runs", run["stages"]["only"]["run_id"], user="bob")
    assert stage_run["owner"] == "alice" and stage_run["kind"] == "stage"
    done = await api(jp_fetch, "pipelines", "runs", started["id"], "cancel", user="carol",
                     method="POST")  # fmt: skip
    assert done["status"] == "succeeded"  # an admin may; a finished pipeline stays as it ended


async def test_a_sweep_and_its_trials_are_the_owners(jp_fetch, store):
    pytest.importorskip("optuna")
    snapshot = store.blobs.put_bytes(json.dumps(TINY).encode())
    seed(store, "0f0f00000001", "bob", snapshot=snapshot, kernel="python3")
    with store.write() as conn:
        apply_batch(conn, "0f0f00000001", {"params": [("x", "1", "int", "parameters")]})
    created = await api(jp_fetch, "sweeps", user="alice", method="POST", body={
        "template": "0f0f00000001", "params": {"x": "1,2"}, "objective": "max:score",
        "sampler": "grid", "concurrency": 2,
    })  # fmt: skip
    answer = await refusal(
        api(jp_fetch, "sweeps", created["id"], "cancel", user="bob", method="POST")
    )
    assert answer["code"] == 403
    assert answer["body"]["message"] == f"sweep {created['id']} {ALICE_ONLY} cancel it"
    done = await poll(
        lambda: api(jp_fetch, "sweeps", created["id"], user="bob"),
        lambda s: s["status"] in ("finished", "failed", "cancelled"),
        what="the sweep",
    )
    assert done["status"] == "finished" and done["owner"] == "alice"
    assert [s["owner"] for s in (await api(jp_fetch, "sweeps", user="bob"))["sweeps"]] == ["alice"]
    trials = await api(jp_fetch, "runs", user="bob", filter=f"sweep = '{created['id']}'")
    assert sorted(r["owner"] for r in trials["runs"]) == ["alice", "alice"]
    assert (await api(jp_fetch, "sweeps", created["id"], "cancel", user="alice",
                      method="POST"))["status"] == "finished"  # fmt: skip


# --- kernels that track through their server --------------------------------------------------------


async def test_a_kernel_the_server_starts_tracks_through_it_as_the_servers_user(
    hub_user, jp_serverapp, jp_fetch, store
):
    assert os.environ["MLP_TRACKING_URI"] == jp_serverapp.connection_url.rstrip("/") + "/mlp/api"
    kernels = jp_serverapp.kernel_manager  # the server's own: it starts kernels as for a user
    kernel_id = await kernels.start_kernel(kernel_name="python3")
    try:
        client = kernels.get_kernel(kernel_id).client()
        reply = await run_cell(client, (
            "import os\n%load_ext jupyter_mlp\n%mlp_track through --project team\n"
            "import jupyter_mlp as mlp\n"
            "for i in range(50):\n    mlp.log_metric('loss', 1 / (i + 1))\n"
            "mlp.output('secrets', [k for k in ('MLP_STORE_URL', 'MLP_TRACKING_TOKEN') if k in os.environ])\n"
            "%mlp_track stop"
        ))  # fmt: skip
        assert reply["status"] == "ok", reply
    finally:
        await kernels.shutdown_kernel(kernel_id, now=True)
    found = await api(jp_fetch, "runs", user="bob", filter="name = 'through'")
    (run,) = found["runs"]
    assert run["owner"] == "alice" and run["project"] == "team" and run["status"] == "finished"
    assert run["kind"] == "interactive" and run["user"] == os_user()  # the kernel's OS user
    detail = await api(jp_fetch, "runs", run["id"], user="bob")
    assert detail["metrics"] == {"loss": 1 / 50}
    assert detail["outputs"][0]["value"] == []  # nothing but the key came with the kernel
    assert len(metric_series(store.connect(), run["id"], "loss")) == 50


async def run_cell(client, code: str) -> dict:
    """Run `code` in a kernel through an async client (the server's loop keeps serving the
    tracker meanwhile); the reply's content, with the cell's stderr as `stderr`."""
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        stderr: list[str] = []

        def output(msg: dict) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stderr":
                stderr.append(msg["content"]["text"])

        reply = await client.execute_interactive(code, timeout=120, output_hook=output)
        return {**reply["content"], "stderr": "".join(stderr)}
    finally:
        client.stop_channels()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _forwarder(listen: int, target: int) -> asyncio.AbstractServer:
    """A TCP proxy to the server: the kernel's way in, which the test opens late."""

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def serve(reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(serve, "127.0.0.1", listen)


async def test_a_kernel_tracking_while_its_server_is_down_opens_its_run_on_replay(
    hub_user, jp_serverapp, jp_fetch, jp_base_url, http_server_port, store, tmp_path
):
    from jupyter_client.manager import AsyncKernelManager

    port = _free_port()
    spool = tmp_path / "spool"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "JPY_"))}
    env.update(
        MLP_TRACKING_URI=f"http://127.0.0.1:{port}{jp_base_url.rstrip('/')}/mlp/api",
        MLP_TRACKING_KEY=os.environ["MLP_TRACKING_KEY"],
        MLP_SPOOL_DIR=str(spool), MLP_HOME=str(tmp_path / "unused"), MLP_HEARTBEAT_S="0.5",
    )  # fmt: skip
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel(env=env, cwd=str(tmp_path))
    try:
        first = await run_cell(km.client(), (
            "%load_ext jupyter_mlp\n%mlp_track offline --project team\n"
            "import jupyter_mlp as mlp\n"
            "for i in range(200):\n    mlp.log_metric('loss', 1 / (i + 1), step=i)\n"
            "mlp.output('answer', 42)"
        ))  # fmt: skip
        assert first["status"] == "ok" and "unreachable" in first["stderr"], first
        (spooled,) = spool.glob("*.jsonl")
        run_id = spooled.stem
        missing = await refusal(api(jp_fetch, "runs", run_id))
        assert missing["code"] == 404  # the server has not heard of it

        proxy = await _forwarder(port, http_server_port[-1])  # the server is back
        try:
            stop = await run_cell(km.client(), "%mlp_track stop")
            assert stop["status"] == "ok", stop
        finally:
            proxy.close()
    finally:
        await km.shutdown_kernel(now=True)
    run = await api(jp_fetch, "runs", run_id, user="bob")
    assert run["owner"] == "alice" and run["status"] == "finished" and run["name"] == "offline"
    assert run["project"] == "team" and run["outputs"][0]["value"] == 42
    series = metric_series(store.connect(), run_id, "loss")
    assert [step for step, _, _ in series] == list(range(200))
    assert not spooled.exists()


async def test_the_tracking_key_opens_new_runs_only_and_is_rate_limited(
    hub_user, jp_serverapp, jp_fetch, store
):
    key = os.environ["MLP_TRACKING_KEY"]
    app = jp_serverapp.web_app.settings["mlp"]

    async def open_run(body, headers):
        return await jp_fetch("mlp", "api", "ingest", "open", method="POST",
                              body=json.dumps(body), headers=headers)  # fmt: skip

    bobs = await api(jp_fetch, "runs", user="bob", method="POST", body={"name": "bob's"})
    taken = await refusal(open_run({"id": bobs["id"]}, {"X-MLP-Tracking-Key": key}))
    assert taken["code"] == 403 and "opens new runs only" in taken["body"]["message"]
    assert (await api(jp_fetch, "runs", bobs["id"]))["owner"] == "bob"

    opened = json.loads((await open_run({"id": "1a2b3c4d5e6f"}, {"X-MLP-Tracking-Key": key})).body)
    assert opened["id"] == "1a2b3c4d5e6f" and opened["token"].startswith("1a2b3c4d5e6f.")
    assert (await api(jp_fetch, "runs", "1a2b3c4d5e6f"))["owner"] == "alice"
    again = json.loads((await open_run({"id": "1a2b3c4d5e6f"}, {"X-MLP-Tracking-Key": key})).body)
    assert again["token"] != opened["token"]  # a retry whose answer was lost: a new token
    # the token it gives writes to its own run only; the key is no run token
    ingest = {"run_id": bobs["id"], "seq": 1, "batch": {"metrics": [["x", 0, 1.0, 1.0]]}}
    for headers in ({"X-MLP-Run-Token": opened["token"]}, {"X-MLP-Run-Token": key}):
        answer = await refusal(jp_fetch("mlp", "api", "ingest", method="POST",
                                        body=json.dumps(ingest), headers=headers))  # fmt: skip
        assert answer["code"] in (401, 403)
    assert metric_series(store.connect(), bobs["id"], "x") == []
    with store.write() as conn:  # once it has records, even its own key cannot open it again
        apply_batch(conn, "1a2b3c4d5e6f", {"run": {"status": "running", "started_at": 1.0}})
    assert (await refusal(open_run({"id": "1a2b3c4d5e6f"}, {"X-MLP-Tracking-Key": key})))[
        "code"
    ] == 403

    app.token_buckets.burst = 3.0
    app.token_buckets.rate = 0.0001
    codes = [
        (await refusal(open_run({"id": f"2b2b0000000{i}"}, {"X-MLP-Tracking-Key": "guess"})))[
            "code"
        ]
        for i in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]
    blocked = await refusal(open_run({"id": "2b2b00000009"}, {"X-MLP-Tracking-Key": key}))
    assert blocked["code"] == 429  # a client over its budget is not even looked at


def test_the_tracking_key_is_private_and_survives_a_restart(tmp_path):
    from jupyter_mlp.server.tracking_key import FILE_NAME, TrackingKey, load_or_create

    key = load_or_create(tmp_path)
    path = tmp_path / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create(tmp_path) == key  # the next server start: the same key
    assert TrackingKey(key).matches(key) and not TrackingKey(key).matches(key + "x")
    path.chmod(0o644)  # readable by others: not trusted, replaced
    assert load_or_create(tmp_path) != key and stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture
def shared_store_address(monkeypatch):
    """A store address given in the server's environment. No PostgreSQL here: the server opens
    the SQLite store instead, and what is checked is what it does with the address."""
    from jupyter_mlp.server import app
    from jupyter_mlp.store import Store

    url = "postgresql://mlp:s3cret@db.internal:5432/mlp"
    monkeypatch.setenv("MLP_STORE_URL", url)
    seen: list = []

    def opened(home=None, url=None, blob_url=None):
        seen.append(url)
        return Store(home)

    monkeypatch.setattr(app, "Store", opened)
    return url, seen


@pytest.mark.parametrize("server_settings", [{}], indirect=True)
async def test_a_shared_store_address_stays_in_the_server_alone(
    shared_store_address, jp_serverapp, jp_fetch
):
    url, seen = shared_store_address
    assert seen == [url] and "MLP_STORE_URL" not in os.environ  # kernels cannot inherit it
    me = await api(jp_fetch, "me", user="bob")
    assert me["team"] is True and me["admin"] is False  # a shared store is a team's
    assert "s3cret" not in me["store"] and me["store"].startswith("postgresql://mlp")
    assert "db.internal:5432/mlp" in me["store"]
    assert os.environ["MLP_TRACKING_KEY"] and os.environ["MLP_TRACKING_URI"].endswith("/mlp/api")


@pytest.mark.parametrize(
    "server_settings", [{"store_url": "postgresql", "team_admins": ["carol"]}], indirect=True
)
async def test_team_mode_on_a_postgresql_store(hub_user, jp_server_config, jp_serverapp, jp_fetch):
    """The same server on a shared PostgreSQL store: the address stays in the server, kernels
    track through it by default, a local job's process opens the store it is told and its
    kernel writes with its run's token, owners and admins as on SQLite."""
    from jupyter_mlp.store import Store

    url = jp_server_config["MlpApp"]["store_url"]
    assert jp_serverapp.web_app.settings["mlp"].store.url == url
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert "MLP_STORE_URL" not in os.environ and os.environ["MLP_TRACKING_KEY"]
    me = await api(jp_fetch, "me", user="bob")
    assert me["team"] is True and me["admin"] is False
    assert me["store"].startswith("postgresql://") and password not in me["store"]

    store = Store(jp_serverapp.web_app.settings["mlp"].store.home, url)
    snapshot = store.blobs.put_bytes(json.dumps(TINY).encode())
    seed(store, "4a4a00000001", "bob", snapshot=snapshot, kernel="python3")
    with store.write() as conn:
        apply_batch(conn, "4a4a00000001", {"params": [("x", "1", "int", "parameters")]})
    created = await api(jp_fetch, "runs", "4a4a00000001", "rerun", user="alice", method="POST",
                        body={"params": {"x": 2}})  # fmt: skip
    child = await poll(
        lambda: api(jp_fetch, "runs", created["id"]),
        lambda r: r["status"] in ("finished", "failed"),
        what="the rerun",
    )
    assert child["status"] == "finished" and child["owner"] == "alice", child
    outputs = {o["name"]: o["value"] for o in child["outputs"]}
    assert outputs["token_run"] == created["id"] and outputs["key"] is False
    assert child["metrics"] == {"score": 20}  # written by the job's kernel, over HTTP

    kernels = jp_serverapp.kernel_manager
    kernel_id = await kernels.start_kernel(kernel_name="python3")
    try:
        reply = await run_cell(kernels.get_kernel(kernel_id).client(), (
            "%load_ext jupyter_mlp\n%mlp_track on-pg --project team\n"
            "import os, jupyter_mlp as mlp\nmlp.log_metric('loss', 0.5)\n"
            "mlp.output('url', 'MLP_STORE_URL' in os.environ)\n%mlp_track stop"
        ))  # fmt: skip
        assert reply["status"] == "ok", reply
    finally:
        await kernels.shutdown_kernel(kernel_id, now=True)
    (run,) = (await api(jp_fetch, "runs", user="bob", filter="name = 'on-pg'"))["runs"]
    assert run["owner"] == "alice" and run["metrics"] == {"loss": 0.5}
    assert (await api(jp_fetch, "runs", run["id"]))["outputs"][0]["value"] is False

    bobs = await refusal(api(jp_fetch, "runs", run["id"], user="bob", method="DELETE"))
    assert bobs["code"] == 403 and ALICE_ONLY in bobs["body"]["message"]
    assert (await api(jp_fetch, "runs", run["id"], user="carol", method="DELETE"))["deleted"]
    store.close()


# --- the command line ----------------------------------------------------------------------------


def test_runs_list_by_owner(store, mlp_home, capsys):
    from jupyter_mlp.cli import main

    seed(store, "3a3a00000001", "alice")
    seed(store, "3a3a00000002", 'bo"b')
    seed(store, "3a3a00000003", os_user())

    def listed(*args: str) -> list[str]:
        capsys.readouterr()
        assert main(["--home", str(mlp_home), "runs", "list", "--format", "json", *args]) == 0
        return sorted(r["id"] for r in json.loads(capsys.readouterr().out))

    assert listed("--owner", "alice") == ["3a3a00000001"]
    assert listed("--owner", 'bo"b') == ["3a3a00000002"]
    assert listed("--owner", "me") == ["3a3a00000003"]
    assert listed("--owner", "alice", "--filter", "name ~ 0002") == []
    assert len(listed()) == 3
    # the table says who made each run once runs of several owners are listed
    capsys.readouterr()
    assert main(["--home", str(mlp_home), "runs", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["ID", "NAME", "OWNER"]
    assert any("3a3a00000001" in line and " alice " in line for line in table)
    assert main(["--home", str(mlp_home), "runs", "list", "--owner", "alice"]) == 0
    assert "OWNER" not in capsys.readouterr().out  # one owner on a file store: no column


def test_the_command_line_changes_only_its_users_runs_on_a_teams_store(
    store, mlp_home, capsys, monkeypatch
):
    """The CLI keeps the rule the server keeps: on a team's store (shared, or with admins named
    by $MLP_TEAM_ADMINS) a run, pipeline run or sweep is changed by its owner and the admins
    only; bob pinned alice's run from a terminal. On a single seat its user changes anything."""
    from jupyter_mlp.cli import main
    from jupyter_mlp.store import runs as run_store

    seed(store, "4b4b00000001", "alice")
    seed(store, "4b4b00000002", os_user())

    def pin(run_id: str) -> int:
        capsys.readouterr()
        return main(["--home", str(mlp_home), "runs", "pin", run_id])

    monkeypatch.setenv("MLP_TEAM_ADMINS", "carol")
    assert pin("4b4b00000001") == 1
    assert capsys.readouterr().err.strip() == (
        "jupyter mlp: run 4b4b00000001 belongs to alice; only alice and the team's admins "
        "(carol) may pin it"
    )
    assert main(["--home", str(mlp_home), "cancel", "4b4b00000001"]) == 1
    assert "belongs to alice; only alice and the team's admins (carol) may cancel it" in (
        capsys.readouterr().err
    )
    assert pin("4b4b00000002") == 0  # one's own
    monkeypatch.setenv("MLP_TEAM_ADMINS", f"carol,{os_user()}")
    assert pin("4b4b00000001") == 0  # an admin's
    monkeypatch.delenv("MLP_TEAM_ADMINS")
    assert main(["--home", str(mlp_home), "runs", "unpin", "4b4b00000001"]) == 0  # single seat
    assert not run_store.get_run(store.connect(), "4b4b00000001", with_cells=False)["pinned"]


# --- dispatch on a shared store ------------------------------------------------------------------


def test_on_a_shared_store_each_users_services_run_only_the_jobs_that_user_queued(
    pg_url, tmp_path, monkeypatch
):
    """Servers of several users on one PostgreSQL store: a job queued by alice's server (or her
    pipeline's driver, or her terminal) is started and watched by alice's services alone — bob's
    service on the same store leaves it queued, and alice's runs it (as her, reporting to her)."""
    from conftest import wait_for, write_notebook

    from jupyter_mlp.execution.service import JobService
    from jupyter_mlp.execution.submit import prepare_notebook
    from jupyter_mlp.store import Store
    from jupyter_mlp.store import jobs as jobs_store

    nb = write_notebook(tmp_path / "t.ipynb", [
        {"id": "p", "source": "x = 1", "tags": ["parameters"]},
        {"id": "w", "source": "import os\nprint(os.environ.get('JUPYTERHUB_USER'), x)"},
    ])  # fmt: skip
    homes = {u: tmp_path / u for u in ("alice", "bob")}
    services = {}

    def as_user(user: str) -> JobService:
        monkeypatch.setenv("JUPYTERHUB_USER", user)
        monkeypatch.setenv("MLP_HOME", str(homes[user]))
        store = Store(homes[user], url=pg_url)
        return JobService(store, concurrency=2, warm=False, poll_interval=0.05)

    try:
        services["bob"] = as_user("bob")
        services["bob"].start()
        alice = as_user("alice")
        request = prepare_notebook(alice.store.blobs, nb, {"x": 2})
        with alice.store.write() as conn:  # queued by a process of alice's (her driver, say)
            run_id = jobs_store.enqueue(conn, request)
        job = jobs_store.get_job(alice.store.connect(), run_id)
        assert job is not None and job.dispatcher == "alice"
        monkeypatch.setenv("JUPYTERHUB_USER", "bob")
        for _ in range(5):  # bob's service dispatches, round after round: never alice's job
            assert services["bob"].executor("local").dispatch() == []
        assert jobs_store.get_job(alice.store.connect(), run_id).state == "queued"
        monkeypatch.setenv("JUPYTERHUB_USER", "alice")
        services["alice"] = alice
        alice.start()
        wait_for(lambda: alice.status(run_id)["state"] in jobs_store.FINAL, 90, what="the job")
        assert alice.status(run_id)["state"] == "finished", alice.status(run_id)
    finally:
        for svc in services.values():
            svc.stop()
