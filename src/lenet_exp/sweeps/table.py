"""The summary as text: the table printed at the end of a sweep, and its markdown for TensorBoard."""

from __future__ import annotations

import os
from typing import Optional

from lenet_exp.files import COMPLETED, INTERRUPTED
from lenet_exp.resume import CONTINUE_WITH
from lenet_exp.sweeps.records import (SEED_KEY, Summary, as_float, by_accuracy, ranking_metric,
                                      setting_keys)


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _mean_pm_std(mean: Optional[float], std: Optional[float]) -> str:
    return "-" if mean is None else f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _short(value: Optional[str]) -> str:
    """A swept value for the printed table: long floats (as Optuna draws them) to 4 significant digits, and
    large ones as 1e+05 (Hydra writes 1e5 as 100000.0, 1e6 as 1e+06: one column, two styles); an integer
    (a seed) as it is."""
    value = "" if value is None else str(value)
    number = as_float(value)
    whole = value.lstrip("+-").isdigit()
    if number is None or whole:
        return value
    return f"{number:.4g}" if len(value) > 8 or abs(number) >= 1e5 else value


def _shared_path_parts_left_out(values: list[str]) -> list[str]:
    """Paths (an evaluation sweep's checkpoints, a prediction sweep's images) without the folders they all start
    with and the parts they all end with: what tells them apart (``…/0_optimizer.lr=0.001/…``), where the whole
    paths made each row of the printed table two terminal lines long. Other values as they are."""
    paths = [value.split("/") for value in values if value]
    if len(set(values)) < 2 or not paths or len(paths) < len(values) or any(len(parts) < 2 for parts in paths):
        return values
    shortest = min(map(len, paths))
    start = min(len(os.path.commonprefix(paths)), shortest - 1)  # each keeps a part of its own
    if not any(paths[0][:start]):  # only the root (/a/x.png, /b/y.png) is shared: nothing to leave out
        start = 0
    end = max(0, min(len(os.path.commonprefix([parts[::-1] for parts in paths])), shortest - start - 1))
    return ["/".join((["…"] if start else []) + parts[start:len(parts) - end] + (["…"] if end else []))
            for parts in paths]


def job_table(summary: Summary, whole_paths: bool = True) -> tuple[list[str], list[list[str]]]:
    """One row a job, best validation accuracy first (:func:`ranking_metric`); swept paths shortened to what
    tells them apart unless ``whole_paths``."""
    predicted = any(r.prediction for r in summary.jobs)  # a task=predict sweep
    header = ["job", "status", *summary.swept, "val_acc", "test_acc", "val_loss", "test_loss", "epochs", "wall_s"]
    rows = []
    for r in sorted(summary.jobs, key=by_accuracy(ranking_metric(summary.jobs))):
        epochs = "-" if r.epochs_done is None else f"{r.epochs_done}/{r.epochs if r.epochs is not None else '?'}"
        if r.status == COMPLETED and None not in (r.epochs_done, r.epochs) and r.epochs_done < r.epochs:
            epochs += " (early stop)"  # trainer.early_stop_patience: complete, though "3/8" reads as cut short
        rows.append([str(r.job), r.status, *(_short(r.params.get(key)) for key in summary.swept), _fmt(r.val_acc),
                     _fmt(r.test_acc), _fmt(r.val_loss), _fmt(r.test_loss), epochs, _fmt(r.wall_time_s, 1)])
        if predicted:
            rows[-1].append(r.prediction or "-")
    header += ["prediction"] if predicted else []
    if not whole_paths:
        for column in range(2, 2 + len(summary.swept)):
            for row, value in zip(rows, _shared_path_parts_left_out([row[column] for row in rows])):
                row[column] = value
    # a result no job has (a prediction sweep's accuracies, an evaluation's epochs): no column
    first_result = 2 + len(summary.swept)
    kept = [i for i in range(len(header)) if i < first_result or any(row[i] != "-" for row in rows)]
    return [header[i] for i in kept], [[row[i] for i in kept] for row in rows]


