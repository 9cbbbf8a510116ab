"""Device choice and the CPU threads and GPU a job gets among jobs launched together."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from conftest import RUN_PY, run_main
from lenet_exp.config import register_configs

from lenet_exp.device import keep_freed_memory, resolve_device
from lenet_exp import launch, slots
from lenet_exp.slots import JobSlot
from lenet_exp.slots import job_slot


def hydra_cfg(mode: RunMode, *overrides: str, num: int = 3):
    """The Hydra config that run.py composes with these overrides (real launcher configs), as job ``num``."""
    register_configs()
    with initialize_config_dir(config_dir=str(RUN_PY.parent / "configs"), version_base="1.3"):
        hydra = compose("config", overrides=list(overrides), return_hydra_config=True).hydra
    with open_dict(hydra):
        hydra.mode, hydra.job.num = mode, num
    return hydra


def test_a_single_run_has_the_machine_to_itself():
    assert job_slot(hydra_cfg(RunMode.RUN)) == JobSlot()


def test_joblib_jobs_share_the_cores():
    hydra = hydra_cfg(RunMode.MULTIRUN, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert job_slot(hydra) == JobSlot(number=3, parallel=2)


@pytest.mark.parametrize("n_jobs, workers", [("-1", lambda cores: cores), ("-2", lambda cores: max(1, cores - 1)),
                                             ("-1000", lambda cores: 1)])
def test_joblib_jobs_share_the_cores_among_the_workers_joblib_runs(n_jobs, workers):
    """As joblib reads n_jobs: -2 is every core but one (it was taken as every core)."""
    hydra = hydra_cfg(RunMode.MULTIRUN, "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}")
    assert job_slot(hydra).parallel == workers(slots.available_cores())


def test_submitit_jobs_take_the_cores_reserved_for_them():
    hydra = hydra_cfg(RunMode.MULTIRUN, "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=3")
    assert job_slot(hydra) == JobSlot(number=3, threads=3)


def test_a_stacked_launchers_submitit_jobs_take_the_cores_reserved_for_them():
    """Also a job that trains alone in one of them; in this process (no cluster) the setting means nothing."""
    reserved = ("hydra/launcher=stacked", "hydra.launcher.submitit.cpus_per_task=1")
    assert job_slot(hydra_cfg(RunMode.MULTIRUN, *reserved, "hydra.launcher.submitit.cluster=local")) == \
        JobSlot(number=3, threads=1)
    assert job_slot(hydra_cfg(RunMode.MULTIRUN, *reserved)) == JobSlot(number=3)


@pytest.mark.parametrize("overrides, launching", [
    ((), slots.Launching()),
    (("hydra/launcher=joblib",), slots.Launching(joblib=True)),
    (("hydra/launcher=submitit_local",), slots.Launching(submitit="local")),
    (("hydra/launcher=submitit_slurm",), slots.Launching(submitit="slurm")),
    (("hydra/launcher=slurm",), slots.Launching(submitit="slurm")),
    (("hydra/launcher=stacked",), slots.Launching(stacked=True)),
    (("hydra/launcher=stacked", "hydra.launcher.submitit.cluster=local"),
     slots.Launching(stacked=True, submitit="local")),
    (("hydra/launcher=stacked_slurm",), slots.Launching(stacked=True, submitit="slurm")),
], ids=["basic", "joblib", "submitit_local", "submitit_slurm", "slurm", "stacked", "stacked_local", "stacked_slurm"])
def test_what_runs_a_sweeps_jobs_is_read_from_each_launchers_own_config(overrides, launching):
    """One reading of hydra.launcher for what decides by the launcher (a stop's reach, the cores, Slurm)."""
    assert slots.Launching.of(hydra_cfg(RunMode.MULTIRUN, *overrides).launcher) == launching


def test_signal_handlers_taken_over_are_handed_back_even_where_taking_them_failed():
    """handled_by: the handlers before it come back after its context, after an error inside it, and where
    setting one of them failed half-way; off the main thread, where none can be set, it sets none."""
    import signal
    import threading

    def mine(signum, frame):
        pass

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ZeroDivisionError):
        with launch.handled_by(mine, [signal.SIGTERM]):
            assert signal.getsignal(signal.SIGTERM) is mine
            1 / 0
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(OSError):  # SIGKILL has no handler: SIGTERM's was set already
        with launch.handled_by(mine, [signal.SIGTERM, signal.SIGKILL]):
            pass
    assert signal.getsignal(signal.SIGTERM) is before
    inside = []

    def in_a_thread():
        with launch.handled_by(mine, [signal.SIGTERM]):
            inside.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert inside == [before]


def test_a_stopped_job_returns_to_its_launcher_only_from_a_process_of_its_own(monkeypatch):
    """A joblib worker's or submitit job's stopped job returns its result; one in run.py itself (the basic
    launcher, joblib with n_jobs=1) took the signal in run.py's stead and ends the process."""
    monkeypatch.setenv(launch.LAUNCHER_PID_VARIABLE, "1")  # started by another process's run.py
    assert launch.stopped_job_returns()
    monkeypatch.setenv(launch.LAUNCHER_PID_VARIABLE, str(os.getpid()))
    assert not launch.stopped_job_returns()
    monkeypatch.delenv(launch.LAUNCHER_PID_VARIABLE)  # the Python API: no run.py
    assert not launch.stopped_job_returns()


