"""The server extension through the real Jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import json
import re

import pytest
import tornado.httpclient

from jupyter_mlp.server.handlers import handlers
from jupyter_mlp.store.records import apply_batch


@pytest.fixture
def jp_server_config(mlp_home):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlp": True}}}


@pytest.fixture
def seeded(store):
    with store.write() as conn:
        apply_batch(conn, "abcd00000001", {
            "run": {"name": "<img src=x onerror=alert(1)>", "status": "finished", "project": "web"},
            "metrics": [("acc", 0, 0.9, 1.0)],
        })  # fmt: skip
    return store


async def get_json(jp_fetch, *path, **params):
    response = await jp_fetch("mlp", "api", *path, params=params)
    return json.loads(response.body)


async def test_runs_list_and_detail(jp_fetch, seeded):
    body = await get_json(jp_fetch, "runs", project="web")
    assert [r["name"] for r in body["runs"]] == ["<img src=x onerror=alert(1)>"]
    run = await get_json(jp_fetch, "runs", "abcd00000001")
    assert run["metrics"] == {"acc": 0.9} and run["cells"] == []


async def test_bad_filter_is_400_with_position(jp_fetch, seeded):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlp", "api", "runs", params={"filter": "metrics.acc >"})
    assert info.value.code == 400
    assert json.loads(info.value.response.body)["position"] == 13


@pytest.mark.parametrize("ref", ["..%2F..%2Fetc", "%2e%2e", "deadbeef0000", "zzzz"])
async def test_missing_or_path_like_run_is_404(jp_fetch, seeded, ref):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlp", "api", "runs", ref)
    assert info.value.code == 404


async def test_every_route_rejects_anonymous_requests(jp_serverapp, http_server_client, jp_base_url, seeded):
    """Like the extension template's CI check: no registered handler answers without a token."""
    for pattern, _handler in handlers():
        path = re.sub(r"\([^)]*\)", "abcd00000001", pattern)
        response = await http_server_client.fetch(
            jp_base_url.rstrip("/") + path, raise_error=False
        )
        assert response.code == 403, (pattern, response.code)
