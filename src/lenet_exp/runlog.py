"""A run's log lines: the console's and run.log's handlers, which Hydra's job logging names
(configs/hydra/job_logging/lenet_exp.yaml), and the Python entry point's run logged as run.py logs one."""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional

from lenet_exp.files import RUN_LOG, write_nowhere


# what a terminal acts on instead of showing (cursor moves, clearing, a fake line); the first, but a line's end and tab
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_AND_LINES = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escaped_controls(text: str, lines_kept: bool = True) -> str:
    """``text`` with its control characters shown as escapes (``\\x1b``): it may quote a folder's files or names,
    which come from anyone; its line ends and tabs too where not ``lines_kept`` (a table's cell)."""
    controls = CONTROL_CHARACTERS if lines_kept else CONTROL_CHARACTERS_AND_LINES
    return controls.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


class Console(logging.StreamHandler):
    """The console's log lines (hydra.job_logging's and hydra.hydra_logging's console handler): an output that
    takes no more (a reader gone, `run.py -m … | head`) takes no more of them, where Python's logging printed
    "--- Logging error ---" and a traceback for each. Control characters are shown as escapes: a line may
    quote a folder's files (a checkpoint's model name), which come from anyone."""

    def format(self, record: logging.LogRecord) -> str:
        return escaped_controls(super().format(record))

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not output_gone(error):
            return super().handleError(record)
        stop_writing_to(self.stream, error)


class LaunchLinesAlike(logging.Filter):
    """hydra.hydra_logging's console filter: the joblib launcher's first lines as the basic and stacked launchers
    word theirs ("Launching 3 jobs with joblib"; how many at once: sweeps.callback's line), not its 200-character
    ``Joblib.Parallel(n_jobs=2,backend=loky,prefer=processes,…) is launching 3 jobs`` and a second line of the
    sweep's relative folder."""

    LOGGER = "hydra_plugins.hydra_joblib_launcher._core"
    PARALLEL = re.compile(r"Joblib\.Parallel\(.*\) is launching (?P<jobs>\d+) jobs$")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != self.LOGGER:
            return True
        message = record.getMessage()
        if message.startswith("Launching jobs, sweep output dir"):  # the summary names it, absolute, at the end
            return False
        found = self.PARALLEL.match(message)
        if found:
            jobs = int(found["jobs"])
            record.msg, record.args = f"Launching {jobs} job{'s' if jobs != 1 else ''} with joblib", ()
        return True


