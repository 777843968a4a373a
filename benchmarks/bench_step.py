"""bench_step: seconds per outer step, optimised against the reference mode, and against the floor.

    python benchmarks/bench_step.py [--quick] [--bf16] [--steps N]
    python benchmarks/bench_step.py --method mkdt --authors_src /path/to/MKDT [--quick]   (bench_step_mkdt.py)

KRR-ST (the default):

Two workloads, each timed side by side in one run (machines are noisy; only ratios measured together count):

- `fashion-mnist`: the README's recipe (28x28 grey, ConvNet-3 32-64-128, m = 100, n = 256, its ResNet teacher);
- `cifar-like`: 32x32 RGB, the paper's ConvNet-3 (128-256-512), m = 1000, n = 256, a ViT-Tiny teacher at 224x224.

`reference` is the authors' step (`--reference true`: the teacher on every batch, one pass, general solve, float32);
`optimised` reads the teacher's targets from a cache of fixed views (`--teacher_views`), lets the planner size the
chunks, picks the KRR form, and with `--bf16` runs the forwards in bf16. The floor is the learner work no step can
avoid, timed alone on the same model: a forward of the real batch, a forward and backward through `X_s` for the
outer gradient, and the pool learner's own training step. Each part of the optimised step is also timed alone (a
profile). The last line is the headline.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from workloads import ROOT, cifar_like_source, fashion_mnist_teacher, new_distiller, vit_tiny_teacher

from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.methods.krr_st.distiller import KRRSTDistiller
from hf_ssdd.parsing import parse_config


def synchronize() -> None:
    if torch.accelerator.is_available():
        torch.accelerator.synchronize()


def seconds_per_call(fn, repeats: int) -> float:
    fn()  # warm-up: allocations, caches, lazy initialisation
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize()
    return (time.perf_counter() - start) / repeats


def distiller(cfg: KRRSTConfig, out: Path) -> KRRSTDistiller:
    return new_distiller(dataclasses.replace(cfg, output_dir=str(out), report_to="none"))


def floor_step(d: KRRSTDistiller):
    """The learner work of one step, without the teacher, the KRR algebra, data loading or bookkeeping."""
    model, acc = d.pool.models[0], d.accelerator
    x, _ = d.real_batch(0)

    def work():
        model.eval().requires_grad_(False)
        with acc.autocast():
            with torch.no_grad():
                model.embed(x)
            model.embed(d.x_s).float().sum().backward()
        model.requires_grad_(True)
        with acc.autocast():
            d.pool.train_step(0, d.x_s, d.y_s)

    return work


def profile(d: KRRSTDistiller, repeats: int) -> dict[str, float]:
    """Seconds of each part of the optimised step, timed one by one on the same state."""
    from hf_ssdd.methods.krr_st.distiller import embed
    from hf_ssdd.methods.krr_st.krr import krr_loss

    cfg, acc, model = d.cfg, d.accelerator, d.pool.models[0]
    x, y = d.real_batch(0)
    model.eval().requires_grad_(False)
    with acc.autocast():
        with torch.no_grad():
            phi_x = embed(model, x, cfg.feature_chunk_size)
        phi_s = embed(model, d.x_s, cfg.feature_chunk_size).detach().requires_grad_()

    def synthetic():
        with acc.autocast():
            embed(model, d.x_s, cfg.feature_chunk_size).float().sum().backward()

    def kernel():
        krr_loss(phi_s, phi_x, d.y_s, y, cfg.ridge, cfg.krr_solver).backward()

    def real_forward():
        with acc.autocast(), torch.no_grad():
            embed(model, x, cfg.feature_chunk_size)

    def pool():
        model.requires_grad_(True)
        with acc.autocast():
            d.pool.train_step(0, d.x_s, d.y_s)
        model.eval().requires_grad_(False)

    parts = {"real batch and its targets": lambda: d.real_batch(0), "learner on the real batch": real_forward,
             "learner on X_s, forward + backward": synthetic, "KRR solve, forward + backward": kernel,
             "pool learner's training step": pool}
    return {name: seconds_per_call(fn, repeats) for name, fn in parts.items()}


def workloads(quick: bool, folder: Path) -> dict[str, KRRSTConfig]:
    fashion = parse_config(KRRSTConfig, ["--config", str(ROOT / "recipes/configs/fashion_mnist.yaml")])
    fashion = dataclasses.replace(fashion, teacher=fashion_mnist_teacher(folder), pool_size=2,
                                  max_samples=10_000 if quick else None)
    cifar = KRRSTConfig(  # --quick: a quarter of the images and half the learner's width
        dataset=cifar_like_source(folder, 1024 if quick else 4096), teacher=vit_tiny_teacher(folder),
        num_synthetic=250 if quick else 1000, batch_size=256, learner_depth=3, learner_width=64 if quick else 128,
        pool_size=2, pool_steps=2, max_steps=1000,
    )
    return {"fashion-mnist": fashion, "cifar-like": cifar}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=tuple(RUNS), default="krr_st")
    parser.add_argument("--authors_src", help="mkdt: a checkout of jiayini1119/MKDT, timed against ours")
    parser.add_argument("--quick", action="store_true", help="fewer images to cache and fewer timed steps")
    parser.add_argument("--bf16", action="store_true", help="optimised forwards in bf16 (for GPUs)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per mode (default 2 quick, 5 full)")
    parser.add_argument("--teacher_views", type=int, default=2, help="views per real image in the teacher cache")
    args = parser.parse_args()
    if args.method == "mkdt" and not args.authors_src:
        parser.error("--method mkdt times ours against the authors' iteration: pass --authors_src")
    RUNS[args.method](args)


def run_krr_st(args: argparse.Namespace) -> None:
    steps = args.steps or (2 if args.quick else 5)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, cfg in workloads(args.quick, tmp).items():
            reference = distiller(dataclasses.replace(cfg, reference=True), tmp / f"{name}-reference")
            t_ref = seconds_per_call(reference.outer_step, steps)
            del reference
            optimised_cfg = dataclasses.replace(
                cfg, teacher_views=args.teacher_views, teacher_cache_dir=str(tmp / "cache"),
                mixed_precision="bf16" if args.bf16 else "no",
            )
            optimised = distiller(optimised_cfg, tmp / f"{name}-optimised")
            t_opt = seconds_per_call(optimised.outer_step, steps)
            t_floor = seconds_per_call(floor_step(optimised), steps)
            parts = profile(optimised, steps)
            device = str(optimised.accelerator.device)
            rows.append((name, device, t_ref, t_opt, t_floor, optimised.cfg))
            print(f"{name}, optimised step by part:", ", ".join(f"{k} {v:.3f} s" for k, v in parts.items()))
            del optimised
            print(f"{name}: reference {t_ref:.3f} s, optimised {t_opt:.3f} s, floor {t_floor:.3f} s", flush=True)

    print("\n| workload | device | reference s/step | optimised s/step | reference/optimised | floor s | step/floor |")
    print("|---|---|---|---|---|---|---|")
    for name, device, t_ref, t_opt, t_floor, cfg in rows:
        workload = f"{name} (m={cfg.num_synthetic}, width {cfg.learner_width}, chunk {cfg.feature_chunk_size})"
        print(f"| {workload} | {device} | {t_ref:.3f} | {t_opt:.3f} | {t_ref / t_opt:.2f}x | {t_floor:.3f} | "
              f"{t_opt / t_floor:.2f} |")
    name, _, t_ref, t_opt, t_floor, _ = rows[-1]
    worst = max(r[3] / r[4] for r in rows)
    print(f"bench_step: reference/optimised = {t_ref / t_opt:.2f}x ({name}), "
          f"step/floor = {worst:.2f} worst of {len(rows)} (target <= 1.3)")


def run_mkdt(args: argparse.Namespace) -> None:
    from bench_step_mkdt import run

    run(args)


RUNS = {"krr_st": run_krr_st, "mkdt": run_mkdt}

if __name__ == "__main__":
    main()
