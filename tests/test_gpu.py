"""GPU sampler and GPU sample storage, against the scripted fake NVML in tests/fake_nvml.

Samplers run their real thread here; real kernels come in the tracker tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlp.store import gpu as store_gpu
from jupyter_mlp.tracker import gpu

FAKE_NVML = Path(__file__).parent / "fake_nvml" / "pynvml.py"
REPO = Path(__file__).parent.parent

UUIDS = [
    "GPU-11111111-aaaa-bbbb-cccc-000000000000",
    "GPU-22222222-aaaa-bbbb-cccc-000000000001",
    "GPU-12345678-aaaa-bbbb-cccc-000000000002",
]
MIG_UUID = "MIG-99999999-aaaa-bbbb-cccc-000000000009"


def device(i: int, **kw: Any) -> dict:
    return {"uuid": UUIDS[i], "name": f"Fake H100 #{i}", "memory_total": 80e9, **kw}


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll until predicate() is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        time.sleep(0.005)


class FakeNvml:
    """The fake's script file, rewritten atomically as a test changes readings."""

    def __init__(self, module: Any, path: Path) -> None:
        self.module = module
        self.path = path
        self.script: dict = {}

    def write(self, **script: Any) -> None:
        script.setdefault("readings", {"util": 0, "mem_used": 1e9, "power": 100.0})
        self.script = script
        self._flush()

    def set(self, **changes: Any) -> None:
        self.script.update(changes)
        self._flush()

    def set_readings(self, **readings: Any) -> None:
        self.script["readings"] = {**self.script.get("readings", {}), **readings}
        self._flush()

    def _flush(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.script))
        os.replace(tmp, self.path)


@pytest.fixture
def fake_nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    """A fresh fake ``pynvml`` in sys.modules, driven by a script file in tmp_path."""
    spec = importlib.util.spec_from_file_location("pynvml", FAKE_NVML)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    path = tmp_path / "nvml.json"
    monkeypatch.setenv("MLP_FAKE_NVML", str(path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu._reset_probe_cache()
    yield FakeNvml(module, path)
    gpu._reset_probe_cache()


@pytest.fixture
def samplers() -> Iterator[Callable[..., gpu.GpuSampler]]:
    """Make samplers that are stopped when the test ends, whatever happened."""
    made: list[gpu.GpuSampler] = []

    def make(*args: Any, **kw: Any) -> gpu.GpuSampler:
        s = gpu.GpuSampler(*args, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def newest_sample_after(sampler: gpu.GpuSampler, t: float) -> None:
    """Wait until the sampler has read the GPUs, and any energy counter, after time t (so it
    saw a script change: the counter is interpolated linearly between its sparse readings)."""
    sampler.poke()
    wait_until(
        lambda: (
            sampler._latest_time > t
            and (not sampler._has_counter or sampler._latest_energy_time > t)
        ),
        what="a sample after the script change",
    )


def run_cell(sampler: gpu.GpuSampler, duration: float) -> tuple[float, float]:
    """Stand in for a cell: poke at start, keep running for `duration`, poke at the end."""
    start = time.time()
    sampler.poke()
    while time.time() - start < duration:  # the cell "computes"
        time.sleep(0.01)
    end = time.time()
    sampler.poke()
    return start, end


# --- probe --------------------------------------------------------------------------------------


def test_probe_against_the_real_nvml_of_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pytest.importorskip("pynvml")
    if Path(real.__file__).parent == FAKE_NVML.parent:
        pytest.skip("the fake pynvml is on sys.path")
    monkeypatch.setitem(sys.modules, "pynvml", real)
    try:
        real.nvmlInit()
        real.nvmlShutdown()
        has_driver = True
    except real.NVMLError_LibraryNotFound:
        has_driver = False
    gpu._reset_probe_cache()
    try:
        p = gpu.probe()
    finally:
        gpu._reset_probe_cache()
    if has_driver:
        assert p.ok or p.reason, p
    else:
        assert not p.ok
        assert p.reason == "no NVIDIA driver (NVML library not found)"
        assert p.devices == []


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ({"init_error": "LibraryNotFound"}, "no NVIDIA driver (NVML library not found)"),
        ({"init_error": "DriverNotLoaded"}, "NVIDIA driver not loaded"),
        ({"devices": []}, "NVML found no NVIDIA GPU"),
    ],
)
def test_no_gpu_is_reported_with_a_reason_and_sampling_stays_off(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler], script: dict, reason: str
) -> None:
    fake_nvml.write(**script)
    p = gpu.probe()
    assert (p.ok, p.reason, p.devices) == (False, reason, [])
    s = samplers(p, interval=0.05)
    s.start()
    s.poke()
    assert s._thread is None
    assert s.cell_figures(time.time() - 1, time.time(), timeout=0.5) is None
    assert (s.drain(), s.latest(), s.run_figures(), s.notes) == ([], {}, {}, [])


