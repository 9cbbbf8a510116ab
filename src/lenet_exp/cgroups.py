"""What this process's cgroups allow (a container's, a Kubernetes pod's or a Slurm job's limits), which the
machine's own counts do not show: the memory left under a memory limit, and the CPUs a CPU quota pays for.
cgroup v1 and v2 alike, read from /proc/self/cgroup and /sys/fs/cgroup; no torch here (slots.py counts cores
before a job imports it)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Optional

CGROUPS = Path("/sys/fs/cgroup")


def own_cgroups(controller: str) -> Iterator[tuple[Path, bool]]:
    """This process's cgroup folder for ``controller`` (v1's hierarchy of it, or v2's single one) and those above
    it, whose limits hold too, each with whether it is v2's; none where /proc/self/cgroup cannot be read."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2 (on a hybrid host, often a hierarchy without controllers: its files are missing)
            root = CGROUPS
        elif controller in controllers.split(","):  # v1: /sys/fs/cgroup/cpu,cpuacct, or its link cpu
            root = next((CGROUPS / name for name in (controllers, controller) if (CGROUPS / name).is_dir()), None)
            if root is None:
                continue
        else:
            continue
        folder = root / path.lstrip("/")
        for cgroup in [folder, *folder.parents]:  # a container's cgroup namespace shows its own as the root
            if not cgroup.is_relative_to(root):
                break
            yield cgroup, controllers == ""


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except OSError:  # not there (another namespace, a controller not enabled), or unreadable
        return None


def memory_headroom() -> tuple[Optional[int], str]:
    """Bytes that this process's memory cgroup and the cgroups above it still allow, and the limit that allows
    the fewest: past it the kernel kills the process without a word, where MemAvailable counts the whole
    machine's. File pages count as free, as the kernel drops them before it kills (MemAvailable counts them so).
    (None, "") where no cgroup limits memory."""
    tightest: tuple[Optional[int], str] = (None, "")
    for cgroup, v2 in own_cgroups("memory"):
        limit_file, usage_file = ("memory.max", "memory.current") if v2 else ("memory.limit_in_bytes",
                                                                              "memory.usage_in_bytes")
        limit, used, stat = _read(cgroup / limit_file), _read(cgroup / usage_file), _read(cgroup / "memory.stat")
        if limit is None or used is None or stat is None or limit == "max" or int(limit) >= 2**60:
            continue  # no limit here (v1 writes one near 2**63)
        rows = dict(row.split() for row in stat.splitlines())
        file_pages = sum(int(rows.get(f"{'' if v2 else 'total_'}{kind}_file", 0)) for kind in ("active", "inactive"))
        left = max(int(limit) - int(used) + file_pages, 0)
        if tightest[0] is None or left < tightest[0]:
            tightest = (left, f"its memory cgroup's limit of {int(limit) / 2**30:.1f} GiB ({cgroup / limit_file})")
    return tightest


def cpu_quota() -> Optional[int]:
    """The CPUs that this process's tightest CPU quota pays for, rounded up (docker --cpus=1.5: 2), or None where
    none limits it. More threads than that take turns within each period: a run of 2 threads under a quota of one
    CPU trained 1.35-1.6x slower than with 1."""
    quotas = []
    for cgroup, v2 in own_cgroups("cpu"):
        if v2:
            quota, _, period = (_read(cgroup / "cpu.max") or "max").partition(" ")
        else:
            quota, period = _read(cgroup / "cpu.cfs_quota_us") or "-1", _read(cgroup / "cpu.cfs_period_us") or ""
        if quota.lstrip("-").isdigit() and int(quota) > 0 and period.isdigit() and int(period) > 0:
            quotas.append(max(1, math.ceil(int(quota) / int(period))))
    return min(quotas) if quotas else None
