"""Shared fixtures: tiny generated data sets, and two ways to run the real `python run.py` entry point.

* :func:`run_main` runs run.py in this process (as lightning-hydra-template's tests call their task):
  the same script, the same ``@hydra.main``, the same exit codes and messages, without the 5-8 s of
  imports (torch, torchvision, Hydra) a new interpreter pays. Most end-to-end tests use it.
* :func:`run_cli` (and :func:`start`, :func:`start_on_terminal`, which do not wait) starts ``python
  run.py`` as a process, for what only a process shows: signals during start-up, killed launchers,
  joblib's workers, a folder another process holds, what an interpreter imports, and a few smoke tests
  of the command line itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import pty
import random
import runpy
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from idx import write_dataset

REPO = Path(__file__).resolve().parents[1]
RUN_PY = REPO / "run.py"
# Root reads a file whatever its mode: what a user sees of one needs a process without root's capabilities.
AS_A_USER = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"] if os.geteuid() == 0 else []
as_a_user = pytest.mark.skipif(bool(AS_A_USER) and not shutil.which("setpriv"), reason="needs setpriv to drop root's")
SHARED_DATA = REPO.parent / "shared" / "data"


# the cores this machine lends the suite, before pytest_configure gives each xdist worker one of them
MACHINE_CORES = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()


@contextlib.contextmanager
def on_every_core() -> Iterator[None]:
    """The processes this test starts on all of MACHINE_CORES (a test of how runs share the cores)."""
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, MACHINE_CORES)
    try:
        yield
    finally:
        os.sched_setaffinity(0, own)


def pytest_configure(config):
    """Under pytest-xdist (-n auto), each worker has a core of its own, and so do the processes its tests
    start: the runs size their threads to it. The suite is bound by CPU time, and threads that share a
    core with another worker's tests spin (measured here: a run.py process given both cores, beside a busy
    one, spent 16-17 CPU-seconds; the same run on one core, 12)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if worker.startswith("gw") and cores:
        os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})


def pytest_addoption(parser):
    parser.addoption("--shuffle", type=int, metavar="SEED",
                     help="the tests in an order shuffled with SEED: finds a test that passes only after (or "
                          "before) another on the same worker, as CI's order may have it")


def pytest_collection_modifyitems(config, items):
    """The long tests first: pytest-xdist hands tests out in this order, so the workers then end together
    instead of one of them waiting for the other's last long test. Under --shuffle, each kind shuffled."""
    if config.getoption("--shuffle") is not None:
        random.Random(config.getoption("--shuffle")).shuffle(items)
    items.sort(key=lambda item: not (item.get_closest_marker("long") or item.get_closest_marker("slow")))


def as_a_new_command() -> None:
    """``preexec_fn`` of a started process: Ctrl+C, as a command typed at a shell has it. A suite started
    in the background (`pytest &`) ignores SIGINT, and a process inherits that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_as_at_a_shell() -> None:
    """A suite started in the background ignores SIGINT, which a run in this process would then leave ignored
    (lenet_exp.launch.stop_signals): its runs take Ctrl+C as a command typed at a shell does."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A data root holding tiny MNIST and FashionMNIST (600 train / 200 test images each)."""
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, "MNIST", seed=0)
    write_dataset(root, "FashionMNIST", seed=1)
    return root


def fast_overrides(root: Path) -> list[str]:
    """Overrides for a seconds-long CPU run on the tiny data in ``root``; without the test's figures, which
    cost as much as the rest of such a run (a test that looks at them asks for them)."""
    return [f"dataset.root={root}", "dataset.download=false", "dataset.val_size=100", "trainer.epochs=1",
            "trainer.eval_batch_size=200", "device=cpu", "trainer.progress=false", "trainer.log_images=false"]


@pytest.fixture
def fast(tiny_root) -> list[str]:
    return fast_overrides(tiny_root)


# Settings of the test process itself that a run of run.py must neither see nor change.
UNSET_FOR_RUNS = ("HYDRA_FULL_ERROR", "LENET_EXP_DATA")


def run_cli(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None, script: Path | None = RUN_PY,
            **kwargs):
    """`python run.py ARGS` in ``cwd`` (so outputs/ lands there); returns the CompletedProcess.

    ``script=None`` passes ARGS to the interpreter as they are (for interpreter flags); ``stdout=`` another
    standard output than the one captured."""
    inherited = {k: v for k, v in os.environ.items() if k not in UNSET_FOR_RUNS}
    full_env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
    command = [sys.executable, *([str(script)] if script else []), *args]
    return subprocess.run(command, cwd=cwd, env=full_env, stdout=kwargs.pop("stdout", subprocess.PIPE),
                          stderr=subprocess.PIPE, text=True, timeout=timeout, preexec_fn=as_a_new_command, **kwargs)


