"""MKDT's inner problem unrolled: SGD on the synthetic set from an expert's weights, and how far it lands from the
expert's later weights.

From `θ_0 = θ*_s` (the expert after `s` epochs), `N` plain SGD steps on mini-batches `B_i` of `(X_s, Y_s)` with the
learnable step size `η`,

    θ_{i+1} = θ_i - η ∇_θ MSE(f(X_s[B_i]; θ_i), Y_s[B_i]),

kept differentiable in `X_s`, `Y_s` and `η` (`create_graph`), then

    L = ||θ_N - θ*_{s+M}||² / ||θ*_s - θ*_{s+M}||²,

summed over every parameter of the network, its head included. The network runs functionally
(`torch.func.functional_call`): parameters are a `{name: tensor}` dict, so no module is mutated and any `nn.Module`
works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Params = dict[str, torch.Tensor]


def unroll(model: nn.Module, start: Params, x_s: torch.Tensor, y_s: torch.Tensor, step_size: torch.Tensor,
           batches: list[torch.Tensor]) -> Params:
    """`θ_N` after one SGD step per batch of indices in `batches`, from `start`; differentiable in `x_s`
    `(m, C, H, W)`, `y_s` `(m, d)` and `step_size` (a 0-d tensor). `model` gives the architecture only."""
    from torch.func import functional_call

    params = {name: p.detach().requires_grad_(True) for name, p in start.items()}
    for indices in batches:
        loss = F.mse_loss(functional_call(model, params, (x_s[indices],)), y_s[indices])
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = {name: p - step_size * g for (name, p), g in zip(params.items(), grads)}
    return params


def squared_distance(a: Params, b: Params) -> torch.Tensor:
    """`Σ ||a - b||²` over every parameter of the two dicts."""
    return sum(((a[name] - b[name]) ** 2).sum() for name in a)


def matching_loss(final: Params, start: Params, target: Params) -> torch.Tensor:
    """`||θ_N - θ*_{s+M}||² / ||θ*_s - θ*_{s+M}||²`: 1 where the unroll stays at the start, 0 where it lands on the
    expert's later weights."""
    return squared_distance(final, target) / squared_distance(start, target).detach()


def inner_batches(m: int, batch_size: int, steps: int, generator: torch.Generator) -> list[torch.Tensor]:
    """`steps` batches of indices into the synthetic set: consecutive chunks of fresh permutations of `m` drawn from
    `generator` (a pass's last chunk shorter where `batch_size` does not divide `m`, as MKDT's)."""
    batches = []
    while len(batches) < steps:
        batches += list(torch.randperm(m, generator=generator).split(batch_size))
    return batches[:steps]
