"""GPU figures through real kernels, with NVML replaced at the `pynvml` boundary by a script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAKE_NVML, only_run, wait_for, write_notebook

from jupyter_mlp.store import runs as run_store
from jupyter_mlp.store.gpu import series

TRACK = "%load_ext jupyter_mlp\n%mlp_track gpu --project gpu --gpu-interval 0.2"
UUID0 = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
UUID1 = "GPU-bbbbbbbb-0000-0000-0000-000000000000"


class FakeGpus:
    """Writes the fake NVML script; `set(...)` changes what the cards read from now on."""

    def __init__(self, path: Path, **script) -> None:
        self.path = path
        self.script = {
            "driver": "550.54.15", "cuda": 12040,
            "devices": [
                {"uuid": UUID0, "name": "Fake H100", "memory_total": 80e9, "energy_counter": True},
                {"uuid": UUID1, "name": "Fake L4", "memory_total": 24e9, "energy_counter": False},
            ],
            "readings": {"util": 0, "mem_used": 1e9, "power": 100.0, "temp": 40, "sm_clock": 1410},
            "processes": [],
            **script,
        }  # fmt: skip
        self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.script))
        os.replace(tmp, self.path)

    def set(self, **readings) -> None:
        self.script["readings"].update(readings)
        self.write()


@pytest.fixture
def gpus(tmp_path):
    return FakeGpus(tmp_path / "nvml.json")


@pytest.fixture
def gpu_kernel(start_kernel, gpus, kernel_env):
    def start(**env):
        path = os.pathsep.join([str(FAKE_NVML), kernel_env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        return start_kernel(PYTHONPATH=path, MLP_FAKE_NVML=str(gpus.path), **env)

    return start


def test_run_all_on_a_slow_gpu_driver_keeps_the_parameters_cell(gpu_kernel, gpus, store, tmp_path):
    """A driver without persistence mode takes a second or more in nvmlInit. "Run All" runs the
    parameters cell right after `%mlp_track`, and the next cell changes a parameter: the run must
    record the parameters cell's values, not miss it while the start-up capture probes the GPU
    (and then read the changed value from the namespace)."""
    gpus.script["init_delay_s"] = 1.5
    gpus.write()
    params = "lr = 0.1\nepochs = 3"
    nb = write_notebook(tmp_path / "train.ipynb", [
        {"id": "setup", "source": TRACK}, {"id": "params", "source": params, "tags": ["parameters"]},
        {"id": "use", "source": "lr = 99.0"},
    ])  # fmt: skip
    k = gpu_kernel(JPY_SESSION_NAME=str(nb))
    for source, cell_id in ((TRACK, "setup"), (params, "params"), ("lr = 99.0", "use")):
        assert k.run(source, cell_id=cell_id).status == "ok"
    assert k.run("%mlp_track stop").status == "ok"
    run = only_run(store)
    assert run["params"] == {"lr": 0.1, "epochs": 3}, run["params"]


def cell_gpu(store, cell_id):
    run = only_run(store)
    for cell in run["cells"]:
        if cell["cell_id"] == cell_id and cell["gpu"]:
            return cell["gpu"]
    return None


def test_cells_long_and_short_get_figures_sampled_during_the_cell(gpu_kernel, gpus, store):
    k = gpu_kernel()
    k.run(TRACK)
    gpus.set(util=[90, 30], mem_used=[20e9, 5e9], power=[300.0, 60.0])
    k.run("import time\ntime.sleep(1.2)", cell_id="train")
    long_cell = wait_for(lambda: cell_gpu(store, "train"), what="GPU figures of the long cell")
    gpus.set(util=[50, 10], power=[200.0, 40.0])
    k.run("import time\ntime.sleep(0.05)", cell_id="short")  # shorter than the interval
    short = wait_for(lambda: cell_gpu(store, "short"), what="GPU figures of the short cell")
    gpus.set(util=[0, 0], power=[50.0, 20.0])
    k.run("%mlp_track stop")

    assert long_cell["0"]["util_mean"] == pytest.approx(90, abs=1) and long_cell["1"][
        "util_mean"
    ] == pytest.approx(30, abs=1)
    assert long_cell["0"]["mem_peak"] == 20e9
    assert (
        long_cell["0"]["energy_source"] == "counter" and long_cell["1"]["energy_source"] == "power"
    )
    assert long_cell["0"]["energy_j"] == pytest.approx(300 * 1.2, rel=0.25)  # ~W x s
    assert long_cell["1"]["energy_j"] == pytest.approx(60 * 1.2, rel=0.25)
    assert short["0"]["util_max"] == pytest.approx(50, abs=1) and short["0"]["energy_j"] > 0

    run = only_run(store)
    train = next(c for c in run["cells"] if c["cell_id"] == "train")
    during = [
        s
        for s in series(store.connect(), run["id"], gpu=0)
        if train["started_at"] < s["time"] < train["started_at"] + train["duration"]
    ]
    assert len(during) >= 3  # the sampler keeps sampling while the cell runs (W&B's old bug)
    info = run["gpu"]
    assert (
        info["enabled"] and info["driver_version"] == "550.54.15" and info["cuda_version"] == "12.4"
    )
    assert [d["name"] for d in info["devices"]] == ["Fake H100", "Fake L4"]
    assert info["run"]["0"]["util_max"] == pytest.approx(90, abs=1)


def test_process_tree_memory_counts_the_kernel_and_its_children_only(gpu_kernel, gpus, store):
    k = gpu_kernel()
    k.run(TRACK)
    child = k.run(
        "import subprocess, sys\np = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\nprint(p.pid)"
    )
    child_pid = int(child.stdout.strip())
    gpus.script["processes"] = [
        {"pid": k.pid, "used_memory": 3e9, "gpu": 0, "type": "compute"},
        {"pid": child_pid, "used_memory": 2e9, "gpu": 0, "type": "compute"},
        {"pid": 1, "used_memory": 7e9, "gpu": 0, "type": "compute"},  # somebody else's process
    ]
    gpus.write()
    k.run("import time\ntime.sleep(0.5)", cell_id="alloc")
    figures = wait_for(lambda: cell_gpu(store, "alloc"), what="GPU figures")
    k.run("p.kill()")
    assert figures["0"]["proc_mem_peak"] == 5e9


def test_cuda_visible_devices_by_index_and_uuid(gpu_kernel, gpus, store):
    for visible, expected in (("1", ["Fake L4"]), (UUID0[:12], ["Fake H100"])):
        k = gpu_kernel(CUDA_VISIBLE_DEVICES=visible)
        k.run(TRACK)
        k.run("x = 1", cell_id="c")
        k.run("%mlp_track stop")
        run = run_store.get_run(store.connect(), run_store.list_runs(store.connect())[0]["id"])
        assert [d["name"] for d in run["gpu"]["devices"]] == expected, visible
        assert list(next(c for c in run["cells"] if c["cell_id"] == "c")["gpu"]) == ["0"]
        k.shutdown()


def test_an_nvml_failure_mid_run_is_noted_and_the_notebook_keeps_working(gpu_kernel, gpus, store):
    k = gpu_kernel()
    k.run(TRACK)
    k.run("x = 1", cell_id="before")
    # (the sampler's first figures reach the store with the next flush: slow on a loaded machine)
    wait_for(lambda: cell_gpu(store, "before"), timeout=30, what="figures before the failure")
    gpus.script["error"] = "GpuIsLost"
    gpus.write()
    for i in range(4):
        r = k.run(f"import time\ntime.sleep(0.3)\ny = {i}", cell_id=f"after-{i}")
        assert r.status == "ok" and "Traceback" not in r.stderr
    k.run("%mlp_track stop")
    run = only_run(store)
    assert len(run["cells"]) == 5 and all(c["status"] == "ok" for c in run["cells"])
    notes = " ".join(run["gpu"]["notes"])
    assert "GpuIsLost" in notes or "lost" in notes.lower()
    assert "stop" in notes.lower()  # three failures in a row stop sampling, with a note


def test_no_gpu_on_this_machine_is_recorded_once_with_the_reason(start_kernel, store):
    k = start_kernel()  # the real nvidia-ml-py: this machine has no NVIDIA driver
    k.run(TRACK)
    k.run("x = 1", cell_id="c")
    k.run("%mlp_track stop")
    run = only_run(store)
    assert run["gpu"]["enabled"] is False and "NVML" in run["gpu"]["reason"]
    assert run["cells"][0]["gpu"] is None


def test_no_gpu_flag_turns_sampling_off(gpu_kernel, gpus, store):
    k = gpu_kernel()
    k.run("%load_ext jupyter_mlp\n%mlp_track off --no-gpu")
    k.run("x = 1", cell_id="c")
    k.run("%mlp_track stop")
    run = only_run(store)
    assert run["gpu"] == {"enabled": False, "reason": "turned off (--no-gpu)"}
    assert run["cells"][0]["gpu"] is None


def test_runs_show_prints_gpu_figures(gpu_kernel, gpus, store):
    k = gpu_kernel()
    k.run(TRACK)
    gpus.set(util=[80, 80])
    k.run("import time\ntime.sleep(0.5)", cell_id="busy")
    wait_for(lambda: cell_gpu(store, "busy"), what="figures")
    k.run("%mlp_track stop")
    run_id = only_run(store)["id"]
    env = {**os.environ, "MLP_HOME": str(store.home)}
    shown = subprocess.run(
        [sys.executable, "-m", "jupyter_mlp.cli", "runs", "show", run_id],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "driver 550.54.15, CUDA 12.4" in shown and "GPU0 Fake H100" in shown
    assert "GPU0 80%" in shown
