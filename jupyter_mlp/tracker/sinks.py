"""Where a run's records go. On the same machine: straight into the store (SQLite + blobs).
A remote sink (HTTP to the server's ingest route) has the same three methods."""

from __future__ import annotations

import os
from typing import Any


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


def make_sink(home: str | os.PathLike | None = None) -> StoreSink:
    return StoreSink(home)
