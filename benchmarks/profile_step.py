"""Where a training step's time goes: torch.profiler's table of our default step, op by op.

Builds exactly what ``python run.py`` trains with (the composed config, ``lenet_exp.parts.build_parts``),
runs a few warm-up steps, then profiles ``--steps`` steps of the engine's own ``train_epoch`` (forward,
backward, optimizer update, and the schedule and EMA where the config has them) and prints the ops and
kernels that take the most time, with the count of device events (kernels, copies, fills) per step. On
a GPU it profiles twice: the default step (one CUDA graph replay per batch) and the same step eagerly
(``trainer.cuda_graphs=false``). The profiler adds its own overhead: use the table to see what to cut,
and ``speed.py`` to measure what cutting gained.

Run from the repository root::

    python benchmarks/profile_step.py                     # CPU or GPU, whatever is there
    python benchmarks/profile_step.py --steps 200 --override trainer.compile=true
    python benchmarks/profile_step.py --stack 16          # a stacked group of 16 trials (seeds 0-15)

With ``--stack N`` it profiles the step of a group of N trials (seeds 0 .. N-1, learning rates 1e-3 to
2e-3), built as ``hydra/launcher=stacked`` builds one, and also times, unprofiled, the whole step, the
gradients alone (the graph replay) and the optimizer update alone: which of them bounds the step.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import common  # first: this checkout's src/ on the path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

WARMUP_STEPS = 10  # more than the CUDA graph's warm-up and capture


def build_engine(args, extra: tuple, stack: int, folder: Path):
    """(the engine, its TrainStep, its optimizer, its fast paths) of one run, or of a stacked group of
    ``stack`` trials."""
    from lenet_exp.slots import JobSlot
    from lenet_exp.loop import OneModel, Run, Trial
    from lenet_exp.parts import build_parts, seed_everything
    from lenet_exp.stack.group import build_stack

    if not stack:
        cfg = common.compose_config(args, *extra)
        seed_everything(cfg.seed, cfg.trainer.deterministic)
        parts = build_parts(cfg, JobSlot())
        return OneModel(parts, cfg.trainer), parts.step, parts.optimizer, parts.fast_paths
    trials = []
    for i in range(stack):
        cfg = common.compose_config(args, *extra, f"seed={i}", f"optimizer.lr={1e-3 * (1 + i / stack)}")
        trials.append(Trial(i, Run(cfg, folder / str(i))))  # no file is written
    engine = build_stack(trials, JobSlot())
    return engine, engine.step, engine.optimizer, trials[0].parts.fast_paths


def time_parts(engine, step, optimizer, steps: int) -> dict:
    """Unprofiled ms per step: the whole step, the gradients alone, the optimizer update alone."""
    device = step.device
    with common.Timed(device) as whole:
        engine.train_epoch(lambda: False, lambda: None, steps)
    batch = torch.arange(step.batch_size, device=device).expand(getattr(step, "orders", 1), -1).squeeze(0)
    with common.Timed(device) as gradients:
        for _ in range(steps):
            step(batch, optimizer)
    with common.Timed(device) as update:
        for _ in range(steps):
            optimizer.step()
    return {f"ms_{name}": 1e3 * timed.seconds / steps
            for name, timed in (("step", whole), ("gradients", gradients), ("update", update))}


def profile_steps(args, extra: tuple, steps: int, row_limit: int, stack: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="profile_step_"))
    engine, step, optimizer, fast_paths = build_engine(args, extra, stack, folder)

    def train(n: int) -> None:  # n steps, over as many epochs as that takes
        per_epoch = -(-len(step.split) // step.batch_size)
        for start in range(0, n, per_epoch):
            engine.train_epoch(lambda: False, lambda: None, min(per_epoch, n - start))

    train(WARMUP_STEPS)
    timings = time_parts(engine, step, optimizer, steps) if stack else {}
    cuda = step.device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof, \
            common.Timed(step.device) as timed:
        train(steps)
    print(prof.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                    row_limit=row_limit), flush=True)
    kernels = sum(1 for event in prof.events() if event.device_type == DeviceType.CUDA)
    shutil.rmtree(folder, ignore_errors=True)
    return {"graph": step.graph is not None, "fused_cpu_kernels": fast_paths.fused_cpu_kernels, **timings, "ms_per_step_profiled": 1e3 * timed.seconds / steps,
            "device_events_per_step": kernels / steps if cuda else None}


def main(argv=None) -> int:
    parser = common.parser(__doc__)
    common.add_config_args(parser)
    parser.add_argument("--steps", type=int, default=50, help="profiled steps, after %d warm-up steps" % WARMUP_STEPS)
    parser.add_argument("--rows", type=int, default=25, help="rows of each table")
    parser.add_argument("--stack", type=int, default=0, metavar="N", help="profile a stacked group of N trials")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    setups = {"default": ()}
    if common.compose_config(args).device.type != "cpu" and torch.cuda.is_available():
        setups["eager"] = ("trainer.cuda_graphs=false",)
    for name, extra in setups.items():
        print(f"=== {name} step ({' '.join(extra) or 'the config as composed'})", flush=True)
        summary = profile_steps(args, extra, args.steps, args.rows, args.stack)
        print(f"=== {name}: " + ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                                           for key, value in summary.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
