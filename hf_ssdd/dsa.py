"""Differentiable siamese augmentation (DSA; Zhao & Bilen, ICML 2021): how the paper pre-trains on the sets that
supervised distillation methods make (images with class labels), and on the real subsets it compares them with.

Each batch draws one family of transformations, the same for every image of the batch, and each image its own
strength (DSA's default, "single" mode). The strengths are DSA's, in the learner's normalised space:

- color: brightness `+ U(-0.5, 0.5)`, then saturation (distance to the grey level `x U(0, 2)`), then contrast
  (distance to the image's mean `x U(0.5, 1.5)`);
- crop: translation by up to 1/8 of the side, padded with 0;
- cutout: a square of half the side, at a random centre, set to 0;
- flip: horizontal, with probability 1/2;
- scale: each axis by `U(1/1.2, 1.2)`;
- rotate: by `U(-15, 15)` degrees.

Every op is differentiable in the pixels (DSA applies the same draws to real and synthetic batches while matching
gradients); pre-training only needs the draws. They are made on the CPU for the whole global batch from one
generator, so every process slices the same draws (`views[local]`) whatever their number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BRIGHTNESS = 0.5  # half-width of the added brightness
SATURATION = (0.0, 2.0)
CONTRAST = (0.5, 1.5)
CROP_RATIO = 1 / 8  # largest shift, as a fraction of the side
CUTOUT_RATIO = 1 / 2  # side of the square, as a fraction of the image's
SCALE = 1.2
ROTATE_DEGREES = 15.0


@dataclass
class SiameseAugmentation:
    """The draws of one batch: its family and one row of `params` `(n, k)` per image."""

    family: str
    params: torch.Tensor

    @classmethod
    def sample(cls, n: int, generator: torch.Generator) -> SiameseAugmentation:
        """Draws for a batch of `n` images: a family, then each image's strengths `(n, k)` in [0, 1)."""
        family = list(FAMILIES)[int(torch.randint(len(FAMILIES), (1,), generator=generator))]
        _, draws = FAMILIES[family]
        return cls(family, torch.rand(n, draws, generator=generator))

    def __getitem__(self, index) -> SiameseAugmentation:
        return SiameseAugmentation(self.family, self.params[index])

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """`(n, C, H, W)` normalised images -> `(n, C, H, W)`, transformed by this batch's family and draws."""
        u = self.params.to(x.device, x.dtype)
        transform, _ = FAMILIES[self.family]
        return transform(x, u)


def _lerp(u: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * u


def _color(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Brightness, then saturation (grey images are unchanged by it), then contrast."""
    shape = (-1, 1, 1, 1)
    x = x + (2 * u[:, 0] - 1).view(shape) * BRIGHTNESS
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * _lerp(u[:, 1], SATURATION).view(shape) + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _lerp(u[:, 2], CONTRAST).view(shape) + mean


def _crop(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Integer shifts in `[-s, s]` pixels per axis, `s = round(side / 8)`, padded with 0."""
    n, _, h, w = x.shape
    sy, sx = round(h * CROP_RATIO), round(w * CROP_RATIO)
    dy = (u[:, 0] * (2 * sy + 1)).floor().long().clamp(max=2 * sy) - sy  # (n,)
    dx = (u[:, 1] * (2 * sx + 1)).floor().long().clamp(max=2 * sx) - sx
    padded = F.pad(x, (sx, sx, sy, sy))
    rows = (torch.arange(h, device=x.device) + sy - dy[:, None]).view(n, 1, h, 1)  # output row r reads r - dy
    cols = (torch.arange(w, device=x.device) + sx - dx[:, None]).view(n, 1, 1, w)
    images = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channels = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[images, channels, rows, cols]


def _cutout(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Zero a square of side `round(side / 2)` centred on a uniformly drawn pixel (clipped at the border)."""
    n, _, h, w = x.shape
    half_h, half_w = round(h * CUTOUT_RATIO) / 2, round(w * CUTOUT_RATIO) / 2
    cy, cx = (u[:, 0] * h).floor(), (u[:, 1] * w).floor()  # (n,) centre pixels
    ys = torch.arange(h, device=x.device, dtype=x.dtype)
    xs = torch.arange(w, device=x.device, dtype=x.dtype)
    inside_y = (ys[None] >= cy[:, None] - half_h) & (ys[None] < cy[:, None] + half_h)  # (n, H)
    inside_x = (xs[None] >= cx[:, None] - half_w) & (xs[None] < cx[:, None] + half_w)  # (n, W)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])  # (n, H, W)
    return x * keep[:, None].to(x.dtype)


def _flip(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return torch.where((u[:, 0] < 0.5).view(-1, 1, 1, 1), x.flip(-1), x)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample `x` on the grid `theta (n, 2, 3)` maps the output to, bilinear, 0 outside (as DSA)."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _scale(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    s = _lerp(u, (1 / SCALE, SCALE))  # (n, 2): x and y factors of the sampling grid
    theta = torch.zeros(len(x), 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = s[:, 0], s[:, 1]
    return _affine(x, theta)


def _rotate(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    angle = (2 * u[:, 0] - 1) * math.radians(ROTATE_DEGREES)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, sin, torch.zeros_like(cos)], -1),
                         torch.stack([-sin, cos, torch.zeros_like(cos)], -1)], 1)  # (n, 2, 3)
    return _affine(x, theta)


FAMILIES = {  # name -> (transform(x, draws), draws per image)
    "color": (_color, 3), "crop": (_crop, 2), "cutout": (_cutout, 2), "flip": (_flip, 1), "scale": (_scale, 2),
    "rotate": (_rotate, 1),
}
