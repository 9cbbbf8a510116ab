"""LeNet-5 experiments on MNIST and FashionMNIST, configured by Hydra and logged to TensorBoard.

From Python (a notebook, a script) rather than ``run.py``::

    from lenet_exp import compose, train, load_model
    cfg = compose("optimizer.lr=3e-3", "trainer.limit_batches=20", "trainer.epochs=1")
    metrics = train(cfg, run_dir="outputs/notebook")   # the dict metrics.json holds
    model = load_model("outputs/notebook/checkpoints/best.pt")
    probabilities = model(images)                       # uint8 [N, 28, 28] -> [N, 10]
"""

from __future__ import annotations

import logging
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

__all__ = ["compose", "train", "load_model", "CONFIGS"]
__version__ = "0.1.0"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"  # the checkout's configs/ (an editable install)


def compose(*overrides: str, config_dir: Optional[str | Path] = None):
    """The config ``python run.py OVERRIDES`` would run, composed with Hydra's compose API. A typo raises
    :class:`lenet_exp.errors.UserError` with run.py's message ("trainer.epoch is not a setting (did you
    mean trainer.epochs?)"). ``config_dir``: a copy of configs/, or a folder of one's own options that
    adds to it, as ``python run.py --config-dir <folder>`` does."""
    from hydra import compose as hydra_compose, initialize_config_dir

    from lenet_exp.command_line_errors import several_values, typo_message
    from lenet_exp.command_line_errors.misused import deleted_setting, merged_options_in, number_as_bool
    from omegaconf import OmegaConf, open_dict

    from lenet_exp.config import Composed, register_configs, remember_composition
    from lenet_exp.errors import GIVE_A_CONFIG_FOLDER, UserError
    from lenet_exp.overrides import quote, quote_paths

    if config_dir is not None and not isinstance(config_dir, (str, os.PathLike)):
        raise TypeError(f"compose() takes config_dir as a path (a str or pathlib.Path), not {config_dir!r}.")
    if config_dir is not None and not str(config_dir).strip():  # as train(run_dir='')
        raise UserError("compose(config_dir='') names no folder: name one, or leave config_dir out for configs/.")
    configs, search_path = Path(config_dir or CONFIGS).expanduser().resolve(), []
    if config_dir is not None and not (configs / "config.yaml").is_file():  # options of one's own, as --config-dir
        if not configs.is_dir():
            raise UserError(f"compose(config_dir={str(config_dir)!r}): no such folder. {GIVE_A_CONFIG_FOLDER}")
        from lenet_exp.callbacks import unread_configs

        for message in unread_configs(CONFIGS, configs):  # as run.py --config-dir says of them
            logging.getLogger("lenet_exp").warning(message)
        configs, search_path = CONFIGS, [f"hydra.searchpath=[{quote(f'file://{configs}')}]"]
    if not (configs / "config.yaml").is_file():  # e.g. `pip install .`, which leaves configs/ in the checkout
        raise UserError(f"compose() found no config.yaml in {configs}: pass config_dir=<the checkout's configs/>, or "
                        f"install the checkout with `pip install -e .`.")
    overrides = _one_by_one(overrides)
    quoted = quote_paths(overrides) + search_path  # as Hydra's grammar reads a path; messages quote them as given
    register_configs()
    with _hydra_of_our_own(), initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        misused = merged_options_in(overrides) or deleted_setting(overrides)  # they compose (run.py's check)
        if misused:
            raise UserError(misused)
        try:  # with Hydra's node, which says the option it chose of each group (HParams' columns), then without
            config = hydra_compose("config", overrides=quoted, return_hydra_config=True)
            choices = OmegaConf.to_container(config.hydra.runtime.choices)
            with open_dict(config):
                del config["hydra"]
            remember_composition(config, Composed(choices, overrides, _as_made(config)))
        except Exception as error:
            swept = several_values(str(error))
            message = (swept and (  # before typo_message, which answers run.py's command line ("add -m")
                f"compose({swept!r}) gives several values, and a config has one of each: compose one per "
                f"value, or sweep with `python run.py -m {swept}`.")) or typo_message(error, overrides)
            if not message:
                raise
            # the fix is another compose(), as train()'s ConfigError.for_python() says it, not another command line
            message = re.sub(r"Fix it on the command line, e\.g\. `python run\.py ([^`=]+)=\.\.\.`, or in configs/\.",
                             r"Compose it with another value, e.g. compose('\1=...').", message)
            raise UserError(message) from error
    misused = number_as_bool(quoted, config)
    if misused:
        raise UserError(misused)
    return config


