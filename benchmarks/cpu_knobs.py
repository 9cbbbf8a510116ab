"""Which CPU speed knobs make our training step faster? Interleaved A/B timing in one process.

Every variant trains the package's LeNet-5 (``lenet_exp.model.build_model`` with the default config)
on the same device-resident MNIST tensors (``lenet_exp.data.load_data``), batch 64. Variants are
timed in interleaved rounds (A B C ... A B C ...), each round a chunk of ``--steps`` optimizer steps,
so that load from other processes on the machine hits every variant alike. Before each chunk the script
waits (``--wait-quiet``) until other processes leave the CPUs idle; chunks that still saw CPU
contention (Linux PSI above ``--max-pressure``) are left out of the medians. The report gives the
median ms/step, samples/s and the median of per-round paired ratios to the baseline.

The baseline is exactly ``lenet_exp.engine.train_epoch`` with ``build_optimizer``'s Adam and the plain
modules; ``fused_cpu`` adds the fused BatchNorm/max-pool/ReLU kernel that ``python run.py`` uses on the
CPU (``trainer.fused_cpu_kernels``). The other variants change one thing (or a named combination) in
a copy of that loop, so each gain can be attributed to one code change. ``--accuracy`` also trains the chosen variants for whole epochs and
reports test accuracy, to check that a knob does not change the result.

    python benchmarks/cpu_knobs.py                                  # all variants, 7 rounds
    python benchmarks/cpu_knobs.py --variants baseline fused_cpu --rounds 15
    python benchmarks/cpu_knobs.py --variants baseline adam_fused compile_fused --rounds 9
    python benchmarks/cpu_knobs.py --variants baseline adam_fused --accuracy 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Variant:
    name: str
    what: str
    adam: dict = field(default_factory=dict)  # extra Adam kwargs: fused / foreach
    channels_last: bool = False
    compile: str | None = None  # None | "model" | "model+opt" | "step"
    compile_mode: str | None = None  # torch.compile(mode=...)
    batches: str = "gather"  # gather (engine: one gather per epoch, slices) | index_select per batch | slice (no shuffle)
    zero_grad_none: bool = True
    bf16: bool = False
    mkldnn: bool = True
    threads: int | None = None
    engine: bool = False  # use lenet_exp.engine.train_epoch itself
    fused: bool = False  # the fused BatchNorm + max-pool + ReLU kernel (lenet_exp.fused_cpu)


VARIANTS = {v.name: v for v in [
    Variant("baseline", "lenet_exp.engine.train_epoch + build_optimizer (Adam, default impl)", engine=True),
    Variant("fused_cpu", "baseline + the fused BatchNorm/max-pool/ReLU kernel (run.py's CPU default)", engine=True,
            fused=True),
    Variant("copy", "the benchmark's copy of train_epoch (must match baseline)"),
    Variant("adam_foreach", "Adam(foreach=True)", adam={"foreach": True}),
    Variant("adam_fused", "Adam(fused=True)", adam={"fused": True}),
    Variant("channels_last", "model.to(channels_last) (inputs stay NCHW contiguous)", channels_last=True),
    Variant("index_select", "per-batch index_select instead of one gather per epoch", batches="index_select"),
    Variant("no_shuffle_cost", "slices, no permutation at all (lower bound of batching cost)", batches="slice"),
    Variant("zero_grad_zeros", "optimizer.zero_grad(set_to_none=False)", zero_grad_none=False),
    Variant("bf16", "bf16 autocast on CPU", bf16=True),
    Variant("no_mkldnn", "torch.backends.mkldnn disabled", mkldnn=False),
    Variant("threads1", "torch.set_num_threads(1)", threads=1),
    Variant("compile", "torch.compile(model)", compile="model"),
    Variant("compile_fused", "torch.compile(model) + Adam(fused=True)", compile="model", adam={"fused": True}),
    Variant("compile_autotune_fused", "torch.compile(model, mode='max-autotune-no-cudagraphs') + Adam(fused=True)",
            compile="model", compile_mode="max-autotune-no-cudagraphs", adam={"fused": True}),
    Variant("compile_opt", "torch.compile(model) + torch.compile(optimizer.step)", compile="model+opt"),
    Variant("compile_step", "torch.compile of the whole step: forward, backward, Adam(fused)", compile="step",
            adam={"fused": True}),
    Variant("fused_index_select", "Adam(fused=True) + per-batch index_select", adam={"fused": True},
            batches="index_select"),
    Variant("fused_threads1", "Adam(fused=True) + 1 thread", adam={"fused": True}, threads=1),
]}


def build(variant: Variant, cfg, device):
    from lenet_exp.model import build_model
    from lenet_exp.optim import build_optimizer

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size).to(device)
    if variant.fused:
        model.fuse_cpu_blocks()
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if variant.adam:
        o = cfg.optimizer
        optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay,
                                     **variant.adam)
    else:
        optimizer = build_optimizer(cfg.optimizer, model)
    forward = torch.compile(model, mode=variant.compile_mode) if variant.compile in ("model", "model+opt") else model
    opt_step = torch.compile(optimizer.step) if variant.compile == "model+opt" else optimizer.step

    def step(x, y):
        logits = forward(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=variant.zero_grad_none)
        loss.backward()
        opt_step()
        return loss, logits

    if variant.compile == "step":
        step = torch.compile(step)
    return model, optimizer, step


def make_epoch(variant: Variant, model, optimizer, step) -> Callable:
    """A function (split, batch_size, generator) -> samples: the engine's loop or a one-knob copy of it."""
    if variant.engine:
        from lenet_exp.engine import TrainStep, train_epoch

        def engine_epoch(split, batch_size, generator):
            return train_epoch(TrainStep(model, split, batch_size), optimizer, generator).samples
        return engine_epoch

    def epoch(split, batch_size, generator):
        model.train()
        device = split.labels.device
        n = len(split)
        if variant.batches == "gather":
            order = torch.randperm(n, device=device, generator=generator)
            images, labels = split.images[order], split.labels[order]
        elif variant.batches == "index_select":
            order = torch.randperm(n, device=device, generator=generator)
        else:
            images, labels = split.images, split.labels
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if variant.bf16 else contextlib.nullcontext()
        for start in range(0, n, batch_size):
            if variant.batches == "index_select":
                idx = order[start:start + batch_size]
                x, y = split.images.index_select(0, idx), split.labels.index_select(0, idx)
            else:
                x, y = images[start:start + batch_size], labels[start:start + batch_size]
            with amp:
                loss, logits = step(x, y)
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        loss_sum.item(), correct.item()
        return seen
    return epoch


