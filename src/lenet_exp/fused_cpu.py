"""BatchNorm -> max-pool -> ReLU of a LeNet block as one C++ kernel for CPU training.

On the CPU, ATen runs a block's BatchNorm, 2x2 max-pool and ReLU as separate kernels, and its max-pool
is scalar code: together about a third of a training step at batch 64. ``csrc/bn_pool_relu.cpp`` does
each direction in one vectorised pass (1.2x per whole step, ``benchmarks/cpu_knobs.py``), with the same
results to float rounding (``tests/test_fused_cpu.py``). It reads NCHW and channels_last (the layout a
CPU run trains in with it; those loops run over each pixel's contiguous channels) and answers in the
same layout.

The kernel is compiled by ``torch.utils.cpp_extension`` the first time it is needed on a machine (about
30 s with g++ and ninja) and cached under ``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``),
in a folder named by a hash of what the build depends on (:func:`build_inputs`).
Eval mode, other devices, other dtypes and ``torch.compile`` use the ordinary modules.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "bn_pool_relu.cpp"
# -fno-trapping-math lets GCC turn the float comparisons into vector selects; no result changes
CFLAGS = ["-O3", "-fopenmp", "-fno-trapping-math"]
# older torch waits without end for the lock file of a build that was killed (SIGKILL, out of memory);
# a build takes ~30 s, so a lock this old is taken to be stale
STALE_LOCK_S = 180


class KernelUnavailable(RuntimeError):
    """The fused kernel could not be built or loaded here (no compiler, no ninja, ...); ``fix`` says what
    would make it available."""

    def __init__(self, reason: str, fix: str = "Install g++ and ninja"):
        super().__init__(reason)
        self.fix = fix


def build_inputs() -> dict[str, str]:
    """Everything the compiled module depends on. The build command holds absolute paths, so it names
    the source's copy inside the build folder and torch's own install, never this checkout's path."""
    return {
        "source": hashlib.sha256(SOURCE.read_bytes()).hexdigest(),
        "flags": " ".join(CFLAGS),
        # the headers and ABI it compiles against, not sys.executable: `python` and `python3` share a build
        "python": f"{sysconfig.get_config_var('EXT_SUFFIX')} {sysconfig.get_paths()['include']}",
        "torch": f"{torch.__version__} {Path(torch.__file__).parent}",
        "compiler": os.environ.get("CXX", "c++"),
    }


def build_directory() -> Path:
    """One folder per set of build inputs: two checkouts of the same source share a build, and two
    virtualenvs (another torch, another Python) each keep their own instead of rebuilding in turn."""
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or extensions_cache())
    digest = hashlib.sha256(json.dumps(build_inputs(), sort_keys=True).encode()).hexdigest()[:16]
    return root / f"lenet_exp_{sys.implementation.cache_tag}_torch{torch.__version__.replace('+', '_')}_{digest}"


def extensions_cache() -> Path:
    """The user's cache folder for torch's extensions, as torch's own default: under XDG_CACHE_HOME where set."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch_extensions"


def wait_for_other_build(lock: Path) -> None:
    """Let another process finish compiling; remove its lock at once if it is stale (that process died)."""
    announced = False
    while True:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        if age > STALE_LOCK_S:
            lock.unlink(missing_ok=True)
            return
        if not announced:
            log.info("Waiting for another process that compiles the fused CPU kernel (%s)", lock)
            announced = True
        time.sleep(0.5)


def quiet_cpp_extension():
    """``torch.utils.cpp_extension``, whose import warns of a missing CUDA runtime on a machine without one:
    nothing to C++ for the CPU (this kernel's, torch.compile's), and printed past the run's own logging."""
    cpp_log = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_log.level
    cpp_log.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        cpp_log.setLevel(level)
    return cpp_extension


LINKER_SAYS = ("ld: ", "/usr/bin/ld: ")  # its lines start so: "cannot find -lc10", "undefined reference to ..."


def what_failed(build_output: str) -> str:
    """The line of a failed build that says why: ninja's output is ``FAILED: <target>``, the command (a
    screenful of flags), then the compiler's or linker's own lines, of which the first that names an error. Not
    collect2's "ld returned 1 exit status", which follows the linker's own line (ld: cannot find -lc10)."""
    lines = build_output.strip().splitlines() or [""]
    failed = next((i for i, line in enumerate(lines) if line.startswith("FAILED:")), None)
    said = [line for line in (lines[failed + 2:] if failed is not None else []) if not line.startswith("collect2")]
    return next((line for line in said if "error" in line.lower() or line.startswith(LINKER_SAYS)),
                said[0] if said else lines[0]).strip()


