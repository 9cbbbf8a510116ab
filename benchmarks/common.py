"""What the benchmark scripts share: arguments, the composed config, CPU pressure and memory probes,
timing, tables and the JSON report. The scripts run as ``python benchmarks/X.py`` from the repository
root, so this module is importable as ``common``; it puts the checkout's ``src/`` first on the path."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this checkout's package, even without `pip install -e .`
SCRIPT = Path(sys.argv[0]).name


# ------------------------------------------------------------------------------------ arguments
def parser(doc: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_args(p: argparse.ArgumentParser, device: bool = True) -> None:
    """--data-root, --override (and --device): what :func:`compose_config` reads."""
    if device:
        p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--data-root", default=os.environ.get("LENET_EXP_DATA") or str(REPO.parent / "shared" / "data"),
                   type=lambda path: str(Path(path).expanduser().resolve()),
                   help="folder holding MNIST/raw and FashionMNIST/raw (default: $LENET_EXP_DATA or ../shared/data)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="Hydra override, as on run.py's command line; repeatable, e.g. --override trainer.compile=true")


def add_variant_arg(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--variant", action="append", default=[], type=parse_variant, metavar="'NAME: KEY=VALUE ...'",
                   help=help)


def add_quiet_args(p: argparse.ArgumentParser, default: float) -> None:
    p.add_argument("--wait-quiet", type=float, default=default, metavar="SECONDS",
                   help="before each timed part, wait up to this long (untimed) until other processes leave the "
                        f"CPUs idle (Linux /proc/stat); 0: never wait (default {default:g})")
    p.add_argument("--json-out", default=None, metavar="PATH", help="also write the JSON report here")


def parse_variant(text: str) -> tuple[str, tuple[str, ...]]:
    """``"NAME: key=value key=value"`` -> (NAME, overrides)."""
    name, _, overrides = text.partition(":")
    if not name.strip() or not overrides.strip():
        raise argparse.ArgumentTypeError(f"expected 'NAME: key=value ...', got {text!r}")
    return name.strip(), tuple(overrides.split())


class BadConfig(Exception):
    """A config or override that run.py would refuse, with its message."""


def composed(args, *extra: str, base: Sequence[str] = ()):
    """The config ``python run.py OVERRIDES`` would train with: on ``--data-root`` and ``--device``, the
    script's ``base`` overrides, then ``--override``s, then ``extra`` (a variant's: the last wins). A bad
    one raises :class:`BadConfig` with Hydra's or the run's message."""
    from hydra.errors import HydraException

    import lenet_exp
    from lenet_exp.validation import validate
    from lenet_exp.errors import UserError

    overrides = (f"dataset.root={args.data_root}", "dataset.download=false", f"device.type={args.device}",
                 *base, *args.override, *extra)
    try:
        cfg = lenet_exp.compose(*overrides, config_dir=REPO / "configs")
        validate(cfg)
    except (HydraException, UserError) as error:
        raise BadConfig(str(error)) from error
    return cfg


def compose_config(args, *extra: str, base: Sequence[str] = ()):
    """:func:`composed`, or exit with its message."""
    try:
        return composed(args, *extra, base=base)
    except BadConfig as error:
        sys.exit(f"{SCRIPT}: bad config or override: {error}")


# ---------------------------------------------------------------------------- a shared machine
def cpu_pressure_us() -> Optional[int]:
    """Linux PSI: microseconds in which some runnable task waited for a CPU (any process on the machine)."""
    try:
        with open("/proc/pressure/cpu") as psi:
            return int(psi.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def cpu_busy_jiffies() -> Optional[tuple[int, int]]:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def wait_quiet(timeout: float, max_busy: float = 0.1, probe: float = 0.5) -> float:
    """Sleep until other processes use at most ``max_busy`` of all CPUs over a ``probe``-second window
    (this process is idle meanwhile, so all the load is theirs), for at most ``timeout`` seconds.
    Returns the seconds waited beyond the first probe."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = cpu_busy_jiffies()
        if before is None:
            break
        time.sleep(probe)
        after = cpu_busy_jiffies()
        if after[1] > before[1] and (after[0] - before[0]) / (after[1] - before[1]) <= max_busy:
            break
    return max(0.0, time.perf_counter() - started - probe)


# ------------------------------------------------------------------------------------ checkouts
def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def checkouts(revs: dict[str, Optional[str]], prefix: str) -> Iterator[tuple[dict[str, dict], Path]]:
    """Each named git revision as a worktree in a temporary folder (None: this working tree, uncommitted
    changes included), with the environment that runs its own ``src/`` (so that the editable install does
    not decide which code runs); yields ({name: side}, the temporary folder), and removes both after."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    sides, worktrees = {}, []
    try:
        for name, rev in revs.items():
            env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
            checkout = REPO
            if rev is not None:
                checkout = tmp / name
                git("worktree", "add", "--detach", str(checkout), rev)
                worktrees.append(checkout)
            env["PYTHONPATH"] = str(checkout / "src")
            sides[name] = {"name": name, "rev": rev or "working tree", "checkout": checkout, "env": env,
                           "commit": git("rev-parse", f"{rev or 'HEAD'}^{{commit}}"),
                           "uncommitted_changes": rev is None and bool(git("status", "--porcelain", "--untracked-files=no"))}
        yield sides, tmp
    finally:
        for checkout in worktrees:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(checkout)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def describe_sides(sides: dict[str, dict]) -> str:
    return "\n".join(f"{name}: {side['rev']} = {side['commit'][:10]}" + (" + uncommitted changes" if side["uncommitted_changes"] else "")
                     for name, side in sides.items())


def sync(device) -> None:
    if device is not None and device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)


class Timed:
    """Wall seconds of a block and its CPU pressure: the share of it in which some task on the machine
    waited for a CPU (above ~0.05 other processes competed for the cores and the time is inflated).
    With a CUDA ``device`` the block is synchronised on both sides."""

    def __init__(self, device=None):
        self.device = device

    def __enter__(self) -> "Timed":
        sync(self.device)
        self.psi = cpu_pressure_us()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        self.seconds = time.perf_counter() - self.started
        psi = cpu_pressure_us()
        self.pressure = round((psi - self.psi) / 1e6 / self.seconds, 3) if psi is not None and self.psi is not None else None


# --------------------------------------------------------------------------------------- memory
def rss_mib() -> Optional[float]:
    """This process's resident set now (Linux /proc/self/status)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0), so that a phase has its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# -------------------------------------------------------------------------------------- reports
def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: Sequence[Sequence[str]], header: Optional[Sequence[str]] = None, left: Sequence[int] = (0,)) -> str:
    """Cells in columns, right-aligned but for the columns in ``left``; a rule under the header."""
    rows = [list(map(str, row)) for row in ([header] if header else []) + list(rows)]
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    lines = ["  ".join(cell.ljust(w) if i in left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    if header:
        lines.insert(1, "-" * len(max(lines, key=len)))
    return "\n".join(lines)


def write_report(report: dict, path: Optional[str], echo: bool = True) -> None:
    """The JSON report on stdout (``echo``) and into ``path`` (``--json-out``), if given."""
    text = json.dumps(report, indent=2)
    if echo:
        print(text)
    if path:
        Path(path).write_text(text + "\n")
