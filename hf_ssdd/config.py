"""Typed configuration: one dataclass per stage, every field with its default, unit and help.

A closed set of values is declared once, on its field (`metadata={"help": ..., "choices": (...)}`): argparse
refuses anything else on the command line (see `parsing`), and `__post_init__` refuses it when a config is built in
Python. A field's `role` says what it is not: "output" (where and how a run writes, not a hyperparameter of what it
makes) or "run" (may change when a run is resumed). Every mistake is a `ConfigError` naming the value and the fix.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .resnet import PRESETS


class ConfigError(ValueError):
    """A user-facing configuration mistake; the message names the value and the fix."""


def hyperparameters(cfg) -> dict:
    """The fields of `cfg` that shape its result: all but those of `role` "output" (where and how a run writes)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.metadata.get("role") != "output"}


def fixed_on_resume(cfg) -> dict:
    """The hyperparameters a checkpoint must share with the run that resumes it: all but those of `role` "run" (how
    long it runs, how it logs and checkpoints, and how it computes what it computes)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.metadata.get("role") is None}


def check_compatible(cfg, saved: dict, what: str) -> None:
    """Refuse to resume `what` (a checkpoint, a folder of trajectories), written with the config values `saved`,
    with `cfg` when a hyperparameter of `fixed_on_resume` differs. A field `saved` predates counts as its default."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    current = fixed_on_resume(cfg)
    differ = sorted(k for k in current if saved.get(k, defaults[k]) != current[k])
    if differ:
        detail = ", ".join(f"{k}={saved.get(k, defaults[k])!r} there vs {current[k]!r} now" for k in differ[:4])
        raise ConfigError(f"{what} comes from an incompatible config ({detail}); use the same settings or start a "
                          "new --output_dir.")


def trackers(report_to: str) -> list[str]:
    """accelerate's `log_with` for `report_to`: `auto` is tensorboard when installed, `none` is no tracker, else
    comma-separated tracker names, each known to accelerate and installed, or a `ConfigError` listing those that are."""
    from accelerate.tracking import get_available_trackers

    available = [str(getattr(t, "value", t)) for t in get_available_trackers()]
    if report_to == "none":
        return []
    if report_to == "auto":
        return ["tensorboard"] if "tensorboard" in available else []
    names = [name.strip() for name in report_to.split(",")]
    unknown = [name for name in names if name not in (*available, "all")]
    if unknown:
        raise ConfigError(
            f"report_to={report_to!r}: {', '.join(unknown)} is not an installed tracker; "
            f"choose from auto, none, all, {', '.join(available) or '(no tracker installed)'}."
        )
    return names


CROP_FILLS = ("black", "mean")


def crop_fill_field():
    """The `crop_fill` option of every stage that pads random crops."""
    return field(
        default="black",
        metadata={"choices": CROP_FILLS,
                  "help": "Colour of the random crop's padding: black pixels, as the authors pad, or the mean "
                          "colour (0 after normalisation)."},
    )


def report_to_field():
    """The `report_to` option of every training stage."""
    return field(
        default="auto",
        metadata={"role": "run", "help": "Experiment trackers (accelerate's), logging to output_dir/runs: auto "
                  "(tensorboard if installed), none, all, or names such as tensorboard,wandb."},
    )


@dataclass
class ConvNetConfig:
    """The ConvNet a stage trains (`learners.ConvNet`, built by `learners.learner_of`). Defaults: KRR-ST's ConvNet-3."""

    learner_depth: int = field(default=3, metadata={"help": "Conv blocks of the ConvNet learner (3: ConvNet-3)."})
    learner_width: int = field(default=128, metadata={"help": "Channels of the first block."})
    learner_norm: str = field(
        default="batch", metadata={"help": "Normalisation layer.", "choices": ("batch", "instance", "none")}
    )
    learner_pooling: str = field(
        default="avg", metadata={"help": "2x2 pooling after each block.", "choices": ("avg", "max")}
    )
    learner_double_width: bool = field(
        default=True,
        metadata={"help": "Double the channels after each block (KRR-ST's ConvNet: 128-256-512), or keep the width "
                          "throughout (MKDT's: 128-128-128)."},
    )


