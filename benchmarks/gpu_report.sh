#!/usr/bin/env bash
# Every GPU figure of the README in one go, in order of importance; each step has its own time limit,
# and a failed step does not stop the ones after it.
#
#   benchmarks/gpu_report.sh OUT_DIR [STEP ...]
#   (steps: info tests run10 profile speed ours sweep stacked stack_kernels stacked_step stacked_one_order
#    stacked_profile recipes compile ab)
#
# Data: $LENET_EXP_DATA (folders MNIST/raw and FashionMNIST/raw). Writes OUT_DIR/log.txt (everything
# printed), OUT_DIR/speed.json, ours.json, compile.json, ab.json, stack_kernels.json and OUT_DIR/results.txt (one line per run: its
# config, val and test accuracy, seconds per epoch), OUT_DIR/stacked.json,
# stacked_one_order.json and stacked16.prof, and the run and sweep folders under OUT_DIR/runs.
# $EXTRA: overrides added to every run (e.g. EXTRA="trainer.epochs=1" for a dry run on the CPU).
set -u
EXTRA=${EXTRA:-}
SPEED_EXTRA=()
for override in $EXTRA; do SPEED_EXTRA+=(--override "$override"); done
OUT=$(realpath -m "${1:?usage: gpu_report.sh OUT_DIR [STEP ...]}")
shift
STEPS=${*:-info tests run10 profile speed sweep recipes compile}
RUNS=$OUT/runs
mkdir -p "$RUNS"
export PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/log.txt") 2>&1

# $DEADLINE_S: stop every step by then (seconds after the script starts), leaving time to write results.
END=$(( $(date +%s) + ${DEADLINE_S:-100000} ))

# A lent machine's torch had no usable bytecode cache, and Python wrote none (PYTHONDONTWRITEBYTECODE is
# set on the VMs, most likely there too): each process compiled about 2,300 modules from source, some 4.7 s of every sweep's
# start-up (the H200's stacked16.prof, 2026-12-04), which an installed torch (pip compiles it) does not
# pay. A cache of our own, written by the first process that imports them (warmed here, untimed), gives
# every timed process what a user's installation gives it.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX=${PYTHONPYCACHEPREFIX:-/tmp/lenet_exp-pycache}
python3 -c "
import sys, time; t0 = time.perf_counter()
import torch, torchvision, hydra, lenet_exp.app, lenet_exp.stack.group, torch._dynamo
print(f'Bytecode cache in {sys.pycache_prefix}: the imports took {time.perf_counter() - t0:.1f} s (warming it)')"

step() {  # step NAME LIMIT_S COMMAND...: run COMMAND unless NAME is deselected; print its status and wall time
    local name=$1 limit=$2 start rc
    shift 2
    [[ " $STEPS " == *" $name "* ]] || return 0
    (( limit = limit < END - $(date +%s) - 10 ? limit : END - $(date +%s) - 10 ))
    (( limit > 5 )) || { echo "=== $name: skipped, out of time"; return 0; }
    echo "=== $name: $* ($(date +%T))"
    start=$(date +%s.%N)
    timeout --signal=TERM --kill-after=10 "$limit" "$@"
    rc=$?
    echo "=== $name: rc=$rc, $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s wall"
}

results() {  # one line per finished run under a folder
    python3 - "$@" <<'EOF' | tee -a "$OUT/results.txt"
import json, sys
from pathlib import Path
for folder in sys.argv[1:]:
    for path in sorted(Path(folder).glob("**/metrics.json")):
        m = json.loads(path.read_text())
        if m.get("task") != "train":
            continue
        overrides = (path.parent / ".hydra" / "overrides.yaml")
        label = " ".join(line[2:] for line in overrides.read_text().splitlines()) if overrides.exists() else ""
        test = (m.get("test") or {}).get("acc")
        print(f"{path.parent.relative_to(folder)} | {label} | status {m['status']} | val {m['val']['acc']} | "
              f"test {test} | {m['median_epoch_s']:.3f} s/epoch | wall {m['wall_time_s']:.1f} s | "
              f"{ {k: round(v, 2) for k, v in m.get('timings', {}).items()} } | graphs {m.get('cuda_graphs')} | {m['device']}")
EOF
}

