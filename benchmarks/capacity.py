"""capacity: the largest m that fits one process's memory on P accelerators, by the planner's formulas (not measured).

    python benchmarks/capacity.py [--gpus 8] [--gb 80]

For each resolution, the paper's ConvNet learner at that size, a ViT-B/16 teacher (768-d) with its targets read from
the teacher-view cache, n = 1024, the synthetic set sharded over the P processes, features and pool training in
chunks of 512. The teacher and learners are built with random weights on the CPU only to measure their sizes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from workloads import save_preprocessor

from hf_ssdd.learners import ConvNet
from hf_ssdd.memory import GB
from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.methods.krr_st.memory import plan_memory
from hf_ssdd.teachers import Teacher

LEARNERS = {32: (3, 128), 64: (4, 64), 128: (5, 64), 224: (5, 64)}  # side -> ConvNet (depth, width)


def vit_b_teacher(folder: Path) -> Teacher:
    from transformers import ViTConfig, ViTModel

    ViTModel(ViTConfig(), add_pooling_layer=False).save_pretrained(folder)
    save_preprocessor(folder, 224, [0.5] * 3, [0.5] * 3)
    return Teacher.from_pretrained(str(folder))


def largest_m(cfg: KRRSTConfig, learner, teacher, side: int, gpus: int, budget: int) -> tuple[int, object]:
    def plan(m):
        trial = KRRSTConfig(**{**cfg.__dict__, "num_synthetic": m})
        return plan_memory(trial, learner, teacher, (3, side, side), 0, torch.device("cuda"), gpus, budget)

    low, high = gpus, gpus
    while plan(high).fits:
        low, high = high, high * 2
    while high - low > gpus:
        mid = (low + high) // 2 // gpus * gpus
        low, high = (mid, high) if plan(mid).fits else (low, mid)
    return low, plan(low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--gb", type=float, default=80.0, help="memory of one accelerator")
    args = parser.parse_args()
    budget = int(0.9 * args.gb * GB)
    with tempfile.TemporaryDirectory() as tmp:
        teacher = vit_b_teacher(Path(tmp))
    print(f"| side | learner | p + 1 | largest m on {args.gpus} x {args.gb:g} GB | KRR system | biggest parts (GB) |")
    print("|---|---|---|---|---|---|")
    for side, (depth, width) in LEARNERS.items():
        learner = ConvNet(3, side, depth, width, out_features=teacher.dim)
        cfg = KRRSTConfig(teacher="vit-b", batch_size=1024, learner_depth=depth, learner_width=width,
                          teacher_views=10, shard_synthetic=True, feature_chunk_size=512, pool_chunk_size=512)
        m, plan = largest_m(cfg, learner, teacher, side, args.gpus, budget)
        system = next(k for k in plan.parts if k.startswith("KRR system"))
        top = sorted(plan.parts.items(), key=lambda kv: -kv[1])[:3]
        parts = ", ".join(f"{k} {v / GB:.1f}" for k, v in top)
        print(f"| {side} | ConvNet-{depth}, width {width} | {learner.feature_dim + 1} | {m:,} | {system} | {parts} |")


if __name__ == "__main__":
    main()
