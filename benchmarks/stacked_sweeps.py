"""Sweeps of N trials (learning rate x seed) with the stacked, basic and joblib launchers: wall time
including start-up, trial-samples per second, and the trials' mean test accuracy.

    python benchmarks/stacked_sweeps.py --device cpu --ns 1 4 8 --epochs 1
    python benchmarks/stacked_sweeps.py --device cuda --ns 1 4 8 16 32 --epochs 10 --json-out sweeps.json

Each sweep is one whole ``python run.py -m hydra/launcher=L optimizer.lr=... seed=...`` in a process of
its own, into a temporary sweep folder; for each N the launchers take turns (a slow spell of the
machine then slows all of them alike), and ``--rounds`` repeats all of it, taking turns again (the table
shows each sweep's median wall time). ``--sweeps`` names the sweeps instead (``basic:1 stacked:16
stacked:32``: one trial alone, the reference, without N trials of the basic launcher; ``stacked:16:KEY=VALUE``
adds overrides of its own to a sweep, e.g. ``stacked:16:trainer.cudnn_benchmark=true``). ``--launchers`` picks them; joblib runs ``--joblib-jobs`` jobs
at once, and ``stacked_split`` (not run by default) splits the N trials into ``--joblib-jobs``
stacked groups trained at once, each in a submitit subprocess with its share of the cores. The
ratios compare each launcher's wall time with the stacked launcher's at the same N, and with one trial's
basic sweep (the targets' reference); the longest job's start-up, epochs and final test show where a
group's wall time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import common

LRS = ["1e-3", "3e-3", "5e-4", "2e-3", "7e-4", "1.5e-3", "4e-4", "2.5e-3"]
LAUNCHERS = {"stacked": ["hydra/launcher=stacked"], "basic": [], "joblib": ["hydra/launcher=joblib"],
             # --joblib-jobs stacked groups at once, each in a submitit subprocess with its share of the cores
             "stacked_split": ["hydra/launcher=stacked", "hydra.launcher.submitit.cluster=local"]}


def grid(n: int) -> list[str]:
    """N trials as learning rates x seeds: 1 = 1 x 1, 4 = 2 x 2, 8 = 4 x 2, 16 = 4 x 4, 32 = 8 x 4."""
    seeds = 1 if n == 1 else 2 if n <= 8 else 4
    lrs = n // seeds
    if lrs * seeds != n or lrs > len(LRS):
        sys.exit(f"stacked_sweeps.py: N={n} is not 1, 2, 4, 8, 16 or 32 (learning rates x seeds)")
    # range() is a sweep even for one seed: the default study then stays out (lenet_exp.sweeps.space)
    return [f"optimizer.lr={','.join(LRS[:lrs])}", f"seed=range(0,{seeds})"]


def sweep(launcher: str, n: int, own: tuple[str, ...], args, folder: Path) -> dict:
    """One sweep of ``launcher`` over N trials, with the sweep's ``own`` overrides after ``--override``'s."""
    command = [sys.executable, "run.py", "-m", *LAUNCHERS[launcher], *grid(n), f"trainer.epochs={args.epochs}",
               "trainer.progress=false", f"dataset.root={args.data_root}", "dataset.download=false",
               f"device.type={args.device}", *args.override, *own, f"hydra.sweep.dir={folder}"]
    if launcher == "joblib":
        command.append(f"hydra.launcher.n_jobs={args.joblib_jobs}")
    if launcher == "stacked_split":
        cores = max(1, (os.cpu_count() or 1) // args.joblib_jobs)
        command += [f"hydra.launcher.max_stack={max(1, -(-n // args.joblib_jobs))}",
                    f"hydra.launcher.submitit.cpus_per_task={cores}"]
    if args.wait_quiet:
        common.wait_quiet(args.wait_quiet)
    with common.Timed() as timed:
        done = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("*/metrics.json"))]
    if len(runs) != n:
        sys.exit(f"stacked_sweeps.py: the {launcher} sweep ran {len(runs)} jobs, not {n}: {' '.join(command)}")
    completed = [m for m in runs if m.get("status") == "completed"]
    trained = sum(m["epochs_done"] * (m["samples_per_s"] or 0) * (m["median_epoch_s"] or 0) for m in completed)
    accuracies = [m["test"]["acc"] for m in completed]
    timings = [m.get("timings") or {} for m in completed]
    result = {"launcher": launcher, "n": n, "overrides": list(own), "exit": done.returncode, "completed": len(completed),
              "wall_s": timed.seconds, "cpu_pressure": timed.pressure,
              "trial_samples_per_s": trained / timed.seconds,  # every trial's samples over the sweep's wall time
              # where a stacked group's wall time goes, in the longest job's parts: its start-up (from the
              # process's start: imports, every job's config, data, models), the epochs (validation and
              # checkpoints included) and the final test with its figures, which the group's trials share
              **{part: max((t.get(part, 0.0) for t in timings), default=0.0)
                 for part in ("startup_s", "epochs_s", "test_s")},
              "test_acc_mean": statistics.mean(accuracies) if accuracies else None,
              "test_acc_std": statistics.stdev(accuracies) if len(accuracies) > 1 else None}
    if done.returncode or len(completed) != n:
        result["error"] = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        print(f"{label(result)} N={n} failed: {result['error']}", file=sys.stderr, flush=True)
    print(f"N={n} {label(result)}: {timed.seconds:.1f} s", file=sys.stderr, flush=True)
    return result


def label(result: dict) -> str:
    """The launcher, and the sweep's own overrides, if any."""
    return " ".join([result["launcher"], *result["overrides"]])


