#!/usr/bin/env bash
# The paper's benchmark for one source (Lee et al., ICLR 2024, Tables 1-3), end to end:
# teacher (train-teacher, or import-teacher of the authors' checkpoint) -> distill -> benchmark.
#
#   bash recipes/paper/run.sh cifar100|tinyimagenet|imagenet64
#   TEACHER_CHECKPOINT=barlow_twins_resnet18_cifar100.pt bash recipes/paper/run.sh cifar100
#
# Configs: recipes/configs/paper/SOURCE/{teacher,distill,benchmark}.yaml. Training stages run under `accelerate
# launch` without a launcher config, so accelerate starts one process per visible GPU (multi-GPU when there are
# several; CUDA_VISIBLE_DEVICES picks them) and one CPU process when there is none. A default launcher config of
# `accelerate config` (under $HF_HOME/accelerate) would win: use ACCELERATE="accelerate launch --config_file F".
#
# Resumable: outputs go to OUTPUT_ROOT/SOURCE/{teacher,distilled,benchmark}; a finished teacher or distilled set is
# skipped, an interrupted distillation resumes from its last checkpoint and the benchmark from its last result
# (a teacher's training restarts). After a failure, fix what the message names and rerun the same command.
#
# Environment:
#   OUTPUT_ROOT          where the outputs go (default outputs/paper)
#   TEACHER_CHECKPOINT   a Barlow Twins ResNet-18 .pt of the authors': imported instead of training a teacher
#   TEACHER_ARGS, DISTILL_ARGS, BENCHMARK_ARGS   extra `--key value` overrides of each stage, quoted as in a shell
#                        (e.g. DISTILL_ARGS='--max_steps 100' for a smoke run)
#   HF_SSDD              the hf-ssdd command (default .venv/bin/hf-ssdd; its python runs the recipes)
#   ACCELERATE           the launcher (default: accelerate launch, from the same environment)
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "run.sh: error: $*" >&2; exit 2; }

source_name="${1:-}"
case "$source_name" in
  cifar100 | tinyimagenet | imagenet64) ;;
  *) fail "source '${source_name}' is not one of cifar100, tinyimagenet, imagenet64 (usage: run.sh SOURCE)." ;;
esac
HF="${HF_SSDD:-.venv/bin/hf-ssdd}"
[ -x "$HF" ] || command -v "$HF" > /dev/null || fail "$HF not found; run scripts/setup.sh or set HF_SSDD."
bin="$(dirname "$(command -v "$HF")")"
read -r -a launch <<< "${ACCELERATE:-$bin/accelerate launch}"
configs="recipes/configs/paper/$source_name"
root="${OUTPUT_ROOT:-outputs/paper}/$source_name"
eval "teacher_args=(${TEACHER_ARGS:-})"
eval "distill_args=(${DISTILL_ARGS:-})"
eval "benchmark_args=(${BENCHMARK_ARGS:-})"
if [ -n "${TEACHER_CHECKPOINT:-}" ] && [ ! -f "$TEACHER_CHECKPOINT" ]; then
  fail "TEACHER_CHECKPOINT=$TEACHER_CHECKPOINT is not a file; give the path of the authors' .pt, or unset it to train."
fi
stage() {  # stage NAME COMMAND...: run it, or stop with the stage's name
  echo "run.sh: $1: ${*:2}"
  "${@:2}" || fail "the $1 stage failed (exit $?); fix what it printed above and rerun: finished stages are skipped."
}

teacher="$root/teacher"
if [ -f "$teacher/config.json" ]; then
  echo "run.sh: teacher: $teacher is finished, skipped"
elif [ -n "${TEACHER_CHECKPOINT:-}" ]; then
  # the architecture and input the checkpoint expects, from the teacher config of this source
  expected=$("$bin/python" -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1]))
print("--arch", c["arch"], "--stem", c["stem"], "--image_size", c["resolution"], "--image_mean", *c["mean"],
      "--image_std", *c["std"])' "$configs/teacher.yaml") || fail "cannot read $configs/teacher.yaml."
  read -r -a imported <<< "$expected"
  stage teacher "$HF" import-teacher "$TEACHER_CHECKPOINT" "${imported[@]}" --output_dir "$teacher" \
    "${teacher_args[@]}"
else
  stage teacher "${launch[@]}" recipes/train_teacher.py --config "$configs/teacher.yaml" --output_dir "$teacher" \
    --overwrite_output_dir true "${teacher_args[@]}"
fi

distilled="$root/distilled"
if [ -f "$distilled/README.md" ]; then
  echo "run.sh: distill: $distilled is finished, skipped"
else
  start=(--overwrite_output_dir true)
  if compgen -G "$distilled/checkpoint-*" > /dev/null; then start=(--resume_from_checkpoint latest); fi
  stage distill "${launch[@]}" recipes/distill.py --config "$configs/distill.yaml" --teacher "$teacher" \
    --output_dir "$distilled" "${start[@]}" "${distill_args[@]}"
fi

stage benchmark "${launch[@]}" recipes/benchmark.py --config "$configs/benchmark.yaml" --distilled "[$distilled]" \
  --teacher "$teacher" --output_dir "$root/benchmark" "${benchmark_args[@]}"
echo "run.sh: done: $root/benchmark/results.md"
