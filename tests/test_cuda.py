"""The CUDA path: graph replay trains like eager steps, and run.py trains on the GPU.

Skipped where torch sees no CUDA GPU (CI); run on a GPU machine with `python -m pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from conftest import fast_overrides, only_run_dir, run_cli
from lenet_exp.augment import build_augment
from lenet_exp.data import Split
from lenet_exp.engine import TrainStep, evaluate, random_order, train_epoch
from lenet_exp.files import read_json
from lenet_exp.models import build_model
from lenet_exp.config import AffineConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def train_twice(cuda_graph: bool, epochs: int = 2):
    """Two epochs of a dropout model with mirrored, shifted and rotated batches; returns (model, results)."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    data = torch.Generator(device=device).manual_seed(1)
    split = Split(torch.randn(660, 1, 32, 32, device=device, generator=data),  # 10 full batches and one of 20
                  torch.randint(0, 10, (660,), device=device, generator=data))
    model = build_model(OmegaConf.create({"_target_": "lenet_exp.models.lenet5.LeNet5", "dropout": 0.2}), 10, 32).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    generator = torch.Generator(device=device).manual_seed(2)
    acfg = OmegaConf.structured(AffineConfig(hflip=True, degrees=10.0, translate=0.1, scale=[1.0, 1.0], shear=0.0,
                                                     erase_p=0.0))
    step = TrainStep(model, split, 64, label_smoothing=0.1, augment=build_augment(acfg, -0.4, generator),
                     cuda_graph=cuda_graph, generators=[generator])
    results = [train_epoch(step, optimizer, random_order(step, generator))[0] for _ in range(epochs)]
    return model, step, results, split


def test_graph_replay_trains_like_eager_steps():
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        eager_model, _, eager, split = train_twice(cuda_graph=False)
        graph_model, step, graphed, _ = train_twice(cuda_graph=True)
    finally:  # the other tests of this process get cuDNN as they found it
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved
    assert step.graph is not None  # captured after the warm-up steps, replayed for the other full batches
    for a, b in zip(eager, graphed):
        assert a.samples == b.samples == 660
        assert a.loss == pytest.approx(b.loss, rel=1e-4) and a.acc == pytest.approx(b.acc, abs=2 / 660)
    # same random augmentation and dropout per replay, same gradients, same optimizer steps
    for (name, a), b in zip(eager_model.state_dict().items(), graph_model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-4), name
    assert evaluate(graph_model, split, 200).acc == pytest.approx(evaluate(eager_model, split, 200).acc, abs=2 / 660)


def test_run_py_trains_on_the_gpu_with_graphs(tiny_root, tmp_path):
    overrides = [o for o in fast_overrides(tiny_root) if o != "device=cpu"]
    result = run_cli(overrides + ["device=cuda", "trainer.epochs=2", "trainer.ema_decay=0.9", "scheduler=onecycle"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CUDA graphs" in result.stderr
    metrics = read_json(only_run_dir(tmp_path) / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_done"] == 2 and metrics["cuda_graphs"] is True
    assert metrics["device"] == torch.cuda.get_device_name(0)


def test_deterministic_run_on_the_gpu_repeats_exactly(tiny_root, tmp_path):
    overrides = [o for o in fast_overrides(tiny_root) if o != "device=cpu"]
    histories = []
    for attempt in ("first", "second"):
        result = run_cli(overrides + ["device=cuda", "trainer.deterministic=true", "augment=affine",
                                      f"hydra.run.dir={tmp_path / attempt}"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        history = read_json(tmp_path / attempt / "metrics.json")["history"]
        histories.append([{k: v for k, v in row.items() if not k.startswith("time/")} for row in history])
    assert histories[0] == histories[1]


def test_a_stacked_group_replays_one_graph_and_trains_each_trial_as_alone(tiny_root, tmp_path):
    from conftest import run_main
    from test_stacked import STACKED, assert_same_run, job_dirs, train_alone

    # SGD: cuDNN sums a group's convolutions in other orders than a single model's, and Adam, which scales
    # near-zero gradients up to full steps, makes two runs of that rounding within 2 epochs (on an H200:
    # val losses up to 1.5 % apart); with SGD the same 4 trials stayed within 7e-6. Adam's stacked update
    # is compared with torch's on the CPU (test_stacked.py).
    base = [o for o in fast_overrides(tiny_root) if o != "device=cpu"] + [
        "device=cuda", "trainer.epochs=2", "trainer.deterministic=true", "augment=affine", "trainer.log_images=false",
        "optimizer=sgd", "optimizer.momentum=0.9"]
    result = run_main([*STACKED, *base, "optimizer.lr=1e-3,3e-3", "seed=0,1", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = job_dirs(tmp_path / "sweep")
    for job in jobs:
        metrics = read_json(job / "metrics.json")
        assert metrics["cuda_graphs"] is True and metrics["stacked_with"] == [0, 1, 2, 3]
    for job in jobs:
        assert_same_run(read_json(job / "metrics.json"), train_alone(job, base, tmp_path))


def test_a_stacked_trials_dropout_on_the_gpu_is_its_own_whatever_it_is_stacked_with(tiny_root, tmp_path):
    """F.dropout's GPU kernel draws otherwise than a group's per-trial masks, so a trial's masks are not its
    single run's there; they still come from its own seed alone (in one captured graph, one data order)."""
    from test_stacked import assert_same_run, one_trial_in_two_groups

    base = [o for o in fast_overrides(tiny_root) if o != "device=cpu"] + [
        "device=cuda", "trainer.epochs=2", "trainer.deterministic=true", "model.dropout=0.3", "trainer.log_images=false"]
    with_1, with_2 = one_trial_in_two_groups(base, tmp_path)
    assert with_1["cuda_graphs"] is True
    assert_same_run(with_1, with_2, tolerance=1e-3)  # cuDNN may sum a group's convolutions in other orders


def test_the_stacked_optimizer_steps_each_trial_as_its_own_torch_optimizer_on_the_gpu():
    """Its per-trial scalars reach the GPU in one pinned, asynchronous copy a step: each step's, not a stale one."""
    from test_stacked import check_the_stacked_optimizer, torch_optimizers

    for _, make in torch_optimizers():
        check_the_stacked_optimizer(make, "cuda")
