"""The fused CPU kernel (BatchNorm -> max-pool -> ReLU) computes what the three modules compute.

The first test to load it compiles it (~30 s, once per machine; cached under TORCH_EXTENSIONS_DIR).
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import only_run_dir, run_main
from lenet_exp import compose, fused_cpu, perf
from lenet_exp.files import read_json
from lenet_exp.models import build_model
from lenet_exp.models.lenet5 import LeNet5


@pytest.fixture(scope="module")
def kernel():
    return fused_cpu.load_kernel()


def reference_and_fused(x: torch.Tensor, bn: nn.BatchNorm2d, grad: torch.Tensor,
                        layout: torch.memory_format = torch.contiguous_format):
    """(output, input grad, weight grad, bias grad, bn) of the modules and of the kernel, from equal copies;
    the kernel's input and gradient in ``layout`` (the modules' in NCHW, their most accurate)."""
    results = []
    for fused in (False, True):
        layer = copy.deepcopy(bn).train()
        inp = x.detach().clone(memory_format=layout if fused else torch.contiguous_format).requires_grad_()
        grad = grad.contiguous(memory_format=layout if fused else torch.contiguous_format)
        out = fused_cpu.bn_pool_relu(inp, layer) if fused else F.relu(F.max_pool2d(layer(inp), 2))
        out.backward(grad)
        results.append((out.detach(), inp.grad, layer.weight.grad, layer.bias.grad, layer))
    return results


def assert_close(a: torch.Tensor, b: torch.Tensor, what: str):
    scale = max(a.abs().max().item(), 1e-6)
    assert (a - b).abs().max().item() <= 2e-6 * scale + 1e-7, what


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("shape, ties", [
    ((64, 6, 28, 28), False),  # LeNet's first block at batch 64
    ((64, 16, 10, 10), False),  # and its second
    ((64, 48, 28, 28), False),  # the first block of 8 stacked trials
    ((8, 3, 12, 12), True),  # small integers: most windows hold equal values
    ((4, 3, 7, 9), False),  # odd sizes: the last row and column are not pooled
])
def test_kernel_matches_batchnorm_maxpool_relu(kernel, shape, ties, layout):
    torch.manual_seed(0)
    x = torch.randint(0, 3, shape).float() if ties else torch.randn(shape) * 3 + 1
    bn = nn.BatchNorm2d(shape[1])
    with torch.no_grad():  # some negative scales: then the pooled maximum is the smallest input
        bn.weight.copy_(torch.linspace(-1.0, 1.5, shape[1]))
        bn.bias.copy_(torch.linspace(0.5, -0.5, shape[1]))
        bn.running_mean.uniform_(-1, 1)
    grad = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    (out_r, gx_r, gw_r, gb_r, bn_r), (out_f, gx_f, gw_f, gb_f, bn_f) = reference_and_fused(x, bn, grad, layout)
    for result in (out_f, gx_f):  # the layout goes through: the next convolution reads it as it is
        assert result.is_contiguous(memory_format=layout)
    assert_close(out_r, out_f, "output")
    assert torch.equal(out_r > 0, out_f > 0)  # the same windows pass the ReLU
    assert_close(gx_r, gx_f, "input gradient")
    assert_close(gw_r, gw_f, "weight gradient")
    assert_close(gb_r, gb_f, "bias gradient")
    assert_close(bn_r.running_mean, bn_f.running_mean, "running mean")
    assert_close(bn_r.running_var, bn_f.running_var, "running variance")
    assert bn_f.num_batches_tracked.item() == bn_r.num_batches_tracked.item() == 1


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "channels_last"])
def test_ties_send_the_gradient_to_the_first_maximum_as_max_pool2d(kernel, layout):
    x = torch.ones(1, 2, 2, 4)  # two windows of equal values, in 2 channels
    x[0, :, 1, 3] = 5.0  # the second window has one clear maximum, bottom right
    bn = nn.BatchNorm2d(2)
    nn.init.constant_(bn.bias, 10.0)  # every window passes the ReLU
    (_, gx_r, *_), (_, gx_f, *_) = reference_and_fused(x, bn, torch.ones(1, 2, 1, 2), layout)
    assert_close(gx_r, gx_f, "input gradient")
    pooled = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]])  # where max_pool2d's indices point
    for channel in range(2):
        assert torch.equal((gx_f[0, channel] - gx_f[0, channel].min()) > 1e-3, pooled.bool())


def test_cumulative_momentum_matches_batchnorm(kernel):
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(4, momentum=None)
    fused_bn = copy.deepcopy(bn)
    for _ in range(3):
        x = torch.randn(8, 4, 6, 6)
        bn(x)
        fused_cpu.bn_pool_relu(x, fused_bn)
    assert_close(bn.running_mean, fused_bn.running_mean, "running mean")
    assert_close(bn.running_var, fused_bn.running_var, "running variance")


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "channels_last"])
def test_a_nan_input_gives_nan_outputs_so_divergence_is_seen(kernel, layout):
    x = torch.randn(2, 2, 4, 4).contiguous(memory_format=layout)
    x[1, 0, 3, 3] = float("nan")
    out = fused_cpu.bn_pool_relu(x, nn.BatchNorm2d(2))
    assert out[:, 0].isnan().all() and not out[:, 1].isnan().any()  # channel 0's statistics are NaN


def test_fused_model_trains_like_the_modules(kernel):
    torch.manual_seed(0)
    plain = LeNet5()
    fused = copy.deepcopy(plain)
    assert perf.fuse_cpu_blocks(fused) == 2
    x, y = torch.randn(64, 1, 32, 32), torch.randint(0, 10, (64,))
    for model in (plain, fused):
        F.cross_entropy(model(x), y).backward()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters()):
        assert_close(p.grad, q.grad, f"gradient of {name}")
    for (name, a), b in zip(plain.state_dict().items(), fused.state_dict().values()):
        assert_close(a.float(), b.float(), name)  # same keys, same running statistics
    fused.load_state_dict(plain.state_dict())
    plain.eval(), fused.eval()
    with torch.no_grad():  # eval mode takes the modules: identical
        assert torch.equal(plain(x), fused(x))


def test_only_conv_batchnorm_maxpool_relu_blocks_fuse():
    assert len(perf.fusable_blocks(LeNet5())) == 2
    for kwargs in ({"batch_norm": False}, {"pooling": "avg"}, {"activation": "tanh"}):
        model = LeNet5(**kwargs)
        assert perf.fuse_cpu_blocks(model) == 0 and not perf.fusable_blocks(model)


def test_run_uses_the_kernel_on_the_cpu_and_can_turn_it_off(kernel, fast, tmp_path):
    """On by default, in channels_last (its faster loops); off, the run trains NCHW standard layers."""
    for setting, expected in (("null", True), ("false", False)):
        cwd = tmp_path / setting
        cwd.mkdir()
        result = run_main([*fast, f"trainer.fused_cpu_kernels={setting}"], cwd=cwd)
        assert result.returncode == 0, result.stderr
        metrics = read_json(only_run_dir(cwd) / "metrics.json")
        assert metrics["fused_cpu_kernels"] is metrics["channels_last"] is expected
        assert ("Fused CPU kernels" in result.stderr) is expected


@pytest.mark.parametrize("overrides, stacked, expected", [
    ([], False, True),
    (["model=lenet5_classic"], False, False),  # nothing to fuse: oneDNN's NCHW convolutions are the faster
    (["trainer.channels_last=false"], False, False),
    (["model=lenet5_classic", "trainer.channels_last=true"], False, True),
    # a stacked group's grouped convolutions are faster in channels_last, with or without the kernel
    (["trainer.fused_cpu_kernels=false"], True, True),
    (["trainer.channels_last=false"], True, False),
])
def test_channels_last_is_on_for_the_cpu_where_the_kernel_or_a_group_trains(kernel, overrides, stacked, expected):
    cfg = compose("device=cpu", *overrides)
    model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size)
    assert perf.decide(cfg.trainer, model, torch.device("cpu"), stacked).channels_last is expected


@pytest.mark.parametrize("overrides, stacked, expected", [
    ([], False, True),
    ([], True, False),  # cuDNN's grouped convolutions: 1.1-1.3x as fast in NCHW (benchmarks/stack_kernels.py)
    (["trainer.channels_last=true"], True, True),
])
def test_channels_last_on_cuda_is_a_single_runs_and_not_a_groups(overrides, stacked, expected):
    """Decided from the config and the device alone: no GPU needed to check it."""
    cfg = compose("device=cuda", "trainer.cuda_graphs=false", *overrides)
    model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size)
    assert perf.decide(cfg.trainer, model, torch.device("cuda"), stacked).channels_last is expected


@pytest.mark.parametrize("overrides, stacked, expected", [
    ([], False, False),  # a single run's standard convolutions: no faster autotuned (docs/speed.md)
    ([], True, True),  # a group's grouped ones: its 16-trial sweep 0.89x the wall time (benchmarks/README.md)
    (["trainer.cudnn_benchmark=true"], False, True),
    (["trainer.cudnn_benchmark=false"], True, False),
    (["trainer.deterministic=true"], True, False),  # the algorithm cuDNN's timing picks may differ run to run
])
def test_cudnn_autotunes_a_groups_convolutions_and_not_a_single_runs(overrides, stacked, expected, monkeypatch):
    cfg = compose("device=cuda", "trainer.cuda_graphs=false", *overrides)
    model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", not expected)  # put back after the test
    perf.decide(cfg.trainer, model, torch.device("cuda"), stacked)
    assert torch.backends.cudnn.benchmark is expected


def test_a_kernel_that_cannot_compile_is_skipped_with_a_warning_or_refused_when_asked_for(kernel, fast, tmp_path,
                                                                                          monkeypatch):
    def run(name: str, *overrides: str, env=None):
        """A run with a fresh extensions directory, so nothing is cached, and a compiler that always fails.
        It tries a build of its own: this process's loaded kernel is set aside for it (and back after the
        test, so that torch, which renames a kernel built in another directory, never builds it again)."""
        monkeypatch.setattr(fused_cpu, "load_kernel", functools.lru_cache(fused_cpu.load_kernel.__wrapped__))
        cwd = tmp_path / name
        cwd.mkdir()
        return cwd, run_main([*fast, *overrides], cwd=cwd,
                             env=env or {"TORCH_EXTENSIONS_DIR": str(cwd / "extensions"), "CXX": "false"})

    cwd, result = run("default")
    assert result.returncode == 0, result.stderr
    assert "could not be compiled here" in result.stderr and "trainer.fused_cpu_kernels=false" in result.stderr
    assert read_json(only_run_dir(cwd) / "metrics.json")["fused_cpu_kernels"] is False

    _, result = run("required", "trainer.fused_cpu_kernels=true")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "could not be compiled here" in result.stderr and "Install g++ and ninja" in result.stderr

    # torch's own default folder (XDG_CACHE_HOME's) that cannot be made: no compiler would help
    (tmp_path / "a file").write_text("")
    _, result = run("unwritable", "trainer.fused_cpu_kernels=true",
                    env={"TORCH_EXTENSIONS_DIR": "", "XDG_CACHE_HOME": str(tmp_path / "a file")})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"its build folder {tmp_path / 'a file' / 'torch_extensions'}/lenet_exp_" in result.stderr, result.stderr
    assert "Set TORCH_EXTENSIONS_DIR to a folder you can write" in result.stderr and "g++" not in result.stderr


FAILING_COMPILE = """case "$*" in *" -c "*)
  echo "bn_pool_relu.cpp:12:5: error: 'foo' was not declared in this scope" >&2; exit 1;; esac
