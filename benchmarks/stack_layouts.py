"""Per-trial cost of one training step for N trials trained together: the layout study for stacked trials.

    python benchmarks/stack_layouts.py --device cpu --ns 1 4 8 16
    python benchmarks/stack_layouts.py --device cpu --ns 1 8 --eval --batch 1000   # evaluation passes instead

Three ways to train N LeNet-5s (batch B each, Adam, cross-entropy) are timed in turns, round after
round, and compared per trial-step against the first:

* ``separate``: N models stepped one after another (what N runs in one process cost);
* ``grouped``: one model whose convolutions have ``groups=N`` (BatchNorm stays per channel) and whose
  linear layers are batched matrix products (``baddbmm``), with one Adam over all of it: the layout
  ``hydra/launcher=stacked`` trains (``lenet_exp.stack.model.GroupedModel``);
* ``vmap``: ``torch.func.stack_module_state`` + ``functional_call`` under ``vmap`` (BatchNorm without
  running statistics: vmap cannot update buffers in place).

``--eval`` times a validation pass instead: one batch of images, the same for every trial, through
each trial's model in eval mode without gradients (``grouped`` as a stacked group evaluates its trials
on the CPU: one model whose first convolution reads the images once, in channels_last). No fused CPU kernel and no CUDA graphs: the standard ops of each layout. Medians
over ``--rounds`` of ``--reps`` steps each, after ``--warmup`` steps.
"""

from __future__ import annotations

import copy
import statistics
import time

import common  # first: this checkout's src/ on the path

import torch
import torch.nn.functional as F

from lenet_exp.models.lenet5 import LeNet5
from lenet_exp.stack.model import GroupedModel, stack_into

LAYOUTS = ("separate", "grouped", "vmap")


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

    grouped_model = GroupedModel(LeNet5(), n, [0.0] * n).to(device)  # the stacked launcher's model
    stack_into(grouped_model, models)
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


def eval_passes(n: int, batch: int, device: torch.device) -> dict:
    """One evaluation batch of each layout: the same images for every trial (a shared val split)."""
    images = torch.randn(batch, 1, 32, 32, device=device)
    models = [LeNet5().to(device).eval() for _ in range(n)]

    @torch.no_grad()
    def separate():
        for model in models:
            model(images).log_softmax(1).max(1)

    # as a stacked group evaluates its trials: every trial reads the same images (one plain first convolution)
    grouped_model = GroupedModel(LeNet5(), n, [0.0] * n, shared_input=True).to(device).eval()
    stack_into(grouped_model, models)
    grouped_model = grouped_model.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def grouped():
        grouped_model(images).log_softmax(-1).max(-1)

    from torch.func import functional_call, stack_module_state, vmap

    template = LeNet5().to(device).eval()
    params, buffers = stack_module_state(models)
    forward = vmap(lambda p, b: functional_call(template, (p, b), (images,)))

    @torch.no_grad()
    def vmapped():
        forward(params, buffers).log_softmax(-1).max(-1)

    return {"separate": separate, "grouped": grouped, "vmap": vmapped}


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--ns", type=int, nargs="+", default=[1, 4, 8, 16], metavar="N", help="trials per stack")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--eval", action="store_true", help="time evaluation passes instead of training steps")
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
        layouts = (eval_passes if args.eval else steps)(n, args.batch, device)
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

    unit = "trial-batch (evaluation)" if args.eval else "trial-step"
    print(f"ms per {unit}, batch {args.batch}, {device.type}"
          + (f" ({torch.get_num_threads()} threads)" if device.type == "cpu" else "")
          + f"; median over {args.rounds} rounds; speed-up over separate in brackets")
    print(f"{'N':>3}  " + "  ".join(f"{name:>16}" for name in LAYOUTS))
    for n, row in results.items():
        cells = [f"{row[name]:7.2f} ({row['separate'] / row[name]:4.2f}x)" for name in LAYOUTS]
        print(f"{n:>3}  " + "  ".join(f"{cell:>16}" for cell in cells))
    report = {"device": args.device, "threads": torch.get_num_threads(), "batch": args.batch,
              "measured": "evaluation" if args.eval else "training",  # what ms_per_trial times: a step or a batch
              "ms_per_trial": {str(n): row for n, row in results.items()}}
    common.write_report(report, args.json_out, echo=False)
    return report


if __name__ == "__main__":
    main()
