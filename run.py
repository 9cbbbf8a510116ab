"""Entry point: `python run.py [group=option ...] [key=value ...]`, `python run.py -m ...` for sweeps.

Kept thin and free of torch imports so that `--help` and `--cfg job` answer at once.
"""

import os
import signal
import sys


def _closed_streams_write_nowhere() -> None:
    """Started with its standard output or error closed (`2>&-`, a daemon's), Python gives run.py a None stream,
    which every write failed on (the progress bar's: each run failed), and a joblib sweep's worker processes the
    closed descriptor (a traceback): both write to /dev/null instead."""
    for descriptor, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            devnull = os.open(os.devnull, os.O_WRONLY)  # the lowest free descriptor: this one, where 0 is open
            if devnull != descriptor:
                os.dup2(devnull, descriptor)
                os.close(devnull)
            os.set_inheritable(descriptor, True)  # as a standard stream is: the sweep's worker processes take it
            stream = open(descriptor, "w", closefd=False)
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)


if __name__ == "__main__":
    _closed_streams_write_nowhere()


def _stopped_as_it_starts(signum, frame) -> None:
    """A stop while run.py imports Hydra and its own modules, or reads its command line: nothing has been run or
    written yet (a KeyboardInterrupt raised in an import was a traceback, a SIGTERM a silent end)."""
    try:
        os.write(2, f"Stopped by signal {signum} as run.py started: nothing was run or written.\n".encode())
    except OSError:  # a closed terminal (SIGHUP) takes no more
        pass
    os._exit(128 + signum)


# until run_command() hands the signals over to the run (an ignored one, as under nohup, stays ignored); not where
# run.py is imported as a module, whose importer keeps its own
_HANDLERS_BEFORE = {signum: signal.signal(signum, _stopped_as_it_starts)
                    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                    if __name__ == "__main__" and signal.getsignal(signum) is not signal.SIG_IGN}


def _hand_the_signals_back() -> None:
    """The handlers as they were before run.py started: the run takes them over, or run.py ends (once each)."""
    while _HANDLERS_BEFORE:
        signum, handler = _HANDLERS_BEFORE.popitem()
        signal.signal(signum, handler)


import hydra  # noqa: E402
from omegaconf import DictConfig

from lenet_exp.command_line_errors import hydras_message, raised_by_hydra, report_typos_in_one_line
from lenet_exp.command_line_errors.arguments import flags_then_overrides
from lenet_exp.command_line_errors.flags import refuse_misused_flags
from lenet_exp.callbacks import warn_of_unread_configs_when_printing
from lenet_exp.completion import complete_our_own_words
from lenet_exp.config import register_configs
from lenet_exp.errors import full_errors_wanted
from lenet_exp.launch import kill_signals_stop, mark_launcher
from lenet_exp.overrides import multirun_flag, override_key, quote_paths
from lenet_exp.resume import expand_resume, forget_the_resume
from lenet_exp.runlog import escaped_controls
from lenet_exp.sweeps.ending import end_stopped_sweep, forget_a_sweep_that_never_began

register_configs()
report_typos_in_one_line()
complete_our_own_words()
OTHER_MODES = ("--run", "-r", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc")  # Hydra takes one mode
PRINTING_MODES = ("--help", "-h", "--hydra-help", *OTHER_MODES[2:])  # these print, and run nothing


def flags_first(argv: list[str]) -> list[str]:
    """`python run.py seed=0,1 -m trainer.epochs=3` (or --cfg job, --run among the overrides): Hydra's argument
    parser takes its flags only before or after all overrides, and otherwise stops at "unrecognized arguments"."""
    sweep = multirun_flag(argv[1:])
    # Hydra's ValueError is a traceback; --help composes one run's config, and said a sweep's values need -m
    if sweep and any(arg.split("=")[0] in (*OTHER_MODES, "--help", "-h") for arg in argv[1:]):
        sys.exit(f"Error: {sweep} cannot go with --help, --run, --cfg, --info or --shell-completion. To see the config "
                 f"of one of the sweep's jobs, drop {sweep} and give one value of each swept key.")
    return argv[:1] + flags_then_overrides(argv[1:])


def run_flag_runs_one(argv: list[str]) -> list[str]:
    """`--run` where a config sets ``hydra.mode: MULTIRUN`` (an experiment that sweeps): Hydra ran the sweep, its
    --run choosing only running over printing. ``hydra.mode=RUN`` makes it one run, where none is given."""
    if not any(arg in ("--run", "-r") for arg in argv[1:]) or any(
            override_key(arg) == "hydra.mode" for arg in argv[1:] if "=" in arg):
        return argv
    return argv[:1] + ["hydra.mode=RUN"] + argv[1:]  # first: no flag takes it as its value (a bare --info)


# beside this file, wherever a link to it is run from (Hydra would look beside the link)
@hydra.main(config_path=os.path.join(os.path.dirname(os.path.realpath(__file__)), "configs"), config_name="config",
            version_base="1.3")
def main(cfg: DictConfig) -> float:
    from lenet_exp.app import run_task  # imports torch: only once a job really runs

    return run_task(cfg)


def run_command() -> None:
    try:
        os.getcwd()
    except FileNotFoundError:  # Hydra's traceback otherwise, as it looks for the folders it searches
        sys.exit("Error: the current folder no longer exists (deleted after this shell entered it). Change to an "
                 "existing folder, then run the command again.")
    if any(arg.split("=")[0] in PRINTING_MODES for arg in sys.argv[1:]):
        # `python run.py --help | head`: a reader that stops early ends the printing quietly, as it ends cat's
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    refuse_misused_flags(sys.argv[1:])
    warn_of_unread_configs_when_printing(sys.argv[1:])
    sys.argv = quote_paths(expand_resume(flags_first(run_flag_runs_one(sys.argv))))
    mark_launcher()  # a sweep's worker processes stop when this process is gone
    _hand_the_signals_back()
    try:
        with kill_signals_stop():  # SIGTERM or SIGHUP while Hydra composes a job ends as Ctrl-C does, not silently
            main()
    except ValueError as error:  # Hydra's checks of its own flags, outside its error reporter
        if full_errors_wanted() or not raised_by_hydra(error):
            raise
        sys.exit(f"Error: {hydras_message(error)}")
    except KeyboardInterrupt as interrupt:  # one that no job took (Hydra composing, between a sweep's jobs)
        sys.exit(end_stopped_sweep(getattr(interrupt, "signum", signal.SIGINT)))  # a sweep's: with its summary
    except SystemExit as end:
        if end.code not in (0, None):  # refused (a typo, a launcher's setting): a sweep leaves no folder
            forget_a_sweep_that_never_began()
        raise
    finally:
        forget_the_resume()


if __name__ == "__main__":
    try:
        run_command()
    except SystemExit as end:  # its message may name a folder's files: escaped as a log line's are
        if isinstance(end.code, str):
            end.code = escaped_controls(end.code)
        raise
    finally:  # where it ended before the run took them over (a refused command line)
        _hand_the_signals_back()
