"""A stacked group: N trials, one grouped model, one step for all of them.

Each trial is a :class:`lenet_exp.loop.Run` in its own run directory, trained by the loop a single run
trains in (:func:`lenet_exp.loop.train_trials`): skip a completed run, resume from
``checkpoints/last.pt``, validate each epoch, select on val, write checkpoints, TensorBoard and
metrics.json, test the best epoch. Only the engine differs (:class:`StackedModels`): the training
epoch is shared, and after it the group's weights are copied into each trial's own model (and EMA, and
optimizer state), which the run's bookkeeping then uses unchanged. A trial that diverges is frozen (its
updates stop and its weights are zeroed, so no NaN lingers) while the others go on.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import warnings
from typing import Iterator, Optional, Sequence

import torch
from omegaconf import open_dict
from torch import nn

from lenet_exp import files, perf
from lenet_exp.device import give_freed_memory_back, resolve_device
from lenet_exp.engine import EpochResult, EvalResult, TrainStep, autocast, evaluate_trials, random_order, train_epoch
from lenet_exp.figures import FigureWorkers
from lenet_exp.slots import JobSlot, job_context
from lenet_exp.loop import Outcome, Trial, evaluate_trial, fail, train_trials
from lenet_exp.models import build_model
from lenet_exp.parts import load_run_data, seed_everything, trial_parts
from lenet_exp.stack.model import GroupedModel, channel_stacked, stack_into, stacked_loss, unstack_into
from lenet_exp.stack.optim import StackedEMA, StackedOptimizer

log = logging.getLogger(__name__)
MAX_FIGURE_WORKERS = 8  # 32 figures of 16 trials in four turns; more only cost memory
# the trials of the stack being built and trained, whose run.logs take the group's shared lines (data, kernels)
_training: contextvars.ContextVar[Sequence[Trial]] = contextvars.ContextVar("lenet_exp_stack", default=())


@contextlib.contextmanager
def training(stack: Sequence[Trial]) -> Iterator[None]:
    """Within this context, the group's lines that belong to no single job concern the trials of ``stack``."""
    token = _training.set(stack)
    try:
        yield
    finally:
        _training.reset(token)


def takes_shared_lines(number: int) -> bool:
    """Whether job ``number``'s run.log takes a line of no single job's: it trains in the stack now, and has not
    failed or ended (a job that failed its checks, was skipped, or waits for another cohort takes none)."""
    return any(trial.number == number and trial.outcome is None for trial in _training.get())


class StackedStep(TrainStep):
    """Gradients of N trials' batches at once: [N, B] indices, one row per trial's own data order, or
    [1, B] where all trials have one data order (one ``generators`` and ``augments`` per order)."""

    def __init__(self, model, split, batch_size: int, *, smoothing: Sequence[float], augments: Sequence,
                 precision: str, cuda_graph: bool, graph_fallback: bool, generators: Sequence[torch.Generator],
                 dropout_generators: Sequence[torch.Generator] = ()):
        self.n, self.order_generators = len(smoothing), list(generators)
        super().__init__(model, split, batch_size, precision=precision, cuda_graph=cuda_graph,
                         graph_fallback=graph_fallback, generators=[*generators, *dropout_generators])
        self.augments = list(augments) if any(a is not None for a in augments) else None
        self.smoothing = (torch.tensor(smoothing, device=self.device).view(-1, 1) if any(smoothing) else None)
        self.active = torch.ones(self.n, device=self.device)  # a frozen trial's loss adds no gradient

    @property
    def orders(self) -> int:
        return len(self.order_generators)

    def accumulators(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.zeros(self.n, device=self.device), torch.zeros(self.n, dtype=torch.long, device=self.device),
                torch.zeros(self.orders, self.batch_size, dtype=torch.long, device=self.device))

    def _forward_backward(self, batch: torch.Tensor) -> None:
        x, y = self.split.images[batch], self.split.labels[batch]  # [orders, B, 1, S, S], [orders, B]
        if self.augments is not None:  # each order's draws from its own generator, as in its single run
            x = torch.stack([augment(xi) if augment else xi for augment, xi in zip(self.augments, x)])
        y = y.expand(self.n, -1)
        with autocast(self.device, self.precision):
            logits = self.model(x[0] if self.orders == 1 else channel_stacked(x))
            losses = stacked_loss(logits, y, self.smoothing)
        (losses * self.active).sum().backward()  # each trial's gradients are those of its own mean loss
        self.loss_sum += losses.detach() * batch.shape[-1]
        self.correct += (logits.argmax(-1) == y).sum(1)


