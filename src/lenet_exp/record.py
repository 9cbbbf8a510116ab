"""What a run records besides metrics.json (which loop.py writes) and its log lines: TensorBoard (through
torch's SummaryWriter), and an optional :class:`Stopwatch` for the start-up and epoch timings.

Everything goes into the run directory itself, so ``tensorboard --logdir <sweep dir>`` shows one run
per job with the same tags. Each run starts an HParams session with its result settings (so a running
or crashed job is listed too) and declares no experiment of its own: TensorBoard then works out, over
all the runs it is shown, which settings differ (those columns first) and takes every scalar tag as a
metric column (``best/val_acc``, ``best/val_epoch``, ``best/val_loss`` and ``test/acc`` are the selected model's).
Timings are recorded here only: checkpoints never hold them.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from lenet_exp.config import CHOSEN_IN_HPARAMS, drawn_as_it_is, result_settings, shown_in_hparams, where_or_how_fast
from lenet_exp.figures import INLINE, FigureWorkers, PendingFigure
from lenet_exp.files import BEFORE_TRAINING, EVENT_FILES, FAILED, hydra_record, stopped_early, write_atomic
from lenet_exp.overrides import override_key, override_value, overridden_keys
from lenet_exp.provenance import HOW_IT_RAN, commit_of, earlier_epochs, other_code

log = logging.getLogger(__name__)


def _process_age_s() -> float:
    """Seconds since this process started (Linux: from /proc, so the interpreter's own start counts)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


_PROCESS_STARTED = time.perf_counter() - _process_age_s()


@dataclass
class Stopwatch:
    """Start-up, epoch and test timings of one job, summed over the invocations of a resumed run.

    A job's start-up is its process's from the start (its imports are part of it) when it is the
    process's first job, and from the task call when a launcher reuses the process (joblib's workers);
    ``lenet_exp.train()``'s from its call.
    """

    jobs_in_process = 0  # a class attribute: how many jobs this process has started

    started: float = field(default_factory=time.perf_counter)
    marks: dict[str, float] = field(default_factory=dict)
    epoch_times: dict[int, dict[str, float]] = field(default_factory=dict)  # epoch -> time/epoch_s, ...
    warmup_epochs: list[int] = field(default_factory=list)  # each invocation's first: warm-up, capture, compiling
    earlier_wall_s: float = 0.0  # the earlier invocations of a resumed run

    @classmethod
    def for_job(cls) -> "Stopwatch":
        cls.jobs_in_process += 1
        return cls(started=_PROCESS_STARTED) if cls.jobs_in_process == 1 else cls()

    def mark(self, name: str, again: bool = True) -> None:
        """``loaded`` (imports and config), ``data`` (on its device), ``setup`` (model and the rest),
        ``epochs`` (training over), ``testing`` (the test begins), ``test`` (over); not ``again`` where it is
        marked already (a stacked trial's epochs end where it is frozen, before its group's)."""
        if again or name not in self.marks:
            self.marks[name] = time.perf_counter()

    def skip_wait(self) -> None:
        """Leave out the time since ``loaded``: a stacked trial waited for other trials of its group (those that
        train from another epoch), which is neither its start-up nor its wall time."""
        waited = time.perf_counter() - self.marks["loaded"]
        self.started += waited
        self.marks["loaded"] += waited

    def resume(self, previous: Optional[dict]) -> None:
        """Carry on from the metrics.json of the run's earlier invocations."""
        previous = previous or {}
        self.earlier_wall_s = previous.get("wall_time_s") or 0.0
        self.warmup_epochs = list(previous.get("warmup_epochs") or [1])
        for row in previous.get("history") or []:
            times = {key: value for key, value in row.items() if key.startswith("time/")}
            if times:
                self.epoch_times[row["epoch"]] = times

    def epoch(self, epoch: int, seconds: float, samples: int, first_of_invocation: bool) -> dict[str, float]:
        if first_of_invocation:
            self.warmup_epochs.append(epoch)
        self.epoch_times[epoch] = {"time/epoch_s": seconds, "time/samples_per_s": samples / seconds}
        return self.epoch_times[epoch]

    def timings(self) -> dict[str, float]:
        """This invocation's: start-up in its parts, the epochs, the test (as far as they went)."""
        m = self.marks
        out = {}
        if "setup" in m:
            out = {"startup_s": m["setup"] - self.started, "imports_s": m["loaded"] - self.started,
                   "data_s": m["data"] - m["loaded"], "setup_s": m["setup"] - m["data"]}
        if "epochs" in m:
            out["epochs_s"] = m["epochs"] - m["setup"]  # training, validation and checkpoints
        if "test" in m:
            out["test_s"] = m["test"] - m.get("testing", m["epochs"])  # with its figures (a group's: together)
        return out

    def summary(self, epochs_done: int) -> dict[str, Any]:
        """The timing fields of metrics.json; the medians leave out each invocation's first epoch."""
        done = [self.epoch_times[e] for e in range(1, epochs_done + 1) if e in self.epoch_times]
        steady = [self.epoch_times[e] for e in range(1, epochs_done + 1)
                  if e in self.epoch_times and e not in self.warmup_epochs] or done
        return {
            "median_epoch_s": statistics.median(t["time/epoch_s"] for t in steady) if steady else None,
            "samples_per_s": statistics.median(t["time/samples_per_s"] for t in steady) if steady else None,
            "wall_time_s": self.earlier_wall_s + time.perf_counter() - self.started,  # every invocation
            "timings": self.timings(),  # this invocation's
            "warmup_epochs": self.warmup_epochs,
        }


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def rows_of_a_test(test: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A card's rows of a test: its accuracy (of how many images, where trainer.limit_batches capped it, as the
    console and metrics.json say), by class (the weakest first: what a data set's hard classes cost), its loss."""
    part = (f" ({test['samples']} of {test['split_samples']} images)"
            if test.get("samples", 0) < test.get("split_samples", 0) else "")
    by_class = sorted((test.get("acc_by_class") or {}).items(), key=lambda item: (item[1] is None, item[1]))
    ranked = " · ".join(f"{name}: {_cell(acc)}" for name, acc in by_class)
    return [("test acc", _cell(test.get("acc")) + part), *([("test acc by class", ranked)] if by_class else []),
            ("test loss", test.get("loss"))]


def evaluation_markdown(metrics: Mapping[str, Any], trained_on: str) -> str:
    """The text card of an evaluation (task=eval): the checkpoint, of which epoch, on which data, tested how
    well (its run's name in the Text tab, sweeps/…/0, tells none of it)."""
    other = f" (a model trained on {trained_on})" if trained_on != metrics["dataset"] else ""
    rows = [("status", metrics["status"]), ("checkpoint", f"{metrics['ckpt']} (after epoch {metrics['ckpt_epoch']})"),
            ("data set", f"{metrics['dataset']}{other}"),
            *([("val acc", (metrics.get("val") or {}).get("acc"))] if metrics.get("val") else []),
            *rows_of_a_test(metrics["test"]),
            ("device", metrics["device"])]
    return _table([(name, _cell(value)) for name, value in rows])


def summary_markdown(metrics: Mapping[str, Any], overrides: Sequence[str] = ()) -> str:
    """The final metrics as the text card of a run (a sweep has its own); a diverged run's says why. Its
    ``overrides`` that change what it computes say what it ran: a Text tab of runs named by date told none."""
    best_epoch = metrics["best_epoch"] or "none"  # 0: diverged in its first epoch
    done = metrics["epochs_done"]
    stopped = f" ({done} trained: stopped early)" if stopped_early(metrics) else ""
    limit = ((metrics.get("config") or {}).get("trainer") or {}).get("limit_batches")
    ran = " ".join(o for o in overrides if not where_or_how_fast(override_key(o), limit)).replace("|", "\\|")
    rows = [("status", metrics["status"]), *([("why", metrics["message"])] if metrics.get("message") else []),
            *([("overrides", ran)] if ran else []),
            ("best epoch", f"{best_epoch} of {metrics['epochs']}{stopped}{selected_by(metrics)}"),
            ("val acc (best epoch)", metrics["val"]["acc"]), ("val loss (best epoch)", metrics["val"]["loss"]),
            *rows_of_a_test(metrics["test"] or {}), ("device", metrics["device"])]
    if metrics.get("git"):
        rows.append(("git commit", commit_of(metrics["git"])))
    entries = metrics.get("earlier_code", [])
    rows += [(f"{earlier_epochs(entries, index)} trained by",
              other_code(earlier, metrics.get("git"), metrics.get("versions") or {},
                         {key: metrics.get(key) for key in HOW_IT_RAN}))
             for index, earlier in enumerate(entries)]
    return _table([(name, _cell(value)) for name, value in rows])


def selected_by(metrics: Mapping[str, Any]) -> str:
    """How the best epoch was chosen, where it is not by val accuracy (trainer.monitor)."""
    monitor = ((metrics.get("config") or {}).get("trainer") or {}).get("monitor")
    return ", the lowest val loss" if monitor == "val_loss" else ""


def failure_markdown(message: str) -> str:
    """The text card of a run that failed: why, as its metrics.json and log say."""
    return _table([("status", FAILED), ("why", message)])


def _table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def quiet_event_writer_threads() -> None:
    """TensorBoard writes events in a thread of its own, whose error (a full disk) would print a traceback;
    the writer raises that error again at the next write or close, which reports it as any other error."""
    default = threading.excepthook
    if getattr(default, "quiets_event_writers", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ != "_AsyncWriterThread":
            default(args)

    hook.quiets_event_writers = True
    threading.excepthook = hook


def selected_model_scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The selected model's val accuracy, epoch and val loss, from its epoch's row of a run's history. Named to
    be HParams' first metric columns (TensorBoard's parallel coordinates tick the first five by name and colour the
    lines by the first); an evaluation logs them too, of its checkpoint's epoch, so that a view of evaluations
    beside training runs leaves neither out."""
    return {"best/val_acc": row.get("val/acc", math.nan), "best/val_epoch": row.get("epoch", math.nan),
            "best/val_loss": row.get("val/loss", math.nan)}


CARD_TAG = "run/summary"  # the final metrics as a text card (shown as run/summary/text_summary)


def logged_at_the_end(value) -> bool:
    """A summary value a run logs when it ends: its HParams session, test results and figures, its card."""
    return value.metadata.plugin_data.plugin_name == "hparams" or value.tag.startswith(("test/", CARD_TAG))


def forget_the_end(log_dir: Path) -> None:
    """Rewrite the event files in ``log_dir`` without what the run logged when it ended (and its HParams
    session's start). A run that goes on ends again: TensorBoard showed the first HParams session it saw,
    and both ends' test points, figures and cards."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    for path in sorted(log_dir.glob(EVENT_FILES)):
        events, dropped = [], False
        for record in RawEventFileLoader(str(path)).Load():
            event = Event.FromString(record)
            values = [v for v in event.summary.value if not logged_at_the_end(v)]
            if len(values) < len(event.summary.value):
                dropped = True
                del event.summary.value[:]
                event.summary.value.extend(values)
                if not values:
                    continue
            events.append(event)
        if dropped:
            def write(file, kept=events) -> None:
                writer = RecordWriter(file)
                for event in kept:
                    writer.write(event.SerializeToString())

            write_atomic(path, write)


def session_end_summary(status: str):
    """The HParams plugin's session end with ``status`` (torch's ``hparams`` writes only STATUS_SUCCESS)."""
    from tensorboard.compat.proto.summary_pb2 import SummaryMetadata
    from tensorboard.plugins.hparams.api_pb2 import Status
    from tensorboard.plugins.hparams.metadata import PLUGIN_DATA_VERSION, PLUGIN_NAME, SESSION_END_INFO_TAG
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo

    content = HParamsPluginData(session_end_info=SessionEndInfo(status=Status.Value(status)),
                                version=PLUGIN_DATA_VERSION)
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME,
                                                                      content=content.SerializeToString()))
    return Summary(value=[Summary.Value(tag=SESSION_END_INFO_TAG, metadata=metadata)])


DATASET_IDENTITY = ("dataset.torchvision_class", "dataset.num_classes", "dataset.mean", "dataset.std")


def training_hparams(config: Mapping[str, Any], overrides: Sequence[str], choices: Mapping[str, Optional[str]],
                     as_run: Mapping[str, Any]) -> dict[str, Any]:
    """A training run's HParams: the settings that change results (a null one as what it came to in the run,
    ``as_run``: the images trained on, the data's statistics, the threads), the speed settings that its
    ``overrides`` name, and the option of each config group as Hydra chose it (``choices``): a column in every
    run, as TensorBoard's parallel coordinates leave out a run that lacks a column ticked."""
    chosen = {group: "null" if option is None else option for group, option in choices.items()
              if shown_in_hparams(group)}
    chosen.update({override_key(o): override_value(o) for o in overrides  # a record without hydra.yaml's
                   if "=" in o and override_key(o) in CHOSEN_IN_HPARAMS and override_key(o) not in chosen})
    named = {override_key(o) for o in overrides}
    settings = result_settings(config, named)
    settings.update({key: value for key, value in as_run.items()
                     if key in settings and settings[key] is None and value is not None})
    # what only repeats a group's option (model.name=lenet5 beside model=lenet5): a sweep over two groups gave
    # their repeats columns of their own, which TensorBoard ticked (the first five that differ, by name)
    # before optimizer.lr
    repeats = {f"{group}.name" for group, option in chosen.items() if settings.get(f"{group}.name") == option}
    repeats |= {f"{group}._target_" for group in chosen if f"{group}._target_" not in named}
    # and what only says which data set it is (its class, classes, statistics): MNIST's beside FashionMNIST's
    # took four of the five columns TensorBoard ticks (the first that differ, by name), none of them swept
    repeats |= {key for key in DATASET_IDENTITY if "dataset" in chosen and key not in named}
    # a column of the evaluations' checkpoints: one TensorBoard of both shows every run in parallel coordinates
    return {**chosen, "ckpt": "null", **{key: value for key, value in settings.items() if key not in repeats}}


def chosen_options(run_dir: Path) -> dict[str, Optional[str]]:
    """The option of each config group that HParams shows, as Hydra's record of the run says it chose them
    (``hydra.runtime.choices``); none for a run without one (started from Python)."""
    choices = hydra_record(run_dir, "runtime", "choices")  # none: the overrides say what they chose
    return {str(group): option if option is None else str(option) for group, option in choices.items()
            if shown_in_hparams(str(group)) and not isinstance(option, (list, dict))  # a list put there by hand
            } if isinstance(choices, dict) else {}


# Null (off) settings as the number that says so in HParams: a column of numbers sorts and filters, and one
# run's text among them broke TensorBoard's sort ("'<' not supported between 'float' and 'str'"). Left out
# instead, a setting looked the same in every run that had it: a run with patience 2 beside one without showed
# one value, and HParams took the setting for one that does not differ.
OFF_AS_ZERO = ("trainer.ema_decay",  # no average: the weights themselves, as a decay of 0 keeps them
               "trainer.early_stop_patience", "trainer.grad_clip_norm", "trainer.limit_batches")  # never, none, all


def shown_hparams(settings: Mapping[str, Any], run_dir: Path) -> dict[str, Any]:
    """A run's settings as its HParams session holds them. True / false as Hydra spells them (torch takes a
    bool for a number, shown as 0 / 1). A null of :data:`OFF_AS_ZERO` is 0, and another null default is left
    out (an empty cell: a null data_seed repeated the seed, a column that TensorBoard ticked before it); a null
    that the run's own overrides set is its seed's value for data_seed, else "null" (a sweep of null and other
    values would otherwise show one)."""
    set_here = overridden_keys(run_dir)
    settings = dict(settings)
    if "data_seed" in set_here and "seed" in settings:
        settings = drawn_as_it_is(settings)
    settings.update({key: 0 for key in OFF_AS_ZERO if key in settings and settings[key] is None})
    return {key: "null" if value is None else str(value).lower() if isinstance(value, bool) else value
            for key, value in settings.items() if value is not None or key in set_here}


MAX_CLOCK_AHEAD_S = 10  # an earlier event file named this far ahead of this clock is waited for


def wait_to_be_read_last(log_dir: Path) -> None:
    """Wait (a second, or a few) until an event file made now is named after those already in ``log_dir``.
    TensorBoard reads a folder's files in name order, ``events.out.tfevents.<second>.<host>.<pid>.<count>``:
    two made in one second sort by their pid and count as text (10 before 9), and the earlier file, read
    last, would purge the new one's points (its purge_step) and show the attempt the new one replaced. One
    named ahead of this clock came from another node's (a restart on a cluster)."""
    seconds = [int(part) for part in (path.name.split(".")[3] for path in log_dir.glob(EVENT_FILES)) if part.isdigit()]
    later = max(seconds, default=0) + 1
    if later - time.time() > MAX_CLOCK_AHEAD_S:  # not waited for
        log.warning("%s holds an event file named %d s ahead of this machine's clock (another machine's?): "
                    "TensorBoard reads it last, and may show what it recorded instead of this run's points. Set the "
                    "clocks right (NTP).", log_dir, later - 1 - int(time.time()))
        return
    while time.time() < later:  # the wall clock names the file
        time.sleep(0.05)


class TensorBoardLog:
    def __init__(self, log_dir: str, hparams: Mapping[str, Any], first_step: int = 1, before_training: bool = False,
                 figure_workers: FigureWorkers = INLINE):
        quiet_event_writer_threads()
        self.figure_workers = figure_workers  # who draws the test figures: this process, or a group's workers
        self.pending: list[tuple[str, int, PendingFigure]] = []
        for failed in Path(log_dir).glob(f"{EVENT_FILES}{BEFORE_TRAINING}"):  # an earlier attempt's
            failed.unlink()
        # what an earlier invocation logged when it ended (or began: HParams' session) goes: a run resumed
        # after a failure or a stop, or given more epochs, begins and ends again
        forget_the_end(Path(log_dir))
        wait_to_be_read_last(Path(log_dir))
        # purge_step drops events an interrupted run logged after its last checkpoint (all of them where it
        # failed before its first one: it starts over), and an evaluation's earlier ones (step 0) where it runs again
        self.writer = SummaryWriter(log_dir=log_dir, purge_step=first_step,
                                    filename_suffix=BEFORE_TRAINING if before_training else "")
        # the experiment summary is not written: one per run would declare every setting as not differing
        _, session_start, _ = hparams_summaries(shown_hparams(hparams, Path(log_dir)), {})
        self.writer.file_writer.add_summary(session_start)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def test(self, result, images: torch.Tensor, labels: torch.Tensor, classes: list[str], step: int,
             figures: bool, predicted_classes: Optional[list[str]] = None) -> None:
        """``test/loss`` and ``test/acc`` of an EvalResult, and with ``figures`` its confusion matrix and most
        confident mistakes, labelled with the ``classes``' names; a prediction with the model's own
        ``predicted_classes`` where it was trained on other classes (``task=eval`` on another data set)."""
        self.scalars({"test/loss": result.loss, "test/acc": result.acc}, step)
        if figures:
            n = len(result.predictions)  # all of the split, or its first limit_batches batches
            names = (np.array(classes), np.array(predicted_classes or classes))
            self.confusion_matrix(labels[:n], result.predictions, names, step)
            self.misclassified(images[:n], labels[:n], result.predictions, result.confidences, names, step)

    def confusion_matrix(self, labels: torch.Tensor, predicted: torch.Tensor, names: tuple[np.ndarray, np.ndarray],
                         step: int) -> None:
        # counted on the CPU: CUDA's bincount has no deterministic kernel (trainer.deterministic=true)
        n = len(names[0])
        counts = torch.bincount((labels * n + predicted).cpu(), minlength=n ** 2)
        self._figure("confusion_matrix", step, counts.reshape(n, n), *names)

    def misclassified(self, images: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor,
                      confidences: torch.Tensor, names: tuple[np.ndarray, np.ndarray], step: int,
                      limit: int = 32) -> None:
        wrong = most_confident_mistakes(labels, predicted, confidences, limit).cpu()
        if len(wrong):
            self._figure("misclassified", step, images[wrong].float(), labels[wrong], predicted[wrong],
                         confidences[wrong], *names)

    def _figure(self, kind: str, step: int, *arrays: torch.Tensor | np.ndarray) -> None:
        """Have ``test/<kind>`` drawn (now, or meanwhile by a group's workers): :meth:`write_figures` logs it."""
        arrays = tuple(a.cpu().numpy() if isinstance(a, torch.Tensor) else a for a in arrays)
        self.pending.append((f"test/{kind}", step, self.figure_workers.submit(kind, *arrays)))

    def write_figures(self) -> None:
        """The figures asked for, once drawn, into the event file; each asked for once (one that failed to draw
        is not drawn again at close, which raised its error again there). The first error is raised once the
        others are written."""
        pending, self.pending = self.pending, []
        failure = None
        for tag, step, figure in pending:
            try:
                png, height, width = figure.png()
            except Exception as error:
                failure = failure or error
                continue
            image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
            self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
        if failure is not None:
            raise failure

    def card(self, markdown: str) -> None:
        self.writer.add_text(CARD_TAG, markdown, 0)

    def session_end(self, failed: bool = False) -> None:
        """Mark the HParams session as finished: successfully, or as a failure (a run that diverged or failed
        with an error), which HParams shows in its Status column (a run without an end is "Unknown")."""
        self.writer.file_writer.add_summary(session_end_summary("STATUS_FAILURE" if failed else "STATUS_SUCCESS"))

    def flush(self) -> None:
        """Everything logged so far on disk; the writer's thread's error (a full disk) raised here."""
        self.writer.flush()

    def close(self) -> None:
        self.write_figures()
        self.writer.close()


def most_confident_mistakes(labels: torch.Tensor, predicted: torch.Tensor, confidences: torch.Tensor,
                            limit: int) -> torch.Tensor:
    """Indices of the wrong predictions, the most confident first: what the model is surest of and wrong about."""
    wrong = (labels != predicted).nonzero().flatten()
    return wrong[confidences[wrong].argsort(descending=True, stable=True)][:limit]