@functools.lru_cache(maxsize=None)
def load_kernel():
    """The compiled extension (built on first use), or :class:`KernelUnavailable` with the reason."""
    directory = build_directory()
    if not any(directory.glob("*.so")):
        log.info("Compiling the fused CPU kernel for this source, compiler, Python and torch, once (about 30 s), "
                 "into %s", directory)
    started = time.perf_counter()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        source = directory / SOURCE.name  # the build command names this copy, the same from any checkout
        if not source.is_file() or source.read_bytes() != SOURCE.read_bytes():
            shutil.copyfile(SOURCE, source)
    except OSError as error:  # a read-only home, a HOME that is no folder: no compiler would help
        raise KernelUnavailable(f"its build folder {directory} cannot be written: {type(error).__name__}: "
                                f"{error.strerror or error}",
                                fix="Set TORCH_EXTENSIONS_DIR to a folder you can write") from error
    lock = None
    try:
        cpp_extension = quiet_cpp_extension()
        # Older torch blocks while a file named "lock" exists, and a build that dies leaves it; newer
        # torch (2.14 here) holds an OS lock on that file, which ends with its holder.
        lock = directory / "lock" if not hasattr(cpp_extension, "FileLock") else None
        if lock:
            wait_for_other_build(lock)
        module = cpp_extension.load("lenet_exp_bn_pool_relu", [str(source)], extra_cflags=CFLAGS,
                                    extra_ldflags=["-fopenmp"], build_directory=str(directory), with_cuda=False,
                                    verbose=False)
    except Exception as error:  # compiler, ninja or linker errors arrive as RuntimeError, OSError, ...
        if lock:
            lock.unlink(missing_ok=True)  # a failed build must not leave the next run waiting on it
        said = str(error).lower()
        if "no space left" in said or "disk quota exceeded" in said:  # the linker's, in the build's output
            raise KernelUnavailable(f"its build folder {directory} is on a full disk",
                                    fix="Free some space there, or set TORCH_EXTENSIONS_DIR to a folder on another "
                                        "disk") from error
        raise KernelUnavailable(f"{type(error).__name__}: {what_failed(str(error))[:300]}") from error
    log.debug("fused CPU kernel ready in %.1f s (%s)", time.perf_counter() - started, directory)
    return module


class BatchNormMaxPoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum: float, eps: float):
        # NCHW or channels_last as it is: converting costs more than the kernel saves
        if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
            x = x.contiguous()
        out, argmax, x_at_max, mean, invstd = load_kernel().forward(x, weight, bias, running_mean, running_var,
                                                                    momentum, eps)
        ctx.save_for_backward(x, weight, out, argmax, x_at_max, mean, invstd)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        grad_x, grad_weight, grad_bias = load_kernel().backward(grad, *ctx.saved_tensors)
        return grad_x, grad_weight, grad_bias, None, None, None, None


def applies(x: torch.Tensor, bn: nn.BatchNorm2d) -> bool:
    """Whether the kernel computes ``relu(max_pool2d(bn(x), 2))`` here: CPU, float32, training statistics."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and x.shape[-2] >= 2
            and x.shape[-1] >= 2 and bn.training and bn.affine and bn.track_running_stats
            and bn.weight.dtype == torch.float32 and not torch.compiler.is_compiling())


def bn_pool_relu(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``relu(max_pool2d(bn(x), 2))`` for a BatchNorm2d in training mode, updating its running statistics."""
    bn.num_batches_tracked.add_(1)
    # momentum None means a cumulative average, as in nn.BatchNorm2d
    momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
    return BatchNormMaxPoolReLU.apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum, bn.eps)


class FusedBatchNormMaxPoolReLU(nn.BatchNorm2d):
    """A BatchNorm2d that also does the 2x2 max-pool and the ReLU after it: the kernel where it applies,
    the three standard ops elsewhere (eval mode, bf16 autocast, torch.compile). Its parameters, buffers
    and state-dict keys are the BatchNorm's, so checkpoints do not change."""

    @classmethod
    def replacing(cls, bn: nn.BatchNorm2d) -> "FusedBatchNormMaxPoolReLU":
        bn.__class__ = cls  # same tensors, same module: optimizers and EMA copies keep pointing at them
        return bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if applies(x, self):
            return bn_pool_relu(x, self)
        return torch.relu(nn.functional.max_pool2d(super().forward(x), 2))
