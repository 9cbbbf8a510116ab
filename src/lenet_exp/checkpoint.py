"""Checkpoints written atomically (see files.write_atomic) and read back with clear errors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lenet_exp.errors import CheckpointError
from lenet_exp.files import write_atomic

FORMAT = "lenet_exp.checkpoint/1"


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
