"""ResNets in torchvision's layout with a choice of stem, as `transformers` models: the paper's teacher architecture.

The authors' teacher is a ResNet-18 with a CIFAR stem (a 3x3 convolution, stride 1, padding 2, as solo-learn builds
it; no max-pool), basic blocks 64-128-256-512, global average pooling: 512-d features. `transformers.ResNetModel`
always has the ImageNet stem (7x7 stride 2 and a 3x3 stride-2 max-pool), so this module adds the other one:

    model = TorchvisionResNetModel(TorchvisionResNetConfig.preset("resnet18", stem="cifar"))
    model(pixel_values=torch.rand(8, 3, 32, 32)).pooler_output  # (8, 512)

Module names are torchvision's (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`, `layer1.0.conv3` in a
bottleneck, ...), so a self-supervised checkpoint in torchvision's layout loads by a key rename (`teacher_import`).

This file imports only torch, transformers and huggingface_hub: `save_pretrained` copies it beside the weights with
an `auto_map`, so `AutoModel.from_pretrained(folder, trust_remote_code=True)` works without hf-ssdd installed;
with hf-ssdd imported, `AutoModel.from_pretrained(folder)` needs no remote code.
"""

from __future__ import annotations

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling

MODEL_TYPE = "hf_ssdd_resnet"
EXPANSION = {"basic": 1, "bottleneck": 4}  # a stage's output channels / its blocks' inner width
STEMS = {"cifar": (3, 1, 2), "imagenet": (7, 2, 3)}  # stem -> (kernel, default stride, default padding)
PRESETS = {  # torchvision's widths and depths
    "resnet18": dict(hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2], block="basic"),
    "resnet34": dict(hidden_sizes=[64, 128, 256, 512], depths=[3, 4, 6, 3], block="basic"),
    "resnet50": dict(hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3], block="bottleneck"),
}


@strict
class TorchvisionResNetConfig(PreTrainedConfig):
    """A ResNet: `hidden_sizes[i]` output channels and `depths[i]` blocks in stage i (stride 2 from the second stage
    on), after a stem of width `hidden_sizes[0] / expansion` (64 for torchvision's ResNets).

    `stem`: "cifar" is a 3x3 convolution (default stride 1, padding 2: the authors' and solo-learn's; lightly's is
    padding 1) and no max-pool; "imagenet" is torchvision's 7x7 (stride 2, padding 3) and a 3x3 stride-2 max-pool.

    Example:
        >>> config = TorchvisionResNetConfig.preset("resnet18", hidden_sizes=[16, 32, 64, 128])  # a narrow ResNet-18
        >>> TorchvisionResNetModel(config)(pixel_values=torch.rand(2, 3, 32, 32)).last_hidden_state.shape
        torch.Size([2, 128, 5, 5])
    """

    model_type = MODEL_TYPE

    num_channels: int = 3
    hidden_sizes: list[int] | tuple[int, ...] = (64, 128, 256, 512)
    depths: list[int] | tuple[int, ...] = (2, 2, 2, 2)
    block: str = "basic"
    stem: str = "cifar"
    stem_stride: int | None = None
    stem_padding: int | None = None

    def __post_init__(self, **kwargs):
        """Fills the stem's default stride and padding; a mistake is a `ValueError` naming the field."""
        self.hidden_sizes, self.depths = list(self.hidden_sizes), list(self.depths)
        if self.stem not in STEMS or self.block not in EXPANSION:
            raise ValueError(f"stem={self.stem!r}, block={self.block!r}: use one of {list(STEMS)}, {list(EXPANSION)}")
        if len(self.hidden_sizes) != len(self.depths) or not self.depths or min(self.depths + self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes={self.hidden_sizes}, depths={self.depths}: one positive entry per stage")
        if any(size % EXPANSION[self.block] for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes={self.hidden_sizes}: bottleneck blocks need multiples of 4")
        _, stride, padding = STEMS[self.stem]
        self.stem_stride = stride if self.stem_stride is None else self.stem_stride
        self.stem_padding = padding if self.stem_padding is None else self.stem_padding
        super().__post_init__(**kwargs)

    @classmethod
    def preset(cls, name: str, **overrides) -> TorchvisionResNetConfig:
        """torchvision's `name` (resnet18, resnet34, resnet50), with any field overridden."""
        return cls(**{**PRESETS[name], **overrides})


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: `(n, c_in, h, w)` -> `(n, c_out, h / stride, w / stride)`."""

    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class Bottleneck(nn.Module):
    """1x1 down to `width`, 3x3 (carrying the stride, as torchvision's v1.5), 1x1 up to `4 * width`, and a shortcut."""

    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, 4 * width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + self.downsample(x))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Identity where the shape is kept, else torchvision's `downsample`: a strided 1x1 convolution and BatchNorm."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class TorchvisionResNetPreTrainedModel(PreTrainedModel):
    config: TorchvisionResNetConfig
    config_class = TorchvisionResNetConfig
    base_model_prefix = "resnet"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def _init_weights(self, module: nn.Module) -> None:
        """torchvision's initialisation: He-normal (fan-out) convolutions, BatchNorm at identity."""
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)


class TorchvisionResNetModel(TorchvisionResNetPreTrainedModel):
    """`pixel_values (n, C, H, W)` -> `last_hidden_state (n, hidden_sizes[-1], h, w)` and its spatial mean,
    `pooler_output (n, hidden_sizes[-1])`: 512 for ResNet-18/34, 2048 for ResNet-50."""

    def __init__(self, config: TorchvisionResNetConfig):
        super().__init__(config)
        kernel = STEMS[config.stem][0]
        expansion = EXPANSION[config.block]
        block = BasicBlock if config.block == "basic" else Bottleneck
        c_in = config.hidden_sizes[0] // expansion
        self.conv1 = nn.Conv2d(config.num_channels, c_in, kernel, config.stem_stride, config.stem_padding, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if config.stem == "imagenet" else nn.Identity()
        for i, (size, depth) in enumerate(zip(config.hidden_sizes, config.depths)):
            width = size // expansion
            blocks = [block(c_in if j == 0 else size, width, 2 if i > 0 and j == 0 else 1) for j in range(depth)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            c_in = size
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        x = self.maxpool(self.relu(self.bn1(self.conv1(pixel_values))))  # (n, stem width, h0, w0)
        for i in range(len(self.config.depths)):
            x = getattr(self, f"layer{i + 1}")(x)  # (n, hidden_sizes[i], h_i, w_i)
        return BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=x.mean((2, 3)))


TorchvisionResNetConfig.register_for_auto_class()
TorchvisionResNetModel.register_for_auto_class("AutoModel")
AutoConfig.register(MODEL_TYPE, TorchvisionResNetConfig, exist_ok=True)
AutoModel.register(TorchvisionResNetConfig, TorchvisionResNetModel, exist_ok=True)
