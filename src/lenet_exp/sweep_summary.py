"""Sweeps as first-class runs: the search space rule and one summary of every sweep.

``SweepSummary`` is a Hydra callback listed under ``hydra.callbacks`` in configs/config.yaml.

* ``on_multirun_start`` applies the search space rule. The default study (``sweep: default`` in the
  defaults list: learning rate x batch size) is swept by ``python run.py -m`` alone. Hydra's
  BasicSweeper would otherwise take the cartesian product of ``hydra.sweeper.params`` and the swept
  values of the command line, so ``-m optimizer.lr=1e-3,3e-3 model=lenet5,lenet5_classic`` would
  run 2 x 2 x 2 (batch sizes) = 8 jobs instead of the 4 named. When the command line sweeps a value
  and names no study, the default study is therefore left out. A study named on the command line
  (``sweep=lr_schedule``, or ``sweep=default`` itself) is combined with it the way Hydra does: a
  key given on the command line replaces the study's values for that key, other keys multiply.
* ``on_multirun_end`` reads every job directory of the sweep and writes ``summary.csv``,
  ``summary.json`` and ``summary.png`` (validation accuracy against each swept parameter) into the
  sweep directory, logs the plot and the table to TensorBoard as the run ``summary``, prints the
  table sorted by validation accuracy with mean +- std of test accuracy over seeds, and then exits
  with status 1 if any job failed or diverged.

``python -m lenet_exp.sweep_summary SWEEP_DIR`` writes the same summary for a sweep directory later,
e.g. while a Slurm sweep is still running or after one was killed.

Hydra instantiates callbacks for single runs too, so this module imports neither torch nor
matplotlib at import time: the plot imports matplotlib once a sweep has ended.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from lenet_exp.files import read_json, save_json
from lenet_exp.resume import override_key

log = logging.getLogger(__name__)

DEFAULT_STUDY = "default"
STUDY_GROUP = "sweep"
SEED_KEY = "seed"
OK_STATUS = "completed"
BAD_STATUSES = ("failed", "diverged", "interrupted")
EXIT_JOBS_FAILED = 1
SUMMARY_RUN = "summary"  # TensorBoard run (subfolder of the sweep directory) of the sweep plot and table
CSV_COLUMNS = ("job", "status", "val_acc", "test_acc", "val_loss", "test_loss", "epochs_done", "epochs",
               "wall_time_s", "overrides", "run_dir", "message")


# ----------------------------------------------------------------------------------- search space
def command_line_sweeps(task_overrides: Iterable[str]) -> list[str]:
    """Keys that the command line sweeps (comma lists, range(), choice(), glob(), interval())."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    return [override.get_key_element() for override in parsed if override.is_sweep_override()]


def apply_search_space_rule(config: DictConfig) -> Optional[str]:
    """Leave the default study out when the command line sweeps values of its own.

    Returns the message it logged, or None when the study's space stays as it is.
    """
    task = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    study = OmegaConf.select(config, f"hydra.runtime.choices.{STUDY_GROUP}", default=None)
    named = any(override_key(o) == STUDY_GROUP for o in task)
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
    if study != DEFAULT_STUDY or named or not params:
        return None
    swept = command_line_sweeps(task)
    if not swept:
        return None
    left_out = ", ".join(str(key) for key in params)
    with open_dict(config.hydra.sweeper):
        config.hydra.sweeper.params = {}
    message = (f"Sweeping only what the command line names ({', '.join(swept)}); the default search space "
               f"({left_out}) is left out. Add sweep=default to combine them.")
    log.info(message)
    return message


# ------------------------------------------------------------------------------------ job records
@dataclass
class JobRecord:
    job: int
    status: str
    overrides: list[str]
    params: dict[str, str]  # key -> value as given in the job's overrides
    run_dir: str
    val_acc: Optional[float] = None
    test_acc: Optional[float] = None
    val_loss: Optional[float] = None
    test_loss: Optional[float] = None
    epochs_done: Optional[int] = None
    epochs: Optional[int] = None
    wall_time_s: Optional[float] = None
    message: str = ""


