"""MKDT's matching loss: gradients against finite differences, the unroll against plain SGD on a module, and what the
loss means at its ends."""

import copy

import pytest
import torch
import torch.nn.functional as F

from hf_ssdd.learners import ConvNet
from hf_ssdd.methods.mkdt.matching import inner_batches, matching_loss, squared_distance, unroll


def tiny_problem(dtype=torch.float32):
    """A ConvNet-1 (width 2, instance norm, head to 3) on 5 images of 1x4x4, with expert weights 2 epochs apart."""
    torch.manual_seed(0)
    model = ConvNet(1, 4, depth=1, width=2, norm="instance", out_features=3).to(dtype)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    target = {n: p + 0.1 * torch.randn_like(p) for n, p in start.items()}
    x_s = torch.randn(5, 1, 4, 4, dtype=dtype)
    y_s = torch.randn(5, 3, dtype=dtype)
    batches = inner_batches(5, 2, 3, torch.Generator().manual_seed(1))
    return model, start, target, x_s, y_s, batches


def test_the_gradient_in_images_targets_and_step_size_matches_finite_differences():
    model, start, target, x_s, y_s, batches = tiny_problem(torch.float64)

    def loss(x, y, eta):
        return matching_loss(unroll(model, start, x, y, eta, batches), start, target)

    inputs = (x_s.requires_grad_(), y_s.requires_grad_(), torch.tensor(0.3, dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-6)


def test_the_unroll_is_plain_sgd_on_the_synthetic_batches():
    """The naive reference: a copy of the module, torch.optim.SGD without momentum, one step per batch."""
    model, start, _, x_s, y_s, batches = tiny_problem()
    got = unroll(model, start, x_s, y_s, torch.tensor(0.3), batches)
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.3)
    for indices in batches:
        optimizer.zero_grad()
        F.mse_loss(reference(x_s[indices]), y_s[indices]).backward()
        optimizer.step()
    for name, p in reference.named_parameters():
        torch.testing.assert_close(got[name], p, rtol=1e-5, atol=1e-6)


def test_the_loss_is_one_where_the_unroll_stays_and_zero_where_it_lands_on_the_expert():
    model, start, target, x_s, y_s, batches = tiny_problem()
    stay = unroll(model, start, x_s, y_s, torch.tensor(0.0), batches)
    assert matching_loss(stay, start, target).item() == pytest.approx(1.0)
    assert matching_loss(target, start, target).item() == 0.0
    assert squared_distance(start, target) > 0


def test_inner_batches_cover_the_set_once_per_pass_in_a_seeded_order():
    batches = inner_batches(10, 4, 6, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    assert sorted(torch.cat(batches[:3]).tolist()) == list(range(10)) == sorted(torch.cat(batches[3:]).tolist())
    again = inner_batches(10, 4, 6, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