@dataclass
class SourceConfig:
    """Where the real images come from and how they are turned into tensors."""

    dataset: str = field(
        default="fashion_mnist",
        metadata={"help": "Hub dataset id, local folder (imagefolder / parquet / save_to_disk), or built-in name."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name on the Hub."})
    dataset_revision: str | None = field(default=None, metadata={"help": "Git revision of the Hub dataset."})
    split: str = field(default="train", metadata={"help": "Split to read (labels, if any, are ignored)."})
    image_column: str | None = field(default=None, metadata={"help": "Image column; default: the first image column."})
    max_samples: int | None = field(default=None, metadata={"help": "Use only the first N images of the split."})
    resolution: int | None = field(
        default=None, metadata={"help": "Side of the square images, pixels; default: the dataset's own size."}
    )
    channels: int | None = field(
        default=None, metadata={"help": "1 (grey) or 3 (RGB); default: the dataset's own channels.", "choices": (1, 3)}
    )
    mean: list[float] | None = field(
        default=None, metadata={"help": "Per-channel normalisation mean in [0, 1]; default: measured on the data."}
    )
    std: list[float] | None = field(
        default=None, metadata={"help": "Per-channel normalisation std; default: measured on the data."}
    )

    def __post_init__(self):
        check_choices(self)
        check_positive(self, "max_samples", "resolution")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and self.channels is not None and len(value) not in (1, self.channels):
                raise ConfigError(f"{name}={value} has {len(value)} values; give 1 or channels={self.channels}.")
        if self.std is not None and min(self.std) <= 0:
            raise ConfigError(f"std={self.std} must be positive.")


def check_positive(cfg, *names):
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not 0 < value < math.inf:  # nan fails both comparisons
            raise ConfigError(f"{name}={value} must be positive and finite.")


def check_few_labels(max_train_samples: int | None, train_fraction: float | None, where: str = "") -> None:
    """A few-label setting is a count or a fraction of the training images, not both; a fraction lies in (0, 1]."""
    if train_fraction is not None and not 0 < train_fraction <= 1:
        raise ConfigError(f"{where}train_fraction={train_fraction} must be in (0, 1].")
    if train_fraction is not None and max_train_samples is not None:
        raise ConfigError(f"{where}give max_train_samples or train_fraction, not both.")


def check_choices(cfg):
    """Every field that declares `choices` holds one of them (or None, where None is its default)."""
    for f in dataclasses.fields(cfg):
        choices, value = f.metadata.get("choices"), getattr(cfg, f.name)
        if choices is not None and value not in choices and not (value is None and f.default is None):
            raise ConfigError(f"{f.name}={value!r} is not one of {', '.join(map(str, choices))}.")


def check_output_dir(output_dir: str, overwrite: bool, resuming: bool = False) -> None:
    """Refuse, before any work is done, to mix a run into a non-empty folder or to replace the working folder."""
    out = Path(output_dir).resolve()
    if out == Path.cwd() or out in Path.cwd().parents:
        raise ConfigError(f"output_dir={output_dir!r} holds the current folder; use a subfolder.")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output_dir={output_dir!r} is a file; choose a folder.")
    if out.is_dir() and any(out.iterdir()) and not (overwrite or resuming):
        raise ConfigError(
            f"output_dir={output_dir!r} is not empty; pass --overwrite_output_dir, "
            "--resume_from_checkpoint latest (distill), or another --output_dir."
        )


def save_config(cfg, path: str | Path) -> None:
    """Write the resolved config as YAML, loadable again with `--config`."""
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))


