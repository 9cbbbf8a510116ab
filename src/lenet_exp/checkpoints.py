"""Run state and checkpoints: what a checkpoint holds, saving it atomically, reading it back safely.

A checkpoint holds model, optimizer, scheduler, EMA, RNG, run state, config and preprocessing:
everything a run needs to continue, and nothing about timing (that is ``record.Stopwatch``'s).
Checkpoints of earlier versions are read through :func:`upgrade`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from lenet_exp.config import LENET5_CLASS, READ_AS_MNIST, as_literal
from lenet_exp.ema import averaged_weights
from lenet_exp.errors import CheckpointError, one_line
from lenet_exp.files import BEST_CHECKPOINT, CHECKPOINTS, SWEEP_RECORD, write_atomic

FORMAT = "lenet_exp.checkpoint/1"
# what every checkpoint holds (eval and predict need no more); a resume also needs TRAINING_KEYS
REQUIRED_KEYS = ("model", "config", "preprocessing")
TRAINING_KEYS = ("optimizer", "scheduler", "ema", "run_state", "rng")
TIME_KEYS = ("time/",)  # history columns of earlier versions that were timings
LEGACY_DATASET_CLASSES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
LEGACY_OPTIMIZERS = {"adam": "torch.optim.Adam", "adamw": "torch.optim.AdamW", "sgd": "torch.optim.SGD"}
LEGACY_HISTORY_KEYS = {"lr": "train/lr"}
LEGACY_RUN_STATE_KEYS = ("warmup_epochs",)  # timings that earlier versions kept in a run's state


@dataclass
class RunState:
    """Where a run stands: with the parts' states, all a resumed run needs to continue exactly."""

    epoch: int = 0
    best_epoch: int = 0
    best_val_acc: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)  # one row of metrics per epoch

    def row(self, epoch: int) -> dict[str, float]:
        return next((row for row in self.history if row["epoch"] == epoch), {})


def save_checkpoint(path: Path, state: dict, copies: Sequence[Path] = ()) -> None:
    """``state`` written atomically to ``path``, and to each of ``copies`` (best.pt beside last.pt) from the
    same bytes: serialised once (on a GPU, each tensor copied to the host once)."""
    serialised = io.BytesIO()

    def write(file) -> None:  # inside write_atomic: a failure to serialise is reported as a failed write
        torch.save({"format": FORMAT, **state}, serialised)
        file.write(serialised.getbuffer())

    write_atomic(path, write)
    for copy in copies:
        write_atomic(copy, lambda file: file.write(serialised.getbuffer()))


def upgrade(state: dict) -> dict:
    """A checkpoint of an earlier version in today's form: no timings, today's history and config keys."""
    run_state = state.get("run_state")
    if isinstance(run_state, dict):  # (checked where a run goes on from it; eval and predict only read its epoch)
        for key in LEGACY_RUN_STATE_KEYS:
            run_state.pop(key, None)
        history = run_state.get("history", [])
        if isinstance(history, list):
            run_state["history"] = [{LEGACY_HISTORY_KEYS.get(k, k): v for k, v in row.items()
                                     if not k.startswith(TIME_KEYS)} if isinstance(row, dict) else row
                                    for row in history]
    config = state.get("config")
    if isinstance(config, dict):
        dataset, optimizer, model = config.get("dataset", {}), config.get("optimizer", {}), config.get("model", {})
        model.setdefault("_target_", LENET5_CLASS)
        if "torchvision_class" not in dataset and dataset.get("name") in LEGACY_DATASET_CLASSES:
            dataset["torchvision_class"] = LEGACY_DATASET_CLASSES[dataset["name"]]
        if "_target_" not in optimizer and optimizer.get("name") in LEGACY_OPTIMIZERS:
            optimizer["_target_"] = LEGACY_OPTIMIZERS[optimizer.pop("name")]
    return state


