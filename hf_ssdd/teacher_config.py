"""The teacher stages' configs: `train-teacher` (Barlow Twins on the source, `TeacherTrainConfig`) and
`import-teacher` (a ResNet trained elsewhere, `TeacherImportConfig`), which share the encoder's shape
(`EncoderConfig`: widths, depths, and the stem of the torchvision-layout ResNets)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import (
    CheckpointConfig, ConfigError, ModelFolderConfig, ModelOutputConfig, SourceConfig, check_choices, check_positive,
    trackers,
)
from .resnet import PRESETS

SMALL_ENCODER = {"hidden_sizes": [32, 64, 128], "depths": [1, 1, 1]}  # resnet and convnext when not given


@dataclass
class EncoderConfig:
    """A teacher's encoder: its widths and depths (default: the preset of `arch`, a field of each subclass with its
    own choices), and the stem of the torchvision-layout ResNets resnet18/34/50 (`hf_ssdd.resnet`)."""

    hidden_sizes: list[int] | None = field(
        default=None,
        metadata={"help": "Channels of each stage; the last is the feature size. Default: the arch's: 32 64 128 "
                          "(resnet, convnext), 64 128 256 512 (resnet18/34), 256 512 1024 2048 (resnet50)."},
    )
    depths: list[int] | None = field(
        default=None,
        metadata={"help": "Blocks in each stage. Default: the arch's: 1 1 1 (resnet, convnext), 2 2 2 2 (resnet18), "
                          "3 4 6 3 (resnet34/50)."},
    )
    stem: str | None = field(
        default=None,
        metadata={"help": "Stem of resnet18/34/50: cifar (3x3 convolution, no max-pool: the paper's teacher) or "
                          "imagenet (7x7 stride 2, 3x3 stride-2 max-pool: torchvision's). Default: cifar.",
                  "choices": ("cifar", "imagenet")},
    )
    stem_stride: int | None = field(
        default=None,
        metadata={"help": "Stride of the resnet18/34/50 stem convolution; default 1 (cifar), 2 (imagenet)."},
    )
    stem_padding: int | None = field(
        default=None,
        metadata={"help": "Padding of the resnet18/34/50 stem convolution, pixels; default 2 (cifar: the authors' and "
                          "solo-learn's; lightly's is 1), 3 (imagenet)."},
    )

    def resolve_encoder(self) -> None:
        """Fill the arch's widths, depths and stem where not given; refuse a combination that does not build."""
        resnet = self.arch in PRESETS
        if not resnet:
            given = [name for name in ("stem", "stem_stride", "stem_padding") if getattr(self, name) is not None]
            if given:
                raise ConfigError(
                    f"{given[0]}={getattr(self, given[0])!r} applies to arch resnet18, resnet34 and resnet50, not to "
                    f"arch={self.arch!r}; drop --{given[0]} or choose one of those."
                )
        preset = PRESETS.get(self.arch, SMALL_ENCODER)
        self.hidden_sizes = list(preset["hidden_sizes"] if self.hidden_sizes is None else self.hidden_sizes)
        self.depths = list(preset["depths"] if self.depths is None else self.depths)
        if len(self.hidden_sizes) != len(self.depths) or not self.depths:
            raise ConfigError(
                f"hidden_sizes={self.hidden_sizes} and depths={self.depths} need one entry per stage, as many of each "
                f"(arch={self.arch!r}: give both to change the number of stages)."
            )
        if min(self.hidden_sizes) <= 0 or min(self.depths) <= 0:
            raise ConfigError(f"hidden_sizes={self.hidden_sizes} and depths={self.depths} must be positive.")
        if resnet:
            self.stem = self.stem or "cifar"
            check_positive(self, "stem_stride")
            if self.stem_padding is not None and self.stem_padding < 0:
                raise ConfigError(f"stem_padding={self.stem_padding} must be >= 0.")
            if preset["block"] == "bottleneck" and any(size % 4 for size in self.hidden_sizes):
                raise ConfigError(
                    f"hidden_sizes={self.hidden_sizes}: {self.arch} has bottleneck blocks (4x wider out than in); "
                    "give multiples of 4."
                )