def _open_terminal() -> tuple[int, int]:
    """A pseudo-terminal of 120 x 40 (tqdm draws in it): its controller's and its terminal's ends."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    return controller, terminal


def _read_screen(controller: int, deadline: float) -> str:
    """What the terminal showed, read until every writer has closed it (or the deadline), with its line
    ends made ``\\n``."""
    shown = bytearray()
    while time.monotonic() < deadline:
        if select.select([controller], [], [], 1)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    return shown.decode(errors="replace").replace("\r\n", "\n")


def start_on_terminal(args: list[str], cwd: Path, its_own: bool = False) -> tuple[subprocess.Popen, int]:
    """`python run.py ARGS` with a terminal (a pseudo-terminal) as its stdout and stderr, as a user at a
    shell has: progress bars are drawn there. Returns the process and the terminal's controller end, to
    read with :func:`finish_on_terminal` (meanwhile, this process can run something of its own).
    ``its_own``: the terminal is the process's controlling one, in a session of its own, as a login's
    shell has it: closing the controller end hangs it up (SIGHUP), as a closed window or a lost ssh does."""
    controller, terminal = _open_terminal()
    env = {k: v for k, v in os.environ.items() if k not in UNSET_FOR_RUNS}

    def own_terminal() -> None:
        as_a_new_command()
        if its_own:
            signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as a login's shell has it, also in a suite run by nohup
            os.setsid()
            fcntl.ioctl(1, termios.TIOCSCTTY, 0)  # standard output is the terminal by now

    process = subprocess.Popen([sys.executable, str(RUN_PY), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=terminal, stderr=terminal, preexec_fn=own_terminal)
    os.close(terminal)  # the run (and its workers) hold the other ends: reading ends when the last one closes
    return process, controller


def finish_on_terminal(process: subprocess.Popen, controller: int, timeout: float = 300) -> subprocess.CompletedProcess:
    """What the terminal of a :func:`start_on_terminal` process showed, once it has ended, as both stdout
    and stderr."""
    deadline = time.monotonic() + timeout
    try:
        text = _read_screen(controller, deadline)
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(controller)
    return subprocess.CompletedProcess(process.args, process.returncode, text, text)


_started: list[subprocess.Popen] = []


def start(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """`python run.py ARGS` in the background, in a process group of its own (with any workers it starts);
    killed, with its group, when the test ends (:func:`no_process_left_behind`)."""
    process = subprocess.Popen([sys.executable, str(RUN_PY), *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, **(env or {})}, preexec_fn=as_a_new_command)
    _started.append(process)
    return process


@pytest.fixture(autouse=True)
def no_process_left_behind():
    """A failed test must not leave a run or its sweep workers training."""
    yield
    while _started:
        process = _started.pop()
        signal_group(process, signal.SIGKILL)
        process.communicate()


def signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the process group of ``process`` (started with ``start_new_session=True``), if the
    process has not been reaped yet: once it has, its pid may already lead another process group (pids wrap
    around quickly with many short processes), and that group must not get the signal."""
    if process.poll() is None:  # alive or a zombie: its pid, and so its group id, is still its own
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


def only_run_dir(cwd: Path) -> Path:
    """The single run directory a `python run.py` in ``cwd`` created."""
    runs = sorted((cwd / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 1, runs
    return runs[0]


@dataclass
class MainResult:
    """What :func:`run_main` returns: the fields of a CompletedProcess that the tests read."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def _exit_status(code, stderr) -> int:
    """The exit status an interpreter gives ``sys.exit(code)`` (a message is printed to stderr, status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=stderr)
    return 1


@contextlib.contextmanager
def _fresh_process_state(cwd: Path, env: dict | None):
    """As much of a new process as one run of run.py can tell: its own cwd, environment, argv, Hydra,
    logging, signal handlers, torch settings and job count, all put back as they were afterwards, and
    the folders it owned (run and sweep folder locks) freed as its end would free them."""
    import torch
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from lenet_exp import files, record
    from lenet_exp.parts import torch_settings_kept

    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    saved_loggers = _loggers_state()
    # SIGPIPE too: run.py --info leaves it at its default, which killed this worker when it next wrote to a pipe
    # whose reader had died (a figure worker killed on purpose)
    saved_signals = {signum: signal.getsignal(signum)
                     for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE)}
    saved_rng = torch.get_rng_state()
    saved_jobs = (record.Stopwatch.jobs_in_process, record._PROCESS_STARTED)
    owned_before = files.held_folders()
    torch_settings = contextlib.ExitStack()
    torch_settings.enter_context(torch_settings_kept())
    try:
        for name in UNSET_FOR_RUNS:
            os.environ.pop(name, None)
        os.environ.update(env or {})
        os.chdir(cwd)
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # the last command's, which a new process would not have
        urllib.request.install_opener(None)  # urlopen builds its opener anew: with this environment's proxies
        # this run is the process's first job, and the process starts now (with its imports already done)
        record.Stopwatch.jobs_in_process, record._PROCESS_STARTED = 0, time.perf_counter()
        yield
    finally:
        for folder in files.held_folders() - owned_before:  # a process's folders are free once it has ended
            files.release_folder(folder)
        record.Stopwatch.jobs_in_process, record._PROCESS_STARTED = saved_jobs
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
        urllib.request.install_opener(None)
        _restore_loggers(saved_loggers)
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler)
        torch_settings.close()
        torch.set_rng_state(saved_rng)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        for name in set(os.environ) - set(saved_env):  # e.g. run.py's LENET_EXP_LAUNCHER_PID
            del os.environ[name]
        os.environ.update(saved_env)


