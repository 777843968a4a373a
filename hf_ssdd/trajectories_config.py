"""`trajectories`' config: the experts MKDT matches, ConvNet students trained by MSE to the teacher's
representations of the source, and how their weights are recorded."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import ConfigError, ConvNetConfig, SourceConfig, check_positive, report_to_field, trackers

EPOCH_ORDER_STRIDE = 100_000  # the epoch-order stream's step is expert * stride + epoch


@dataclass
class TrajectoriesConfig(ConvNetConfig, SourceConfig):
    """Expert trajectories for MKDT: K students trained by MSE to the teacher's representations, every epoch's
    weights recorded. Defaults are MKDT's: ConvNet-3, width 128, instance norm; SGD lr 0.1, momentum 0.9, weight
    decay 1e-4, batch 256, 20 epochs, 100 experts."""

    teacher: str | None = field(
        default=None, metadata={"help": "Teacher: transformers vision encoder, Hub id or local path."}
    )
    teacher_revision: str | None = field(default=None, metadata={"help": "Git revision of the Hub teacher."})
    teacher_pooling: str = field(
        default="auto",
        metadata={"help": "How the teacher gives one vector.", "choices": ("auto", "cls", "pooler", "mean")},
    )
    num_experts: int = field(default=100, metadata={"help": "Number K of experts."})
    num_epochs: int = field(default=20, metadata={"help": "Epochs each expert trains; epochs + 1 snapshots."})
    batch_size: int = field(default=256, metadata={"help": "Images per SGD step."})
    learning_rate: float = field(default=0.1, metadata={"help": "SGD learning rate (constant)."})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum."})
    weight_decay: float = field(default=1e-4, metadata={"help": "SGD weight decay."})
    learner_norm: str = field(default="instance", metadata=ConvNetConfig.__dataclass_fields__["learner_norm"].metadata)
    learner_double_width: bool = field(
        default=False, metadata=ConvNetConfig.__dataclass_fields__["learner_double_width"].metadata
    )
    seed: int = field(default=0, metadata={"help": "Seed of the experts' initial weights and batches."})
    output_dir: str = field(
        default="trajectories", metadata={"role": "output", "help": "Folder of the trajectories (Hub model layout)."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"role": "output", "help": "Allow replacing a non-empty output_dir."}
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={"role": "output", "choices": ("latest",),
                  "help": "latest: keep the finished experts of output_dir and resume the one in progress."},
    )
    teacher_cache_dir: str | None = field(
        default=None,
        metadata={"role": "output", "help": "Folder of teacher caches; default: $HF_SSDD_CACHE or $HF_HOME/hf_ssdd."},
    )
    logging_steps: int = field(
        default=50,
        metadata={"role": "run", "help": "Log loss and learning rate every N steps (the experts of the main "
                                         "process; step k * steps_per_expert + n for expert k)."},
    )
    report_to: str = report_to_field()
    push_to_hub: str | None = field(
        default=None, metadata={"role": "output", "help": "Hub model repo id to upload the trajectories to."}
    )
    private: bool = field(default=False, metadata={"role": "output", "help": "Create the Hub repo as private."})

    def __post_init__(self):
        super().__post_init__()
        trackers(self.report_to)
        check_positive(self, "num_experts", "num_epochs", "batch_size", "learning_rate", "learner_depth",
                       "learner_width", "logging_steps")
        if self.momentum < 0 or self.weight_decay < 0:
            raise ConfigError("momentum and weight_decay must be >= 0.")
        if self.num_epochs >= EPOCH_ORDER_STRIDE:
            raise ConfigError(f"num_epochs={self.num_epochs} must be below {EPOCH_ORDER_STRIDE}.")
