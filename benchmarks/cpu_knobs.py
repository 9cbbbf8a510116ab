"""Which CPU speed knobs make our training step faster? Interleaved A/B timing in one process.

Every variant is what ``python run.py`` builds (``lenet_exp.parts.build_parts`` on the default config on
the CPU, batch 64) with one change: Hydra overrides (``trainer.fused_cpu_kernels``, ``channels_last``,
``precision``, ``compile``, ``device.threads``, or any ``--variant 'NAME: overrides'``), or one of two
changes no setting makes (Adam without ``fused=True``; mkldnn off). Each is trained by the engine's
own ``train_epoch`` in chunks of ``--steps`` steps (``max_batches``), timed in interleaved rounds
(A B C ... A B C ...), so that load from other processes on the machine hits every variant alike.
Before each chunk the script waits (``--wait-quiet``) until other processes leave the CPUs idle; chunks
that still saw CPU contention (Linux PSI above ``--max-pressure``) are left out of the medians. The
report gives the median ms/step, samples/s and the median of per-round paired ratios to the baseline
(the standard layers); ``fused_cpu`` is run.py's CPU default. ``--accuracy`` also trains the chosen
variants for whole epochs and reports test accuracy, to check that a knob does not change the result.

    python benchmarks/cpu_knobs.py                                  # all variants, 7 rounds
    python benchmarks/cpu_knobs.py --variants baseline fused_cpu --rounds 15 --accuracy 3
    python benchmarks/cpu_knobs.py --variants baseline adam_unfused threads1 --rounds 15
    python benchmarks/cpu_knobs.py --variants baseline --variant 'ls: trainer.label_smoothing=0.1'
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys

import common  # first: this checkout's src/ on the path

import torch

UNFUSED = "trainer.fused_cpu_kernels=false"
VARIANTS = {  # name: (overrides, what); each differs from the baseline in one thing
    "baseline": ((UNFUSED,), "the standard layers, Adam as build_optimizer makes it (fused)"),
    "fused_cpu": (("trainer.fused_cpu_kernels=true",), "the fused BatchNorm/max-pool/ReLU kernel (run.py's CPU default)"),
    "adam_unfused": ((UNFUSED,), "Adam without fused=True (torch's default implementation)"),
    "channels_last": ((UNFUSED, "trainer.channels_last=true"), "channels_last weights (inputs stay NCHW)"),
    "bf16": ((UNFUSED, "trainer.precision=bf16"), "bf16 autocast"),
    "no_mkldnn": ((UNFUSED,), "torch.backends.mkldnn disabled"),
    "threads1": ((UNFUSED, "device.threads=1"), "one CPU thread"),
    "compile": ((UNFUSED, "trainer.compile=true"), "torch.compile(model); its warm-up chunk compiles"),
}


def unfused_adam(parts) -> None:
    optimizer = parts.optimizer
    parts.optimizer = type(optimizer)(parts.model.parameters(), **{**optimizer.defaults, "fused": None})


SETUP = {"adam_unfused": unfused_adam}  # changes to the built parts that no setting makes
CONTEXT = {"no_mkldnn": lambda: torch.backends.mkldnn.flags(enabled=False)}


def build(name: str, cfg):
    """The variant's parts, built as run.py builds them, and the CPU threads they chose."""
    from lenet_exp.slots import JobSlot
    from lenet_exp.parts import build_parts, seed_everything

    seed_everything(cfg.seed, cfg.trainer.deterministic)
    parts = build_parts(cfg, JobSlot())
    SETUP.get(name, lambda parts: None)(parts)
    return parts, torch.get_num_threads()