def test_probe_tries_nvml_once_per_process(fake_nvml: FakeNvml) -> None:
    fake_nvml.write(init_error="LibraryNotFound")
    first = gpu.probe()
    fake_nvml.set(init_error=None, devices=[device(0)])  # a driver appearing later is not seen
    assert gpu.probe() is first
    assert fake_nvml.module.calls["nvmlInit"] == 1


def test_probe_describes_each_visible_gpu(fake_nvml: FakeNvml) -> None:
    fake_nvml.write(
        driver="550.54.15",
        cuda=12040,
        devices=[device(0), device(1, energy_counter=False, memory_total=40e9)],
    )
    p = gpu.probe()
    assert p.ok and p.reason is None
    assert (p.driver_version, p.cuda_version) == ("550.54.15", "12.4")
    assert p.devices == [
        {
            "index": 0,
            "nvml_index": 0,
            "uuid": UUIDS[0],
            "name": "Fake H100 #0",
            "memory_total": 80_000_000_000,
            "mig": False,
            "energy_counter": True,
        },
        {
            "index": 1,
            "nvml_index": 1,
            "uuid": UUIDS[1],
            "name": "Fake H100 #1",
            "memory_total": 40_000_000_000,
            "mig": False,
            "energy_counter": False,
        },
    ]


