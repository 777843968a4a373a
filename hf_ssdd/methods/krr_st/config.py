"""`KRRSTConfig`: KRR-ST's hyperparameters; defaults are the paper's CIFAR-100 protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import ConfigError, ConvNetConfig, check_positive, crop_fill_field
from ..config import DistillConfig
from .krr import SOLVERS


@dataclass
class KRRSTConfig(ConvNetConfig, DistillConfig):
    """KRR-ST distillation. Defaults are the paper's CIFAR-100 protocol: m = 1000, ConvNet-3 (128 wide), Adam at
    1e-4 decaying linearly to 1e-7, real batch 1024, 160,000 outer steps, a pool of 10 learners reset every 1,000.
    (`hf-ssdd distill --method mkdt --help`: MKDT's options.)"""

    method: str = field(default="krr_st", metadata=DistillConfig.__dataclass_fields__["method"].metadata)
    batch_size: int = field(default=1024, metadata={"help": "Real images per outer step, over all processes."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Adam learning rate for images and targets."})
    final_lr_ratio: float = field(default=1e-3, metadata={"help": "Learning rate at the last step, relative."})
    max_grad_norm: float | None = field(default=None, metadata={"help": "Clip the outer gradient to this norm."})
    ridge: float = field(default=1e-6, metadata={"help": "KRR regulariser lambda, relative to tr(K_ss)."})
    krr_solver: str = field(
        default="auto",
        metadata={"role": "run",
                  "help": "KRR algebra: auto, dual (Cholesky), primal, or reference (general solve); same result.",
                  "choices": SOLVERS},
    )
    pool_size: int = field(default=10, metadata={"help": "Number l of learners in the model pool."})
    pool_steps: int = field(default=1000, metadata={"help": "U: online steps before a pool learner is reset."})
    pool_learning_rate: float = field(default=0.1, metadata={"help": "SGD learning rate of pool learners."})
    pool_momentum: float = field(default=0.9, metadata={"help": "SGD momentum of pool learners."})
    pool_weight_decay: float = field(default=1e-3, metadata={"help": "SGD weight decay of pool learners."})
    pool_chunk_size: int | None = field(
        default=None,
        metadata={"help": "Train pool learners on X_s in chunks of this many images (gradient accumulation; "
                          "BatchNorm statistics per chunk) to bound memory; default: all m at once, as the paper."},
    )
    teacher_views: int = field(
        default=0,
        metadata={"help": "V > 0: compute the teacher once on V fixed augmented views per real image and read its "
                          "targets from a cache; 0: run the teacher on a fresh view every step (the paper)."},
    )
    crop_padding: int = field(default=4, metadata={"help": "Random-crop padding of real images, pixels (0: off)."})
    crop_fill: str = crop_fill_field()
    flip: bool = field(default=True, metadata={"help": "Random horizontal flip of real images."})
    feature_chunk_size: int | None = field(
        default=None,
        metadata={"role": "run",
                  "help": "Images per forward chunk (memory, not math); default: the largest that fits."},
    )
    shard_synthetic: bool = field(
        default=False,
        metadata={"role": "run",
                  "help": "Each process owns m / P synthetic images and their optimiser state; features are "
                          "gathered to form the full kernel. Same result as unsharded."},
    )
    mixed_precision: str = field(
        default="no",
        metadata={"help": "Precision of the learner and teacher forwards (the KRR solve stays float32).",
                  "choices": ("no", "bf16")},
    )
    reference: bool = field(
        default=False,
        metadata={"help": "Run the authors' step as they do (teacher on every batch, X_s in one pass, general "
                          "solve, float32, pool on all of X_s), overriding the options that change cost: the "
                          "baseline of every speed claim."},
    )

    def __post_init__(self):
        super().__post_init__()
        check_positive(
            self, "learner_depth", "learner_width", "batch_size", "learning_rate", "final_lr_ratio", "ridge",
            "pool_size", "pool_steps", "pool_learning_rate", "feature_chunk_size", "pool_chunk_size", "max_grad_norm",
        )
        if self.pool_steps < 2:
            raise ConfigError(f"pool_steps={self.pool_steps}: warm-up is drawn from [1, pool_steps); use >= 2.")
        if self.teacher_views < 0:
            raise ConfigError(f"teacher_views={self.teacher_views} must be >= 0 (0: no cache).")
        if self.crop_padding < 0:
            raise ConfigError(f"crop_padding={self.crop_padding} must be >= 0.")
