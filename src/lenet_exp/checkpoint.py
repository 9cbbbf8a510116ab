"""Checkpoints and JSON files written atomically, and read back with clear errors.

A file is written to a temporary name in the same folder and renamed over the old one, so a crash
mid-write leaves the previous version intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from lenet_exp.errors import CheckpointError

FORMAT = "lenet_exp.checkpoint/1"
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; give it a normal file's mode
        with os.fdopen(fd, "wb" if binary else "w") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(path: Path, data: dict) -> None:
    write_atomic(path, lambda f: json.dump(data, f, indent=2, sort_keys=False, default=str), binary=False)


def read_json(path: Path) -> Optional[dict]:
    """The JSON object in ``path``, or None if there is none (missing or unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_checkpoint(path: Path, state: dict) -> None:
    write_atomic(path, lambda f: torch.save({"format": FORMAT, **state}, f))


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` onto the CPU."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist. Pass a file such as <run dir>/checkpoints/best.pt.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupted or not written by lenet_exp: "
            f"{type(error).__name__}). Use <run dir>/checkpoints/last.pt or best.pt of a run."
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a lenet_exp checkpoint (no '{FORMAT}' marker).")
    return state


def load_model_weights(model: nn.Module, state: dict, path: str | Path) -> None:
    """Load weights, or say which model and class count the checkpoint was written for."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        saved = state.get("config", {})
        raise CheckpointError(
            f"{path} was written for another model (model={saved.get('model', {}).get('name')}, "
            f"num_classes={saved.get('dataset', {}).get('num_classes')}) and does not fit this one: "
            f"{str(error).splitlines()[0]} Use the model and dataset options it was trained with."
        ) from error
