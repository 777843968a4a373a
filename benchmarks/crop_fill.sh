#!/usr/bin/env bash
# The padding of random crops, black (the authors') against the mean colour, on the Fashion-MNIST recipe: one
# distillation each (final outer loss), then the label-free score of a learner pre-trained on each set (seed 0).
#   bash benchmarks/crop_fill.sh        (~25 min on 2 CPU cores; the README's teacher is trained first if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
HF="${HF_SSDD:-.venv/bin/hf-ssdd}"

if [ ! -f outputs/fashion-mnist-teacher/config.json ]; then
  "$HF" train-teacher --config recipes/configs/fashion_mnist_teacher.yaml --overwrite_output_dir
fi
for fill in black mean; do
  out="outputs/crop-fill-$fill"
  if [ ! -f "$out/README.md" ]; then
    "$HF" distill --config recipes/configs/fashion_mnist.yaml --crop_fill "$fill" --output_dir "$out" \
      --overwrite_output_dir
  fi
  cat > "outputs/crop-fill-$fill.yaml" <<YAML
distilled: [$out]
teacher: outputs/fashion-mnist-teacher
output_dir: outputs/benchmark-crop-fill-$fill
methods: [distilled]
targets: [{dataset: fashion_mnist, name: fashion-mnist-1000, max_train_samples: 1000}]
protocols: [linear]
seeds: [0]
pretrain: {num_epochs: 1000, batch_size: 256, learning_rate: 0.1, momentum: 0.9, weight_decay: 1.0e-3}
linear: {max_steps: 500}
YAML
  "$HF" benchmark --config "outputs/crop-fill-$fill.yaml"
done
for fill in black mean; do
  echo "$fill: $(grep -m1 'final_loss' "outputs/crop-fill-$fill/README.md")"
  cat "outputs/benchmark-crop-fill-$fill/results.jsonl"
done
