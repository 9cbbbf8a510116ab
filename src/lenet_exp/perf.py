"""The one place that decides the fast paths of a run and swaps modules for them.

The model stays a plain ``nn.Module``; from the ``trainer.*`` knobs and the device this module decides
channels_last weights, ``torch.compile``, CUDA graphs, cuDNN's autotuner and the fused CPU kernel
(BatchNorm + max-pool + ReLU in one pass, ``fused_cpu.py``), and applies them to the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from lenet_exp import fused_cpu
from lenet_exp.errors import ConfigError, DeviceError
from lenet_exp.validation import cuda_graphs_refused

log = logging.getLogger(__name__)


@dataclass
class FastPaths:
    channels_last: bool
    compile: bool
    cuda_graphs: bool
    graph_fallback: bool  # a failed graph capture trains on eagerly (null asked for "where it works")
    fused_cpu_kernels: bool


def fusable_blocks(model: nn.Module) -> list[tuple[nn.Sequential, int]]:
    """(container, index) of each BatchNorm2d followed by a 2x2 max-pool and a ReLU in a Sequential."""
    found = []
    for container in model.modules():
        if isinstance(container, nn.Sequential):
            layers = list(container)
            for i in range(len(layers) - 2):
                bn, pool, act = layers[i:i + 3]
                if (type(bn) is nn.BatchNorm2d and isinstance(pool, nn.MaxPool2d) and isinstance(act, nn.ReLU)
                        and pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2))
                        and pool.padding in (0, (0, 0)) and pool.dilation in (1, (1, 1)) and not pool.ceil_mode):
                    found.append((container, i))
    return found


def fuse_cpu_blocks(model: nn.Module) -> int:
    """Swap each BatchNorm -> max-pool -> ReLU run for the fused module; returns how many were swapped."""
    blocks = fusable_blocks(model)
    for container, i in blocks:
        container[i] = fused_cpu.FusedBatchNormMaxPoolReLU.replacing(container[i])
        container[i + 1] = container[i + 2] = nn.Identity()
    return len(blocks)


def _use_cuda_graphs(tcfg, device: torch.device) -> bool:
    """``trainer.cuda_graphs``: null means on for a CUDA device unless ``trainer.compile`` is on."""
    if tcfg.cuda_graphs is None:
        return device.type == "cuda" and not tcfg.compile
    if tcfg.cuda_graphs and device.type != "cuda":
        raise cuda_graphs_refused(device.type)
    return tcfg.cuda_graphs


def fused_kernel_blocker(tcfg, model: nn.Module, device_type: str) -> Optional[str]:
    """What keeps the fused CPU kernel from this run, or None."""
    return (f"this {device_type} device: the kernel is for CPU training" if device_type != "cpu"
            else "this model: it fuses conv -> BatchNorm -> max-pool -> ReLU blocks" if not fusable_blocks(model)
            else "trainer.compile=true, which compiles the blocks itself" if tcfg.compile
            else "trainer.precision=bf16: the kernel is float32" if tcfg.precision != "fp32"
            else None)


def fused_kernel_refused(blocker: str) -> ConfigError:
    return ConfigError("trainer.fused_cpu_kernels", True, f"false or null with {blocker}")


def refuse_a_blocked_fused_kernel(cfg) -> None:
    """``trainer.fused_cpu_kernels=true`` where it cannot apply: refused from the config (validate), not once the
    data has loaded."""
    from lenet_exp.device import wants_cuda
    from lenet_exp.models import build_model

    model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size)
    blocker = fused_kernel_blocker(cfg.trainer, model, "cuda" if wants_cuda(str(cfg.device.type)) else "cpu")
    if blocker:
        raise fused_kernel_refused(blocker)


def _use_fused_cpu_kernels(tcfg, model: nn.Module, device: torch.device) -> bool:
    """``trainer.fused_cpu_kernels``: null means on for CPU training wherever the kernel compiles."""
    wanted = tcfg.fused_cpu_kernels
    if wanted is False:
        return False
    blocker = fused_kernel_blocker(tcfg, model, device.type)
    if blocker:
        if wanted:
            raise fused_kernel_refused(blocker)
        return False
    try:
        fused_cpu.load_kernel()
    except fused_cpu.KernelUnavailable as error:
        if wanted:
            raise DeviceError(f"The fused CPU kernel could not be compiled here ({error}). {error.fix}, "
                              f"or train without it: trainer.fused_cpu_kernels=false.") from error
        log.warning("The fused CPU kernel could not be compiled here (%s); training with the standard layers. "
                    "trainer.fused_cpu_kernels=false skips the attempt.", error)
        return False
    return True


def decide(tcfg, model: nn.Module, device: torch.device, stacked: bool = False) -> FastPaths:
    """What this run (or ``stacked`` group) uses, from the knobs (null: where it helps) and what the device
    and model allow. On CUDA it also turns cuDNN's autotuner on or off for the process, as decided."""
    if device.type == "cuda":
        # fixed shapes, so cuDNN can time its algorithms once per shape (never when deterministic): a group's
        # grouped convolutions gain from it, a single run's standard ones do not (docs/speed.md)
        autotuned = stacked if tcfg.cudnn_benchmark is None else tcfg.cudnn_benchmark
        torch.backends.cudnn.benchmark = autotuned and not tcfg.deterministic
    fused_cpu_kernels = _use_fused_cpu_kernels(tcfg, model, device)
    # null: on for a CUDA run, and on the CPU with the fused kernel, whose channels_last loops are the faster
    # ones (oneDNN's channels_last convolutions without it are slower than NCHW: docs/speed.md). A stacked
    # group's grouped convolutions are faster in it on the CPU even without the kernel (-20 to -35 % of a step
    # at N = 8), and slower on CUDA: cuDNN ran its captured step 1.1-1.3x as fast in NCHW (H200, N = 8-32,
    # autotuned, benchmarks/stack_kernels.py)
    if tcfg.channels_last is not None:
        channels_last = tcfg.channels_last
    elif stacked:
        channels_last = device.type == "cpu"
    else:
        channels_last = device.type == "cuda" or fused_cpu_kernels
    return FastPaths(
        channels_last=channels_last,
        compile=tcfg.compile,
        cuda_graphs=_use_cuda_graphs(tcfg, device),
        graph_fallback=tcfg.cuda_graphs is None,
        fused_cpu_kernels=fused_cpu_kernels,
    )


def apply(paths: FastPaths, model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(the model with its modules swapped in place, the module to call forward on: compiled or itself)."""
    if paths.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if paths.fused_cpu_kernels:
        fuse_cpu_blocks(model)
        log.info("Fused CPU kernels: each conv block's BatchNorm, max-pool and ReLU train in one pass")
    if paths.cuda_graphs:
        log.info("CUDA graphs: each full training batch replays one captured graph")
    if paths.compile:
        fused_cpu.quiet_cpp_extension()  # imported now, before compiling the first step would, with its warning
        import torch._inductor.config as inductor

        # dropout's masks as eager draws them (Inductor's own generator drew others): compile stays a speed setting
        inductor.fallback_random = True
    return model, torch.compile(model) if paths.compile else model
