"""How a stop reaches a sweep's jobs (where each runs, and on how many threads: slots.py).

A sweep's jobs may run in joblib's worker processes, which a signal to the launching ``run.py`` alone
does not reach: a worker therefore watches that process and stops once it has gone, instead of
training on, and then waiting for ever, for a sweep that no longer exists. A first signal to that
``run.py`` asks its jobs to stop through a stop file and waits for them (:func:`collect_stopped_jobs`).
submitit_local's jobs, grandchildren of ``run.py``, watch it and are asked the same way
(:func:`prepare_local_controllers`); a cluster's are detached by design and finish on their own.
A job in a process of its own hands its launcher a result when stopped (:func:`stopped_job_returns`);
one in ``run.py`` itself ends the process.

No torch import here: ``run.py`` calls :func:`mark_launcher` before Hydra parses the command line.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

from lenet_exp.errors import UserError
from lenet_exp.files import folder_holder, write_atomic, write_nowhere

log = logging.getLogger(__name__)
LAUNCHER_PID_VARIABLE = "LENET_EXP_LAUNCHER_PID"
STOP_FILE_VARIABLE = "LENET_EXP_STOP_FILE"  # set by a parallel sweep's run.py; the file exists once it stops
LOCAL_SUBMITIT_VARIABLE = "LENET_EXP_SUBMITIT_LOCAL"  # set by the run.py of a submitit_local sweep, for its jobs
# run.py's own OMP_NUM_THREADS (empty: unset), for its jobs: joblib's workers get one of joblib's making
USERS_OMP_VARIABLE = "LENET_EXP_OMP_NUM_THREADS"
EXIT_SIGNAL_BASE = 128  # shell convention: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP
# what asks a run to stop: Ctrl-C, `kill` or a scheduler's time limit, a terminal closed (an ssh connection lost)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# how long a sweep whose local job died waits for its other jobs to stop (one in its start-up stops once
# its training begins)
JOBS_STOP_TIMEOUT_S = 120
# a stop signal this soon after the first is the same request: timeout(1) sends its signal to the command
# and then to the command's process group, so one request can reach the command twice
ECHO_S = 0.5


def asked_again(first_asked_at: float) -> bool:
    """Whether a stop signal taken now is a second request (stop at once), the first having come at
    ``first_asked_at`` (time.monotonic()), and not that one's echo."""
    return time.monotonic() - first_asked_at >= ECHO_S


def after_a_hang_up(signum: int) -> None:
    """After SIGHUP the terminal is gone, and every write to it fails (EIO): a sweep's run.py then died
    printing that it stops, and its summary was never written. Its lines go nowhere instead; run.log
    keeps a run's. Output sent to a file or a pipe stays there."""
    if signum != signal.SIGHUP:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if stat.S_ISCHR(os.fstat(stream.fileno()).st_mode):  # a terminal (a hung-up one is no tty any more)
                write_nowhere(stream)


def stop_signals() -> list[int]:
    """STOP_SIGNALS to take over, all but an ignored SIGHUP or SIGINT, as Python leaves an ignored SIGINT
    ignored: a run started with nohup goes on when its terminal closes, and one that a script started in
    the background (its shell ignores Ctrl-C for it) goes on after a Ctrl-C meant for the script."""
    return [signum for signum in STOP_SIGNALS
            if not (signum in (signal.SIGHUP, signal.SIGINT) and signal.getsignal(signum) is signal.SIG_IGN)]


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP before the training loop takes the signals over (imports, data), or a signal held
    through the imports: stop as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def handled_by(handler, signums: list[int]) -> Iterator[None]:
    """Within this context ``handler`` takes the signals ``signums``, and the handlers before it after. Only the
    main thread can set one: elsewhere the signals stay as they were."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:  # a signal taken while they are set (a handler that raises) leaves none of them set
        for signum in signums:
            previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


@contextlib.contextmanager
def kill_signals_stop() -> Iterator[None]:
    """Within this context (a job, until its training loop takes the signals over) a SIGTERM or SIGHUP
    raises :class:`Stopped`, which the task reports, instead of killing the process before it could say so
    (SIGINT raises KeyboardInterrupt already)."""
    def stop(signum, frame):
        after_a_hang_up(signum)
        raise Stopped(signum)

    with handled_by(stop, [signum for signum in stop_signals() if signum != signal.SIGINT]):
        yield


@contextlib.contextmanager
def stops_held() -> Iterator[None]:
    """Within this context (imports) a first stop signal is held and raised as :class:`Stopped` when
    it ends; a second one at once. torch's C start-up takes an exception raised while it imports numpy for
    numpy's absence and goes on: the stop is lost, and numpy half-imported ("module 'numpy' has no
    attribute 'multiply'" later)."""
    held: list[tuple[int, float]] = []  # the first stop signal, and when it came

    def hold(signum, frame):
        after_a_hang_up(signum)
        if not held:
            held.append((signum, time.monotonic()))
        elif asked_again(held[0][1]):  # the user means it
            raise Stopped(held[0][0])

    with handled_by(hold, stop_signals()):  # those the run takes over
        yield
    if held:
        raise Stopped(held[0][0])


