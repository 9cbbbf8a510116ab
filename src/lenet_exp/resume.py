"""``python run.py resume=<run dir>``: run the same command again, into the same directory.

The run directory's ``.hydra/overrides.yaml`` holds the overrides the run was started with. Replaying
them with ``hydra.run.dir=<run dir>`` composes the same config, and the runner then continues from
``checkpoints/last.pt``. Overrides given next to ``resume=`` replace saved ones of the same key.
A run folder is data, never code: only the task's own config overrides are replayed (never
``hydra.*``, whose callbacks could run anything, nor where the configs came from: a run made with
configs of its own is refused until the command names them), each checked by Hydra's own parser, and the folder's
name is passed quoted, so that a quote in it is not read as syntax. (A ``${`` in it is refused: Hydra
resolves its output directory more than once, so no escaping keeps it from being interpolated.)
This happens before Hydra parses the command line, so it costs no torch import.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Optional

from lenet_exp.files import (BEST_CHECKPOINT, HYDRA_FOLDER, METRICS, SAVED_CONFIG, SAVED_HYDRA, SAVED_OVERRIDES,
                             SWEEP_RECORD, hydra_record, read_json, sweep_holding, up_from_a_link)
from lenet_exp.overrides import (TASK_PATH_KEYS, multirun_flag, override_key, override_value, quote, sets_hydra,
                                 unquote)

PREFIX = "resume="
PASS_A_RUN = "Pass the directory of a run, e.g. resume=outputs/runs/<date>/<time>."
ALSO_IN_HYDRA_YAML = f"the same list is in {SAVED_HYDRA}, under hydra.overrides.task"


def refuse_the_record(saved_file: Path, problem: str) -> NoReturn:
    sys.exit(f"Error: cannot resume from {saved_file}: {problem}. It must list the run's own overrides as Hydra "
             f"saved them (e.g. - optimizer.lr=0.01); restore it, or start a new run.")


def saved_overrides(saved_file: Path) -> list[str]:
    """The task overrides a run was started with, or exit with a message saying what is wrong with them."""
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    def refuse(problem: str) -> NoReturn:
        refuse_the_record(saved_file, problem)

    try:
        overrides = yaml.safe_load(saved_file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        refuse(f"it is not readable YAML ({type(error).__name__}: {str(error).splitlines()[0]})")
    if overrides is None:  # Hydra writes "[]" for none, in place: a run killed meanwhile leaves the file empty
        refuse(f"it is empty; {ALSO_IN_HYDRA_YAML}")
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        refuse("it is not a list of overrides")
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parsed = parser.parse_override(override)
        except Exception as error:  # Hydra's grammar errors
            refuse(f"{override!r} is not an override ({str(error).splitlines()[0]})")
        key = parsed.get_key_element().lstrip("+~")
        if sets_hydra(key):
            refuse(f"{override!r} sets Hydra itself, which a resume never replays")
        if parsed.is_sweep_override():
            refuse(f"{override!r} is a sweep, not one run's value")
    return overrides


@dataclass
class Resumed:
    """What this command's resume= continues: the run, the overrides of its own that it replays, and those that
    the command gave beside resume=."""
    run_dir: Path
    replayed: list[str]
    typed: list[str]


_resumed: Optional[Resumed] = None


def resumed_run() -> Optional[Path]:
    """The run folder that the command's ``resume=`` continues (None: no resume=), which it cannot move."""
    return _resumed.run_dir if _resumed else None


def forget_the_resume() -> None:
    """The command is over: what it resumed is no later command's (a notebook's compose() after run.py)."""
    global _resumed
    _resumed = None


def replayed_setting(key: str) -> Optional[str]:
    """The override of the resumed run's own that set ``key`` (``scheduler.step_epochs=1``), or None."""
    return next((o for o in _resumed.replayed if override_key(o) == key), None) if _resumed else None


def typed_setting(key: str) -> Optional[str]:
    """The override of ``key`` that the command typed: beside resume= (not one of the run's own it replays), or
    anywhere on a command without resume=; None where it gave none."""
    from lenet_exp.command_line_errors.arguments import flags_and_overrides

    typed = _resumed.typed if _resumed else flags_and_overrides(sys.argv[1:])[1]
    return next((o for o in reversed(typed) if "=" in o and override_key(o) == key), None)


