"""Labelled target datasets for transfer evaluation (fine-tuning, linear probing): images, labels and class names.

Any source `data.load_source` reads works (built-in name, imagefolder / parquet / save_to_disk folder, Hub id). The
images are decoded once into one uint8 tensor, as for the source of distillation. Where a dataset has no test split,
`load_target_splits` carves a class-stratified one from train with a fixed seed, so every method is scored on the
same images. `balanced_subset` draws the few-label training sets (e.g. 1% or 10 images per class).

    train, test = load_target_splits("digits", resolution=32, channels=3)
    few = train.select(balanced_subset(train.labels, 100, seed=0))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import data
from .config import ConfigError
from .image_store import decode_images

logger = logging.getLogger(__name__)
CARVED_TEST_FRACTION = 0.2  # of each class, held out as test where a target has no test split



@dataclass
class LabelledImages:
    """uint8 images `(N, C, R, R)`, int64 labels `(N,)` that index `class_names`."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, indices: torch.Tensor) -> "LabelledImages":
        """The images at `indices` `(n,)`, with the same class names."""
        return LabelledImages(self.images[indices], self.labels[indices], list(self.class_names))


# ---------------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------------


def label_column(ds, name: str | None = None) -> str:
    """The column holding labels: `name` if given, else the first `ClassLabel` column, else `label` or `labels`."""
    import datasets

    return data.find_column(ds, "label_column", name, (datasets.ClassLabel,), ("label", "labels"))


def read_labels(ds, column: str) -> tuple[torch.Tensor, list[str]]:
    """int64 labels `(N,)` and class names: a `ClassLabel`'s own, else the sorted distinct values (remapped to 0..K-1).

    Rows labelled -1 (a `ClassLabel`'s "no label", as in many Hub test splits) are an error: they cannot be scored.
    """
    import datasets

    values = ds.select_columns([column]).with_format("numpy")[:][column]
    feature = ds.features[column]
    if isinstance(feature, datasets.ClassLabel):
        labels, names = torch.as_tensor(values, dtype=torch.int64), list(feature.names)
    else:
        distinct, inverse = np.unique(values, return_inverse=True)
        labels, names = torch.as_tensor(inverse.reshape(-1), dtype=torch.int64), [str(v) for v in distinct.tolist()]
    if len(labels) and labels.min() < 0:
        raise ConfigError(f"column {column!r} has unlabelled rows (label -1); use a split with labels.")
    return labels, names


def _labelled(ds, image_column_name, label_column_name, resolution, channels) -> LabelledImages:
    labels, names = read_labels(ds, label_column(ds, label_column_name))
    images, _, _ = decode_images(ds, data.image_column(ds, image_column_name), resolution, channels)
    return LabelledImages(images, labels, names)


def load_target(
    dataset: str,
    *,
    split: str,
    config: str | None = None,
    revision: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
) -> LabelledImages:
    """One labelled split, decoded to `(N, C, R, R)` uint8; `resolution` and `channels` default to the dataset's own."""
    ds = data.load_source(dataset, config, split, revision)
    return _labelled(ds, image_column, label_column, resolution, channels)


def _load_split_if_any(dataset: str, split: str, config, revision):
    """The `datasets.Dataset` of `split`, or None where the source has no such split."""
    if (Path(dataset) / "dataset_info.json").exists():
        return None  # a saved `Dataset` (not a `DatasetDict`) has no splits: load_source would return train again
    try:
        return data.load_source(dataset, config, split, revision)
    except ConfigError:
        return None


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted indices `(train, test)` with `round(fraction * n_c)` of each class's `n_c` images in test."""
    generator = data.step_generator(seed, 0, data.Stream.CARVED_TEST)
    test = []
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        test.append(members[: round(fraction * len(members))])
    in_test = torch.zeros(len(labels), dtype=torch.bool)
    in_test[torch.cat(test)] = True
    return (~in_test).nonzero().squeeze(1), in_test.nonzero().squeeze(1)


