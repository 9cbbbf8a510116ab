"""What a stacked group's optimizer step costs, in this checkout and another commit, side by side.

    python benchmarks/stacked_optimizer.py --device cpu --ns 4 16 32            # against HEAD
    python benchmarks/stacked_optimizer.py --device cuda --base HEAD~1 --json-out optimizer.json

A group of N LeNet-5 trials (Adam, each trial its own learning rate and weight decay, channels_last
as a group trains) with random gradients, built by each checkout's own ``lenet_exp.stack`` code in a
process of its own (a ``git worktree`` of ``--base``; ``--new`` likewise, default this working tree).
The sides take turns, round after round (A B, B A, ...). Reported per N: milliseconds per
``StackedOptimizer.step()`` (median over the rounds, each the mean of ``--steps`` steps, synchronised
on a GPU), the ratio base / new, and the operators one step runs that compute (``torch.profiler``,
views left out: on a GPU each is a kernel launch, paid for in full by work of a few microseconds).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import time

import common


# operators that only make another view of a tensor's memory (or a tensor of a host value): no kernel
VIEWS = {"view", "permute", "unbind", "split", "split_with_sizes", "select", "slice", "unflatten", "as_strided",
         "expand", "transpose", "t", "unsqueeze", "squeeze", "reshape", "alias", "detach", "detach_", "lift_fresh",
         "empty", "empty_strided", "empty_like", "resolve_conj", "resolve_neg"}


def measure(device_name: str, ns: list[int], steps: int) -> dict:
    """In a side's own process: ms per step and operators per step for each N."""
    import torch
    from torch.profiler import profile

    from lenet_exp.models.lenet5 import LeNet5
    from lenet_exp.stack.model import GroupedModel, stack_into
    from lenet_exp.stack.optim import StackedOptimizer

    device = torch.device(device_name)
    if device.type == "cpu":  # as a CPU run keeps its freed memory (lenet_exp.device): no page faults per step
        from lenet_exp.device import keep_freed_memory
        keep_freed_memory()
    results = {}
    for n in ns:
        torch.manual_seed(0)
        models = [LeNet5().to(device) for _ in range(n)]
        group = GroupedModel(LeNet5(), n, [0.0] * n, False).to(device)
        stack_into(group, models)
        group = group.to(memory_format=torch.channels_last)
        optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3 * (1 + i / n), weight_decay=1e-4 * i)
                      for i, m in enumerate(models)]
        optimizer = StackedOptimizer(group, models, optimizers)
        for p in group.parameters():
            p.grad = torch.randn_like(p)
        for _ in range(3):  # warm-up: allocations, first kernels
            optimizer.step()
        common.sync(device)
        started = time.perf_counter()
        for _ in range(steps):
            optimizer.step()
        common.sync(device)
        ms = (time.perf_counter() - started) / steps * 1e3
        with profile() as prof:
            optimizer.step()
            common.sync(device)
        operators = collections.Counter()
        for event in prof.events():
            name = event.name.removeprefix("aten::")
            if event.cpu_parent is None and event.name.startswith("aten::") and name not in VIEWS:
                # a _foreach_ operator over tensors it cannot treat as one runs an operator for each of them
                inner = [c for c in event.cpu_children if c.name.startswith("aten::")] if name.startswith("_foreach") else []
                operators[name] += max(1, len(inner))
        results[n] = {"ms_per_step": ms, "operators_per_step": sum(operators.values()), "operators": operators}
    return results


def main(argv=None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--base", default="HEAD", help="the commit to compare against (any git revision)")
    parser.add_argument("--new", default=None, help="the commit to measure (default: this working tree as it is)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--ns", type=int, nargs="+", default=[4, 16, 32], metavar="N", help="trials per group")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50, help="steps timed per side, N and round")
    parser.add_argument("--json-out", default=None, metavar="PATH")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one side's measurement, as JSON on stdout, by the code on its PYTHONPATH
        sys.path.remove(str(common.REPO / "src"))
        import lenet_exp
        print(json.dumps({"package": lenet_exp.__file__, "by_n": measure(args.device, args.ns, args.steps)}))
        return 0

    command = [sys.executable, __file__, "--child", "--device", args.device, "--steps", str(args.steps),
               "--ns", *map(str, args.ns)]
    with common.checkouts({"base": args.base, "new": args.new}, prefix="lenet_exp-optimizer-") as (sides, _):
        rounds = []
        for r in range(args.rounds):
            turns = list(sides.values())
            measured = {}
            for side in turns if r % 2 == 0 else turns[::-1]:  # A B, B A: a drift within rounds evens out
                done = subprocess.run(command, env=side["env"], capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"stacked_optimizer.py: the {side['name']} side failed: {done.stderr.strip()[-2000:]}")
                measured[side["name"]] = json.loads(done.stdout)
                if not measured[side["name"]]["package"].startswith(str(side["checkout"] / "src")):
                    sys.exit(f"stacked_optimizer.py: the {side['name']} side ran {measured[side['name']]['package']}")
                measured[side["name"]] = measured[side["name"]]["by_n"]
            rounds.append(measured)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    table, report = [], {name: {key: side[key] for key in ("rev", "commit", "uncommitted_changes")}
                         for name, side in sides.items()}
    report.update({"device": args.device, "steps": args.steps, "rounds": rounds, "by_n": {}})
    for n in map(str, args.ns):
        ms = {name: statistics.median(r[name][n]["ms_per_step"] for r in rounds) for name in sides}
        ops = {name: rounds[0][name][n]["operators_per_step"] for name in sides}
        report["by_n"][n] = {"ms_per_step": ms, "operators_per_step": ops, "base_over_new": ms["base"] / ms["new"]}
        table.append([n, f"{ms['base']:.3f}", f"{ms['new']:.3f}", f"{ms['base'] / ms['new']:.2f}x",
                      str(ops["base"]), str(ops["new"])])
    print(common.describe_sides(sides))
    print(f"{args.device}; median of {args.rounds} rounds of {args.steps} steps\n")
    print(common.table(table, header=["N", "base ms/step", "new ms/step", "base/new", "base ops/step", "new ops/step"]))
    common.write_report(report, args.json_out, echo=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
