"""Metrics that work offline: `evaluate` modules shipped in this folder, and the label-free representation score.

The label-free score asks how well a learner pre-trained on a (distilled) set reproduces the teacher's
representations of held-out real images: what KRR-ST optimises, measurable without a single label.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import ConfigError

METRICS_DIR = Path(__file__).parent


def metric_path(name: str) -> str:
    """Path of a shipped `evaluate` module, for `evaluate.load(metric_path("accuracy"))`."""
    path = METRICS_DIR / name / f"{name}.py"
    if not path.is_file():
        shipped = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ConfigError(f"metric {name!r} is not shipped with hf-ssdd; available: {', '.join(shipped)}.")
    return str(path.parent)


def representation_r2(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination of `predicted (n, d)` against `target (n, d)`, pooled over all `d` dimensions.

    `1 - Σ (target - predicted)² / Σ (target - mean_over_n(target))²`: 1 for a perfect reproduction, 0 for predicting
    each dimension's mean, negative for worse.
    """
    if predicted.shape != target.shape or target.ndim != 2:
        raise ValueError(
            f"need two (n, d) tensors of one shape, got {tuple(predicted.shape)} and {tuple(target.shape)}"
        )
    predicted, target = predicted.double(), target.double()
    residual = (target - predicted).pow(2).sum()
    total = (target - target.mean(0)).pow(2).sum()
    return float(1 - residual / total)
