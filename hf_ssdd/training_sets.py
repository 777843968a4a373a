"""What a learner is pre-trained on: a `TrainingSet`, and how any shared set becomes one.

A set made by hf-ssdd (a card with an `hf_ssdd` block) is read by `DistilledSet.load`, its tensors bit for bit. Any
other `datasets` source, e.g. a set distilled by another method and shared on the Hub as parquet or imagefolder,
needs an image column and one of:

- a float `target` column, `(d,)` per image: representations to regress (MSE), as KRR-ST's;
- a class label column (the first `ClassLabel`, else `label`, or `--label_column`; class indices or class names):
  cross-entropy, as the paper pre-trains the sets of supervised distillation methods.

A set with both is read as targets unless a label column is named. Its images are decoded at their own size and
normalised with their own per-channel mean and std; `TrainingSet.to_input` then converts any set to the channels,
side and normalisation of the learner that trains on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .config import ConfigError
from .data import Normalization, convert_channels

TARGET_COLUMN = "target"


@dataclass
class TrainingSet:
    """Images in the learner's normalised space `(m, C, H, W)` and what to learn from them.

    `pixel_values` may also be uint8 pixels (a whole source, e.g. a mapped `image_store` file): each batch is then
    normalised as it is read, so the set is never copied whole into float32 (4x its bytes).

    `targets` is either float `(m, d)` representations (MSE) or int64 `(m,)` class labels (cross-entropy).
    `metadata` is what the set's card says of it (an hf-ssdd set's provenance; empty for other sets).
    """

    pixel_values: torch.Tensor
    targets: torch.Tensor
    normalization: Normalization
    metadata: dict = field(default_factory=dict)

    @property
    def uses_labels(self) -> bool:
        return not self.targets.is_floating_point()

    @property
    def num_outputs(self) -> int:
        return int(self.targets.max()) + 1 if self.uses_labels else self.targets.shape[1]

    def fingerprint(self) -> str:
        """16 hex digits: sets with equal fingerprints hold the same images and targets (as `DistilledSet`'s)."""
        from .distilled_set import content_hash

        return content_hash(self.pixel_values, self.targets)

    def to_input(self, channels: int, resolution: int, normalization: Normalization | None = None) -> TrainingSet:
        """The set as a learner of `channels` and side `resolution` that normalises with `normalization` sees it:
        de-normalised, grey <-> RGB (luma weights), resized (bilinear, antialiased) and normalised again. Without
        `normalization` the set keeps its own, re-measured where the channels change. Unchanged: this set itself."""
        _, c, h, w = self.pixel_values.shape
        same_space = normalization is None or normalization == self.normalization
        if (c, h, w) == (channels, resolution, resolution) and same_space:
            return self
        x = self.normalization.denormalize(self.pixel_values.float())  # (m, c, h, w) pixels in [0, 1]
        x = convert_channels(x, channels)
        if (h, w) != (resolution, resolution):
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        if normalization is None:
            normalization = self.normalization if c == channels else Normalization.measure(x.clamp(0, 1))
        return TrainingSet(normalization.normalize(x), self.targets, normalization, self.metadata)


def distilled_training_set(distilled) -> TrainingSet:
    """A `DistilledSet` as a `TrainingSet`: its synthetic images and learned targets."""
    return TrainingSet(distilled.pixel_values.float(), distilled.targets.float(), distilled.normalization,
                       distilled.metadata)


def load_training_set(name: str, revision: str | None = None, image_column: str | None = None,
                      label_column: str | None = None) -> TrainingSet:
    """The set `name` (folder or Hub id), as the module docstring says; a `ConfigError` naming what is missing."""
    from .data import image_column as find_image_column, load_source
    from .distilled_set import DistilledSet, hf_ssdd_card
    from .image_store import decode_images

    if hf_ssdd_card(name, revision) is not None:
        return distilled_training_set(DistilledSet.load(name, revision=revision))
    ds = load_source(name, None, "train", revision)
    if len(ds) == 0:
        raise ConfigError(f"{name} has no rows in its train split.")
    images, _, _ = decode_images(ds, find_image_column(ds, image_column), workers=1)
    normalization = Normalization.measure(images)
    if TARGET_COLUMN in ds.column_names and label_column is None:
        targets = _float_targets(ds, name)
    else:
        from .targets import label_column as find_label_column

        try:
            column = find_label_column(ds, label_column)
        except ConfigError as err:
            if label_column is not None:
                raise
            raise ConfigError(f"{name} has neither a float `{TARGET_COLUMN}` column (representations, MSE) nor a "
                              f"class label column (cross-entropy) among {', '.join(ds.column_names)}; pass "
                              "--label_column.") from err
        targets = _labels(ds, column, name)
    return TrainingSet(normalization.normalize(images), targets, normalization)


def _float_targets(ds, name: str) -> torch.Tensor:
    """The `target` column as float32 `(m, d)` (a scalar per row is `d = 1`)."""
    try:
        targets = torch.tensor(ds[TARGET_COLUMN], dtype=torch.float32)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{name}: the `{TARGET_COLUMN}` column must hold numbers, one list of d per image "
                          f"({type(err).__name__}: {err}).") from None
    targets = targets.view(len(targets), -1)
    if not torch.isfinite(targets).all():
        raise ConfigError(f"{name}: the `{TARGET_COLUMN}` column holds NaN or infinite values.")
    return targets


def _labels(ds, column: str, name: str) -> torch.Tensor:
    """A class label column as int64 `(m,)`, every label a class index >= 0. Class names (strings, as a parquet
    set without a `ClassLabel` feature holds them) are numbered in sorted order, as targets' labels are."""
    import datasets

    from .targets import read_labels

    if ds.features[column] == datasets.Value("string"):
        return read_labels(ds, column)[0]
    values = ds[column]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{name}: the label column {column!r} must hold class indices (integers); it holds "
                          f"{type(values[0]).__name__} values. Name another with --label_column, or give a float "
                          f"`{TARGET_COLUMN}` column to regress.")
    labels = torch.tensor(values, dtype=torch.long)
    if labels.min() < 0:
        raise ConfigError(f"{name}: the label column {column!r} holds negative labels (unlabelled rows?).")
    return labels
