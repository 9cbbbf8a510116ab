"""No slowdown against another commit: two checkouts of the product, end to end, in one interleaved run.

Makes a ``git worktree`` of ``--base`` (default ``HEAD~1``; ``--new`` likewise, default this working
tree, uncommitted changes included) in a temporary folder, then alternates whole short runs, A B B A
... (``--rounds``: neither side always goes first), of ``python run.py trainer.epochs=E trainer.progress=false OVERRIDES`` from each
checkout, each into a temporary ``hydra.run.dir`` and with its own ``src/`` as ``PYTHONPATH`` (so
that the editable install does not decide which code runs). Each run's metrics.json gives its median
s/epoch (after the first), samples/s, wall time, start-up and test accuracy; the table puts the two
sides of each round together, with the round's ratio new / base samples/s and the median of those
ratios (paired: a slow spell of the machine slows both runs of a round). Before the rounds, one
untimed 1-epoch run per side (``--warmup``) compiles what a checkout compiles on first use (the fused
CPU kernel, where no build of its source is cached yet) and warms the caches.

    python benchmarks/ab.py                                  # this working tree against HEAD~1
    python benchmarks/ab.py --base HEAD --rounds 5 --epochs 2 --device cpu --json-out ab.json
    python benchmarks/ab.py --base v0 --new HEAD --override dataset=fashion_mnist
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import common

FIELDS = [  # label, format, key of a run's summary
    ("status", "", "status"), ("s/epoch", ".3f", "median_epoch_s"), ("samples/s", ",.0f", "samples_per_s"),
    ("startup s", ".2f", "startup_s"), ("wall s", ".1f", "wall_time_s"), ("process s", ".1f", "process_s"),
    ("pressure", ".2f", "cpu_pressure"), ("test acc", ".4f", "test_acc"),
]


def run(side: dict, run_dir: Path, epochs: int, overrides: list[str]) -> dict:
    """One whole ``python run.py`` of a checkout; its metrics.json's figures, or why it failed."""
    command = [sys.executable, "run.py", f"trainer.epochs={epochs}", "trainer.progress=false", *overrides,
               f"hydra.run.dir={run_dir}"]
    with common.Timed() as timed:
        done = subprocess.run(command, cwd=side["checkout"], env=side["env"], capture_output=True, text=True)
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = {}
    result = {"status": metrics.get("status") or "failed", "exit": done.returncode,
              **{key: metrics.get(key) for key in ("median_epoch_s", "samples_per_s", "wall_time_s")},
              "startup_s": (metrics.get("timings") or {}).get("startup_s"),
              "test_acc": (metrics.get("test") or {}).get("acc"), "val_acc": (metrics.get("val") or {}).get("acc"),
              "process_s": timed.seconds, "cpu_pressure": timed.pressure}
    if done.returncode or result["status"] != "completed":
        result["error"] = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        print(f"{side['name']} run failed: {result['error']}", file=sys.stderr, flush=True)
    return result


def main(argv=None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--base", default="HEAD~1", help="the commit to compare against (any git revision)")
    parser.add_argument("--new", default=None, help="the commit to measure (default: this working tree as it is)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs: base then new, then new then base, ...")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (>= 2 for a median after the first)")
    parser.add_argument("--warmup", type=int, default=1, metavar="N", help="untimed 1-epoch runs per side first")
    common.add_config_args(parser)
    common.add_quiet_args(parser, default=0.0)
    args = parser.parse_args(argv)
    overrides = [f"dataset.root={args.data_root}", "dataset.download=false", f"device.type={args.device}", *args.override]

    with common.checkouts({"base": args.base, "new": args.new}, prefix="lenet_exp-ab-") as (sides, tmp):
        for n in range(args.warmup):
            for side in sides.values():
                run(side, tmp / f"warmup{n}-{side['name']}", 1, overrides)
        rounds = []
        for r in range(1, args.rounds + 1):
            results = {}
            turns = list(sides.values())
            for side in turns if r % 2 else turns[::-1]:  # A B, B A: a drift within rounds evens out
                if args.wait_quiet:
                    common.wait_quiet(args.wait_quiet)
                results[side["name"]] = run(side, tmp / f"{r}-{side['name']}", args.epochs, overrides)
            base, new = results["base"]["samples_per_s"], results["new"]["samples_per_s"]
            rounds.append({"round": r, **results, "ratio_samples_per_s": new / base if base and new else None})
            print(f"round {r}/{args.rounds}: " + ", ".join(
                f"{name} {common.fmt(results[name]['samples_per_s'], ',.0f')} samples/s" for name in sides),
                file=sys.stderr, flush=True)

    ratios = [r["ratio_samples_per_s"] for r in rounds if r["ratio_samples_per_s"] is not None]
    report = {
        **{name: {key: side[key] for key in ("rev", "commit", "uncommitted_changes")} for name, side in sides.items()},
        "command": ["python", "run.py", f"trainer.epochs={args.epochs}", "trainer.progress=false", *overrides],
        "warmup_runs": args.warmup, "rounds": rounds, "ratios_samples_per_s": ratios,
        "median_ratio_samples_per_s": statistics.median(ratios) if ratios else None,
        "completed": all(r[name]["status"] == "completed" for r in rounds for name in sides),
    }
    rows = [[str(r["round"]), name, *(common.fmt(r[name][key], spec) for _, spec, key in FIELDS),
             common.fmt(r["ratio_samples_per_s"], ".3f") + "x" if name == "new" else ""]
            for r in rounds for name in sides]
    print(common.describe_sides(sides))
    print(f"each run: {' '.join(report['command'])}\n")
    print(common.table(rows, header=["round", "side", *(label for label, _, _ in FIELDS), "new/base"], left=(0, 1)))
    print(f"\nmedian new/base samples/s: {common.fmt(report['median_ratio_samples_per_s'], '.3f')}x "
          f"over {len(ratios)} rounds" + ("" if report["completed"] else "  (some runs FAILED)"))
    common.write_report(report, args.json_out, echo=False)
    return 0 if report["completed"] else 1


if __name__ == "__main__":
    sys.exit(main())
