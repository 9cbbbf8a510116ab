"""``python -m lenet_exp.sweeps SWEEP_DIR``: the summary of a sweep directory, written at any time.

E.g. while a Slurm sweep is still running or after one was killed: the same files as at the end of
``python run.py -m``. Exit status 1 if a job failed, diverged or was interrupted, if there is none, or if
a summary file could not be written; 2 if the folder is no sweep's, or cannot all be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from lenet_exp.sweeps.callback import EXIT_JOBS_FAILED
from lenet_exp.files import HYDRA_FOLDER, METRICS, RUNNING, SWEEP_RECORD, folder_holder
from lenet_exp.sweeps.records import NOT_STARTED, find_job_dirs, unreadable_record
from lenet_exp.sweeps.report import write_summary


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lenet_exp.sweeps",
                                     description="Summarise a sweep directory (as at the end of `python run.py -m`).")
    parser.add_argument("sweep_dir", type=Path, help="the sweep's folder (hydra.sweep.dir), which holds multirun.yaml")
    # an earlier summary's goes: it would stand beside this summary's files as if it were of the same results
    parser.add_argument("--no-plot", action="store_true", help="leave out summary.png (and remove an earlier one)")
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="leave out the TensorBoard run `summary` (and remove an earlier one's events)")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} " + ("is not a directory" if args.sweep_dir.exists() else "does not exist"))
    # its summary would be written among the run's own files (a train() run's have no .hydra/)
    if (args.sweep_dir / HYDRA_FOLDER).is_dir() or (args.sweep_dir / METRICS).is_file():
        sweep = args.sweep_dir.resolve().parent
        parser.error(f"{args.sweep_dir} is a run's directory, not a sweep's: " + (
            f"give the sweep directory that holds it, e.g. {sweep}" if (sweep / SWEEP_RECORD).is_file() else
            "a single run has no sweep summary (its metrics.json is its record)"))
    # sweeps up to four levels below, as a checkout holds them (outputs/sweeps/<date>/<time>): not a walk of the tree
    sweeps = [] if (args.sweep_dir / SWEEP_RECORD).is_file() else sorted(
        path.parent for depth in range(1, 5) for path in args.sweep_dir.glob("*/" * depth + SWEEP_RECORD))
    if sweeps:  # e.g. outputs/sweeps: "no job directories found" said nothing of the sweeps it holds
        parser.error(f"{args.sweep_dir} holds {len(sweeps)} sweep{'s' if len(sweeps) != 1 else ''} (" + ", ".join(
            map(str, sweeps[:3])) + (", ..." if len(sweeps) > 3 else "") + "): give the folder of one of them.")
    if not (args.sweep_dir / SWEEP_RECORD).is_file() and (find_job_dirs(args.sweep_dir)
                                                          or any(args.sweep_dir.glob(f"*/{METRICS}"))):
        # e.g. outputs/runs/<date>: its runs would be numbered as one sweep's jobs, and a summary written among them
        parser.error(f"{args.sweep_dir} holds runs but no multirun.yaml, which every sweep writes first: it is no "
                     f"sweep's folder. Give the folder of a `python run.py -m` sweep (its hydra.sweep.dir).")
    # Jobs may still be running here: a job whose metrics.json says running keeps that status (a Slurm job may
    # run on when the sweep's own process has died), and while that process runs, a job without a folder waits.
    # who holds the sweep's lock, read without touching it (a sweep starting meanwhile must be able to take it)
    runner = folder_holder(args.sweep_dir)
    unreadable = unreadable_record(args.sweep_dir)
    if unreadable:  # exit status 2, as for a folder that is none
        parser.error(f"cannot read {unreadable.filename} ({unreadable.strerror}): its job would be listed as not "
                     f"started or failed. Summarise the sweep as a user who can read all of its folder; its summary "
                     f"is left as it was.")
    summary = write_summary(args.sweep_dir, final=False, plot=not args.no_plot, tensorboard=not args.no_tensorboard,
                            runner=runner)
    still_going = (RUNNING, NOT_STARTED) if runner else (RUNNING,)
    failed = any(r.status not in still_going for r in summary.bad_jobs) or not summary.jobs or summary.unwritten
    return EXIT_JOBS_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
