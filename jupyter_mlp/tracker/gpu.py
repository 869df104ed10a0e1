"""GPU sampling through NVML (nvidia-ml-py, import name ``pynvml``), kernel side.

``probe()`` finds the GPUs this kernel can see, once per process. ``GpuSampler`` reads them in a
daemon thread every ``interval`` seconds and again right away whenever the kernel pokes it at cell
start and end, so that short cells get figures too. Sampling never pauses while cells run.

``pynvml`` is imported inside functions only: importing it costs kernel start-up time, and a
kernel without a GPU should never pay for it.
"""

from __future__ import annotations

import bisect
import collections
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# How long samples stay in memory for cell figures; older cells get what is left.
_WINDOW_S = 600.0
# Samples waiting for drain(); beyond this the oldest are dropped (with a note).
_PENDING_MAX = 100_000
# Shortest gap between two samples, so that a burst of pokes (Run All over tiny cells)
# cannot turn the sampler into a busy loop.
_MIN_GAP_S = 0.02
# Consecutive failed reads of one GPU after which that GPU is no longer sampled.
_MAX_FAILURES = 3
# nvmlDeviceGetTotalEnergyConsumption costs ~3.4 ms of CPU per call (H200, driver 580; every
# other reading costs 2-8 us) and the counter moves in 100 ms steps. So it is read at cell
# boundaries, at most every _ENERGY_GAP_S, and otherwise every _ENERGY_EVERY_S.
_ENERGY_GAP_S = 0.1
_ENERGY_EVERY_S = 5.0
# How long a "this pid is / is not in the kernel's process tree" verdict is trusted.
_PID_VERDICT_TTL_S = 60.0

# Sample tuple layout, as drain() yields it and store.gpu.insert_samples() takes it.
GPU, TIME, UTIL, MEM, PROC_MEM, POWER, TEMP, SM_CLOCK, ENERGY = range(9)


@dataclass
class GpuProbe:
    """What trying NVML once found: the visible GPUs, or why there are none."""

    ok: bool
    reason: str | None
    devices: list[dict] = field(default_factory=list)
    driver_version: str | None = None
    cuda_version: str | None = None


_probe_lock = threading.Lock()
_probe_cache: tuple[int, GpuProbe] | None = None  # (pid, probe): a forked child probes again
_handles: dict[str, Any] = {}  # uuid -> NVML handle of the probed devices


def probe() -> GpuProbe:
    """Try NVML once per process and cache the answer; never raises."""
    global _probe_cache
    with _probe_lock:
        pid = os.getpid()
        if _probe_cache is None or _probe_cache[0] != pid:
            try:
                result = _probe_uncached()
            except Exception as e:  # a bug or an exotic binding must not break the kernel
                result = GpuProbe(False, f"GPU probe failed: {type(e).__name__}: {e}")
            _probe_cache = (pid, result)
        return _probe_cache[1]


def probed() -> bool:
    """Whether probe() answers from its cache in this process (no NVML call)."""
    cached = _probe_cache
    return cached is not None and cached[0] == os.getpid()


def _reset_probe_cache() -> None:
    """Forget the cached probe (tests switch fake NVML scripts between cases)."""
    global _probe_cache
    with _probe_lock:
        _probe_cache = None
        _handles.clear()


