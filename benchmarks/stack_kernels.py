"""Which convolutions a stacked group should train with on a GPU, once launches cost nothing.

    python benchmarks/stack_kernels.py --device cuda --ns 8 16 32
    python benchmarks/stack_kernels.py --device cuda --ns 16 --variants grouped_nchw dense_first+bmm_wgrad+tuned
    python benchmarks/stack_kernels.py --device cpu --ns 2 --reps 5      # eager only: a check of the maths

On an H200 a group of 16 trials replays its captured step in about 1.4 ms, nearly all of it in cuDNN's
grouped-convolution kernels (the second convolution's weight gradient alone 0.53 ms) and ATen's depthwise
kernels for the first one (benchmarks/README.md), while one trial's step takes about 0.3 ms. This script
times one training step (forward, the trials' summed losses, backward, Adam) of the stacked launcher's
grouped model (``lenet_exp.stack.model``) with its convolutions computed in other ways, taking turns
round after round. A variant is its features joined by ``+``:

* ``grouped_nchw``: cuDNN's grouped convolutions in NCHW, as a group trains on a GPU;
* ``grouped_cl``: the same in channels_last (1.1-1.3x slower on an H200);
* ``bmm_wgrad``: each grouped convolution's weight gradient as one batched matrix product over the
  trials' unfolded inputs, in TF32 where cuDNN's convolutions take it (:class:`BmmWeightGrad`); the
  forward pass and the input gradient stay cuDNN's;
* ``dense_first``: the first convolution (groups of one input channel: ATen's depthwise kernels) as one
  dense convolution over block-diagonal weights (:class:`BlockDiagonalConv2d`): N times the arithmetic,
  in cuDNN's dense kernels;
* ``dense``: both convolutions so (the second one's arithmetic grows N-fold too);
* ``unfold``: each grouped convolution as an unfold (im2col) and one batched matrix product over the
  trials (:class:`UnfoldConv2d`), float32 (3-4x slower on an H200);
* ``tuned``: with cuDNN's autotuner on while the step is captured, as a group trains since its 16-trial
  sweep took 0.89x the wall time with it (``trainer.cudnn_benchmark`` null; ``grouped_nchw+tuned`` is the
  baseline).

On a GPU each step is captured as one CUDA graph (with a capturable Adam) and replayed, so the times are
the kernels' own; ``--eager`` times the eager step too. Every variant is first checked, in float32, to
compute the grouped model's logits and gradients. Reported: ms per group step (median over ``--rounds``),
per trial, its speed against the first variant, and the peak memory of the step.
"""

from __future__ import annotations

import argparse
import statistics

import common  # first: this checkout's src/ on the path

import torch
import torch.nn.functional as F
from torch import nn

from lenet_exp.models.lenet5 import LeNet5
from lenet_exp.stack.model import GroupedModel, stack_into

FEATURES = ("grouped_nchw", "grouped_cl", "bmm_wgrad", "dense_first", "dense", "unfold", "tuned")
DEFAULT_VARIANTS = ("grouped_nchw+tuned", "grouped_nchw", "bmm_wgrad", "dense_first", "dense_first+tuned",
                    "dense_first+bmm_wgrad", "dense", "dense+tuned")


