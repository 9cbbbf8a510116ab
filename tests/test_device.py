"""Device choice and the CPU threads and GPU a job gets among jobs launched together."""

from __future__ import annotations

import torch
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from conftest import RUN_PY
from lenet_exp.config import register_configs

from lenet_exp.device import resolve_device
from lenet_exp.launch import JobSlot
from lenet_exp.launch import job_slot


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


def test_submitit_jobs_take_the_cores_reserved_for_them():
    hydra = hydra_cfg(RunMode.MULTIRUN, "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=3")
    assert job_slot(hydra) == JobSlot(number=3, threads=3)


def test_cpu_threads_follow_the_slot_unless_the_config_sets_them():
    before = torch.get_num_threads()
    try:
        # the launcher's reservation (submitit's cpus_per_task), as it is
        resolve_device(OmegaConf.create({"type": "cpu", "threads": None}), JobSlot(threads=3))
        assert torch.get_num_threads() == 3
        resolve_device(OmegaConf.create({"type": "cpu", "threads": 1}), JobSlot(threads=3))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


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
