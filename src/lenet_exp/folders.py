"""What a folder is to lenet_exp: a run's, a sweep's, or inside or around one. A run or a sweep needs a folder of
its own: one inside another's would be taken in by its summary and TensorBoard, and one around others would take
them in (and they could no longer go on, inside a run's folder)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Optional

import yaml

from lenet_exp.files import METRICS, SAVED_CONFIG, SWEEP_RECORD, YAML_LOADER, read_json


def enclosing_record(folder: Path) -> Optional[tuple[Path, str]]:
    """The nearest folder above ``folder`` that is a sweep's or a run's (:func:`record_of`), and which: its
    summary, its jobs and its TensorBoard would take in what is written below it. Above the folder as named, else
    as its symbolic links lead."""
    for path in (os.path.abspath(folder), os.path.realpath(folder)):
        for above in Path(path).parents:
            kind = record_of(above)
            if kind:
                return above, kind
    return None


def record_below(folder: Path) -> Optional[tuple[Path, str]]:
    """A sweep's or a run's folder (:func:`record_of`) up to four levels below ``folder`` (outputs/sweeps/<date>/
    <time>/<job>), and which: a run in ``folder`` would take them in its TensorBoard, and they could no longer go
    on, being inside a run's folder. None where ``folder`` is itself a sweep's (its jobs) or a run's."""
    if record_of(folder):
        return None
    for depth in range(1, 5):  # lazily: the first one found is enough (outputs/ may hold thousands)
        for record in itertools.chain(folder.glob("*/" * depth + SWEEP_RECORD), folder.glob("*/" * depth + METRICS),
                                      folder.glob("*/" * (depth - 1) + SAVED_CONFIG)):
            found = record.parent.parent if record.name == Path(SAVED_CONFIG).name else record.parent
            kind = record_of(found) if found != folder else None
            if kind:
                return found, kind
    return None


def record_of(folder: Path) -> Optional[str]:
    """"sweep" for a lenet_exp sweep's folder (multirun.yaml), "run" for a run's (.hydra/config.yaml, or the
    metrics.json of a run that lenet_exp.train() made); None for any other, a Hydra app's of one's own among them
    (its config has no task and trainer: train() may run inside it)."""
    def ours(path: Path) -> bool:  # a record that cannot be read is taken to be one (as the checks fail closed)
        try:
            return {"task", "trainer"} <= set(yaml.load(path.read_bytes(), Loader=YAML_LOADER) or {})
        except Exception:
            return True

    if (folder / SWEEP_RECORD).is_file() and ours(folder / SWEEP_RECORD):
        return "sweep"
    if (folder / SAVED_CONFIG).is_file() and ours(folder / SAVED_CONFIG) or "task" in (read_json(folder / METRICS)
                                                                                        or {}):
        return "run"
    return None


def inside_another(folder: Path, record: tuple[Path, str], what: str, option: str) -> str:
    """Why a run or a sweep (``what``) is refused ``folder``, inside the folder of ``record`` (enclosing_record)."""
    return (f"{folder} is inside the {record[1]} folder {record[0]}: a {what} needs a folder of its own. Choose a "
            f"{option} outside it.")


def around_another(folder: Path, record: tuple[Path, str], what: str, option: str) -> str:
    """Why a run or a sweep (``what``) is refused ``folder``, which holds the folder of ``record`` (record_below)."""
    return (f"{folder} holds the {record[1]} folder {record[0]}: a {what} needs a folder of its own. Choose a new "
            f"{option}.")
