"""What a stacked group's training step costs per trial, built by the stacked launcher's own code.

    python benchmarks/stacked_step.py --ns 4 8            # --rounds, --steps, --override (e.g. augment=affine)

For each N, three ways to train take turns, round after round, on MNIST with run.py's CPU defaults
(the fused kernel, channels_last), each by its engine's epoch loop in chunks of ``--steps`` steps:

* ``single``: one trial on one thread, as each of joblib's jobs trains when they share the cores;
* ``stacked``: N trials of seeds 0 .. N-1 (each its own data order), built by
  ``lenet_exp.stack.group.build_stack`` as ``hydra/launcher=stacked`` builds a group, on every core;
* ``one_order``: the same N trials with ``data_seed=0``: one data order, each batch shared.

Reported: ms per trial-step (a group's step over N) and, in brackets, the speed over as many
single-threaded trials as there are cores at once (joblib's ideal: its workers do not slow each other).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import common  # first: this checkout's src/ on the path

import torch

VARIANTS = ("single", "stacked", "one_order")


def engines(args, n: int, folder: Path) -> dict:
    """Each variant's engine (``train_epoch(stop_requested, on_step, max_batches)``) and its threads."""
    from lenet_exp.slots import JobSlot
    from lenet_exp.loop import OneModel, Run, Trial
    from lenet_exp.parts import build_parts, seed_everything
    from lenet_exp.stack.group import build_stack

    cfg = common.compose_config(args, "device.threads=1")
    seed_everything(cfg.seed, cfg.trainer.deterministic)
    built = {"single": (OneModel(build_parts(cfg, JobSlot()), cfg.trainer), torch.get_num_threads())}
    for name, extra in (("stacked", ()), ("one_order", ("data_seed=0",))):
        trials = []
        for i in range(n):
            trial_cfg = common.compose_config(args, f"seed={i}", f"optimizer.lr={1e-3 * (1 + i / n)}", *extra)
            trials.append(Trial(i, Run(trial_cfg, folder / f"{name}_{i}")))  # no file is written
        built[name] = (build_stack(trials, JobSlot()), torch.get_num_threads())
        if built[name][0].step.orders != (1 if extra else n):
            sys.exit(f"stacked_step.py: {name} trained {built[name][0].step.orders} data orders")
    return built


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--ns", type=int, nargs="+", default=[4, 8], metavar="N", help="trials per group")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--steps", type=int, default=20, help="steps timed per variant and round")
    p.add_argument("--json-out", default=None, metavar="PATH")
    common.add_config_args(p, device=False)
    args = p.parse_args(argv)
    args.device = "cpu"

    results, cores = {}, None
    for n in args.ns:
        with tempfile.TemporaryDirectory() as folder:
            built = engines(args, n, Path(folder))
            cores = built["stacked"][1]

            def chunk(name: str, steps: int) -> float:
                engine, threads = built[name]
                torch.set_num_threads(threads)
                with common.Timed() as timed:
                    engine.train_epoch(lambda: False, lambda: None, steps)
                return timed.seconds / steps / (1 if name == "single" else n) * 1e3

            for name in VARIANTS:
                chunk(name, 5)  # warm-up
            times = {name: [] for name in VARIANTS}
            for _ in range(args.rounds):  # the variants take turns: a slow spell slows all of them alike
                for name in VARIANTS:
                    times[name].append(chunk(name, args.steps))
        results[n] = {name: statistics.median(t) for name, t in times.items()}

    print(f"ms per trial-step, batch 64, cpu ({cores} threads for a group, 1 for single); median over "
          f"{args.rounds} rounds; in brackets the speed over {cores} single-threaded trials at once")
    rows = [[n, f"{row['single']:.2f}", *(f"{row[name]:.2f} ({row['single'] / cores / row[name]:.2f}x)"
                                          for name in VARIANTS[1:])] for n, row in results.items()]
    print(common.table(rows, ["N", *VARIANTS]))
    report = {"threads": cores, "overrides": args.override, "ms_per_trial_step": {str(n): r for n, r in results.items()}}
    common.write_report(report, args.json_out, echo=False)
    return report


if __name__ == "__main__":
    main()