@pytest.mark.parametrize(
    ("visible", "nvml_indices"),
    [
        ("2,0", [2, 0]),
        ("1", [1]),
        ("1,7,0", [1]),  # CUDA ignores everything from the first entry that names no GPU
        (UUIDS[2], [2]),
        ("GPU-2222,GPU-11111111", [1, 0]),  # unique UUID prefixes
        ("GPU-1", []),  # ambiguous prefix: names no single GPU
        ("0,0", [0]),
    ],
)
def test_cuda_visible_devices_chooses_and_orders_the_sampled_gpus(
    fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch, visible: str, nvml_indices: list[int]
) -> None:
    fake_nvml.write(devices=[device(0), device(1), device(2)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    p = gpu.probe()
    assert [d["nvml_index"] for d in p.devices] == nvml_indices
    assert [d["index"] for d in p.devices] == list(range(len(nvml_indices)))
    if not nvml_indices:
        assert (p.ok, p.reason) == (False, "CUDA_VISIBLE_DEVICES hides every GPU")


def test_empty_cuda_visible_devices_hides_every_gpu(
    fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.write(devices=[device(0)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    p = gpu.probe()
    assert (p.ok, p.reason, p.devices) == (False, "CUDA_VISIBLE_DEVICES hides every GPU", [])
    assert p.driver_version == "550.54.15"


def test_visible_gpu_by_index_is_sampled_under_its_visible_index(
    fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(
        devices=[device(0), device(1, memory_total=40e9)],
        readings={"util": [10, 70], "mem_used": [1e9, 3e9], "power": 100.0},
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    s = samplers(gpu.probe(), interval=0.05)
    s.start()
    wait_until(s.latest)
    assert s.latest() == {"0": {"util": 70.0, "mem_used": 3e9, "mem_total": 40_000_000_000}}


def test_a_mig_instance_is_visible_by_its_uuid_and_lacks_counters(
    fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    mig = {"uuid": MIG_UUID, "name": "Fake H100 MIG 1g.10gb", "memory_total": 10e9, "gi": 7}
    fake_nvml.write(
        devices=[device(0), device(1, mig=True, mig_devices=[mig])],
        processes=[{"pid": os.getpid(), "used_memory": 2e9, "gpu": 1, "mig": 0}],
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIG_UUID[:12])
    p = gpu.probe()
    assert p.devices == [
        {
            "index": 0,
            "nvml_index": 1,
            "uuid": MIG_UUID,
            "name": "Fake H100 MIG 1g.10gb",
            "memory_total": 10_000_000_000,
            "mig": True,
            "energy_counter": False,
        }
    ]
    s = samplers(p, interval=0.05)
    s.start()
    start, end = run_cell(s, 0.1)
    figures = s.cell_figures(start, end)
    assert figures == {
        "0": {
            "util_mean": None,
            "util_max": None,
            "mem_peak": 2e9,
            "proc_mem_peak": 2e9,
            "energy_j": None,
            "energy_source": None,
        }
    }
    assert s.notes == []


def test_legacy_mig_names_pick_the_instance_by_gpu_and_instance_ids(
    fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    migs = [
        {"uuid": MIG_UUID, "gi": 1, "ci": 0},
        {"uuid": "MIG-88888888-aaaa-bbbb-cccc-000000000008", "gi": 2, "ci": 0},
    ]
    fake_nvml.write(devices=[device(0, mig=True, mig_devices=migs)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"MIG-{UUIDS[0]}/2/0")
    assert [d["uuid"] for d in gpu.probe().devices] == [migs[1]["uuid"]]


# --- sampling and per-cell figures --------------------------------------------------------------


def test_samples_are_taken_while_a_cell_runs(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0)])
    s = samplers(gpu.probe(), interval=0.05)
    s.start()
    start, end = run_cell(s, 0.6)
    s.cell_figures(start, end)
    inside = [row for row in s.drain() if start < row[gpu.TIME] < end]
    assert len(inside) >= 5  # the start poke plus periodic samples: sampling never pauses


def test_a_long_cell_gets_the_utilization_and_energy_it_used(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0)], readings={"util": 0, "mem_used": 1e9, "power": 60.0})
    s = samplers(gpu.probe(), interval=0.1)
    s.start()
    changed = time.time()
    fake_nvml.set_readings(util=90, mem_used=5e9, power=200.0)
    newest_sample_after(s, changed)
    start, end = run_cell(s, 0.8)
    figures = s.cell_figures(start, end)
    fake_nvml.set_readings(util=0, mem_used=1e9, power=60.0)  # between cells
    assert figures is not None
    f = figures["0"]
    assert (f["util_mean"], f["util_max"], f["mem_peak"]) == (90.0, 90.0, 5e9)
    assert f["energy_source"] == "counter"
    assert f["energy_j"] == pytest.approx(200.0 * (end - start), rel=0.01)


def test_a_cell_shorter_than_the_interval_still_gets_figures(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0)], readings={"util": 0, "mem_used": 1e9, "power": 60.0})
    s = samplers(gpu.probe(), interval=30.0)
    s.start()
    changed = time.time()
    fake_nvml.set_readings(util=75, mem_used=7e9, power=300.0)
    newest_sample_after(s, changed)
    start, end = run_cell(s, 0.05)
    f = s.cell_figures(start, end, timeout=5)["0"]
    assert (f["util_mean"], f["util_max"], f["mem_peak"]) == (75.0, 75.0, 7e9)
    assert f["energy_source"] == "counter"
    assert f["energy_j"] == pytest.approx(300.0 * (end - start), rel=0.01)


def test_cell_figures_fetch_the_end_sample_when_the_end_poke_was_missed(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0)])
    s = samplers(gpu.probe(), interval=30.0)
    s.start()
    wait_until(s.latest)
    start = time.time()
    end = start + 0.01
    wait_until(lambda: time.time() > end)
    assert s.cell_figures(start, end, timeout=5) is not None
    assert s._latest_time >= end


def test_a_cell_older_than_the_kept_samples_gets_no_figures_rather_than_wrong_ones() -> None:
    samples = [(0, 1000.0 + k, 50.0, 1e9, None, 100.0, 40.0, 1400.0, None) for k in range(10)]
    assert gpu._window_figures(samples, 10.0, 20.0, slack=2.0) is None
    assert gpu._window_figures(samples, 2000.0, 2001.0, slack=2.0) is None
    assert gpu._window_figures(samples, 1003.2, 1003.5, slack=2.0) == {
        "util_mean": 50.0,
        "util_max": 50.0,
        "mem_peak": 1e9,
        "proc_mem_peak": None,
        "energy_j": pytest.approx(30.0),
        "energy_source": "power",
    }


def test_energy_comes_from_power_when_the_card_has_no_counter(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(
        devices=[device(0, energy_counter=False)],
        readings={"util": 50, "mem_used": 1e9, "power": 150.0},
    )
    s = samplers(gpu.probe(), interval=0.1)
    s.start()
    start, end = run_cell(s, 0.5)
    f = s.cell_figures(start, end)["0"]
    assert f["energy_source"] == "power"
    assert f["energy_j"] == pytest.approx(150.0 * (end - start), rel=1e-6)
    s.stop()
    run = s.run_figures()["0"]
    assert run["energy_source"] == "power"
    assert run["util_mean"] == run["util_max"] == 50.0
    assert all(row[gpu.ENERGY] is None for row in s.drain())
    assert fake_nvml.module.calls["nvmlDeviceGetTotalEnergyConsumption"] == 1  # the probe's try


def test_run_figures_use_the_energy_counter_over_the_whole_run(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0)], readings={"util": 20, "mem_used": 2e9, "power": 100.0})
    s = samplers(gpu.probe(), interval=0.05)
    s.start()
    wait_until(lambda: len(s._recent.get(0, ())) >= 5)
    s.stop()
    rows = s.drain()
    run = s.run_figures()["0"]
    assert run["energy_source"] == "counter"
    elapsed = rows[-1][gpu.TIME] - rows[0][gpu.TIME]
    assert run["energy_j"] == pytest.approx(100.0 * elapsed, rel=0.01)
    assert (run["util_mean"], run["mem_peak"]) == (20.0, 2e9)


def test_the_costly_energy_counter_is_read_at_cell_boundaries_not_at_every_sample(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0)])
    s = samplers(gpu.probe(), interval=0.02)
    s.start()
    wait_until(lambda: len(s._recent.get(0, ())) >= 20)
    calls = fake_nvml.module.calls
    assert calls["nvmlDeviceGetTotalEnergyConsumption"] == 2  # the probe's try, the first sample
    start, end = run_cell(s, 0.3)
    assert s.cell_figures(start, end)["0"]["energy_source"] == "counter"
    assert calls["nvmlDeviceGetTotalEnergyConsumption"] == 4  # + the cell's start and end