def _as_made(config) -> dict:
    """The config's values as compose() made it; none where one cannot be resolved yet (validate says so)."""
    from lenet_exp.config import to_dict

    try:
        return to_dict(config)
    except Exception:
        return {}


def _composed_again_if_copied(cfg) -> None:
    """A copy of compose()'s config (copy.deepcopy, OmegaConf.merge) lacks its record of how it was composed: its
    card named no overrides. The options it shows are composed again, and its settings told apart from theirs."""
    from lenet_exp.config import Composed, composition, options_shown, remember_composition

    if composition(cfg).made:
        return
    try:
        defaults = composition(compose()).choices
        options = [f"{group}={option}" for group, option in options_shown(cfg).items() if defaults.get(group) != option]
        made = composition(compose(*options))
    except Exception:  # an option of one's own config_dir: its card names no overrides, as before
        return
    remember_composition(cfg, Composed(made.choices, options, made.made))


@contextmanager
def _hydra_of_our_own() -> Iterator[None]:
    """Hydra's compose API set up for our configs, and the caller's own Hydra (a ``@hydra.main`` app, a
    notebook's ``hydra.initialize()``) put back afterwards: Hydra holds one at a time, and refused a second."""
    from hydra.core.global_hydra import GlobalHydra

    callers = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        if callers is not None:
            GlobalHydra.instance().initialize(callers)


def _one_by_one(overrides: tuple) -> list[str]:
    """compose()'s overrides as a list of strings: a list given as Hydra's compose takes it is unpacked, and
    a string of several (as a shell line is written) is refused, which Hydra would read as one odd value."""
    from lenet_exp.errors import UserError
    from lenet_exp.overrides import PATH_KEYS, override_key, sets_hydra
    from lenet_exp.config import STUDY_GROUP

    listed = [o for given in overrides for o in (given if isinstance(given, (list, tuple)) else [given])]
    for override in listed:
        if not isinstance(override, str):
            raise TypeError(f"compose() takes overrides as strings such as 'optimizer.lr=1e-3', not {override!r}.")
        if not override.strip():
            raise UserError(f"compose({override!r}) is an empty override: leave it out, or write key=value.")
        if sets_hydra(override_key(override)):  # it changes nothing train() reads
            raise UserError(f"compose({override!r}): Hydra's own settings are run.py's, and train() reads none of "
                            f"them: it trains in the folder that train(cfg, run_dir=…) names (a sweep is `python "
                            f"run.py -m …`).")
        if override_key(override) == STUDY_GROUP:  # a sweep's search space: it changes no setting of one config
            raise UserError(f"compose({override!r}) names a sweep's search space, and compose() gives one config: "
                            f"sweep with `python run.py -m {override}`, or compose the settings of one of its runs.")
        if override_key(override) == "resume":  # run.py's, not a setting
            raise UserError(f"compose({override!r}): resume= is run.py's. From Python, a run goes on with "
                            f"train(cfg, run_dir=<its folder>) and the cfg it was started with.")
        words = override.split()  # a path may hold spaces and '=' (a sweep job's folder): it is one value
        if len(words) > 1 and all("=" in word for word in words) and override_key(words[0]) not in PATH_KEYS:
            raise UserError(f"compose({override!r}) holds {len(words)} overrides: give each as a string of its own, "
                            f"compose({', '.join(map(repr, words))}).")
    return listed