exec c++ "$@"
"""
FAILING_LINK = """case "$*" in *--version*|*-dumpversion*) exec c++ "$@";; esac
case "$*" in *" -c "*)  # an empty object file and its dependencies: no 30 s compile
  previous=""; for arg in "$@"; do [ "$previous" = -o ] && : > "$arg"; [ "$previous" = -MF ] && echo "x:" > "$arg"
  previous="$arg"; done; exit 0;; esac
echo "/usr/bin/ld: cannot find -lc10: No such file or directory" >&2
echo "collect2: error: ld returned 1 exit status" >&2; exit 1
"""


@pytest.mark.parametrize("script, said", [
    (FAILING_COMPILE, "bn_pool_relu.cpp:12:5: error: 'foo' was not declared in this scope"),
    (FAILING_LINK, "/usr/bin/ld: cannot find -lc10: No such file or directory"),  # not collect2's line after it
], ids=["compile", "link"])
def test_a_failed_build_is_reported_by_its_error_not_its_command(kernel, tmp_path, monkeypatch, script, said):
    """A real build through torch and ninja, whose compiler (c++ behind a script) stops on an error in the
    source, or whose linker does: the reason names that error, where ninja's first line is a screenful of the
    command's flags."""
    compiler = tmp_path / "failing-c++"
    compiler.write_text("#!/bin/sh\n" + script)
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "extensions"))
    with pytest.raises(fused_cpu.KernelUnavailable) as failed:
        fused_cpu.load_kernel.__wrapped__()  # not the cached kernel: a build of its own
    assert str(failed.value).endswith(said)


def test_a_stale_build_lock_is_removed_and_a_live_one_waited_for(tmp_path):
    lock = tmp_path / "lock"
    lock.touch()
    old = time.time() - fused_cpu.STALE_LOCK_S - 1
    os.utime(lock, (old, old))  # left behind by a build that was killed
    fused_cpu.wait_for_other_build(lock)
    assert not lock.exists()

    lock.touch()  # another process is compiling: it removes its lock when done
    released = threading.Event()

    def finish_build():
        released.set()
        lock.unlink()

    threading.Timer(1.0, finish_build).start()
    started = time.perf_counter()
    fused_cpu.wait_for_other_build(lock)
    assert released.is_set()  # it waited for the build, and no longer than the stale limit
    assert time.perf_counter() - started < fused_cpu.STALE_LOCK_S
