"""The methods compared: each turns (source, distilled set, seed) into the set a model is pre-trained on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..config import ConfigError, SourceConfig


def source_config(metadata: dict, split: str | None = None, max_samples: int | None = None) -> SourceConfig:
    """The source a distilled set records (`metadata["source"]`, its resolution and channels) as a `SourceConfig`;
    `split` and `max_samples` replace the set's own (its split, its `max_samples` hyperparameter) when given."""
    source = metadata["source"]
    return SourceConfig(
        dataset=source["id"], dataset_config=source.get("config"), dataset_revision=source.get("revision"),
        split=split or source["split"], image_column=source.get("image_column"),
        max_samples=max_samples or metadata.get("hyperparameters", {}).get("max_samples") or None,
        resolution=metadata["resolution"], channels=metadata["channels"],
    )


class Source:
    """The real images behind a distilled set, in its space, with teacher features computed once."""

    def __init__(self, distilled, teacher_name: str | None, device):
        from ..image_store import load_images
        from ..teachers import Teacher

        meta = distilled.metadata
        source = source_config(meta)
        self.images = load_images(source).images  # uint8 (N, C, R, R)
        self.labels = _labels(source, len(self.images))
        self.normalization = distilled.normalization
        self.device = device
        self.teacher = Teacher.from_pretrained(teacher_name or meta["teacher"]["id"]).to(device).eval()
        self._features, self._hardest = None, {}

    def teacher_targets(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 `(n, C, R, R)` -> teacher representations `(n, d)`, as the distiller computes them."""
        from ..transfer import batched

        return batched(lambda x: self.teacher(x.float() / 255), images, self.device, chunk_size=512)

    def features(self) -> torch.Tensor:
        if self._features is None:
            self._features = self.teacher_targets(self.images)
        return self._features

    def hardest(self, trajectories: str) -> torch.Tensor:
        """`(N,)` source indices, hardest first under the experts of `trajectories` (MKDT's high-loss start), ranked
        once for every set that starts from them."""
        if trajectories not in self._hardest:
            from ..trajectories import Trajectories, high_loss_indices

            experts = Trajectories.load(trajectories)
            self._hardest[trajectories] = high_loss_indices(experts, self.images, self.teacher, len(self.images))
        return self._hardest[trajectories]

    def subset(self, indices: torch.Tensor, with_labels: bool):
        from ..training_sets import TrainingSet

        if with_labels and self.labels is None:
            raise ConfigError("the source has no labels; use the *_mse variants of random and kmeans.")
        x = self.normalization.normalize(self.images[indices])
        y = self.labels[indices] if with_labels else self.teacher_targets(self.images[indices])
        return TrainingSet(x, y, self.normalization)


def _labels(source: SourceConfig, n: int) -> torch.Tensor | None:
    """The first ClassLabel column of the source's first `n` rows, `(n,)` int64; None when it has none.
    (`load_images` reads images only; the rows are the same, the dataset is read from the `datasets` cache.)"""
    import datasets

    from ..data import load_source

    ds = load_source(source.dataset, source.dataset_config, source.split, source.dataset_revision)
    for name, feature in ds.features.items():
        if isinstance(feature, datasets.ClassLabel):
            return torch.tensor(ds.select(range(n))[name], dtype=torch.long)
    return None


def start_of(distilled) -> str:
    """How a set chose its starting images: `random` (sets made before `--init` existed too) or `high_loss`."""
    return distilled.metadata.get("hyperparameters", {}).get("init") or "random"


def method_of(distilled) -> str:
    """The distillation method that made a set, from its card."""
    from ..methods import made_by

    return made_by(distilled.metadata)


def start_indices(source: Source, distilled) -> torch.Tensor:
    """`(m,)` indices of the source images a set started from: its experts' hardest for a high-loss start, else
    the random draw of its seed."""
    from ..subsets import initial_indices

    m, hyperparameters = len(distilled.pixel_values), distilled.metadata["hyperparameters"]
    if start_of(distilled) == "high_loss":
        return source.hardest(hyperparameters["trajectories"])[:m]
    return initial_indices(len(source.images), m, hyperparameters["seed"])


def _init(source, distilled, seed):
    return source.subset(start_indices(source, distilled), False)


def _random(with_labels):
    from ..subsets import random_subset

    return lambda source, distilled, seed: source.subset(
        random_subset(len(source.images), len(distilled.pixel_values), seed), with_labels
    )


def _kmeans(with_labels):
    from ..subsets import kmeans_subset

    return lambda source, distilled, seed: source.subset(
        kmeans_subset(source.features().to(source.device), len(distilled.pixel_values), seed).cpu(), with_labels
    )


def _distilled(source, distilled, seed):
    from ..training_sets import distilled_training_set

    return distilled_training_set(distilled)


def _full(source, distilled, seed):
    from ..training_sets import TrainingSet

    return TrainingSet(source.images, source.features(), source.normalization)  # uint8: normalised a batch at a time


@dataclass(frozen=True)
class Method:
    """How a method builds its pre-training set; `kd` regresses the teacher online; `scratch` does not train."""

    build: Callable | None
    help: str
    kd: bool = False
    per_size: bool = True  # False: one model per seed, whatever m
    reads: str | None = None  # what of the distilled set it depends on: "set" (its tensors) or "init" (its start)

    def row(self, name: str, distilled) -> str:
        """The row a job of this method fills: one per distillation method for those that read a set (`distilled`:
        `krr_st`, `mkdt`; `kd`: `kd_krr_st`, ...), one per starting point for `init` (`init`, `init_high_loss`),
        the method's own name for the rest."""
        if self.reads == "set":
            return method_of(distilled) if name == "distilled" else f"{name}_{method_of(distilled)}"
        if self.reads == "init" and start_of(distilled) != "random":
            return f"{name}_{start_of(distilled)}"
        return name


METHODS = {
    "scratch": Method(None, "no pre-training: the network at its random initialisation", per_size=False),
    "init": Method(_init, "the distiller's random starting point: its m real images with teacher targets (MSE)",
                   reads="init"),
    "random": Method(_random(True), "m random real images with their labels (cross-entropy)"),
    "random_mse": Method(_random(False), "m random real images with teacher targets (MSE)"),
    "kmeans": Method(_kmeans(True), "real images nearest to m k-means centres of teacher features, with labels"),
    "kmeans_mse": Method(_kmeans(False), "the k-means images with teacher targets (MSE)"),
    "distilled": Method(_distilled, "the distilled set: synthetic images and learned targets (MSE)", reads="set"),
    "kd": Method(_distilled, "knowledge distillation: the teacher regressed online on the distilled images", kd=True,
                 reads="set"),
    "full": Method(_full, "the whole source with teacher targets (MSE): the upper reference", per_size=False),
}


def row_help(row: str) -> str:
    """What a row of the tables is, for the report's list of methods (`Method.row` names the rows)."""
    from ..methods import METHODS as DISTILLATION_METHODS

    if row in METHODS:
        return METHODS[row].help
    if row in DISTILLATION_METHODS:
        return f"the set distilled by {DISTILLATION_METHODS[row].name}: synthetic images and learned targets (MSE)"
    if row == "init_high_loss":
        return "MKDT's starting point: the m source images hardest for its experts, with teacher targets (MSE)"
    name, _, method = row.partition("_")
    return f"{METHODS[name].help}, of the set distilled by {DISTILLATION_METHODS[method].name}"


def row_order(methods: list[str]) -> list[str]:
    """Every row the `methods` of a config may fill, in their order (a method's rows in the registry's order)."""
    from ..methods import METHODS as DISTILLATION_METHODS

    rows = []
    for name in methods:
        reads = METHODS[name].reads
        if name == "distilled":
            rows += list(DISTILLATION_METHODS)
        elif reads == "set":
            rows += [f"{name}_{method}" for method in DISTILLATION_METHODS]
        elif reads == "init":
            rows += [name, f"{name}_high_loss"]
        else:
            rows.append(name)
    return rows