def train(cfg, run_dir: Optional[str | Path] = None, on_epoch_end: Optional[Callable[[dict], None]] = None) -> dict:
    """Train as ``python run.py`` does, into ``run_dir`` (default: a new outputs/runs/<date>/<time>),
    and return the run's metrics.json. Bad input raises :class:`lenet_exp.errors.UserError` (a failed run's
    metrics.json says so, as run.py's); a diverged run returns its metrics with that status. A stop signal
    (Ctrl-C, SIGTERM) is held until the run has saved its state and recorded "interrupted"; then the signal
    takes its course as the caller's handler says (Ctrl-C: KeyboardInterrupt, so a loop of runs stops too).

    ``on_epoch_end`` is called after each epoch (recorded, and checkpointed where one is due) with its row of
    metrics.json's history: ``epoch``, ``train/loss``, ``val/acc``, ... and its timings (a notebook's live
    plot). A stop signal waits until it returns: keep it quick. An error it raises fails the run, as any other."""
    from datetime import datetime

    from omegaconf import DictConfig, OmegaConf

    from lenet_exp.config import TOP_LEVEL, Config
    from lenet_exp.validation import validate
    from lenet_exp.errors import ConfigError, FolderInUse, UserError
    from lenet_exp.launch import Stopped, stops_held

    try:
        with stops_held():  # seconds of first imports: a Ctrl-C there left torch half-imported for the process
            from lenet_exp.app import record_interruption, report_failure, say_how_it_ended
            from lenet_exp.folders import around_another, enclosing_record, inside_another, record_below
            from lenet_exp.files import METRICS, held_folders, read_json
            from lenet_exp.runlog import logging_as_run_py_does
            from lenet_exp.loop import Run
            from lenet_exp.parts import torch_settings_kept
            from lenet_exp.record import Stopwatch
    except Stopped as stop:
        _take_its_course(stop.signum)

    lacking = [name for name in TOP_LEVEL if name not in cfg] if isinstance(cfg, DictConfig) else []
    if not isinstance(cfg, DictConfig) or lacking:  # a dict, a config of one's own: it failed on its first key
        what = (f"a config without {', '.join(lacking[:3])}{', …' if len(lacking) > 3 else ''}" if lacking
                else f"a {type(cfg).__name__}")
        raise UserError(f"train() takes the config that compose() returns, not {what}: "
                        f"train(compose('optimizer.lr=3e-3', ...), run_dir=...).")
    if OmegaConf.get_type(cfg) is not Config:  # e.g. a run's .hydra/config.yaml: no schema checks its values
        raise UserError("train() takes the config that compose() returns, not one loaded from a file or made of a "
                        "dict (which has no types to check it by): compose a run's overrides again, "
                        "compose(*OmegaConf.load('<run>/.hydra/overrides.yaml')).")
    if cfg.task != "train":  # it would train all the same, and say nothing of the task that was asked for
        raise UserError(f"train() trains, and this config has task={cfg.task}: evaluate or predict with "
                        f"`python run.py task={cfg.task} ckpt=…`, or compose without task=.")
    if run_dir is not None and not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"train() takes run_dir as a path (a str or pathlib.Path), not {run_dir!r}.")
    if run_dir is not None and not str(run_dir).strip():  # run.py refuses an empty hydra.run.dir alike
        raise UserError("train(run_dir='') names no folder: name one, or leave run_dir out for a new "
                        "outputs/runs/<date>/<time>.")
    stopwatch = Stopwatch()  # from this call: a notebook's process may have been open for hours
    try:
        validate(cfg)
    except ConfigError as error:
        raise error.for_python()
    _composed_again_if_copied(cfg)
    # as configs/config.yaml's hydra.run.dir: microseconds keep the runs of a notebook's loop apart
    run_dir = Path(run_dir or datetime.now().strftime("outputs/runs/%Y-%m-%d/%H-%M-%S-%f")).expanduser()
    enclosing = enclosing_record(run_dir)
    if enclosing:  # its TensorBoard and summary would take this run for one of theirs (run.py refuses it too)
        raise UserError(inside_another(run_dir, enclosing, "run", "run_dir"))
    below = record_below(run_dir)
    if below:  # train(run_dir=".") where outputs/ holds runs: they could no longer go on, inside a run's folder
        raise UserError(around_another(run_dir, below, "run", "run_dir"))
    if run_dir.resolve() in held_folders():  # by this process otherwise: a folder's lock is the process's
        raise FolderInUse(f"{run_dir} is in use by this process. Wait until its run ends, or choose another run_dir.")
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise TypeError(f"train() takes on_epoch_end as a function of each epoch's row, not {on_epoch_end!r}.")
    with _one_run_at_a_time():  # another thread's train(), or one that an on_epoch_end calls, is refused
        run = Run(cfg, run_dir, stopwatch=stopwatch, on_epoch_end=on_epoch_end)
        with torch_settings_kept(), logging_as_run_py_does(run_dir):
            try:
                outcome = run.train()
            except Exception as error:
                if isinstance(error, ConfigError):  # a setting that only the run could check (its data's size)
                    error.for_python()
                if run.folder_is_its_own:  # its metrics.json said "running" for ever: recorded as run.py does
                    report_failure(run_dir, cfg, error)
                raise
            except KeyboardInterrupt as interrupt:  # before the loop took the signals over, or a second Ctrl-C
                if run.folder_is_its_own:
                    record_interruption(run_dir, cfg, getattr(interrupt, "signum", 2), "train() of the same cfg")
                raise
            except SystemExit as end:  # on_epoch_end's sys.exit(): its metrics.json said "running" for ever
                if run.folder_is_its_own:
                    report_failure(run_dir, cfg, UserError(f"the run was ended by SystemExit({end.code!r}) (an "
                                                           f"on_epoch_end's sys.exit()?); train() of the same cfg "
                                                           f"continues it."))
                raise
            say_how_it_ended(outcome)  # returned, not raised: said as run.py says it
        if outcome.signal:  # the run saved what it had; now the stop the caller asked for
            _take_its_course(outcome.signal)
        return read_json(run_dir / METRICS) or {}