def _onto_class_names(part: LabelledImages, names: list[str], what: str) -> LabelledImages:
    """`part` with its labels re-indexed into `names` (by name), so that two splits share one label space."""
    if part.class_names == names:
        return part
    unknown = sorted(set(part.class_names) - set(names))
    if unknown:
        raise ConfigError(f"the {what} split has classes the train split lacks: {', '.join(unknown[:5])}.")
    lookup = torch.tensor([names.index(name) for name in part.class_names], dtype=torch.int64)
    return LabelledImages(part.images, lookup[part.labels], list(names))


def load_target_splits(
    dataset: str,
    *,
    train_split: str = "train",
    test_split: str | None = "test",
    seed: int = 0,
    **options,
) -> tuple[LabelledImages, LabelledImages]:
    """`(train, test)` with the same class names and image format; `options` are those of `load_target` (config,
    revision, image_column, label_column, resolution, channels).

    The test part is `test_split`; where that is None or absent, a class-stratified `CARVED_TEST_FRACTION` of train,
    the same images for a given `seed`.
    """
    train = load_target(dataset, split=train_split, **options)
    test_ds = None
    if test_split is not None:
        test_ds = _load_split_if_any(dataset, test_split, options.get("config"), options.get("revision"))
    if test_ds is None:
        reason = "test_split=None" if test_split is None else f"no {test_split!r} split"
        logger.info(
            "%s: %s, so a stratified %.0f%% of %r (seed %d) is held out as test.",
            dataset, reason, 100 * CARVED_TEST_FRACTION, train_split, seed,
        )
        train_indices, test_indices = stratified_split(train.labels, CARVED_TEST_FRACTION, seed)
        return train.select(train_indices), train.select(test_indices)
    _, c, r, _ = train.images.shape
    test = _labelled(test_ds, options.get("image_column"), options.get("label_column"), r, c)
    return train, _onto_class_names(test, train.class_names, test_split)


# ---------------------------------------------------------------------------------------------------------------------
# Few-label subsets
# ---------------------------------------------------------------------------------------------------------------------


def balanced_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Sorted indices `(n,)` into `labels` `(N,)`, as class-balanced as the class sizes allow.

    Each of the K classes present gets `n // K` images; the remainder goes to classes in an order drawn from `seed`,
    and a class with too few images leaves its share to the others.
    """
    classes, counts = labels.unique(return_counts=True)
    if n > len(labels):
        raise ConfigError(f"n={n} is more than the {len(labels)} labelled images.")
    if n < len(classes):
        raise ConfigError(
            f"n={n} is fewer than the {len(classes)} classes; few-label settings need at least one image per class."
        )
    generator = data.step_generator(seed, 0, data.Stream.BALANCED_SAMPLE)
    order = torch.randperm(len(classes), generator=generator)
    classes, counts = classes[order], counts[order]
    quota = torch.zeros_like(counts)
    while (left := n - int(quota.sum())) > 0:
        open_classes = (quota < counts).nonzero().squeeze(1)
        share = left // len(open_classes)
        if share == 0:
            quota[open_classes[:left]] += 1
        else:
            quota[open_classes] = torch.minimum(quota[open_classes] + share, counts[open_classes])
    chosen = []
    for c, q in zip(classes.tolist(), quota.tolist()):
        members = (labels == c).nonzero().squeeze(1)
        chosen.append(members[torch.randperm(len(members), generator=generator)[:q]])
    return torch.cat(chosen).sort().values


def uniform_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Sorted indices `(n,)` of a uniform random sample of `labels (N,)`, classes ignored (MKDT's few-label subsets:
    a class may get none)."""
    if n > len(labels):
        raise ConfigError(f"n={n} is more than the {len(labels)} labelled images.")
    generator = data.step_generator(seed, 0, data.Stream.UNIFORM_SAMPLE)
    return torch.randperm(len(labels), generator=generator)[:n].sort().values


LABEL_SAMPLES = {"balanced": balanced_subset, "uniform": uniform_subset}  # TransferConfig.label_sampling


def few_label_size(cfg, num_train: int) -> int | None:
    """How many of `num_train` training images a run of `cfg` (a `TransferConfig`) may see: `max_train_samples`,
    else `train_fraction` of them (rounded down, as MKDT), else None: all."""
    if cfg.max_train_samples is not None:
        return cfg.max_train_samples
    if cfg.train_fraction is not None:
        return max(1, int(num_train * cfg.train_fraction))
    return None
