#!/usr/bin/env bash
# The Fashion-MNIST data-efficiency benchmark of the README, from whatever is already there: the distilled sets at
# m = 10, 100 and 1,000 with the committed teacher (resumed from their last checkpoint if a run was cut short), then
# every method x target x seed. Every stage skips what is done, so rerunning after an interruption continues.
# The pool horizon is the recipe's 100 steps at m = 10 and 100, and 300 at m = 1,000, chosen on the source's
# label-free scores (benchmarks/README.md, "Why distilled's head R² falls below init's at m = 1,000").
set -euo pipefail
cd "$(dirname "$0")/.."
HF="${HF_SSDD:-.venv/bin/hf-ssdd}"
TEACHER=benchmarks/teachers/fashion-mnist-barlow-twins

declare -A POOL_STEPS=([10]=100 [100]=100 [1000]=300)
for m in 10 100 1000; do
  out="outputs/fashion-mnist-krr-st-m$m"
  if [ ! -f "$out/README.md" ]; then
    resume=()
    if compgen -G "$out/checkpoint-*" > /dev/null; then resume=(--resume_from_checkpoint latest); fi
    "$HF" distill --config recipes/configs/fashion_mnist.yaml --teacher "$TEACHER" --num_synthetic "$m" \
      --pool_steps "${POOL_STEPS[$m]}" --output_dir "$out" "${resume[@]}"
  fi
done
"$HF" benchmark --config benchmarks/fashion_mnist.yaml