def test_readings_a_card_lacks_are_none_and_not_asked_again(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0, unsupported=["temperature", "clock", "graphics"])])
    s = samplers(gpu.probe(), interval=0.02)
    s.start()
    wait_until(lambda: len(s._recent.get(0, ())) >= 5)
    s.stop()
    rows = s.drain()
    assert all(r[gpu.TEMP] is None and r[gpu.SM_CLOCK] is None for r in rows)
    assert all(r[gpu.UTIL] == 0 and r[gpu.PROC_MEM] == 0 for r in rows)
    calls = fake_nvml.module.calls
    assert calls["nvmlDeviceGetTemperature"] == calls["nvmlDeviceGetClockInfo"] == 1
    assert calls["nvmlDeviceGetGraphicsRunningProcesses"] == 1
    assert calls["nvmlDeviceGetComputeRunningProcesses"] == len(rows)
    assert s.notes == []


# --- memory of the kernel's process tree --------------------------------------------------------


@pytest.fixture
def child_and_grandchild() -> Iterator[tuple[int, int]]:
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    try:
        yield child.pid, grandchild
    finally:
        for pid in (grandchild, child.pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        child.wait()


def missing_pid() -> int:
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_process_memory_counts_the_kernel_and_its_descendants_only(
    fake_nvml: FakeNvml,
    samplers: Callable[..., gpu.GpuSampler],
    child_and_grandchild: tuple[int, int],
) -> None:
    child, grandchild = child_and_grandchild
    fake_nvml.write(
        devices=[device(0)],
        readings={"util": 0, "mem_used": 30e9, "power": 100.0},
        processes=[
            {"pid": os.getpid(), "used_memory": 1e9},
            {"pid": child, "used_memory": 2e9},
            {"pid": child, "used_memory": 2e9, "type": "graphics"},  # in both lists: once
            {"pid": grandchild, "used_memory": 0.5e9},
            {"pid": os.getppid(), "used_memory": 8e9},  # the test runner's parent: foreign
            {"pid": missing_pid(), "used_memory": 16e9},  # gone, or another namespace
        ],
    )
    s = samplers(gpu.probe(), interval=0.05)
    s.start()
    start, end = run_cell(s, 0.2)
    f = s.cell_figures(start, end)["0"]
    assert f["proc_mem_peak"] == 3.5e9
    assert f["mem_peak"] == 30e9
    assert s.notes == []


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_process_memory_is_unknown_when_nvml_pids_are_from_another_namespace(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0)], processes=[{"pid": missing_pid(), "used_memory": 4e9}])
    s = samplers(gpu.probe(), interval=0.05)
    s.start()
    start, end = run_cell(s, 0.2)
    assert s.cell_figures(start, end)["0"]["proc_mem_peak"] is None
    assert len(s.notes) == 1 and "PID namespace" in s.notes[0]


