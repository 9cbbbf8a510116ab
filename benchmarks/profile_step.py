"""Where a training step's time goes: torch.profiler's table of our default step, op by op.

Builds exactly what ``python run.py`` trains with (Hydra's compose API on ``configs/``, the package's
``build_parts``), runs a few warm-up steps, then profiles ``--steps`` steps (``TrainStep``'s forward and
backward, then the optimizer update, as ``train_epoch`` runs them; a scheduler and EMA, off by default,
are left out) and prints the ops and kernels that take the most time, with the count of device events
(kernels, copies, fills) per step. On a GPU it profiles twice: the default step (one CUDA
graph replay per batch) and the same step eagerly (``trainer.cuda_graphs=false``). The profiler adds
its own overhead: use the table to see what to cut, and ``speed.py`` to measure what cutting gained.

Run from the repository root::

    python benchmarks/profile_step.py                     # CPU or GPU, whatever is there
    python benchmarks/profile_step.py --steps 200 --override trainer.compile=true
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 10  # more than the CUDA graph's warm-up and capture


def compose(args, extra: tuple[str, ...]):
    from hydra import compose as hydra_compose, initialize_config_dir
    from lenet_exp.schema import register_configs, validate

    register_configs()
    overrides = [f"dataset.root={args.data_root}", "dataset.download=false", f"device.type={args.device}",
                 *args.override, *extra]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=overrides)
    validate(cfg)
    return cfg


def profile_steps(cfg, steps: int, row_limit: int) -> dict:
    from lenet_exp.device import JobSlot
    from lenet_exp.train import build_parts, seed_everything

    seed_everything(cfg.seed, cfg.trainer.deterministic)
    parts = build_parts(cfg, JobSlot())
    step, optimizer, device = parts.step, parts.optimizer, parts.device
    batch_size, n = cfg.trainer.batch_size, len(parts.data.train)
    needed = (WARMUP_STEPS + steps) * batch_size  # full batches only; as many epochs' orders as that takes
    order = torch.cat([torch.randperm(n, device=device, generator=parts.generator) for _ in range(-(-needed // n))])
    batches = order[:needed].view(WARMUP_STEPS + steps, batch_size).unbind()
    parts.model.train()

    def train_step(batch: torch.Tensor) -> None:
        step(batch, optimizer)
        optimizer.step()

    for batch in batches[:WARMUP_STEPS]:
        train_step(batch)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        for batch in batches[WARMUP_STEPS:]:
            train_step(batch)
        if cuda:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
    sort_by = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort_by, row_limit=row_limit), flush=True)
    kernels = sum(1 for event in prof.events() if event.device_type == DeviceType.CUDA)
    return {"graph": step.graph is not None, "fused_cpu_kernels": parts.model.fused_cpu_blocks,
            "ms_per_step_profiled": 1e3 * seconds / steps, "device_events_per_step": kernels / steps if cuda else None}


def parse_args(argv=None) -> argparse.Namespace:
    default_root = os.environ.get("LENET_EXP_DATA") or str(REPO.parent / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--steps", type=int, default=50, help="profiled steps, after %d warm-up steps" % WARMUP_STEPS)
    parser.add_argument("--rows", type=int, default=25, help="rows of each table")
    parser.add_argument("--data-root", default=default_root,
                        help="folder holding MNIST/raw (default: $LENET_EXP_DATA or ../shared/data)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="Hydra override, repeatable, e.g. --override trainer.channels_last=false")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    args.data_root = str(Path(args.data_root).expanduser().resolve())
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))  # works from a checkout even without `pip install -e .`
    from hydra.errors import HydraException
    from lenet_exp.errors import UserError

    try:
        cfg = compose(args, ())
        setups = {"default": ()}
        if cfg.device.type != "cpu" and torch.cuda.is_available():
            setups["eager"] = ("trainer.cuda_graphs=false",)
        for name, extra in setups.items():
            print(f"=== {name} step ({' '.join(extra) or 'the config as composed'})", flush=True)
            summary = profile_steps(compose(args, extra), args.steps, args.rows)
            print(f"=== {name}: " + ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                                               for key, value in summary.items()), flush=True)
    except (HydraException, UserError) as error:
        print(f"profile_step.py: bad config or --override: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