@dataclass
class TeacherTrainConfig(CheckpointConfig, SourceConfig, ModelOutputConfig, EncoderConfig):
    """Barlow Twins self-supervised teacher, saved as a transformers model. Defaults: Fashion-MNIST, ~5 min, 2 CPUs."""

    arch: str = field(
        default="resnet",
        metadata={"help": "Encoder: resnet (transformers' ResNetModel, basic blocks), convnext (ConvNextModel), or "
                          "resnet18/34/50 in torchvision's layout with a --stem (the paper's teacher: resnet18, "
                          "stem cifar).",
                  "choices": ("resnet", "convnext", *PRESETS)},
    )
    patch_size: int = field(default=2, metadata={"help": "ConvNeXt stem: side of its non-overlapping patches, pixels."})
    image_size: int | None = field(
        default=None,
        metadata={"help": "Side the encoder sees, pixels (views are resampled to it); default: the resolution."},
    )
    projector_dim: int = field(default=512, metadata={"help": "Width of the 3-layer projector (training only)."})
    lambda_offdiag: float = field(default=5e-3, metadata={"help": "Weight of the off-diagonal (redundancy) term."})
    min_crop_scale: float = field(default=0.2, metadata={"help": "Smallest random crop, as a fraction of the area."})
    color_jitter: float = field(default=0.4, metadata={"help": "Brightness/contrast/saturation jitter strength."})
    flip: bool = field(default=True, metadata={"help": "Random horizontal flip of the views."})
    max_steps: int = field(default=2000, metadata={"help": "Optimisation steps."})
    batch_size: int = field(default=128, metadata={"help": "Images per step (two views each), over all processes."})
    learning_rate: float = field(default=5e-3, metadata={"help": "Peak AdamW learning rate."})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of max_steps of linear warm-up; then cosine."})
    seed: int = field(default=0, metadata={"help": "Seed of the initialisation, batches and augmentations."})
    output_dir: str = field(
        default="teacher", metadata={"role": "output", "help": "Folder of the saved teacher (Hub model format)."}
    )
    logging_steps: int = field(default=10, metadata={"help": "Log loss and learning rate every N steps."})

    def __post_init__(self):
        super().__post_init__()
        trackers(self.report_to)
        check_positive(
            self, "patch_size", "image_size", "projector_dim", "lambda_offdiag", "max_steps", "batch_size",
            "learning_rate", "logging_steps", "save_steps", "save_total_limit",
        )
        self.resolve_encoder()
        if not 0 < self.min_crop_scale <= 1:
            raise ConfigError(f"min_crop_scale={self.min_crop_scale} must be in (0, 1].")
        if not 0 <= self.color_jitter < 1:
            raise ConfigError(f"color_jitter={self.color_jitter} must be in [0, 1).")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay={self.weight_decay} must be >= 0.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio={self.warmup_ratio} must be in [0, 1).")


@dataclass
class TeacherImportConfig(EncoderConfig, ModelFolderConfig):
    """A ResNet trained elsewhere (Barlow Twins, SimCLR, BYOL, ...: solo-learn, lightly, torchvision layouts) made into
    a teacher folder that `distill --teacher` reads. Defaults: the paper's teacher, ResNet-18 with a CIFAR stem."""

    checkpoint: str | None = field(
        default=None,
        metadata={"positional": True,
                  "help": "Checkpoint file (.pt, .pth, .ckpt or .safetensors) with keys in torchvision's layout, "
                          "possibly under state_dict or model and prefixed by module., backbone. or encoder.; "
                          "read with torch.load(weights_only=True): no code in it runs."},
    )
    arch: str = field(
        default="resnet18",
        metadata={"help": "The checkpoint's ResNet (torchvision's widths and depths unless given).",
                  "choices": tuple(PRESETS)},
    )
    num_channels: int = field(default=3, metadata={"help": "Input channels of the checkpoint.", "choices": (1, 3)})
    image_size: int | None = field(
        default=None,
        metadata={"help": "Side the teacher sees, pixels (images are resized to it); default 32 (cifar stem), "
                          "224 (imagenet stem)."},
    )
    image_mean: list[float] | None = field(
        default=None,
        metadata={"help": "Per-channel mean in [0, 1] the checkpoint was trained with (CIFAR-10: 0.4914 0.4822 0.4465; "
                          "ImageNet: 0.485 0.456 0.406). Required."},
    )
    image_std: list[float] | None = field(
        default=None,
        metadata={"help": "Per-channel std the checkpoint was trained with (CIFAR-10: 0.2470 0.2435 0.2616; ImageNet: "
                          "0.229 0.224 0.225). Required."},
    )
    output_dir: str = field(
        default="teacher", metadata={"role": "output", "help": "Folder of the teacher (Hub model format)."}
    )

    def __post_init__(self):
        check_choices(self)
        if not self.checkpoint:
            raise ConfigError("no checkpoint: give the file, `hf-ssdd import-teacher CHECKPOINT --image_mean ...`.")
        self.resolve_encoder()
        self.image_size = self.image_size or (224 if self.stem == "imagenet" else 32)
        check_positive(self, "image_size")
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            if value is None:
                raise ConfigError(
                    f"no --{name}: give the normalisation the checkpoint was trained with, as --image_mean and "
                    "--image_std (CIFAR-10: 0.4914 0.4822 0.4465 / 0.2470 0.2435 0.2616; ImageNet: 0.485 0.456 0.406 / "
                    "0.229 0.224 0.225); a wrong one silently spoils every target."
                )
            if len(value) not in (1, self.num_channels):
                raise ConfigError(f"{name}={value}: give 1 value or num_channels={self.num_channels} values.")
        if min(self.image_std) <= 0:
            raise ConfigError(f"image_std={self.image_std} must be positive.")
