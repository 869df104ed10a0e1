"""Content-addressed files: `<home>/blobs/sha256/ab/<hash>`, written to a temp name then renamed;
or the same layout on an fsspec filesystem (FsBlobs: a team's object store)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from ..model import BLOB_HASH_RE, sha256

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import IO

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
        digest = sha256(data).hexdigest()
        target = self.path(digest)
        if not target.exists():
            self._commit(target, lambda f: f.write(data))
        return digest

    def put_file(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        """Copy a file in while hashing it; returns (hash, size)."""
        self.root.mkdir(parents=True, exist_ok=True)
        h = sha256()
        size = 0
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            os.fchmod(fd, file_mode())
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
            os.fchmod(fd, file_mode())
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, target)
        except BaseException:
            with _suppress():
                os.unlink(tmp)
            raise


def file_mode() -> int:
    """The mode `open()` gives a new file (0o666 less the umask): a blob is as readable as any
    file its writer makes (a team's servers, run as several OS users of one group, read each
    other's), not mkstemp's 0o600. The umask is read from /proc (setting it to read it would
    race with other threads); 0o644 where that cannot be read."""
    global _MODE
    if _MODE is None:
        mode = 0o644
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("Umask:"):
                        mode = 0o666 & ~int(line.split()[1], 8)
                        break
        except (OSError, ValueError):
            pass
        _MODE = mode
    return _MODE


_MODE: int | None = None


def _suppress() -> contextlib.suppress:
    return contextlib.suppress(OSError, BlobNotFound)


class FsBlobs(Blobs):
    """The same content-addressed blobs (`<url>/sha256/ab/<hash>`) on any fsspec filesystem: a
    team's object store or shared folder (`Store(blob_url=...)`, env MLP_BLOB_URL), e.g.
    `s3://bucket/mlp`, `file:///shared/mlp`, `memory://mlp` in tests. A blob is written under a
    temporary name and moved into place (a reader never sees half of one). Reads that need a
    local file (`path`: a download, a stage's input artifact) go through a cache of verified
    copies under the home; fsspec is imported only here."""

    def __init__(self, url: str, cache: Path) -> None:
        import fsspec  # type: ignore[import-untyped]

        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.base = str(root).rstrip("/") + "/sha256"
        self.cache = Blobs(cache)
        super().__init__(cache)  # `root`: the local files of ours (the cache)

    def _key(self, digest: str) -> str:
        if not BLOB_HASH_RE.match(digest or ""):
            raise BlobNotFound(digest)
        return f"{self.base}/{digest[:2]}/{digest}"

    def exists(self, digest: str) -> bool:
        try:
            return bool(self.fs.exists(self._key(digest)))
        except BlobNotFound:
            return False

    def _place(self, tmp: str, target: str) -> None:
        if self.fs.exists(target):
            self.fs.rm_file(tmp)
        else:
            self.fs.mv(tmp, target)

    def _tmp(self, target: str) -> str:
        import uuid

        folder = target.rsplit("/", 1)[0]
        self.fs.makedirs(folder, exist_ok=True)
        return f"{folder}/.tmp-{uuid.uuid4().hex}"

    def put_bytes(self, data: bytes) -> str:
        digest = sha256(data).hexdigest()
        target = self._key(digest)
        if not self.fs.exists(target):
            tmp = self._tmp(target)
            self.fs.pipe_file(tmp, data)
            self._place(tmp, target)
        return digest

    def put_file(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        """Copy a file in while hashing it; returns (hash, size)."""
        h = sha256()
        size = 0
        tmp = self._tmp(f"{self.base}/tmp/x")
        try:
            with self.fs.open(tmp, "wb") as out, open(source, "rb") as src:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = h.hexdigest()
            target = self._key(digest)
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self._place(tmp, target)
            return digest, size
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise

    def read_bytes(self, digest: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self._key(digest))
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        return data

    def path(self, digest: str) -> Path:
        """A local file with the blob's content (a verified copy in the cache); the path of none
        (FileNotFoundError on open) when the blob is missing."""
        local = self.cache.path(digest)
        if not local.exists():
            try:
                data = self.read_bytes(digest)
            except BlobNotFound:
                return local
            if sha256(data).hexdigest() == digest:
                self.cache.put_bytes(data)
        return local

    def copy_to(self, digest: str, dest: str | os.PathLike[str]) -> None:
        import shutil

        source = self.path(digest)
        try:
            shutil.copyfile(source, dest)
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def delete(self, digest: str) -> None:
        with contextlib.suppress(OSError, BlobNotFound):
            self.fs.rm_file(self._key(digest))
        self.cache.delete(digest)
