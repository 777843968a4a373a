"""`transfer`: how much a pre-trained learner helps on a labelled target task, as test accuracy.

    hf-ssdd transfer --pretrained outputs/pretrained --target fashion_mnist --max_train_samples 100
    hf-ssdd transfer --pretrained outputs/pretrained --target digits --protocol linear
    hf-ssdd transfer --target fashion_mnist --arch convnet       # no --pretrained: the `scratch` baseline

Two protocols. `finetune` (the paper's): a new linear head, then the whole network trained with cross-entropy by
SGD with a cosine schedule on crop + flip views. `linear`: the network frozen in eval mode, its features
standardised, and a logistic-regression head fitted to convergence by L-BFGS (deterministic, nothing to tune but
the L2 penalty; `probe_rounds`, `probe_line_search` and `standardize_features` give MKDT's probe instead). The few
labelled images are `max_train_samples` or a `train_fraction` of the training split, class-balanced or uniform.
Target images are converted to the network's channels and side and normalised with the target's own mean and std,
as the paper (`--target_normalization source`: with the pre-training statistics). Accuracy comes
from the `evaluate` module shipped in `hf_ssdd/metrics`.

Fine-tuning steps run in `training_loop.run_steps`, shared with pre-training and the teacher's training (why not
`transformers.Trainer`: see that module).

Writes `output_dir/results.json` and the resolved `transfer_config.yaml`; when `--pretrained` is a local folder, the
result is also merged into its card's `model-index`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .atomic import write_file
from .config import ConfigError, check_output_dir, save_config
from .data import Augmentation, Normalization, Stream, batch_indices, step_generator
from .targets import LABEL_SAMPLES, LabelledImages, few_label_size, load_target_splits
from .transfer_config import TransferConfig


def load_pretrained(name_or_path: str):
    """`(model, normalization, (channels, side))`: a pre-trained `AutoModelForImageClassification` and the input it
    was trained on, read from its preprocessor_config.json (the side falls back to the config's `image_size`)."""
    from transformers import AutoModelForImageClassification

    from .image_processing import ImageProcessing

    try:
        model = AutoModelForImageClassification.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"pretrained={name_or_path!r} cannot be loaded ({reason}); check --pretrained.") from None
    processing = ImageProcessing.for_model(name_or_path, None, model.config)
    side, mean, std = processing.image_size, processing.mean, processing.std
    if not isinstance(side, int):
        raise ConfigError(f"cannot tell the input size of {name_or_path!r}: no preprocessor_config.json size and "
                          "no image_size in its config.")
    return model, Normalization(tuple(mean), tuple(std)), (model.config.num_channels, side)


def batched(fn, x: torch.Tensor, device, chunk_size: int = 1024) -> torch.Tensor:
    """`fn` over `x` in chunks, without gradients; results concatenated on the CPU."""
    with torch.no_grad():
        return torch.cat([fn(x[i : i + chunk_size].to(device)).float().cpu() for i in range(0, len(x), chunk_size)])


def accuracy(model, images: torch.Tensor, labels: torch.Tensor, normalization: Normalization, device) -> float:
    """Top-1 accuracy of `model` (eval mode) on uint8 `images (N, C, H, W)`, computed by the shipped metric."""
    model.eval()
    logits = batched(lambda x: model(pixel_values=normalization.normalize(x)).logits, images, device)
    return shipped_accuracy(logits.argmax(1), labels)


