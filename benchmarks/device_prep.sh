#!/usr/bin/env bash
# Prepare a gpu_report.sh run on a lent device machine, which has torch, torchvision, tensorboard and
# matplotlib but neither Hydra nor a network: the wheels of what it may lack (Hydra, and pytest with
# xdist for the `tests` step; the versions installed here) into .whl/, and MNIST as a gzip into .data/,
# both kept out of git by .git/info/exclude.
#
#   benchmarks/device_prep.sh              # data from $LENET_EXP_DATA, else ../shared/data
#
# Then call the device tool's run with carry [".whl", ".data"] and this command (it prints it too):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
#   export PYTHONPATH=/tmp/site:$PWD/src && mkdir -p /tmp/data && tar xzf .data/mnist.tgz -C /tmp/data &&
#   LENET_EXP_DATA=/tmp/data DEADLINE_S=520 KERNEL_NS=16 STACKED_NS=16 \
#     STACKED_VARIANTS=stacked:16:trainer.eval_batch_size=16000 \
#     benchmarks/gpu_report.sh $OUT/gpu info tests stacked stack_kernels stacked_profile
# (the variant validates 16 trials in batches of 1,000 images, as one trial does, not 62: the CPU's
# small batches are faster there, and a GPU's launches may favour large ones)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${LENET_EXP_DATA:-../shared/data}
[[ -d "$DATA/MNIST/raw" ]] || { echo "No $DATA/MNIST/raw: set LENET_EXP_DATA to the folder that holds it." >&2; exit 1; }
for ignored in /.whl/ /.data/; do
    grep -qx "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >> .git/info/exclude
done
rm -rf .whl .data
mkdir -p .whl .data
# pure-Python packages: a wheel made here installs there (antlr4 4.9.3, which Hydra 1.3 pins, is a source
# archive only, which pip builds into one)
PACKAGES=(hydra-core omegaconf antlr4-python3-runtime pytest pluggy iniconfig pygments pytest-xdist execnet)
for package in "${PACKAGES[@]}"; do
    version=$(python3 -c "import importlib.metadata as m; print(m.version('$package'))")
    python3 -m pip wheel -q --no-deps -w .whl "$package==$version" 2>&1 | grep -v "^WARNING: Location" || true
done
(( $(ls .whl/*.whl | wc -l) == ${#PACKAGES[@]} )) || { echo "Some wheels are missing: $(ls .whl)" >&2; exit 1; }
tar czf .data/mnist.tgz -C "$DATA" MNIST/raw
du -sh .whl .data
cat <<'EOF'
Device command (carry [".whl", ".data"]):
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src && mkdir -p /tmp/data && tar xzf .data/mnist.tgz -C /tmp/data && LENET_EXP_DATA=/tmp/data DEADLINE_S=520 KERNEL_NS=16 STACKED_NS=16 STACKED_VARIANTS=stacked:16:trainer.eval_batch_size=16000 benchmarks/gpu_report.sh $OUT/gpu info tests stacked stack_kernels stacked_profile
EOF
