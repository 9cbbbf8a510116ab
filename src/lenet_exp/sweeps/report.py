"""What a sweep leaves behind in its directory: summary.csv, summary.json, summary.md, summary.png and the
TensorBoard run ``summary`` (the plot and the table), and the table printed at its end.

torch (for TensorBoard's writer) and matplotlib are imported when these are written, not with this module.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf

from lenet_exp.errors import UserError, one_line
from lenet_exp.files import (EVENT_FILES, FREE_SOME_SPACE, REPLACE_THE_LINK, SUMMARY_CSV, SUMMARY_JSON, SUMMARY_MD,
                             SUMMARY_PNG, folder_holder, is_disk_full, linked_entry, mount_point, one_process_at_a_time,
                             save_json, write_atomic)
from lenet_exp.launch import Stopped, stops_held
from lenet_exp.runlog import show
from lenet_exp.sweeps.plot import val_acc_figure, without_matplotlibs_warnings
from lenet_exp.sweeps.records import Summary, best_job, ranking_metric, summarize
from lenet_exp.sweeps.table import report_text

SUMMARY_RUN = "summary"  # TensorBoard run (subfolder of the sweep directory) of the sweep plot and table
PLOT_TAG = "sweep/{metric}_vs_params"  # val_acc, or test_acc where no job has one (records.ranking_metric)
TABLE_TAG = "sweep/summary"
JOB_COLUMNS = ("job", "status")  # then one column per swept key, then:
RESULT_COLUMNS = ("val_acc", "test_acc", "val_loss", "test_loss", "epochs_done", "epochs", "best_epoch",
                  "test_images", "test_split_images", "wall_time_s", "overrides", "run_dir", "message", "prediction")


def write_csv(summary: Summary, path: Path) -> None:
    def write(file) -> None:
        writer = csv.writer(file)
        writer.writerow([*JOB_COLUMNS, *summary.swept, *RESULT_COLUMNS])
        for r in summary.jobs:
            row = {**asdict(r), "overrides": " ".join(r.overrides)}
            writer.writerow([*(row[column] for column in JOB_COLUMNS),
                             *(r.params.get(key, "") for key in summary.swept),
                             *("" if row[column] is None else row[column] for column in RESULT_COLUMNS)])

    write_atomic(path, write, binary=False)


def write_json(summary: Summary, path: Path) -> None:
    best = best_job(summary.jobs)
    save_json(path, {
        "sweep_dir": summary.sweep_dir,
        "written_at": summary.written_at,
        "n_jobs": len(summary.jobs),
        "counts": summary.counts,
        "swept": summary.swept,
        "shared": summary.shared,
        "jobs": [asdict(r) for r in summary.jobs],
        "best": asdict(best) if best else None,  # among completed jobs
        "groups": summary.groups,  # mean +- std of test accuracy over the seeds of each setting
    })


def write_markdown(summary: Summary, path: Path) -> None:
    """summary.md: the printed tables (each setting's mean ± std over seeds among them), for a report or a paper."""
    write_atomic(path, lambda file: file.write(report_text(summary, markdown=True) + "\n"), binary=False)


def write_plot(summary: Summary, path: Path):
    """summary.png; returns the figure, for TensorBoard."""
    figure = val_acc_figure(summary)
    write_atomic(path, lambda file: figure.savefig(file, format="png"))
    return figure


def refuse_a_link_out(log_dir: Path) -> None:
    """A UserError where the summary's TensorBoard folder is a link out of the sweep's, whose event files the
    summary would write and delete there (a sweep folder is data: it may come from anyone)."""
    linked = linked_entry(log_dir.parent, [log_dir.name])
    if linked:
        raise UserError(f"{linked}. {REPLACE_THE_LINK}, or remove the link.")


def log_tensorboard(summary: Summary, figure: Optional[Any], log_dir: Path) -> None:
    """The plot (if there is one) and the markdown table as the TensorBoard run in ``log_dir``."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import text

    from lenet_exp.record import quiet_event_writer_threads

    refuse_a_link_out(log_dir)
    quiet_event_writer_threads()
    earlier = set(log_dir.glob(EVENT_FILES))  # a re-launched sweep replaces its summary, once written
    writer = None
    try:
        writer = SummaryWriter(str(log_dir))  # which writes the file's first event
        if figure is not None:
            writer.add_figure(PLOT_TAG.format(metric=ranking_metric(summary.jobs)), figure, global_step=0)
        table = text(TABLE_TAG, report_text(summary, markdown=True))
        table.value[0].tag = TABLE_TAG  # add_text would file it as TABLE_TAG + "/text_summary"
        writer.file_writer.add_summary(table, global_step=0)
        writer.close()
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        for written in set(log_dir.glob(EVENT_FILES)) - earlier:  # cut short: the earlier one stays
            written.unlink()
        raise
    for old in earlier:
        old.unlink()


def summary_settings(config: Optional[DictConfig]) -> dict[str, bool]:
    """What the sweep's ``hydra.callbacks.sweep_summary`` asks of its summary besides the table (plot, tensorboard)."""
    try:
        settings = OmegaConf.select(config, "hydra.callbacks.sweep_summary", default=None) if config else None
        return {name: bool(settings.get(name, True)) if settings else True for name in ("plot", "tensorboard")}
    except Exception:  # a record edited by hand, a value that no longer resolves: the stop goes ahead all the same
        return {"plot": True, "tensorboard": True}


def write_summary_whole(sweep_dir: Path, config: Optional[DictConfig], *, final: bool = True, plot: bool = True,
                        tensorboard: bool = True) -> tuple[Optional[Summary], Optional[int]]:
    """:func:`write_summary` as run.py ends a sweep: a stop signal meanwhile waits until it is whole (a second one
    at once), and comes back as its number; no summary (None) where it could not be written, said why. A stop
    killed run.py with half a summary (and no word of it), summary.png's temporary file left."""
    summary, held = None, None
    try:
        with stops_held():
            summary = write_summary(sweep_dir, final=final, plot=plot, tensorboard=tensorboard, config=config)
    except Stopped as stop:  # the first one once the summary is written; a second one at once
        held = stop.signum
    except Exception as error:
        print(f"Could not summarise the sweep in {sweep_dir}: {one_line(error)}. Its jobs' folders hold their "
              f"results; `python -m lenet_exp.sweeps {sweep_dir}` summarises them again.", file=sys.stderr)
    return summary, held


def not_allowed(error: Exception) -> Optional[str]:
    """Why the file system did not allow a summary file's write (a folder read-only, or another user's), or None
    for any other failure."""
    cause = error if isinstance(error, OSError) else error.__cause__
    allowed = not (isinstance(cause, OSError) and cause.errno in (errno.EACCES, errno.EPERM, errno.EROFS))
    return None if allowed else cause.strerror or type(cause).__name__


def write_summary(sweep_dir: Path, final: bool = True, plot: bool = True, tensorboard: bool = True,
                  config: Optional[DictConfig] = None, out=None, runner: Optional[str] = None) -> Summary:
    """Everything the sweep leaves behind, its table printed to ``out`` (standard output as it is at the
    call). Each output is attempted even if an earlier one failed. ``runner``: who runs the sweep still."""
    sweep_dir = Path(sweep_dir).resolve()  # its paths and title as any command names it (`… sweeps .`: ".")
    # read and written whole before another process reads: `python -m lenet_exp.sweeps` as a sweep ended read a job
    # running, then wrote its summary.png and TensorBoard summary over the sweep's final ones (helper concur57)
    with one_process_at_a_time(sweep_dir):
        return _write_summary(sweep_dir, final, plot, tensorboard, config, out or sys.stdout, runner)


def _write_summary(sweep_dir: Path, final: bool, plot: bool, tensorboard: bool, config: Optional[DictConfig], out,
                   runner: Optional[str]) -> Summary:
    runner = runner and folder_holder(sweep_dir)  # as it is now: it may have ended while this waited
    summary = summarize(sweep_dir, final, config, runner)
    if not summary.jobs:
        print(f"No job directories found in {sweep_dir}: no summary written.", file=sys.stderr)
        return summary
    written, problems, full, refused = [], [], [], {}

    def attempt(name: str, write: Callable[[], Any]) -> Any:
        try:
            result = write()
            written.append(name)
            return result
        except Exception as error:
            summary.unwritten.append(name)
            if is_disk_full(error):
                full.append(name)
            elif not_allowed(error):
                refused.setdefault(not_allowed(error), []).append(name)
            else:
                # a refused write says why and what to do; anything else is named by its type
                problems.append(f"{name}: {error}" if isinstance(error, UserError)
                                else f"{name}: {type(error).__name__}: {error}")
            return None

    attempt(SUMMARY_CSV, lambda: write_csv(summary, sweep_dir / SUMMARY_CSV))
    attempt(SUMMARY_JSON, lambda: write_json(summary, sweep_dir / SUMMARY_JSON))
    attempt(SUMMARY_MD, lambda: write_markdown(summary, sweep_dir / SUMMARY_MD))
    plotted = plot and ranking_metric(summary.jobs) is not None  # not predictions, which have no accuracy
    with without_matplotlibs_warnings():  # the figure is drawn for each
        figure = attempt(SUMMARY_PNG, lambda: write_plot(summary, sweep_dir / SUMMARY_PNG)) if plotted else None
        if tensorboard:
            attempt("TensorBoard summary", lambda: log_tensorboard(summary, figure, sweep_dir / SUMMARY_RUN))
    with contextlib.suppress(OSError):  # an earlier summary's, of other results: not left as if it were this one's
        if not plotted:
            (sweep_dir / SUMMARY_PNG).unlink(missing_ok=True)
        for old in (sweep_dir / SUMMARY_RUN).glob(EVENT_FILES) if not (tensorboard or linked_entry(
                sweep_dir, [SUMMARY_RUN])) else ():
            old.unlink()
    lines = ["\n" + report_text(summary)]
    files = [name for name in written if name in (SUMMARY_CSV, SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG)]
    if files:
        lines.append(f"\nSummary: {sweep_dir / files[0]}{''.join(', ' + name for name in files[1:])}; "
                     f"tensorboard --logdir {shlex.quote(str(sweep_dir))}")
    lines += [f"Could not write {problem}" for problem in problems]
    if full:
        lines.append(f"Could not write {', '.join(full)}: no space left on {mount_point(sweep_dir)}. {FREE_SOME_SPACE}, "
                     f"then `python -m lenet_exp.sweeps {shlex.quote(str(sweep_dir))}` writes them again.")
    lines += [f"Could not write {', '.join(names)} ({why}): make {sweep_dir} a folder you may write in, then `python -m "
              f"lenet_exp.sweeps {shlex.quote(str(sweep_dir))}` writes them again." for why, names in refused.items()]
    show("\n".join(lines), out)
    return summary
