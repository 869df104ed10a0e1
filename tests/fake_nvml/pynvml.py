"""A scripted stand-in for nvidia-ml-py (``import pynvml``), for tests.

Put ``tests/fake_nvml`` first on ``sys.path`` (or ``PYTHONPATH`` for a kernel started by
jupyter_client) and name a JSON script in the environment variable ``MLP_FAKE_NVML``. The script
is read again whenever the file changes (compared by inode, size and mtime), so a test changes
readings by rewriting it atomically (write a temp file, ``os.replace``) -- also while a real kernel
is sampling. Without ``MLP_FAKE_NVML`` the fake behaves as a machine without a driver.

Script format (every key optional)::

    {
      "init_error": null,            # or an error name: "LibraryNotFound", "DriverNotLoaded", ...
      "init_delay_s": 0,             # nvmlInit takes this long (a driver without persistence mode)
      "driver": "550.54.15",         # nvmlSystemGetDriverVersion()
      "cuda": 12040,                 # nvmlSystemGetCudaDriverVersion()  (12040 = CUDA 12.4)
      "devices": [                   # NVML (PCI) order
        {"uuid": "GPU-aaaaaaaa-0000-0000-0000-000000000000", "name": "Fake H100",
         "memory_total": 80e9,       # bytes
         "energy_counter": true,     # false: nvmlDeviceGetTotalEnergyConsumption -> NotSupported
         "mig": false,               # true: MIG mode enabled; list instances in "mig_devices"
         "mig_devices": [{"uuid": "MIG-1111...", "name": "Fake H100 MIG 1g.10gb",
                          "memory_total": 10e9, "gi": 1, "ci": 0}],
         "unsupported": ["temperature"]}   # readings that raise NotSupported: "utilization",
      ],                                   # "memory", "power", "temperature", "clock",
                                           # "energy", "compute", "graphics"
      "readings": {                  # what every query returns NOW; a number applies to all
        "util": 0,                   # devices, a list gives one value per device (NVML index)
        "mem_used": 1e9,             # bytes
        "power": 100.0,              # watts (nvmlDeviceGetPowerUsage returns milliwatts)
        "temp": 40, "sm_clock": 1410
      },
      "processes": [                 # nvmlDeviceGet{Compute,Graphics}RunningProcesses
        {"pid": 1234, "used_memory": 2e9, "gpu": 0, "type": "compute"}
      ],                             # gpu: NVML index; type: "compute" or "graphics"; "mig": slot
                                     # of the MIG instance it runs on (absent: the whole GPU);
                                     # used_memory null: NVML could not say
      "error": null,                 # an error name: every device query raises it while set
      "errors": [                    # call-indexed failures, counted per function in this
        {"function": "nvmlDeviceGetUtilizationRates",   # process (1 = first call)
         "from_call": 5, "count": null,                  # null: for ever after
         "error": "Unknown"}
      ]
    }

The energy counter (millijoules) starts at 1e9 mJ and grows by power x elapsed time, integrated
at each query with the power the previous query saw, so with constant power it is exact.
MIG instances report memory and processes; their utilization, power, temperature, clock and
energy raise NotSupported, as on real cards.

Deterministic pattern for "utilization 90 during this cell, 0 between cells": rewrite the script
with util 90 before executing the cell and back to 0 only after the cell's figures were stored
(the sample taken just after the cell's end counts towards the cell). For "call N onwards
raise" use "errors"; ``calls`` (a Counter of function name -> calls) shows how far a run got.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from types import SimpleNamespace
from typing import Any

# --- constants that callers use -----------------------------------------------------------------

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

# --- errors, shaped like nvidia-ml-py's ---------------------------------------------------------


class NVMLError(Exception):
    value: int
    _valClassMapping: dict[int, type] = {}
    _errcode_to_string = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

    def __new__(cls, value: int = NVML_ERROR_UNKNOWN) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, *args: Any) -> None:
        super().__init__()

    def __str__(self) -> str:
        return self._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")


def _error_class(name: str, value: int) -> type:
    def new(cls: type, *args: Any) -> NVMLError:
        return NVMLError.__new__(cls, value)

    cls = type(name, (NVMLError,), {"__new__": new})
    NVMLError._valClassMapping[value] = cls
    return cls


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _error_class("NVMLError_InvalidArgument", NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NVMLError_NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_NotFound = _error_class("NVMLError_NotFound", NVML_ERROR_NOT_FOUND)
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_Timeout = _error_class("NVMLError_Timeout", NVML_ERROR_TIMEOUT)
NVMLError_LibraryNotFound = _error_class("NVMLError_LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_FunctionNotFound = _error_class(
    "NVMLError_FunctionNotFound", NVML_ERROR_FUNCTION_NOT_FOUND
)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_Unknown = _error_class("NVMLError_Unknown", NVML_ERROR_UNKNOWN)


def _raise(name: str) -> None:
    cls = globals().get("NVMLError_" + name)
    if not (isinstance(cls, type) and issubclass(cls, NVMLError)):
        cls = NVMLError_Unknown
    raise cls()


# --- the script ---------------------------------------------------------------------------------

_lock = threading.RLock()
calls: collections.Counter[str] = collections.Counter()
_script: dict = {}
_script_key: tuple | None = None
_initialized = 0
_energy: dict[int, list[float]] = {}  # nvml index -> [time, millijoules, watts]


def _load() -> dict:
    """The script, read again when the file changed."""
    global _script, _script_key
    path = os.environ.get("MLP_FAKE_NVML")
    if not path:
        return {"init_error": "LibraryNotFound"}
    try:
        st = os.stat(path)
    except OSError:
        return {"init_error": "LibraryNotFound"}
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    if key != _script_key:
        with open(path) as f:
            _script = json.load(f)
        _script_key = key
    return _script


def _count(function: str, device: int | None = None) -> dict:
    """Count a call, apply scripted failures, and return the script."""
    with _lock:
        calls[function] += 1
        n = calls[function]
        script = _load()
        if function not in ("nvmlInit", "nvmlInitWithFlags", "nvmlShutdown") and not _initialized:
            raise NVMLError_Uninitialized()
        for rule in script.get("errors") or []:
            if rule.get("function") != function:
                continue
            start = rule.get("from_call", 1)
            count = rule.get("count")
            if n >= start and (count is None or n < start + count):
                _raise(rule.get("error", "Unknown"))
        if device is not None and script.get("error"):
            _raise(script["error"])
        return script


class _Handle:
    def __init__(self, index: int, mig: int | None = None) -> None:
        self.index = index  # NVML index of the physical GPU
        self.mig = mig  # slot of the MIG instance on it, or None

    def __repr__(self) -> str:
        return f"<fake nvmlDevice {self.index}{'' if self.mig is None else f'/mig{self.mig}'}>"


def _device(script: dict, h: _Handle) -> dict:
    devices = script.get("devices") or []
    if not isinstance(h, _Handle) or h.index >= len(devices):
        raise NVMLError_InvalidArgument()
    dev = devices[h.index]
    if h.mig is not None:
        migs = dev.get("mig_devices") or []
        if h.mig >= len(migs):
            raise NVMLError_NotFound()
        return migs[h.mig]
    return dev


def _supported(script: dict, h: _Handle, reading: str) -> None:
    dev = _device(script, h)
    if h.mig is not None and reading not in ("memory", "compute", "graphics"):
        raise NVMLError_NotSupported()
    if reading in (dev.get("unsupported") or []):
        raise NVMLError_NotSupported()
    if reading == "energy" and not dev.get("energy_counter", True):
        raise NVMLError_NotSupported()


def _reading(script: dict, h: _Handle, key: str, default: float) -> float:
    value = (script.get("readings") or {}).get(key, default)
    if isinstance(value, list):
        value = value[h.index] if h.index < len(value) else default
    return value


def _advance_energy(script: dict, h: _Handle) -> list[float]:
    now = time.time()
    watts = _reading(script, h, "power", 100.0)
    state = _energy.setdefault(h.index, [now, 1e9, watts])
    state[1] += state[2] * (now - state[0]) * 1000.0
    state[0], state[2] = now, watts
    return state


# --- the NVML functions the tracker uses --------------------------------------------------------


def nvmlInit() -> None:
    global _initialized
    script = _count("nvmlInit")
    if script.get("init_delay_s"):
        time.sleep(script["init_delay_s"])
    if script.get("init_error"):
        _raise(script["init_error"])
    with _lock:
        _initialized += 1


def nvmlInitWithFlags(flags: int) -> None:
    nvmlInit()


def nvmlShutdown() -> None:
    global _initialized
    _count("nvmlShutdown")
    with _lock:
        if not _initialized:
            raise NVMLError_Uninitialized()
        _initialized -= 1


def nvmlSystemGetDriverVersion() -> str:
    return str(_count("nvmlSystemGetDriverVersion").get("driver", "550.54.15"))


def nvmlSystemGetCudaDriverVersion() -> int:
    return int(_count("nvmlSystemGetCudaDriverVersion").get("cuda", 12040))


def nvmlDeviceGetCount() -> int:
    return len(_count("nvmlDeviceGetCount").get("devices") or [])


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    script = _count("nvmlDeviceGetHandleByIndex")
    if not 0 <= index < len(script.get("devices") or []):
        raise NVMLError_InvalidArgument()
    return _Handle(index)


def nvmlDeviceGetHandleByUUID(uuid: str | bytes) -> _Handle:
    script = _count("nvmlDeviceGetHandleByUUID")
    uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
    for i, dev in enumerate(script.get("devices") or []):
        if dev.get("uuid") == uuid:
            return _Handle(i)
        for j, mig in enumerate(dev.get("mig_devices") or []):
            if mig.get("uuid") == uuid:
                return _Handle(i, j)
    raise NVMLError_NotFound()


def nvmlDeviceGetUUID(h: _Handle) -> str:
    dev = _device(_count("nvmlDeviceGetUUID"), h)
    return dev.get("uuid") or f"GPU-fake-{h.index:04d}"


def nvmlDeviceGetName(h: _Handle) -> str:
    return _device(_count("nvmlDeviceGetName"), h).get("name", "Fake GPU")


def nvmlDeviceGetIndex(h: _Handle) -> int:
    _count("nvmlDeviceGetIndex")
    return h.index


def nvmlDeviceGetMigMode(h: _Handle) -> list[int]:
    script = _count("nvmlDeviceGetMigMode", h.index)
    dev = _device(script, h)
    if not dev.get("mig"):
        raise NVMLError_NotSupported()  # what non-MIG cards answer
    return [NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE]


def nvmlDeviceIsMigDeviceHandle(h: _Handle) -> bool:
    _count("nvmlDeviceIsMigDeviceHandle")
    return h.mig is not None


def nvmlDeviceGetMaxMigDeviceCount(h: _Handle) -> int:
    dev = _device(_count("nvmlDeviceGetMaxMigDeviceCount", h.index), h)
    return len(dev.get("mig_devices") or [])


def nvmlDeviceGetMigDeviceHandleByIndex(h: _Handle, index: int) -> _Handle:
    dev = _device(_count("nvmlDeviceGetMigDeviceHandleByIndex", h.index), h)
    if not 0 <= index < len(dev.get("mig_devices") or []):
        raise NVMLError_NotFound()
    return _Handle(h.index, index)


def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(h: _Handle) -> _Handle:
    _count("nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
    return _Handle(h.index)


def nvmlDeviceGetGpuInstanceId(h: _Handle) -> int:
    dev = _device(_count("nvmlDeviceGetGpuInstanceId", h.index), h)
    if h.mig is None:
        raise NVMLError_InvalidArgument()
    return int(dev.get("gi", h.mig + 1))


def nvmlDeviceGetComputeInstanceId(h: _Handle) -> int:
    dev = _device(_count("nvmlDeviceGetComputeInstanceId", h.index), h)
    if h.mig is None:
        raise NVMLError_InvalidArgument()
    return int(dev.get("ci", 0))


def nvmlDeviceGetMemoryInfo(h: _Handle, version: Any = None) -> SimpleNamespace:
    script = _count("nvmlDeviceGetMemoryInfo", h.index)
    _supported(script, h, "memory")
    total = int(_device(script, h).get("memory_total", 80e9))
    used = int(_reading(script, h, "mem_used", 0))
    if h.mig is not None:  # an instance reports what its own processes hold
        used = sum(int(p["used_memory"]) for p in _processes(script, h, None))
    return SimpleNamespace(total=total, used=used, free=max(total - used, 0))


def nvmlDeviceGetUtilizationRates(h: _Handle) -> SimpleNamespace:
    script = _count("nvmlDeviceGetUtilizationRates", h.index)
    _supported(script, h, "utilization")
    return SimpleNamespace(gpu=int(_reading(script, h, "util", 0)), memory=0)


def nvmlDeviceGetPowerUsage(h: _Handle) -> int:
    script = _count("nvmlDeviceGetPowerUsage", h.index)
    _supported(script, h, "power")
    with _lock:
        _advance_energy(script, h)
    return int(round(_reading(script, h, "power", 100.0) * 1000))


def nvmlDeviceGetTotalEnergyConsumption(h: _Handle) -> int:
    script = _count("nvmlDeviceGetTotalEnergyConsumption", h.index)
    _supported(script, h, "energy")
    with _lock:
        return int(_advance_energy(script, h)[1])


def nvmlDeviceGetTemperature(h: _Handle, sensor: int) -> int:
    script = _count("nvmlDeviceGetTemperature", h.index)
    _supported(script, h, "temperature")
    return int(_reading(script, h, "temp", 40))


def nvmlDeviceGetClockInfo(h: _Handle, clock_type: int) -> int:
    script = _count("nvmlDeviceGetClockInfo", h.index)
    _supported(script, h, "clock")
    return int(_reading(script, h, "sm_clock", 1410))


def _processes(script: dict, h: _Handle, kind: str | None) -> list[dict]:
    out = []
    for p in script.get("processes") or []:
        if int(p.get("gpu", 0)) != h.index or p.get("mig") != h.mig:
            continue
        if kind is not None and p.get("type", "compute") != kind:
            continue
        out.append(p)
    return out


def _process_infos(script: dict, h: _Handle, kind: str) -> list[SimpleNamespace]:
    _supported(script, h, kind)
    return [
        SimpleNamespace(
            pid=int(p["pid"]),
            usedGpuMemory=None if p.get("used_memory") is None else int(p["used_memory"]),
            gpuInstanceId=0xFFFFFFFF,
            computeInstanceId=0xFFFFFFFF,
        )
        for p in _processes(script, h, kind)
    ]


def nvmlDeviceGetComputeRunningProcesses(h: _Handle) -> list[SimpleNamespace]:
    return _process_infos(_count("nvmlDeviceGetComputeRunningProcesses", h.index), h, "compute")


def nvmlDeviceGetGraphicsRunningProcesses(h: _Handle) -> list[SimpleNamespace]:
    return _process_infos(_count("nvmlDeviceGetGraphicsRunningProcesses", h.index), h, "graphics")


def _reset() -> None:
    """Forget counters, energy and init state (tests call this between cases)."""
    global _initialized, _script_key
    with _lock:
        calls.clear()
        _energy.clear()
        _initialized = 0
        _script_key = None