def _number(value: Any) -> Optional[float]:
    """A finite number, or None (missing, null, NaN: JSON and CSV readers get no NaN from here)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _job_number(job_dir: Path, fallback: int) -> int:
    if job_dir.name.isdigit():
        return int(job_dir.name)
    try:
        num = OmegaConf.select(OmegaConf.load(job_dir / ".hydra" / "hydra.yaml"), "hydra.job.num")
        return int(num)
    except Exception:  # an unreadable hydra.yaml: keep the order found on disk
        return fallback


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories under a sweep directory: those holding ``.hydra/overrides.yaml``."""
    found = {path.parent.parent for path in sweep_dir.rglob("overrides.yaml") if path.parent.name == ".hydra"}
    return sorted(found)


def read_job(job_dir: Path, fallback_number: int, final: bool) -> JobRecord:
    try:
        overrides = [str(o) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")]
    except Exception:
        overrides = []
    params = {override_key(o): o.split("=", 1)[1] if "=" in o else "" for o in overrides}
    record = JobRecord(job=_job_number(job_dir, fallback_number), status="failed", overrides=overrides,
                       params=params, run_dir=str(job_dir))
    metrics = read_json(job_dir / "metrics.json")
    if metrics is None:
        record.message = "no metrics.json: the job was killed or crashed before writing it"
        return record
    status = str(metrics.get("status", "failed"))
    record.message = str(metrics.get("message") or "")
    if status in ("running", "interrupted") and final:
        # The sweep is over, so nothing runs here any more: the job was killed (or stopped).
        record.message = (f"stopped while {status} after epoch {metrics.get('epochs_done', 0)} (killed?); "
                          f"re-launch the sweep with hydra.sweep.dir=<this sweep> to resume it")
        status = "failed"
    record.status = status
    val, test = metrics.get("val") or {}, metrics.get("test") or {}
    record.val_acc, record.val_loss = _number(val.get("acc")), _number(val.get("loss"))
    record.test_acc, record.test_loss = _number(test.get("acc")), _number(test.get("loss"))
    record.epochs_done = metrics.get("epochs_done")
    record.epochs = metrics.get("epochs")
    record.wall_time_s = _number(metrics.get("wall_time_s"))
    return record


def searched_keys(config: Optional[DictConfig]) -> set[str]:
    """Keys the sweep searched: its sweeper's params and the command line's swept values.

    An Optuna study may draw one value of a searched key in every trial; it is still a column.
    """
    if config is None:
        return set()
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    task = OmegaConf.select(config, "hydra.overrides.task", default=[]) or []
    swept: dict[str, bool] = {}
    try:  # the sweepers' own rule: the command line comes after the params, the last word on a key wins
        for override in OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()] + list(task)):
            swept[override.get_key_element()] = override.is_sweep_override()
    except Exception:  # an override the parser rejects cannot have run either
        return set()
    return {key for key, is_sweep in swept.items() if is_sweep}


def swept_keys(records: list[JobRecord], searched: Iterable[str] = ()) -> list[str]:
    """Keys that differ between jobs or that the sweep searched, in the order the jobs name them."""
    searched = set(searched)
    keys: list[str] = []
    for record in records:
        keys.extend(key for key in record.params if key not in keys)
    return [key for key in keys if key in searched or len({record.params.get(key) for record in records}) > 1]


def _by_val_acc(record: JobRecord) -> tuple:
    """Completed jobs first (an unfinished job's val accuracy is a partial best), then by val accuracy."""
    return (record.status != OK_STATUS, record.val_acc is None, -(record.val_acc or 0.0), record.job)


def best_job(jobs: list[JobRecord]) -> Optional[JobRecord]:
    completed = [r for r in jobs if r.status == OK_STATUS and r.val_acc is not None]
    return min(completed, key=_by_val_acc) if completed else None


