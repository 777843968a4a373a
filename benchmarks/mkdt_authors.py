"""The authors' MKDT iteration, run from their own modules, for the fidelity check and the speed comparison.

`jiayini1119/MKDT` is a set of scripts; its matching iteration lives in the body of `distill.py` (lines 129-201 at
commit eaf200e). This module imports their network (`networks.ConvNet`) and their flat-parameter wrapper
(`reparam_module.ReparamModule`) from a checkout, and drives them as that script does: the expert's weights
flattened into one vector, `syn_steps` plain SGD steps through `ReparamModule(x, flat_param=...)` with
`torch.autograd.grad(..., create_graph=True)`, then `F.mse_loss(..., reduction="sum")` over the flat vectors, each
divided by the parameter count, their ratio the loss. The mini-batch order is given (theirs pops chunks of a
`torch.randperm`), so both implementations see the same batches.

    authors = AuthorsMKDT("/path/to/MKDT", channels=3, side=32, width=128, depth=3, dim=512)
    loss = authors.loss(start, target, x_s, y_s, step_size, batches)  # start, target: lists of tensors in order
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F


class AuthorsMKDT:
    """The authors' ConvNet (instance norm, ReLU, average pooling) in their `ReparamModule`, in train mode."""

    def __init__(self, source: str | Path, channels: int, side: int, width: int, depth: int, dim: int,
                 device: torch.device | str = "cpu"):
        source = Path(source)
        if not (source / "networks.py").is_file() or not (source / "reparam_module.py").is_file():
            raise SystemExit(f"--authors_src {source}: no networks.py and reparam_module.py there; give a checkout "
                             "of https://github.com/jiayini1119/MKDT.")
        sys.path.insert(0, str(source))
        from networks import ConvNet
        from reparam_module import ReparamModule

        net = ConvNet(channels, dim, width, depth, "relu", "instancenorm", "avgpooling", (side, side))
        self.shapes = [p.shape for p in net.parameters()]
        self.net = ReparamModule(net).to(device).train()
        self.num_params = sum(p.numel() for p in self.net.parameters())

    def loss(self, start: list[torch.Tensor], target: list[torch.Tensor], x_s: torch.Tensor, y_s: torch.Tensor,
             step_size: torch.Tensor, batches: list[torch.Tensor]) -> torch.Tensor:
        """The matching loss of one iteration from `start` to `target` (parameters in the network's order)."""
        target_flat = torch.cat([p.reshape(-1) for p in target])
        start_flat = torch.cat([p.reshape(-1) for p in start])
        student = [start_flat.clone().requires_grad_(True)]
        for indices in batches:
            out = self.net(x_s[indices], flat_param=student[-1])
            grad = torch.autograd.grad(F.mse_loss(out, y_s[indices]), student[-1], create_graph=True)[0]
            student.append(student[-1] - step_size * grad)
        param_loss = F.mse_loss(student[-1], target_flat, reduction="sum") / self.num_params
        param_dist = F.mse_loss(start_flat, target_flat, reduction="sum") / self.num_params
        return param_loss / param_dist
