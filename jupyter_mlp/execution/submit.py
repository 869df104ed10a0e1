"""From "rerun run X with lr=0.01" or "run this notebook file" to a validated JobRequest.

Everything that can be wrong with the input is found here, before anything is queued: a run
without a snapshot, a snapshot that is not a notebook, a kernel that is not installed, a parameter
that does not parse, is unknown, or does not fit the type the parent recorded.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .. import model
from ..model import JobRequest
from ..params import (
    Given,
    Known,
    ParamError,
    as_given,
    decode,
    encode_value,
    notebook_parameters,
    resolve,
    to_json,
)
from ..store import runs as run_store
from ..store.blobs import BlobNotFound, Blobs
from ..store.jobs import get_job
from ..store.templates import param_rows, template_run
from ..tracker.track_args import in_notebook
from .errors import JobError
from .papermill_options import KEY as PAPERMILL
from .papermill_options import check as check_papermill
from .papermill_options import merged

_KERNELS_TTL_S = 30.0
_kernels_lock = threading.Lock()
_kernels: tuple[float, dict[str, str]] | None = None


def installed_kernels(refresh: bool = False) -> dict[str, str]:
    """Kernel name -> resource dir, cached for a while (a submit must stay fast)."""
    global _kernels
    with _kernels_lock:
        now = time.monotonic()
        if refresh or _kernels is None or now - _kernels[0] > _KERNELS_TTL_S:
            from jupyter_client.kernelspec import KernelSpecManager

            _kernels = (now, dict(KernelSpecManager().find_kernel_specs()))
        return _kernels[1]


def _native_kernel() -> bool:
    """Whether jupyter_client finds `python3` without a look at the kernel folders: it adds the
    native kernel whenever ipykernel can be imported (KernelSpecManager.ensure_native_kernel),
    and listing the folders costs a submit ~0.2 s (jupyter_client's import, then the scan)."""
    from importlib.util import find_spec

    try:
        return find_spec("ipykernel") is not None
    except (ImportError, ValueError):
        return False


def check_kernel(name: str) -> str:
    """The name as given when jupyter_client (so papermill) finds it: `python` means the native
    `python3` (KernelManager's own rule) and names match whatever their case (KernelSpecManager)."""
    wanted = "python3" if name == "python" else name.lower()
    if wanted == "python3" and _native_kernel():
        return name
    for refresh in (False, True):
        if any(k.lower() == wanted for k in installed_kernels(refresh=refresh)):
            return name
    names = ", ".join(sorted(installed_kernels())) or "none"
    raise JobError(
        f"kernel {name!r} is not installed here (installed: {names}); pick one with --kernel"
    )


def read_notebook(data: bytes, what: str) -> dict[str, Any]:
    try:
        nb = json.loads(data)
    except ValueError as exc:
        raise JobError(f"{what} is not a notebook (not JSON: {exc})") from None
    if isinstance(nb, dict) and isinstance(nb.get("nbformat"), int) and nb["nbformat"] < 4:
        nb = _upgraded(nb, what)  # as papermill reads it (the snapshot keeps the bytes as given)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise JobError(f"{what} is not a notebook (no cells)")
    return nb


def _upgraded(nb: dict[str, Any], what: str) -> dict[str, Any]:
    """An nbformat 3 (or older) notebook as nbformat 4, converted as papermill's
    load_notebook_node converts it (nbformat.reads(as_version=4))."""
    import nbformat

    try:
        return json.loads(nbformat.writes(nbformat.reads(json.dumps(nb), as_version=4)))
    except Exception as exc:
        raise JobError(
            f"{what} is an nbformat {nb['nbformat']} notebook that cannot be upgraded: {exc}"
        ) from None


def notebook_language(nb: dict[str, Any], language: str | None = None) -> str | None:
    """papermill.utils.nb_language without the exception."""
    meta = nb.get("metadata") or {}
    found = language or (meta.get("language_info") or {}).get("name")
    return found or (meta.get("kernelspec") or {}).get("language") or None


def check_language(
    nb: dict[str, Any], kernel: str, options: dict[str, Any], inject: dict[str, Any]
) -> None:
    """papermill needs the notebook's language to write the injected cell: find out now, not
    when the queued job starts."""
    language = notebook_language(nb, options.get("language"))
    if not inject and not options.get("language"):
        return
    if not language:
        raise JobError(
            "the notebook names no language (metadata.language_info.name or "
            "metadata.kernelspec.language), which papermill needs to inject parameters; "
            "give one with --language (e.g. --language python)"
        )
    if language == "python":  # papermill always has this one (a kernel's own too): no need to
        return  # import papermill (~0.3 s of CPU) where pipeline stages start their kernels
    from papermill.exceptions import PapermillException  # type: ignore[import-untyped]
    from papermill.translators import papermill_translators  # type: ignore[import-untyped]

    try:
        papermill_translators.find_translator(kernel, language)
    except PapermillException as exc:
        raise JobError(f"cannot inject parameters into a {language!r} notebook: {exc}") from None


def check_cwd(cwd: str | None, executor: str) -> str | None:
    """A working directory made absolute now (relative: to the folder of whoever submits), not
    by whichever process later starts the job; for a local job it must exist."""
    if not cwd:
        return None
    path = Path(cwd).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    path = path.resolve()
    if executor == "local" and not path.is_dir():
        raise JobError(f"working directory {cwd!r} ({path}) does not exist")
    return str(path)


def notebook_kernel(nb: dict[str, Any]) -> str | None:
    spec = (nb.get("metadata") or {}).get("kernelspec") or {}
    name = spec.get("name")
    return name if isinstance(name, str) and name else None


def _new_values(
    given: dict[str, Given], known: dict[str, Known], allow_new: bool, type_check: bool = True
) -> dict[str, Any]:
    try:
        return resolve(given, known, allow_new, type_check)
    except ParamError as exc:
        raise JobError(str(exc)) from None


def _injectable(values: dict[str, Any]) -> dict[str, Any]:
    """What the job row keeps for papermill to inject: JSON, tuples and sets tagged."""
    return {k: to_json(v) for k, v in values.items()}


def _encoded(name: str, value: Any) -> tuple[str, str]:
    try:
        return encode_value(value, f"parameter {name!r}")
    except TypeError as exc:
        raise JobError(str(exc)) from None


def _gpu_count(gpu: Any) -> int:
    """How many GPUs the parent run saw (its tracker's GPU record)."""
    if isinstance(gpu, str):
        try:
            gpu = json.loads(gpu)
        except ValueError:
            return 0
    if isinstance(gpu, dict) and gpu.get("enabled"):
        return len(gpu.get("devices") or [])
    return 0


def prepare_rerun(
    conn: sqlite3.Connection,
    blobs: Blobs,
    ref: str,
    params: dict[str, Any] | None = None,
    *,
    executor: str = "local",
    gpus: int | None = None,
    allow_new: bool = False,
    kernel: str | None = None,
    name: str | None = None,
    cwd: str | None = None,
    options: dict[str, Any] | None = None,
    kind: str = model.JOB,
    pipeline_run_id: str | None = None,
    stage: str | None = None,
    type_check: bool = True,
    owner: str | None = None,
) -> JobRequest:
    """A rerun of run `ref` (an id or a unique prefix) with `params` overriding its parameters.
    gpus=None: as many as the parent saw. owner: who submits it (None: this process's user)."""
    run_id = run_store.resolve_id(conn, ref)
    parent = template_run(conn, run_id)
    assert parent is not None  # resolve_id found it
    if not parent["snapshot"]:
        raise JobError(
            f"run {run_id} has no notebook snapshot (it was not tracked from a saved notebook), "
            "so there is nothing to rerun"
        )
    try:
        data = blobs.read_bytes(parent["snapshot"])
    except BlobNotFound:
        raise JobError(f"the snapshot of run {run_id} is missing from the blob store") from None
    nb = read_notebook(data, f"the snapshot of run {run_id}")

    cell_params = notebook_parameters(nb)
    stored = param_rows(conn, run_id)
    known: dict[str, Known] = {
        r["key"]: Known(decode(r["value"], r["type"]), r["type"]) for r in stored
    }
    for key, k in cell_params.items():
        known.setdefault(key, k)
    new = _new_values(as_given(params), known, allow_new, type_check)

    # What papermill injects: the parent's values of the names the notebook takes as parameters
    # (its parameters cell, and what the parent job itself injected), then the new values.
    parent_job = get_job(conn, run_id)
    given_options = dict(options or {})
    given_cwd = check_cwd(cwd, executor)
    pm_options = merged(  # (--stdout-file out.txt --cwd wd: wd/out.txt, as papermill writes it)
        parent_job.options.get(PAPERMILL) if parent_job else None,
        check_papermill(given_options.pop(PAPERMILL, None), base=given_cwd),
    )
    if pm_options:
        given_options[PAPERMILL] = pm_options
    injectable = set(cell_params) | set(parent_job.params if parent_job else {})
    inject = {
        k: known[k].value for k in sorted(injectable) if k in known and known[k].type is not None
    }
    inject.update(new)

    rows: list[tuple[str, str, str, str]] = []
    for r in stored:
        if r["key"] not in new:
            rows.append((r["key"], r["value"], r["type"], r["source"]))
    for key, value in new.items():
        rows.append((key, *_encoded(key, value), "job"))

    # A rerun runs as its parent ran: the parent job's kernel and working directory unless
    # others are given (an interactive parent: the notebook's kernel, then the one it used).
    parent_kernel = parent_job.kernel if parent_job else None
    kernel = check_kernel(
        kernel or parent_kernel or notebook_kernel(nb) or parent["kernel"] or "python3"
    )
    # an inherited folder that is gone by now is the job's to note (it runs in a temp folder)
    cwd = given_cwd or (parent_job.cwd if parent_job else None)
    check_language(nb, kernel, pm_options, inject)
    tags = json.loads(parent["tags"]) if parent["tags"] else []
    return JobRequest(
        executor=executor, kernel=kernel, snapshot=parent["snapshot"], notebook=parent["notebook"],
        params=_injectable(inject), param_rows=rows, project=parent["project"],
        name=name or parent["name"],
        parent_id=run_id, kind=kind, pipeline_run_id=pipeline_run_id, stage=stage,
        gpus=_gpu_count(parent["gpu"]) if gpus is None else _check_gpus(gpus), cwd=cwd,
        options=given_options, tags=tags, owner=owner,
    )  # fmt: skip


def prepare_notebook(
    blobs: Blobs,
    path: str | os.PathLike,
    params: dict[str, Any] | None = None,
    *,
    project: str | None = None,
    name: str | None = None,
    executor: str = "local",
    gpus: int | None = None,
    allow_new: bool = False,
    kernel: str | None = None,
    cwd: str | None = None,
    options: dict[str, Any] | None = None,
    kind: str = model.JOB,
    pipeline_run_id: str | None = None,
    stage: str | None = None,
    type_check: bool = True,
    owner: str | None = None,
) -> JobRequest:
    """A job from a notebook file: its bytes now become the snapshot (later edits do not count).
    owner: who submits it (None: this process's user)."""
    source = Path(path).expanduser()
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise JobError(f"cannot read notebook {str(path)!r}: {exc.strerror or exc}") from None
    nb = read_notebook(data, f"{str(path)!r}")
    # Nothing new: papermill leaves an injected-parameters cell alone, so its values are the
    # run's. Something new: papermill replaces that cell, so the parameters cell's are.
    cell_params = notebook_parameters(nb, injected=not params)
    new = _new_values(as_given(params), cell_params, allow_new, type_check)
    kernel = check_kernel(kernel or notebook_kernel(nb) or "python3")
    options = dict(options or {})
    cwd = check_cwd(cwd, executor)
    if options.get(PAPERMILL) is not None:  # (relative files: to --cwd, as papermill's)
        options[PAPERMILL] = check_papermill(options[PAPERMILL], base=cwd)
    check_language(nb, kernel, options.get(PAPERMILL) or {}, new)
    rows: list[tuple[str, str, str, str]] = []
    for key, k in cell_params.items():
        if key not in new and k.type is not None:
            rows.append((key, *_encoded(key, k.value), "parameters"))
    for key, value in new.items():
        rows.append((key, *_encoded(key, value), "job"))
    snapshot = blobs.put_bytes(data)
    # what the notebook's own `%mlp_track NAME --project P` says, where the caller says nothing
    tracked = in_notebook(nb) if project is None or name is None else None
    return JobRequest(
        executor=executor, kernel=kernel, snapshot=snapshot, notebook=str(source.resolve()),
        params=_injectable(new), param_rows=rows,
        project=project or (tracked and tracked.project) or model.DEFAULT_PROJECT,
        name=name or (tracked and tracked.name) or source.stem, gpus=_check_gpus(gpus or 0),
        cwd=cwd, options=options, kind=kind, pipeline_run_id=pipeline_run_id, stage=stage, owner=owner,
    )  # fmt: skip


def _check_gpus(gpus: Any) -> int:
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise JobError(f"gpus must be a whole number >= 0, got {gpus!r}")
    return gpus