def _mean_std(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    """Mean and sample std; no std for a single value (zero would claim a spread that was never seen)."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def seed_groups(records: list[JobRecord], keys: list[str]) -> list[dict[str, Any]]:
    """Mean +- std of test (and val) accuracy of completed jobs, grouped by every swept key but the seed."""
    group_keys = [key for key in keys if key != SEED_KEY]
    groups: dict[tuple, list[JobRecord]] = {}
    for record in records:
        groups.setdefault(tuple(record.params.get(key) for key in group_keys), []).append(record)
    rows = []
    for values, members in groups.items():
        done = [r for r in members if r.status == OK_STATUS and r.test_acc is not None]
        test_mean, test_std = _mean_std([r.test_acc for r in done])
        val_mean, val_std = _mean_std([r.val_acc for r in done if r.val_acc is not None])
        rows.append({
            "params": dict(zip(group_keys, values)),
            "n": len(done),
            "n_jobs": len(members),
            "seeds": [r.params.get(SEED_KEY) for r in done] if SEED_KEY in keys else [],
            "jobs": [r.job for r in members],
            "test_acc_mean": test_mean,
            "test_acc_std": test_std,
            "val_acc_mean": val_mean,
            "val_acc_std": val_std,
        })
    rows.sort(key=lambda row: (row["test_acc_mean"] is None, -(row["test_acc_mean"] or 0.0)))
    return rows


@dataclass
class Summary:
    sweep_dir: str
    jobs: list[JobRecord]
    swept: list[str]
    groups: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    written_at: str = ""

    @property
    def bad_jobs(self) -> list[JobRecord]:
        return [record for record in self.jobs if record.status != OK_STATUS]


def load_sweep_config(sweep_dir: Path) -> Optional[DictConfig]:
    """The sweep's own config as the BasicSweeper saved it (multirun.yaml), if there is one."""
    try:
        return OmegaConf.load(sweep_dir / "multirun.yaml")
    except Exception:
        return None


def summarize(sweep_dir: Path, final: bool = True, config: Optional[DictConfig] = None) -> Summary:
    records = [read_job(job_dir, i, final) for i, job_dir in enumerate(find_job_dirs(sweep_dir))]
    records.sort(key=lambda record: record.job)
    searched = searched_keys(config if config is not None else load_sweep_config(sweep_dir))
    if config is None:  # summarised again later: keep the columns the sweep's own summary had
        searched.update((read_json(sweep_dir / "summary.json") or {}).get("swept") or [])
    keys = swept_keys(records, searched)
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    return Summary(str(sweep_dir), records, keys, seed_groups(records, keys), counts,
                   time.strftime("%Y-%m-%dT%H:%M:%S"))


# --------------------------------------------------------------------------------------- outputs
def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _mean_pm_std(mean: Optional[float], std: Optional[float]) -> str:
    return "-" if mean is None else f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _short(value: Optional[str]) -> str:
    """A swept value for the printed table: long floats (as Optuna draws them) to 4 significant digits."""
    value = "" if value is None else str(value)
    number = _as_float(value)
    return f"{number:.4g}" if number is not None and len(value) > 8 else value


def table_rows(summary: Summary) -> tuple[list[str], list[list[str]]]:
    header = ["job", "status", *summary.swept, "val_acc", "test_acc", "val_loss", "test_loss", "epochs", "wall_s"]
    rows = []
    for r in sorted(summary.jobs, key=_by_val_acc):
        epochs = "-" if r.epochs_done is None else f"{r.epochs_done}/{r.epochs if r.epochs is not None else '?'}"
        rows.append([str(r.job), r.status, *(_short(r.params.get(key)) for key in summary.swept), _fmt(r.val_acc),
                     _fmt(r.test_acc), _fmt(r.val_loss), _fmt(r.test_loss), epochs, _fmt(r.wall_time_s, 1)])
    return header, rows


def render_table(header: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * width for width in widths]), *map(line, rows)])


def group_table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    keys = [key for key in summary.swept if key != SEED_KEY]
    header = [*keys, "n", "test_acc (mean ± std)", "val_acc (mean ± std)", "jobs"]
    rows = [[*(_short(group["params"].get(key)) for key in keys), f"{group['n']}/{group['n_jobs']}",
             _mean_pm_std(group["test_acc_mean"], group["test_acc_std"]),
             _mean_pm_std(group["val_acc_mean"], group["val_acc_std"]), ",".join(map(str, group["jobs"]))]
            for group in summary.groups]
    return header, rows