def load_model(ckpt: str | Path, *overrides: str, device: str = "cpu", config_dir: Optional[str | Path] = None):
    """A checkpoint (``<run>/checkpoints/best.pt``) as a :class:`lenet_exp.classifier.Classifier`, an
    ``nn.Module`` on ``device``: ``model(images)`` gives each class's probability as the run's test computed them
    (its preprocessing, its weights' average where it kept one, its test-time views and precision);
    ``model.classes`` names them, ``model.net`` is the network itself, ``model.prepare(images)`` its input.
    ``overrides`` say otherwise as ``task=eval``'s command line does ('trainer.ema_decay=null': the weights
    themselves; 'model=<option>' of a model of one's own, with ``config_dir`` as in :func:`compose`). A
    checkpoint it cannot use raises :class:`lenet_exp.errors.CheckpointError`, as ``task=eval`` says it."""
    from lenet_exp.classifier import load_classifier

    return load_classifier(ckpt, overrides, device, config_dir)


_running = threading.Lock()


@contextmanager
def _one_run_at_a_time() -> Iterator[None]:
    from lenet_exp.errors import UserError

    if not _running.acquire(blocking=False):
        raise UserError("Another train() runs in this process (or calls this one from its on_epoch_end): a run sets "
                        "torch's threads and determinism and the package's logging for the whole process, so the "
                        "runs of one process take turns. Train after it returns, or in a process of its own (a "
                        "sweep: `python run.py -m …`).")
    try:
        yield
    finally:
        _running.release()


def _take_its_course(signum: int) -> None:
    """Deliver a stop signal that train() held, now that the caller's own handlers are back: Python's raises
    KeyboardInterrupt for Ctrl-C, the default one of SIGTERM ends the process; a handler that returns lets the
    caller go on."""
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.raise_signal(signum)