def _probe_uncached() -> GpuProbe:
    try:
        import pynvml
    except ImportError:
        return GpuProbe(False, "nvidia-ml-py (pynvml) is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        return GpuProbe(False, _init_failure_reason(pynvml, e))
    except OSError as e:
        return GpuProbe(False, f"NVML could not be loaded: {e}")

    driver = _optional(lambda: _text(pynvml.nvmlSystemGetDriverVersion()), pynvml)
    cuda = _optional(lambda: _cuda_version(pynvml.nvmlSystemGetCudaDriverVersion()), pynvml)
    try:
        count = pynvml.nvmlDeviceGetCount()
        physical = [_physical_device(pynvml, i) for i in range(count)]
        spec = os.environ.get("CUDA_VISIBLE_DEVICES")
        selected = _select_visible(pynvml, physical, spec)
        devices = []
        for visible_index, (handle, dev) in enumerate(selected):
            dev = dict(dev, index=visible_index)
            dev["energy_counter"] = _has_energy_counter(pynvml, handle)
            devices.append(dev)
            _handles[dev["uuid"]] = handle
    except pynvml.NVMLError as e:
        _shutdown(pynvml)
        return GpuProbe(False, f"NVML error while listing GPUs: {e}", [], driver, cuda)

    if not devices:
        _shutdown(pynvml)
        if count == 0:
            reason = "NVML found no NVIDIA GPU"
        else:
            reason = "CUDA_VISIBLE_DEVICES hides every GPU"
        return GpuProbe(False, reason, [], driver, cuda)
    return GpuProbe(True, None, devices, driver, cuda)


def _init_failure_reason(pynvml: Any, e: Exception) -> str:
    def is_a(name: str) -> bool:
        cls = getattr(pynvml, name, None)
        return isinstance(cls, type) and isinstance(e, cls)

    if is_a("NVMLError_LibraryNotFound"):
        return "no NVIDIA driver (NVML library not found)"
    if is_a("NVMLError_DriverNotLoaded"):
        return "NVIDIA driver not loaded"
    if is_a("NVMLError_NoPermission"):
        return "no permission to use NVML"
    return f"NVML could not start: {e} ({type(e).__name__})"


def _physical_device(pynvml: Any, nvml_index: int) -> tuple[Any, dict]:
    h = pynvml.nvmlDeviceGetHandleByIndex(nvml_index)
    mig = _optional(
        lambda: pynvml.nvmlDeviceGetMigMode(h)[0] == pynvml.NVML_DEVICE_MIG_ENABLE, pynvml
    )
    return h, {
        "nvml_index": nvml_index,
        "uuid": _text(pynvml.nvmlDeviceGetUUID(h)),
        "name": _text(pynvml.nvmlDeviceGetName(h)),
        "memory_total": int(pynvml.nvmlDeviceGetMemoryInfo(h).total),
        "mig": bool(mig),
    }


def _mig_devices(pynvml: Any, parent: tuple[Any, dict]) -> list[tuple[Any, dict]]:
    """The MIG instances of a MIG-enabled GPU, as (handle, device dict)."""
    ph, pdev = parent
    if not pdev["mig"]:
        return []
    out = []
    for i in range(_optional(lambda: pynvml.nvmlDeviceGetMaxMigDeviceCount(ph), pynvml) or 0):
        try:
            h = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(ph, i)
        except pynvml.NVMLError:  # NotFound: that slot holds no instance
            continue
        name = _optional(lambda h=h: _text(pynvml.nvmlDeviceGetName(h)), pynvml)
        total = _optional(lambda h=h: int(pynvml.nvmlDeviceGetMemoryInfo(h).total), pynvml)
        gi = _optional(lambda h=h: pynvml.nvmlDeviceGetGpuInstanceId(h), pynvml)
        ci = _optional(lambda h=h: pynvml.nvmlDeviceGetComputeInstanceId(h), pynvml)
        dev = {
            "nvml_index": pdev["nvml_index"],
            "uuid": _text(pynvml.nvmlDeviceGetUUID(h)),
            "name": name or pdev["name"],
            "memory_total": total or 0,
            "mig": True,
            "_gi_ci": (gi, ci),
        }
        out.append((h, dev))
    return out


def _select_visible(
    pynvml: Any, physical: list[tuple[Any, dict]], spec: str | None
) -> list[tuple[Any, dict]]:
    """Apply CUDA_VISIBLE_DEVICES as CUDA does: indices, GPU-/MIG- UUID prefixes; the list
    ends at the first entry that names no device.

    Indices are NVML's (PCI bus) order, which is CUDA's order when CUDA_DEVICE_ORDER=PCI_BUS_ID
    or when the GPUs are all alike.
    """
    if spec is None:
        return list(physical)
    chosen: list[tuple[Any, dict]] = []
    seen: set[str] = set()
    mig_cache: list[tuple[Any, dict]] | None = None
    for raw in spec.split(","):
        entry = raw.strip()
        found: tuple[Any, dict] | None = None
        if entry.lstrip("+-").isdigit():
            i = int(entry)
            found = physical[i] if 0 <= i < len(physical) else None
        elif entry.upper().startswith("MIG-"):
            if mig_cache is None:
                mig_cache = [m for p in physical for m in _mig_devices(pynvml, p)]
            found = _match_mig(entry, physical, mig_cache)
        elif entry:
            prefix = entry if entry.upper().startswith("GPU-") else "GPU-" + entry
            found = _unique_prefix(prefix, physical)
        if found is None:
            break
        if found[1]["uuid"] in seen:
            continue
        seen.add(found[1]["uuid"])
        chosen.append((found[0], {k: v for k, v in found[1].items() if not k.startswith("_")}))
    return chosen


def _unique_prefix(prefix: str, devices: list[tuple[Any, dict]]) -> tuple[Any, dict] | None:
    hits = [d for d in devices if d[1]["uuid"].lower().startswith(prefix.lower())]
    return hits[0] if len(hits) == 1 else None


def _match_mig(
    entry: str, physical: list[tuple[Any, dict]], migs: list[tuple[Any, dict]]
) -> tuple[Any, dict] | None:
    # Legacy form (drivers before R470): MIG-GPU-<gpu uuid>/<gpu instance>/<compute instance>
    if entry.upper().startswith("MIG-GPU-") and entry.count("/") == 2:
        gpu_uuid, gi, ci = entry[4:].split("/")
        parent = _unique_prefix(gpu_uuid, physical)
        if parent is None or not (gi.isdigit() and ci.isdigit()):
            return None
        for m in migs:
            if m[1]["nvml_index"] == parent[1]["nvml_index"] and m[1]["_gi_ci"] == (
                int(gi),
                int(ci),
            ):
                return m
        return None
    return _unique_prefix(entry, migs)


def _has_energy_counter(pynvml: Any, handle: Any) -> bool:
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return True
    except pynvml.NVMLError:
        return False


def _optional(read: Any, pynvml: Any) -> Any:
    """A value NVML may not have for this card or driver: None instead of an error."""
    try:
        return read()
    except pynvml.NVMLError:
        return None


def _shutdown(pynvml: Any) -> None:
    try:
        pynvml.nvmlShutdown()
    except Exception:
        pass


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cuda_version(v: int) -> str:
    """NVML's 12040 is CUDA "12.4"."""
    return f"{v // 1000}.{(v % 1000) // 10}"


# --- process tree -------------------------------------------------------------------------------


def _parent_pid(pid: int) -> int | None:
    """Parent of `pid`, or None when that process is not visible here."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # comm (field 2) may hold spaces and parentheses: split after its last ')'.
        return int(stat[stat.rindex(b")") + 2 :].split()[1])
    except FileNotFoundError:
        if os.path.isdir("/proc"):
            return None
    except (OSError, ValueError, IndexError):
        return None
    try:  # no /proc (not Linux): psutil when it is there
        import psutil

        return psutil.Process(pid).ppid()
    except Exception:
        return None


class _ProcessTree:
    """Answers "is this pid the kernel or one of its descendants?" by walking parents in /proc,
    remembering verdicts for a while so that a steady set of GPU processes costs nothing."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._verdicts: dict[int, bool | None] = {}
        self._reset_at = time.monotonic() + _PID_VERDICT_TTL_S

    def verdict(self, pid: int) -> bool | None:
        """True: in the tree; False: another process; None: not visible here at all."""
        if pid == self.root:
            return True
        now = time.monotonic()
        if now >= self._reset_at:  # pids get reused
            self._verdicts.clear()
            self._reset_at = now + _PID_VERDICT_TTL_S
        if pid in self._verdicts:
            return self._verdicts[pid]
        result: bool | None = False
        p = pid
        for depth in range(64):
            parent = _parent_pid(p)
            if parent is None:
                result = None if depth == 0 else False
                break
            if parent == self.root:
                result = True
                break
            if parent <= 1:
                break
            p = parent
        self._verdicts[pid] = result
        return result


# --- sampler ------------------------------------------------------------------------------------


class _Device:
    """One sampled GPU: its handle and which readings it still supports."""

    def __init__(self, dev: dict, handle: Any) -> None:
        self.index: int = dev["index"]
        self.uuid: str = dev["uuid"]
        self.memory_total: int = dev["memory_total"]
        self.handle = handle
        self.unsupported: set[str] = set()
        self.failures = 0
        self.noted: set[str] = set()
        self.active = True


class _RunTotals:
    """Per-GPU figures over the whole run, kept up to date sample by sample."""

    def __init__(self) -> None:
        self.util_sum = 0.0
        self.util_n = 0
        self.util_max: float | None = None
        self.mem_peak: float | None = None
        self.proc_mem_peak: float | None = None
        self.first_energy: float | None = None
        self.last_energy: float | None = None
        self.power_j = 0.0  # trapezoid integral of power over the samples
        self.power_seen = False
        self.last_power: tuple[float, float] | None = None

    def add(self, s: tuple) -> None:
        if s[UTIL] is not None:
            self.util_sum += s[UTIL]
            self.util_n += 1
            self.util_max = _max(self.util_max, s[UTIL])
        self.mem_peak = _max(self.mem_peak, s[MEM])
        self.proc_mem_peak = _max(self.proc_mem_peak, s[PROC_MEM])
        if s[ENERGY] is not None:
            if self.first_energy is None:
                self.first_energy = s[ENERGY]
            self.last_energy = s[ENERGY]
        if s[POWER] is not None:
            if self.last_power is not None:
                t0, p0 = self.last_power
                self.power_j += (s[TIME] - t0) * (p0 + s[POWER]) / 2
            self.last_power = (s[TIME], s[POWER])
            self.power_seen = True

    def figures(self) -> dict:
        energy, source = None, None
        if self.first_energy is not None and self.last_energy is not None:
            if self.last_energy >= self.first_energy:
                energy, source = self.last_energy - self.first_energy, "counter"
        if energy is None and self.power_seen:
            energy, source = self.power_j, "power"
        return {
            "util_mean": self.util_sum / self.util_n if self.util_n else None,
            "util_max": self.util_max,
            "mem_peak": self.mem_peak,
            "proc_mem_peak": self.proc_mem_peak,
            "energy_j": energy,
            "energy_source": source,
        }


class GpuSampler:
    """Samples the probed GPUs in a daemon thread; cheap to poke from the kernel's hot path."""

    def __init__(self, probe: GpuProbe, interval: float = 0.5, pid: int | None = None) -> None:
        self.probe = probe
        self.interval = max(float(interval), _MIN_GAP_S)
        self.notes: list[str] = []
        self._tree = _ProcessTree(os.getpid() if pid is None else pid)
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._new_sample = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._sampling = False  # the thread is running and has GPUs left to read
        self._devices: list[_Device] = []
        self._recent: dict[int, collections.deque[tuple]] = {}
        self._pending: collections.deque[tuple] = collections.deque(maxlen=_PENDING_MAX)
        self._dropped = 0
        self._totals: dict[int, _RunTotals] = {}
        self._latest_time = float("-inf")  # time of the newest sample round
        self._latest_energy_time = float("-inf")  # ... and of the newest energy counter read
        self._has_counter = False  # some sampled GPU has an energy counter
        self._energy_last = float("-inf")  # monotonic time of the last counter read
        self._energy_wanted = False  # a cell boundary came too soon after the last read
        self._latest: dict[int, tuple] = {}
        self._noted_namespace = False
        self._noted_keys: set[str] = set()
        self._unsupported: tuple[type[BaseException], ...] = ()

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sampling thread (no-op without GPUs or when already running)."""
        if not self.probe.ok or (self._thread is not None and self._thread.is_alive()):
            return
        try:
            if not self._devices:
                self._devices = self._open_devices()
            if not any(d.active for d in self._devices):
                return
            self._stopping = False
            self._sampling = True
            self._thread = threading.Thread(target=self._run, name="mlp-gpu-sampler", daemon=True)
            self._thread.start()
        except Exception as e:
            self._sampling = False
            self._note(f"GPU sampling could not start: {type(e).__name__}: {e}")

    def stop(self) -> None:
        """Take a final sample and end the thread."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout=10)
        with self._new_sample:
            self._sampling = False
            self._new_sample.notify_all()

    def poke(self) -> None:
        """Ask for a sample now (cell start and end); costs about a microsecond."""
        self._wake.set()

    # -- reading results -------------------------------------------------------------------------

    def cell_figures(self, start: float, end: float, timeout: float = 1.0) -> dict | None:
        """Figures per visible GPU for a cell that ran [start, end] (time.time() values).

        Waits up to `timeout` for the first sample at or after `end`: that sample belongs to the
        cell (NVML utilization is an average over the time just before the reading, and memory
        the cell allocated is still held), so a cell shorter than the interval has figures too.
        With an energy counter it also waits for a counter reading at or after `end` (at most
        _ENERGY_GAP_S later). The card updates utilization, power and the counter only every
        100-200 ms, so figures of cells shorter than that are rough.
        """
        try:
            return self._cell_figures(start, end, timeout)
        except Exception as e:
            self._note_once("cell_figures", f"GPU cell figures failed: {type(e).__name__}: {e}")
            return None

    def _cell_figures(self, start: float, end: float, timeout: float) -> dict | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._new_sample:
            while self._sampling and (
                self._latest_time < end or (self._has_counter and self._latest_energy_time < end)
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                lag = end - time.time()
                if lag <= 0 and self._latest_time < end:
                    self._wake.set()  # in case the end-of-cell poke was missed
                self._new_sample.wait(min(remaining, lag) if lag > 0 else remaining)
            if not self._recent:
                return None
            snapshot = {gpu: list(dq) for gpu, dq in self._recent.items()}
        out = {}
        for gpu, samples in sorted(snapshot.items()):
            figures = _window_figures(samples, start, end, slack=2 * self.interval + 1.0)
            if figures is not None:
                out[str(gpu)] = figures
        return out or None

    def drain(self) -> list[tuple]:
        """Samples taken since the last drain, oldest first, for storage."""
        with self._lock:
            out = list(self._pending)
            self._pending.clear()
        return out

    def latest(self) -> dict:
        """The newest reading per GPU, for the status widget."""
        with self._lock:
            latest = dict(self._latest)
        totals = {d["index"]: d["memory_total"] for d in self.probe.devices}
        return {
            str(gpu): {"util": s[UTIL], "mem_used": s[MEM], "mem_total": totals.get(gpu)}
            for gpu, s in sorted(latest.items())
        }

    def run_figures(self) -> dict:
        """Per GPU over the whole run so far: mean/max utilization, peaks, energy."""
        with self._lock:
            return {str(gpu): t.figures() for gpu, t in sorted(self._totals.items())}

    # -- the thread ------------------------------------------------------------------------------

    def _open_devices(self) -> list[_Device]:
        import pynvml

        devices = []
        for dev in self.probe.devices:
            handle = _handles.get(dev["uuid"])
            if handle is None:  # a probe built by hand, or the cache was reset
                handle = pynvml.nvmlDeviceGetHandleByUUID(dev["uuid"])
            d = _Device(dev, handle)
            if not dev.get("energy_counter", True):
                d.unsupported.add("energy")
            devices.append(d)
        return devices

    def _run(self) -> None:
        try:
            import pynvml

            self._unsupported = _unsupported_errors(pynvml)
            self._has_counter = any("energy" not in d.unsupported for d in self._devices)
            last = float("-inf")
            while not self._stopping:
                wake_at = last + self.interval
                if self._energy_wanted:
                    wake_at = min(wake_at, self._energy_last + _ENERGY_GAP_S)
                wait = wake_at - time.monotonic()
                poked = self._wake.wait(wait) if wait > 0 else self._wake.is_set()
                self._wake.clear()
                if self._stopping:
                    break
                gap = last + _MIN_GAP_S - time.monotonic()
                if gap > 0:
                    time.sleep(gap)
                last = time.monotonic()
                if not self._sample_round(pynvml, self._energy_due(poked, final=False)):
                    return
            self._sample_round(pynvml, self._energy_due(True, final=True))  # the final sample
        except Exception as e:
            self._note(f"GPU sampling stopped: {type(e).__name__}: {e}")
        finally:
            with self._new_sample:
                self._sampling = False
                self._new_sample.notify_all()

    def _energy_due(self, poked: bool, final: bool) -> bool:
        """Whether this round reads the energy counter (see _ENERGY_GAP_S)."""
        if not self._has_counter:
            return False
        now = time.monotonic()
        if not (
            final or poked or self._energy_wanted or now - self._energy_last >= _ENERGY_EVERY_S
        ):
            return False
        if final or now - self._energy_last >= _ENERGY_GAP_S:
            self._energy_last = now
            self._energy_wanted = False
            return True
        self._energy_wanted = True  # read it as soon as the gap has passed
        return False

    def _sample_round(self, pynvml: Any, read_energy: bool) -> bool:
        """Read every active GPU once; False when no GPU is left to sample."""
        t = time.time()
        rows = []
        for d in self._devices:
            if not d.active:
                continue
            try:
                rows.append(self._read(pynvml, d, t, read_energy))
                d.failures = 0
            except pynvml.NVMLError as e:
                self._device_failed(d, e)
        self._has_counter = any(d.active and "energy" not in d.unsupported for d in self._devices)
        with self._new_sample:
            if read_energy:
                self._latest_energy_time = t
            for row in rows:
                gpu = row[GPU]
                dq = self._recent.get(gpu)
                if dq is None:
                    dq = self._recent[gpu] = collections.deque()
                dq.append(row)
                while dq and dq[0][TIME] < t - _WINDOW_S:
                    dq.popleft()
                if len(self._pending) == self._pending.maxlen:
                    self._dropped += 1
                    if self._dropped == 1:
                        self._note("GPU samples are not being stored; the oldest are dropped")
                self._pending.append(row)
                self._totals.setdefault(gpu, _RunTotals()).add(row)
                self._latest[gpu] = row
            self._latest_time = t
            active = any(d.active for d in self._devices)
            if not active:
                self._sampling = False
            self._new_sample.notify_all()
        if not active:
            self._note("GPU sampling stopped: no GPU left that NVML can read")
        return active

    def _read(self, pynvml: Any, d: _Device, t: float, read_energy: bool) -> tuple:
        h = d.handle
        skip = d.unsupported
        util = mem = proc = power = temp = clock = energy = None
        if "util" not in skip:
            util = self._optional_read(pynvml, d, "util", pynvml.nvmlDeviceGetUtilizationRates, h)
            util = None if util is None else float(util.gpu)
        if "mem" not in skip:
            info = self._optional_read(pynvml, d, "mem", pynvml.nvmlDeviceGetMemoryInfo, h)
            mem = None if info is None else float(info.used)
        if "processes" not in skip:
            proc = self._process_memory(pynvml, d)
        if "power" not in skip:
            mw = self._optional_read(pynvml, d, "power", pynvml.nvmlDeviceGetPowerUsage, h)
            power = None if mw is None else mw / 1000.0
        if "temp" not in skip:
            temp = self._optional_read(
                pynvml, d, "temp", pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU
            )
            temp = None if temp is None else float(temp)
        if "clock" not in skip:
            clock = self._optional_read(
                pynvml, d, "clock", pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM
            )
            clock = None if clock is None else float(clock)
        if read_energy and "energy" not in skip:
            mj = self._optional_read(
                pynvml, d, "energy", pynvml.nvmlDeviceGetTotalEnergyConsumption, h
            )
            energy = None if mj is None else mj / 1000.0
        return (d.index, t, util, mem, proc, power, temp, clock, energy)

    def _optional_read(self, pynvml: Any, d: _Device, what: str, fn: Any, *args: Any) -> Any:
        """One NVML reading; a reading this card lacks is switched off for good."""
        try:
            return fn(*args)
        except self._unsupported:
            d.unsupported.add(what)
            return None

    def _process_memory(self, pynvml: Any, d: _Device) -> float | None:
        """GPU memory of the kernel process and its descendants on this GPU."""
        per_pid: dict[int, int] = {}
        listed = False
        for what, fn in (
            ("compute", pynvml.nvmlDeviceGetComputeRunningProcesses),
            ("graphics", pynvml.nvmlDeviceGetGraphicsRunningProcesses),
        ):
            if what in d.unsupported:
                continue
            procs = self._optional_read(pynvml, d, what, fn, d.handle)
            if procs is None:
                continue
            listed = True
            for p in procs:
                used = getattr(p, "usedGpuMemory", None)
                if used is not None:  # one process may be in both lists: count it once
                    per_pid[p.pid] = max(per_pid.get(p.pid, 0), int(used))
        if not listed:
            d.unsupported.add("processes")
            return None
        total, hidden = 0, 0
        for pid, used in per_pid.items():
            v = self._tree.verdict(pid)
            if v:
                total += used
            elif v is None:
                hidden += 1
        if per_pid and hidden == len(per_pid):
            # NVML reports host pids; inside a container with its own pid namespace none of
            # them exists here, and "0 bytes" would be a wrong answer.
            if not self._noted_namespace:
                self._noted_namespace = True
                self._note(
                    "GPU memory per process unavailable: NVML reports process ids from another "
                    "PID namespace (a container?)"
                )
            return None
        return float(total)

    def _device_failed(self, d: _Device, e: Exception) -> None:
        d.failures += 1
        kind = type(e).__name__
        if kind not in d.noted:
            d.noted.add(kind)
            self._note(f"GPU {d.index}: NVML error while sampling: {e} ({kind})")
        if d.failures >= _MAX_FAILURES:
            d.active = False
            self._note(
                f"GPU {d.index}: sampling stopped after {d.failures} consecutive NVML errors ({e})"
            )

    def _note(self, text: str) -> None:
        self.notes.append(text)

    def _note_once(self, key: str, text: str) -> None:
        if key not in self._noted_keys:
            self._noted_keys.add(key)
            self._note(text)


def _unsupported_errors(pynvml: Any) -> tuple[type[BaseException], ...]:
    """Errors meaning "this card/driver/user cannot have that reading", not "NVML broke"."""
    names = (
        "NVMLError_NotSupported",
        "NVMLError_NoPermission",
        "NVMLError_FunctionNotFound",
    )
    return tuple(c for n in names if isinstance(c := getattr(pynvml, n, None), type))


# --- per-cell figures ---------------------------------------------------------------------------


def _window_figures(samples: list[tuple], start: float, end: float, slack: float) -> dict | None:
    """Figures of one GPU over [start, end] from its samples (sorted by time); None when no
    sample lies within `slack` seconds of the window (it is older than what is kept)."""
    times = [s[TIME] for s in samples]
    first = bisect.bisect_left(times, start)
    after = bisect.bisect_left(times, end)  # first sample at or after the end
    chosen = samples[first:after]
    if after < len(samples) and times[after] <= end + slack:
        chosen.append(samples[after])
    if not chosen and first > 0 and times[first - 1] >= start - slack:
        chosen = [samples[first - 1]]  # the cell ended before a later sample: the nearest one
    if not chosen:
        return None
    util_mean, util_max = _cell_utilization(samples, times, start, end, chosen)
    energy, source = _counter_energy(samples, start, end), "counter"
    if energy is None:
        energy, source = _power_energy(samples, start, end), "power"
    return {
        "util_mean": util_mean,
        "util_max": util_max,
        "mem_peak": _peak(chosen, MEM),
        "proc_mem_peak": _peak(chosen, PROC_MEM),
        "energy_j": energy,
        "energy_source": source if energy is not None else None,
    }


def _cell_utilization(
    samples: list[tuple], times: list[float], start: float, end: float, chosen: list[tuple]
) -> tuple[float | None, float | None]:
    """NVML's utilization is the busy share of the period just before each reading (up to ~1 s),
    so a reading counts for the cell in proportion to how much of that period the cell covers:
    the reading taken at the cell's start describes the time before it and weighs nothing, the
    first reading after the end weighs the tail of the cell. Measured on an H200, the plain mean
    read a 3 s matmul cell as 75% busy where nvidia-smi saw 89%."""
    weighted, total, peak = 0.0, 0.0, None
    for i, s in enumerate(samples):
        t = s[TIME]
        if t <= start or s[UTIL] is None:
            continue
        lo = max(times[i - 1] if i else t - 1.0, t - 1.0)
        if lo >= end:
            break
        overlap = min(t, end) - max(lo, start)
        if overlap <= 0:
            continue
        weighted += overlap * s[UTIL]
        total += overlap
        peak = s[UTIL] if peak is None else max(peak, s[UTIL])
    if total > 0:
        return weighted / total, peak
    utils = [s[UTIL] for s in chosen if s[UTIL] is not None]  # no reading after the start yet
    return (sum(utils) / len(utils), max(utils)) if utils else (None, None)


def _counter_energy(samples: list[tuple], start: float, end: float) -> float | None:
    """Energy counter interpolated at the cell's start and end."""
    pts = [(s[TIME], s[ENERGY]) for s in samples if s[ENERGY] is not None]
    if not pts:
        return None
    e0 = _interpolate(pts, start)
    e1 = _interpolate(pts, end)
    return e1 - e0 if e1 >= e0 else None  # a counter reset: fall back to power


def _power_energy(samples: list[tuple], start: float, end: float) -> float | None:
    """Integral over [start, end] of power, linear between samples and flat beyond them."""
    pts = [(s[TIME], s[POWER]) for s in samples if s[POWER] is not None]
    if not pts:
        return None
    if end <= start:
        return 0.0
    knots = [start] + [t for t, _ in pts if start < t < end] + [end]
    values = [_interpolate(pts, t) for t in knots]
    return sum(
        (knots[i + 1] - knots[i]) * (values[i] + values[i + 1]) / 2 for i in range(len(knots) - 1)
    )


def _interpolate(pts: list[tuple[float, float]], t: float) -> float:
    """Piecewise-linear value at t, held flat before the first and after the last point."""
    if t <= pts[0][0]:
        return pts[0][1]
    if t >= pts[-1][0]:
        return pts[-1][1]
    i = bisect.bisect_right([p[0] for p in pts], t)
    (t0, v0), (t1, v1) = pts[i - 1], pts[i]
    if t1 == t0:
        return v1
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def _peak(samples: list[tuple], column: int) -> float | None:
    values = [s[column] for s in samples if s[column] is not None]
    return max(values) if values else None


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b