@dataclass
class ModelFolderConfig:
    """The options of a stage that writes a model folder: where, whether over an older one, its Hub repo. Its
    subclasses set their own default `output_dir`."""

    output_dir: str = field(default="model", metadata={"role": "output", "help": "Folder of the saved model."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"role": "output", "help": "Allow replacing a non-empty output_dir."}
    )
    push_to_hub: str | None = field(
        default=None, metadata={"role": "output", "help": "Hub model repo id to upload the model to."}
    )
    private: bool = field(default=False, metadata={"role": "output", "help": "Create the Hub repo as private."})


@dataclass
class ModelOutputConfig(ModelFolderConfig):
    """A stage that trains the model it writes: a model folder's options, and its trackers."""

    report_to: str = report_to_field()


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
class TeacherTrainConfig(SourceConfig, ModelOutputConfig, EncoderConfig):
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
            "learning_rate", "logging_steps",
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
        metadata={"help": "Per-channel mean in [0, 1] the checkpoint was trained with (CIFAR: 0.4914 0.4822 0.4465; "
                          "ImageNet: 0.485 0.456 0.406). Required."},
    )
    image_std: list[float] | None = field(
        default=None,
        metadata={"help": "Per-channel std the checkpoint was trained with (CIFAR: 0.247 0.243 0.261; ImageNet: "
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
                    "--image_std (CIFAR: 0.4914 0.4822 0.4465 / 0.247 0.243 0.261; ImageNet: 0.485 0.456 0.406 / "
                    "0.229 0.224 0.225); a wrong one silently spoils every target."
                )
            if len(value) not in (1, self.num_channels):
                raise ConfigError(f"{name}={value}: give 1 value or num_channels={self.num_channels} values.")
        if min(self.image_std) <= 0:
            raise ConfigError(f"image_std={self.image_std} must be positive.")


OBJECTIVE_RECIPES = {  # the paper's pre-training, per objective; a PretrainConfig field left None takes its set's
    "targets": {"learning_rate": 0.1, "weight_decay": 1e-3, "lr_drop": 1.0, "dsa": False},  # KRR-ST: MSE, constant
    "labels": {"learning_rate": 0.01, "weight_decay": 5e-4, "lr_drop": 0.5, "dsa": True},  # supervised sets: CE
}


@dataclass
class PretrainConfig(ModelOutputConfig):
    """Pre-train a learner on a small set: a distilled set's target representations (MSE) or a set's class labels
    (cross-entropy). Defaults: the paper's protocol for each (`OBJECTIVE_RECIPES`)."""

    distilled: str | None = field(
        default=None,
        metadata={"help": "The set: output folder of `distill`, or any dataset (Hub id, parquet or imagefolder "
                          "folder) with an image column and a float `target` column (MSE) or a class label column "
                          "(cross-entropy), e.g. a set distilled by another method."},
    )
    distilled_revision: str | None = field(default=None, metadata={"help": "Git revision of the Hub dataset."})
    image_column: str | None = field(
        default=None, metadata={"help": "Image column of a set without an hf-ssdd card; default: the first one."}
    )
    label_column: str | None = field(
        default=None,
        metadata={"help": "Class label column (cross-entropy, even where a `target` column exists); default: the "
                          "first ClassLabel column, else `label`, when the set has no `target` column."},
    )
    arch: str | None = field(
        default=None,
        metadata={"help": "Learner: convnet, vgg11, alexnet, mobilenet_v2, resnet10, resnet18, or a transformers "
                          "config/model (folder or Hub id); default: the learner the set was distilled with."},
    )
    channels: int | None = field(
        default=None, metadata={"help": "Learner's input channels (1 or 3; the set is converted); default: the set's."}
    )
    resolution: int | None = field(
        default=None, metadata={"help": "Learner's input side, pixels (the set is resized); default: the set's."}
    )
    teacher: str | None = field(
        default=None,
        metadata={"help": "Knowledge distillation: regress this teacher's representations of augmented distilled "
                          "images instead of the stored targets."},
    )
    num_epochs: int = field(default=1000, metadata={"help": "Passes over the distilled set."})
    max_steps: int | None = field(
        default=None,
        metadata={"help": "At most this many SGD steps (a compute budget equal across set sizes); default: the "
                          "steps of num_epochs."},
    )
    batch_size: int = field(default=256, metadata={"help": "Images per step (at most the set's size), all processes."})
    learning_rate: float | None = field(
        default=None,
        metadata={"help": "SGD learning rate; default: 0.1 for targets (MSE), 0.01 for labels; for an MKDT set, the "
                          "step size it learned (as MKDT pre-trains)."},
    )
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum."})
    weight_decay: float | None = field(
        default=None, metadata={"help": "SGD weight decay; default: 1e-3 for targets (MSE), 5e-4 for labels."}
    )
    lr_drop: float | None = field(
        default=None,
        metadata={"help": "Multiply the learning rate by 0.1 after this fraction of the steps (1: never); default: "
                          "1 for targets (MSE), 0.5 for labels."},
    )
    dsa: bool | None = field(
        default=None,
        metadata={"help": "Differentiable siamese augmentation of every batch (colour, crop, cutout, flip, scale, "
                          "rotate; see hf_ssdd/dsa.py); default: off for targets (MSE), on for labels."},
    )
    crop_padding: int = field(default=0, metadata={"help": "Random-crop padding of the images, pixels (0: off)."})
    crop_fill: str = crop_fill_field()
    flip: bool = field(default=False, metadata={"help": "Random horizontal flip of the images."})
    seed: int = field(default=0, metadata={"help": "Seed of the initialisation and the batches."})
    output_dir: str = field(
        default="pretrained", metadata={"role": "output", "help": "Folder of the pre-trained model (Hub format)."}
    )
    logging_steps: int = field(default=50, metadata={"help": "Log loss and learning rate every N steps."})

    def __post_init__(self):
        check_choices(self)
        trackers(self.report_to)
        check_positive(self, "num_epochs", "max_steps", "batch_size", "learning_rate", "resolution",
                        "logging_steps")
        if self.momentum < 0 or (self.weight_decay or 0) < 0 or self.crop_padding < 0:
            raise ConfigError("momentum, weight_decay and crop_padding must be >= 0.")
        if self.lr_drop is not None and not 0 < self.lr_drop <= 1:
            raise ConfigError(f"lr_drop={self.lr_drop} must be in (0, 1]: a fraction of the steps, 1 for never.")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"channels={self.channels} must be 1 (grey) or 3 (RGB).")

    def for_objective(self, uses_labels: bool) -> PretrainConfig:
        """This config with the fields left None set to the recipe of the objective (labels or targets)."""
        recipe = OBJECTIVE_RECIPES["labels" if uses_labels else "targets"]
        return dataclasses.replace(self, **{key: value for key, value in recipe.items() if getattr(self, key) is None})


