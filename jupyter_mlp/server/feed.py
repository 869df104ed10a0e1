"""The live event feed: long-poll waiters woken when anybody (a kernel, a job, this server)
commits to the store. Kernels write the SQLite file directly, so the server watches
`PRAGMA data_version`, which changes on every commit made by another connection. A PostgreSQL
store is watched by a connection of its own that LISTENs to the notification every write
transaction sends at its commit (store/pg.py); a lost one is opened again."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from ..store import Store, events

POLL_S = 0.05
RECONNECT_S = 1.0  # a PostgreSQL listener that lost its server tries again after this


class EventFeed:
    def __init__(self, store: Store, executor: Executor | None = None) -> None:
        self.store = store
        self.executor = executor  # store reads run there, off the event loop
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._waiters = 0

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        return events.after(self.store.connect(), after, limit)

    def last_id(self) -> int:
        return events.last_id(self.store.connect())

    async def _read(self, after: int, limit: int) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.read, after, limit)

    async def wait(self, after: int, timeout: float, limit: int = 1000) -> list[dict[str, Any]]:
        """Events with id > after; waits up to `timeout` seconds for the first one (a timeout
        that is not a finite number waits not at all: it can never make a request hang)."""
        found = await self._read(after, limit)
        if found or not timeout > 0 or timeout == float("inf"):
            return found
        self._ensure_watcher()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiters += 1
        try:
            while True:
                self._changed.clear()
                found = await self._read(after, limit)
                remaining = deadline - loop.time()
                if found or remaining <= 0:
                    return found
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except asyncio.TimeoutError:
                    return await self._read(after, limit)
        finally:
            self._waiters -= 1

    def _ensure_watcher(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        if self.store.url is not None:
            await self._listen(self.store.url)
            return
        # A connection of its own that never writes: data_version moves on every other commit.
        from ..store import db

        conn = db.connect(self.store.path)
        try:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            while True:
                await asyncio.sleep(POLL_S)
                now = conn.execute("PRAGMA data_version").fetchone()[0]
                if now != version:
                    version = now
                    self._changed.set()
        finally:
            conn.close()

    async def _listen(self, url: str) -> None:
        from ..store import StoreUnavailable
        from ..store.pg import AsyncListener

        while True:
            try:
                async with AsyncListener(url) as changes:
                    self._changed.set()  # (re)connected: a commit may have come meanwhile
                    async for _ in changes:
                        self._changed.set()
            except StoreUnavailable:  # the server is down or restarting: readers get 503
                self._changed.set()
                await asyncio.sleep(RECONNECT_S)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
