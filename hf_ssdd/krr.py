"""The inner problem of KRR-ST in closed form: kernel ridge regression from synthetic features to targets.

With `Φ_s = [f(X_s), 1]` `(m, p + 1)` and `Φ_x = [f(x), 1]` `(n, p + 1)`, the learner's linear head fitted to
`(X_s, Y_s)` predicts `ŷ = K_xs (K_ss + λ I)⁻¹ Y_s` on real images, with `K_ss = Φ_s Φ_sᵀ`, `K_xs = Φ_x Φ_sᵀ`.
The outer loss is the MSE between `ŷ` and the teacher's `y`. Because the inner solution is exact and deterministic,
its gradient with respect to `X_s` (through `Φ_s`) and `Y_s` is exact, unlike an SSL loss inside a bilevel problem.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def with_bias(features: torch.Tensor) -> torch.Tensor:
    """`(n, p)` -> `(n, p + 1)`: append a constant 1, the bias of the linear head."""
    return torch.cat([features, features.new_ones(features.shape[0], 1)], dim=1)


def krr_predict(phi_s: torch.Tensor, phi_x: torch.Tensor, y_s: torch.Tensor, ridge: float = 1e-6) -> torch.Tensor:
    """Kernel ridge regression prediction `(n, d)` for `phi_s (m, q)`, `phi_x (n, q)`, `y_s (m, d)`.

    `λ = ridge * tr(K_ss)` makes the regulariser scale-free; it is treated as a constant (no gradient).
    """
    k_ss = phi_s @ phi_s.T  # (m, m)
    k_xs = phi_x @ phi_s.T  # (n, m)
    lam = ridge * torch.trace(k_ss).detach()
    eye = torch.eye(k_ss.shape[0], dtype=k_ss.dtype, device=k_ss.device)
    alpha = torch.linalg.solve(k_ss + lam * eye, y_s)  # (m, d)
    return k_xs @ alpha


def krr_loss(
    phi_s: torch.Tensor, phi_x: torch.Tensor, y_s: torch.Tensor, y_x: torch.Tensor, ridge: float = 1e-6
) -> torch.Tensor:
    """Mean squared error between the KRR prediction on the real batch and the teacher's targets `y_x (n, d)`."""
    return F.mse_loss(krr_predict(phi_s, phi_x, y_s, ridge), y_x)