def shipped_accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of `predictions (N,)` equal to `labels (N,)`, from the `evaluate` module in `hf_ssdd/metrics`."""
    import evaluate

    from .metrics import metric_path

    metric = evaluate.load(metric_path("accuracy"))
    return metric.compute(predictions=predictions.tolist(), references=labels.tolist())["accuracy"]


def finetune(model, train: LabelledImages, normalization: Normalization, cfg: TransferConfig, accelerator) -> list:
    """Train the whole `model` in place with cross-entropy on augmented views; return the logged losses."""
    from .training_loop import process_slice, run_steps, sgd

    acc, n = accelerator, len(train.images)
    batch_size = min(cfg.batch_size, n)
    optimizer = sgd(model.parameters(), cfg)
    cosine = lambda step: 0.5 * (1 + math.cos(math.pi * step / cfg.max_steps))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    wrapped, optimizer = acc.prepare(model, optimizer)
    wrapped.train()
    local = process_slice(batch_size, acc)
    fill = normalization.crop_fill(cfg.crop_fill)

    def step_loss(step: int) -> torch.Tensor:
        indices = batch_indices(n, batch_size, step, cfg.seed)[local]
        generator = step_generator(cfg.seed, step, Stream.FINETUNE_VIEWS)
        views = Augmentation.sample(batch_size, cfg.crop_padding, cfg.flip, generator)
        x = views[local].apply(normalization.normalize(train.images[indices].to(acc.device)), fill)
        return F.cross_entropy(wrapped(pixel_values=x).logits, train.labels[indices].to(acc.device))

    history = run_steps(step_loss, optimizer, acc, cfg.max_steps, logging_steps=cfg.logging_steps, name="fine-tuning",
                        scheduler=scheduler, desc="finetune")
    model.eval()
    return history


def linear_probe(model, train: LabelledImages, test: LabelledImages, normalization, cfg: TransferConfig, device):
    """Accuracy on `test` of a logistic regression on the frozen features of `model` (standardised, unless
    `cfg.standardize_features` is off)."""
    from .modeling import features

    model.eval()
    embed = lambda x: features(model, normalization.normalize(x))  # noqa: E731
    train_features, test_features = batched(embed, train.images, device), batched(embed, test.images, device)
    predictions = logistic_regression(train_features, train.labels, test_features, train.num_classes,
                                      max_steps=cfg.max_steps, weight_decay=cfg.weight_decay, seed=cfg.seed,
                                      rounds=cfg.probe_rounds, line_search=cfg.probe_line_search,
                                      standardize=cfg.standardize_features)
    return shipped_accuracy(predictions, test.labels)


def logistic_regression(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                        num_classes: int, *, max_steps: int, weight_decay: float, seed: int, rounds: int = 1,
                        line_search: bool = True, standardize: bool = True) -> torch.Tensor:
    """Predicted classes `(n_test,)` of a logistic regression fitted by L-BFGS on `train_features (n, p)`:
    `rounds` calls of `max_steps` iterations, loss cross-entropy + `weight_decay / 2 * ||W||^2` (the weights, not the
    bias). Ours: both sets standardised with the training features' mean and std, a strong-Wolfe line search, one
    round to convergence. MKDT's `train_clf`: raw features, torch's L-BFGS without line search, 20 rounds of 20
    iterations, `1e-3 * ||W||^2` (weight_decay 2e-3)."""
    if standardize:
        mean, std = train_features.mean(0), train_features.std(0).clamp_min(1e-6)
        train_features, test_features = (train_features - mean) / std, (test_features - mean) / std
    torch.manual_seed(seed)
    head = nn.Linear(train_features.shape[1], num_classes)
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=max_steps,
                                  line_search_fn="strong_wolfe" if line_search else None)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(head(train_features), train_labels) + weight_decay * head.weight.pow(2).sum() / 2
        loss.backward()
        return loss

    for _ in range(rounds):
        optimizer.step(closure)
    with torch.no_grad():
        return head(test_features).argmax(1)


def input_normalization(cfg: TransferConfig, pretrained: Normalization | None, train: LabelledImages) -> Normalization:
    """The normalisation of the target's images: the pre-trained model's own (`target_normalization: source`), or
    the per-channel mean and std `(C,)` of `train`, the images the run trains on (`own`, the paper's; always so from
    scratch, where there is no source)."""
    if pretrained is not None and cfg.target_normalization == "source":
        return pretrained
    return Normalization.measure(train.images)


def run_transfer(cfg: TransferConfig, accelerator, splits=None, before_probe=None) -> dict:
    """Transfer as `cfg` says and return the result (what `results.json` holds); writes nothing but the logs of
    `accelerator`'s trackers, started once the model and the target are loaded.

    `splits` (train, test) skips loading the target, for callers that transfer many models to one target.
    `before_probe(model)` runs on the network, on its device, just before a linear probe freezes it (the benchmark
    re-estimates its BatchNorm statistics there).
    """
    from accelerate.utils import set_seed

    from .modeling import learner_config, new_model, replace_head
    from .tracking import start_trackers

    set_seed(cfg.seed)
    start = time.perf_counter()
    model, normalization, channels, side = None, None, cfg.channels, cfg.resolution
    if cfg.pretrained is not None:
        model, normalization, (channels, side) = load_pretrained(cfg.pretrained)
    with accelerator.main_process_first():
        train, test = splits or load_splits(cfg, side, channels)
    size = few_label_size(cfg, len(train.images))
    if size is not None and size < len(train.images):
        train = train.select(LABEL_SAMPLES[cfg.label_sampling](train.labels, size, cfg.seed))
    if model is None:
        _, channels, side, _ = train.images.shape
        model = new_model(learner_config(cfg.arch, channels, side, num_labels=train.num_classes))
    normalization = input_normalization(cfg, normalization, train)
    torch.manual_seed(cfg.seed)
    replace_head(model, train.num_classes, dict(enumerate(train.class_names)))
    model.to(accelerator.device)
    start_trackers(accelerator, cfg, "transfer")
    if cfg.protocol == "linear":
        if before_probe is not None:
            before_probe(model)
        score = linear_probe(model, train, test, normalization, cfg, accelerator.device)
    else:
        finetune(model, train, normalization, cfg, accelerator)
        score = accuracy(model, test.images, test.labels, normalization, accelerator.device)
    accelerator.log({"accuracy": score}, step=cfg.max_steps)
    return {
        "accuracy": score,
        "target": cfg.target,
        "protocol": cfg.protocol,
        "pretrained": cfg.pretrained,
        "arch": getattr(model.config, "arch", model.config.model_type),
        "seed": cfg.seed,
        "max_train_samples": cfg.max_train_samples,
        "train_fraction": cfg.train_fraction,
        "label_sampling": cfg.label_sampling,
        "num_train": len(train.images),
        "num_test": len(test.images),
        "num_classes": train.num_classes,
        "train_split": cfg.train_split,
        "test_split": cfg.test_split,
        "max_steps": cfg.max_steps,
        "target_normalization": cfg.target_normalization,
        "wall_time_s": time.perf_counter() - start,
    }


def load_splits(cfg: TransferConfig, side: int | None, channels: int | None):
    """`(train, test)` of the target at the network's input format; a carved test split always uses seed 0."""
    return load_target_splits(
        cfg.target, train_split=cfg.train_split, test_split=cfg.test_split, config=cfg.target_config,
        revision=cfg.target_revision, image_column=cfg.image_column, label_column=cfg.label_column,
        resolution=side, channels=channels, seed=0,
    )


def transfer(cfg: TransferConfig) -> dict:
    """Run `cfg`, write `output_dir/results.json` beside its `transfer_config.yaml`, add the result to a local
    pre-trained model's card."""
    from .tracking import finish_trackers, stage_accelerator

    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir)
    acc = stage_accelerator(cfg)
    result = run_transfer(cfg, acc)
    finish_trackers(acc)
    if acc.is_main_process:
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_file(out / "transfer_config.yaml", lambda path: save_config(cfg, path))
        write_file(out / "results.json", lambda path: path.write_text(json.dumps(result, indent=2) + "\n"))
        if cfg.pretrained and (Path(cfg.pretrained) / "README.md").is_file():
            from .model_cards import add_results

            add_results(cfg.pretrained, [result])
        print(f"transfer: {cfg.protocol} accuracy on {cfg.target} = {result['accuracy']:.4f} -> {out / 'results.json'}")
    acc.wait_for_everyone()
    return result