def load_checkpoint(path: str | Path, for_training: bool = False) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` onto the CPU; ``for_training``: to resume from."""
    path = Path(path).expanduser()
    if path.is_dir() and path.suffix == ".pt":  # a run's checkpoint replaced by a folder
        raise CheckpointError(f"Checkpoint {path} is a folder where the checkpoint file should be: move it away, or "
                              f"pass another checkpoint.")
    if (path / SWEEP_RECORD).is_file():  # a sweep's: no best.pt of its own
        raise CheckpointError(f"Checkpoint {path} is a sweep's folder. Pass a checkpoint file, or each of its jobs' "
                              f"with -m: ckpt=\"$(ls -dv {path}/*/{BEST_CHECKPOINT} | paste -sd,)\".")
    if path.is_dir():  # a run's folder, most likely, or its checkpoints/
        best = path.parent / BEST_CHECKPOINT if path.name == CHECKPOINTS else path / BEST_CHECKPOINT
        raise CheckpointError(f"Checkpoint {path} is a folder. Pass a checkpoint file: {best} if it is a "
                              f"run's{' checkpoints' if path.name == CHECKPOINTS else ''} folder.")
    if not path.is_file():
        what = "is no regular file" if path.exists() else "does not exist"  # a pipe: torch.load would wait on it
        raise CheckpointError(f"Checkpoint {path} {what}. Pass a file such as <run dir>/checkpoints/best.pt.")
    try:
        with warnings.catch_warnings():  # said of a plain pickle before the error that it cannot be loaded
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as error:
        raise CheckpointError(f"Cannot read {path} ({error.strerror or one_line(error)}). Make it readable to you, "
                              f"or pass a copy you can read.") from error
    except Exception as error:
        other = "" if for_training else " Use <run dir>/checkpoints/last.pt or best.pt of a run."  # resume says its own
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted or not written by lenet_exp: "
                              f"{type(error).__name__}).{other}") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a lenet_exp checkpoint (no '{FORMAT}' marker).")
    missing = [key for key in REQUIRED_KEYS + (TRAINING_KEYS if for_training else ()) if key not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: it is incomplete or was not written by lenet_exp.")
    odd = unwritten_structure(state, for_training)
    if odd:
        raise CheckpointError(f"{path} holds {odd}, which lenet_exp never writes: it was altered and is not used.")
    if _has_interpolation(state["config"]):
        # configs are stored resolved: a ${...} here was put there by hand, e.g. to read the environment
        raise CheckpointError(f"{path} holds a config with a ${{...}} interpolation, which lenet_exp never writes; "
                              f"it was altered and is not used.")
    state["config"] = as_literal(state["config"])  # a folder named with '${' is read as written by OmegaConf too
    return upgrade(state)


def unwritten_structure(state: dict, for_training: bool) -> Optional[str]:
    """What of a checkpoint's structure no save wrote (a part of another type, an epoch its history does not
    reach), or None: each is read where a checkpoint is used, and a resume trusts the epoch count."""
    config = state["config"]
    if not isinstance(config, dict):
        return f"a config of type {type(config).__name__}"
    nodes = ("model", "dataset", "optimizer", "trainer")
    node = next((key for key in nodes if not isinstance(config.get(key, {}), dict)), None)
    if node:
        return f"a config whose {node} is {config[node]!r}"
    dataset = config.get("dataset")  # (without a class, as an older version wrote it, upgrade() adds it by name)
    if dataset is not None and (not isinstance(dataset.get("name"), str)
                                or dataset.get("torchvision_class", READ_AS_MNIST[0]) not in READ_AS_MNIST):
        return f"a data set named {dataset.get('name')!r}, read by {dataset.get('torchvision_class')!r}"
    if not isinstance(state["preprocessing"], dict):
        return f"preprocessing of type {type(state['preprocessing']).__name__}"
    weights = state["model"]
    if not (isinstance(weights, dict) and all(isinstance(tensor, torch.Tensor) for tensor in weights.values())):
        return "model weights that are not PyTorch's"
    if not all(torch.isfinite(tensor).all() for tensor in weights.values() if tensor.is_floating_point()):
        return "weights that are not finite (a diverged run keeps its last finite ones)"
    average, decay = state.get("ema"), config.get("trainer", {}).get("ema_decay")
    # the averaged model's weights (beside its count of updates): one of each of the model's, of its shape
    averaged = averaged_weights(average) if isinstance(average, dict) else {}
    if average is not None and not (averaged.keys() == weights.keys() and all(
            isinstance(tensor, torch.Tensor) and tensor.shape == weights[key].shape for key, tensor in averaged.items())):
        return "an average of weights that does not match its weights"
    if average is not None and (isinstance(decay, bool) or not isinstance(decay, (int, float))):
        return f"an average of weights without its decay (trainer.ema_decay {decay!r})"
    if not for_training:
        return None
    run_state, rng, optimizer = state["run_state"], state["rng"], state["optimizer"]
    history = run_state.get("history", []) if isinstance(run_state, dict) else None  # RunState's defaults
    if not (isinstance(history, list) and all(isinstance(row, dict) and isinstance(row.get("epoch"), int)
                                              for row in history)):
        return "a run state without its history"
    unknown = sorted(set(run_state) - {f.name for f in fields(RunState)} - set(LEGACY_RUN_STATE_KEYS))
    if unknown:
        return f"a run state with {unknown[0]!r}"
    best = run_state.get("best_val_acc", -1.0)
    if isinstance(best, bool) or not isinstance(best, (int, float)) or not -1 <= best <= 1:  # NaN too
        return f"a best val accuracy of {best!r}"
    epoch, best_epoch = run_state.get("epoch", 0), run_state.get("best_epoch", 0)
    if not (isinstance(epoch, int) and 0 <= epoch <= len(history) and isinstance(best_epoch, int)
            and 0 <= best_epoch <= epoch):
        return f"epoch {epoch!r} (best {best_epoch!r}) with {len(history)} epochs of history"
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list)):
        return "an optimizer state that is not PyTorch's"
    if not (isinstance(rng, dict) and isinstance(rng.get("torch"), torch.Tensor)
            and isinstance(rng.get("device_type"), str)):
        return "random number generator states that are not PyTorch's"
    return None


def checkpoint_epoch(state: dict) -> Optional[int]:
    """The epoch after which a checkpoint's weights were saved (best.pt: the best epoch's); None where its record
    does not say (a checkpoint is data: read, not trusted)."""
    run_state = state.get("run_state")
    epoch = run_state.get("epoch") if isinstance(run_state, dict) else None
    return epoch if isinstance(epoch, int) else None


PATHS_IN_A_CONFIG = {("dataset", "root")}  # a folder's name may hold '${' (run.py quotes such a path)


def _has_interpolation(value, at: tuple = ()) -> bool:
    if isinstance(value, dict):
        return any(_has_interpolation(v, (*at, k)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_interpolation(v, at) for v in value)
    return isinstance(value, str) and "${" in value and at not in PATHS_IN_A_CONFIG


def load_model_weights(model: nn.Module, state: dict, path: str | Path) -> None:
    """Load weights, or say which model and class count the checkpoint was written for."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise misfit_error(model, state, path) from error


def check_weights_fit(model: nn.Module, state: dict, path: str | Path) -> None:
    """:func:`load_model_weights`'s check alone, for a model without memory (on the meta device)."""
    if first_misfit(model.state_dict(), state["model"]):
        raise misfit_error(model, state, path)


def misfit_error(model: nn.Module, state: dict, path: str | Path) -> CheckpointError:
    saved = state.get("config", {})
    return CheckpointError(
        f"{path} was written for another model (model={saved.get('model', {}).get('name')}, "
        f"num_classes={saved.get('dataset', {}).get('num_classes')}) and does not fit this one "
        f"({first_misfit(model.state_dict(), state['model']) or 'its weights differ'}). Use the model and dataset "
        f"options it was trained with.")


def first_misfit(expected: dict, saved: dict) -> Optional[str]:
    """The first weight in which a checkpoint does not fit a model, in words (torch lists them all); None where
    each has its shape."""
    for key, tensor in expected.items():
        if key not in saved:
            return f"it has no {key}"
        if getattr(saved[key], "shape", None) != tensor.shape:
            return f"its {key} is {tuple(getattr(saved[key], 'shape', ()))}, this model's {tuple(tensor.shape)}"
    extra = [key for key in saved if key not in expected]
    return f"this model has no {extra[0]}" if extra else None
