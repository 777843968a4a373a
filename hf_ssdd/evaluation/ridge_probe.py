"""The ridge-probe R²: how well a linear map from a model's frozen features reproduces the teacher's."""

from __future__ import annotations

import torch


def ridge_r2(features: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-3) -> float:
    """R² on the second half of a ridge regression `features (n, p) -> targets (n, d)` fitted on the first half.

    Features are standardised on the fitting half; `ridge` is relative to the mean eigenvalue of the Gram matrix.
    """
    from ..metrics import representation_r2

    half = len(features) // 2
    mean, std = features[:half].mean(0), features[:half].std(0).clamp_min(1e-6)
    phi = (features.double() - mean.double()) / std.double()
    phi = torch.cat([phi, torch.ones(len(phi), 1, dtype=phi.dtype)], 1)
    fit, test = phi[:half], phi[half:]
    gram = fit @ fit.T  # (n/2, n/2): cheaper than p x p when p is large
    alpha = torch.linalg.solve(gram + ridge * gram.trace() / len(gram) * torch.eye(len(gram), dtype=gram.dtype),
                               targets[:half].double())
    return representation_r2((test @ fit.T @ alpha).float(), targets[half:])