def train(name: str, parts, threads: int, steps=None) -> None:
    """``steps`` batches (or a whole epoch) of the engine's train_epoch, with the variant's threads."""
    from lenet_exp.engine import random_order, train_epoch

    torch.set_num_threads(threads)
    with CONTEXT.get(name, contextlib.nullcontext)():
        train_epoch(parts.step, parts.optimizer, random_order(parts.step, parts.generator), after_step=parts.after_step,
                    max_batches=steps)


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    common.add_variant_arg(parser, "also time this set of overrides (on top of --override); repeatable")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per timed chunk")
    parser.add_argument("--threads", type=int, default=None, help="default threads (default: run.py's choice)")
    parser.add_argument("--accuracy", type=int, default=0, metavar="EPOCHS",
                        help="also train each variant for this many full epochs and report test accuracy")
    parser.add_argument("--max-pressure", type=float, default=0.05,
                        help="a chunk with more CPU pressure (share of its time) than this counts as contended")
    parser.add_argument("--competitors", type=int, default=0, metavar="N",
                        help="simulate other jobs: run N single-threaded busy loops meanwhile (implies --wait-quiet 0)")
    common.add_config_args(parser, device=False)
    common.add_quiet_args(parser, default=60.0)
    args = parser.parse_args(argv)
    args.device = "cpu"
    from lenet_exp.engine import evaluate

    base = [f"device.threads={args.threads}"] if args.threads else []
    chosen = {name: VARIANTS[name] for name in args.variants}
    chosen.update({name: (overrides, " ".join(overrides)) for name, overrides in args.variant})
    configs = {name: common.compose_config(args, *overrides, base=base) for name, (overrides, _) in chosen.items()}
    competitors = []
    if args.competitors:
        args.wait_quiet = 0
        competitors = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.competitors)]
    try:
        states = {}
        for name, cfg in configs.items():
            states[name] = build(name, cfg)
            with common.Timed() as warm:
                train(name, *states[name], args.steps)  # the warm-up chunk (and compilation)
            print(f"{name:20s} warm-up chunk {warm.seconds:7.2f} s", file=sys.stderr, flush=True)

        # Other processes on a small machine come and go: chunks above --max-pressure count as contended
        # and are left out of the "clean" medians, but are reported.
        times = {name: [] for name in configs}
        pressure = {name: [] for name in configs}
        waited = 0.0
        for r in range(args.rounds):
            for name in configs:
                if args.wait_quiet:
                    waited += common.wait_quiet(args.wait_quiet)
                with common.Timed() as chunk:
                    train(name, *states[name], args.steps)
                times[name].append(chunk.seconds)
                pressure[name].append(chunk.pressure or 0.0)
            print(f"round {r + 1}/{args.rounds} (waited {waited:.0f} s so far): " + " ".join(
                f"{n}={times[n][-1]:.2f}({pressure[n][-1]:.0%})" for n in configs), file=sys.stderr, flush=True)
    finally:
        for competitor in competitors:
            competitor.kill()

    samples = args.steps * configs[next(iter(configs))].trainer.batch_size
    base_name = "baseline" if "baseline" in times else next(iter(configs))
    clean = {name: [p <= args.max_pressure for p in pressure[name]] for name in configs}
    results = {}
    for name in configs:
        kept = [t for t, ok in zip(times[name], clean[name]) if ok]
        # per round, paired against the baseline; only rounds where both chunks were clean
        ratios = [b / t for b, t, ok_b, ok in zip(times[base_name], times[name], clean[base_name], clean[name])
                  if ok_b and ok]
        med = statistics.median(kept) if kept else float("nan")
        results[name] = {"what": chosen[name][1], "overrides": list(chosen[name][0]), "clean_chunks": len(kept),
                         "chunks": len(times[name]), "median_chunk_s": med, "samples_per_s": samples / med,
                         "ms_per_step": 1000 * med / args.steps, "min_ms_per_step": 1000 * min(times[name]) / args.steps,
                         "median_all_ms_per_step": 1000 * statistics.median(times[name]) / args.steps,
                         "speedup_vs_" + base_name: statistics.median(ratios) if ratios else float("nan"),
                         "paired_rounds": len(ratios), "est_epoch_s_55k": med * 55000 / samples}

    threads = {name: state[1] for name, state in states.items()}
    states.clear()  # each variant's data and model
    for name, cfg in configs.items():
        if not args.accuracy:
            break
        parts, _ = build(name, cfg)
        epoch_s = []
        for _ in range(args.accuracy):
            with common.Timed() as epoch:
                train(name, parts, threads[name])
            epoch_s.append(round(epoch.seconds, 2))
        acc = evaluate(parts.eval_model, parts.data.test, cfg.trainer.eval_batch_size, cfg.trainer.precision).acc
        results[name].update(test_acc=acc, full_epoch_s=epoch_s)
        print(f"{name:20s} test acc {acc:.4f} after {args.accuracy} epochs, epoch s {epoch_s}", file=sys.stderr, flush=True)

    print(f"medians over clean chunks ({args.steps} steps, CPU pressure <= {args.max_pressure:.0%}); "
          f"speedup = median of per-round paired ratios to {base_name}")
    print(common.table([[name, f"{r['clean_chunks']}/{r['chunks']}", f"{r['ms_per_step']:.2f}", f"{r['min_ms_per_step']:.2f}",
                         f"{r['samples_per_s']:,.0f}", f"{r['speedup_vs_' + base_name]:.2f}x", f"{r['est_epoch_s_55k']:.2f}",
                         common.fmt(r.get("test_acc"), ".4f"), r["what"]] for name, r in results.items()],
                       header=["variant", "clean", "ms/step", "min ms", "samples/s", "vs " + base_name, "~s/epoch",
                               "test acc", "what"], left=(0, 8)))
    report = {"threads": threads, "competitors": args.competitors,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "steps_per_chunk": args.steps, "rounds": args.rounds,
              "max_pressure": args.max_pressure, "torch": torch.__version__, "results": results}
    common.write_report(report, args.json_out, echo=False)
    return report


if __name__ == "__main__":
    main()