def _loggers_state() -> dict[str, tuple]:
    loggers = {"": logging.getLogger()} | {name: logger for name, logger in logging.Logger.manager.loggerDict.items()
                                          if isinstance(logger, logging.Logger)}
    return {name: (logger, logger.level, logger.handlers[:], logger.propagate, logger.disabled)
            for name, logger in loggers.items()}


def _restore_loggers(saved: dict[str, tuple]) -> None:
    """Every logger as it was: Hydra's dictConfig adds handlers (run.log among them, closed here), sets levels,
    and, under hydra/job_logging=disabled, disables every logger that existed, this worker's later tests' too."""
    now = _loggers_state()
    for name, (logger, *_) in now.items():
        level, handlers, propagate, disabled = saved.get(name, (logger, logging.NOTSET, [], True, False))[1:]
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


@contextlib.contextmanager
def _script_folder_first(script: Path):
    """What the interpreter does for `python SCRIPT`: the script's folder first on sys.path (so the
    benchmarks find their ``common``), and, as a process would end, its modules from that folder forgotten."""
    folder = str(script.parent)
    imported_before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)
        for name in set(sys.modules) - imported_before:
            if os.path.dirname(getattr(sys.modules[name], "__file__", None) or "") == folder:
                del sys.modules[name]


def run_main(args: list[str], cwd: Path, env: dict | None = None, module: str | None = None,
             script: Path = RUN_PY, on_terminal: bool = False) -> MainResult:
    """`python run.py ARGS` in ``cwd``, in this process: run.py is executed as ``__main__`` (its
    ``resume=`` expansion, launcher mark and ``@hydra.main`` included), its output captured, and an
    exit or an error that leaves it turned into the exit status an interpreter would give.

    ``module`` runs ``python -m MODULE ARGS`` instead (e.g. ``lenet_exp.sweeps``), ``script`` another
    script (e.g. a benchmark). ``on_terminal`` gives it a terminal as stdout and stderr, as
    :func:`start_on_terminal` does, and returns what the terminal showed as both."""
    if not on_terminal:
        stdout, stderr = io.StringIO(), io.StringIO()
        returncode = _run_in_process(args, cwd, env, module, script, stdout, stderr)
        return MainResult([str(a) for a in args], returncode, stdout.getvalue(), stderr.getvalue())
    controller, terminal = _open_terminal()
    with ThreadPoolExecutor(1) as reader:  # drained as it is written: a full terminal would block the run
        shown = reader.submit(_read_screen, controller, time.monotonic() + 300)
        with open(terminal, "w", buffering=1) as screen:
            returncode = _run_in_process(args, cwd, env, module, script, screen, screen)
        text = shown.result()
    os.close(controller)
    return MainResult([str(a) for a in args], returncode, text, text)


def _run_in_process(args, cwd, env, module, script, stdout, stderr) -> int:
    """:func:`run_main`'s run, its output written to ``stdout`` and ``stderr``; returns its exit status."""
    with _fresh_process_state(cwd, env), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        sys.argv = [module or str(script), *map(str, args)]
        try:
            if module:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            else:
                with _script_folder_first(script):
                    runpy.run_path(str(script), run_name="__main__")
            returncode = 0
        except SystemExit as stop:
            returncode = _exit_status(stop.code, stderr)
        except Exception:  # what the interpreter does with an uncaught exception
            traceback.print_exc(file=stderr)
            returncode = 1
        sys.stdout.flush()
        sys.stderr.flush()
    return returncode


# A study of Optuna's grid sampler over two learning rates: a file of the sweep group in a folder of options
GRID_STUDY = """# @package _global_
defaults:
  - override /hydra/sweeper: optuna
  - override /hydra/sweeper/sampler: grid
hydra:
  sweeper:
    _target_: hydra_plugins.lenet_exp_optuna_sweeper.optuna_sweeper.StoppableOptunaSweeper
    direction: maximize
    n_trials: 10
    params:
      optimizer.lr: choice(1e-3, 3e-3)
"""


def a_grid_study(folder: Path) -> Path:
    """``folder`` (for --config-dir), holding sweep/grid.yaml: :data:`GRID_STUDY`."""
    (folder / "sweep").mkdir(parents=True)
    (folder / "sweep" / "grid.yaml").write_text(GRID_STUDY)
    return folder