# --- NVML failing while sampling ----------------------------------------------------------------


def test_an_occasional_nvml_error_is_noted_once_and_sampling_goes_on(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fn = "nvmlDeviceGetUtilizationRates"
    fake_nvml.write(
        devices=[device(0)],
        errors=[
            {"function": fn, "from_call": 3, "count": 2, "error": "Unknown"},
            {"function": fn, "from_call": 7, "count": 1, "error": "Unknown"},
        ],
    )
    s = samplers(gpu.probe(), interval=0.02)
    s.start()
    wait_until(lambda: fake_nvml.module.calls[fn] >= 12, what="12 sampling rounds")
    assert s._thread.is_alive()
    assert s.notes == ["GPU 0: NVML error while sampling: Unknown Error (NVMLError_Unknown)"]
    s.stop()
    assert len(s.drain()) == fake_nvml.module.calls[fn] - 3


def test_three_consecutive_nvml_errors_stop_sampling_without_raising(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0)])
    s = samplers(gpu.probe(), interval=0.02)
    s.start()
    start, end = run_cell(s, 0.1)
    fake_nvml.set(error="GpuIsLost")
    wait_until(lambda: not s._thread.is_alive(), what="the sampler to give up")
    assert s.notes == [
        "GPU 0: NVML error while sampling: GPU is lost (NVMLError_GpuIsLost)",
        "GPU 0: sampling stopped after 3 consecutive NVML errors (GPU is lost)",
        "GPU sampling stopped: no GPU left that NVML can read",
    ]
    # What was sampled before the failure is still there; nothing waits or raises afterwards.
    assert s.cell_figures(start, end)["0"]["util_max"] == 0
    s.poke()
    began = time.monotonic()
    assert s.cell_figures(time.time(), time.time() + 60, timeout=30) is not None
    assert time.monotonic() - began < 5
    s.stop()
    assert s.drain() and s.latest()


# --- bookkeeping --------------------------------------------------------------------------------


def test_stop_takes_a_final_sample_and_drain_hands_out_each_sample_once(
    fake_nvml: FakeNvml, samplers: Callable[..., gpu.GpuSampler]
) -> None:
    fake_nvml.write(devices=[device(0), device(1)])
    s = samplers(gpu.probe(), interval=30.0)
    s.start()
    wait_until(s.latest)
    before_stop = time.time()
    s.stop()
    assert not s._thread.is_alive()
    rows = s.drain()
    assert [r[gpu.GPU] for r in rows] == [0, 1, 0, 1]
    assert rows[-1][gpu.TIME] >= before_stop
    assert all(len(r) == 9 for r in rows)
    assert s.drain() == []


def test_importing_the_sampler_does_not_import_nvml() -> None:
    code = "import sys, jupyter_mlp.tracker.gpu; print('pynvml' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- storage ------------------------------------------------------------------------------------