def the_runs_own(setting: str, against: str, other: str) -> str:
    """What to say where the resumed run's own ``setting`` meets what the command chose (``against`` it):
    the run goes on only as it was made, and ``other`` is a new run's. The command offered keeps what this
    one gave that a resume of the run takes: where and how fast it runs, and the epochs it would train on to."""
    import yaml

    run_dir = _resumed.run_dir
    record = read_json(run_dir / METRICS) or {}
    try:  # what the run was, as it resolved it (its record), or as .hydra/ says
        made = record["config"] if isinstance(record.get("config"), dict) else yaml.safe_load(
            (run_dir / SAVED_CONFIG).read_text())
    except Exception:  # a damaged record: what goes on with it is for the runner to tell
        made = None
    kept = [o for o in _resumed.typed if "=" in o and not o.startswith(("+", "~"))
            and made is not None and taken_by_a_resume(o, made, record.get("epochs_done"))]
    continuing = " ".join([resume_command(run_dir), *map(shlex.quote, kept)])
    return (f"{run_dir} was made with {setting}, {against}: resume= continues a run with the settings it was "
            f"made with. Continue it with `{continuing}`, or train {other} as a new run (without resume=).")


def taken_by_a_resume(override: str, made: dict, trained: Optional[int]) -> bool:
    """Whether a run ``made`` so, which ``trained`` that many epochs, goes on with ``override`` as it was made
    (where and how fast it runs), or trained on to its ``trainer.epochs=N`` or with more patience
    (``trainer.early_stop_patience=N``); False where its record cannot say."""
    from lenet_exp.config import EARLY_STOP_PATIENCE, EPOCHS, run_of_other_length, where_or_how_fast

    try:
        key, value = override_key(override), override_value(override)
        if key not in (EPOCHS, EARLY_STOP_PATIENCE):
            return where_or_how_fast(key, made["trainer"].get("limit_batches"))
        length = None if value == "null" else int(value)
        longer = {**made, "trainer": {**made["trainer"], key.removeprefix("trainer."): length}}
        return run_of_other_length(made, longer, trained)
    except Exception:  # a damaged record, a value that is no number: the runner tells
        return False


def expand_resume(argv: list[str]) -> list[str]:
    """argv with ``resume=DIR`` replaced by DIR's saved overrides and ``hydra.run.dir=DIR``."""
    global _resumed
    forget_the_resume()
    given = [arg for arg in argv if arg.startswith(PREFIX)]
    if not given:
        return argv
    run_dir = run_folder_to_resume(given[-1][len(PREFIX):], multirun_flag(argv))

    def names_the_run(arg: str) -> bool:  # hydra.run.dir=<the same folder>: said twice, no harm
        return (override_key(arg) == "hydra.run.dir" and "=" in arg
                and Path(unquote(override_value(arg))).expanduser().resolve() == run_dir.resolve())

    from lenet_exp.command_line_errors.arguments import flags_and_overrides
    from lenet_exp.config import STUDY_GROUP  # a sweep job's `sweep=…`: what -m searched, no run's setting

    rest = [arg for arg in argv if not arg.startswith(PREFIX) and not names_the_run(arg)]
    flags, overrides = flags_and_overrides(rest[1:])  # as Hydra's parser tells them apart (--config-dir a=b)
    explicit = {override_key(arg) for arg in overrides if "=" in arg}
    refuse_what_continues_no_run(run_dir, overrides)
    own = saved_overrides(run_dir / SAVED_OVERRIDES)
    # what the run added (+optimizer.amsgrad=true, or a group's option: +extra=foo), set where it was added, as the
    # run set it: the same value continues it, another is refused as any changed one (Hydra: "not in config")
    added = {override_key(o): "++" if "." in override_key(o) else "+" for o in own if o.startswith("+")}
    overrides = [added[override_key(arg)] + arg if not arg.startswith(("+", "~")) and "=" in arg
                 and override_key(arg) in added else arg for arg in overrides]
    saved = [o for o in own if override_key(o) not in {*explicit, STUDY_GROUP}]
    hydra, replayed = hydras_record(run_dir), []
    if hydra:  # an older or damaged record: the task's overrides alone, as before
        replayed = replayed_config_flags(run_dir, rest, hydra)
        # a relative ckpt=, image= or dataset.root= meant the folder the run was started in
        saved = [path_from(o, str(hydra["runtime"]["cwd"])) if override_key(o) in TASK_PATH_KEYS else o for o in saved]
    # one run, though a preset may set hydra.mode=MULTIRUN (and sweep the default study elsewhere)
    one_run = ["hydra.mode=RUN", f"hydra.run.dir={quote(str(run_dir))}"]
    _resumed = Resumed(run_dir, saved, overrides)
    # overrides together (argparse refuses them on both sides of a flag); the flags last: a bare --info takes
    # the next argument as its value
    return rest[:1] + replayed + saved + one_run + overrides + flags


