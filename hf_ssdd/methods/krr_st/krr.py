"""The inner problem of KRR-ST in closed form: kernel ridge regression from synthetic features to targets.

With `Φ_s = [f(X_s), 1]` `(m, q)` and `Φ_x = [f(x), 1]` `(n, q)`, `q = p + 1`, the learner's linear head fitted to
`(X_s, Y_s)` predicts `ŷ = K_xs (K_ss + λ I)⁻¹ Y_s` on real images, with `K_ss = Φ_s Φ_sᵀ`, `K_xs = Φ_x Φ_sᵀ`.
The outer loss is the MSE between `ŷ` and the teacher's `y`. Because the inner solution is exact and deterministic,
its gradient with respect to `X_s` (through `Φ_s`) and `Y_s` is exact, unlike an SSL loss inside a bilevel problem.

The same prediction has three forms, all differentiable:

- `reference`: the dual with a general linear solve, as the authors' code does: `O(m²q + m³)`.
- `dual`: `K_ss + λI` is symmetric positive definite, so a Cholesky factorisation replaces the general solve.
- `primal`: `ŷ = Φ_x (Φ_sᵀΦ_s + λI)⁻¹ Φ_sᵀ Y_s`, a `q x q` system, `O(mq² + q³)`: cheaper once `m > q`.

`auto` takes the primal when `q < m`, else the dual. The algebra always runs in at least float32, whatever precision
the features were computed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SOLVERS = ("auto", "dual", "primal", "reference")


def with_bias(features: torch.Tensor) -> torch.Tensor:
    """`(n, p)` -> `(n, p + 1)`: append a constant 1, the bias of the linear head."""
    return torch.cat([features, features.new_ones(features.shape[0], 1)], dim=1)


def solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a⁻¹ b` for a symmetric positive definite `a (k, k)` and `b (k, d)`; a general solve if `a` is not numerically
    positive definite."""
    factor, info = torch.linalg.cholesky_ex(a)
    if info.item():
        return torch.linalg.solve(a, b)
    return torch.cholesky_solve(b, factor)


def resolve_solver(solver: str, m: int, q: int) -> str:
    """The form `auto` stands for with `m` synthetic images and `q` features per image."""
    if solver not in SOLVERS:
        raise ValueError(f"krr solver {solver!r} is not one of {', '.join(SOLVERS)}.")
    if solver == "auto":
        return "primal" if q < m else "dual"
    return solver


def krr_predict(
    phi_s: torch.Tensor, phi_x: torch.Tensor, y_s: torch.Tensor, ridge: float = 1e-6, solver: str = "auto"
) -> torch.Tensor:
    """Kernel ridge regression prediction `(n, d)` for `phi_s (m, q)`, `phi_x (n, q)`, `y_s (m, d)`.

    `λ = ridge * tr(K_ss)` makes the regulariser scale-free; it is treated as a constant (no gradient).
    """
    with torch.autocast(phi_s.device.type, enabled=False):
        return _krr_predict(phi_s, phi_x, y_s, ridge, resolve_solver(solver, *phi_s.shape))


def _krr_predict(phi_s, phi_x, y_s, ridge, solver):
    dtype = torch.promote_types(phi_s.dtype, torch.float32)
    phi_s, phi_x, y_s = phi_s.to(dtype), phi_x.to(dtype), y_s.to(dtype)
    m, q = phi_s.shape
    lam = ridge * phi_s.detach().square().sum()  # tr(Φ_s Φ_sᵀ) = tr(Φ_sᵀ Φ_s)
    if solver == "primal":
        gram = phi_s.T @ phi_s + lam * torch.eye(q, dtype=dtype, device=phi_s.device)
        return phi_x @ solve_spd(gram, phi_s.T @ y_s)
    k_ss = phi_s @ phi_s.T + lam * torch.eye(m, dtype=dtype, device=phi_s.device)
    alpha = torch.linalg.solve(k_ss, y_s) if solver == "reference" else solve_spd(k_ss, y_s)
    return (phi_x @ phi_s.T) @ alpha


def krr_loss(
    phi_s: torch.Tensor,
    phi_x: torch.Tensor,
    y_s: torch.Tensor,
    y_x: torch.Tensor,
    ridge: float = 1e-6,
    solver: str = "auto",
) -> torch.Tensor:
    """Mean squared error between the KRR prediction on the real batch and the teacher's targets `y_x (n, d)`."""
    predicted = krr_predict(phi_s, phi_x, y_s, ridge, solver)
    return F.mse_loss(predicted, y_x.to(predicted.dtype))
