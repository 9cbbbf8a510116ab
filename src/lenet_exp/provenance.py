"""Which code ran: the checkout's git commit and the libraries' versions, as metrics.json records them (and
messages show them). Light to import: a refusal before training reads them too."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any, Mapping, Optional

from lenet_exp import CONFIGS
from lenet_exp.errors import shown


# what rounds a run's sums otherwise besides its code (metrics.json's keys): a resume that changes it is said, and
# the earlier invocation's kept (earlier_code), as an uninterrupted run would not have ended where it ends
HOW_IT_RAN = ("device", "fused_cpu_kernels", "channels_last", "compile")  # (each fast path named as its trainer.*)


def versions() -> dict[str, str]:
    """The versions of Python and of the libraries that decide a run's results."""
    import hydra
    import omegaconf
    import torch
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "hydra": hydra.__version__, "omegaconf": omegaconf.__version__}


def provenance(checkout: Path = CONFIGS.parent) -> Optional[dict[str, Any]]:
    """The git commit of the code that runs, and whether its tree had changes, when it runs from a checkout:
    a tracked file changed, or a new file in src/ or configs/ (a model or an option of one's own, which the
    commit cannot give back; a scratch file elsewhere is no change to what runs)."""
    import subprocess

    if not (checkout / "src").is_dir():  # an installed package (in another project's .venv/): no checkout of it
        return None
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True,
                                  timeout=10).stdout.strip()

        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".")  # the checkout's, in a larger one
                     or git("status", "--porcelain", "--untracked-files=all", "--", "src", "configs"))
        return {"commit": git("rev-parse", "HEAD"), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout (an installed package)
        return None


def commit_of(git: Optional[Mapping[str, Any]], changes: str = " (with uncommitted changes)") -> str:
    """A :func:`provenance` as a card or log line shows it (a record's, which is data: as it is where it is none)."""
    if not isinstance(git, Mapping) or not isinstance(git.get("commit"), str):
        return "none (no checkout)" if not git else repr(git)
    return git["commit"][:12] + (changes if git.get("dirty") else "")


def other_code(earlier: Mapping[str, Any], git: Optional[Mapping[str, Any]], libraries: Mapping[str, str],
               ran: Mapping[str, Any]) -> str:
    """How the code and device of an earlier invocation (an ``earlier_code`` entry of metrics.json) differ from the
    run's ``git``, ``libraries`` and how it ``ran`` now (HOW_IT_RAN): ``git commit f02bcca1c2d3 (now
    8ae3a30ec1f2-dirty), torch 2.3.0 (now 2.14.1), CPU (1 thread) (now CPU (2 threads)), trainer.channels_last=true
    (now false)`` (``-dirty``: with uncommitted changes, as `git describe --dirty` says it); "as now" where the
    epochs ran as the last ones (a fast path switched, then back)."""
    differences = [] if earlier.get("git") == git else [f"git commit {commit_of(earlier.get('git'), '-dirty')} (now "
                                                        f"{commit_of(git, '-dirty')})"]
    before = earlier.get("versions") if isinstance(earlier.get("versions"), Mapping) else {}
    differences += [f"{name} {before.get(name, '?')} (now {version})" for name, version in libraries.items()
                    if before.get(name) != version]
    for key, now in ran.items():  # (an entry of before a key was kept has none)
        if key in earlier and earlier[key] != now:
            differences.append(f"{earlier[key]} (now {now})" if key == "device" else
                               f"trainer.{key}={shown(earlier[key])} (now {shown(now)})")
    return ", ".join(differences) or "as now"


def earlier_epochs(entries: list[Mapping[str, Any]], index: int) -> str:
    """Which epochs the ``index``-th ``earlier_code`` entry trained: from those of the entry before it on, to its
    ``epochs_done`` (``epochs to 3``, ``epochs 4 to 6``, ``epoch 7``)."""
    before = entries[index - 1].get("epochs_done") if index else 0
    start, end = (before + 1 if isinstance(before, int) else 1), entries[index].get("epochs_done")  # (a record is data)
    return f"epochs to {end}" if start == 1 else f"epoch {end}" if start == end else f"epochs {start} to {end}"