def run_folder_to_resume(written: str, sweep: Optional[str]) -> Path:
    """The run folder that ``resume=<written>`` names, or exit with a message where it names none (or a sweep's,
    or a folder inside a run's), or where the command is a sweep (``sweep``: its -m)."""
    if not unquote(written).strip():  # Path("") is the current folder, as is resume='' once unquoted
        sys.exit(f"Error: resume= names no run. {PASS_A_RUN}")
    # quoted as Hydra's grammar quotes a path (hydra.run.dir='a b'), where no folder has the quotes in its name
    run_dir = Path(written if Path(written).expanduser().exists() else unquote(written)).expanduser()
    run_dir = up_from_a_link(run_dir) or run_dir  # the folder the system finds, which Hydra would not
    saved_file = run_dir / SAVED_OVERRIDES
    if "${" in str(run_dir):
        sys.exit(f"Error: resume={run_dir}: Hydra would read the '${{' in this path as an interpolation and write "
                 f"the run elsewhere. Rename the folder without '${{' and resume that name.")
    if sweep:  # hydra.run.dir means nothing to a sweep
        sys.exit(f"Error: resume= continues one run, and {sweep} starts a sweep. Drop {sweep} to continue {run_dir}; "
                 f"a sweep continues with its own command and hydra.sweep.dir=<sweep dir>.")
    if (run_dir / SWEEP_RECORD).is_file():
        jobs = sorted(path.parent.parent for path in run_dir.glob(f"*/{SAVED_OVERRIDES}"))
        one_job = jobs[0] if jobs else f"{run_dir}/<job folder>"
        sys.exit(f"Error: resume={run_dir} is a sweep's directory, not a run's. The sweep's command run again with "
                 f"hydra.sweep.dir={shlex.quote(str(run_dir))} continues the whole sweep (its overrides are in "
                 f"{run_dir / SWEEP_RECORD}, under hydra.overrides); resume=<job folder> continues one job, "
                 f"e.g. resume={shlex.quote(str(one_job))}.")
    if not run_dir.exists():
        sys.exit(f"Error: resume={run_dir}: no such folder. {PASS_A_RUN}")
    if run_dir.is_file():  # a checkpoint copied out of its run (resume= of <run>/checkpoints/… is told its run below)
        run = next((folder for folder in run_dir.parents if (folder / SAVED_OVERRIDES).is_file()), None)
        if run is None:
            sys.exit(f"Error: resume={run_dir} is a file, and resume= continues a run from its folder. "
                     f"`python run.py task=eval ckpt={shlex.quote(str(run_dir))}` tests a checkpoint. {PASS_A_RUN}")
    if not saved_file.is_file():
        run = next((folder for folder in run_dir.parents if (folder / SAVED_OVERRIDES).is_file()), None)
        if run is not None:  # e.g. a checkpoint of the run
            sys.exit(f"Error: resume={run_dir} is inside the run directory {run}, which resume= takes: "
                     f"resume={shlex.quote(str(run))} continues it.")
        if (run_dir / HYDRA_FOLDER).exists():  # run.py's run, its record damaged: no train() writes .hydra/
            refuse_the_record(saved_file, f"{HYDRA_FOLDER} is a file where Hydra's record folder should be"
                              if not (run_dir / HYDRA_FOLDER).is_dir() else
                              f"{saved_file.name} is missing; {ALSO_IN_HYDRA_YAML}")
        if (run_dir / METRICS).is_file():  # lenet_exp.train()'s: no command line to replay
            sys.exit(f"Error: resume={run_dir} is a run started from Python (train(), which records no command "
                     f"line in .hydra/): continue it there, with train(cfg, run_dir=…) and the same cfg.")
        sys.exit(f"Error: resume={run_dir} is not a run directory (no {saved_file}). {PASS_A_RUN}")
    return run_dir