def test_cpu_threads_follow_the_slot_unless_the_config_sets_them():
    before = torch.get_num_threads()
    try:
        # the launcher's reservation (submitit's cpus_per_task), as it is where there are the cores
        resolve_device(OmegaConf.create({"type": "cpu", "threads": None}), JobSlot(threads=2))
        assert torch.get_num_threads() == min(2, slots.available_cores())
        resolve_device(OmegaConf.create({"type": "cpu", "threads": 1}), JobSlot(threads=2))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_omp_num_threads_caps_a_jobs_share_of_the_cores_but_not_what_the_config_asks(monkeypatch):
    """The environment's usual cap (a shared machine, a container's CPU quota) holds where no setting says
    otherwise; device.threads and the launcher's reservation are the user's own word."""
    before = torch.get_num_threads()
    monkeypatch.delenv(launch.USERS_OMP_VARIABLE, raising=False)  # no run.py started this process
    try:
        cores = slots.available_cores()
        for value, allowed, threads in (("1", 1, 1), ("1,1", 1, 1), ("64", 64, cores), ("", None, cores),
                                        ("x", None, cores)):
            monkeypatch.setenv("OMP_NUM_THREADS", value)
            assert slots.omp_num_threads() == allowed
            resolve_device(OmegaConf.create({"type": "cpu", "threads": None}), JobSlot())
            assert torch.get_num_threads() == threads
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        resolve_device(OmegaConf.create({"type": "cpu", "threads": 2}), JobSlot())
        assert torch.get_num_threads() == min(2, slots.available_cores())
        # a job of run.py's keeps run.py's own (none here), not the one joblib gives its workers
        monkeypatch.setenv(launch.USERS_OMP_VARIABLE, "")
        assert slots.omp_num_threads() is None
    finally:
        torch.set_num_threads(before)


def test_a_jobs_env_set_omp_num_threads_caps_its_threads(fast, tmp_path):
    """Hydra's way to set a job's environment (hydra.job.env_set) was overruled by run.py's own OMP_NUM_THREADS,
    kept for its jobs before Hydra set the job's."""
    from lenet_exp.files import read_json

    result = run_main([*fast, "+hydra.job.env_set.OMP_NUM_THREADS=1", "hydra.run.dir=run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_json(tmp_path / "run" / "metrics.json")["device"] == "CPU (1 thread)"


def test_determinism_is_set_per_job_not_left_over_from_the_last():
    """A joblib worker runs several jobs in one process: trainer.deterministic must not leak between them."""
    from lenet_exp.parts import seed_everything

    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        seed_everything(1, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    finally:
        seed_everything(0, deterministic=False)


PAGE_FAULTS_OF_STEPS = """
import resource, sys
import torch
import torch.nn.functional as F
from lenet_exp.device import keep_freed_memory
from lenet_exp.models.lenet5 import LeNet5

if sys.argv[1] == "kept":
    assert keep_freed_memory()
batch, steps = int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = LeNet5()
optimizer = torch.optim.Adam(model.parameters())
x, y = torch.randn(batch, 1, 32, 32), torch.randint(0, 10, (batch,))
faults = []
for _ in range(steps):  # training steps of LeNet-5, with the standard layers
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[steps // 2:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_cpu_device_keeps_freed_memory_for_reuse():
    keep_freed_memory.cache_clear()
    before = torch.get_num_threads()
    try:
        resolve_device(OmegaConf.create({"type": "cpu", "threads": None}), JobSlot())
    finally:
        torch.set_num_threads(before)
    assert keep_freed_memory.cache_info().currsize == 1 and keep_freed_memory()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_cpu_steps_reuse_the_memory_the_last_step_freed():
    """Page faults of the second half of a run of training steps, in fresh processes (the allocator's history
    counts). At batch 2048 the first layer's output is 38.5 MB, as a stacked group of 32 trials' is, over
    glibc's largest mmap threshold (32 MiB): by default about 50,000 faults per step, as each step's
    activations get new pages; with freed memory kept for reuse (what a CPU run sets), next to none. At
    batch 64 glibc's own threshold sometimes keeps the blocks too, so only the kept case is asserted there."""
    faults = {}
    for setting, batch, steps in (("default", 2048, 12), ("kept", 2048, 12), ("kept", 64, 40)):
        result = subprocess.run([sys.executable, "-c", PAGE_FAULTS_OF_STEPS, setting, str(batch), str(steps)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        faults[setting, batch] = int(result.stdout)
    # kept: 0 most times, up to ~10,000 where the heap grows once more late in the run
    assert faults["default", 2048] > 200_000 and faults["kept", 2048] < 30_000 and faults["kept", 64] < 2000, faults
