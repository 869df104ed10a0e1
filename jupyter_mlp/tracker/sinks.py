"""Where a run's records go. On the same machine: straight into the store (SQLite + blobs).
With MLP_TRACKING_URI and MLP_TRACKING_TOKEN: batches over HTTP to the server's ingest route,
spooled to a local file while the server cannot be reached and replayed in order; each batch
carries a sequence number, so a replay never doubles anything."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

METRICS_PER_REQUEST = 200_000


class Kept(RuntimeError):
    """The batch could not be sent now but is safe (spooled); the caller only warns."""

    kept = True


class StoreSink:
    def __init__(self, home: str | os.PathLike | None = None) -> None:
        # Imported here: the store pulls sqlite3, which `import jupyter_mlp` does not need.
        from ..store import Store

        self.store = Store(home)

    def describe(self) -> str:
        return str(self.store.home)

    def write(self, run_id: str, batch: dict[str, Any]) -> None:
        from ..store.records import apply_batch

        with self.store.write() as conn:
            apply_batch(conn, run_id, batch)

    def put_bytes(self, data: bytes) -> str:
        return self.store.blobs.put_bytes(data)

    def put_file(self, path: str | os.PathLike) -> tuple[str, int]:
        return self.store.blobs.put_file(path)


def default_spool_dir() -> Path:
    return Path(os.environ.get("MLP_SPOOL_DIR") or Path.home() / ".cache" / "jupyter-mlp" / "spool")


class HttpSink:
    def __init__(self, uri: str, token: str, spool_dir: str | os.PathLike | None = None) -> None:
        import requests

        self.uri = uri.rstrip("/")
        self.token = token
        self.run_id = token.split(".", 1)[0]
        folder = Path(spool_dir or default_spool_dir())
        self.spool_dir = folder
        self.spool = folder / f"{self.run_id}.jsonl"
        self.http = requests.Session()
        self.http.headers["X-MLP-Run-Token"] = token
        self.pending: deque[dict[str, Any]] = deque()
        # The writer thread and the start-up capture (snapshot, git diff) both send: one at a time.
        self._lock = threading.RLock()
        # Sequence numbers start at this moment (ms << 20), so that two writers of one run (the
        # job runner and a `%mlp_track` inside the notebook, or a restarted kernel) never reuse
        # each other's numbers: a batch is dropped only when it really is a replay.
        self.seq = (time.time_ns() // 1_000_000) << 20
        if self.spool.exists():  # an earlier process of this run left batches unsent
            for line in self.spool.read_text().splitlines():
                if line.strip():
                    item = json.loads(line)
                    self.pending.append(item)
                    self.seq = max(self.seq, item.get("seq", 0))

    def describe(self) -> str:
        return self.uri

    def write(self, run_id: str, batch: dict[str, Any]) -> None:
        with self._lock:
            for piece in _split(batch):
                self.seq += 1
                self._queue({"seq": self.seq, "batch": piece})
            self._replay()

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            (self.spool_dir / digest).write_bytes(data)
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
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with open(self.spool, "a") as f:
            f.write(json.dumps(item) + "\n")

    def _replay(self) -> None:
        import requests

        sent = 0
        try:
            while self.pending:
                item = self.pending[0]
                try:
                    if "blob" in item:
                        blob = self.spool_dir / item["blob"]
                        r = self.http.put(
                            f"{self.uri}/ingest/blobs/{item['blob']}",
                            data=blob.read_bytes(),
                            timeout=60,
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
                self.pending.popleft()
                sent += 1
                if "blob" in item:
                    (self.spool_dir / item["blob"]).unlink(missing_ok=True)
                if r.status_code >= 400:  # refused for good (bad token, bad batch): say so, go on
                    raise Kept(f"{self.uri} refused a batch: {r.status_code} {r.text[:200]}")
        finally:
            if sent:
                self._rewrite_spool()

    def _rewrite_spool(self) -> None:
        if not self.pending:
            self.spool.unlink(missing_ok=True)
            return
        tmp = self.spool.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text("".join(json.dumps(i) + "\n" for i in self.pending))
        os.replace(tmp, self.spool)


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


def make_sink(home: str | os.PathLike | None = None) -> StoreSink | HttpSink:
    uri = os.environ.get("MLP_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):
        token = os.environ.get("MLP_TRACKING_TOKEN", "")
        if not token:
            raise ValueError("MLP_TRACKING_URI is set but MLP_TRACKING_TOKEN is not")
        return HttpSink(uri, token)
    return StoreSink(home)
