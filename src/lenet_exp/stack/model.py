"""N models of one architecture as one grouped network: input [B, N, S, S] (trial i's images in channel i),
or [B, 1, S, S] where all trials train on the same batches; logits [N, B, classes].

Built from a template (the trials' architecture): each ``Conv2d`` becomes one with ``groups=N`` and
N times the channels (the first one, where the trials share their input, a plain one with N times the
outputs), each ``BatchNorm2d`` one over N times the channels, each ``Linear`` a
:class:`StackedLinear` (``baddbmm`` over [N, B, features]), each ``Dropout`` a :class:`StackedDropout`
with a rate per trial; pooling and activations are shared as they are. Every stacked tensor is
trial-major in its first dimension (:func:`trial_block` is trial i's part, :func:`trial_rows` all of
them as rows), also in the channels_last layout, so a trial's weights go in and out by position.
"""

from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

STATEFUL = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


class StackedLinear(nn.Module):
    def __init__(self, n: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(n, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, B, in] -> [N, B, out]
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedDropout(nn.Module):
    """Dropout with a rate per trial (0 for a trial without dropout) over [N, B, features], each trial's mask
    drawn from its own generator (torch's RNG without one) as ``F.dropout`` draws it on the CPU
    (``bernoulli_``, then divided by the keep rate): there, the masks of the trial's single run."""

    def __init__(self, rates: Sequence[float], generators: Optional[Sequence[torch.Generator]] = None):
        super().__init__()
        self.rates = [float(rate) for rate in rates]
        self.generators = list(generators) if generators is not None else [None] * len(self.rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not any(self.rates):
            return x
        masks = [torch.empty_like(xi).bernoulli_(1 - rate, generator=generator).div_(1 - rate) if rate
                 else torch.ones_like(xi) for xi, rate, generator in zip(x, self.rates, self.generators)]
        return x * torch.stack(masks)


class DepthwiseForward(torch.autograd.Function):
    """A grouped convolution whose groups read one input channel each (a stack's first layer: N trials'
    images, 1 channel each), channels_last, run forward as a depthwise one over the input repeated once
    per output channel of its group, and backward as the grouped one. On the CPU (oneDNN) the grouped
    forward takes 3-4x as long as the repeat and the depthwise one together, and the grouped backward
    about a tenth of the depthwise one."""

    @staticmethod
    def forward(ctx, x, weight, bias, conv: nn.Conv2d):
        x = x.contiguous(memory_format=torch.channels_last)  # a stack's images arrive trial-major: a small copy
        ctx.save_for_backward(x, weight)
        ctx.conv, ctx.has_bias = conv, bias is not None
        b, c, h, w = x.shape
        per_group = weight.shape[0] // c
        pixels = x.permute(0, 2, 3, 1)  # [B, H, W, C]: each pixel's channels repeated in place
        repeated = pixels.unsqueeze(-1).expand(b, h, w, c, per_group).reshape(b, h, w, c * per_group)
        return F.conv2d(repeated.permute(0, 3, 1, 2), weight, bias, conv.stride, conv.padding, conv.dilation,
                        groups=weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        conv = ctx.conv
        wanted = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.shape[0]] if ctx.has_bias else None, conv.stride, conv.padding, conv.dilation,
            False, [0, 0], conv.groups, wanted)
        return grad_x, grad_weight, grad_bias, None


class OneChannelGroupsConv2d(nn.Conv2d):
    """``nn.Conv2d`` with ``groups`` equal to its input channels (the same weights and state-dict); on the
    CPU in the channels_last layout (a stack's there), in float32, by :class:`DepthwiseForward`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # is_contiguous() cannot tell the layouts of a weight with one input channel apart; its strides can
        # ((k*k, 1, k, 1) after .to(memory_format=torch.channels_last), (k*k, k*k, k, 1) before)
        channels_last = self.weight.stride(1) == 1 and self.weight.stride(2) == self.weight.shape[3]
        if (channels_last and x.device.type == "cpu" and self.padding_mode == "zeros"
                and not isinstance(self.padding, str) and not torch.compiler.is_compiling()
                and not torch.is_autocast_enabled("cpu")):  # its backward would mix bf16 and float32
            return DepthwiseForward.apply(x, self.weight, self.bias, self)
        return super().forward(x)


class StackFeatures(nn.Module):
    """[B, N*C, H, W] -> [N, B, C*H*W]: each trial's flattened features, as its own model flattens them."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.n, -1).transpose(0, 1)


def _grouped(module: nn.Module, n: int, dropout: Sequence[float], generators: Optional[Sequence[torch.Generator]],
             shared_input: bool = False) -> nn.Module:
    if isinstance(module, nn.Conv2d) and shared_input:
        # the same weights (trial-major in the outputs) as the grouped layer's, without its input per trial
        return nn.Conv2d(module.in_channels, n * module.out_channels, module.kernel_size, module.stride,
                         module.padding, module.dilation, bias=module.bias is not None)
    if isinstance(module, nn.Conv2d):
        # a first layer's groups read one channel each: a faster forward pass on the CPU
        kind = OneChannelGroupsConv2d if module.in_channels == module.groups else nn.Conv2d
        return kind(n * module.in_channels, n * module.out_channels, module.kernel_size, module.stride,
                    module.padding, module.dilation, groups=n * module.groups, bias=module.bias is not None)
    if isinstance(module, nn.BatchNorm2d):
        return nn.BatchNorm2d(n * module.num_features, module.eps, module.momentum)
    if isinstance(module, nn.Linear):
        return StackedLinear(n, module.in_features, module.out_features)
    if isinstance(module, nn.Dropout):
        return StackedDropout(dropout, generators)
    if isinstance(module, nn.Flatten):
        return StackFeatures(n)
    if isinstance(module, nn.Sequential):
        first, *rest = module  # a shared input reaches the first layer only
        return nn.Sequential(_grouped(first, n, dropout, generators, shared_input),
                             *(_grouped(child, n, dropout, generators) for child in rest))
    if not list(module.parameters()) and not list(module.buffers()):  # pooling, activations
        return copy.deepcopy(module)
    raise TypeError(f"{type(module).__name__} has no stacked form")


class GroupedModel(nn.Module):
    """The trials' architecture (``template``: a LeNet5 with ``features`` and ``classifier``) N times over,
    with each trial's dropout rate (and generator); with ``shared_input``, all trials read one batch."""

    def __init__(self, template: nn.Module, n: int, dropout: Sequence[float], shared_input: bool = False,
                 dropout_generators: Optional[Sequence[torch.Generator]] = None):
        super().__init__()
        self.n = n
        first = template.features[0]
        if shared_input and not (isinstance(first, nn.Conv2d) and first.groups == 1):
            raise TypeError(f"a shared input needs an ungrouped convolution first, not {first}")
        self.features = _grouped(template.features, n, dropout, dropout_generators, shared_input)
        self.classifier = _grouped(template.classifier, n, dropout, dropout_generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def stateful_layers(model: nn.Module) -> list[nn.Module]:
    """The layers with weights or statistics, in order: a trial's and the group's pair up by position."""
    return [m for m in model.modules() if isinstance(m, (*STATEFUL, StackedLinear))]


def stateful_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of the stateful layers, in order: a trial's and the group's pair up by position."""
    return [p for layer in stateful_layers(model) for p in layer.parameters(recurse=False)]


def state_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The weights and statistics of the stateful layers, in order: a trial's and the group's pair up
    by position (parameters, then buffers, of each layer)."""
    return [t for layer in stateful_layers(model) for t in (*layer.parameters(recurse=False),
                                                             *layer.buffers(recurse=False))]


def trial_block(tensor: torch.Tensor, n: int, i: int, shape: torch.Size) -> torch.Tensor:
    """Trial i's part of a stacked tensor, as a view of ``shape`` (the trial's own tensor's)."""
    return tensor.unflatten(0, (n, -1))[i].view(shape)


def _channels_last_only(tensor: torch.Tensor) -> bool:
    return tensor.dim() == 4 and not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last)


def trial_rows(tensor: torch.Tensor, n: int) -> torch.Tensor:
    """A stacked tensor as [N, rest], a view in its memory order (tensors of one layout match element
    by element): what the optimizer's per-trial arithmetic works on."""
    if _channels_last_only(tensor):
        tensor = tensor.permute(0, 2, 3, 1)  # channels_last's memory order, still trial-major
    return tensor.view(n, -1)


def row_as_trial(row: torch.Tensor, stacked: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A trial's row of ``trial_rows(stacked, n)``, or a row laid out like one, as a view of the trial's
    own ``shape``: the inverse of :func:`trial_rows` for one trial."""
    if _channels_last_only(stacked):
        out, inputs, height, width = shape
        return row.view(out, height, width, inputs).permute(0, 3, 1, 2)
    return row.view(shape)


@torch.no_grad()
def copy_trials(stacked: Sequence[torch.Tensor], n: int, trials: Sequence[Optional[Sequence[torch.Tensor]]],
                into_stack: bool) -> None:
    """Copy each trial's tensors (``trials[i]``, paired by position; None: none) into its part of the
    ``stacked`` ones, or back out of it. A 0-d tensor (num_batches_tracked) is the same count in every trial."""
    for i, own in enumerate(trials):
        if own is None:
            continue
        for whole, mine in zip(stacked, own, strict=True):
            part = whole if whole.dim() == 0 else trial_block(whole, n, i, mine.shape)
            if into_stack:
                part.copy_(mine)
            else:
                mine.copy_(part)


def stack_into(group: GroupedModel, models: Sequence[nn.Module]) -> None:
    """The group's weights and BatchNorm statistics := the models', trial i from ``models[i]``."""
    copy_trials(state_tensors(group), group.n, [state_tensors(m) for m in models], into_stack=True)


def unstack_into(group: GroupedModel, models: Sequence[nn.Module]) -> None:
    """Each model := its trial's weights and statistics in the group."""
    copy_trials(state_tensors(group), group.n, [state_tensors(m) for m in models], into_stack=False)


def channel_stacked(images: torch.Tensor) -> torch.Tensor:
    """[N, B, 1, S, S] (each trial's batch) -> [B, N, S, S]: trial i's images in channel i."""
    return images.squeeze(2).transpose(0, 1)


def stacked_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: torch.Tensor | None) -> torch.Tensor:
    """Each trial's mean cross-entropy [N] (with its own label smoothing), as ``F.cross_entropy`` computes it."""
    log_probs = logits.float().log_softmax(-1)
    nll = -log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # [N, B]
    if smoothing is not None:
        nll = (1 - smoothing) * nll + smoothing * -log_probs.mean(-1)
    return nll.mean(1)