def collect_stopped_jobs() -> None:
    """In the run.py of a joblib or submitit_local sweep, before its workers start: a first stop signal
    asks every job to stop as a first Ctrl-C stops a run (checkpoint, status ``interrupted``), and
    the launcher collects them; jobs that had not started yet stop at once. A second signal stops at once.
    (Left alone, joblib answers the KeyboardInterrupt by killing its workers, maybe before they saved
    anything.)"""
    if threading.current_thread() is not threading.main_thread():  # handlers can only live there
        return
    stop_file = Path(tempfile.gettempdir()) / f"lenet_exp-{os.getpid()}-{secrets.token_hex(4)}.stop"
    os.environ[STOP_FILE_VARIABLE] = str(stop_file)  # the workers, started later, inherit it

    asked_at: list[float] = []

    def stop_jobs(signum, frame):
        after_a_hang_up(signum)
        if asked_at:
            if asked_again(asked_at[0]):  # the user means it
                raise Stopped(signum)
            return
        if not ask_jobs_to_stop(signum):  # no way to ask the jobs: stop at once
            raise Stopped(signum) from None
        asked_at.append(time.monotonic())
        again = "Ctrl-C again" if signum == signal.SIGINT else f"signal {signum} again"
        print(f"Stopping the sweep (signal {signum}): each job saves its checkpoint first; {again} stops at once.",
              file=sys.stderr, flush=True)

    for signum in stop_signals():
        signal.signal(signum, stop_jobs)


def start_joblibs_trackers_deaf_to_hang_ups() -> None:
    """In the run.py of a joblib sweep, before its workers start: joblib's resource trackers (loky's and
    multiprocessing's), started now with SIGHUP ignored, which they keep. They ignore SIGINT and SIGTERM but
    not SIGHUP, so a closed terminal killed them mid-sweep, and loky's relaunched tracker printed a traceback
    for every resource that it had not seen registered."""
    from multiprocessing import resource_tracker

    from joblib.externals.loky.backend import resource_tracker as loky_resource_tracker

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        loky_resource_tracker.ensure_running()
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


def ask_jobs_to_stop(signum: int) -> bool:
    """Ask a parallel sweep's jobs to stop as ``signum`` stops a run (:func:`collect_stopped_jobs`'s stop
    file); False where there is no stop file to write (not such a sweep, or the file cannot be written)."""
    stop_file = os.environ.get(STOP_FILE_VARIABLE)
    if not stop_file:
        return False
    try:  # a job reads all of it or nothing
        write_atomic(Path(stop_file), lambda file: file.write(str(signum)), binary=False)
    except UserError:  # the file system refused it
        return False
    atexit.register(Path(stop_file).unlink, missing_ok=True)
    return True