def figure_workers(trials: list[Trial], slot: JobSlot) -> FigureWorkers:
    """Processes that draw the trials' test figures while the group records the other trials' tests (0.25 s
    a trial on one core): one per core of the group's, at most :data:`MAX_FIGURE_WORKERS`."""
    drawing = sum(1 for trial in trials if trial.cfg.trainer.log_images)
    return FigureWorkers(min(drawing, slot.cpu_threads(None), MAX_FIGURE_WORKERS) if drawing > 1 else 0)


def train_group(trials: list[Trial], slot: JobSlot) -> None:
    """Train the trials (one group's jobs) and set each one's ``outcome``."""
    # An earlier group's freed memory, which the process kept for its steps (device.keep_freed_memory), handed back:
    # the next group's memory check counted it as used, and its figure workers, forked from it, copied each page the
    # group wrote to (a second group of 6 trials at batch 1024 peaked at 2.26 GB, against 1.35 GB for the first)
    give_freed_memory_back()
    # forked first: before the group has threads, a GPU or its folders
    with figure_workers(trials, slot) as workers:
        for trial in trials:
            trial.run.figure_workers = workers
        for trial in trials:
            with job_context(trial.number):
                trial.run.stopwatch.mark("loaded")
                if trial.outcome is not None:  # refused already (a bad config): as alone, its folder is not taken
                    continue
                try:
                    trial.run.take_the_folder()
                    trial.owned = True
                    trial.outcome = trial.run.prepare()
                except Exception as error:
                    fail(trial, error)
        try:
            waiting = [t for t in trials if t.outcome is None]
            # a resumed trial continues from its own last epoch: trials that stopped at different epochs train apart
            by_epoch: dict[int, list[Trial]] = {}
            for trial in waiting:
                epoch = trial.run.resume["run_state"]["epoch"] if trial.run.resume else 0
                by_epoch.setdefault(epoch, []).append(trial)
            for cohort, (epoch, stack) in enumerate(sorted(by_epoch.items())):
                with training(stack):
                    if len(by_epoch) > 1:
                        jobs, verb = ("Jobs", "") if len(stack) > 1 else ("Job", "s")
                        start = f"continue{verb} after epoch {epoch}" if epoch else f"start{verb} from the beginning"
                        others = [str(t.number) for t in waiting if t not in stack]
                        numbers = ", ".join(str(t.number) for t in stack)
                        log.info("%s %s %s, apart from job%s %s", jobs, numbers, start, "s" if len(others) > 1 else "",
                                 ", ".join(others))
                    for trial in stack if cohort else ():  # its start-up begins now, not with the cohorts before it
                        trial.run.stopwatch.skip_wait()
                    train_stack(stack, slot)
                # a stop during training, or during the final tests of trials that completed
                signal = next((t.outcome.signal for t in stack if t.outcome.signal is not None), None)
                if signal is not None:
                    for trial in trials:  # the user asked for a stop: the rest of the group waits for a re-run
                        if trial.outcome is None:
                            trial.outcome = Outcome(files.INTERRUPTED, float("nan"), "not started", signal)
                    break
        finally:
            for trial in trials:
                if trial.owned:
                    files.release_folder(trial.run.dir)


