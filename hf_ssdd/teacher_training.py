"""`train-teacher`: a Barlow Twins encoder trained on the source images, saved as a plain transformers model.

    hf-ssdd train-teacher --output_dir teacher                  # Fashion-MNIST, ~5 min on 2 CPU cores
    accelerate launch recipes/train_teacher.py --config recipes/configs/fashion_mnist_teacher.yaml
    hf-ssdd distill --teacher teacher ...

The encoder is a built-in transformers architecture (ResNet or ConvNeXt, sized for small images), so that
`AutoModel.from_pretrained(output_dir)` loads it with no remote code, and `hf_ssdd.teachers.Teacher` feeds it
exactly as in training: the views are resampled to `image_size` and normalised with the source's mean/std, both
recorded in `preprocessor_config.json`. Its `pooler_output` is the representation; the projector is discarded.

Each process takes its slice of the global batch of step `(seed, step)`; its views are drawn from a generator seeded
by `(seed, step, process)`, so a run is reproducible for a given number of processes. The loss is computed on each
process's slice (cross-correlation over the local batch) and the gradients are averaged.

Output folder, written by the main process into a temporary sibling folder, then renamed into place:

    teacher/
        config.json, model.safetensors   # AutoModel.from_pretrained
        preprocessor_config.json          # size, mean, std (ViTImageProcessor format)
        teacher_config.yaml               # the resolved TeacherTrainConfig (`--config` loads it again)
        train_log.json                    # loss and learning rate every logging_steps
        README.md                         # model card
        runs/                             # tracker logs (--report_to), not pushed
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
import yaml
from torch import nn

from .barlow_twins import SSLAugmentation, barlow_twins_loss, projector
from .config import ConfigError, TeacherTrainConfig, check_output_dir
from .data import FASHION_MNIST_HUB_ID

HUB_DATASETS = {"fashion_mnist": FASHION_MNIST_HUB_ID}  # built-in sources -> their Hub ids for the card


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


ENCODER_CONFIGS = {"resnet": _resnet, "convnext": _convnext}  # both pool into (n, hidden_sizes[-1])


def build_encoder(cfg: TeacherTrainConfig, channels: int, image_size: int) -> nn.Module:
    """A randomly initialised transformers encoder for `(n, channels, image_size, image_size)` inputs."""
    from transformers import AutoModel

    return AutoModel.from_config(ENCODER_CONFIGS[cfg.architecture](cfg, channels, image_size))


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


def fit(encoder: nn.Module, images: torch.Tensor, normalization, cfg: TeacherTrainConfig, accelerator) -> list[dict]:
    """Train `encoder` in place with Barlow Twins on uint8 `images (N, C, R, R)`; returns the logged history.

    Each entry is `{"step", "loss", "learning_rate"}`, the loss averaged over the steps since the previous entry
    and over processes.
    """
    from tqdm.auto import tqdm

    from .data import Stream, batch_indices, step_generator

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

    history, window, tic = [], [], time.perf_counter()
    bar = tqdm(range(cfg.max_steps), desc="train-teacher", disable=not acc.is_main_process)
    for step in bar:
        indices = batch_indices(len(images), cfg.batch_size, step, cfg.seed)
        x = images[indices.chunk(acc.num_processes)[acc.process_index]].to(acc.device).float() / 255  # (b, C, R, R)
        generator = step_generator(cfg.seed, step, Stream.SSL_VIEWS + acc.process_index)
        views = torch.cat([augment(x, generator, image_size), augment(x, generator, image_size)])  # (2b, C, S, S)
        z1, z2 = model(normalization.normalize(views)).chunk(2)  # (b, D) each
        loss = barlow_twins_loss(z1, z2, cfg.lambda_offdiag)
        acc.backward(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        window.append(loss.detach())
        if (step + 1) % cfg.logging_steps == 0 or step + 1 == cfg.max_steps:
            mean_loss = acc.reduce(torch.stack(window).mean(), "mean").item()
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"Barlow Twins loss is {mean_loss} at step {step + 1}; lower --learning_rate.")
            entry = {"step": step + 1, "loss": mean_loss, "learning_rate": scheduler.get_last_lr()[0]}
            history.append(entry)
            step_time, tic = (time.perf_counter() - tic) / len(window), time.perf_counter()
            acc.log({"loss": entry["loss"], "lr": entry["learning_rate"], "step_time_s": step_time}, step=step + 1)
            bar.set_postfix(loss=f"{mean_loss:.4g}", lr=f"{entry['learning_rate']:.2e}")
            window = []
    bar.close()
    encoder.eval()
    return history


def train_teacher(cfg: TeacherTrainConfig) -> Path:
    """Train a Barlow Twins teacher on `cfg`'s source images and save it to `cfg.output_dir`; returns that folder."""
    from accelerate.utils import set_seed

    from .data import Normalization, load_images
    from .tracking import finish_trackers, stage_accelerator, start_trackers

    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir)
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
    history = fit(encoder, images, normalization, cfg, acc)
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
    from .model_folder import save_model_folder

    card = model_card(cfg, normalization, stats, encoder)
    return save_model_folder(encoder, output_dir, stats["image_size"], normalization, cfg, "teacher", history, card)


