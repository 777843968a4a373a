"""`train-teacher`: a Barlow Twins encoder trained on the source images, saved as a plain transformers model.

    hf-ssdd train-teacher --output_dir teacher                  # Fashion-MNIST, ~5 min on 2 CPU cores
    accelerate launch recipes/train_teacher.py --config recipes/configs/fashion_mnist_teacher.yaml
    hf-ssdd distill --teacher teacher ...

The encoder is a built-in transformers architecture (`--arch resnet` or `convnext`, sized for small images), which
`AutoModel.from_pretrained(output_dir)` loads with no remote code, or the paper's ResNet-18 (`--arch resnet18 --stem
cifar`; also resnet34, resnet50, any widths and depths) from `hf_ssdd.resnet`, which `AutoModel` loads after
`import hf_ssdd`, or with `trust_remote_code=True` from the code saved beside the weights. `hf_ssdd.teachers.Teacher`
feeds it exactly as in training: the views are resampled to `image_size` and normalised with the source's mean/std, both
recorded in `preprocessor_config.json`. Its `pooler_output` is the representation; the projector is discarded.

Each process takes its slice of the global batch of step `(seed, step)`; its views are drawn from a generator seeded
by `(seed, step, process)`, so a run is reproducible for a given number of processes. The loss is computed on each
process's slice (cross-correlation over the local batch) and the gradients are averaged.

The steps run in `training_loop.run_steps`, shared with pre-training and fine-tuning (why not `transformers.Trainer`:
see that module).

A long run is checkpointed into `teacher/checkpoint-N/` every `--save_steps` steps and when SIGINT / SIGTERM stops
it; `--resume_from_checkpoint latest` goes on from the newest, bitwise where the uninterrupted run would be.

Output folder, written by the main process into a temporary sibling folder, then renamed into place:

    teacher/
        config.json, model.safetensors   # AutoModel.from_pretrained
        preprocessor_config.json          # size, mean, std (ViTImageProcessor format)
        teacher_config.yaml               # the resolved TeacherTrainConfig (`--config` loads it again)
        train_log.json                    # loss and learning rate every logging_steps
        README.md                         # model card
        runs/                             # tracker logs (--report_to), not pushed
        checkpoint-N/                     # the newest checkpoints (--save_steps, --save_total_limit), not pushed
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

from .barlow_twins import SSLAugmentation, barlow_twins_loss, projector
from .checkpoint import Checkpoints
from .config import ConfigError, check_output_dir
from .teacher_config import TeacherTrainConfig
from .resnet import PRESETS, TorchvisionResNetConfig


# ---------------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------------


def _resnet(cfg: TeacherTrainConfig, channels: int, image_size: int):
    from transformers import ResNetConfig

    return ResNetConfig(
        num_channels=channels, embedding_size=cfg.hidden_sizes[0], hidden_sizes=list(cfg.hidden_sizes),
        depths=list(cfg.depths), layer_type="basic",
    )


def _convnext(cfg: TeacherTrainConfig, channels: int, image_size: int):
    from transformers import ConvNextConfig

    return ConvNextConfig(
        num_channels=channels, num_stages=len(cfg.depths), patch_size=cfg.patch_size,
        hidden_sizes=list(cfg.hidden_sizes), depths=list(cfg.depths), image_size=image_size,
    )


def _torchvision_resnet(cfg: TeacherTrainConfig, channels: int, image_size: int):
    return TorchvisionResNetConfig(
        num_channels=channels, hidden_sizes=list(cfg.hidden_sizes), depths=list(cfg.depths),
        block=PRESETS[cfg.arch]["block"], stem=cfg.stem, stem_stride=cfg.stem_stride, stem_padding=cfg.stem_padding,
    )


# every one pools into (n, hidden_sizes[-1])
ENCODER_CONFIGS = {"resnet": _resnet, "convnext": _convnext, **dict.fromkeys(PRESETS, _torchvision_resnet)}


def build_encoder(cfg: TeacherTrainConfig, channels: int, image_size: int) -> nn.Module:
    """A randomly initialised transformers encoder for `(n, channels, image_size, image_size)` inputs."""
    from transformers import AutoModel

    return AutoModel.from_config(ENCODER_CONFIGS[cfg.arch](cfg, channels, image_size))


class BarlowTwins(nn.Module):
    """Encoder + projector: `(n, C, S, S)` normalised pixels -> projections `(n, D)`. Only the encoder is kept."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.projector = encoder, head

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(pixel_values=pixel_values).pooler_output.flatten(1))