class StackedModels:
    """The engine of N trials stacked into one grouped model (:class:`lenet_exp.loop.Engine`)."""

    def __init__(self, trials: list[Trial], model: GroupedModel, optimizer: StackedOptimizer,
                 ema: Optional[StackedEMA], step: StackedStep, template: nn.Module):
        self.trials, self.model, self.optimizer, self.ema, self.step = trials, model, optimizer, ema, step
        self.template = template
        self.schedulers = [trial.parts.scheduler for trial in trials if trial.parts.scheduler is not None]
        self.eval_models: dict[int, GroupedModel] = {}  # by trial count

    def train_epoch(self, stop_requested, on_step, max_batches) -> Optional[list[EpochResult]]:
        orders = torch.stack([random_order(self.step, generator) for generator in self.step.order_generators])
        return train_epoch(self.step, self.optimizer, orders, after_step=self.after_step, on_step=on_step,
                           stop_requested=stop_requested, max_batches=max_batches)

    def after_step(self) -> None:
        """What follows each step of the group's optimizer: each trial's schedule, and the stacked EMA."""
        if self.schedulers:
            with warnings.catch_warnings():  # torch warns that their optimizers never stepped: the group's did
                warnings.simplefilter("ignore", UserWarning)
                for scheduler in self.schedulers:
                    scheduler.step()
        if self.ema is not None:
            self.ema.update()

    def sync(self, running: list[int]) -> None:
        unstack_into(self.model, [t.parts.model for t in self.trials])
        if self.ema is not None:
            self.ema.unstack_into([t.parts.ema for t in self.trials])
        for i in running:
            self.optimizer.store_trial_state(i)

    def freeze(self, i: int) -> None:
        self.optimizer.freeze(i)
        self.step.active[i] = 0

    def evaluate(self, indices: list[int], split: str) -> list[EvalResult]:
        """The trials' own eval models (after :meth:`sync`, or with their best weights loaded) stacked into one
        that reads each batch once, for each set of trials evaluated alike (test-time views, batch size)."""
        alike: dict[tuple, list[int]] = {}
        for i in indices:
            tcfg = self.trials[i].cfg.trainer
            alike.setdefault((tcfg.tta_hflip, tcfg.tta_shift, tcfg.eval_batch_size), []).append(i)
        results = {}
        for members in alike.values():
            first = self.trials[members[0]]
            if len(members) == 1:
                results[members[0]] = evaluate_trial(first.parts, first.cfg.trainer, split)
                continue
            model = self.eval_model(len(members))
            stack_into(model, [self.trials[i].parts.eval_model for i in members])
            tcfg = first.cfg.trainer
            evaluated = evaluate_trials(model, len(members), getattr(first.parts.data, split), tcfg.eval_batch_size,
                                        tcfg.precision, first.parts.eval_views, max_batches=tcfg.limit_batches)
            results.update(zip(members, evaluated))
        return [results[i] for i in indices]

    def eval_model(self, n: int) -> GroupedModel:
        """A grouped model of n trials that all read the same images, in the group's layout."""
        if n not in self.eval_models:
            model = GroupedModel(self.template, n, [0.0] * n, shared_input=True).to(self.step.device)
            if self.trials[0].parts.fast_paths.channels_last:
                model = model.to(memory_format=torch.channels_last)
            self.eval_models[n] = model
        return self.eval_models[n]


def dropout_generator(device: torch.device, seed: int) -> torch.Generator:
    """A trial's dropout generator, where its single run's dropout RNG stands at its first step: on the
    CPU torch's RNG after the trial's initialisation (called just after it), on a GPU the CUDA one as
    seeded (the models initialise on the CPU)."""
    if device.type == "cuda":
        return torch.Generator(device).manual_seed(seed)
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    return generator


