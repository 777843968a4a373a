"""`pretrain`'s config: a learner trained on a small set, by MSE to its targets or by cross-entropy to its labels,
with the paper's recipe of each objective as the default of every field left None (`OBJECTIVE_RECIPES`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .config import (
    CheckpointConfig, ConfigError, ModelOutputConfig, check_choices, check_positive, crop_fill_field, trackers,
)

OBJECTIVE_RECIPES = {  # the paper's pre-training, per objective; a PretrainConfig field left None takes its set's
    "targets": {"learning_rate": 0.1, "weight_decay": 1e-3, "lr_drop": 1.0, "dsa": False},  # KRR-ST: MSE, constant
    "labels": {"learning_rate": 0.01, "weight_decay": 5e-4, "lr_drop": 0.5, "dsa": True},  # supervised sets: CE
}


@dataclass
class PretrainConfig(CheckpointConfig, ModelOutputConfig):
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
                       "logging_steps", "save_steps", "save_total_limit")
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
