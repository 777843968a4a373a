"""The KRR objective: closed form, its gradient, and its limits."""

import pytest
import torch

from hf_ssdd.learners import ConvNet
from hf_ssdd.methods.krr_st.krr import SOLVERS, krr_loss, krr_predict, resolve_solver, with_bias


def test_with_bias_appends_a_column_of_ones():
    phi = with_bias(torch.randn(5, 3))
    assert phi.shape == (5, 4)
    assert torch.equal(phi[:, -1], torch.ones(5))


def test_prediction_matches_the_primal_ridge_solution():
    """Dual K_xs (K_ss + λI)⁻¹ Y equals primal Φ_x (Φ_sᵀΦ_s + λI)⁻¹ Φ_sᵀ Y."""
    g = torch.Generator().manual_seed(0)
    phi_s, phi_x, y_s = (torch.randn(*s, generator=g, dtype=torch.float64) for s in [(6, 9), (4, 9), (6, 3)])
    ridge = 1e-2
    lam = ridge * torch.trace(phi_s @ phi_s.T)
    primal = phi_x @ torch.linalg.inv(phi_s.T @ phi_s + lam * torch.eye(9, dtype=torch.float64)) @ phi_s.T @ y_s
    torch.testing.assert_close(krr_predict(phi_s, phi_x, y_s, ridge), primal)


def test_interpolates_its_support_set_as_ridge_vanishes():
    phi_s, y_s = torch.randn(5, 20, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(krr_predict(phi_s, phi_s, y_s, ridge=1e-12), y_s, atol=1e-6, rtol=0)
    assert not torch.allclose(krr_predict(phi_s, phi_s, y_s, ridge=1.0), y_s, atol=1e-2)


def test_invariant_to_feature_scale_without_bias():
    """λ relative to tr(K_ss) makes the prediction independent of the scale of the features."""
    phi_s, phi_x, y_s = (torch.randn(*s, dtype=torch.float64) for s in [(6, 10), (3, 10), (6, 2)])
    torch.testing.assert_close(krr_predict(phi_s, phi_x, y_s, 1e-3), krr_predict(7 * phi_s, 7 * phi_x, y_s, 1e-3))


def test_gradient_wrt_images_and_targets_matches_finite_differences():
    """d loss / d(X_s, Y_s) through a ConvNet, float64, with λ held at its value (as the method defines it)."""
    torch.manual_seed(0)
    net = ConvNet(channels=1, resolution=8, depth=2, width=4, norm="batch", out_features=3).double().eval()
    net.requires_grad_(False)
    x_s = torch.randn(4, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    y_s = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    x, y = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    ridge = 1e-3
    phi_x = with_bias(net.embed(x))

    loss = krr_loss(with_bias(net.embed(x_s)), phi_x, y_s, y, ridge)
    grad_x, grad_y = torch.autograd.grad(loss, (x_s, y_s))

    lam = ridge * torch.trace(with_bias(net.embed(x_s)) @ with_bias(net.embed(x_s)).T).detach()

    def reference(xs, ys):  # naive: explicit inverse, fixed λ
        phi = with_bias(net.embed(xs))
        pred = phi_x @ phi.T @ torch.linalg.inv(phi @ phi.T + lam * torch.eye(4, dtype=torch.float64)) @ ys
        return ((pred - y) ** 2).mean()

    eps = 1e-6
    for tensor, grad, args in ((x_s, grad_x, 0), (y_s, grad_y, 1)):
        flat = tensor.detach().clone().reshape(-1)
        numeric = torch.empty_like(flat)
        for k in range(flat.numel()):
            up, down = flat.clone(), flat.clone()
            up[k] += eps
            down[k] -= eps
            fixed = [x_s.detach(), y_s.detach()]
            point = lambda v: fixed[:args] + [v.view_as(tensor)] + fixed[args + 1:]  # noqa: E731
            numeric[k] = (reference(*point(up)) - reference(*point(down))) / (2 * eps)
        torch.testing.assert_close(grad.reshape(-1), numeric, rtol=1e-4, atol=1e-7)
    assert grad_x.abs().sum() > 0 and grad_y.abs().sum() > 0


@pytest.mark.parametrize("m, q", [(6, 20), (20, 6)])  # fewer images than features, and more
@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_gives_the_reference_loss_and_gradients(solver, m, q):
    g = torch.Generator().manual_seed(m)
    phi_s = torch.randn(m, q, generator=g, dtype=torch.float64, requires_grad=True)
    y_s = torch.randn(m, 3, generator=g, dtype=torch.float64, requires_grad=True)
    phi_x, y = torch.randn(8, q, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64)
    ridge = 1e-3

    def loss_and_grads(s):
        loss = krr_loss(phi_s, phi_x, y_s, y, ridge, s)
        return (loss, *torch.autograd.grad(loss, (phi_s, y_s)))

    for got, want in zip(loss_and_grads(solver), loss_and_grads("reference")):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_auto_is_accurate_in_float32_at_the_method_ridge():
    """At λ = 1e-6 tr(K), `auto` in float32 stays within 1e-5 of float64 on both sides of m = q. The general solve
    of the reference is that accurate only while m <= q: beyond, K_ss is rank-deficient and it loses ~3 digits."""
    g = torch.Generator().manual_seed(0)
    for m, q in [(50, 129), (300, 129)]:
        phi_s, phi_x = torch.randn(m, q, generator=g).relu(), torch.randn(64, q, generator=g).relu()
        y_s = torch.randn(m, 16, generator=g)
        exact = krr_predict(phi_s.double(), phi_x.double(), y_s.double(), 1e-6, "reference")

        def error(solver):
            got = krr_predict(phi_s, phi_x, y_s, 1e-6, solver)
            assert got.dtype == torch.float32
            return ((got.double() - exact).norm() / exact.norm()).item()

        assert error("auto") < 1e-5
        assert (error("reference") < 1e-5) == (m <= q)


def test_low_precision_features_are_solved_in_float32():
    phi_s, phi_x, y_s = torch.randn(6, 10), torch.randn(3, 10), torch.randn(6, 2)
    got = krr_predict(phi_s.bfloat16(), phi_x.bfloat16(), y_s, 1e-3)
    assert got.dtype == torch.float32
    want = krr_predict(phi_s.bfloat16().float(), phi_x.bfloat16().float(), y_s, 1e-3)
    torch.testing.assert_close(got, want)


def test_auto_solves_in_the_primal_only_when_features_are_fewer_than_images():
    assert resolve_solver("auto", m=1000, q=129) == "primal"
    assert resolve_solver("auto", m=100, q=129) == "dual"
    assert resolve_solver("reference", m=1000, q=129) == "reference"
    with pytest.raises(ValueError, match="not one of"):
        resolve_solver("lu", m=1, q=1)
