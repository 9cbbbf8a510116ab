"""Which convolution a stacked group should train with on a GPU, once launches cost nothing.

    python benchmarks/stack_kernels.py --device cuda --ns 8 16 32
    python benchmarks/stack_kernels.py --device cpu --ns 4 --reps 5      # eager only: a smoke run

On an H200 a group of 16 trials replays its captured step in 1.9 ms, nearly all of it in cuDNN's
grouped-convolution kernels and the layout transforms around them (benchmarks/README.md), while one
trial's step takes about 0.3 ms. This script times one training step (forward, the trials' summed
losses, backward, Adam) of the stacked launcher's grouped model (``lenet_exp.stack.model``) with its
grouped convolutions computed three ways, taking turns round after round:

* ``grouped_cl``: cuDNN's grouped convolutions in channels_last;
* ``grouped_nchw``: the same in NCHW (what a group trains with on a GPU: 1.1-1.3x as fast on an H200);
* ``unfold``: each grouped convolution as an unfold (im2col) and one batched matrix product over the
  trials (:class:`UnfoldConv2d`, the same weights), in NCHW (float32: torch's matrix products take no
  TF32 by default, where cuDNN's convolutions do).

On a GPU each step is captured as one CUDA graph (with a capturable Adam) and replayed, so the times are
the kernels' own; ``--eager`` times the eager step too. Every variant is first checked to compute the
grouped model's logits. Reported: ms per group step (median over ``--rounds``), per trial, and the peak
memory of the step.
"""

from __future__ import annotations

import statistics

import common  # first: this checkout's src/ on the path

import torch
import torch.nn.functional as F
from torch import nn

from lenet_exp.models.lenet5 import LeNet5
from lenet_exp.stack.model import GroupedModel, stack_into

VARIANTS = ("grouped_cl", "grouped_nchw", "unfold")


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


def unfolded(model: nn.Module) -> nn.Module:
    """``model`` with each grouped convolution computed by :class:`UnfoldConv2d` (in place)."""
    grouped = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if isinstance(child, nn.Conv2d) and child.groups > 1]
    for parent, name, conv in grouped:
        setattr(parent, name, UnfoldConv2d(conv))
    return model


def build(variant: str, n: int, trials: list[nn.Module], device: torch.device) -> nn.Module:
    model = GroupedModel(LeNet5(), n, [0.0] * n).to(device)
    stack_into(model, trials)
    if variant == "grouped_cl":
        return model.to(memory_format=torch.channels_last)
    return unfolded(model) if variant == "unfold" else model


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


def variants(n: int, batch: int, device: torch.device, eager: bool) -> tuple[dict, dict]:
    """Each variant's step on the same trials and batch, after checking that it computes their logits, and
    on a GPU the memory its captured step takes at its peak (MiB: gradients, optimizer state, activations)."""
    torch.manual_seed(0)
    trials = [LeNet5().to(device) for _ in range(n)]
    x = torch.randn(batch, n, 32, 32, device=device)  # trial i's images in channel i
    y = torch.randint(0, 10, (n, batch), device=device)
    tf32, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, False  # the check in float32
    models, inputs = {}, {}
    with torch.no_grad():
        expected = build("grouped_nchw", n, trials, device).eval()(x)
        for variant in VARIANTS:
            models[variant] = build(variant, n, trials, device).eval()
            inputs[variant] = x.contiguous(memory_format=torch.channels_last) if variant == "grouped_cl" else x.clone()
            got = models[variant](inputs[variant])
            if not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
                raise SystemExit(f"stack_kernels.py: {variant} computes other logits (max diff "
                                 f"{(got - expected).abs().max():.3g})")
    torch.backends.cudnn.allow_tf32 = tf32  # training as a group trains: cuDNN's convolutions in TF32
    steps, peaks = {}, {}
    cuda = device.type == "cuda"
    for variant, model in models.items():
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=cuda, foreach=True)
        step = train_step(model, optimizer, inputs[variant], y)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            steps[variant] = captured(step, device)
            steps[variant]()
            peaks[variant] = (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20  # its step's own
        else:
            steps[variant] = step
        if eager and cuda:
            steps[f"{variant}_eager"] = step
    return steps, peaks


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--ns", type=int, nargs="+", default=[8, 16, 32], metavar="N", help="trials per group")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--reps", type=int, default=50, help="steps timed per variant and round")
    p.add_argument("--eager", action="store_true", help="on a GPU, also time each variant's eager step")
    p.add_argument("--json-out", default=None, metavar="PATH")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # as a group trains (trainer.cudnn_benchmark)

    results, rows = {}, []
    for n in args.ns:
        steps, peaks = variants(n, args.batch, device, args.eager)
        times = {name: [] for name in steps}
        for _ in range(args.rounds):  # the variants take turns: a slow spell slows all of them alike
            for name, step in steps.items():
                with common.Timed(device) as timed:
                    for _ in range(args.reps):
                        step()
                times[name].append(timed.seconds / args.reps * 1e3)
        medians = {name: statistics.median(t) for name, t in times.items()}
        results[n] = {name: {"ms_per_step": ms, "peak_mib": peaks.get(name)} for name, ms in medians.items()}
        base = medians["grouped_cl"]
        rows += [[n, name, f"{ms:.3f}", f"{ms / n:.4f}", f"{base / ms:.2f}x",
                  f"{results[n][name]['peak_mib']:.0f}" if results[n][name]["peak_mib"] else "-"]
                 for name, ms in medians.items()]
    graphs = "one CUDA graph replay per step" if device.type == "cuda" else "eager"
    print(f"ms per stacked step, batch {args.batch} per trial, {device.type} ({graphs}); median over {args.rounds} rounds")
    print(common.table(rows, ["N", "variant", "ms/step", "ms/trial", "speed vs grouped_cl", "peak MiB"]))
    report = {"device": device.type, "batch": args.batch, "ms_per_step": {str(n): r for n, r in results.items()}}
    common.write_report(report, args.json_out, echo=False)
    return report


if __name__ == "__main__":
    main()
