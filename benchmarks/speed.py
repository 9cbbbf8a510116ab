"""Speed, side by side: the LeNet-5 tutorial's pipeline against this runner's default recipe.

Both train in ONE process, on the same data, the same architecture, batch size and optimizer:

1. **tutorial** -- the pipeline of the "LeNet-5 from scratch in PyTorch" tutorial as it was written:
   ``torchvision.datasets.MNIST`` with per-sample PIL transforms (Resize 32x32, ToTensor, Normalize),
   ``DataLoader(batch_size=64, shuffle=True)`` in the main process (``num_workers=0``) over all
   60,000 training images, the tutorial's model class (written inline below), ``nn.CrossEntropyLoss``,
   Adam lr 1e-3 and its loop, which reads ``loss.item()`` every 400 steps to print it.
2. **ours** -- what ``python run.py`` trains, trained by the product's own loop: the config is
   composed from ``configs/`` (plus any ``--override``) and ``lenet_exp.loop.Run`` trains it into a
   temporary run directory (validation, checkpoints and metrics.json after each epoch, the final test
   with the best epoch's weights), on 55,000 training images (5,000 are held out for validation).
   Its epoch times are the run's own ``time/epoch_s``, handed over by ``on_epoch_end``.

Each ``--variant 'NAME: overrides'`` trains (2) once more with those overrides, in the same process;
the JSON's ``ours`` maps each name (the plain run is ``ours``) to its measurements.

Each pipeline runs in a thread of its own and hands the turn back after each epoch, so only one
computes at a time: one pipeline after another, or with ``--interleave`` epoch by epoch in turn.

The two epochs hold different numbers of samples (60,000 vs 55,000), so compare **samples/s**, not
seconds per epoch. Epoch times exclude evaluation for both (as ``run.py``'s ``time/epoch_s`` does);
the first epoch pays for warm-up (and for ``torch.compile``), so the steady-state figure is the
median over the epochs after the first.

Run from the repository root::

    python benchmarks/speed.py --epochs 3                       # CPU or GPU, whatever is there
    python benchmarks/speed.py --device cpu --threads 2 --json-out speed.json
    python benchmarks/speed.py --override trainer.channels_last=true --override trainer.compile=true

The tutorial's plain-text progress lines go to stderr; the table and the JSON go to stdout.
"""

from __future__ import annotations

import gc
import math
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import common  # first: this checkout's src/ on the path

import torch
import torchvision
from torch import nn
from torchvision import transforms

TUTORIAL_PRINT_EVERY = 400  # the tutorial reads loss.item() every 400 steps to print it
STARTED = time.perf_counter()
Work = Callable[[Callable[[dict], None]], dict]  # a pipeline: work(end_epoch) -> its result; end_epoch(row) after each epoch


