"""Blobs on an fsspec filesystem (`Store(blob_url=...)`, env MLP_BLOB_URL): the same content
addresses and answers as the blobs folder under the home, which stays the default."""

from __future__ import annotations

import json
import uuid

import pytest

from jupyter_mlp.store import Store, StoreUnavailable
from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.blobs import BlobNotFound, Blobs, FsBlobs
from jupyter_mlp.store.records import apply_batch


@pytest.fixture(params=["memory", "file"])
def blob_url(request, tmp_path):
    if request.param == "memory":
        yield f"memory://mlp-{uuid.uuid4().hex}"
    else:
        yield (tmp_path / "shared-blobs").as_uri()


def test_the_default_stays_the_folder_under_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MLP_BLOB_URL", raising=False)
    store = Store(tmp_path)
    assert type(store.blobs) is Blobs and store.blob_url is None
    assert store.blobs.root == tmp_path / "blobs" / "sha256"


def test_blobs_on_a_filesystem_are_content_addressed_and_refuse_paths(blob_url, tmp_path):
    store = Store(tmp_path / "home", blob_url=blob_url)
    blobs = store.blobs
    assert isinstance(blobs, FsBlobs)
    digest = blobs.put_bytes(b"hello")
    assert blobs.put_bytes(b"hello") == digest and blobs.exists(digest)
    assert blobs.read_bytes(digest) == b"hello"
    source = tmp_path / "f.bin"
    source.write_bytes(b"hello" * 300_000)
    big, size = blobs.put_file(source)
    assert size == 1_500_000 and blobs.read_bytes(big) == source.read_bytes()
    assert blobs.put_file(tmp_path / "f.bin") == (big, size)  # once
    local = blobs.path(digest)  # a verified copy in the cache, for who needs a file
    assert local.read_bytes() == b"hello" and local.is_relative_to(tmp_path / "home")
    blobs.copy_to(big, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == source.read_bytes()
    for bad in ("../../etc/passwd", "0" * 63, "g" * 64, ""):
        with pytest.raises(BlobNotFound):
            blobs.read_bytes(bad)
        assert not blobs.exists(bad)
    missing = "0" * 64
    with pytest.raises(BlobNotFound):
        blobs.read_bytes(missing)
    with pytest.raises(FileNotFoundError):
        open(blobs.path(missing), "rb")
    blobs.delete(digest)
    assert not blobs.exists(digest) and not local.exists()
    assert not [p for p in blobs.fs.find(blobs.base) if "/.tmp-" in p]


def test_a_store_with_a_blob_url_keeps_its_runs_blobs_there(blob_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_BLOB_URL", blob_url)
    store = Store(tmp_path / "home")
    assert store.blob_url == blob_url
    other = Store(tmp_path / "elsewhere")  # another server of the team: the same blobs
    snapshot = store.blobs.put_bytes(json.dumps({"cells": []}).encode())
    artifact = store.blobs.put_bytes(b"model")
    with store.write() as conn:
        apply_batch(conn, "abcd00000001", {
            "run": {"name": "r", "snapshot": snapshot},
            "outputs": [("model", "artifact", "{}", artifact, 5, "m.pkl", 1.0)],
        })  # fmt: skip
    assert other.blobs.read_bytes(artifact) == b"model"
    assert not (tmp_path / "home" / "blobs").exists()  # nothing in the folder under the home
    removed = run_store.delete_run(store.connect(), "abcd00000001", store.blobs)
    assert sorted(removed) == sorted([snapshot, artifact])
    assert not other.blobs.exists(artifact)


def test_a_blob_url_that_cannot_be_opened_is_named_without_its_password(tmp_path):
    with pytest.raises(StoreUnavailable) as info:
        Store(tmp_path, blob_url="nosuchfs://user:s3cret@bucket/mlp")
    message = str(info.value)
    assert "nosuchfs://user:***@bucket/mlp" in message and "s3cret" not in message
    assert "MLP_BLOB_URL" in message
