"""Learners: the small ConvNets of the paper, the feature maps `f` whose kernel KRR-ST regresses with."""

from __future__ import annotations

import torch
from torch import nn

NORMS = {
    "batch": lambda c: nn.BatchNorm2d(c),
    "instance": lambda c: nn.GroupNorm(c, c, affine=True),
    "none": lambda c: nn.Identity(),
}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class ConvNet(nn.Module):
    """ConvNet-D: D blocks of conv 3x3 -> norm -> ReLU -> 2x2 pool, channels `width * 2**i`, then flatten.

    ConvNet-3 (width 128: 128-256-512) is the paper's learner for 32x32 images, ConvNet-4 (width 64) for 64x64.

    Example:
        >>> net = ConvNet(channels=3, resolution=32, depth=3, width=128, out_features=512)
        >>> net.embed(torch.randn(2, 3, 32, 32)).shape  # (n, p) with p = 512 * 4 * 4
        torch.Size([2, 8192])
    """

    def __init__(
        self,
        channels: int,
        resolution: int,
        depth: int = 3,
        width: int = 128,
        norm: str = "batch",
        pooling: str = "avg",
        out_features: int | None = None,
    ):
        super().__init__()
        if resolution >> depth < 1:
            raise ValueError(f"resolution={resolution} is too small for depth={depth} (halved {depth} times).")
        layers, c_in = [], channels
        for i in range(depth):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), NORMS[norm](c_out), nn.ReLU(), POOLS[pooling](2)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = c_in * (resolution >> depth) ** 2
        self.head = nn.Linear(self.feature_dim, out_features) if out_features else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """`(n, C, H, W)` -> features `(n, p)`."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(n, C, H, W)` -> head output `(n, out_features)`."""
        return self.head(self.embed(x))
