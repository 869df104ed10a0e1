"""Where a run's records go. On the same machine: straight into the store (SQLite + blobs).
With MLP_TRACKING_URI and MLP_TRACKING_TOKEN: batches over HTTP to the server's ingest route,
spooled to a local file while the server cannot be reached and replayed in order; each batch
carries a sequence number, so a replay never doubles anything."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections import deque
from pathlib import Path

from ..model import sha256

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any

METRICS_PER_REQUEST = 200_000


class Kept(RuntimeError):
    """The batch could not be sent now but is safe (spooled); the caller only warns."""

    kept = True


SPOOL_MAX_BYTES_DEFAULT = 2 << 30  # what one run may keep on disk while its store is down


def spool_max_bytes() -> int:
    try:
        return int(os.environ.get("MLP_SPOOL_MAX_BYTES", SPOOL_MAX_BYTES_DEFAULT))
    except ValueError:
        return SPOOL_MAX_BYTES_DEFAULT


def read_spool(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The items of a spool file, in order, and a note for each line that could not be read (a
    torn last line after a crash, a full disk mid-write): those are skipped, the rest kept."""
    from ..records import RecordError, spool_line

    items: list[dict[str, Any]] = []
    notes: list[str] = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return items, notes
    except OSError as exc:
        return items, [f"could not read the spool {path} ({exc}); it is left as it is"]
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            items.append(spool_line(line, f"{path.name}:{number}"))
        except RecordError as exc:
            notes.append(f"skipped line {number} of {path} ({exc.message})")
    return items, notes