# what a stream that takes nothing more fails with: its reader gone, a full disk or quota, a file too large, a
# terminal hung up (a non-blocking one's EAGAIN is no end)
NOTHING_MORE = (errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def output_gone(error: Optional[BaseException]) -> bool:
    """Whether writing to an output failed for good (:data:`NOTHING_MORE`)."""
    return isinstance(error, OSError) and error.errno in NOTHING_MORE


def stop_writing_to(stream, error: OSError) -> None:
    """What is written to ``stream`` from now on goes nowhere: writing to it failed with ``error``. A reader
    that went away (`| head`) is what a pipe's writer expects; any other failure (a full disk behind `> file`)
    is said once, on stderr, where the output was stdout."""
    write_nowhere(stream)
    if not isinstance(error, BrokenPipeError) and stream in (sys.stdout, sys.__stdout__):
        with contextlib.suppress(OSError):
            print(f"Warning: could not write to the standard output ({error.strerror or error}): what it would "
                  f"show goes nowhere; the results are written to their files all the same.", file=sys.stderr)


def show(text: str, out=None) -> None:
    """Print ``text`` to ``out`` (stdout). An output that takes no more (a reader gone, `run.py -m … | head`; a
    full disk behind `> file`) gets nothing more: what was printed is the run's files' too, which are written all
    the same, and its exit status stays its own. One that cannot show a character (``PYTHONIOENCODING=ascii``:
    the ± of mean ± std) gets a ? in its place, not a traceback."""
    out = out or sys.stdout
    encoding = getattr(out, "encoding", None)
    if encoding:
        text = text.encode(encoding, errors="replace").decode(encoding)
    try:
        print(text, file=out, flush=True)
    except OSError as error:
        if not output_gone(error):
            raise
        stop_writing_to(out, error)


def is_console(handler: logging.Handler) -> bool:
    """Whether a root logger's handler writes to the console (as against run.log, also a stream)."""
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


class Prefixed(logging.Formatter):
    """Each line after a prefix worked out as it is written (``[job 3] ``: the job it belongs to)."""

    def __init__(self, prefix: Callable[[], str], inner: logging.Formatter):
        super().__init__()
        self.prefix, self.inner = prefix, inner

    def format(self, record: logging.LogRecord) -> str:
        return self.prefix() + self.inner.format(record)


def prefix_console_lines(prefix: Callable[[], str]) -> None:
    """Start each console line with ``prefix()``. (Hydra configured the job's logging just before; run.log is the
    job's own and keeps its lines bare.)"""
    for handler in logging.getLogger().handlers:
        if is_console(handler):
            handler.setFormatter(Prefixed(prefix, handler.formatter or logging.Formatter()))


def leave_the_run_log(run_dir: Path) -> None:
    """No more of this process's lines into ``run_dir``'s run.log (hydra.job_logging's, opened as the job began):
    the folder is another process's, and so is its run.log."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, RunLog) and Path(handler.baseFilename).parent == Path(run_dir).resolve():
            root.removeHandler(handler)
            handler.close()


class RunLog(logging.FileHandler):
    """run.log (hydra.job_logging's file handler), which a full disk cannot turn into a traceback per line:
    it says so once, and the console still shows every line. Its control characters are escaped as the
    console's are: `cat run.log` or `tail -f` would act on them."""

    failed = False

    def format(self, record: logging.LogRecord) -> str:
        return escaped_controls(super().format(record))

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            return super().handleError(record)
        self._say_once(error)

    def close(self) -> None:
        try:
            super().close()
        except OSError as error:  # the lines still buffered when the disk filled up
            self._say_once(error)

    def _say_once(self, error: OSError) -> None:
        if not self.failed:
            self.failed = True
            sys.stderr.write(f"({self.baseFilename} cannot be written: {error.strerror or error}; "
                             f"its lines go to the console only)\n")


RUN_LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # configs/hydra/job_logging/lenet_exp.yaml's


@contextlib.contextmanager
def logging_as_run_py_does(run_dir: Path) -> Iterator[None]:
    """The Python entry point's run logged as run.py logs one: every line in run_dir/run.log, and on the
    console what the caller's logging shows of it, or, where the caller set none up (a notebook saw
    nothing of the epochs go by), every line as run.py shows it."""
    package = logging.getLogger("lenet_exp")
    run_log = RunLog(run_dir / RUN_LOG, delay=True)  # opened at the run's first line, in the folder it made
    run_log.setFormatter(logging.Formatter(RUN_LOG_FORMAT))
    level, propagate = package.level, package.propagate
    # logging.config's dictConfig and fileConfig disable the loggers that exist unless told not to: a
    # notebook that set its logging up after importing us got an empty run.log. Its console shows none of them.
    disabled = [logger for name, logger in logging.Logger.manager.loggerDict.items()
                if (name == "lenet_exp" or name.startswith("lenet_exp.")) and isinstance(logger, logging.Logger)
                and logger.disabled]
    handlers: list[logging.Handler] = [run_log]
    if not package.handlers:  # (logging set up for the package itself is left as it is)
        if disabled:  # the caller's logging shows none of it: run.log alone
            pass
        elif logging.getLogger().handlers:  # the caller's: as much as it showed before
            handlers.append(ToRootFrom(package.getEffectiveLevel()))
        else:
            handlers.append(Console(sys.stderr))
            handlers[-1].setFormatter(WithoutTraceback("%(message)s"))
        package.setLevel(logging.INFO)
        package.propagate = False
    for handler in handlers:
        package.addHandler(handler)
    for logger in disabled:
        logger.disabled = False
    try:
        yield
    finally:
        for logger in disabled:
            logger.disabled = True
        for handler in handlers:
            package.removeHandler(handler)
            handler.close()
        package.setLevel(level)
        package.propagate = propagate


class ToRootFrom(logging.Handler):
    """Hands the root logger's handlers the records of its level and up: what they got before
    :func:`logging_as_run_py_does` lowered the package's level for run.log. But for another run's run.log, which
    a run.py run in this process left on the root logger: a run writes into its own folder alone."""

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if not root.filter(record):
            return
        record = without_traceback(record)
        for handler in root.handlers:
            if not isinstance(handler, RunLog) and record.levelno >= handler.level:
                handler.handle(record)


def without_traceback(record: logging.LogRecord) -> logging.LogRecord:
    """A record as the console shows it where train() runs: train() raises the error whose traceback run.log
    keeps, and the caller sees that traceback (a notebook showed it twice)."""
    return logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None}) if record.exc_info else record


class WithoutTraceback(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return super().format(without_traceback(record))
