"""Speed, side by side: the LeNet-5 tutorial's pipeline against this runner's default recipe.

Both train in ONE process, on the same data, the same architecture, batch size and optimizer:

1. **tutorial** -- the pipeline of the "LeNet-5 from scratch in PyTorch" tutorial as it was written:
   ``torchvision.datasets.MNIST`` with per-sample PIL transforms (Resize 32x32, ToTensor, Normalize),
   ``DataLoader(batch_size=64, shuffle=True)`` in the main process (``num_workers=0``) over all
   60,000 training images, the tutorial's model class (written inline below), ``nn.CrossEntropyLoss``,
   Adam lr 1e-3 and its loop, which reads ``loss.item()`` every 400 steps to print it.
2. **ours** -- what ``python run.py`` trains: the config is composed with Hydra's compose API from
   ``configs/`` (plus any ``--override``), and the package's own ``load_data``, ``build_model``,
   ``build_optimizer``, ``train_epoch`` and ``evaluate`` do the work, on 55,000 training images
   (5,000 are held out for validation).

Each ``--variant 'NAME: overrides'`` trains (2) once more with those overrides, in the same process;
the JSON's ``ours`` maps each name (the plain run is ``ours``) to its measurements.

The two epochs hold different numbers of samples (60,000 vs 55,000), so compare **samples/s**, not
seconds per epoch. Epoch times exclude evaluation for both (as ``run.py``'s ``time/epoch_s`` does);
the first epoch pays for warm-up (and for ``torch.compile``), so the steady-state figure is the
median over the epochs after the first. Test accuracy is of the final weights for both, evaluated
properly (``model.eval()``, no gradients) on the 10,000 test images.

Run from the repository root::

    python benchmarks/speed.py --epochs 3                       # CPU or GPU, whatever is there
    python benchmarks/speed.py --device cpu --threads 2 --json-out speed.json
    python benchmarks/speed.py --override trainer.channels_last=true --override trainer.compile=true

The tutorial's plain-text progress lines go to stderr; the table and the JSON go to stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Generator, Iterator, Optional

import torch
import torchvision
from torch import nn
from torchvision import transforms

REPO = Path(__file__).resolve().parents[1]
TUTORIAL_PRINT_EVERY = 400  # the tutorial reads loss.item() every 400 steps to print it


# ------------------------------------------------------------------------------------ measurement
def _proc_status_kib(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0), so each phase has its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class Phase:
    """Host and GPU memory of one phase of the benchmark.

    ``ru_maxrss`` is a process-wide high-water mark: without a reset, the phase measured second
    reports max(its own peak, the first phase's peak). On Linux the mark is reset at the start of
    each phase (``/proc/self/clear_refs``), so each phase's peak is its own; where that is not
    possible ``peak_rss_is_own`` is false and only an increase over the earlier peak is meaningful.
    """

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self) -> "Phase":
        # interleaved pipelines share the process: a reset would cut into the others' phases
        self.peak_rss_is_own = False if INTERLEAVE else _reset_peak_rss()
        self.rss_start_mib = None if INTERLEAVE else (_proc_status_kib("VmRSS") or 0) / 1024 or None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            if not INTERLEAVE:
                torch.cuda.reset_peak_memory_stats(self.device)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        self.wall_s = None if INTERLEAVE else time.perf_counter() - self.started  # interleaved: others' epochs in it
        self.peak_rss_mib = _ru_maxrss_mib()
        self.peak_gpu_mib = (torch.cuda.max_memory_allocated(self.device) / 2**20
                             if self.device.type == "cuda" else None)

    def memory(self) -> dict:
        return {
            "rss_at_start_mib": self.rss_start_mib,
            "peak_rss_mib": self.peak_rss_mib,
            "peak_rss_is_own": self.peak_rss_is_own,
            "peak_rss_delta_mib": (self.peak_rss_mib - self.rss_start_mib) if self.rss_start_mib else None,
            "peak_gpu_allocated_mib": self.peak_gpu_mib,
        }


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


def wait_quiet(timeout: float, max_busy: float = 0.1, probe: float = 0.5) -> None:
    """Sleep until other processes use at most ``max_busy`` of all CPUs over a ``probe``-second window
    (this process is idle meanwhile, so all the load is theirs), for at most ``timeout`` seconds."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = cpu_busy_jiffies()
        if before is None:
            return
        time.sleep(probe)
        after = cpu_busy_jiffies()
        if after[1] > before[1] and (after[0] - before[0]) / (after[1] - before[1]) <= max_busy:
            return


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


WAIT_QUIET_S = 0.0  # --wait-quiet
INTERLEAVE = False  # --interleave
BENCHMARK_STARTED = time.perf_counter()
Pipeline = Generator[dict, None, dict]  # a pipeline: yields each epoch's row, returns its result


def timed_epochs(epochs: int, device: torch.device, run_epoch: Callable[[int], int],
                 between: Callable[[int], None] = lambda epoch: None) -> Iterator[dict]:
    """Time ``run_epoch(epoch) -> samples`` with the device synchronised on both sides; yields each
    epoch's row as it ends (so that with --interleave the pipelines take turns, epoch by epoch)."""
    for epoch in range(1, epochs + 1):
        if WAIT_QUIET_S:
            wait_quiet(WAIT_QUIET_S)  # outside the timed region
        sync(device)
        psi = cpu_pressure_us()
        start = time.perf_counter()
        samples = run_epoch(epoch)
        sync(device)
        seconds = time.perf_counter() - start
        psi_end = cpu_pressure_us()
        # share of the epoch in which some task on the machine waited for a CPU: > ~0.05 means other
        # processes competed for the cores and the epoch time is inflated
        pressure = round((psi_end - psi) / 1e6 / seconds, 3) if psi is not None else None
        row = {"epoch": epoch, "seconds": seconds, "samples": samples, "samples_per_s": samples / seconds,
               "cpu_pressure": pressure, "ended_at": time.perf_counter() - BENCHMARK_STARTED}
        between(epoch)
        yield row


def summarise(rows: list[dict]) -> dict:
    steady = rows[1:] or rows  # the first epoch pays for warm-up (and compilation)
    return {
        "epochs": len(rows),
        "samples_per_epoch": rows[0]["samples"],
        "first_epoch_s": rows[0]["seconds"],
        "median_epoch_s": statistics.median(r["seconds"] for r in steady),
        "median_samples_per_s": statistics.median(r["samples_per_s"] for r in steady),
        # the least disturbed epoch: noise from other processes only ever adds time
        "best_epoch_s": min(r["seconds"] for r in steady),
        "best_samples_per_s": max(r["samples_per_s"] for r in steady),
        "epoch_s": [round(r["seconds"], 3) for r in rows],
        "epoch_samples_per_s": [r["samples_per_s"] for r in rows],
        "epoch_cpu_pressure": [r["cpu_pressure"] for r in rows],
        "epoch_ended_at_s": [round(r["ended_at"], 3) for r in rows],  # seconds since the benchmark began
    }


# ------------------------------------------------------------------------------- 1. the tutorial
class TutorialLeNet5(nn.Module):
    """The tutorial's model, as the tutorial wrote it (convolutions keep their bias before BatchNorm)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2))
        self.layer2 = nn.Sequential(
            nn.Conv2d(6, 16, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2))
        self.fc = nn.Linear(400, 120)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(120, 84)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(84, num_classes)

    def forward(self, x):
        out = self.layer1(x)
        out = self.layer2(out)
        out = out.reshape(out.size(0), -1)
        out = self.fc(out)
        out = self.relu(out)
        out = self.fc1(out)
        out = self.relu1(out)
        out = self.fc2(out)
        return out


def run_tutorial(args, device: torch.device, mean: float, std: float, num_classes: int) -> Pipeline:
    """The tutorial's pipeline, epoch by epoch (a generator: see :func:`run_all`); returns its result."""
    dataset_class = {"mnist": torchvision.datasets.MNIST, "fashion_mnist": torchvision.datasets.FashionMNIST}[args.dataset]
    torch.manual_seed(args.seed)
    with Phase(device) as phase:
        setup_start = time.perf_counter()
        # The tutorial normalised its test set with mean 0.1325 / std 0.3105, which are not the
        # training statistics -- a bug that costs accuracy. Both splits use the train statistics here.
        transform = transforms.Compose([
            transforms.Resize((32, 32)),
            transforms.ToTensor(),
            transforms.Normalize(mean=(mean,), std=(std,))])
        train_set = dataset_class(root=args.data_root, train=True, download=False, transform=transform)
        test_set = dataset_class(root=args.data_root, train=False, download=False, transform=transform)
        # its own shuffling generator: with --interleave our pipelines reseed the global one between its epochs
        train_loader = torch.utils.data.DataLoader(dataset=train_set, batch_size=args.batch_size, shuffle=True,
                                                   generator=torch.Generator().manual_seed(args.seed))
        test_loader = torch.utils.data.DataLoader(dataset=test_set, batch_size=args.batch_size, shuffle=False)

        model = TutorialLeNet5(num_classes).to(device)
        cost = nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        setup_s = time.perf_counter() - setup_start
        total_step = len(train_loader)

        def run_epoch(epoch: int) -> int:
            model.train()
            samples = 0
            for i, (images, labels) in enumerate(train_loader):
                images = images.to(device)
                labels = labels.to(device)
                outputs = model(images)
                loss = cost(outputs, labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                samples += len(labels)
                if (i + 1) % TUTORIAL_PRINT_EVERY == 0:
                    print(f"[tutorial] Epoch [{epoch}/{args.epochs}], Step [{i + 1}/{total_step}], "
                          f"Loss: {loss.item():.4f}", file=sys.stderr, flush=True)
            return samples

        rows = []
        for row in timed_epochs(args.epochs, device, run_epoch):
            rows.append(row)
            yield row

        # The tutorial evaluated without model.eval(), so BatchNorm used batch statistics; this is the
        # proper evaluation: running statistics, no gradients.
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, labels in test_loader:
                images, labels = images.to(device), labels.to(device)
                predicted = model(images).argmax(1)
                total += labels.size(0)
                correct += (predicted == labels).sum().item()
    return {"pipeline": "tutorial", "setup_s": setup_s, **summarise(rows), "test_acc": correct / total,
            "threads": torch.get_num_threads(),
            "wall_s": phase.wall_s, "memory": phase.memory(),
            "parameters": sum(p.numel() for p in model.parameters()), "per_epoch": rows}


# ---------------------------------------------------------------------------- 2. our runner
def compose_config(args, variant_overrides: tuple[str, ...] = ()):
    """The config ``python run.py <overrides>`` would train with, composed by Hydra's compose API."""
    from hydra import compose, initialize_config_dir
    from lenet_exp.schema import register_configs, validate

    register_configs()
    overrides = [
        f"dataset={args.dataset}",
        f"dataset.root={args.data_root}",
        "dataset.download=false",
        f"device.type={args.device}",
        f"trainer.batch_size={args.batch_size}",
        f"trainer.epochs={args.epochs}",
        f"seed={args.seed}",
        "trainer.progress=false",
    ]
    if args.threads:
        overrides.append(f"device.threads={args.threads}")
    overrides += [*args.override, *variant_overrides]  # the user's speed knobs come last and win
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    validate(cfg)
    return cfg, overrides


def run_ours(cfg, device: torch.device) -> Pipeline:
    """The setup and epoch loop of ``lenet_exp.train.Run.train``, minus checkpoints and TensorBoard
    (a generator, epoch by epoch: see :func:`run_all`); returns its result."""
    from lenet_exp.device import JobSlot
    from lenet_exp.engine import evaluate, train_epoch
    from lenet_exp.train import build_parts, seed_everything

    tcfg = cfg.trainer
    seed_everything(cfg.seed, tcfg.deterministic)
    with Phase(device) as phase:
        setup_start = time.perf_counter()
        parts = build_parts(cfg, JobSlot())  # the same data, model, optimizer, ... as run.py
        data, model, eval_model = parts.data, parts.model, parts.eval_model
        sync(device)
        setup_s = time.perf_counter() - setup_start

        val_acc: list[float] = []

        def run_epoch(epoch: int) -> int:
            result = train_epoch(parts.step, parts.optimizer, parts.generator, scheduler=parts.scheduler, ema=parts.ema)
            return result.samples

        def validate_epoch(epoch: int) -> None:  # run.py validates after every epoch, outside its epoch time
            val_acc.append(evaluate(eval_model, data.val, tcfg.eval_batch_size, tcfg.precision).acc)

        rows = []
        for row in timed_epochs(tcfg.epochs, device, run_epoch, between=validate_epoch):
            rows.append(row)
            yield row
        test_acc = evaluate(eval_model, data.test, tcfg.eval_batch_size, tcfg.precision).acc
    return {"pipeline": "ours", "cuda_graphs": parts.step.graph is not None,
            "fused_cpu_kernels": parts.model.fused_cpu_blocks, "setup_s": setup_s, **summarise(rows),
            "test_acc": test_acc, "val_acc": val_acc, "wall_s": phase.wall_s, "memory": phase.memory(),
            "threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in model.parameters()), "per_epoch": rows}


def paired_ratios(ours: dict, tutorial: dict) -> list[float]:
    """samples/s of each of our epochs after the first over the tutorial's epoch of the same number."""
    return [round(a["samples_per_s"] / b["samples_per_s"], 4) for a, b in zip(ours["per_epoch"][1:], tutorial["per_epoch"][1:])]


def run_all(pipelines: dict[str, Callable[[], Pipeline]], interleave: bool, required: set[str],
            cleanup: Callable[[], None] = lambda: None) -> tuple[dict[str, dict], dict[str, str]]:
    """Run each pipeline to its end, one after another, or with ``interleave`` all at once, taking turns
    epoch by epoch (so that a slow spell of a noisy machine hits all of them alike). A pipeline not in
    ``required`` that raises is reported as failed and the others go on.

    Each pipeline keeps the CPU threads it set up with (a variant may set ``device.threads``): they are
    set again before each of its turns."""
    results, failed, running = {}, {}, {}
    threads = dict.fromkeys(pipelines, torch.get_num_threads())

    def step(name: str, generator: Pipeline) -> bool:  # one epoch; False once the pipeline is done
        torch.set_num_threads(threads[name])
        try:
            next(generator)
            threads[name] = torch.get_num_threads()
            return True
        except StopIteration as done:
            results[name] = done.value
        except Exception as error:  # a knob that fails on this device is reported; the others still run
            if name in required:
                raise
            failed[name] = f"{type(error).__name__}: {error}"
            print(f"{name}: FAILED: {failed[name]}", file=sys.stderr, flush=True)
        cleanup()  # the pipeline's model, data and CUDA graph, so that later peaks are their own
        return False

    for name, start in pipelines.items():
        running[name] = start()
        if not interleave:
            while step(name, running[name]):
                pass
    while interleave and running:
        for name in list(running):
            if not step(name, running[name]):
                del running[name]
    return results, failed


# ------------------------------------------------------------------------------------- reporting
def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(report: dict) -> str:
    """Tutorial and each of our variants side by side, with each variant's ratio to the tutorial."""
    columns = [("tutorial", report["tutorial"])] if "tutorial" in report else []
    columns += [(name, result) for name, result in report["ours"].items()]
    rows = [
        ("samples per epoch", "d", "samples_per_epoch"),
        ("setup s (data + model)", ".2f", "setup_s"),
        ("first epoch s", ".2f", "first_epoch_s"),
        ("median epoch s (after 1st)", ".3f", "median_epoch_s"),
        ("samples/s (median)", ",.0f", "median_samples_per_s"),
        ("best epoch s (after 1st)", ".3f", "best_epoch_s"),
        ("samples/s (best epoch)", ",.0f", "best_samples_per_s"),
        ("test accuracy", ".4f", "test_acc"),
        ("phase wall s (incl. eval)", ".1f", "wall_s"),
    ]
    memory_rows = [
        ("peak host RSS MiB (phase)", ",.0f", "peak_rss_mib"),
        ("  RSS at phase start MiB", ",.0f", "rss_at_start_mib"),
        ("peak GPU allocated MiB", ",.1f", "peak_gpu_allocated_mib"),
    ]
    width = max(len(r[0]) for r in rows + memory_rows)
    cell = max(12, *(len(name) for name, _ in columns))
    lines = [f"{'':{width}}" + "".join(f"  {name:>{cell}}" for name, _ in columns), "-" * (width + (cell + 2) * len(columns))]
    lines += [f"{label:{width}}" + "".join(f"  {fmt(result[key], spec):>{cell}}" for _, result in columns)
              for label, spec, key in rows]
    lines += [f"{label:{width}}" + "".join(f"  {fmt(result['memory'][key], spec):>{cell}}" for _, result in columns)
              for label, spec, key in memory_rows]
    if "tutorial" in report:
        tut = report["tutorial"]
        lines += [f"{'ours / tutorial samples/s':{width}}" + f"  {'1.00x':>{cell}}" + "".join(
            f"  {result['median_samples_per_s'] / tut['median_samples_per_s']:>{cell - 1}.2f}x"
            for _, result in columns[1:])]
        if report.get("interleaved"):  # the median of the epoch-by-epoch ratios: they ran back to back
            medians = [statistics.median(paired_ratios(result, tut) or [math.nan]) for _, result in columns[1:]]
            lines += [f"{'  paired, median over epochs':{width}}" + f"  {'':>{cell}}" + "".join(
                f"  {median:>{cell - 1}.2f}x" for median in medians)]
    lines += [
        "-" * (width + (cell + 2) * len(columns)),
        f"device: {report['device']}  threads: {report['threads']}  epochs: {report['epochs']}  "
        f"batch: {report['batch_size']}  dataset: {report['dataset']}",
    ]
    lines += [f"{name}: {' '.join(overrides) or '(no overrides)'}" for name, overrides in report["ours_overrides"].items()]
    lines += [f"{name}: FAILED: {error}" for name, error in report.get("failed_variants", {}).items()]
    if report.get("interleaved"):
        lines.append("note: the pipelines ran interleaved, epoch by epoch: peak memory is the process's, not each one's")
    elif not all(result["memory"]["peak_rss_is_own"] for _, result in columns):
        lines.append("note: peak RSS could not be reset between phases; it is the process high-water mark "
                     "(the tutorial ran first), so only an increase in a later phase is meaningful")
    return "\n".join(lines)


def parse_variant(text: str) -> tuple[str, tuple[str, ...]]:
    """``"NAME: key=value key=value"`` -> (NAME, overrides)."""
    name, _, overrides = text.partition(":")
    if not name.strip() or not overrides.strip():
        raise argparse.ArgumentTypeError(f"expected 'NAME: key=value ...', got {text!r}")
    return name.strip(), tuple(overrides.split())


def parse_args(argv=None) -> argparse.Namespace:
    default_root = os.environ.get("LENET_EXP_DATA") or str(REPO.parent / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per pipeline (>= 2 for a steady-state median)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-root", default=default_root,
                        help="folder holding MNIST/raw and FashionMNIST/raw (default: $LENET_EXP_DATA or ../shared/data)")
    parser.add_argument("--dataset", choices=("mnist", "fashion_mnist"), default="mnist")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for both pipelines (default: the cores available, as run.py uses)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="Hydra override for our pipeline, repeatable, e.g. --override trainer.compile=true")
    parser.add_argument("--variant", action="append", default=[], type=parse_variant, metavar="'NAME: KEY=VALUE ...'",
                        help="also measure our pipeline with these overrides (on top of --override), in the same "
                             "process; repeatable, e.g. --variant 'bf16: trainer.precision=bf16'")
    parser.add_argument("--skip-tutorial", action="store_true", help="measure only our pipeline")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each epoch, wait up to this long until other processes leave the CPUs idle "
                             "(Linux /proc/stat); the wait is not timed. Default 0: never wait")
    parser.add_argument("--interleave", action="store_true",
                        help="run the pipelines at once, taking turns epoch by epoch, so that a slow spell of a "
                             "noisy machine hits all of them; the JSON adds each epoch's paired ratio. Peak "
                             "memory is then the process's, not each pipeline's")
    parser.add_argument("--json-out", default=None, metavar="PATH", help="also write the JSON report here")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    args.data_root = str(Path(args.data_root).expanduser().resolve())
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    global WAIT_QUIET_S, INTERLEAVE
    WAIT_QUIET_S, INTERLEAVE = args.wait_quiet, args.interleave
    sys.path.insert(0, str(REPO / "src"))  # works from a checkout even without `pip install -e .`
    from lenet_exp.device import JobSlot, available_cores, describe, resolve_device

    from hydra.errors import HydraException
    from lenet_exp.errors import UserError

    variants = [("ours", ())] + args.variant
    try:
        configs = {name: compose_config(args, extra) for name, extra in variants}
    except (HydraException, UserError) as error:
        sys.exit(f"speed.py: bad config, --override or --variant: {error}")
    cfg = configs["ours"][0]
    # An --override of trainer.epochs or trainer.batch_size applies to both pipelines.
    args.epochs, args.batch_size = cfg.trainer.epochs, cfg.trainer.batch_size
    # Both pipelines get the same threads: what run.py would use (device.threads or all cores).
    device = resolve_device(cfg.device, JobSlot())
    threads = torch.get_num_threads()
    mean, std = cfg.dataset.mean, cfg.dataset.std  # the train split's statistics, as ours uses
    if mean is None or std is None:
        from lenet_exp.data import read_split
        pixels = read_split(args.data_root, args.dataset, True, False)[0].float().div_(255)
        mean, std = float(pixels.mean()), float(pixels.std())

    report = {
        "dataset": args.dataset, "epochs": args.epochs, "batch_size": args.batch_size,
        "device": describe(device), "threads": threads, "cores_available": available_cores(),
        "normalisation": {"mean": mean, "std": std},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__},
        "ours_overrides": {name: [*args.override, *extra] for name, extra in variants},
        "ours_config_overrides": {name: overrides for name, (_, overrides) in configs.items()},
    }
    # The tutorial first: should the peak-RSS reset be unavailable, its figure is then still its own.
    pipelines: dict[str, Callable[[], Pipeline]] = {}
    if not args.skip_tutorial:
        pipelines["tutorial"] = lambda: run_tutorial(args, device, mean, std, cfg.dataset.num_classes)
    for name, (variant_cfg, _) in configs.items():
        pipelines[name] = lambda variant_cfg=variant_cfg: run_ours(variant_cfg, device)

    def cleanup() -> None:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    results, failed = run_all(pipelines, args.interleave, {"tutorial", "ours"}, cleanup)
    report["interleaved"] = args.interleave
    if "tutorial" in results:
        report["tutorial"] = results.pop("tutorial")
    report["ours"] = {name: results[name] for name in configs if name in results}
    for name, result in report["ours"].items():
        print(f"{name}: median epoch {result['median_epoch_s']:.3f} s", file=sys.stderr, flush=True)
    if failed:
        report["failed_variants"] = failed
    if not args.skip_tutorial:
        tut, ours = report["tutorial"], report["ours"]["ours"]
        # epoch e of ours against epoch e of the tutorial (after the first): with --interleave they ran
        # back to back, so a slow spell of the machine slows both
        paired = paired_ratios(ours, tut)
        report["comparison"] = {
            "paired_throughput_ratios": paired,
            "paired_throughput_ratio_median": statistics.median(paired) if paired else None,
            "paired_note": "meaningful with --interleave, where epoch e of each pipeline ran back to back",
            "throughput_ratio_ours_over_tutorial": ours["median_samples_per_s"] / tut["median_samples_per_s"],
            "throughput_ratio_tutorial_over_ours": tut["median_samples_per_s"] / ours["median_samples_per_s"],
            "throughput_ratio_best_epochs": ours["best_samples_per_s"] / tut["best_samples_per_s"],
            "epoch_time_ratio_tutorial_over_ours": tut["median_epoch_s"] / ours["median_epoch_s"],
            "test_acc_delta_ours_minus_tutorial": ours["test_acc"] - tut["test_acc"],
            "variants_throughput_over_tutorial": {
                name: result["median_samples_per_s"] / tut["median_samples_per_s"] for name, result in report["ours"].items()},
            "note": "samples/s compares fairly: a tutorial epoch is 60,000 samples, ours 55,000 "
                    "(5,000 held out for validation). Medians and bests are over the epochs after the first; "
                    "epoch_cpu_pressure > ~0.05 marks an epoch slowed by other processes",
        }
    print(table(report))
    report.get("tutorial", {}).pop("per_epoch", None)  # epoch_s keeps the per-epoch times
    for result in report["ours"].values():
        result.pop("per_epoch", None)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
