"""A stage's cache key: hash(its template's code cells, resolved parameters with inputs by content
hash, kernel). The same key means the same computation, so an earlier run's outputs can stand in."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def code_of(snapshot: bytes) -> list[str]:
    """The code a stage runs: its template's code cells, without the parameters cells."""
    nb = json.loads(snapshot)
    code = []
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") != "code" or "parameters" in tags or "injected-parameters" in tags:
            continue
        source = cell.get("source", "")
        code.append("".join(source) if isinstance(source, list) else source)
    return code


def cache_key(code: list[str], params: dict[str, Any], kernel: str | None) -> str:
    """hash(code cells, resolved parameters with inputs by content, kernel)."""
    blob = json.dumps({"code": code, "params": params, "kernel": kernel}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
