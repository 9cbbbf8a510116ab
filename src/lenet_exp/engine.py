"""One training epoch and one evaluation pass over device-resident tensors.

Neither reads a value back to the host inside its loop: loss and correct counts are summed on the
device and read once at the end, so a GPU never waits for Python between steps.

On a GPU an eager step of this small model is launch-bound: about 60 kernels of a few microseconds
each, every one paid for in Python and driver time. :class:`TrainStep` can capture the gather,
augmentation, forward, loss and backward of a full batch as one CUDA graph and replay it with a single
launch. The optimizer, LR schedule and EMA stay eager (a fused optimizer is one or two kernels), so
every optimizer, schedule and momentum cycle works unchanged in graph mode.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lenet_exp.data import Split
from lenet_exp.errors import DeviceError

log = logging.getLogger(__name__)

GRAPH_WARMUP_STEPS = 3  # eager steps before capture: cuDNN picks its kernels, autograd builds its state


@dataclass
class EpochResult:
    loss: float
    acc: float
    samples: int


@dataclass
class EvalResult:
    loss: float
    acc: float
    predictions: torch.Tensor  # predicted class per sample, on the device
    confidences: torch.Tensor  # the probability given to that class

    def acc_by_class(self, labels: torch.Tensor, names: Sequence[str]) -> dict[str, Optional[float]]:
        """The accuracy on each true class (its name: ``labels``' first samples, as many as were tested);
        None for a class of which none was tested (a test cut short by trainer.limit_batches)."""
        # counted on the CPU: CUDA's bincount has no deterministic kernel (trainer.deterministic=true)
        labels = labels[:len(self.predictions)].cpu()
        correct = labels == self.predictions.cpu()
        totals = torch.bincount(labels, minlength=len(names)).tolist()
        hits = torch.bincount(labels[correct], minlength=len(names)).tolist()
        return {name: hit / total if total else None for name, hit, total in zip(names, hits, totals)}


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        # no weight-cast cache: each weight is cast once per step anyway, and a graph must not hold one
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


class TrainStep:
    """Gradients of one batch into ``.grad``, with its loss and correct count summed on the device.

    With ``cuda_graph``, full batches are replayed from one CUDA graph, captured after
    ``GRAPH_WARMUP_STEPS`` eager steps. Its input is the batch's indices, copied into a fixed buffer;
    the graph's backward writes (not adds) the gradients into tensors of its own memory pool, so the
    step must not set ``.grad`` to None afterwards. A last, smaller batch runs eagerly.
    """

    def __init__(self, model: nn.Module, split: Split, batch_size: int, *, label_smoothing: float = 0.0,
                 augment: Optional[Callable[[torch.Tensor], torch.Tensor]] = None, precision: str = "fp32",
                 cuda_graph: bool = False, graph_fallback: bool = False, generators: Sequence[torch.Generator] = ()):
        self.model, self.split, self.batch_size = model, split, batch_size
        self.label_smoothing, self.augment, self.precision = label_smoothing, augment, precision
        self.device = split.labels.device
        if cuda_graph and self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need the data on a CUDA device, not {self.device}")
        self.cuda_graph = cuda_graph
        self.graph_fallback = graph_fallback  # a failed capture continues eagerly instead of stopping the run
        self.generators = list(generators)  # augmentation's, a group's dropout's: each replay advances them
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.eager_full_steps = 0
        self.loss_sum, self.correct, self.index = self.accumulators()

    def accumulators(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The summed loss, the correct count and the graph's input (a batch's indices), on the device."""
        return (torch.zeros((), device=self.device), torch.zeros((), dtype=torch.long, device=self.device),
                torch.zeros(self.batch_size, dtype=torch.long, device=self.device))

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def _forward_backward(self, batch: torch.Tensor) -> None:
        x, y = self.split.images.index_select(0, batch), self.split.labels.index_select(0, batch)
        if self.augment is not None:
            x = self.augment(x)
        with autocast(self.device, self.precision):
            logits = self.model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        loss.backward()
        self.loss_sum += loss.detach() * len(batch)
        self.correct += (logits.argmax(1) == y).sum()

    def __call__(self, batch: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        full = batch.shape[-1] == self.batch_size
        if self.graph is not None and full:
            self.index.copy_(batch)
            self.graph.replay()
        elif self.cuda_graph and full and self.eager_full_steps >= GRAPH_WARMUP_STEPS:
            self._capture(batch, optimizer)
        elif self.cuda_graph and full:
            # Warm-up on a side stream, as torch.cuda.graphs' documentation asks before a capture.
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                optimizer.zero_grad(set_to_none=True)
                self._forward_backward(batch)
            torch.cuda.current_stream(self.device).wait_stream(side)
            self.eager_full_steps += 1
        else:
            # After a capture the gradients live in the graph's pool: zero them in place, keep them.
            optimizer.zero_grad(set_to_none=self.graph is None)
            self._forward_backward(batch)

    def _capture(self, batch: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)  # the captured backward allocates .grad in the graph's pool
        self.index.copy_(batch)
        graph = torch.cuda.CUDAGraph()
        # The augmentation's generators must advance on every replay: torch 2.5+ registers them here;
        # newer versions register generators by themselves and deprecate the call.
        register = getattr(graph, "register_generator_state", None)
        for generator in self.generators if register is not None else ():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                register(generator)
        torch.cuda.synchronize(self.device)
        try:
            with torch.cuda.graph(graph):
                self._forward_backward(self.index)
        except Exception as error:  # torch raises RuntimeError for an op that cannot be captured
            if not self.graph_fallback:
                raise DeviceError(f"CUDA graph capture failed ({type(error).__name__}: {error}). "
                                  f"Train without graphs: trainer.cuda_graphs=false.") from error
            log.warning("CUDA graph capture failed (%s: %s); training on without graphs.", type(error).__name__, error)
            self.cuda_graph = False
            self.__call__(batch, optimizer)
            return
        self.graph = graph
        graph.replay()  # capturing records the kernels without running them: this is the step


def random_order(step: TrainStep, generator: torch.Generator) -> torch.Tensor:
    """A fresh random order of the step's training samples, drawn on the data's device."""
    return torch.randperm(len(step.split), device=step.device, generator=generator)


def train_epoch(
    step: TrainStep,
    optimizer,
    orders: torch.Tensor,
    *,
    before_step: Callable[[], None] = lambda: None,
    after_step: Callable[[], None] = lambda: None,
    on_step: Callable[[], None] = lambda: None,
    stop_requested: Callable[[], bool] = lambda: False,
    max_batches: Optional[int] = None,
) -> Optional[list[EpochResult]]:
    """Train on every sample once (or on the first ``max_batches`` batches) in ``orders``: one order [n] for one
    model, one per order of a stacked group [orders, n]. ``before_step`` comes between the gradients and each
    optimizer step (clipping), ``after_step`` follows it (schedules, EMA). One result per trial; None when a
    stop was asked for."""
    step.model.train()
    n, batch_size = orders.shape[-1], step.batch_size
    step.reset()
    seen = 0
    for start in range(0, min(n, batch_size * (max_batches or n)), batch_size):
        if stop_requested():
            return None
        # gather each batch by its slice of the order: as fast as one epoch-wide gather, without
        # a second copy of the training set in memory (-215 MiB, measured: docs/speed.md)
        batch = orders[..., start:start + batch_size]
        step(batch, optimizer)
        before_step()
        optimizer.step()
        after_step()
        seen += batch.shape[-1]
        on_step()
    losses, correct = step.loss_sum.reshape(-1).tolist(), step.correct.reshape(-1).tolist()
    return [EpochResult(loss / seen, hits / seen, seen) for loss, hits in zip(losses, correct)]


@torch.no_grad()
def all_finite(module: nn.Module) -> bool:
    """Whether every parameter and floating-point buffer (BatchNorm's statistics) is finite: one host sync."""
    tensors = [t for t in [*module.parameters(), *module.buffers()] if t.is_floating_point()]
    return bool(torch.stack([t.isfinite().all() for t in tensors]).all()) if tensors else True


def evaluate(model: nn.Module, split: Split, batch_size: int, precision: str = "fp32",
             views: Optional[Sequence[Callable[[torch.Tensor], torch.Tensor]]] = None,
             max_batches: Optional[int] = None) -> EvalResult:
    """Mean cross-entropy and accuracy in eval mode (BatchNorm uses its running statistics), over
    the split or its first ``max_batches`` batches.

    With several ``views`` (test-time augmentation) the prediction is the mean of the class
    probabilities over the views, and the loss is the cross-entropy of that mean.
    """
    return evaluate_trials(model, 1, split, batch_size, precision, views, max_batches)[0]


@torch.inference_mode()
def evaluate_trials(model: nn.Module, trials: int, split: Split, batch_size: int, precision: str = "fp32",
                    views: Optional[Sequence[Callable[[torch.Tensor], torch.Tensor]]] = None,
                    max_batches: Optional[int] = None) -> list[EvalResult]:
    """:func:`evaluate` for each of the ``trials`` whose logits ``model`` computes as [trials, B, classes]
    (a stacked group's, every trial reading the same images), or as [B, classes] for one. Each of its
    batches holds ``batch_size`` images for one trial, ``batch_size / trials`` for a group: as much memory."""
    if max_batches:
        split = Split(split.images[:batch_size * max_batches], split.labels[:batch_size * max_batches])
    was_training = model.training
    model.eval()
    device = split.labels.device
    loss_sum = torch.zeros(trials, device=device)
    predictions = []

    def trials_logits(x: torch.Tensor) -> torch.Tensor:
        logits = model(x).float()
        return logits if logits.dim() == 3 else logits.unsqueeze(0)  # [trials, B, classes]

    chunk = max(1, batch_size // trials)
    for start in range(0, len(split), chunk):
        x, y = split.images[start:start + chunk], split.labels[start:start + chunk]
        with autocast(device, precision):
            if views is None or len(views) == 1:
                log_probs = trials_logits(views[0](x) if views else x).log_softmax(-1)
            else:
                probs = torch.stack([trials_logits(view(x)).softmax(-1) for view in views]).mean(0)
                log_probs = probs.clamp_min(1e-12).log()
        loss_sum -= log_probs.gather(-1, y.expand(trials, -1).unsqueeze(-1)).sum((1, 2))
        predictions.append(log_probs.max(-1))
    model.train(was_training)
    predicted = torch.cat([best.indices for best in predictions], dim=1)  # [trials, samples]
    confidences = torch.cat([best.values for best in predictions], dim=1).exp()
    n = len(split)
    losses, correct = (loss_sum / n).tolist(), (predicted == split.labels).sum(1).tolist()
    return [EvalResult(losses[i], correct[i] / n, predicted[i], confidences[i]) for i in range(trials)]
