"""Typed configuration, the part every stage shares: the source, the model folder, the learner's ConvNet, the checks
and the errors. Each stage's own dataclass extends these in its own module (`teacher_config`, `pretrain_config`,
`transfer_config`, `trajectories_config`, each method's `config`, `evaluation.config`); every field has its default,
unit and help.

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
            "--resume_from_checkpoint latest (a stopped distill, train-teacher or pretrain), or another --output_dir."
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


@dataclass
class CheckpointConfig:
    """A stage that can be stopped and resumed: `checkpoint-N/` in its output_dir every `save_steps` steps and on
    SIGINT / SIGTERM (`checkpoint.Checkpoints`)."""

    save_steps: int = field(default=1000, metadata={"role": "run", "help": "Write a checkpoint every N steps."})
    save_total_limit: int | None = field(
        default=2, metadata={"role": "run", "help": "Keep only the newest N checkpoints."}
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={"role": "output", "help": "Checkpoint folder to resume from, or 'latest' in output_dir."},
    )
