"""bench_precision: does bf16 follow float32? Outer-loss curves on the Fashion-MNIST recipe, against seed noise.

    python benchmarks/bench_precision.py [--quick] [--steps N]

Three runs of the README's recipe (m = 100): float32 with seed 0, float32 with seed 1 (the noise: what changing
nothing but the random draws does to the curve), and bf16 forwards with seed 0 (the KRR solve stays float32). It
prints the mean absolute gap between smoothed curves, bf16 vs float32 beside seed 1 vs seed 0, and draws the curves
to `benchmarks/results/precision.png`. The last line is the headline.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import torch
from workloads import ROOT, fashion_mnist_teacher, new_distiller

from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.parsing import parse_config


def curve(cfg: KRRSTConfig, steps: int) -> list[float]:
    from tqdm.auto import tqdm

    d = new_distiller(cfg)
    return [d.outer_step() for _ in tqdm(range(steps), desc=f"{cfg.mixed_precision} seed {cfg.seed}")]


def smooth(values: list[float], window: int = 20) -> torch.Tensor:
    x = torch.tensor(values)
    return torch.nn.functional.avg_pool1d(x.view(1, 1, -1), min(window, len(values)), stride=1).flatten()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 steps instead of 200, a pool of 2 instead of 10")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    steps = args.steps or (40 if args.quick else 200)

    base = parse_config(KRRSTConfig, ["--config", str(ROOT / "recipes/configs/fashion_mnist.yaml")])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = dataclasses.replace(base, teacher=fashion_mnist_teacher(tmp), max_steps=steps, report_to="none",
                                   pool_size=2 if args.quick else base.pool_size)  # --quick: a shorter pool warm-up
        runs = {
            "float32, seed 0": dataclasses.replace(base, output_dir=str(tmp / "a")),
            "float32, seed 1": dataclasses.replace(base, seed=1, output_dir=str(tmp / "b")),
            "bf16, seed 0": dataclasses.replace(base, mixed_precision="bf16", output_dir=str(tmp / "c")),
        }
        curves = {name: curve(cfg, steps) for name, cfg in runs.items()}

    fp32, seed1, bf16 = (smooth(c) for c in curves.values())
    noise, gap = (seed1 - fp32).abs().mean().item(), (bf16 - fp32).abs().mean().item()
    plot(curves, ROOT / "benchmarks" / "results" / "precision.png")
    for name, values in curves.items():
        print(f"{name}: first {values[0]:.4f}, mean of last 20 {sum(values[-20:]) / 20:.4f}")
    print(f"bench_precision: |bf16 - float32| = {gap:.4f}, |seed 1 - seed 0| = {noise:.4f} (smoothed outer loss, "
          f"{steps} steps): bf16 is {'within' if gap <= noise else 'outside'} seed noise")


def plot(curves: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=name, alpha=0.8, linewidth=1)
    ax.set(xlabel="outer step", ylabel="outer loss (MSE)", yscale="log",
           title="KRR-ST on Fashion-MNIST, m = 100: bf16 forwards vs float32")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