class UnfoldConv2d(nn.Module):
    """A grouped ``conv`` ([B, G*Cin, H, W] -> [B, G*Cout, H', W'], its weights) as unfold + ``baddbmm``: each
    group's patches [B*H'*W', Cin*k*k] times its weights, all groups in one batched product."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv  # its parameters, shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        groups, (k_h, k_w) = c.groups, c.kernel_size
        batch, _, height, width = x.shape
        out_h = (height + 2 * c.padding[0] - c.dilation[0] * (k_h - 1) - 1) // c.stride[0] + 1
        out_w = (width + 2 * c.padding[1] - c.dilation[1] * (k_w - 1) - 1) // c.stride[1] + 1
        cols = F.unfold(x, c.kernel_size, c.dilation, c.padding, c.stride)  # [B, G*Cin*k*k, L]
        cols = cols.view(batch, groups, -1, out_h * out_w).permute(1, 0, 3, 2).reshape(groups, batch * out_h * out_w, -1)
        weight = c.weight.view(groups, c.out_channels // groups, -1).transpose(1, 2)  # [G, Cin*k*k, Cout]
        bias = c.bias.view(groups, 1, -1) if c.bias is not None else torch.zeros(groups, 1, 1, device=x.device)
        out = torch.baddbmm(bias, cols, weight)  # [G, B*L, Cout]
        out = out.view(groups, batch, out_h, out_w, -1).permute(1, 0, 4, 2, 3)  # [B, G, Cout, H', W']
        return out.reshape(batch, c.out_channels, out_h, out_w)


class BmmWeightGrad(torch.autograd.Function):
    """A grouped convolution whose weight gradient is one batched matrix product: for each group g, the
    sum over the batch and positions of its output gradients [Cout/G, L] times its unfolded inputs
    [L, Cin/G*k*k]. cuDNN computes the forward pass and the input gradient, as without it."""

    @staticmethod
    def forward(ctx, x, weight, conv: nn.Conv2d):
        ctx.save_for_backward(x, weight)
        ctx.conv = conv
        return F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        c = ctx.conv
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(grad, x, weight, None, c.stride, c.padding, c.dilation,
                                                         False, [0, 0], c.groups, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            batch, groups, positions = x.shape[0], c.groups, grad.shape[2] * grad.shape[3]
            cols = F.unfold(x, c.kernel_size, c.dilation, c.padding, c.stride).view(batch, groups, -1, positions)
            grads = grad.contiguous().view(batch, groups, -1, positions)
            tf32 = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32  # as cuDNN's own would
            try:
                grad_weight = torch.einsum("bgol,bgkl->gok", grads, cols).reshape(weight.shape)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = tf32
        return grad_x, grad_weight, None


class BmmWgradConv2d(nn.Module):
    """A grouped ``conv`` (bias-free, as LeNet-5's before BatchNorm) with :class:`BmmWeightGrad`."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        assert conv.bias is None, "LeNet-5's convolutions before BatchNorm have no bias"
        self.conv = conv  # its parameters, shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return BmmWeightGrad.apply(x, self.conv.weight, self.conv)


class BlockDiagonalConv2d(nn.Module):
    """A grouped ``conv`` as one dense convolution whose weights are the groups' on the block diagonal and
    zero elsewhere: G times the arithmetic, in cuDNN's dense kernels instead of its grouped or ATen's
    depthwise ones. The gradient reaches only the diagonal blocks (the groups' own weights)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv  # its parameters, shared
        groups = conv.groups
        self.register_buffer("diagonal", torch.eye(groups, device=conv.weight.device).view(groups, 1, groups, 1, 1, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        groups, (out, inputs, k_h, k_w) = c.groups, c.weight.shape
        blocks = c.weight.view(groups, out // groups, 1, inputs, k_h, k_w) * self.diagonal
        dense = blocks.reshape(out, groups * inputs, k_h, k_w)
        return F.conv2d(x, dense, c.bias, c.stride, c.padding, c.dilation)


def replace_grouped_convs(model: nn.Module, wrapper: type, first_only: bool = False) -> nn.Module:
    """``model`` with its grouped convolutions (or only the first) computed by ``wrapper`` (in place)."""
    grouped = [(parent, name, child) for parent in model.modules() if isinstance(parent, nn.Sequential)
               for name, child in parent.named_children() if isinstance(child, nn.Conv2d) and child.groups > 1]
    for parent, name, conv in grouped[:1] if first_only else grouped:  # not one that a wrapper holds already
        setattr(parent, name, wrapper(conv))
    return model


def parse_variant(text: str) -> str:
    unknown = [feature for feature in text.split("+") if feature not in FEATURES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown feature {unknown[0]!r} in {text!r}: a variant joins some of "
                                         f"{', '.join(FEATURES)} with +")
    return text


def build(variant: str, n: int, trials: list[nn.Module], device: torch.device) -> nn.Module:
    features = set(variant.split("+"))
    model = GroupedModel(LeNet5(), n, [0.0] * n).to(device)
    stack_into(model, trials)
    if "dense" in features or "dense_first" in features:
        replace_grouped_convs(model, BlockDiagonalConv2d, first_only="dense" not in features)
    if "bmm_wgrad" in features:
        replace_grouped_convs(model, BmmWgradConv2d)
    if "unfold" in features:
        replace_grouped_convs(model, UnfoldConv2d)
    return model.to(memory_format=torch.channels_last) if "grouped_cl" in features else model


def cudnn_autotuning(variant: str):
    """cuDNN's autotuner on for a ``tuned`` variant (while it runs, or is captured), off for the others."""
    return torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, benchmark="tuned" in variant.split("+"),
                                      deterministic=False, allow_tf32=torch.backends.cudnn.allow_tf32)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor):
    def step() -> None:
        optimizer.zero_grad(set_to_none=False)
        logits = model(x)  # [N, B, classes]
        F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").div(y.shape[1]).backward()
        optimizer.step()
    return step


def captured(step, device: torch.device):
    """``step`` replayed from one CUDA graph (after warm-up on a side stream, as torch's documentation asks)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The logits of a training-mode forward pass and the gradients of its loss, by parameter."""
    model.zero_grad(set_to_none=True)
    logits = model(x)
    F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters()]