def build_stack(trials: list[Trial], slot: JobSlot) -> Optional[StackedModels]:
    """Each trial's parts, built as its single run builds them, and the group's model, optimizer, EMA and
    step; a trial that cannot start (its checkpoint) fails and leaves ``trials``. None: none is left."""
    cfg, n = trials[0].cfg, len(trials)
    tcfg = cfg.trainer
    seed_everything(cfg.seed, tcfg.deterministic)
    device = resolve_device(cfg.device, slot)
    data = load_run_data(cfg, device, trials[0].run.stopwatch, trials=n)
    models, dropout_generators = [], []
    for trial in trials:
        torch.manual_seed(trial.cfg.seed)  # each trial's initial weights are those of its single run
        models.append(build_model(trial.cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size).to(device))
        dropout_generators.append(dropout_generator(device, trial.cfg.seed))
    dropout = [float(t.cfg.model.get("dropout", 0.0) or 0.0) for t in trials]
    template_cfg = cfg.model.copy()
    with open_dict(template_cfg):
        template_cfg.dropout = max(dropout)  # the layout with dropout layers wherever any trial has them
    template = build_model(template_cfg, cfg.dataset.num_classes, cfg.dataset.image_size)
    paths = perf.decide(tcfg, template, device, stacked=True)
    for trial, model, generator in zip(trials, models, dropout_generators):
        trial.run.stopwatch.marks.setdefault("data", trials[0].run.stopwatch.marks["data"])
        try:
            with job_context(trial.number):
                trial.parts = trial_parts(trial.cfg, device, data, model, paths)
                trial.parts.dropout_generator = generator  # before start: a checkpoint restores it
                trial.state = trial.run.start(trial.parts)  # restored from its checkpoint, or new
        except Exception as error:  # its schedule, a checkpoint of other data: this trial fails, the others train
            fail(trial, error)
    kept = [i for i, trial in enumerate(trials) if trial.outcome is None]
    if not kept:
        return None
    trials[:] = [trials[i] for i in kept]
    models, dropout, n = [models[i] for i in kept], [dropout[i] for i in kept], len(kept)
    dropout_generators = [trial.parts.dropout_generator for trial in trials]
    # trials whose generators stand alike (one seed or data_seed) draw the same batches and augmentations:
    # they share each batch, gathered once into one plain first convolution (a CPU step 1.1-1.2x as fast
    # at N = 4 and 8: benchmarks/stacked_step.py)
    first_state = trials[0].parts.generator.get_state()
    one_order = all(torch.equal(t.parts.generator.get_state(), first_state) for t in trials)
    orders = trials[:1] if one_order else trials
    if one_order:  # one generator for all: each trial's checkpoint holds the order's state, as its lone run's would
        for trial in trials:
            trial.parts.generator = trials[0].parts.generator

    group_model = GroupedModel(template, n, dropout, one_order, dropout_generators).to(device)
    stack_into(group_model, models)
    group_model, forward_model = perf.apply(paths, group_model)
    optimizer = StackedOptimizer(group_model, models, [t.parts.optimizer for t in trials],
                                 [t.cfg.trainer.grad_clip_norm for t in trials])
    optimizer.load_trial_states()
    ema = None
    if any(t.parts.ema is not None for t in trials):
        ema = StackedEMA(group_model, [t.cfg.trainer.ema_decay for t in trials])
        ema.load([t.parts.ema for t in trials])
    step = StackedStep(forward_model, data.train, tcfg.batch_size,
                       smoothing=[t.cfg.trainer.label_smoothing for t in trials],
                       augments=[t.parts.augment for t in orders], precision=tcfg.precision,
                       cuda_graph=paths.cuda_graphs, graph_fallback=paths.graph_fallback,
                       generators=[t.parts.generator for t in orders],
                       dropout_generators=dropout_generators if any(dropout) else ())
    for trial in trials:
        trial.parts.step = step
    return StackedModels(trials, group_model, optimizer, ema, step, template)


def train_stack(trials: list[Trial], slot: JobSlot) -> None:
    """Train trials that start from the same epoch as one grouped model; sets each one's outcome."""
    trials = list(trials)  # build_stack leaves out those that cannot start
    try:
        engine = build_stack(trials, slot)
        if engine is None:
            return
        n, s = len(trials), "s" if len(trials) > 1 else ""
        log.info("Training job%s %s stacked: %d trial%s in one model on %s%s",
                 s, ", ".join(str(t.number) for t in trials), n, s, trials[0].parts.device,
                 ", one data order" if engine.step.orders < engine.step.n else "")
        for trial in trials:
            trial.run.stacked_with = [t.number for t in trials]
        train_trials(trials, engine, slot)
    except Exception as error:  # bad data, too little memory, a full disk, ...: the trials not yet done fail
        for trial in trials:
            if trial.outcome is None:
                fail(trial, error)
