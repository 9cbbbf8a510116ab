"""Sweeps as first-class runs: the search space rule and one summary of every sweep.

* space.py    what a sweep searches: the rule that keeps command-line sweeps from multiplying with
              the default study, and the searched keys (the summary's columns)
* records.py  one record per job directory, seed groups (mean +- std over seeds), the best job
* table.py    the summary as a text table (console) and as markdown (TensorBoard)
* plot.py     validation accuracy against each swept parameter (a matplotlib Figure)
* report.py   summary.csv, .json, .md, .png and the TensorBoard run ``summary``
* callback.py ``SweepSummary``, the Hydra callback that applies the rule and writes the summary
* ending.py   how run.py ends a sweep that stopped or whose job died: its summary, how to go on, the status
* __main__.py ``python -m lenet_exp.sweeps SWEEP_DIR``: the same summary, written later

Hydra instantiates the callback for single runs too, so importing this package imports neither torch
nor matplotlib: they are imported once a summary is written.
"""

from lenet_exp.sweeps.callback import SweepSummary
from lenet_exp.sweeps.records import JobRecord, Summary, best_job, seed_groups, summarize
from lenet_exp.sweeps.report import write_summary

__all__ = ["JobRecord", "Summary", "SweepSummary", "best_job", "seed_groups", "summarize", "write_summary"]