def report_text(summary: Summary, markdown: bool = False) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts.items()))
    parts = [f"Sweep {summary.sweep_dir}: {len(summary.jobs)} jobs ({counts or 'none'}), sorted by val accuracy",
             render_table(*table_rows(summary), markdown=markdown)]
    over = " over seeds" if SEED_KEY in summary.swept else ""
    by = ", ".join(key for key in summary.swept if key != SEED_KEY)
    title = f"Test accuracy{over}" + (f", grouped by {by}:" if by else ":")
    if any(group["n_jobs"] > 1 for group in summary.groups):  # otherwise each group is one job of the table
        parts += [title, render_table(*group_table(summary), markdown=markdown)]
    bad = summary.bad_jobs
    if bad:
        parts.append("Jobs that did not complete:")
        parts += [f"  job {r.job} {r.status}: {r.message or '(no message)'} [{r.run_dir}]" for r in bad]
    return "\n\n".join(parts) if markdown else "\n".join(parts)


def write_csv(summary: Summary, path: Path) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*CSV_COLUMNS[:2], *summary.swept, *CSV_COLUMNS[2:]])
        for r in summary.jobs:
            row = asdict(r)
            row["overrides"] = " ".join(r.overrides)
            writer.writerow([row["job"], row["status"], *(r.params.get(key, "") for key in summary.swept),
                             *("" if row[column] is None else row[column] for column in CSV_COLUMNS[2:])])


def write_json(summary: Summary, path: Path) -> None:
    data = {
        "sweep_dir": summary.sweep_dir,
        "written_at": summary.written_at,
        "n_jobs": len(summary.jobs),
        "counts": summary.counts,
        "swept": summary.swept,
        "jobs": [asdict(r) for r in summary.jobs],
        "best": asdict(best) if (best := best_job(summary.jobs)) else None,  # among completed jobs
        "groups": summary.groups,  # mean +- std of test accuracy over the seeds of each setting
    }
    save_json(path, data)


def _as_float(value: str) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def plot_png(summary: Summary) -> bytes:
    """One figure: validation accuracy against each swept parameter (one panel per parameter)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in any process

    keys = summary.swept or ["job"]
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows), dpi=100)
    for i, key in enumerate(keys):
        ax = figure.add_subplot(rows, columns, i + 1)
        values = [str(r.job) if key == "job" else r.params.get(key, "") for r in summary.jobs]
        numbers = [_as_float(v) for v in values]
        numeric = all(n is not None for n in numbers)
        if numeric:
            xs = numbers
            if min(xs) > 0 and max(xs) / min(xs) >= 10:  # decades, as learning rates are swept
                ax.set_xscale("log")
            ticks = dict(sorted(zip(xs, values)))
            if len(ticks) <= 8 and all(len(v) <= 8 for v in ticks.values()):  # a grid: label its values
                ax.set_xticks(list(ticks), list(ticks.values()), minor=False)
                ax.minorticks_off()
        else:  # categories in the order the sweep named them
            categories = list(dict.fromkeys(values))
            xs = [categories.index(v) for v in values]
            ax.set_xticks(range(len(categories)), categories, rotation=20 if len(categories) > 3 else 0)
        labelled = set()
        for x, r in zip(xs, summary.jobs):
            if r.status == OK_STATUS and r.val_acc is not None:
                label = "completed" if "completed" not in labelled else None
                ax.scatter([x], [r.val_acc], color="tab:blue", zorder=3, label=label)
                labelled.add("completed")
            else:  # no result to place on the y axis: mark where it sat on the x axis
                label = f"{r.status}" if r.status not in labelled else None
                ax.axvline(x, color="tab:red" if r.status == "failed" else "tab:orange", linestyle="--",
                           alpha=0.7, label=label)
                labelled.add(r.status)
        ax.set_xlabel(key)
        ax.set_ylabel("best val accuracy")
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8, loc="best")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts.items()))
    figure.suptitle(f"{Path(summary.sweep_dir).name}: {len(summary.jobs)} jobs ({counts})", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def log_tensorboard(summary: Summary, png: Optional[bytes], log_dir: Path) -> None:
    """Write the plot and the table as the TensorBoard run ``summary`` (with TensorBoard's writer, no torch)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("events.out.tfevents.*"):  # a re-launched sweep replaces its summary
        old.unlink()
    values = []
    if png is not None:
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # the PNG IHDR
        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
        values.append(summary_pb2.Summary.Value(tag="sweep/val_acc_vs_params", image=image))
    text = TensorProto(dtype=7, string_val=[report_text(summary, markdown=True).encode()],  # 7: DT_STRING
                       tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
        plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
    values.append(summary_pb2.Summary.Value(tag="sweep/summary", metadata=metadata, tensor=text))
    writer = EventFileWriter(str(log_dir))
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary_pb2.Summary(value=values)))
    writer.close()


