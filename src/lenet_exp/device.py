"""Which device a job trains on, how many CPU threads it may use, and how the CPU reuses freed memory."""

from __future__ import annotations

import ctypes
import functools
import logging
from typing import Optional

import torch

from lenet_exp.cgroups import memory_headroom
from lenet_exp.errors import DeviceError, UserError
from lenet_exp.slots import JobSlot

log = logging.getLogger(__name__)

MEMORY_HEADROOM = 0.8  # of what is free: the rest for what a plan does not count (allocator, workspaces, others)
# jobs that started at once on this process's device (joblib's n_jobs): each one sees all that is free,
# and plans with its share of it
_jobs_sharing_the_device = 1
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameters (malloc.h)


def wants_cuda(device_type: str) -> bool:
    """Whether a job of this ``device.type`` trains on CUDA: ``cuda``, or ``auto`` where torch sees a GPU."""
    return device_type == "cuda" or (device_type == "auto" and torch.cuda.is_available())


def resolve_device(dcfg, slot: JobSlot) -> torch.device:
    """``auto`` takes a GPU when there is one; ``cuda`` without one is an error, never a fallback."""
    if not wants_cuda(dcfg.type):
        device = torch.device("cpu")
        keep_freed_memory()
    elif not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(
            f"device=cuda was asked for, but no CUDA GPU is visible to torch {torch.__version__} ({built}). "
            f"Use device=cpu or device=auto, or check the driver and CUDA_VISIBLE_DEVICES."
        )
    else:
        # Parallel jobs on one machine each take a GPU in turn instead of all crowding GPU 0.
        device = torch.device("cuda", slot.number % torch.cuda.device_count() if slot.parallel > 1 else 0)
        torch.cuda.set_device(device)
    # Parallel jobs share the cores instead of each starting a thread per core.
    torch.set_num_threads(slot.cpu_threads(dcfg.threads))
    global _jobs_sharing_the_device
    devices = torch.cuda.device_count() if device.type == "cuda" else 1
    _jobs_sharing_the_device = -(-slot.parallel // devices)
    return device


@functools.cache
def keep_freed_memory() -> bool:
    """Let freed blocks stay in this process for the next step to reuse; False where the C library is
    not glibc (nothing changes there).

    glibc gives each large block (128 KiB and up, its threshold rising with what was freed, to 32 MiB at
    most) pages of its own and returns them to the system when it is freed, so every CPU training step
    faults its activations' pages in anew: a quarter of a step's time on the 2-core VM (``docs/speed.md``).
    With no block mmapped, all come from the heap, which keeps what is freed, whatever its size (a stacked
    group of 32 trials' activations pass 32 MiB). Memory stays at its peak instead, which a training
    process reaches on every step anyway."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # macOS, Windows
        return False
    kept = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**30))
    log.debug("freed memory kept for reuse: %s", kept)
    return kept


def give_freed_memory_back() -> None:
    """Undo :func:`keep_freed_memory` for a process that goes on after its run (a notebook's, after ``train()``):
    the heap's free memory handed back, and large blocks given pages of their own again, returned when freed
    (a notebook kept every array it freed). Any mallopt() ends glibc's own adaptive threshold for good: these
    are where it rises to at most on 64-bit, blocks of 32 MiB and up mmapped, the heap trimmed above 64 MiB."""
    if not (keep_freed_memory.cache_info().currsize and keep_freed_memory()):
        return
    keep_freed_memory.cache_clear()  # the next run keeps it again
    libc = ctypes.CDLL(None)
    libc.mallopt(M_MMAP_MAX, 65536)  # glibc's default
    libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)
    libc.mallopt(M_TRIM_THRESHOLD, 64 * 2**20)
    libc.malloc_trim(0)


def free_bytes(device: torch.device) -> Optional[int]:
    """Memory free for this job on ``device`` now (its share, where jobs started at once share it), or None
    where that cannot be told."""
    return _share_free_on(device)[0]


def _share_free_on(device: torch.device) -> tuple[Optional[int], str]:
    """:func:`free_bytes`, and the limit that says so where it is not the device's own (a memory cgroup's)."""
    free, limited_by = _free_on(device)
    return (free // _jobs_sharing_the_device if free is not None else None), limited_by


def _free_on(device: torch.device) -> tuple[Optional[int], str]:
    """What is free, and the limit that says so where it is not the device's own (a memory cgroup's)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], ""
    try:
        with open("/proc/meminfo") as meminfo:
            free = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None, ""
    within, limit = memory_headroom()
    return (within, limit) if within is not None and within < free else (free, "")


def check_fits(need_bytes: float, device: torch.device, what: str, fix: str) -> None:
    """Refuse, before allocating, what cannot fit: a clear message instead of the out-of-memory killer."""
    free, limited_by = _share_free_on(device)
    if free is None or need_bytes <= MEMORY_HEADROOM * free:
        return
    where = f"{free / 2**30:.1f} GiB is free on {describe(device)}"
    if _jobs_sharing_the_device > 1:
        where = (f"{free / 2**30:.1f} GiB is this job's share of the memory free on {describe(device)}, which "
                 f"{_jobs_sharing_the_device} jobs share")
        fix = f"{fix} Or run fewer jobs at once (hydra.launcher.n_jobs)."
    if limited_by:
        where += f" within {limited_by}"
    # "needs 1.3 GiB, but 1.5 GiB is free" reads as a contradiction unless the share that may be taken is named
    usable = (f"{MEMORY_HEADROOM * free / 2**30:.1f} GiB ({MEMORY_HEADROOM:.0%}; the rest is kept for workspaces and "
              f"other processes)")
    raise UserError(f"{what} would need about {need_bytes / 2**30:.1f} GiB, but {where}, of which it may take "
                    f"{usable}. {fix}")


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'' if threads == 1 else 's'})"
