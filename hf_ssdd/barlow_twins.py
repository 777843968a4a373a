"""Barlow Twins (Zbontar et al., ICML 2021): the loss, the projector, and two-view augmentation on batched tensors.

Two random views of each image go through the encoder and a projector; the loss drives the cross-correlation of the
two batches of projections towards the identity. The diagonal makes the views agree, the off-diagonal decorrelates
the features, so the representation cannot collapse to a constant.

Example:
    >>> augment = SSLAugmentation()
    >>> generator = torch.Generator().manual_seed(0)
    >>> x = torch.rand(8, 1, 28, 28)  # (n, C, H, W) in [0, 1]
    >>> head = projector(16, (32, 32, 32))
    >>> encode = lambda v: v.mean((2, 3)).repeat(1, 16)  # any encoder: (n, C, H, W) -> (n, 16)
    >>> z1, z2 = head(encode(augment(x, generator))), head(encode(augment(x, generator)))
    >>> barlow_twins_loss(z1, z2).shape
    torch.Size([])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import to_grey


# ---------------------------------------------------------------------------------------------------------------------
# Loss and projector
# ---------------------------------------------------------------------------------------------------------------------


def standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """`(n, D)` -> `(n, D)` with every feature at zero mean and unit (biased) variance over the batch."""
    return (z - z.mean(0)) / (z.var(0, unbiased=False) + eps).sqrt()


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambda_offdiag: float = 5e-3) -> torch.Tensor:
    """Barlow Twins loss of two views' projections `z1, z2: (n, D)` -> scalar.

    `c = standardize(z1)ᵀ standardize(z2) / n` is the `(D, D)` cross-correlation of the features over the batch;
    the loss is `Σ_i (1 - c_ii)² + lambda_offdiag · Σ_{i≠j} c_ij²`. It is zero exactly when the two views give
    the same features and the features are uncorrelated with one another.
    """
    n = z1.shape[0]
    c = standardize(z1).T @ standardize(z2) / n  # (D, D)
    on_diag = (1 - c.diagonal()).pow(2).sum()
    off_diag = c.pow(2).sum() - c.diagonal().pow(2).sum()
    return on_diag + lambda_offdiag * off_diag


def projector(in_features: int, dims: tuple[int, ...] = (2048, 2048, 2048)) -> nn.Sequential:
    """The MLP on top of the encoder during training only: (Linear-BN-ReLU) for every dim but the last, then Linear.

    `(n, in_features)` -> `(n, dims[-1])`. Barlow Twins uses (8192, 8192, 8192) on ImageNet; the loss benefits from
    a wide output, but it costs `O(D²)` per step.
    """
    layers, width = [], in_features
    for dim in dims[:-1]:
        layers += [nn.Linear(width, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
        width = dim
    layers.append(nn.Linear(width, dims[-1], bias=False))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------------------------------------
# Two-view augmentation
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSLAugmentation:
    """One random view per image of a batch, with per-image parameters drawn from a passed generator.

    Random resized crop (area fraction in `scale`, aspect ratio in `ratio`, bilinear resampling to `size`), horizontal
    flip, and, with probability `jitter_prob`, brightness / contrast (and saturation for RGB) jitter by factors in
    `[1 - s, 1 + s]`; RGB views turn grey with probability `grayscale_prob`. All on whole batches: the crop and flip are
    one affine map per image (`F.affine_grid` + `F.grid_sample`), the colour changes are broadcast arithmetic.
    """

    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2

    def __call__(self, x: torch.Tensor, generator: torch.Generator, size: int | None = None) -> torch.Tensor:
        """`(n, C, H, W)` pixels in [0, 1] -> a view `(n, C, size, size)` in [0, 1] (`size` defaults to `H`)."""
        n, c, h, _ = x.shape
        x = self.crop_and_flip(x, generator, size or h)
        x = self.jitter(x, generator)
        if c == 3:
            grey = torch.rand(n, generator=generator) < self.grayscale_prob
            x = torch.where(grey.to(x.device).view(n, 1, 1, 1), _grey(x).expand_as(x), x)
        return x

    def crop_and_flip(self, x: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
        """`(n, C, H, W)` -> `(n, C, size, size)`: a random rectangle of each image, resampled, maybe mirrored."""
        n = x.shape[0]
        area = _uniform(n, *self.scale, generator)
        log_ratio = _uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), generator)
        width = (area * log_ratio.exp()).sqrt().clamp(max=1)  # fraction of the image side
        height = (area / log_ratio.exp()).sqrt().clamp(max=1)
        cx = _uniform(n, -1, 1, generator) * (1 - width)  # centre in [-1, 1] coordinates, crop inside the image
        cy = _uniform(n, -1, 1, generator) * (1 - height)
        mirror = torch.rand(n, generator=generator) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        zero = torch.zeros(n)
        theta = torch.stack(
            [torch.stack([width * (1 - 2 * mirror.float()), zero, cx], 1), torch.stack([zero, height, cy], 1)], 1
        )  # (n, 2, 3): output grid -> input coordinates
        grid = F.affine_grid(theta.to(x), [n, x.shape[1], size, size], align_corners=False)  # (n, size, size, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def jitter(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """`(n, C, H, W)` -> same: brightness, contrast (and saturation) scaled per image, clipped to [0, 1]."""
        n, c = x.shape[:2]
        apply = (torch.rand(n, generator=generator) < self.jitter_prob).float()

        def factor(strength):  # (n, 1, 1, 1): 1 where jitter is not applied
            return (1 + apply * _uniform(n, -strength, strength, generator)).to(x).view(n, 1, 1, 1)

        x = (x * factor(self.brightness)).clamp(0, 1)
        mean = _grey(x).mean((2, 3), keepdim=True)
        x = ((x - mean) * factor(self.contrast) + mean).clamp(0, 1)
        if c == 3:
            grey = _grey(x)
            x = ((x - grey) * factor(self.saturation) + grey).clamp(0, 1)
        return x


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """`(n, C, H, W)` -> luma `(n, 1, H, W)` (the image itself when C = 1)."""
    return x if x.shape[1] == 1 else to_grey(x)