@dataclass
class TransferConfig:
    """Fine-tune (or linearly probe) a pre-trained learner on a labelled target. Defaults: the paper's protocol."""

    target: str | None = field(
        default=None,
        metadata={"help": "Target dataset: Hub id, local folder (imagefolder / parquet / save_to_disk) or built-in "
                          "name (fashion_mnist, digits)."},
    )
    target_config: str | None = field(default=None, metadata={"help": "Configuration name of the Hub dataset."})
    target_revision: str | None = field(default=None, metadata={"help": "Git revision of the Hub dataset."})
    image_column: str | None = field(default=None, metadata={"help": "Image column; default: the first one."})
    label_column: str | None = field(
        default=None, metadata={"help": "Label column; default: the first ClassLabel column, else `label`."}
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    test_split: str | None = field(
        default="test", metadata={"help": "Split to report on; carved from train (20%, fixed seed) when missing."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Few-label setting: a sample of N training images (see label_sampling)."}
    )
    train_fraction: float | None = field(
        default=None,
        metadata={"help": "Few-label setting as a fraction of the training images (MKDT: 0.01, 0.05); not with "
                          "max_train_samples."},
    )
    label_sampling: str = field(
        default="balanced",
        metadata={"choices": ("balanced", "uniform"),
                  "help": "How the few labelled images are drawn: balanced (every class as equally as it can) or "
                          "uniform (a uniform random sample, as MKDT; a rare class may be missed)."},
    )
    pretrained: str | None = field(
        default=None, metadata={"help": "Pre-trained model (folder or Hub id); none: random init (`scratch`)."}
    )
    arch: str = field(
        default="convnet", metadata={"help": "Network when starting from scratch (see `pretrain --arch`)."}
    )
    resolution: int | None = field(
        default=None, metadata={"help": "From scratch: image side; default: the target's own size."}
    )
    channels: int | None = field(
        default=None, metadata={"help": "From scratch: 1 or 3 channels; default: the target's own.", "choices": (1, 3)}
    )
    protocol: str = field(
        default="finetune",
        metadata={"help": "finetune (whole network) or linear (frozen features, linear head).",
                  "choices": ("finetune", "linear")},
    )
    max_steps: int = field(default=10_000, metadata={"help": "Optimisation steps (linear: L-BFGS iterations)."})
    probe_rounds: int = field(
        default=1, metadata={"help": "Linear: L-BFGS calls of max_steps iterations each (MKDT: 20 of 20)."}
    )
    probe_line_search: bool = field(
        default=True, metadata={"help": "Linear: L-BFGS with a strong-Wolfe line search (MKDT: none, torch's default)."}
    )
    standardize_features: bool = field(
        default=True, metadata={"help": "Linear: standardise the features with the training images' mean and std "
                                        "(MKDT: raw features)."}
    )
    batch_size: int = field(default=256, metadata={"help": "Images per fine-tuning step, over all processes."})
    learning_rate: float = field(default=0.01, metadata={"help": "Fine-tuning SGD learning rate (cosine decay)."})
    momentum: float = field(default=0.9, metadata={"help": "Fine-tuning SGD momentum."})
    weight_decay: float = field(
        default=5e-4, metadata={"help": "Fine-tuning SGD weight decay; linear: L2 penalty of the classifier."}
    )
    crop_padding: int = field(default=4, metadata={"help": "Fine-tuning random-crop padding, pixels (0: off)."})
    crop_fill: str = crop_fill_field()
    flip: bool = field(default=True, metadata={"help": "Fine-tuning random horizontal flip."})
    target_normalization: str = field(
        default="own",
        metadata={"choices": ("own", "source"),
                  "help": "Mean and std that normalise the target's images: own (measured on the target's training "
                          "images, as the paper) or source (those the pre-trained model was trained with; from "
                          "scratch there are none, so own)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the label sample, the head and the batches."})
    output_dir: str = field(default="transfer", metadata={"help": "Folder for results.json."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Allow writing into a non-empty output_dir."})
    logging_steps: int = field(default=100, metadata={"help": "Fine-tuning: log loss and learning rate every N steps."})
    report_to: str = report_to_field()

    def __post_init__(self):
        check_choices(self)  # every value first, then what the run needs: a wrong value is never hidden behind it
        trackers(self.report_to)
        check_positive(self, "max_train_samples", "max_steps", "probe_rounds", "batch_size", "learning_rate",
                       "resolution", "logging_steps")
        if self.momentum < 0 or self.weight_decay < 0 or self.crop_padding < 0:
            raise ConfigError("momentum, weight_decay and crop_padding must be >= 0.")
        check_few_labels(self.max_train_samples, self.train_fraction)
        if not self.target:
            raise ConfigError("no target: pass --target (a Hub id, a local folder or a built-in name).")