def warmup_cosine(max_steps: int, warmup_steps: int):
    """Learning-rate factor at each step: linear from 0 to 1 over `warmup_steps`, then cosine down to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, max_steps - warmup_steps)))

    return factor


# ---------------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------------


def fit_barlow_twins(
    encoder: nn.Module, images: torch.Tensor, normalization, cfg: TeacherTrainConfig, accelerator, on_step=None,
    checkpoints=None,
) -> list[dict]:
    """Train `encoder` in place with Barlow Twins on uint8 `images (N, C, R, R)`; returns the logged history.
    `on_step(n)` runs after the `n`-th update, and `checkpoints` (a `checkpoint.Checkpoints`) checkpoints and resumes
    the encoder, its projector and AdamW (`training_loop.run_steps`).

    Each entry is `{"step", "loss", "learning_rate"}`, the loss averaged over the steps since the previous entry
    and over processes.
    """
    from .data import Stream, batch_indices, step_generator
    from .training_loop import process_slice, run_steps

    acc = accelerator
    image_size = cfg.image_size or images.shape[-1]
    augment = SSLAugmentation(
        scale=(cfg.min_crop_scale, 1.0), flip=cfg.flip, brightness=cfg.color_jitter, contrast=cfg.color_jitter,
        saturation=cfg.color_jitter,
    )
    width = cfg.projector_dim
    model = BarlowTwins(encoder, projector(cfg.hidden_sizes[-1], (width, width, width)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.max_steps, round(cfg.warmup_ratio * cfg.max_steps))
    )
    model, optimizer = acc.prepare(model, optimizer)
    model.train()
    local = process_slice(cfg.batch_size, acc)

    def step_loss(step: int) -> torch.Tensor:
        indices = batch_indices(len(images), cfg.batch_size, step, cfg.seed)[local]
        x = images[indices].to(acc.device).float() / 255  # (b, C, R, R)
        generator = step_generator(cfg.seed, step, Stream.SSL_VIEWS + acc.process_index)
        views = torch.cat([augment(x, generator, image_size), augment(x, generator, image_size)])  # (2b, C, S, S)
        z1, z2 = model(normalization.normalize(views)).chunk(2)  # (b, D) each
        return barlow_twins_loss(z1, z2, cfg.lambda_offdiag)

    history = run_steps(step_loss, optimizer, acc, cfg.max_steps, logging_steps=cfg.logging_steps,
                        name="Barlow Twins", scheduler=scheduler, desc="train-teacher", leave=True, on_step=on_step,
                        model=model, checkpoints=checkpoints)
    encoder.eval()
    return history


def train_teacher(cfg: TeacherTrainConfig) -> Path:
    """Train a Barlow Twins teacher on `cfg`'s source images and save it to `cfg.output_dir`; returns that folder."""
    from accelerate.utils import set_seed

    from .data import Normalization
    from .image_store import load_images
    from .tracking import finish_trackers, stage_accelerator, start_trackers

    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, resuming=bool(cfg.resume_from_checkpoint))
    checkpoints = Checkpoints.of(cfg)
    acc = stage_accelerator(cfg)
    if cfg.batch_size % acc.num_processes:
        raise ConfigError(
            f"batch_size={cfg.batch_size} does not split over {acc.num_processes} processes; use a multiple."
        )
    set_seed(cfg.seed)
    with acc.main_process_first():
        source = load_images(cfg)
    images, resolution, channels = source.images, source.resolution, source.channels
    normalization = Normalization.resolve(images, cfg.mean, cfg.std)
    image_size = cfg.image_size or resolution
    encoder = build_encoder(cfg, channels, image_size)

    start_trackers(acc, cfg, "train-teacher")
    start = time.perf_counter()
    try:
        history = fit_barlow_twins(encoder, images, normalization, cfg, acc, checkpoints=checkpoints)
    finally:  # a run stopped by a signal or a non-finite loss keeps its logs too
        finish_trackers(acc)
    stats = {
        "num_images": len(images), "resolution": resolution, "channels": channels, "image_size": image_size,
        "steps": cfg.max_steps, "final_loss": history[-1]["loss"], "wall_time_s": time.perf_counter() - start,
        "num_processes": acc.num_processes, "device": acc.device.type,
    }
    out = Path(cfg.output_dir)
    if acc.is_main_process:
        save_teacher(encoder, out, cfg, normalization, stats, history)
    acc.wait_for_everyone()
    if cfg.push_to_hub and acc.is_main_process:
        from .hub import push_to_hub

        url = push_to_hub(out, cfg.push_to_hub, repo_type="model", private=cfg.private)
        print(f"train-teacher: pushed {out} to {url}")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------------------------------


def save_teacher(encoder, output_dir, cfg: TeacherTrainConfig, normalization, stats: dict, history: list[dict]) -> Path:
    """Write the teacher folder (see the module docstring) atomically: into a temporary sibling, then one rename.

    `stats` holds num_images, resolution, channels, image_size, steps, final_loss, wall_time_s, num_processes and
    device, for the card. Main process only.
    """
    from .model_cards import teacher_card
    from .model_folder import save_model_folder

    card = teacher_card(cfg, normalization, stats, encoder)
    return save_model_folder(encoder, output_dir, stats["image_size"], normalization, cfg, "teacher", history, card)