def refuse_what_continues_no_run(run_dir: Path, overrides: list[str]) -> None:
    """Exit where the command's ``overrides`` would not continue the run: another ``hydra.run.dir``, or a task that
    trains nothing."""
    if "hydra.run.dir" in {override_key(arg) for arg in overrides if "=" in arg}:  # Hydra takes the last one
        sys.exit(f"Error: resume= continues the run in its own folder, {run_dir}, and hydra.run.dir= names another. "
                 f"Drop hydra.run.dir= to continue it; to train a copy elsewhere, copy the folder and resume the copy.")
    task = next((override_value(arg) for arg in reversed(overrides) if override_key(arg) == "task" and "=" in arg),
                None)
    if task in ("eval", "predict"):  # it would be refused for writing over the run it names
        how, image = ("evaluate", "") if task == "eval" else ("predict with", " image=<file>")
        if (run_dir / BEST_CHECKPOINT).is_file():
            best = shlex.quote(str(run_dir / BEST_CHECKPOINT))
            sys.exit(f"Error: resume= continues training a run, and task={task} trains nothing. To {how} its "
                     f"checkpoint: `python run.py task={task} ckpt={best}{image}`.")
        # (it named a checkpoint that is not there: of an evaluation's folder, or of a run stopped before one)
        its_task = next((override_value(o) for o in reversed(saved_overrides(run_dir / SAVED_OVERRIDES))
                         if override_key(o) == "task"), "train")
        status = (read_json(run_dir / METRICS) or {}).get("status")
        again = f"`python run.py resume={shlex.quote(str(run_dir))}`"
        held = (f"does not hold: it is a task={its_task} run, which {again} runs again" if its_task != "train" else
                "does not hold: it diverged before its first checkpoint; train another config (a lower optimizer.lr, "
                "say) in a new folder" if status == "diverged" else
                f"does not hold: it failed before its first checkpoint (its metrics.json says why), and {again} runs "
                f"it again" if status == "failed" else f"does not hold yet (no epoch of it ended): {again} trains it")
        sys.exit(f"Error: resume= continues a run, and task={task} takes a training run's checkpoint, which {run_dir} "
                 f"{held}.")


def hydras_record(run_dir: Path) -> Optional[dict]:
    """The run's .hydra/hydra.yaml (its ``hydra`` node); None for an older or damaged record."""
    hydra = hydra_record(run_dir)
    try:
        sources, name, cwd = hydra["runtime"]["config_sources"], hydra["job"]["config_name"], hydra["runtime"]["cwd"]
        overrides = hydra["overrides"]["hydra"] or []
        as_recorded = (all(isinstance(source, dict) for source in sources) and isinstance(name, str)
                       and isinstance(cwd, str) and isinstance(overrides, list)
                       and all(isinstance(override, str) for override in overrides))
    except Exception:
        return None
    return hydra if as_recorded else None


def config_flags(hydra: dict, given: set[str], own: Path) -> tuple[list[str], list[str]]:
    """Where the run's configs came from besides ``own`` (a checkout's configs/), less what ``given`` names:
    the flags a resume replays itself (``--config-name`` of a primary config in ``own``), and those the
    command must name: ``--config-path``, ``--config-dir``, ``--config-name`` of another folder's config and
    ``hydra.searchpath=`` (its relative folders made absolute, as resume= runs anywhere)."""
    replayed, needed = [], []
    sources = hydra["runtime"]["config_sources"]
    if not given & {"--config-path", "-cp"}:  # where the primary config came from, if not run.py's own
        for source in sources:
            path = Path(str(source.get("path")))
            checkout = path.name == "configs" and (path.parent / "run.py").is_file()  # this one's, or another's
            if (source.get("provider") == "main" and source.get("schema") == "file" and path.is_dir()
                    and path.resolve() != own.resolve() and not checkout):
                needed += ["--config-path", str(path)]
    if not given & {"--config-dir", "-cd"}:
        needed += [flag for source in sources if source.get("provider") == "command-line"
                   and source.get("schema") == "file" for flag in ("--config-dir", str(source["path"]))]
    name = hydra["job"]["config_name"]
    if name != "config" and not given & {"--config-name", "-cn"}:
        primary = (own / f"{name}.yaml").resolve()
        ours = own.resolve() in primary.parents and primary.is_file()
        (replayed if ours else needed).extend(["--config-name", name])
    if "hydra.searchpath" not in given:
        needed += [from_the_runs_folder(o, hydra["runtime"]["cwd"]) for o in hydra["overrides"]["hydra"] or []
                   if override_key(o) == "hydra.searchpath"]
    return replayed, needed


