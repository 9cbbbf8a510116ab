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
"""

from __future__ import annotations

import common  # first: this checkout's src/ on the path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

WARMUP_STEPS = 10  # more than the CUDA graph's warm-up and capture


def profile_steps(cfg, steps: int, row_limit: int) -> dict:
    from lenet_exp.engine import train_epoch
    from lenet_exp.launch import JobSlot
    from lenet_exp.parts import build_parts, seed_everything

    seed_everything(cfg.seed, cfg.trainer.deterministic)
    parts = build_parts(cfg, JobSlot())

    def train(n: int) -> None:  # n steps, over as many epochs as that takes
        for start in range(0, n, parts.steps_per_epoch):
            train_epoch(parts.step, parts.optimizer, parts.generator, scheduler=parts.scheduler, ema=parts.ema,
                        max_batches=min(parts.steps_per_epoch, n - start))

    train(WARMUP_STEPS)
    cuda = parts.device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof, \
            common.Timed(parts.device) as timed:
        train(steps)
    print(prof.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                    row_limit=row_limit), flush=True)
    kernels = sum(1 for event in prof.events() if event.device_type == DeviceType.CUDA)
    return {"graph": parts.step.graph is not None, "fused_cpu_kernels": parts.fast_paths.fused_cpu_kernels,
            "ms_per_step_profiled": 1e3 * timed.seconds / steps, "device_events_per_step": kernels / steps if cuda else None}


def main(argv=None) -> int:
    parser = common.parser(__doc__)
    common.add_config_args(parser)
    parser.add_argument("--steps", type=int, default=50, help="profiled steps, after %d warm-up steps" % WARMUP_STEPS)
    parser.add_argument("--rows", type=int, default=25, help="rows of each table")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    setups = {"default": ()}
    if common.compose_config(args).device.type != "cpu" and torch.cuda.is_available():
        setups["eager"] = ("trainer.cuda_graphs=false",)
    for name, extra in setups.items():
        print(f"=== {name} step ({' '.join(extra) or 'the config as composed'})", flush=True)
        summary = profile_steps(common.compose_config(args, *extra), args.steps, args.rows)
        print(f"=== {name}: " + ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                                           for key, value in summary.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