step info 60 bash -c 'nvidia-smi -L; nproc; python3 -c "
import time; t0 = time.perf_counter()
import torch; t1 = time.perf_counter()
name = torch.cuda.get_device_name(0); torch.zeros(1, device=\"cuda\"); t2 = time.perf_counter()
import torch._dynamo; t3 = time.perf_counter()
print(torch.__version__, name, f\"with the bytecode cache: import torch {t1 - t0:.2f} s, CUDA init {t2 - t1:.2f} s, \"
      f\"import torch._dynamo {t3 - t2:.2f} s\")
import os, sys; t4 = time.perf_counter()
for i in range(20):  # what a checkpoint write costs on this disk: 256 KiB, then fsync (files.write_atomic)
    with open(os.path.join(sys.argv[1], \"fsync.probe\"), \"wb\") as f:
        f.write(os.urandom(1 << 18)); f.flush(); os.fsync(f.fileno())
os.remove(os.path.join(sys.argv[1], \"fsync.probe\"))
print(f\"256 KiB written and fsynced: {(time.perf_counter() - t4) / 20 * 1e3:.1f} ms each\")" "$0"' "$RUNS"
step tests 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py

# The whole default run, start-up included (target: <= 15 s for 10 epochs).
for repeat in $(seq "${RUN10_REPEATS:-1}"); do
    step run10 120 python3 run.py hydra.run.dir="$RUNS/run10-$repeat" trainer.progress=false $EXTRA
    results "$RUNS/run10-$repeat"
done

# Which kernels a step runs and what each costs on the GPU: what to cut next.
step profile 90 python3 benchmarks/profile_step.py --steps 100 ${SPEED_EXTRA[@]+"${SPEED_EXTRA[@]}"}

step speed 240 python3 benchmarks/speed.py --epochs 3 --json-out "$OUT/speed.json" ${SPEED_EXTRA[@]+"${SPEED_EXTRA[@]}"} \
    --variant "eager: trainer.cuda_graphs=false" \
    --variant "bf16: trainer.precision=bf16" \
    --variant "channels_last: trainer.channels_last=true" \
    --variant "bf16_channels_last: trainer.precision=bf16 trainer.channels_last=true" \
    --variant "no_cudnn_benchmark: trainer.cudnn_benchmark=false"

# Our default alone (quicker than `speed` when the tutorial's figure is known).
step ours 90 python3 benchmarks/speed.py --skip-tutorial --epochs 4 --json-out "$OUT/ours.json" \
    ${SPEED_EXTRA[@]+"${SPEED_EXTRA[@]}"}

# A 2-job sweep on the one GPU (joblib runs both at once).
step sweep 150 python3 run.py -m seed=0,1 hydra/launcher=joblib hydra.launcher.n_jobs=2 \
    hydra.sweep.dir="$RUNS/sweep2" trainer.progress=false $EXTRA
results "$RUNS/sweep2"

# Stacked trials: sweeps of N trials (lr x seed, 10 epochs), start-up included (targets: 16 trials in at
# most 2x the wall time of one; stretch: 32), against one trial with the basic launcher (the reference; N
# trials with it take N times one trial's training: minutes of device time that tell nothing new), all
# taking turns for $STACKED_ROUNDS rounds; $STACKED_VARIANTS: more sweeps (e.g. "stacked:16:trainer.cudnn_benchmark=false").
step stacked 420 python3 benchmarks/stacked_sweeps.py --device cuda --sweeps basic:1 \
    $(for n in ${STACKED_NS:-16 32}; do echo "stacked:$n"; done) ${STACKED_VARIANTS:-} --rounds "${STACKED_ROUNDS:-2}" \
    --epochs 10 --json-out "$OUT/stacked.json" ${SPEED_EXTRA[@]+"${SPEED_EXTRA[@]}"}
# Which convolutions a stacked group's captured step is fastest with (the kernels bound a group's step on a
# GPU): cuDNN's grouped ones as a group trains (autotuned), not autotuned, with the weight gradients as batched matrix
# products, with the first (or every) convolution dense over block-diagonal weights ($KERNEL_VARIANTS: others).
step stack_kernels 150 python3 benchmarks/stack_kernels.py --device cuda --ns ${KERNEL_NS:-8 16 32} ${KERNEL_VARIANTS:+--variants $KERNEL_VARIANTS} \
    --json-out "$OUT/stack_kernels.json"
# A 16-trial group's step: the whole step, its gradients (one graph replay) and its optimizer update timed
# apart, then torch.profiler's kernel table.
step stacked_step 120 python3 benchmarks/profile_step.py --stack 16 --steps 200 --rows 30 ${SPEED_EXTRA[@]+"${SPEED_EXTRA[@]}"}

# The same trials in one data order (data_seed=0): the group gathers each batch once for all of them.
step stacked_one_order 200 python3 benchmarks/stacked_sweeps.py --device cuda --ns ${STACKED_NS:-16 32} --epochs 10 \
    --launchers stacked --override data_seed=0 --json-out "$OUT/stacked_one_order.json" ${SPEED_EXTRA[@]+"${SPEED_EXTRA[@]}"}

# Where a stacked sweep's time goes: 16 trials (4 learning rates x 4 seeds, 10 epochs) under cProfile, each
# job's timings in results.txt (only when named).
step stacked_profile 150 python3 -m cProfile -o "$OUT/stacked16.prof" run.py -m hydra/launcher=stacked \
    optimizer.lr=1e-3,3e-3,5e-4,2e-3 'seed=range(0,4)' hydra.sweep.dir="$RUNS/stacked16" trainer.progress=false $EXTRA
results "$RUNS/stacked16"

# The best recipes (and candidates, one line each in $RECIPES: "NAME OVERRIDES..."), 5 seeds each,
# 30 epochs, all at once on the one GPU; a recipe is chosen afterwards by its mean val accuracy.
RECIPES=${RECIPES:-$(printf 'mnist_best experiment=mnist_best\nfashion_best experiment=fashion_best')}
launch_recipes() {
    while read -r name overrides; do
        [[ -n "$name" ]] || continue
        python3 run.py -m $overrides seed=0,1,2,3,4 hydra/launcher=joblib hydra.launcher.n_jobs=5 \
            hydra.sweep.dir="$RUNS/recipes/$name" trainer.progress=false trainer.log_images=false $EXTRA \
            > "$RUNS/recipes-$name.log" 2>&1 &
    done <<< "$RECIPES"
    wait
}
if [[ " $STEPS " == *" recipes "* ]]; then
    export -f launch_recipes
    export RECIPES RUNS EXTRA
    step recipes "${RECIPES_LIMIT_S:-330}" bash -c launch_recipes
    tail -n 4 "$RUNS"/recipes-*.log
    results "$RUNS/recipes"
fi

step compile 200 python3 benchmarks/speed.py --skip-tutorial --epochs 3 --json-out "$OUT/compile.json" ${SPEED_EXTRA[@]+"${SPEED_EXTRA[@]}"} \
    --override trainer.compile=true --variant "compile_graphs: trainer.cuda_graphs=true"

# Only when named: this checkout against $AB_BASE (default the previous commit), whole runs taking turns (needs git).
step ab 420 python3 benchmarks/ab.py --base "${AB_BASE:-HEAD~1}" --rounds 3 --epochs 3 --json-out "$OUT/ab.json" \
    ${SPEED_EXTRA[@]+"${SPEED_EXTRA[@]}"}
echo "=== done ($(date +%T))"