def launcher_and_n(text: str) -> tuple[str, int, tuple[str, ...]]:
    """``LAUNCHER:N`` or ``LAUNCHER:N:KEY=VALUE ...`` -> (launcher, N, the sweep's own overrides)."""
    launcher, _, rest = text.partition(":")
    n, _, overrides = rest.partition(":")
    own = tuple(overrides.split())
    if launcher not in LAUNCHERS or not n.isdigit() or not all("=" in override for override in own):
        raise argparse.ArgumentTypeError(f"expected LAUNCHER:N or LAUNCHER:N:KEY=VALUE with LAUNCHER one of "
                                         f"{', '.join(LAUNCHERS)}, got {text!r}")
    return launcher, int(n), own


def median_round(rounds: list[dict]) -> dict:
    """One sweep's result over its rounds: the round of the median wall time, with every round's wall time."""
    ordered = sorted(rounds, key=lambda r: r["wall_s"])
    return {**ordered[(len(ordered) - 1) // 2], "walls_s": [r["wall_s"] for r in rounds]}


def main(argv=None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--ns", type=int, nargs="+", default=[1, 4, 8], metavar="N", help="trials per sweep")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--launchers", nargs="+", choices=list(LAUNCHERS), default=["stacked", "basic", "joblib"])
    parser.add_argument("--sweeps", nargs="+", type=launcher_and_n, metavar="LAUNCHER:N[:KEY=VALUE]",
                        help="these sweeps instead of every N with every launcher, each with its own overrides if given")
    parser.add_argument("--rounds", type=int, default=1, help="times each sweep runs, the sweeps taking turns")
    parser.add_argument("--joblib-jobs", type=int, default=2,
                        help="joblib's n_jobs, and stacked_split's groups at once (default 2)")
    common.add_config_args(parser)
    common.add_quiet_args(parser, default=0.0)
    args = parser.parse_args(argv)
    sweeps = args.sweeps or [(launcher, n, ()) for n in args.ns for launcher in args.launchers]
    for _, n, _ in sweeps:
        grid(n)  # a bad N fails before anything runs

    tmp = Path(tempfile.mkdtemp(prefix="lenet_exp-sweeps-"))
    rounds: dict[tuple, list[dict]] = {}
    try:
        for number in range(args.rounds):
            for index, (launcher, n, own) in enumerate(sweeps):
                folder = tmp / f"{index}-{n}-{launcher}-{number}"
                rounds.setdefault((launcher, n, own), []).append(sweep(launcher, n, own, args, folder))
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = [median_round(r) for r in rounds.values()]
    # the references: the stacked sweep of each N and the basic sweep of one trial, without overrides of their own
    stacked = {r["n"]: r["wall_s"] for r in results if r["launcher"] == "stacked" and not r["overrides"]}
    alone = next((r["wall_s"] for r in results if r["launcher"] == "basic" and r["n"] == 1 and not r["overrides"]), None)
    for r in results:
        r["wall_over_stacked"] = r["wall_s"] / stacked[r["n"]] if r["n"] in stacked else None
        r["wall_over_one_trial"] = r["wall_s"] / alone if alone else None
    rows = [[str(r["n"]), label(r), f"{r['completed']}/{r['n']}", common.fmt(r["wall_s"], ".1f"),
             common.fmt(r["wall_s"] / r["n"], ".1f"), common.fmt(r["trial_samples_per_s"], ",.0f"),
             *(common.fmt(r[ratio], ".2f") + "x" if r[ratio] else "-" for ratio in ("wall_over_stacked", "wall_over_one_trial")),
             *(common.fmt(r[part], ".1f") for part in ("startup_s", "epochs_s", "test_s")),
             common.fmt(r["test_acc_mean"], ".4f") + (f" ± {r['test_acc_std']:.4f}" if r["test_acc_std"] else ""),
             common.fmt(r["cpu_pressure"], ".2f")] for r in results]
    print(f"{args.epochs} epoch(s) per trial on {args.device}; learning rate x seed; joblib n_jobs={args.joblib_jobs}; "
          f"median of {args.rounds} round(s)\n")
    print(common.table(rows, header=["N", "launcher", "done", "wall s", "s/trial", "trial-samples/s",
                                     "wall/stacked", "wall/1 trial", "start-up s", "epochs s", "test s", "test acc",
                                     "pressure"],
                       left=(0, 1)))
    ok = all(r["completed"] == r["n"] and r["exit"] == 0 for r in results)
    common.write_report({"epochs": args.epochs, "device": args.device, "overrides": args.override,
                         "joblib_jobs": args.joblib_jobs, "results": results, "completed": ok},
                        args.json_out, echo=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