class Phase:
    """Host and GPU memory of one pipeline.

    ``ru_maxrss`` is a process-wide high-water mark: on Linux it is reset at the start of each pipeline
    (``/proc/self/clear_refs``), so each peak is its own. With ``shared`` (pipelines interleaved) or
    where the reset fails, ``peak_rss_is_own`` is false and the peak is the process's.
    """

    def __init__(self, device: torch.device, shared: bool):
        self.device, self.shared = device, shared

    def __enter__(self) -> "Phase":
        self.peak_rss_is_own = not self.shared and common.reset_peak_rss()
        self.rss_start_mib = None if self.shared else common.rss_mib()
        if self.device.type == "cuda" and not self.shared:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        common.sync(self.device)
        self.wall_s = None if self.shared else time.perf_counter() - self.started  # shared: others' epochs in it
        peak = common.peak_rss_mib()
        self.memory = {
            "rss_at_start_mib": self.rss_start_mib, "peak_rss_mib": peak, "peak_rss_is_own": self.peak_rss_is_own,
            "peak_rss_delta_mib": peak - self.rss_start_mib if self.rss_start_mib else None,
            "peak_gpu_allocated_mib": torch.cuda.max_memory_allocated(self.device) / 2**20
            if self.device.type == "cuda" else None,
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


def tutorial(args, device: torch.device, mean: float, std: float, num_classes: int, threads: int) -> Work:
    def work(end_epoch: Callable[[dict], None]) -> dict:
        torch.set_num_threads(threads)  # this thread's own setting: a variant's device.threads stays its own
        torch.manual_seed(args.seed)
        dataset_class = getattr(torchvision.datasets, {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[args.dataset])
        with Phase(device, args.interleave) as phase:
            with common.Timed(device) as setup:
                # The tutorial normalised its test set with mean 0.1325 / std 0.3105, which are not the
                # training statistics -- a bug that costs accuracy. Both splits use the train statistics here.
                transform = transforms.Compose([
                    transforms.Resize((32, 32)),
                    transforms.ToTensor(),
                    transforms.Normalize(mean=(mean,), std=(std,))])
                train_set = dataset_class(root=args.data_root, train=True, download=False, transform=transform)
                test_set = dataset_class(root=args.data_root, train=False, download=False, transform=transform)
                # its own shuffling generator: interleaved, our runs reseed the global one between its epochs
                train_loader = torch.utils.data.DataLoader(dataset=train_set, batch_size=args.batch_size, shuffle=True,
                                                           generator=torch.Generator().manual_seed(args.seed))
                test_loader = torch.utils.data.DataLoader(dataset=test_set, batch_size=args.batch_size, shuffle=False)

                model = TutorialLeNet5(num_classes).to(device)
                cost = nn.CrossEntropyLoss()
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            total_step = len(train_loader)

            for epoch in range(1, args.epochs + 1):
                samples = 0
                with common.Timed(device) as timed:
                    model.train()
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
                end_epoch({"epoch": epoch, "seconds": timed.seconds, "samples": samples,
                           "samples_per_s": samples / timed.seconds})

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
        return {"pipeline": "tutorial", "setup_s": setup.seconds, "test_acc": correct / total,
                "threads": torch.get_num_threads(), "wall_s": phase.wall_s, "memory": phase.memory,
                "parameters": sum(p.numel() for p in model.parameters())}
    return work


# ---------------------------------------------------------------------------- 2. our runner
def ours(cfg, device: torch.device, shared: bool) -> Work:
    """``lenet_exp.loop.Run``, run.py's loop, into a temporary run directory; the rows are its epochs'."""
    from lenet_exp.files import read_json
    from lenet_exp.loop import Run
    from lenet_exp.models import build_model

    def work(end_epoch: Callable[[dict], None]) -> dict:
        val_acc = []

        def on_epoch_end(row: dict) -> None:  # called by the loop outside its timed part
            val_acc.append(row["val/acc"])
            seconds, rate = row["time/epoch_s"], row["time/samples_per_s"]
            end_epoch({"epoch": row["epoch"], "seconds": seconds, "samples": round(seconds * rate), "samples_per_s": rate})

        with Phase(device, shared) as phase, tempfile.TemporaryDirectory(prefix="speed-") as run_dir:
            outcome = Run(cfg, Path(run_dir), on_epoch_end=on_epoch_end).train()
            metrics = read_json(Path(run_dir) / "metrics.json")
        if outcome.status != "completed":
            raise RuntimeError(f"the run {outcome.status}: {outcome.message}")
        return {"pipeline": "ours", "cuda_graphs": metrics["cuda_graphs"], "fused_cpu_kernels": metrics["fused_cpu_kernels"],
                "setup_s": metrics["timings"]["startup_s"], "test_acc": metrics["test"]["acc"], "val_acc": val_acc,
                "threads": torch.get_num_threads(), "wall_s": phase.wall_s, "memory": phase.memory,
                "parameters": sum(p.numel() for p in build_model(cfg.model, cfg.dataset.num_classes,
                                                                   cfg.dataset.image_size).parameters())}
    return work


# ------------------------------------------------------------------------------------- turns
def in_turns(work: Work) -> Iterator[dict]:
    """``work`` in a thread of its own, as a generator: each ``end_epoch(row)`` pauses the thread and
    yields ``row``, so only one pipeline computes at a time; the generator returns the work's result.
    (Each thread also keeps its own CPU threads: torch's setting is per thread.)"""
    go, out = queue.SimpleQueue(), queue.SimpleQueue()

    def end_epoch(row: dict) -> None:
        out.put(("row", row))
        go.get()

    def body() -> None:
        go.get()
        try:
            out.put(("done", work(end_epoch)))
        except BaseException as error:
            out.put(("error", error))

    threading.Thread(target=body, daemon=True).start()
    while True:
        go.put(None)
        kind, value = out.get()
        if kind == "error":
            raise value
        if kind == "done":
            return value
        yield value


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


def run_all(pipelines: dict[str, Work], args, required: set[str]) -> tuple[dict[str, dict], dict[str, str]]:
    """Each pipeline to its end, one after another, or with ``--interleave`` all at once, taking turns
    epoch by epoch (so that a slow spell of a noisy machine hits all of them alike). Before each turn
    ``--wait-quiet``; each row gets its turn's CPU pressure (for ours the turn also holds the epoch's
    validation). A pipeline not in ``required`` that raises is reported as failed; the others go on."""
    turns = {name: in_turns(work) for name, work in pipelines.items()}
    rows: dict[str, list[dict]] = {name: [] for name in pipelines}
    results, failed = {}, {}

    def turn(name: str) -> bool:  # one epoch; False once the pipeline is done
        if args.wait_quiet:
            common.wait_quiet(args.wait_quiet)  # outside the timed region
        try:
            with common.Timed() as timed:
                row = next(turns[name])
            rows[name].append({**row, "cpu_pressure": timed.pressure, "ended_at": time.perf_counter() - STARTED})
            return True
        except StopIteration as done:
            results[name] = {**done.value, **summarise(rows[name]), "per_epoch": rows[name]}
        except Exception as error:  # a knob that fails on this device is reported; the others still run
            if name in required:
                raise
            failed[name] = f"{type(error).__name__}: {error}"
            print(f"{name}: FAILED: {failed[name]}", file=sys.stderr, flush=True)
        gc.collect()  # the pipeline's model, data and CUDA graph, so that later peaks are their own
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return False

    if args.interleave:
        running = list(pipelines)
        while running:
            running = [name for name in running if turn(name)]
    else:
        for name in pipelines:
            while turn(name):
                pass
    return results, failed


def paired_ratios(ours: dict, tutorial: dict) -> list[float]:
    """samples/s of each of our epochs after the first over the tutorial's epoch of the same number."""
    return [round(a["samples_per_s"] / b["samples_per_s"], 4) for a, b in zip(ours["per_epoch"][1:], tutorial["per_epoch"][1:])]


# ------------------------------------------------------------------------------------- reporting
ROWS = [  # label, format, key (memory.* in the phase's memory)
    ("samples per epoch", "d", "samples_per_epoch"),
    ("setup s (data + model)", ".2f", "setup_s"),
    ("first epoch s", ".2f", "first_epoch_s"),
    ("median epoch s (after 1st)", ".3f", "median_epoch_s"),
    ("samples/s (median)", ",.0f", "median_samples_per_s"),
    ("best epoch s (after 1st)", ".3f", "best_epoch_s"),
    ("samples/s (best epoch)", ",.0f", "best_samples_per_s"),
    ("test accuracy", ".4f", "test_acc"),
    ("phase wall s (incl. eval)", ".1f", "wall_s"),
    ("peak host RSS MiB (phase)", ",.0f", "memory.peak_rss_mib"),
    ("  RSS at phase start MiB", ",.0f", "memory.rss_at_start_mib"),
    ("peak GPU allocated MiB", ",.1f", "memory.peak_gpu_allocated_mib"),
]


def speed_table(report: dict) -> str:
    """Tutorial and each of our variants side by side, with each variant's ratio to the tutorial."""
    columns = ([("tutorial", report["tutorial"])] if "tutorial" in report else []) + list(report["ours"].items())

    def value(result: dict, key: str):
        return result["memory"][key[7:]] if key.startswith("memory.") else result[key]

    rows = [[label, *(common.fmt(value(result, key), spec) for _, result in columns)] for label, spec, key in ROWS]
    if "tutorial" in report:
        tut = report["tutorial"]
        rows.append(["ours / tutorial samples/s", "1.00x", *(
            f"{result['median_samples_per_s'] / tut['median_samples_per_s']:.2f}x" for _, result in columns[1:])])
        if report["interleaved"]:  # the median of the epoch-by-epoch ratios: they ran back to back
            rows.append(["  paired, median over epochs", "", *(
                f"{statistics.median(paired_ratios(result, tut) or [math.nan]):.2f}x" for _, result in columns[1:])])
    lines = [common.table(rows, header=["", *(name for name, _ in columns)]), "",
             f"device: {report['device']}  threads: {report['threads']}  epochs: {report['epochs']}  "
             f"batch: {report['batch_size']}  dataset: {report['dataset']}"]
    lines += [f"{name}: {' '.join(overrides) or '(no overrides)'}" for name, overrides in report["ours_overrides"].items()]
    lines += [f"{name}: FAILED: {error}" for name, error in report.get("failed_variants", {}).items()]
    if report["interleaved"]:
        lines.append("note: the pipelines ran interleaved, epoch by epoch: peak memory is the process's, not each one's")
    elif not all(result["memory"]["peak_rss_is_own"] for _, result in columns):
        lines.append("note: peak RSS could not be reset between phases; it is the process high-water mark "
                     "(the tutorial ran first), so only an increase in a later phase is meaningful")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = common.parser(__doc__)
    common.add_config_args(parser)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per pipeline (>= 2 for a steady-state median)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dataset", choices=("mnist", "fashion_mnist"), default="mnist")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for both pipelines (default: the cores available, as run.py uses)")
    parser.add_argument("--seed", type=int, default=0)
    common.add_variant_arg(parser, "also measure our pipeline with these overrides (on top of --override), in "
                                   "the same process; repeatable, e.g. --variant 'bf16: trainer.precision=bf16'")
    parser.add_argument("--skip-tutorial", action="store_true", help="measure only our pipeline")
    parser.add_argument("--interleave", action="store_true",
                        help="run the pipelines at once, taking turns epoch by epoch, so that a slow spell of a "
                             "noisy machine hits all of them; the JSON adds each epoch's paired ratio. Peak "
                             "memory is then the process's, not each pipeline's")
    common.add_quiet_args(parser, default=0.0)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from lenet_exp.data import read_split
    from lenet_exp.device import describe, resolve_device
    from lenet_exp.slots import JobSlot, available_cores

    base = [f"dataset={args.dataset}", f"trainer.batch_size={args.batch_size}", f"trainer.epochs={args.epochs}",
            f"seed={args.seed}", "trainer.progress=false", "trainer.log_images=false",
            *([f"device.threads={args.threads}"] if args.threads else [])]
    variants = [("ours", ())] + args.variant
    configs, refused = {"ours": common.compose_config(args, base=base)}, {}
    for name, extra in args.variant:  # a knob this device cannot run is reported; the other variants still run
        try:
            configs[name] = common.composed(args, *extra, base=base)
        except common.BadConfig as error:
            refused[name] = str(error)
            print(f"{name}: FAILED: {refused[name]}", file=sys.stderr, flush=True)
    cfg = configs["ours"]
    # An --override of trainer.epochs or trainer.batch_size applies to both pipelines.
    args.epochs, args.batch_size = cfg.trainer.epochs, cfg.trainer.batch_size
    # Both pipelines get the same threads: what run.py would use (device.threads or all cores).
    device = resolve_device(cfg.device, JobSlot())
    threads = torch.get_num_threads()
    mean, std = cfg.dataset.mean, cfg.dataset.std  # the train split's statistics, as ours uses
    if mean is None or std is None:
        pixels = read_split(cfg.dataset, True)[0].float().div_(255)
        mean, std = float(pixels.mean()), float(pixels.std())

    report = {
        "dataset": args.dataset, "epochs": args.epochs, "batch_size": args.batch_size,
        "device": describe(device), "threads": threads, "cores_available": available_cores(),
        "normalisation": {"mean": mean, "std": std},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__},
        "ours_overrides": {name: [*args.override, *extra] for name, extra in variants},
        "interleaved": args.interleave,
    }
    # The tutorial first: should the peak-RSS reset be unavailable, its figure is then still its own.
    pipelines = {} if args.skip_tutorial else {"tutorial": tutorial(args, device, mean, std, cfg.dataset.num_classes, threads)}
    pipelines.update({name: ours(variant_cfg, device, args.interleave) for name, variant_cfg in configs.items()})
    results, failed = run_all(pipelines, args, {"tutorial", "ours"})
    failed.update(refused)
    if "tutorial" in results:
        report["tutorial"] = results.pop("tutorial")
    report["ours"] = {name: results[name] for name in configs if name in results}
    for name, result in report["ours"].items():
        print(f"{name}: median epoch {result['median_epoch_s']:.3f} s", file=sys.stderr, flush=True)
    if failed:
        report["failed_variants"] = failed
    if not args.skip_tutorial:
        tut, ours_result = report["tutorial"], report["ours"]["ours"]
        # epoch e of ours against epoch e of the tutorial (after the first): with --interleave they ran
        # back to back, so a slow spell of the machine slows both
        paired = paired_ratios(ours_result, tut)
        report["comparison"] = {
            "paired_throughput_ratios": paired,
            "paired_throughput_ratio_median": statistics.median(paired) if paired else None,
            "paired_note": "meaningful with --interleave, where epoch e of each pipeline ran back to back",
            "throughput_ratio_ours_over_tutorial": ours_result["median_samples_per_s"] / tut["median_samples_per_s"],
            "throughput_ratio_tutorial_over_ours": tut["median_samples_per_s"] / ours_result["median_samples_per_s"],
            "throughput_ratio_best_epochs": ours_result["best_samples_per_s"] / tut["best_samples_per_s"],
            "epoch_time_ratio_tutorial_over_ours": tut["median_epoch_s"] / ours_result["median_epoch_s"],
            "test_acc_delta_ours_minus_tutorial": ours_result["test_acc"] - tut["test_acc"],
            "variants_throughput_over_tutorial": {
                name: result["median_samples_per_s"] / tut["median_samples_per_s"] for name, result in report["ours"].items()},
            "note": "samples/s compares fairly: a tutorial epoch is 60,000 samples, ours 55,000 "
                    "(5,000 held out for validation). Medians and bests are over the epochs after the first; "
                    "epoch_cpu_pressure > ~0.05 marks an epoch slowed by other processes",
        }
    print(speed_table(report))
    for result in [report.get("tutorial", {}), *report["ours"].values()]:
        result.pop("per_epoch", None)  # epoch_s keeps the per-epoch times
    common.write_report(report, args.json_out)
    return report


if __name__ == "__main__":
    main()
