#!/usr/bin/env bash
# The Fashion-MNIST benchmark of the README, from whatever is already there: the teacher (cached), the distilled sets
# at m = 10 and 100 (resumed from their last checkpoint if a run was cut short), then every method x target x seed.
# Every stage skips what is done, so rerunning after an interruption continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
HF="${HF_SSDD:-.venv/bin/hf-ssdd}"

if [ ! -f outputs/fashion-mnist-teacher/config.json ]; then
  "$HF" train-teacher --config recipes/configs/fashion_mnist_teacher.yaml --overwrite_output_dir
fi
for m in 10 100; do
  out="outputs/fashion-mnist-krr-st-m$m"
  if [ ! -f "$out/README.md" ]; then
    resume=()
    if compgen -G "$out/checkpoint-*" > /dev/null; then resume=(--resume_from_checkpoint latest); fi
    "$HF" distill --config recipes/configs/fashion_mnist.yaml --num_synthetic "$m" --output_dir "$out" "${resume[@]}"
  fi
done
"$HF" benchmark --config benchmarks/fashion_mnist.yaml