def wait_for_jobs_to_stop(sweep_dir: Path, timeout: float = JOBS_STOP_TIMEOUT_S) -> bool:
    """Wait until no job folder of the sweep is held by a live process of this machine (a stopping job
    writes its checkpoint and metrics first); False where one still is after ``timeout`` seconds."""
    from lenet_exp.sweeps.records import find_job_dirs

    deadline = time.monotonic() + timeout
    while any(folder_holder(job) for job in find_job_dirs(sweep_dir)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def prepare_local_controllers() -> None:
    """In the run.py of a submitit_local sweep, with :func:`collect_stopped_jobs`: the job controllers it
    starts ignore SIGINT. A terminal's Ctrl-C reaches every process of its group, and a controller met it
    with a KeyboardInterrupt traceback and killed its job a second later, while run.py ended without a
    summary. Its job takes SIGINT back (:func:`take_ctrl_c_back`), stops as a run does, on the signal or
    on run.py's stop file, and hands run.py its result. It also watches run.py (slots.job_slot): a
    Ctrl-C that came while it started up, still ignoring it, or a ``kill -9`` to run.py, must not leave it
    training for nobody. A controller's job folder, named by its pid, loses an earlier job's result first."""
    import submitit.local.local as local
    from submitit.core.utils import JobPaths

    os.environ[LOCAL_SUBMITIT_VARIABLE] = "1"
    start = local.start_controller
    if getattr(start, "prepared", False):  # a sweep before this one, in this process
        return

    def start_a_controller(folder, *args, **kwargs):
        with handled_by(signal.SIG_IGN, [signal.SIGINT]):  # what a child inherits across exec
            process = start(folder, *args, **kwargs)
        # submitit names a local job's files by its controller's pid: one that an earlier job had (the sweep run
        # again, pids wrapped round) left its result, which submitit took for this job's if it died without one
        JobPaths(folder, job_id=str(process.pid), task_id=0).result_pickle.unlink(missing_ok=True)
        return process

    start_a_controller.prepared = True
    local.start_controller = start_a_controller


_ignoring_between_jobs = False  # this worker process ignores SIGINT until its next job starts


def take_ctrl_c_back() -> None:
    """In a submitit_local job, or a joblib worker's next job, first thing: SIGINT as Python has it by default,
    which the job's controller ignores (:func:`prepare_local_controllers`), as the worker does between
    jobs (:func:`ignore_ctrl_c_between_jobs`). A job that ignored it through its start-up would train on
    after a Ctrl-C that came then, once run.py, stopped by a second one, had taken its stop file."""
    global _ignoring_between_jobs
    if ((os.environ.get(LOCAL_SUBMITIT_VARIABLE) or _ignoring_between_jobs)
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _ignoring_between_jobs = False


def ignore_ctrl_c_between_jobs() -> None:
    """In a joblib worker, as its job ends: SIGINT ignored until its next job. A terminal's Ctrl-C reaches every
    process of its group, and an idle worker met a second one with a KeyboardInterrupt traceback and died:
    the sweep ended "out of memory, killed, or crashed". Its run.py stops the sweep, and tells the jobs to
    come (its stop file)."""
    global _ignoring_between_jobs
    if (launcher_pid() is not None and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _ignoring_between_jobs = True


def sweep_stop_signal() -> Optional[int]:
    """The signal with which this job's run.py asked its sweep to stop, or None (no stop, or no sweep whose
    run.py collects its stopped jobs)."""
    stop_file = os.environ.get(STOP_FILE_VARIABLE)
    return stop_file_signal(stop_file) if stop_file else None


def stop_file_signal(stop_file: str) -> Optional[int]:
    if not os.path.exists(stop_file):  # the common case, checked at every step: one stat
        return None
    try:
        text = Path(stop_file).read_text().strip()
    except OSError:  # taken away by run.py as it exited: the launcher watch stops this job
        return None
    return int(text) if text.isdigit() else signal.SIGTERM


def stopped_job_returns() -> bool:
    """Whether a stopped job returns its result to its launcher: it runs in a process of its own, a joblib
    worker (whose run.py ends the sweep once every job has stopped) or a submitit job (whose result run.py
    waits for; without one it failed with submitit's UncompletedJobError). A job in run.py itself (the
    basic launcher, joblib with one job at a time) took the signal in run.py's stead: it ends the process."""
    return launcher_pid() is not None


def mark_launcher() -> None:
    """Called by run.py: the worker processes it starts inherit its pid, so that they can watch it, and the
    user's OMP_NUM_THREADS."""
    os.environ[LAUNCHER_PID_VARIABLE] = str(os.getpid())
    os.environ[USERS_OMP_VARIABLE] = os.environ.get("OMP_NUM_THREADS", "")


def launcher_pid() -> Optional[int]:
    """The run.py process this one descends from, or None in that run.py itself (or without one)."""
    value = os.environ.get(LAUNCHER_PID_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) != os.getpid() else None


def launcher_gone(launcher: Optional[int]) -> bool:
    """Whether this job's run.py has exited: the parent of a joblib worker, the grandparent of a
    submitit_local job (through its controller). POSIX: an orphan is adopted by another process."""
    if launcher is None:
        return False
    parent = os.getppid()
    if parent == launcher:
        return False
    grandparent = parent_pid(parent)
    if grandparent is not None:
        return grandparent != launcher
    try:  # no /proc (macOS): whether a process still has its pid
        os.kill(launcher, 0)
    except OSError:
        return True
    return False


def parent_pid(pid: int) -> Optional[int]:
    """The parent of process ``pid``, from Linux's /proc; None where it cannot be read, or where /proc lists
    the processes of another pid namespace (a sandbox that keeps the machine's): its pid ``pid`` is another
    process there."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return None
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # after "pid (name) state"
    except (OSError, IndexError, ValueError):
        return None