DDL = """
CREATE TABLE gpu_samples (
  run_id TEXT NOT NULL, gpu INTEGER NOT NULL, time REAL NOT NULL,
  span REAL NOT NULL DEFAULT 0,
  util REAL, util_min REAL, util_max REAL,
  mem_used REAL, mem_used_max REAL, proc_mem REAL, proc_mem_max REAL,
  power REAL, power_max REAL, temp REAL, sm_clock REAL, energy REAL
);
CREATE INDEX gpu_samples_run ON gpu_samples(run_id, gpu, time);
"""


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(":memory:")
    c.executescript(DDL)
    yield c
    c.close()


def test_samples_round_trip_through_the_store(conn: sqlite3.Connection) -> None:
    store_gpu.insert_samples(
        conn,
        "r1",
        [
            (0, 100.0, 50.0, 1e9, 5e8, 150.0, 60.0, 1400.0, 12.5),
            (1, 100.0, None, 2e9, None, None, None, None, None),
        ],
    )
    store_gpu.insert_samples(conn, "other", [(0, 100.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)])
    assert store_gpu.series(conn, "r1", gpu=0) == [
        {
            "gpu": 0,
            "time": 100.0,
            "span": 0.0,
            "util": 50.0,
            "util_min": 50.0,
            "util_max": 50.0,
            "mem_used": 1e9,
            "mem_used_max": 1e9,
            "proc_mem": 5e8,
            "proc_mem_max": 5e8,
            "power": 150.0,
            "power_max": 150.0,
            "temp": 60.0,
            "sm_clock": 1400.0,
            "energy": 12.5,
        }
    ]
    assert [r["gpu"] for r in store_gpu.series(conn, "r1")] == [0, 1]
    assert store_gpu.series(conn, "r1", since=100.5) == []


def test_compaction_keeps_the_last_hour_raw_and_buckets_the_rest(
    conn: sqlite3.Connection,
) -> None:
    now = 1_700_010_000.0  # a multiple of 60 plus 0: 1_700_010_000 / 60 = 28_333_500
    start = now - 3 * 3600
    samples = []
    for k in range(3 * 3600 // 10):  # every 10 s for 3 hours, two GPUs
        t = start + k * 10
        for g in (0, 1):
            util = float((k % 6) * 10 + g)  # 0,10,..,50 within each minute
            samples.append((g, t, util, 1e9 + k, None, 100.0 + k % 6, 50.0, 1400.0, 1000.0 + k))
    store_gpu.insert_samples(conn, "r1", samples)
    store_gpu.insert_samples(conn, "r2", samples[:10])

    removed = store_gpu.compact(conn, "r1", now=now)
    assert removed == 2 * (2 * 3600 // 10)
    rows = store_gpu.series(conn, "r1", gpu=0)
    raw = [r for r in rows if r["span"] == 0]
    buckets = [r for r in rows if r["span"] == 60]
    assert len(raw) == 3600 // 10 and raw[0]["time"] == now - 3600
    assert len(buckets) == 2 * 60 and buckets[-1]["time"] == now - 3600 - 60
    first = buckets[0]
    assert first["time"] == start
    assert (first["util_min"], first["util"], first["util_max"]) == (0.0, 25.0, 50.0)
    assert (first["mem_used"], first["mem_used_max"]) == (1e9 + 2.5, 1e9 + 5)
    assert (first["power"], first["power_max"]) == (102.5, 105.0)
    assert first["proc_mem"] is None and first["proc_mem_max"] is None
    assert first["energy"] == 1000.0  # the counter at the bucket's start
    assert len(store_gpu.series(conn, "r2")) == 10  # other runs untouched

    assert store_gpu.compact(conn, "r1", now=now) == 0
    assert store_gpu.series(conn, "r1", gpu=0) == rows
    assert store_gpu.series(conn, "r1", gpu=0, since=now - 3600 - 30)[0] == buckets[-1]


def test_compaction_inside_the_callers_transaction_is_undone_by_its_rollback(
    conn: sqlite3.Connection,
) -> None:
    samples = [(0, float(t), 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0) for t in range(600)]
    store_gpu.insert_samples(conn, "r1", samples)
    conn.commit()
    conn.execute("UPDATE gpu_samples SET temp = 2")  # the caller's transaction is open
    assert store_gpu.compact(conn, "r1", now=5000.0) == 600
    assert conn.in_transaction
    conn.rollback()
    assert len(store_gpu.series(conn, "r1")) == 600