def model_card(cfg: TeacherTrainConfig, normalization, stats: dict, encoder) -> str:
    """README.md: Hub metadata, then how the teacher was trained and how to load and use it."""
    from . import __version__
    from .distilled_set import public_name

    dataset = HUB_DATASETS.get(cfg.dataset, public_name(cfg.dataset))
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "image-feature-extraction",
        "tags": ["self-supervised", "barlow-twins", "hf-ssdd", cfg.architecture],
        **({"datasets": [dataset]} if not Path(cfg.dataset).exists() else {}),
    }
    s, side = stats, stats["image_size"]
    params = sum(p.numel() for p in encoder.parameters())
    epochs = s["steps"] * cfg.batch_size / s["num_images"]
    mean = [round(v, 4) for v in normalization.mean]
    std = [round(v, 4) for v in normalization.std]
    values = {k: public_name(v) if isinstance(v, str) else v for k, v in dataclasses.asdict(cfg).items()}
    hyperparameters = "\n".join(f"| `{k}` | `{v}` |" for k, v in values.items())
    name = cfg.push_to_hub or public_name(cfg.output_dir)
    return f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

# Barlow Twins teacher: {cfg.architecture} on `{dataset}`

A {cfg.architecture} encoder ({params / 1e6:.2f}M parameters, stages {cfg.hidden_sizes}, blocks {cfg.depths}) trained
from scratch, without labels, with Barlow Twins (Zbontar et al., *Barlow Twins: Self-Supervised Learning via
Redundancy Reduction*, ICML 2021) on the {s["num_images"]} images of `{dataset}` (split `{cfg.split}`),
{s["resolution"]}x{s["resolution"]} with {s["channels"]} channel(s), by hf-ssdd {__version__} `train-teacher`.
Its representation is `pooler_output`, a {cfg.hidden_sizes[-1]}-d vector per image. It is meant as the frozen teacher
of KRR-ST dataset distillation.

## Training

- Objective: Barlow Twins, off-diagonal weight {cfg.lambda_offdiag}, on a projector of widths
  {[cfg.projector_dim] * 3} (Linear-BN-ReLU x2, Linear), discarded after training.
- Views: random resized crop (area {cfg.min_crop_scale}-1, aspect 3/4-4/3) resampled to {side}x{side},
  horizontal flip {"on" if cfg.flip else "off"}, brightness/contrast{"/saturation" if s["channels"] == 3 else ""}
  jitter {cfg.color_jitter} (p = 0.8){", grey with p = 0.2" if s["channels"] == 3 else ""}.
- Input normalisation: mean {mean}, std {std} (in [0, 1] pixel units).
- Optimiser: AdamW, learning rate {cfg.learning_rate}, weight decay {cfg.weight_decay}, linear warm-up over
  {cfg.warmup_ratio:.0%} of the steps, then cosine to 0.
- {s["steps"]} steps of {cfg.batch_size} images ({epochs:.1f} epochs), seed {cfg.seed}, on {s["num_processes"]}
  process(es) ({s["device"]}), {s["wall_time_s"]:.0f} s wall time.
- Final loss: {s["final_loss"]:.2f} (mean of the last {cfg.logging_steps} steps; the curve is in `train_log.json`).

| hyperparameter | value |
|---|---|
{hyperparameters}

The same run: `hf-ssdd train-teacher --config teacher_config.yaml`.

## Use

```python
import torch
from transformers import AutoModel

model = AutoModel.from_pretrained("{name}").eval()
mean = torch.tensor({mean}).view(1, -1, 1, 1)
std = torch.tensor({std}).view(1, -1, 1, 1)
# x: (n, {s["channels"]}, {side}, {side}) pixels in [0, 1]
features = model(pixel_values=(x - mean) / std).pooler_output.flatten(1)  # (n, {cfg.hidden_sizes[-1]})
```

`preprocessor_config.json` holds the same size and normalisation. As the teacher of a distillation:

```bash
hf-ssdd distill --teacher {name} --dataset {values["dataset"]} --output_dir distilled
```
"""
