"""Learners: the feature maps `f` whose kernel KRR-ST regresses with, and the networks its sets are transferred to.

ConvNet is the paper's learner during distillation; VGG-11, AlexNet, MobileNet-v2, ResNet-10 and ResNet-18 are the
architectures of its Table 3, in small-image variants for 28x28 to 64x64 inputs (no stride-2 stem, no stem max-pool).
Every learner is `features: (n, C, H, W) -> (n, feature_dim)` plus an optional linear head; build one by name with
`build_learner`. Initialisation is PyTorch's default, so calling `reset_parameters()` on every submodule that has one
re-initialises a learner completely.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from .config import ConfigError

NORMS = {
    "batch": lambda c: nn.BatchNorm2d(c),
    "instance": lambda c: nn.GroupNorm(c, c, affine=True),
    "none": lambda c: nn.Identity(),
}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def check_resolution(resolution: int, halvings: int, what: str) -> None:
    """Refuse an input side that `halvings` 2x down-samplings would shrink below one pixel."""
    if resolution >> halvings < 1:
        raise ConfigError(
            f"resolution={resolution} is too small for {what} (halved {halvings} times); use >= {2**halvings}."
        )


class Learner(nn.Module):
    """Base: a feature extractor `features` `(n, C, H, W) -> (n, feature_dim)`, plus an optional linear head.

    Args:
        features: the network up to and including its final `Flatten`.
        feature_dim: `p`, width of the features.
        out_features: `d`, outputs of the linear head `(n, p) -> (n, d)`; None (or 0) for no head.
    """

    def __init__(self, features: nn.Module, feature_dim: int, out_features: int | None):
        super().__init__()
        self.features = features
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, out_features) if out_features else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """`(n, C, H, W)` -> features `(n, p)`."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(n, C, H, W)` -> head output `(n, out_features)`."""
        if self.head is None:
            raise RuntimeError(f"{type(self).__name__} was built without out_features; use embed() for features.")
        return self.head(self.embed(x))


# --- ConvNet ----------------------------------------------------------------------------------------------------------


class ConvNet(Learner):
    """ConvNet-D: D blocks of conv 3x3 -> norm -> ReLU -> 2x2 pool, channels `width * 2**i` (or `width` throughout
    without `double_width`), then flatten.

    ConvNet-3 (width 128: 128-256-512) is KRR-ST's learner for 32x32 images, ConvNet-4 (width 64) for 64x64; MKDT's
    experts are the dataset-distillation ConvNet, 128 channels throughout with instance norm (`double_width=False`).

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
        double_width: bool = True,
    ):
        check_resolution(resolution, depth, f"ConvNet-{depth}")
        if norm not in NORMS or pooling not in POOLS:
            raise ConfigError(
                f"norm={norm!r}, pooling={pooling!r}: norm is one of {list(NORMS)}, pooling one of {list(POOLS)}."
            )
        layers, c_in = [], channels
        for i in range(depth):
            c_out = width * 2**i if double_width else width
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), NORMS[norm](c_out), nn.ReLU(), POOLS[pooling](2)]
            c_in = c_out
        super().__init__(nn.Sequential(*layers, nn.Flatten()), c_in * (resolution >> depth) ** 2, out_features)


# --- VGG-11 and AlexNet -----------------------------------------------------------------------------------------------


def conv_bn_relu(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    """A 'same' conv `(n, c_in, h, w) -> (n, c_out, h, w)`, BatchNorm, ReLU."""
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.BatchNorm2d(c_out), nn.ReLU()]


class VGG11(Learner):
    """VGG-11 with BatchNorm: 8 conv 3x3 layers, `width * (1, 2, 4, 4, 8, 8, 8, 8)` channels, feature `8 * width`.

    Small-image variant: the four first stages end in a 2x2 max-pool, the last in global average pooling instead
    (so 28x28 inputs work: 28 -> 14 -> 7 -> 3 -> 1), and there are no fully connected layers.
    """

    STAGES = ((1,), (2,), (4, 4), (8, 8), (8, 8))  # conv channels per stage, in units of `width`

    def __init__(self, channels: int, resolution: int, out_features: int | None = None, width: int = 64):
        check_resolution(resolution, len(self.STAGES) - 1, type(self).__name__)
        layers, c_in = [], channels
        for i, stage in enumerate(self.STAGES):
            for multiple in stage:
                layers += conv_bn_relu(c_in, multiple * width, 3)
                c_in = multiple * width
            layers.append(nn.MaxPool2d(2) if i < len(self.STAGES) - 1 else nn.AdaptiveAvgPool2d(1))
        super().__init__(nn.Sequential(*layers, nn.Flatten()), c_in, out_features)


class AlexNet(Learner):
    """AlexNet, CIFAR-style with BatchNorm: conv 5x5 (`width`), pool, conv 5x5 (`3 width`), pool, three conv 3x3
    (`6, 4, 4 width`), pool, flatten: feature `4 width * (resolution // 8)**2` (4096 at 32x32, width 64).

    Small-image variant: stride-1 convs with 5x5 and 3x3 kernels, three 2x2 max-pools, no fully connected layers.
    """

    def __init__(self, channels: int, resolution: int, out_features: int | None = None, width: int = 64):
        check_resolution(resolution, 3, type(self).__name__)
        w = width
        layers = [
            *conv_bn_relu(channels, w, 5), nn.MaxPool2d(2),
            *conv_bn_relu(w, 3 * w, 5), nn.MaxPool2d(2),
            *conv_bn_relu(3 * w, 6 * w, 3), *conv_bn_relu(6 * w, 4 * w, 3), *conv_bn_relu(4 * w, 4 * w, 3),
            nn.MaxPool2d(2), nn.Flatten(),
        ]  # fmt: skip
        super().__init__(nn.Sequential(*layers), 4 * w * (resolution >> 3) ** 2, out_features)


# --- MobileNet-v2 -----------------------------------------------------------------------------------------------------


class InvertedResidual(nn.Module):
    """MobileNet-v2 block `(n, c_in, h, w) -> (n, c_out, h / stride, w / stride)`: 1x1 expand to `expansion * c_in`,
    BN, ReLU6, 3x3 depthwise, BN, ReLU6, 1x1 linear projection, BN; plus the input when the shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = expansion * c_in
        expand = [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()] if expansion > 1 else []
        self.residual = nn.Sequential(
            *expand,
            nn.Conv2d(hidden, hidden, 3, stride, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        )  # fmt: skip
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x) if self.skip else self.residual(x)


