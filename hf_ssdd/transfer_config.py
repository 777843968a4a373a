"""`transfer`'s config: fine-tune or linearly probe a pre-trained learner on a labelled target, in the paper's
protocol by default and in MKDT's with its few-label and L-BFGS options."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import (
    ConfigError, check_choices, check_few_labels, check_positive, crop_fill_field, report_to_field, trackers,
)


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