def group_table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """One row a setting: mean ± std over its seeds."""
    keys = setting_keys(summary.swept)
    header = [*keys, "n", "test_acc (mean ± std)", "val_acc (mean ± std)", "jobs"]
    rows = [[*(_short(group["params"].get(key)) for key in keys), f"{group['n']}/{group['n_jobs']}",
             _mean_pm_std(group["test_acc_mean"], group["test_acc_std"]),
             _mean_pm_std(group["val_acc_mean"], group["val_acc_std"]), ",".join(map(str, group["jobs"]))]
            for group in summary.groups]
    return header, rows


CONSOLE_ROWS = 20  # of each table printed (its best first); summary.md holds every row


def render_table(header: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    if markdown:
        lines = [f"| {' | '.join(cells)} |" for cells in (header, *rows)]
        return "\n".join([lines[0], "|" + "---|" * len(header), *lines[1:]])
    # a sweep of 200 jobs printed 240 rows: the terminal's last screen held the worst settings
    shown, cut = rows[:CONSOLE_ROWS], len(rows) - CONSOLE_ROWS
    widths = [max(map(len, column)) for column in zip(header, *shown)]
    return "\n".join([*("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
                        for cells in (header, ["-" * width for width in widths], *shown)),
                      *([f"… and {cut} more (every row: summary.md)"] if cut > 0 else [])])


def context(summary: Summary) -> list[str]:
    """The line that says what the table's columns leave out: what every job was given, and how much of the test
    split its test accuracy is of where that is not all of it (trainer.limit_batches)."""
    tested = {(r.test_images, r.test_split_images) for r in summary.jobs if r.test_acc is not None}
    images, split = next(iter(tested)) if len(tested) == 1 else (None, None)
    part = (f"test accuracy on {images} of {split} test images (trainer.limit_batches)"
            if images is not None and split is not None and images < split else "")
    line = "; ".join(filter(None, [f"Every job: {' '.join(summary.shared)}" if summary.shared else "", part]))
    return [f"{line[0].upper()}{line[1:]}."] if line else []


def report_text(summary: Summary, markdown: bool = False) -> str:
    jobs = "job" if len(summary.jobs) == 1 else "jobs"
    metric = ranking_metric(summary.jobs)  # val, test in an evaluation sweep, none in a prediction sweep
    ranked_by = f"{metric.replace('_acc', '')} accuracy" if metric else "job"
    parts = [f"Sweep {summary.sweep_dir}: {len(summary.jobs)} {jobs} ({summary.counts_text or 'none'}), "
             f"sorted by {ranked_by}", *context(summary),
             render_table(*job_table(summary, whole_paths=markdown), markdown=markdown)]
    # each group is one job (or one seed) of the table otherwise, or there is no test result to average
    if any(group["n_jobs"] > 1 for group in summary.groups) and any(group["n"] for group in summary.groups):
        over = " over seeds" if SEED_KEY in summary.swept else ""
        by = ", ".join(setting_keys(summary.swept))
        parts += [f"Test accuracy{over}" + (f", grouped by {by}" if by else "") + f", sorted by {ranked_by}:",
                  render_table(*group_table(summary), markdown=markdown)]
    if summary.bad_jobs:
        parts.append("Jobs that did not complete:")
        alike: dict[tuple[str, str], list] = {}  # jobs that failed alike, once: an Optuna study's can be dozens
        continued = False  # an interrupted job's message ends with how it goes on: printed once for all of them
        for record in summary.bad_jobs:
            message = record.message or "(no message)"
            if record.status == INTERRUPTED and f" {CONTINUE_WITH}" in message and not markdown:
                message, continued = message.split(f" {CONTINUE_WITH}")[0], True
            alike.setdefault((record.status, message), []).append(record)
        for (status, message), records in alike.items():
            if len(records) == 1:
                where = f" [{records[0].run_dir}]" if records[0].run_dir else ""
                parts.append(f"  job {records[0].job} {status}: {message}{where}")
            else:
                parts.append(f"  jobs {', '.join(str(r.job) for r in records)} {status}: {message}")
        if continued:
            parts.append("  The sweep's command with its hydra.sweep.dir= continues the interrupted jobs (each one's "
                         "metrics.json says how).")
    return "\n\n".join(parts) if markdown else "\n".join(parts)
