"""GPU cards on this machine or worker: which there are, and handing them to jobs one at a time."""

from __future__ import annotations

import os
import threading
from typing import Any


def parse_gpus(value: Any) -> list[str]:
    if isinstance(value, str):
        return [g.strip() for g in value.split(",") if g.strip()]
    return [str(g) for g in value]


def detect_gpus() -> list[str]:
    """`$MLP_GPUS` (comma-separated ids, empty for none) or the GPUs NVML sees (by UUID)."""
    env = os.environ.get("MLP_GPUS")
    if env is not None:
        return parse_gpus(env)
    try:
        from ..tracker.gpu import probe

        found = probe()
    except Exception:
        return []
    if not found.ok:
        return []
    return [str(d.get("uuid") or d.get("index")) for d in found.devices]


class Cards:
    """The GPUs of this worker process, handed to its jobs so that two jobs running at once
    never share one. Dask's `GPU` resource only counts; this picks the cards. The cards are
    `$MLP_GPUS`, else the worker's `CUDA_VISIBLE_DEVICES`, else what NVML sees."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all: list[str] | None = None
        self._used: set[str] = set()

    def _cards(self) -> list[str]:
        if self._all is None:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if "MLP_GPUS" not in os.environ and visible:
                self._all = parse_gpus(visible)
            else:
                self._all = detect_gpus()
        return self._all

    def take(self, n: int) -> list[str] | None:
        """n free cards ([] for n = 0); None when this worker's cards are unknown or too few
        (the job then sees what the worker sees)."""
        if not n:
            return []
        with self._lock:
            free = [c for c in self._cards() if c not in self._used]
            if len(free) < n:
                return None
            self._used.update(free[:n])
            return free[:n]

    def give_back(self, cards: list[str] | None) -> None:
        with self._lock:
            self._used.difference_update(cards or ())


CARDS = Cards()
