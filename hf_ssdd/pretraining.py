"""`pretrain`: train a learner on a small set of images by regressing their targets, then save it in Hub format.

    hf-ssdd pretrain --distilled outputs/distilled --output_dir outputs/pretrained
    hf-ssdd pretrain --distilled user/fashion-mnist-krr-st --arch resnet18 --output_dir outputs/resnet18
    hf-ssdd pretrain --distilled user/a-set-with-labels --resolution 28 --channels 1 --output_dir outputs/labels

This is what a distilled set is for: the learner's head regresses `target (d,)` from `pixel_values` by MSE, and its
features are then transferred (`hf-ssdd transfer`). A set with class labels instead (one distilled by a supervised
method and shared on the Hub; see `training_sets`) trains by cross-entropy with the paper's recipe for such sets
(`pretrain_config.OBJECTIVE_RECIPES`: learning rate x0.1 at half, DSA augmentation). The baselines of the benchmark
use the same `fit_learner` with real subsets, with teacher targets (MSE) or with class labels (cross-entropy).

With `--teacher`, the targets are recomputed by that teacher on each augmented batch of the distilled images:
knowledge distillation that sees no real image (paper Table 4). The teacher is always run in eval mode.

The steps run in `training_loop.run_steps`, shared with fine-tuning and the teacher's training (why not
`transformers.Trainer`: see that module).

A run is checkpointed into `pretrained/checkpoint-N/` every `--save_steps` steps and when SIGINT / SIGTERM stops it;
`--resume_from_checkpoint latest` goes on from the newest, bitwise where the uninterrupted run would be.

Output folder, written into a temporary sibling and renamed into place:

    pretrained/
        config.json, model.safetensors   # AutoModelForImageClassification (head: d regression outputs)
        preprocessor_config.json          # size, mean, std of the distilled set's space
        pretrain_config.yaml, train_log.json, README.md
        runs/                             # tracker logs (--report_to), not pushed
        checkpoint-N/                     # the newest checkpoints (--save_steps, --save_total_limit), not pushed
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import Checkpoints
from .config import ConfigError, check_output_dir
from .data import Augmentation, Stream, batch_indices, step_generator
from .pretrain_config import PretrainConfig
from .training_sets import TrainingSet


def fit_learner(model: nn.Module, data: TrainingSet, cfg: PretrainConfig, accelerator, teacher=None,
                checkpoints=None) -> list[dict]:
    """Train `model` (an `AutoModelForImageClassification`) in place on `data`; return the logged history.

    Steps are `num_epochs * ceil(m / batch_size)`, at most `max_steps`; batch `step` is a slice of a seeded
    permutation of the set, and every process takes its share of it. With `teacher`, targets are its representations
    of each (augmented) batch.
    Fields of `cfg` left None follow the recipe of the objective (`PretrainConfig.for_objective`): class labels
    train by cross-entropy, targets (and a teacher's) by MSE. `checkpoints` (a `checkpoint.Checkpoints`; the
    benchmark, which fits dozens of learners in one process, gives none) checkpoints and resumes the run.
    """
    from .dsa import SiameseAugmentation
    from .training_loop import process_slice, run_steps, sgd

    acc, m = accelerator, len(data.pixel_values)
    uses_labels = data.uses_labels and teacher is None
    cfg = cfg.for_objective(uses_labels)
    batch_size = min(cfg.batch_size, m)
    max_steps = min(cfg.num_epochs * math.ceil(m / batch_size), cfg.max_steps or math.inf)
    model, optimizer = acc.prepare(model, sgd(model.parameters(), cfg))
    scheduler = None
    if cfg.lr_drop < 1:
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [round(cfg.lr_drop * max_steps)], gamma=0.1)
    model.train()
    if teacher is not None:
        teacher.eval()
    local = process_slice(batch_size, acc)
    fill = data.normalization.crop_fill(cfg.crop_fill)  # (C,) colour of the crops' padding

    def step_loss(step: int) -> torch.Tensor:
        indices = batch_indices(m, batch_size, step, cfg.seed)[local]
        x = data.pixel_values[indices]  # (b, C, H, W)
        x = (data.normalization.normalize(x) if x.dtype == torch.uint8 else x).to(acc.device)
        if cfg.crop_padding or cfg.flip:
            generator = step_generator(cfg.seed, step, Stream.PRETRAIN_VIEWS)
            views = Augmentation.sample(batch_size, cfg.crop_padding, cfg.flip, generator)
            x = views[local].apply(x, fill)
        if cfg.dsa:
            generator = step_generator(cfg.seed, step, Stream.PRETRAIN_DSA)
            x = SiameseAugmentation.sample(batch_size, generator)[local].apply(x)
        outputs = model(pixel_values=x).logits
        if teacher is not None:
            y = teacher.on_normalized(x, data.normalization)
        else:
            y = data.targets[indices].to(acc.device)
        return F.cross_entropy(outputs, y) if uses_labels else F.mse_loss(outputs, y)

    history = run_steps(step_loss, optimizer, acc, max_steps, logging_steps=cfg.logging_steps, name="pre-training",
                        scheduler=scheduler, desc="pretrain", model=model, checkpoints=checkpoints)
    model = acc.unwrap_model(model)
    model.eval()
    return history


def default_arch(metadata: dict, arch: str | None) -> tuple[str, dict]:
    """`(arch, options)`: the learner a set's card records (`metadata["learner"]`) when `arch` is None or `convnet`,
    else `arch`."""
    learner = metadata.get("learner") or {}
    if arch not in (None, "convnet"):
        return arch, {}
    if not learner:
        return "convnet", {}
    return "convnet", {k: learner[k] for k in ("depth", "width", "norm", "pooling", "double_width") if k in learner}


def pretrain(cfg: PretrainConfig) -> Path:
    """Pre-train a learner on the set `cfg.distilled` and save it to `cfg.output_dir`; returns that folder."""
    from accelerate.utils import set_seed

    from .modeling import learner_config, new_model
    from .tracking import finish_trackers, stage_accelerator, start_trackers
    from .training_sets import load_training_set

    if not cfg.distilled:
        raise ConfigError("no set: pass --distilled (a folder from `hf-ssdd distill`, or any dataset with an image "
                          "column and a `target` or label column).")
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, resuming=bool(cfg.resume_from_checkpoint))
    checkpoints = Checkpoints.of(cfg)
    acc = stage_accelerator(cfg)
    with acc.main_process_first():
        data = load_training_set(cfg.distilled, cfg.distilled_revision, cfg.image_column, cfg.label_column)
    _, own_channels, own_resolution, _ = data.pixel_values.shape
    channels, resolution = cfg.channels or own_channels, cfg.resolution or own_resolution
    data = data.to_input(channels, resolution)
    teacher = None
    if cfg.teacher is not None:
        from .teachers import Teacher

        teacher = Teacher.from_pretrained(cfg.teacher).to(acc.device)
    step_size = data.metadata.get("step_size")  # an MKDT set's learned inner step size: MKDT pre-trains with it
    if cfg.learning_rate is None and step_size and not data.uses_labels and teacher is None:
        cfg = dataclasses.replace(cfg, learning_rate=step_size)
    cfg = cfg.for_objective(data.uses_labels and teacher is None)
    dim = teacher.dim if teacher is not None else data.num_outputs
    arch, options = default_arch(data.metadata, cfg.arch)
    set_seed(cfg.seed)
    model = new_model(learner_config(arch, channels, resolution, dim, **options))
    model.config.problem_type = "single_label_classification" if data.uses_labels and teacher is None else "regression"

    start_trackers(acc, cfg, "pretrain")
    start = time.perf_counter()
    try:
        history = fit_learner(model, data, cfg, acc, teacher=teacher, checkpoints=checkpoints)
    finally:  # a run stopped by a signal or a non-finite loss keeps its logs too
        finish_trackers(acc)
    stats = {"steps": history[-1]["step"], "final_loss": history[-1]["loss"],
             "wall_time_s": time.perf_counter() - start,
             "num_images": len(data.pixel_values), "resolution": resolution, "distilled_metadata": data.metadata}
    out = Path(cfg.output_dir)
    if acc.is_main_process:
        save_pretrained(model, out, cfg, data.normalization, stats, history)
    acc.wait_for_everyone()
    if cfg.push_to_hub and acc.is_main_process:
        from .hub import push_to_hub

        print(f"pretrain: pushed {out} to {push_to_hub(out, cfg.push_to_hub, repo_type='model', private=cfg.private)}")
    return out


def save_pretrained(model, output_dir, cfg: PretrainConfig, normalization, stats: dict, history: list[dict]) -> Path:
    """Write the model folder (see the module docstring) into a temporary sibling, then rename it into place."""
    from .model_cards import pretrained_card
    from .model_folder import save_model_folder

    card = pretrained_card(model, cfg, stats)
    return save_model_folder(model, output_dir, stats["resolution"], normalization, cfg, "pretrain", history, card)
