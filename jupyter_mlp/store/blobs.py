"""Content-addressed files: `<home>/blobs/sha256/ab/<hash>`, written to a temp name then renamed."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..model import BLOB_HASH_RE

CHUNK = 1 << 20


class BlobNotFound(KeyError):
    pass


class Blobs:
    def __init__(self, root: Path) -> None:
        self.root = root / "sha256"

    def path(self, digest: str) -> Path:
        """The file of a blob; refuses anything that is not a hex sha256 (never a path from a user)."""
        if not BLOB_HASH_RE.match(digest or ""):
            raise BlobNotFound(digest)
        return self.root / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        try:
            return self.path(digest).is_file()
        except BlobNotFound:
            return False

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.exists():
            self._commit(target, lambda f: f.write(data))
        return digest

    def put_file(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        """Copy a file in while hashing it; returns (hash, size)."""
        self.root.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = h.hexdigest()
            target = self.path(digest)
            if target.exists():
                os.unlink(tmp)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return digest, size
        except BaseException:
            with _suppress():
                os.unlink(tmp)
            raise

    def read_bytes(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def copy_to(self, digest: str, dest: str | os.PathLike[str]) -> None:
        try:
            import shutil

            shutil.copyfile(self.path(digest), dest)
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def delete(self, digest: str) -> None:
        with _suppress():
            self.path(digest).unlink()

    def _commit(self, target: Path, write: Callable[[IO[bytes]], object]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, target)
        except BaseException:
            with _suppress():
                os.unlink(tmp)
            raise


def _suppress() -> contextlib.suppress:
    return contextlib.suppress(OSError, BlobNotFound)