class _Lock:
    """An exclusive advisory lock on a spool, held while its process lives: a later process
    replays only spools nobody holds (their writer died before it could send them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no replay by other processes
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class StoreSink:
    """The store on this machine. When it cannot be written (full, read-only, corrupt, a newer
    schema) each batch, blob and artifact goes to a bounded spool on disk
    (`<spool dir>/store-<hash of home>/<run id>.jsonl` and blob files beside it) and is written
    when the store can take it: by this process's writer, or by the next process that opens the
    same store when this one died first."""

    late_writes = True  # a finished run's fields (its environment, git state) can still be added

    def __init__(self, home: str | os.PathLike | None = None, run_id: str | None = None) -> None:
        # Imported here: the store pulls sqlite3, which `import jupyter_mlp` does not need.
        from ..store import Store

        self.store = Store.shared(home)  # one connection for the process's runs and threads
        self.run_id = run_id
        self._lock = threading.RLock()
        self._items: deque[dict[str, Any]] = deque()  # spooled, in order (also in the file)
        self._memory_blobs: dict[str, Any] = {}  # digest -> bytes or a source path (spool full)
        self.spooled_bytes = 0
        self.dropped = 0  # records refused because the spool was full too
        self.notes: list[str] = []
        self.refused: list[Any] = []  # RecordErrors the store gave back (bad records)
        self._seq = 0

    # Where this run spools: named on first use (the folder's name hashes the home), so a run
    # the store takes at once never computes it.
    @functools.cached_property
    def spool_dir(self) -> Path:
        return default_spool_dir() / f"store-{_spool_folder(self.store.home)}"

    @functools.cached_property
    def spool(self) -> Path:
        return self.spool_dir / f"{self.run_id or 'run'}.jsonl"

    @functools.cached_property
    def _owner(self) -> _Lock:
        return _Lock(self.spool.with_suffix(".lock"))

    def describe(self) -> str:
        return self.store.where()

    @property
    def pending(self) -> bool:
        return bool(self._items)

    def pending_summary(self) -> str | None:
        """What is kept and where, for the message at exit (None: nothing is waiting)."""
        if not self._items:
            return None
        batches = sum(1 for i in self._items if "batch" in i)
        blobs = sum(1 for i in self._items if "blob" in i)
        head = (
            f"{batches} batches and {blobs} files could not be written to the store "
            f"{self.store.path}"
        )
        if not self.spool.exists():
            return (
                f"{head}; the spool {self.spool} could not be written either, so they are "
                "lost when this process exits"
            )
        return (
            f"{head}; they are kept in {self.spool} and are written the next time jupyter-mlp "
            "opens this store (a kernel, `jupyter mlp runs list`)"
        )

    def write(self, run_id: str, batch: dict[str, Any]) -> None:
        with self._lock:
            if self._items:
                self._queue({"seq": self._next_seq(), "batch": batch})
                self._replay()
                return
            try:
                self._apply(run_id, batch)
            except Exception as exc:
                if not _store_fault(exc):  # never retried forever: said, and the writer goes on
                    self.notes.append(f"a batch of run {run_id} could not be written: {exc!r}")
                    return
                self._queue({"seq": self._next_seq(), "batch": batch})
                raise Kept(self._kept_message(exc)) from None

    def flush(self) -> None:
        """Write what is spooled now (raises Kept while the store still cannot take it)."""
        with self._lock:
            self._replay()

    def _apply(self, run_id: str, batch: dict[str, Any]) -> None:
        from ..store.records import apply_batch

        with self.store.write() as conn:
            refused = apply_batch(conn, run_id, batch)
        if refused:
            self.refused.extend(refused)

    def _replay(self) -> None:
        sent = 0
        try:
            while self._items:
                item = self._items[0]
                try:
                    if "blob" in item:
                        self._put_spooled_blob(item)
                    else:
                        self._apply(self.run_id or "", item["batch"])
                except Exception as exc:
                    if not _store_fault(exc):  # this item is bad for good: say so, go on
                        self.notes.append(f"a spooled record could not be written: {exc}")
                    else:
                        raise Kept(self._kept_message(exc)) from None
                self._items.popleft()
                sent += 1
        finally:
            if sent:
                self._rewrite()

    def _kept_message(self, exc: BaseException) -> str:
        from ..store import StoreUnavailable

        where = str(self.spool) if self.spool.exists() else "memory"
        run = f"run {self.run_id}" if self.run_id else "the run"
        if isinstance(exc, StoreUnavailable):
            problem = f"cannot write {run}: {exc}"
        else:
            problem = f"cannot write {run} to the store {self.store.path}: {exc}"
        return (
            f"{problem}. Your notebook keeps working; records are kept in {where} and written "
            "when the store can take them"
        )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _queue(self, item: dict[str, Any]) -> None:
        """Keep an item in order: in the spool file when it can be written, else in memory."""
        line = json.dumps(item) + "\n"
        if self.spooled_bytes + len(line) > spool_max_bytes():
            self.dropped += batch_records(item.get("batch") or {})
            return
        self._items.append(item)
        self.spooled_bytes += len(line)
        try:
            if self._owner.fd is None:
                self._owner.acquire()
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            with open(self.spool, "a") as f:
                f.write(line)
        except OSError as exc:
            if not any("spool" in n for n in self.notes):
                self.notes.append(f"the spool {self.spool} could not be written either ({exc})")

    def _rewrite(self) -> None:
        try:
            if not self._items:
                self.spool.unlink(missing_ok=True)
                for digest in list(self._memory_blobs):
                    self._memory_blobs.pop(digest, None)
                self.spooled_bytes = 0
                return
            tmp = self.spool.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text("".join(json.dumps(i) + "\n" for i in self._items))
            os.replace(tmp, self.spool)
        except OSError:
            pass

    # --- blobs ------------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        with self._lock:
            try:
                if self._items:
                    raise Kept("spooling")
                return self.store.blobs.put_bytes(data)
            except Exception as exc:
                if not isinstance(exc, Kept) and not _store_fault(exc):
                    raise
                digest = sha256(data).hexdigest()
                self._spool_blob(digest, data=data)
                return digest

    def put_file(self, path: str | os.PathLike) -> tuple[str, int]:
        with self._lock:
            try:
                if self._items:
                    raise Kept("spooling")
                return self.store.blobs.put_file(path)
            except Exception as exc:
                if not isinstance(exc, Kept) and not _store_fault(exc):
                    raise
                digest, size = _hash_file(path)
                self._spool_blob(digest, source=str(path))
                return digest, size

    def _spool_blob(
        self, digest: str, data: bytes | None = None, source: str | None = None
    ) -> None:
        """A blob the store cannot take now: copied beside the spool, else remembered (bytes,
        or the path of the file to copy from) until the store can take it."""
        target = self._blob_path(digest)
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            if data is not None:
                target.write_bytes(data)
            else:
                import shutil

                shutil.copyfile(source, target)  # type: ignore[arg-type]
        except OSError:
            with contextlib.suppress(OSError):
                target.unlink()
            self._memory_blobs[digest] = data if data is not None else Path(source)  # type: ignore[arg-type]
        self._queue({"blob": digest})

    def _put_spooled_blob(self, item: dict[str, Any]) -> None:
        digest = item["blob"]
        spooled = self._blob_path(digest)
        kept = self._memory_blobs.get(digest)
        if spooled.exists():
            got, _ = self.store.blobs.put_file(spooled)
            spooled.unlink(missing_ok=True)
        elif isinstance(kept, bytes):
            got = self.store.blobs.put_bytes(kept)
        elif isinstance(kept, Path):
            got, _ = self.store.blobs.put_file(kept)
        else:
            raise LookupError(f"the spooled file {digest[:12]} is gone")
        self._memory_blobs.pop(digest, None)
        if got != digest:
            self.notes.append(f"{kept} changed before it could be stored (kept as {got[:12]})")

    def _blob_path(self, digest: str) -> Path:
        """A spooled file, per run: two runs spooling the same content never share one."""
        return self.spool_dir / f"{self.run_id or 'run'}-{digest}"

    def close(self) -> None:
        if "_owner" not in self.__dict__:  # this run never spooled: no lock was taken
            return
        self._owner.release()
        if not self._items:
            with contextlib.suppress(OSError):
                self.spool.with_suffix(".lock").unlink()


def replay_orphans(home: str | os.PathLike | None = None) -> list[str]:
    """Write into the store what dead processes spooled for it (a spool nobody holds); returns
    notes saying what was done. Cheap when there is nothing to do (one directory listing)."""
    sink = StoreSink(home)
    if not sink.spool_dir.is_dir():
        return []
    notes: list[str] = []
    for spool in sorted(sink.spool_dir.glob("*.jsonl")):
        run_id = spool.stem
        lock = _Lock(spool.with_suffix(".lock"))
        if not lock.acquire():
            continue  # its process is alive and sends it itself
        try:
            items, skipped = read_spool(spool)
            notes.extend(skipped)
            orphan = StoreSink(home, run_id)
            orphan._items.extend(items)
            try:
                orphan._replay()
            except Kept:
                break  # the store is still down: leave them all
            notes.append(f"wrote {len(items)} spooled items of run {run_id} into the store")
            spool.with_suffix(".lock").unlink(missing_ok=True)
        finally:
            lock.release()
    return notes


_SPOOL_FOLDERS: dict[str, str] = {}


def _spool_folder(home: Path) -> str:
    """The spool folder's name of a store: a hash of its resolved path (kept per process)."""
    key = str(home)
    found = _SPOOL_FOLDERS.get(key)
    if found is None:
        found = sha256(str(Path(home).resolve()).encode()).hexdigest()[:12]
        _SPOOL_FOLDERS[key] = found
    return found