def replayed_config_flags(run_dir: Path, argv: list[str], hydra: dict) -> list[str]:
    """The flags that bring back the run's primary config where it is run.py's own; exits where the run took
    configs from elsewhere than configs/ and ``argv`` does not name them: a config can run code (Hydra builds
    its callbacks), and a run folder is data, so the command names them itself (the message says how)."""
    given = {arg.split("=", 1)[0] for arg in argv}  # ++hydra.searchpath= is not Hydra's search path: not given
    replayed, needed = config_flags(hydra, given, Path(argv[0]).resolve().parent / "configs")  # run.py's
    missing = next((folder for flag, folder in zip(needed, needed[1:]) if flag == "--config-dir"
                    and not Path(folder).is_dir()), None)
    if missing:  # Hydra's "--config-dir …: not found" names a flag never typed
        sys.exit(f"Error: {run_dir} was made with --config-dir {missing}, which is no folder now. Put its configs "
                 f"back there, or give --config-dir <the folder that holds them now>.")
    if needed:
        sys.exit(f"Error: {run_dir} was made with configs from outside configs/ ({' '.join(needed)}), and a run folder "
                 f"does not choose the configs a command reads (a config can run code). If you trust them, name them "
                 f"yourself: {command_resuming(run_dir, needed + argv[1:])}")
    return replayed


def configs_to_name(run_dir: Path) -> list[str]:
    """The flags and overrides that a command continuing the run in ``run_dir`` names (:func:`config_flags`)."""
    from lenet_exp import CONFIGS

    hydra = hydras_record(run_dir)
    return config_flags(hydra, set(), CONFIGS)[1] if hydra else []


def configs_read(hydra: Optional[dict]) -> list[str]:
    """The flags that name where a run's configs came from, of its record's ``hydra`` node (none: configs/'s
    config.yaml, as for a record too old or damaged to say)."""
    from lenet_exp import CONFIGS

    return [flag for flags in config_flags(hydra, set(), CONFIGS) for flag in flags] if hydra else []


CONTINUE_WITH = "Continue with "  # how an interrupted run's message ends: CONTINUE_WITH + how_to_go_on(…) + "."


def how_to_go_on(run_dir: Path) -> str:
    """What continues the run in ``run_dir``: run.py's resume=, or its sweep's command (a study's trial goes
    on only in its study); for lenet_exp.train()'s (no command line) train() again."""
    if not (run_dir / HYDRA_FOLDER).is_dir():
        return f"train(cfg, run_dir={str(run_dir)!r}) and the same cfg"
    alone = f"`{resume_command(run_dir)}`"
    sweep = sweep_holding(run_dir)
    if sweep is None:
        return alone
    again = f"the sweep's command and hydra.sweep.dir={shlex.quote(str(sweep))}"
    hydra = hydras_record(run_dir)
    if hydra is None:  # a record damaged or of another Hydra: the sweep's command continues either way
        return again
    if "optuna" in str((hydra.get("sweeper") or {}).get("_target_")):  # resumed alone, a trial ends outside its study
        return f"{again} (which goes on with the study)"
    return f"{again}, or this job alone with {alone}"


def resume_command(run_dir: Path) -> str:
    """The command that continues the run in ``run_dir``, with the configs it was made with named."""
    return command_resuming(run_dir, configs_to_name(run_dir))


def command_resuming(run_dir: Path, arguments: list[str]) -> str:
    """``python run.py ARGUMENTS resume=RUN_DIR``, quoted for the shell."""
    return " ".join(["python run.py", *map(shlex.quote, arguments), f"{PREFIX}{shlex.quote(str(run_dir))}"])


def path_from(override: str, folder: str) -> str:
    """A path override (``dataset.root=data``) made absolute from ``folder`` where it is relative (Hydra's
    grammar quotes it); a ``~``, ``${…}`` or absolute path as it was."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    value = OverridesParser.create().parse_override(override).value()  # saved_overrides checked that it parses
    if not isinstance(value, str) or not value or value.startswith("~") or "${" in value or Path(value).is_absolute():
        return override
    return f"{override.partition('=')[0]}={quote(str(Path(folder) / value))}"


def from_the_runs_folder(search_path: str, cwd: str) -> str:
    """A ``hydra.searchpath=[file://extra]`` override with each relative ``file://`` path made absolute from
    the folder the run was started in: Hydra reads it from the current one, which resume= need not share.
    Other entries (absolute, ``pkg://``, ``${…}``) stay as they were, and so does an override without such a path."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        paths = OverridesParser.create().parse_override(search_path).value()
    except Exception:  # edited into something Hydra cannot read: as written, for Hydra to say so
        return search_path
    if not isinstance(paths, list):
        return search_path

    def relative(entry: str) -> bool:
        return entry.startswith("file://") and "${" not in entry and not Path(entry[len("file://"):]).is_absolute()

    if not any(relative(str(entry)) for entry in paths):
        return search_path
    written = [quote(f"file://{Path(cwd) / str(entry)[len('file://'):]}") if relative(str(entry)) else quote(str(entry))
               for entry in paths]
    return f"hydra.searchpath=[{','.join(written)}]"
