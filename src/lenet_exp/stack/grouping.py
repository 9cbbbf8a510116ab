"""Which jobs of a sweep can train as one stacked group, and why the others cannot.

Trials share one training step when everything but their own hyperparameters is equal: data set,
model architecture, batch size, epochs, image size, augmentation, precision, device, ... Each trial
keeps its own :data:`PER_TRIAL` settings. A job that no stacked step can train (another task, an
optimizer or model without a stacked form, ``trainer.compile``) trains alone, as with the basic
launcher. No torch import here: the launcher plans before anything trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lenet_exp.config import EVAL_BATCH_SIZE, LENET5_CLASS, flatten, to_dict
from lenet_exp.continuation import completed_as_asked
from lenet_exp.errors import shown
from lenet_exp.files import METRICS, read_json

# Settings (key prefixes) that each trial of a group keeps for itself: how it trains, and how its run is
# validated, tested and recorded (each trial's own model, after each epoch); the label of its model's option.
PER_TRIAL = ("seed", "data_seed", "optimizer.lr", "optimizer.weight_decay", "optimizer.betas",
             "optimizer.momentum", "optimizer.nesterov", "optimizer.eps", "trainer.label_smoothing", "model.dropout",
             "model.name",
             "trainer.ema_decay", "scheduler.", "trainer.tta_", EVAL_BATCH_SIZE, "trainer.checkpoint_every",
             "trainer.monitor", "trainer.early_stop_patience", "trainer.grad_clip_norm", "trainer.log_images",
             "trainer.progress")
# Trainer settings that a group's trials share, read once for the group by its step and loop (trainer.compile
# sends a job alone). A trainer setting in neither list has no stacked form yet: its job trains alone.
SHARED_TRAINER_SETTINGS = ("trainer.epochs", "trainer.batch_size", "trainer.limit_batches", "trainer.deterministic",
                           "trainer.channels_last", "trainer.cuda_graphs", "trainer.cudnn_benchmark",
                           "trainer.fused_cpu_kernels", "trainer.precision", "trainer.compile")
STACKED_OPTIMIZERS = ("torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD")
STACKED_MODELS = (LENET5_CLASS,)
GOES_ON_AFTER = "the epoch it goes on after"  # the plan's key of where a job stands, beside its settings
UNSTACKED_OPTIONS = ("amsgrad", "dampening", "decoupled_weight_decay")  # of those


@dataclass
class Job:
    number: int  # Hydra's job number
    config: DictConfig  # the task's config (no hydra node)
    goes_on_after: int = 0  # the epoch after which its folder says it goes on (0: from the beginning)
    completed: bool = False  # its folder holds it completed: it is skipped
    options: dict[str, str] = field(default_factory=dict)  # each config group's option, as Hydra chose it
    # hydra.job.env_set, resolved: a group shares one (None: one that cannot be resolved, the job alone)
    environment: Optional[dict[str, str]] = field(default_factory=dict)


def as_found(job: Job, job_dir: Path) -> Job:
    """The job with where its folder says it stands, from its metrics.json: for the plan only (each trial
    starts from its own checkpoint, and trials that turn out to start from different epochs train apart)."""
    metrics = read_json(job_dir / METRICS) or {}
    done = metrics.get("epochs_done")
    job.goes_on_after = done if isinstance(done, int) and not isinstance(done, bool) and done > 0 else 0
    try:  # as its run decides it (a record it refuses, or a ${…} that names no key: its own checks say so)
        job.completed = completed_as_asked(metrics, to_dict(job.config))
    except Exception:
        job.completed = False
    return job


def why_alone(job: Job) -> Optional[str]:
    """Why this job cannot be stacked, or None."""
    config = job.config
    if job.environment is None:
        return "its hydra.job.env_set cannot be resolved"
    if str(config.task) != "train":
        return f"task={config.task}"
    if config.optimizer.get("_target_") not in STACKED_OPTIMIZERS:
        return f"optimizer._target_={config.optimizer.get('_target_')} has no stacked update"
    unstacked = [key for key in UNSTACKED_OPTIONS if config.optimizer.get(key)]
    if unstacked:
        return f"optimizer.{unstacked[0]}={shown(config.optimizer.get(unstacked[0]))} has no stacked update"
    if config.model.get("_target_") not in STACKED_MODELS:
        return f"model._target_={config.model.get('_target_')} has no stacked form"
    if config.trainer.compile:
        return "trainer.compile=true"
    unknown = [f"trainer.{key}" for key in config.trainer
               if not f"trainer.{key}".startswith((*PER_TRIAL, *SHARED_TRAINER_SETTINGS))]
    if unknown:  # a setting added to TrainerConfig without its stacked form: honoured alone, not ignored
        return f"{unknown[0]} has no stacked form"
    return None


def shared_settings(config: DictConfig) -> dict[str, Any]:
    """What must be equal for jobs to share a step: every setting but the per-trial ones."""
    flat = flatten(OmegaConf.to_container(config, resolve=True))
    return {key: value for key, value in flat.items() if not key.startswith(PER_TRIAL)}


def why_apart(job: Job, differs: list[str], most: int, closest: Job) -> str:
    """Why a job is not stacked with the closest group (whose first job is ``closest``): the settings it differs
    in, where it goes on, or none (that group is full)."""
    if differs == [GOES_ON_AFTER]:
        start = f"goes on after epoch {job.goes_on_after}" if job.goes_on_after else "starts from the beginning"
        return f"it {start}, unlike the others."
    if differs:
        # a config group whose option differs is named as chosen (optimizer=sgd), not by its settings
        groups = [group for group, option in job.options.items() if closest.options.get(group, option) != option
                  and any(key.startswith(f"{group}.") for key in differs)]
        settings = [key for key in differs if not key.startswith(tuple(f"{group}." for group in groups))]
        differs = [f"{group}={job.options[group]}" for group in groups] + sorted(
            settings, key=lambda k: (not k.endswith(".name"), k))  # an option's name first (augment.name)
        more = f" and {len(differs) - 4} more" if len(differs) > 4 else ""
        return f"it differs in {', '.join(differs[:4])}{more}."
    return f"at most {most} trial{'s' if most != 1 else ''} per group (hydra.launcher.max_stack)."


def plan(jobs: Sequence[Job], max_stack: Union[int, Callable[[DictConfig], int]]) -> tuple[list[list[Job]], list[str]]:
    """The jobs in the order they train: stacked groups of at most ``max_stack`` (or ``max_stack(config)``, by
    what the group's jobs share: their device) and jobs alone (groups of one), each listed where its first
    job is; and lines that say why groups split."""
    cap = max_stack if callable(max_stack) else lambda config: max_stack
    notes: dict[tuple, list[int]] = {}  # (what, why) -> the jobs it is said of, in order
    groups: list[list[Job]] = []
    keys: list[dict[str, Any]] = []
    caps: list[int] = []  # each group's max_stack, by the device its key holds: worked out once per group
    for job in jobs:
        try:
            reason = why_alone(job)
            environment = {f"hydra.job.env_set.{name}": value for name, value in (job.environment or {}).items()}
            key = {**shared_settings(job.config), GOES_ON_AFTER: job.goes_on_after, **environment} if not reason else {}
        except OmegaConfBaseException as error:  # e.g. a ${…} that names no key: its own checks say so, alone
            reason = f"its config cannot be read ({type(error).__name__})"
        if reason:
            what = "train" if str(job.config.get("task", "train")) == "train" else "run"  # eval: nothing to train
            notes.setdefault(note_key(f"{what} alone", f"{reason}.", job.number), []).append(job.number)
            groups.append([job])
            keys.append({})
            caps.append(1)
            continue
        for group, group_key, most in zip(groups, keys, caps):
            if group_key == key and len(group) < most:
                group.append(job)
                break
        else:
            most = cap(job.config)
            if any(keys):  # what sets it apart from the closest group (none: that group is full)
                differs, closest = min((([k for k in set(other) | set(key) if other.get(k) != key.get(k)], group[0])
                                        for group, other in zip(groups, keys) if other), key=lambda pair: len(pair[0]))
                why = why_apart(job, differs, most, closest)
                notes.setdefault(note_key("start a new group", why, job.number), []).append(job.number)
            groups.append([job])
            keys.append(key)
            caps.append(most)
    return groups, [said_of(numbers, what, why) for (what, why, *_), numbers in notes.items()]


def note_key(what: str, why: str, number: int) -> tuple:
    """Notes of a reason that is no job's own (not "it differs in …") are said once for all their jobs."""
    return (what, why, number) if why.startswith(("it ", "its ")) else (what, why)


def said_of(numbers: list[int], what: str, why: str) -> str:
    """A note of the plan, once for all the jobs it is said of: a 200-job sweep said "at most 8 trials per group"
    24 times."""
    if len(numbers) > 1:
        return f"Jobs {', '.join(map(str, numbers))} {what.replace('a new group', 'new groups')}: {why}"
    verb, rest = what.split(" ", 1)
    return f"Job {numbers[0]} {verb}s {rest}: {why}"