def _store_fault(exc: BaseException) -> bool:
    """A fault of the store (full, read-only, unreachable file, corrupt, too new), not of a
    record: the record waits in the spool."""
    import sqlite3

    from ..store import StoreUnavailable
    from ..store.db import STORE_FAULTS

    return isinstance(exc, (OSError, *STORE_FAULTS, StoreUnavailable)) or (
        isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.IntegrityError)
    )


def _hash_file(path: str | os.PathLike) -> tuple[str, int]:
    h = sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def batch_records(batch: dict[str, Any]) -> int:
    return sum(
        len(v) for k, v in batch.items() if k in ("params", "metrics", "cells", "outputs", "gpu")
    ) + (1 if batch.get("run") else 0)


def default_spool_dir() -> Path:
    return Path(os.environ.get("MLP_SPOOL_DIR") or Path.home() / ".cache" / "jupyter-mlp" / "spool")


class HttpSink:
    """Batches to a server's ingest route with a run token. Given the server's tracking key
    instead (a kernel of a Jupyter server whose store is shared), the sink opens its run first:
    one request that creates the run `run_id` for the server's user and answers its token; until
    that open gets through (the server is down), everything spools, and the open goes first on
    replay."""

    def __init__(
        self, uri: str, token: str | None, spool_dir: str | os.PathLike | None = None, *,
        key: str | None = None, run_id: str | None = None,
    ) -> None:  # fmt: skip
        import requests

        self.uri = uri.rstrip("/")
        self.token = token or None
        self.key = None if self.token else key
        if self.token is None and (not self.key or not run_id):
            raise ValueError("an HTTP sink needs a run token, or a tracking key and a run id")
        self.run_id = self.token.split(".", 1)[0] if self.token else str(run_id)
        self._created_at: float | None = None  # the run's creation time, sent with the open
        folder = Path(spool_dir or default_spool_dir())
        self.spool_dir = folder
        self.spool = folder / f"{self.run_id}.jsonl"
        self.http = requests.Session()
        if self.token:
            self.http.headers["X-MLP-Run-Token"] = self.token
        self.pending: deque[dict[str, Any]] = deque()
        # The writer thread and the start-up capture (snapshot, git diff) both send: one at a time.
        self._lock = threading.RLock()
        # Sequence numbers start at this moment (ms << 20), so that two writers of one run (the
        # job runner and a `%mlp_track` inside the notebook, or a restarted kernel) never reuse
        # each other's numbers: a batch is dropped only when it really is a replay.
        self.seq = (time.time_ns() // 1_000_000) << 20
        self.notes: list[str] = []
        self.refused: list[str] = []
        self._memory: dict[str, bytes] = {}  # blobs the spool could not take
        self._spool_broken = False
        # an earlier process of this run left batches unsent: sent first, in order; a line torn
        # by a crash is skipped with a note and the rest delivered
        items, self.notes = read_spool(self.spool)
        for item in items:
            self.pending.append(item)
            self.seq = max(self.seq, item.get("seq", 0))

    def describe(self) -> str:
        return self.uri

    def pending_summary(self) -> str | None:
        if not self.pending:
            return None
        if self._spool_broken or not self.spool.exists():
            return (
                f"{len(self.pending)} batches could not be sent to {self.uri} and the spool "
                f"{self.spool} could not be written: they are lost when this process exits"
            )
        if self.token is None:  # never opened: no later tracker holds a token for this run
            return (
                f"{len(self.pending)} batches could not be sent to {self.uri} (run "
                f"{self.run_id} was never opened there); they are kept in {self.spool}"
            )
        return (
            f"{len(self.pending)} batches could not be sent to {self.uri}; they are kept in "
            f"{self.spool} and sent by the next tracker of run {self.run_id}"
        )

    def close(self) -> None:
        pass

    def _blob_path(self, digest: str) -> Path:
        """A spooled file, per run: two runs spooling the same content never share one."""
        return self.spool_dir / f"{self.run_id}-{digest}"

    def write(self, run_id: str, batch: dict[str, Any]) -> None:
        with self._lock:
            if self.key is not None:
                batch = self._opened_fields(batch)
            for piece in _split(batch):
                self.seq += 1
                self._queue({"seq": self.seq, "batch": piece})
            self._replay()

    def _opened_fields(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A run opened with the key is made by the server (interactive, owned by its user):
        the start batch's kind and creation time go with the open, not to the ingest route
        (which refuses them from a token)."""
        fields = batch.get("run")
        if not isinstance(fields, dict) or not ({"kind", "created_at"} & set(fields)):
            return batch
        fields = dict(fields)
        fields.pop("kind", None)
        created = fields.pop("created_at", None)
        if self._created_at is None and isinstance(created, (int, float)):
            self._created_at = float(created)
        return {**batch, "run": fields}

    def _open(self) -> None:
        """Open the run with the tracking key and keep its token (Kept while that cannot be
        done now: the batches stay spooled, in order)."""
        import requests

        body: dict[str, Any] = {"id": self.run_id}
        if self._created_at is not None:
            body["created_at"] = self._created_at
        try:
            r = self.http.post(
                f"{self.uri}/ingest/open", data=json.dumps(body), timeout=60,
                headers={"Content-Type": "application/json", "X-MLP-Tracking-Key": self.key or ""},
            )  # fmt: skip
        except (requests.RequestException, OSError) as exc:
            raise Kept(
                f"{self.uri} is unreachable ({type(exc).__name__}); spooling to {self.spool}"
            ) from None
        token = None
        if r.status_code in (200, 201):
            try:
                answer = r.json()
            except ValueError:
                answer = None
            token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token.startswith(self.run_id + "."):
            raise Kept(
                f"{self.uri} did not open run {self.run_id} ({r.status_code} {r.text[:200]}); "
                f"records are kept in {self.spool}"
            )
        self.token, self.key = token, None
        self.http.headers["X-MLP-Run-Token"] = token

    def put_bytes(self, data: bytes) -> str:
        digest = sha256(data).hexdigest()
        with self._lock:
            try:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
                self._blob_path(digest).write_bytes(data)
            except OSError as exc:  # the spool's disk is full too: held in memory meanwhile
                self._memory[digest] = data
                self._spool_failed(exc)
            self._queue({"blob": digest})
            try:
                self._replay()
            except Kept:
                pass  # uploaded with the next batch that gets through
        return digest

    def flush(self) -> None:
        """Send what is spooled now (raises Kept while the server cannot be reached)."""
        with self._lock:
            self._replay()

    def put_file(self, path: str | os.PathLike) -> tuple[str, int]:
        data = Path(path).read_bytes()
        return self.put_bytes(data), len(data)

    def _queue(self, item: dict[str, Any]) -> None:
        self.pending.append(item)
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            with open(self.spool, "a") as f:
                f.write(json.dumps(item) + "\n")
        except OSError as exc:
            self._spool_failed(exc)

    def _spool_failed(self, exc: OSError) -> None:
        if not self._spool_broken:
            self._spool_broken = True
            self.notes.append(
                f"the spool {self.spool} cannot be written ({exc}); unsent records are held in "
                "memory until the server takes them"
            )

    def _replay(self) -> None:
        import requests

        sent = 0
        if self.token is None and self.pending:
            self._open()
        try:
            while self.pending:
                item = self.pending[0]
                if "blob" in item:
                    try:
                        path = self._blob_path(item["blob"])
                        if not path.exists():  # spooled by an older version: by digest alone
                            path = self.spool_dir / item["blob"]
                        kept = self._memory.get(item["blob"])
                        data = kept if kept is not None else path.read_bytes()
                    except OSError as exc:
                        # gone (another run's sink with the same content sent it and removed
                        # it, or a crash): say so and go on, never stop the queue behind it
                        self.notes.append(f"spooled file {item['blob'][:12]} is unreadable ({exc})")
                        self.pending.popleft()
                        sent += 1
                        continue
                try:
                    if "blob" in item:
                        r = self.http.put(
                            f"{self.uri}/ingest/blobs/{item['blob']}", data=data, timeout=60
                        )
                    else:
                        body = json.dumps({"run_id": self.run_id, **item})
                        r = self.http.post(f"{self.uri}/ingest", data=body, timeout=60,
                                           headers={"Content-Type": "application/json"})  # fmt: skip
                except (requests.RequestException, OSError) as exc:
                    raise Kept(
                        f"{self.uri} is unreachable ({type(exc).__name__}); spooling to {self.spool}"
                    ) from None
                if r.status_code >= 500 or r.status_code in (408, 429):
                    raise Kept(f"{self.uri} answered {r.status_code}; spooling to {self.spool}")
                if r.status_code in (401, 403):
                    # the token does not work (now): nothing after it would either; all stays
                    # in the spool, which the next tracker of this run sends
                    raise Kept(
                        f"{self.uri} refused the run token ({r.status_code} {r.text[:200]}); "
                        f"records are kept in {self.spool}"
                    )
                self.pending.popleft()
                sent += 1
                if "blob" in item:
                    self._memory.pop(item["blob"], None)
                    with contextlib.suppress(OSError):
                        self._blob_path(item["blob"]).unlink(missing_ok=True)
                if r.status_code >= 400:  # this one refused for good (a bad batch): note, go on
                    self.refused.append(f"{r.status_code} {r.text[:200]}")
                    continue
                try:
                    answer = r.json()
                except ValueError:
                    answer = None
                if isinstance(answer, dict) and answer.get("refused"):
                    self.refused.extend(str(x) for x in answer["refused"][:20])
        finally:
            if sent:
                self._rewrite_spool()

    def _rewrite_spool(self) -> None:
        try:
            if not self.pending:
                self.spool.unlink(missing_ok=True)
                return
            tmp = self.spool.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text("".join(json.dumps(i) + "\n" for i in self.pending))
            os.replace(tmp, self.spool)
        except OSError as exc:
            self._spool_failed(exc)


def _split(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Keep each request under the server's size limit: long metric lists go in pieces."""
    metrics = batch.get("metrics") or []
    if len(metrics) <= METRICS_PER_REQUEST:
        return [batch]
    first = {**batch, "metrics": metrics[:METRICS_PER_REQUEST]}
    rest = [
        {"metrics": metrics[i : i + METRICS_PER_REQUEST]}
        for i in range(METRICS_PER_REQUEST, len(metrics), METRICS_PER_REQUEST)
    ]
    return [first, *rest]


def make_sink(
    home: str | os.PathLike | None = None, run_id: str | None = None
) -> StoreSink | HttpSink:
    """With MLP_TRACKING_URI: over HTTP with MLP_TRACKING_TOKEN (a run made for this tracker),
    else with MLP_TRACKING_KEY (a kernel of a Jupyter server whose store is shared: the sink
    opens `run_id` itself). Otherwise the store on this machine."""
    uri = os.environ.get("MLP_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):
        token = os.environ.get("MLP_TRACKING_TOKEN", "")
        if token:
            return HttpSink(uri, token)
        key = os.environ.get("MLP_TRACKING_KEY", "")
        if key and run_id:
            return HttpSink(uri, None, key=key, run_id=run_id)
        raise ValueError(
            "MLP_TRACKING_URI is set but neither MLP_TRACKING_TOKEN nor MLP_TRACKING_KEY is"
        )
    return StoreSink(home, run_id)
