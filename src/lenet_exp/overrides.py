"""The command line's overrides as Hydra's grammar reads and writes them: their keys, a config's list of
them as written, the list a run folder saved, and quoting. The paths the command line names (``ckpt=``,
``image=``, ``dataset.root=``, ``hydra.run.dir=``, ``hydra.sweep.dir=``) are quoted where Hydra would not
read them as those paths: a sweep job's folder, ``1_optimizer.lr=0.001,seed=0``, is otherwise a syntax error
in Hydra's grammar. No torch import.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from lenet_exp.files import SAVED_OVERRIDES, hydra_record, regular_file

MULTIRUN_FLAGS = ("-m", "--multirun")
TASK_PATH_KEYS = ("ckpt", "image", "dataset.root")
OUTPUT_KEYS = ("hydra.run.dir", "hydra.sweep.dir")
PATH_KEYS = (*TASK_PATH_KEYS, *OUTPUT_KEYS)


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def sets_hydra(key: str) -> bool:
    """Whether an override's key is Hydra's own (``hydra.run.dir``, ``hydra/launcher``), not the run's."""
    return re.match(r"hydra([./]|$)", key) is not None


def override_value(override: str) -> str:
    """The value an override sets, as written ("" for a deletion that names none: ``~sweep``)."""
    return override.partition("=")[2]


def as_written(overrides) -> list[str]:
    """A config's ``hydra.overrides.task`` as the command line wrote it: reading the list's items one by
    one would resolve a ``${…}`` in a value, and fail on one that names no key."""
    from omegaconf import OmegaConf

    return list(OmegaConf.to_container(overrides, resolve=False)) if OmegaConf.is_config(overrides) else list(overrides)


def overridden_keys(run_dir: Path) -> set[str]:
    """The keys (or groups) that the overrides saved in a run directory set."""
    return {override_key(o) for o in recorded_overrides(run_dir)}


def recorded_overrides(run_dir: Path) -> list[str]:
    """The overrides Hydra saved in a run directory (.hydra/overrides.yaml), as written (a ``${hydra:job.num}``
    resolved there was the last job's, or failed), for display and to number a sweep's jobs; those of its
    hydra.yaml where that file cannot be read (:func:`saved_overrides` refuses it); none where it saved none."""
    from omegaconf import ListConfig, OmegaConf

    try:
        saved = OmegaConf.load(regular_file(run_dir / SAVED_OVERRIDES))
        if isinstance(saved, ListConfig):  # an empty file reads as {}
            return [str(o) for o in as_written(saved)]
    except Exception:  # missing (a run started from Python), cut short (killed as Hydra wrote it), edited by hand
        pass
    task = hydra_record(run_dir, "overrides", "task")  # Hydra writes hydra.yaml, which holds them too, just before
    return [str(o) for o in task] if isinstance(task, list) else []


def quote(value: str) -> str:
    """``value`` as one quoted string of Hydra's override grammar, read back exactly as it is (no ``${``)."""
    value = re.sub(r"(\\+)(?='|$)", lambda run: run.group(1) * 2, value)  # a backslash before a quote is doubled
    return "'" + value.replace("'", "\\'") + "'"


def unquote(value: str) -> str:
    """A value of Hydra's override grammar as the job read it, where it is one string quoted (a path that
    :func:`quote_paths` quoted) or escaped (``my\\ runs/best.pt``: a sweep's job gets ``a b`` so); any other
    value as it is written."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    if not quoted and "\\" not in value:
        return value
    try:
        read = OverridesParser.create().parse_override(f"key={value}").value()
    except Exception:  # not one string after all, e.g. 'a','b'
        return value
    return read if isinstance(read, str) else value


def multirun_flag(argv: list[str]) -> Optional[str]:
    """How ``argv`` asks for a sweep (``-m``, ``--multirun`` or ``hydra.mode=MULTIRUN``, ``++`` or quoted), or None."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if arg in MULTIRUN_FLAGS or (key.lstrip("+") == "hydra.mode" and unquote(value) == "MULTIRUN"):
            return arg
    return None


def quote_paths(argv: list[str]) -> list[str]:
    """argv with each path of PATH_KEYS quoted where Hydra would not read it as that path: where it does
    not parse (its "does not exist" then says what is wrong), or names a file or folder that Hydra would
    read as something else. ``ckpt=a.pt,b.pt`` stays a sweep (each path quoted where it needs it: a sweep over
    the jobs' ``…/1_seed=1/checkpoints/best.pt``), and a plain path stays as it was written. An output folder
    written from ``~`` is made the home folder's (the others are read with expanduser)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()

    def needs_quotes(override: str, value: str) -> bool:
        try:
            parsed = parser.parse_override(override)
        except Exception:  # Hydra's grammar errors
            return True
        return parsed.value() != value and Path(value).expanduser().exists()

    quoted = []
    for arg in argv:
        key, equals, value = arg.partition("=")
        if not equals or override_key(arg) not in PATH_KEYS:
            quoted.append(arg)
            continue
        if override_key(arg) in OUTPUT_KEYS and value.startswith("~"):  # Hydra would make a folder "~"
            value = str(Path(value).expanduser())
            arg = f"{key}={value}"
        if value and "${" not in value and needs_quotes(arg, value):
            arg = f"{key}={','.join(map(quote, _paths_listed(value)))}"
        elif "${" in value and Path(value).expanduser().exists():
            arg = key + "=" + quote(value).replace("${", "\\${")  # a file named so, not an interpolation
        quoted.append(arg)
    return quoted


def _paths_listed(value: str) -> list[str]:
    """The paths of a sweep over paths (``a.pt,b.pt``), or of one path, where a job folder's name has commas
    too: they are joined into paths that exist; failing that, a piece that is no path is one of its own (a
    checkpoint deleted or mistyped, which its job then reports) beside those that exist. A value of no
    existing path at all stays as it is, whose job says that it does not exist."""
    pieces = value.split(",")
    listed = _existing_paths(pieces) or _existing_paths(pieces, missing_ones=True)
    if not any(Path(path).expanduser().exists() for path in listed):
        return [value]
    return listed


def _existing_paths(pieces: list[str], missing_ones: bool = False) -> Optional[list[str]]:
    """The ``pieces`` joined into paths that exist, the longest first (with ``missing_ones``, a piece that
    joins into none is a path of its own); None where they cannot all be."""
    for end in range(len(pieces), 0, -1):
        head = ",".join(pieces[:end])
        if Path(head).expanduser().exists() or (missing_ones and end == 1):
            rest = _existing_paths(pieces[end:], missing_ones) if end < len(pieces) else []
            if rest is not None:
                return [head, *rest]
    return None
