"""Per-trial cost of one training step for N trials trained together: the layout study for stacked trials.

    python benchmarks/stack_layouts.py --device cpu --ns 1 4 8 16

Three ways to train N LeNet-5s (batch B each, Adam, cross-entropy) are timed in turns, round after
round, and compared per trial-step against the first:

* ``separate``: N models stepped one after another (what N runs in one process cost);
* ``grouped``: one model whose convolutions have ``groups=N`` (BatchNorm stays per channel) and whose
  linear layers are batched matrix products (``baddbmm``), with one Adam over all of it;
* ``vmap``: ``torch.func.stack_module_state`` + ``functional_call`` under ``vmap`` (BatchNorm without
  running statistics: vmap cannot update buffers in place).

No fused CPU kernel and no CUDA graphs: the standard ops of each layout. Medians over ``--rounds``
of ``--reps`` steps each, after ``--warmup`` steps.
"""

from __future__ import annotations

import copy
import statistics
import time

import common  # first: this checkout's src/ on the path

import torch
import torch.nn.functional as F
from torch import nn

from lenet_exp.models.lenet5 import LeNet5

LAYOUTS = ("separate", "grouped", "vmap")


class GroupedLeNet5(nn.Module):
    """N LeNet-5s as one module: input [B, N, 32, 32] (trial n's images in channel n), logits [N, B, 10]."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.conv1, self.bn1 = nn.Conv2d(n, 6 * n, 5, groups=n, bias=False), nn.BatchNorm2d(6 * n)
        self.conv2, self.bn2 = nn.Conv2d(6 * n, 16 * n, 5, groups=n, bias=False), nn.BatchNorm2d(16 * n)
        self.fc = nn.ParameterList()
        for inputs, outputs in ((400, 120), (120, 84), (84, 10)):
            bound = inputs ** -0.5  # nn.Linear's initialisation range
            self.fc.append(nn.Parameter(torch.empty(n, inputs, outputs).uniform_(-bound, bound)))
            self.fc.append(nn.Parameter(torch.empty(n, 1, outputs).uniform_(-bound, bound)))

    @classmethod
    def of(cls, models: list[LeNet5]) -> "GroupedLeNet5":
        """The stack of these models: the same weights, so the same logits trial by trial."""
        grouped = cls(len(models))
        states = [m.state_dict() for m in models]
        with torch.no_grad():
            for name, key in (("conv1", "features.0"), ("bn1", "features.1"), ("conv2", "features.4"),
                              ("bn2", "features.5")):
                for field, value in getattr(grouped, name).state_dict().items():
                    if field != "num_batches_tracked":
                        value.copy_(torch.cat([s[f"{key}.{field}"] for s in states]))
            for layer, key in enumerate(("classifier.1", "classifier.3", "classifier.5")):
                grouped.fc[2 * layer].copy_(torch.stack([s[f"{key}.weight"].T for s in states]))
                grouped.fc[2 * layer + 1].copy_(torch.stack([s[f"{key}.bias"][None] for s in states]))
        return grouped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.bn1(self.conv1(x)), 2))
        x = F.relu(F.max_pool2d(self.bn2(self.conv2(x)), 2))  # [B, 16N, 5, 5]
        x = x.reshape(x.shape[0], self.n, 400).transpose(0, 1)  # [N, B, 400]
        weights = list(self.fc)
        for layer in range(3):
            x = torch.baddbmm(weights[2 * layer + 1], x, weights[2 * layer])
            if layer < 2:
                x = F.relu(x)
        return x


def steps(n: int, batch: int, device: torch.device) -> dict:
    """One training step of each layout, on the same N batches."""
    images = torch.randn(n, batch, 1, 32, 32, device=device)
    labels = torch.randint(0, 10, (n, batch), device=device)

    models = [LeNet5().to(device) for _ in range(n)]
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]

    def separate():
        for model, optimizer, x, y in zip(models, optimizers, images, labels):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

    grouped_model = GroupedLeNet5.of(models).to(device)
    grouped_optimizer = torch.optim.Adam(grouped_model.parameters(), lr=1e-3)
    channel_stacked = images.squeeze(2).transpose(0, 1).contiguous()  # [B, N, 32, 32]

    def grouped():
        grouped_optimizer.zero_grad(set_to_none=True)
        logits = grouped_model(channel_stacked)
        # the sum of the trials' mean losses: each trial's gradients are its own
        F.cross_entropy(logits.reshape(-1, 10), labels.reshape(-1), reduction="sum").div(batch).backward()
        grouped_optimizer.step()

    from torch.func import functional_call, replace_all_batch_norm_modules_, stack_module_state, vmap

    template = replace_all_batch_norm_modules_(LeNet5().to(device))  # no running statistics under vmap
    params, buffers = stack_module_state([copy.deepcopy(template) for _ in range(n)])
    vmap_optimizer = torch.optim.Adam(params.values(), lr=1e-3)
    forward = vmap(lambda p, b, x: functional_call(template, (p, b), (x,)))

    def vmapped():
        vmap_optimizer.zero_grad(set_to_none=True)
        logits = forward(params, buffers, images)
        F.cross_entropy(logits.reshape(-1, 10), labels.reshape(-1), reduction="sum").div(batch).backward()
        vmap_optimizer.step()

    return {"separate": separate, "grouped": grouped, "vmap": vmapped}


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--ns", type=int, nargs="+", default=[1, 4, 8, 16], metavar="N", help="trials per stack")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=20, help="steps timed per layout and round")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json-out", default=None, metavar="PATH")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    results = {}
    for n in args.ns:
        layouts = steps(n, args.batch, device)
        for step in layouts.values():
            for _ in range(args.warmup):
                step()
        times = {name: [] for name in LAYOUTS}
        for _ in range(args.rounds):  # the layouts take turns: a slow spell slows all of them alike
            for name, step in layouts.items():
                common.sync(device)
                started = time.perf_counter()
                for _ in range(args.reps):
                    step()
                common.sync(device)
                times[name].append((time.perf_counter() - started) / args.reps / n)
        results[n] = {name: statistics.median(t) * 1e3 for name, t in times.items()}

    print(f"ms per trial-step, batch {args.batch}, {device.type}"
          + (f" ({torch.get_num_threads()} threads)" if device.type == "cpu" else "")
          + f"; median over {args.rounds} rounds; speed-up over separate in brackets")
    print(f"{'N':>3}  " + "  ".join(f"{name:>16}" for name in LAYOUTS))
    for n, row in results.items():
        cells = [f"{row[name]:7.2f} ({row['separate'] / row[name]:4.2f}x)" for name in LAYOUTS]
        print(f"{n:>3}  " + "  ".join(f"{cell:>16}" for cell in cells))
    report = {"device": args.device, "threads": torch.get_num_threads(), "batch": args.batch,
              "ms_per_trial_step": {str(n): row for n, row in results.items()}}
    common.write_report(report, args.json_out, echo=False)
    return report


if __name__ == "__main__":
    main()