def write_summary(sweep_dir: Path, final: bool = True, plot: bool = True, tensorboard: bool = True,
                  config: Optional[DictConfig] = None, out=sys.stdout) -> Summary:
    """Everything the sweep leaves behind. Each output is attempted even if an earlier one failed."""
    summary = summarize(sweep_dir, final, config)
    problems = []
    for name, write in (("summary.csv", write_csv), ("summary.json", write_json)):
        try:
            write(summary, sweep_dir / name)
        except Exception as error:
            problems.append(f"{name}: {type(error).__name__}: {error}")
    png = None
    if plot:
        try:
            png = plot_png(summary)
            (sweep_dir / "summary.png").write_bytes(png)
        except Exception as error:
            problems.append(f"summary.png: {type(error).__name__}: {error}")
    if tensorboard:
        try:
            log_tensorboard(summary, png, sweep_dir / SUMMARY_RUN)
        except Exception as error:
            problems.append(f"TensorBoard summary: {type(error).__name__}: {error}")
    print("\n" + report_text(summary), file=out)
    print(f"\nSummary: {sweep_dir / 'summary.csv'}, summary.json, summary.png; "
          f"tensorboard --logdir {sweep_dir}", file=out)
    for problem in problems:
        print(f"Could not write {problem}", file=out)
    out.flush()
    return summary


# -------------------------------------------------------------------------------------- callback
class SweepSummary(Callback):
    """Hydra callback: search space rule at the start of a sweep, summary and exit status at its end."""

    def __init__(self, plot: bool = True, tensorboard: bool = True, fail_on_error: bool = True) -> None:
        self.plot = plot
        self.tensorboard = tensorboard
        self.fail_on_error = fail_on_error

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        apply_search_space_rule(config)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Hand a failed or diverged trial to Optuna as failed instead of crashing the whole study.

        The task returns NaN for a job that failed or diverged. hydra-optuna-sweeper 1.3.0 (optuna
        2.10) then crashes: optuna rejects NaN and the sweeper's fallback ``study.tell(state=FAIL,
        values=[nan])`` raises too (facebookresearch/hydra#2237, fixed only in the 1.4 pre-releases).
        A return value that is no number takes the sweeper's working path: the trial is told FAIL
        (values=None), logged as a warning, and the study goes on. The job's metrics.json keeps the
        status. Other sweepers get the NaN unchanged.
        """
        from hydra.core.utils import JobStatus

        target = str(OmegaConf.select(config, "hydra.sweeper._target_", default="") or "")
        if "optuna" not in target or job_return.status != JobStatus.COMPLETED:
            return
        value = job_return.return_value
        if isinstance(value, float) and math.isnan(value):
            job_return.return_value = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns an exception raised here into a warning; SystemExit is not an Exception and passes.
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            summary = write_summary(sweep_dir, final=True, plot=self.plot, tensorboard=self.tensorboard,
                                    config=config)
        except Exception as error:
            print(f"Could not summarise the sweep in {sweep_dir}: {type(error).__name__}: {error}", file=sys.stderr)
            if self.fail_on_error:
                sys.exit(EXIT_JOBS_FAILED)
            return
        bad = summary.bad_jobs
        if not summary.jobs:
            print(f"No job directories found in {sweep_dir}.", file=sys.stderr)
        if self.fail_on_error and (bad or not summary.jobs):
            print(f"{len(bad)} of {len(summary.jobs)} jobs did not complete: exit status {EXIT_JOBS_FAILED}.",
                  file=sys.stderr)
            sys.stdout.flush()
            sys.exit(EXIT_JOBS_FAILED)


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lenet_exp.sweep_summary",
                                     description="Summarise a sweep directory (as at the end of `python run.py -m`).")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-tensorboard", action="store_true")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} is not a directory")
    # Jobs may still be running here: a job whose metrics.json says running keeps that status.
    summary = write_summary(args.sweep_dir, final=False, plot=not args.no_plot, tensorboard=not args.no_tensorboard)
    return EXIT_JOBS_FAILED if any(r.status in BAD_STATUSES for r in summary.jobs) or not summary.jobs else 0


if __name__ == "__main__":
    sys.exit(main())