class MobileNetV2(Learner):
    """MobileNet-v2: conv 3x3 stem (`width` channels), 17 inverted-residual blocks, 1x1 conv to `40 * width`,
    global average pooling: feature `40 * width` (1280 at the standard width 32).

    `width` is the stem's channel count; every layer scales with `width / 32` (the usual width multiplier).
    Small-image variant: stride-1 stem and stride-1 second stage, so 32x32 inputs end at 4x4 (three halvings).
    """

    # (expansion t, channels at width 32, blocks n, first stride s): Table 2 of Sandler et al. 2018, stage 2 at s=1
    STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, channels: int, resolution: int, out_features: int | None = None, width: int = 32):
        check_resolution(resolution, sum(s == 2 for *_, s in self.STAGES), type(self).__name__)
        scale = lambda c: max(1, c * width // 32)  # noqa: E731
        layers = [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU6()]
        c_in = width
        for expansion, c, n, stride in self.STAGES:
            for i in range(n):
                layers.append(InvertedResidual(c_in, scale(c), stride if i == 0 else 1, expansion))
                c_in = scale(c)
        c_last = scale(1280)
        layers += [nn.Conv2d(c_in, c_last, 1, bias=False), nn.BatchNorm2d(c_last), nn.ReLU6()]
        super().__init__(nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), c_last, out_features)


# --- ResNet -----------------------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet basic block `(n, c_in, h, w) -> (n, c_out, h / stride, w / stride)`: conv 3x3, BN, ReLU, conv 3x3, BN,
    plus the input (through a 1x1 conv + BN when the shape changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        )  # fmt: skip
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class ResNet(Learner):
    """ResNet of basic blocks: four stages of `width * (1, 2, 4, 8)` channels, `blocks[i]` blocks each, the first
    block of stages 2-4 with stride 2; global average pooling: feature `8 * width` (512 at the standard width 64).

    Small-image variant, as for CIFAR: a conv 3x3 stride-1 stem and no max-pool, so 32x32 inputs end at 4x4.
    """

    def __init__(
        self,
        channels: int,
        resolution: int,
        out_features: int | None = None,
        width: int = 64,
        blocks: tuple[int, ...] = (2, 2, 2, 2),
    ):
        check_resolution(resolution, len(blocks) - 1, type(self).__name__)
        layers = [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        c_in = width
        for stage, n in enumerate(blocks):
            c_out = width * 2**stage
            for i in range(n):
                layers.append(BasicBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1))
                c_in = c_out
        super().__init__(nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), c_in, out_features)


class ResNet10(ResNet):
    """ResNet-10: one basic block per stage (1 + 4 * 2 conv layers + the head)."""

    def __init__(self, channels: int, resolution: int, out_features: int | None = None, width: int = 64):
        super().__init__(channels, resolution, out_features, width, blocks=(1, 1, 1, 1))


class ResNet18(ResNet):
    """ResNet-18: two basic blocks per stage (1 + 8 * 2 conv layers + the head)."""

    def __init__(self, channels: int, resolution: int, out_features: int | None = None, width: int = 64):
        super().__init__(channels, resolution, out_features, width, blocks=(2, 2, 2, 2))


# --- by name ----------------------------------------------------------------------------------------------------------

ARCHITECTURES: dict[str, type[Learner]] = {
    "convnet": ConvNet,
    "vgg11": VGG11,
    "alexnet": AlexNet,
    "mobilenet_v2": MobileNetV2,
    "resnet10": ResNet10,
    "resnet18": ResNet18,
}


def build_learner(arch: str, channels: int, resolution: int, out_features: int | None = None, **options) -> Learner:
    """The learner `arch` for `(n, channels, resolution, resolution)` images; `options` are its other arguments.

    Example:
        >>> build_learner("resnet18", channels=3, resolution=32, out_features=10, width=16).feature_dim
        128

    Raises:
        ConfigError: for an unknown `arch`, an option `arch` does not take, or a resolution too small for it.
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(f"arch={arch!r} is not one of {', '.join(ARCHITECTURES)}.")
    learner = ARCHITECTURES[arch]
    fixed = ("channels", "resolution", "out_features")
    takes = [name for name in inspect.signature(learner).parameters if name not in fixed]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ConfigError(f"arch={arch!r} does not take {', '.join(unknown)}; its options are: {', '.join(takes)}.")
    return learner(channels=channels, resolution=resolution, out_features=out_features, **options)


def learner_of(cfg, channels: int, resolution: int, out_features: int) -> ConvNet:
    """A freshly initialised ConvNet of `cfg` (its `learner_depth`, `learner_width`, `learner_norm`,
    `learner_pooling` and `learner_double_width`), with a head of `out_features` (the teacher's `d`)."""
    return ConvNet(channels, resolution, cfg.learner_depth, cfg.learner_width, cfg.learner_norm, cfg.learner_pooling,
                   out_features=out_features, double_width=cfg.learner_double_width)
