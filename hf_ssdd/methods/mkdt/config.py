"""`MKDTConfig`: MKDT's hyperparameters; defaults are its CIFAR-100 2% settings (its `commands/`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import ConfigError, check_positive
from ..config import DistillConfig


@dataclass
class MKDTConfig(DistillConfig):
    """MKDT distillation: match `syn_steps` SGD steps on the synthetic set, from an expert's weights at a start epoch
    s, to the expert `expert_epochs` later. Defaults are MKDT's CIFAR-100 2% run: m = 1000 high-loss images, 5,000
    iterations, 40 inner steps of 256 images, M = 2, s < 2, image lr 1000, target lr 1, step-size lr 1e-4 from 0.1,
    SGD momentum 0.5. The learner is the experts' (see `hf-ssdd trajectories`)."""

    method: str = field(default="mkdt", metadata=DistillConfig.__dataclass_fields__["method"].metadata)
    init: str = field(default="high_loss", metadata=DistillConfig.__dataclass_fields__["init"].metadata)
    max_steps: int = field(default=5000, metadata={"role": "run", "help": "Matching iterations."})
    syn_steps: int = field(default=40, metadata={"help": "Inner SGD steps on the synthetic set per iteration."})
    syn_batch_size: int = field(default=256, metadata={"help": "Synthetic images per inner step (at most m)."})
    expert_epochs: int = field(default=2, metadata={"help": "M: the target is the expert M epochs after the start."})
    max_start_epoch: int = field(default=2, metadata={"help": "The start epoch s is drawn from 0..max_start_epoch-1."})
    image_learning_rate: float = field(default=1000.0, metadata={"help": "SGD learning rate of the images X_s."})
    target_learning_rate: float = field(default=1.0, metadata={"help": "SGD learning rate of the targets Y_s."})
    step_size_learning_rate: float = field(
        default=1e-4, metadata={"help": "SGD learning rate of the learned inner step size."}
    )
    initial_step_size: float = field(default=0.1, metadata={"help": "The inner step size at the start."})
    momentum: float = field(default=0.5, metadata={"help": "SGD momentum of X_s, Y_s and the step size."})
    segments: int = field(
        default=1,
        metadata={"help": "Expert segments (expert, start epoch) matched per iteration, their gradients averaged; "
                          "processes split them, so use a multiple of the process count (MKDT: 1)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.trajectories:
            raise ConfigError("MKDT matches expert trajectories: pass --trajectories (a folder or Hub repo from "
                              "`hf-ssdd trajectories`).")
        check_positive(self, "segments", "syn_steps", "syn_batch_size", "expert_epochs", "max_start_epoch",
                       "image_learning_rate", "target_learning_rate", "step_size_learning_rate",
                       "initial_step_size")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum={self.momentum} must be in [0, 1).")
