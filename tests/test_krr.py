"""The KRR objective: closed form, its gradient, and its limits."""

import torch

from hf_ssdd.krr import krr_loss, krr_predict, with_bias
from hf_ssdd.learners import ConvNet


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
    phi_s, phi_x, y_s = torch.randn(6, 10, dtype=torch.float64), torch.randn(3, 10, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
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
            point = lambda v: [x_s.detach(), y_s.detach()][:args] + [v.view_as(tensor)] + [x_s.detach(), y_s.detach()][args + 1:]
            numeric[k] = (reference(*point(up)) - reference(*point(down))) / (2 * eps)
        torch.testing.assert_close(grad.reshape(-1), numeric, rtol=1e-4, atol=1e-7)
    assert grad_x.abs().sum() > 0 and grad_y.abs().sum() > 0
