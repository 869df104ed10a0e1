"""The server's tracking key: what lets the kernels it starts open runs of its user over HTTP.

When the store is shared, a kernel holds no store credentials: the server puts its own
`/mlp/api` address and this key into its environment (MLP_TRACKING_URI, MLP_TRACKING_KEY), and
a tracker that has the key and no run token opens its run with one request
(`POST /mlp/api/ingest/open`), receives that run's token and sends its batches with it as any
remote tracker does. The key opens new runs owned by this server's user; it never writes to a
run that exists (a run token does that, for its own run only).

The key is random, kept in a file only its user can read in the server's runtime folder and
reused when the server restarts (a kernel that outlives a restart keeps working); the server
compares a hash of what it is sent with the hash of the key."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

FILE_NAME = "jupyter-mlp-tracking-key"
KEY_MAX = 200


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "replace")).digest()


def _read_private(path: Path) -> str | None:
    """The key in `path` if the file is this user's own and nobody else may read it."""
    try:
        info = path.lstat()
        if not path.is_file() or path.is_symlink():
            return None
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        key = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return key if 32 <= len(key) <= KEY_MAX else None


def load_or_create(folder: str | os.PathLike[str]) -> str:
    """The key kept in `folder` (created 0600 when missing or not private)."""
    path = Path(folder) / FILE_NAME
    found = _read_private(path)
    if found is not None:
        return found
    Path(folder).mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key


class TrackingKey:
    """Only the key's hash is kept here; `matches` compares in constant time."""

    def __init__(self, key: str) -> None:
        self._digest = _digest(key)

    def matches(self, key: str | None) -> bool:
        if not isinstance(key, str) or not key or len(key) > KEY_MAX:
            return False
        return hmac.compare_digest(_digest(key), self._digest)