def cpu_pressure_us() -> int | None:
    """Linux PSI: microseconds in which some runnable task waited for a CPU (any process on the machine)."""
    try:
        with open("/proc/pressure/cpu") as psi:
            return int(psi.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def cpu_busy_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU jiffies of the whole machine from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = values
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def wait_quiet(max_busy: float, timeout: float, probe: float = 0.5) -> float:
    """Sleep until other processes use at most ``max_busy`` of the machine's CPUs during a ``probe``-second
    window (this process sleeps meanwhile), for at most ``timeout`` seconds. Returns the time waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = cpu_busy_jiffies()
        if before is None:
            return 0.0
        time.sleep(probe)
        after = cpu_busy_jiffies()
        if after[1] > before[1] and (after[0] - before[0]) / (after[1] - before[1]) <= max_busy:
            break
    return time.perf_counter() - started - probe


def knob_context(variant: Variant, default_threads: int):
    torch.set_num_threads(variant.threads or default_threads)
    return torch.backends.mkldnn.flags(enabled=variant.mkldnn)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per timed chunk")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="default threads (default: run.py's choice)")
    parser.add_argument("--accuracy", type=int, default=0, metavar="EPOCHS",
                        help="also train each variant for this many full epochs and report test accuracy")
    parser.add_argument("--data-root", default=os.environ.get("LENET_EXP_DATA") or str(REPO.parent / "shared" / "data"))
    parser.add_argument("--max-pressure", type=float, default=0.05,
                        help="a chunk with more CPU pressure (share of its time) than this counts as contended")
    parser.add_argument("--wait-quiet", type=float, default=60.0, metavar="SECONDS",
                        help="before each chunk, wait up to this long until other processes leave the CPUs "
                             "idle (0: never wait)")
    parser.add_argument("--max-busy", type=float, default=0.1,
                        help="'quiet': other processes use at most this share of all CPUs")
    parser.add_argument("--competitors", type=int, default=0, metavar="N",
                        help="simulate other jobs: run N single-threaded busy loops meanwhile (implies --wait-quiet 0)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO / "src"))
    from hydra import compose, initialize_config_dir
    from lenet_exp.data import Split, load_data
    from lenet_exp.device import JobSlot, resolve_device
    from lenet_exp.engine import evaluate
    from lenet_exp.schema import register_configs

    register_configs()
    overrides = [f"dataset.root={Path(args.data_root).resolve()}", "dataset.download=false", "device.type=cpu",
                 f"trainer.batch_size={args.batch_size}"] + ([f"device.threads={args.threads}"] if args.threads else [])
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    device = resolve_device(cfg.device, JobSlot())
    default_threads = torch.get_num_threads()
    data = load_data(cfg.dataset, args.batch_size, device)
    chunk = args.steps * args.batch_size
    competitors = []
    if args.competitors:
        import atexit
        import subprocess

        args.wait_quiet = 0
        competitors = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.competitors)]
        atexit.register(lambda: [c.kill() for c in competitors])
    sub = Split(data.train.images[:chunk].clone(), data.train.labels[:chunk].clone())

    states = {}
    for name in args.variants:
        v = VARIANTS[name]
        model, optimizer, step = build(v, cfg, device)
        epoch = make_epoch(v, model, optimizer, step)
        generator = torch.Generator().manual_seed(0)
        with knob_context(v, default_threads):
            start = time.perf_counter()
            epoch(sub, args.batch_size, generator)  # warm-up chunk (includes compilation)
            warm = time.perf_counter() - start
        states[name] = (v, epoch, generator)
        print(f"{name:20s} warm-up chunk {warm:7.2f} s", file=sys.stderr, flush=True)

    # Other processes on a small machine come and go. Each chunk records the share of its wall time
    # in which some task waited for a CPU (Linux PSI); chunks above --max-pressure count as contended
    # and are left out of the "clean" medians, but are reported.
    times = {name: [] for name in args.variants}
    pressure = {name: [] for name in args.variants}
    waited = 0.0
    for r in range(args.rounds):
        for name in args.variants:
            v, epoch, generator = states[name]
            if args.wait_quiet:
                waited += wait_quiet(args.max_busy, args.wait_quiet)
            with knob_context(v, default_threads):
                psi = cpu_pressure_us()
                start = time.perf_counter()
                epoch(sub, args.batch_size, generator)
                seconds = time.perf_counter() - start
                psi_end = cpu_pressure_us()
            times[name].append(seconds)
            pressure[name].append((psi_end - psi) / 1e6 / seconds if psi is not None else 0.0)
        print(f"round {r + 1}/{args.rounds} (waited {waited:.0f} s so far): " + " ".join(
            f"{n}={times[n][-1]:.2f}({pressure[n][-1]:.0%})" for n in args.variants), file=sys.stderr, flush=True)

    base = "baseline" if "baseline" in times else args.variants[0]
    results = {}
    for name in args.variants:
        clean = [t for t, p in zip(times[name], pressure[name]) if p <= args.max_pressure]
        # per round, paired against the baseline; only rounds where both chunks were clean
        ratios = [b / t for b, t, pb, pt in zip(times[base], times[name], pressure[base], pressure[name])
                  if pb <= args.max_pressure and pt <= args.max_pressure]
        med = statistics.median(clean) if clean else float("nan")
        results[name] = {"what": VARIANTS[name].what, "clean_chunks": len(clean), "chunks": len(times[name]),
                         "median_chunk_s": med, "samples_per_s": chunk / med, "ms_per_step": 1000 * med / args.steps,
                         "min_ms_per_step": 1000 * min(times[name]) / args.steps,
                         "median_all_ms_per_step": 1000 * statistics.median(times[name]) / args.steps,
                         "speedup_vs_" + base: statistics.median(ratios) if ratios else float("nan"),
                         "paired_rounds": len(ratios), "est_epoch_s_55k": med * 55000 / chunk}

    if args.accuracy:
        for name in args.variants:
            v = VARIANTS[name]
            model, optimizer, step = build(v, cfg, device)
            epoch = make_epoch(v, model, optimizer, step)
            generator = torch.Generator().manual_seed(cfg.seed)
            with knob_context(v, default_threads):
                epoch_s = []
                for _ in range(args.accuracy):
                    start = time.perf_counter()
                    epoch(data.train, args.batch_size, generator)
                    epoch_s.append(time.perf_counter() - start)
                acc = evaluate(model, data.test, 1000).acc
            results[name].update(test_acc=acc, full_epoch_s=[round(s, 2) for s in epoch_s])
            print(f"{name:20s} test acc {acc:.4f} after {args.accuracy} epochs, epoch s {epoch_s}", file=sys.stderr,
                  flush=True)

    print(f"medians over clean chunks ({args.steps} steps of batch {args.batch_size}, CPU pressure <= "
          f"{args.max_pressure:.0%}); speedup = median of per-round paired ratios to {base}")
    print(f"{'variant':20s} {'clean':>5s} {'ms/step':>8s} {'min ms':>7s} {'samples/s':>10s} {'vs ' + base:>12s} "
          f"{'~s/epoch':>9s} {'test acc':>9s}")
    for name, r in results.items():
        acc = f"{r['test_acc']:.4f}" if "test_acc" in r else "-"
        print(f"{name:20s} {r['clean_chunks']:2d}/{r['chunks']:<2d} {r['ms_per_step']:8.2f} {r['min_ms_per_step']:7.2f} "
              f"{r['samples_per_s']:10,.0f} {r['speedup_vs_' + base]:11.2f}x {r['est_epoch_s_55k']:9.2f} {acc:>9s}   "
              f"{r['what']}")
    for c in competitors:
        c.kill()
    report = {"threads": default_threads, "competitors": args.competitors,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "batch_size": args.batch_size, "steps_per_chunk": args.steps,
              "rounds": args.rounds, "max_pressure": args.max_pressure, "torch": torch.__version__, "results": results}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