def check(variant: str, model: nn.Module, x: torch.Tensor, expected: tuple) -> None:
    """Exits unless ``model`` computes ``expected`` (the grouped model's logits and gradients), each tensor to
    1e-4 of its largest value."""
    logits, grads = gradients(model, x, expected[2])
    pairs = [(logits, expected[0]), *zip(grads, expected[1])]
    worst = max(float((got - want).abs().max() / want.abs().max().clamp_min(1e-12)) for got, want in pairs)
    if len(grads) != len(expected[1]) or worst > 1e-4:
        raise SystemExit(f"stack_kernels.py: {variant} computes other logits or gradients (relative difference "
                         f"{worst:.3g})")


def with_flags(step, flags, variant: str):
    """``step`` run with ``flags(variant)`` set."""
    def flagged() -> None:
        with flags(variant):
            step()
    return flagged


def variants(names: list[str], n: int, batch: int, device: torch.device, eager: bool) -> tuple[dict, dict]:
    """Each variant's step on the same trials and batch, after checking that it computes their logits and
    gradients, and on a GPU the memory its captured step takes at its peak (MiB: gradients, optimizer
    state, activations)."""
    torch.manual_seed(0)
    trials = [LeNet5().to(device) for _ in range(n)]
    x = torch.randn(batch, n, 32, 32, device=device)  # trial i's images in channel i
    y = torch.randint(0, 10, (n, batch), device=device)
    models, inputs = {}, {}
    with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=False):  # checked in float32
        expected = (*gradients(build("grouped_nchw", n, trials, device), x, y), y)
        for variant in names:
            models[variant] = build(variant, n, trials, device)
            inputs[variant] = x.contiguous(memory_format=torch.channels_last) if "grouped_cl" in variant else x.clone()
            check(variant, models[variant], inputs[variant], expected)
    steps, peaks = {}, {}
    cuda = device.type == "cuda"
    for variant, model in models.items():  # training as a group trains: cuDNN's convolutions in TF32
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=cuda, foreach=True)
        step = train_step(model, optimizer, inputs[variant], y)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            with cudnn_autotuning(variant):  # the algorithms are chosen as the graph is captured
                steps[variant] = captured(step, device)
            steps[variant]()
            try:  # a kernel's fault surfaces at the next sync: here, where it names its variant
                torch.cuda.synchronize(device)
            except RuntimeError as error:  # the CUDA context is lost: no variant after it can run
                raise SystemExit(f"stack_kernels.py: {variant}'s captured step failed on the GPU ({error}); "
                                 f"leave it out of --variants") from error
            peaks[variant] = (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20  # its step's own
        if eager or not cuda:
            steps[f"{variant} (eager)" if cuda else variant] = with_flags(step, cudnn_autotuning, variant)
    return steps, peaks


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--ns", type=int, nargs="+", default=[8, 16, 32], metavar="N", help="trials per group")
    p.add_argument("--variants", nargs="+", type=parse_variant, default=list(DEFAULT_VARIANTS), metavar="VARIANT",
                   help=f"features joined by + (default: {' '.join(DEFAULT_VARIANTS)}); the first is the reference")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--reps", type=int, default=50, help="steps timed per variant and round")
    p.add_argument("--eager", action="store_true", help="on a GPU, also time each variant's eager step")
    p.add_argument("--json-out", default=None, metavar="PATH")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    reference = args.variants[0]

    results, rows = {}, []
    for n in args.ns:
        steps, peaks = variants(args.variants, n, args.batch, device, args.eager)
        times = {name: [] for name in steps}
        for _ in range(args.rounds):  # the variants take turns: a slow spell slows all of them alike
            for name, step in steps.items():
                with common.Timed(device) as timed:
                    for _ in range(args.reps):
                        step()
                times[name].append(timed.seconds / args.reps * 1e3)
        medians = {name: statistics.median(t) for name, t in times.items()}
        results[n] = {name: {"ms_per_step": ms, "peak_mib": peaks.get(name)} for name, ms in medians.items()}
        rows += [[n, name, f"{ms:.3f}", f"{ms / n:.4f}", f"{medians[reference] / ms:.2f}x",
                  f"{results[n][name]['peak_mib']:.0f}" if results[n][name]["peak_mib"] else "-"]
                 for name, ms in medians.items()]
    graphs = "one CUDA graph replay per step" if device.type == "cuda" else "eager"
    print(f"ms per stacked step, batch {args.batch} per trial, {device.type} ({graphs}); median over {args.rounds} rounds")
    print(common.table(rows, ["N", "variant", "ms/step", "ms/trial", f"speed vs {reference}", "peak MiB"], left=(1,)))
    report = {"device": device.type, "batch": args.batch, "reference": reference,
              "ms_per_step": {str(n): r for n, r in results.items()}}
    common.write_report(report, args.json_out, echo=False)
    return report


if __name__ == "__main__":
    main()
