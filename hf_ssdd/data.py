"""The data path: any `datasets` source -> one uint8 tensor `(N, C, H, W)` -> normalised, augmented batches.

Images are decoded once, into a file every process maps (`image_store.load_images`). Augmentation (random crop,
padded with black pixels as the authors pad or with the mean colour, and horizontal flip) runs on batched tensors,
and its random draws are made for the *global* batch from a generator seeded by `(seed, step)`, so a batch and its
views do not depend on how many processes share it, nor on whether a run was resumed.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import ConfigError
from .provenance import card_license, hub_card, local_license

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G and B in grey
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_HUB_ID = "zalando-datasets/fashion_mnist"
FASHION_MNIST_LICENSE = "mit"  # as the card of FASHION_MNIST_HUB_ID gives it
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


# ---------------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes, as distributed by MNIST and Fashion-MNIST."""
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        _, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if dtype != 0x08:
            raise ValueError(f"{path}: only unsigned-byte IDX files are supported (type {dtype:#x}).")
        shape = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)


def load_fashion_mnist(split: str = "train", revision: str | None = None):
    """Fashion-MNIST from Debian's `dataset-fashion-mnist` files when present, else from the Hub."""
    import datasets

    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ConfigError(f"split={split!r} does not exist in fashion_mnist; use train or test.")
    images = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    if not images.exists():
        return datasets.load_dataset(FASHION_MNIST_HUB_ID, split=split, revision=revision)
    features = datasets.Features(
        {"image": datasets.Array2D((28, 28), "uint8"), "label": datasets.ClassLabel(names=list(FASHION_MNIST_CLASSES))}
    )
    labels = _read_idx(FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz")
    return datasets.Dataset.from_dict({"image": _read_idx(images), "label": labels}, features=features)


def load_digits(split: str = "train", revision: str | None = None):
    """scikit-learn's 8x8 grey handwritten digits (1,797 images, 10 classes), shipped inside its wheel: works offline.

    It has a `train` split only; `targets.load_target_splits` carves a test split from it.
    """
    import datasets

    if split != "train":
        raise ConfigError(f"split={split!r} does not exist in digits; use train.")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as err:
        message = "digits needs scikit-learn: pip install scikit-learn (or pip install hf-ssdd[benchmark])."
        raise ConfigError(message) from err
    digits = sklearn_digits()
    features = datasets.Features(
        {"image": datasets.Array2D((8, 8), "uint8"), "label": datasets.ClassLabel(names=[str(d) for d in range(10)])}
    )
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8), values 0..16 -> 0..255
    return datasets.Dataset.from_dict({"image": images, "label": digits.target}, features=features)


BUILTIN_SOURCES = {"fashion_mnist": load_fashion_mnist, "digits": load_digits}
BUILTIN_HUB_COPIES = {"fashion_mnist": (FASHION_MNIST_HUB_ID, FASHION_MNIST_LICENSE)}  # built-in -> (Hub id, licence)


def describe_source(dataset: str, revision: str | None = None) -> tuple[dict, dict | None]:
    """Where a reader finds the source dataset, and the licence its own card gives (`{"id", "from"}`, or None).

    A Hub dataset: `id` (= `hub_id`) and the commit its card was read at. A built-in: its name, and the Hub id and
    licence of its Hub copy where it has one. A local folder: its name only, and the licence of its README.md card or
    of `datasets`' dataset_info.json (when that is a Hub licence id). Beside `load_source`, in its order.
    """
    if dataset in BUILTIN_SOURCES:  # the order of `load_source`: a built-in name, a local folder, a Hub id
        hub_id, license = BUILTIN_HUB_COPIES.get(dataset, (None, None))
        found = {"id": license, "from": f"the card of `{hub_id}`"} if license else None
        return {"id": dataset, "hub_id": hub_id, "revision": revision}, found
    if Path(dataset).exists():
        return {"folder": Path(dataset).resolve().name}, local_license(Path(dataset))
    card, commit = hub_card(dataset, revision)
    source = {"id": dataset, "hub_id": dataset, "revision": commit or revision}
    return source, card_license(card, f"the card of `{dataset}`")


def load_source(dataset: str, config: str | None = None, split: str = "train", revision: str | None = None):
    """A `datasets.Dataset` from a built-in name, a local folder (imagefolder, parquet, save_to_disk) or a Hub id.

    A first load converts the files to `datasets`' Arrow cache, and the conversion leaves its buffers in Arrow's
    memory pool (0.27 GB after 56,000 PNG 64x64 images, for the whole run): they are handed back here."""
    import pyarrow

    loaded = _load_source(dataset, config, split, revision)
    pyarrow.default_memory_pool().release_unused()
    return loaded


def _load_source(dataset: str, config: str | None, split: str, revision: str | None):
    import datasets

    if dataset in BUILTIN_SOURCES:
        return BUILTIN_SOURCES[dataset](split, revision)
    path = Path(dataset)
    try:
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):  # "train+validation" joins splits, as load_dataset does
                parts = split.split("+")
                missing = [part for part in parts if part not in loaded]
                if missing:
                    raise ConfigError(f"split={missing[0]!r} is not in {dataset}; it has {', '.join(loaded)}.")
                loaded = loaded[split] if len(parts) == 1 else datasets.concatenate_datasets([loaded[p] for p in parts])
            return loaded
        if path.exists():
            return datasets.load_dataset(str(path), split=split)
        return datasets.load_dataset(dataset, config, split=split, revision=revision)
    except ConfigError:
        raise
    except (FileNotFoundError, datasets.exceptions.DatasetNotFoundError, ConnectionError) as err:
        raise ConfigError(
            f"dataset {dataset!r} is neither a built-in name ({', '.join(BUILTIN_SOURCES)}), a local folder, "
            f"nor a reachable Hub dataset ({type(err).__name__}); check the name or path."
        ) from err
    except ValueError as err:
        if "split" in str(err).lower():
            raise ConfigError(f"split={split!r} is not available in {dataset!r}: {err}") from err
        raise


def find_column(ds, option: str, name: str | None, kinds: tuple[type, ...], names: tuple[str, ...] = ()) -> str:
    """The column the option `option` (e.g. "image_column") picks: `name` if given, else the first column whose
    feature is one of `kinds`, else the first of `names` the dataset has; a one-line error naming the option if none."""
    if name is not None:
        if name not in ds.column_names:
            raise ConfigError(f"{option}={name!r} is not a column; the dataset has {', '.join(ds.column_names)}.")
        return name
    found = [c for c, feature in ds.features.items() if isinstance(feature, kinds)]
    found += [c for c in names if c in ds.column_names]
    if not found:
        what = option.removesuffix("_column")
        raise ConfigError(f"no {what} column found among {', '.join(ds.column_names)}; pass --{option}.")
    return found[0]


def image_column(ds, name: str | None = None) -> str:
    """The column holding images: `name` if given, else the first `Image` / `Array2D` / `Array3D` column."""
    import datasets

    return find_column(ds, "image_column", name, (datasets.Image, datasets.Array2D, datasets.Array3D))


# ---------------------------------------------------------------------------------------------------------------------
# Channels and resolution
# ---------------------------------------------------------------------------------------------------------------------


def convert_images(images: torch.Tensor, channels: int, resolution: int) -> torch.Tensor:
    """uint8 `(N, c, h, w)` -> uint8 `(N, channels, resolution, resolution)` (grey <-> RGB, bilinear resize): how
    already-decoded arrays are converted (`image_store` decodes encoded images with PIL's bicubic resize instead)."""
    images = convert_channels(images, channels)
    if images.shape[-1] != resolution or images.shape[-2] != resolution:
        resized = F.interpolate(images.float(), size=(resolution, resolution), mode="bilinear", antialias=True)
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """Float RGB `(N, 3, H, W)` -> luma `(N, 1, H, W)`."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """`(N, c, H, W)` -> `(N, channels, H, W)`: grey is repeated to RGB, RGB is averaged with luma weights to grey."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        grey = to_grey(images.float())
        return grey.round().clamp(0, 255).to(images.dtype) if images.dtype == torch.uint8 else grey
    raise ConfigError(f"cannot convert images with {c} channels to {channels}.")


# ---------------------------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalization:
    """Per-channel affine map between [0, 1] pixels and the space the learner (and the synthetic set) lives in."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def measure(cls, images: torch.Tensor, chunk: int = 4096) -> "Normalization":
        """Mean and std per channel of uint8 images `(N, C, H, W)` (or float pixels in [0, 1]).

        uint8 images are counted, not summed: a histogram of the 256 values per channel, `chunk` images at a time,
        gives both moments exactly and never holds more than one uint8 channel of a chunk (a float64 copy of 4,096
        64x64 RGB images and its square were 0.8 GB at once, in every process). Float pixels are summed in float64,
        256 images at a time."""
        channels = images.shape[1]
        if images.dtype == torch.uint8:
            counts = torch.zeros(channels, 256, dtype=torch.int64)
            for start in range(0, len(images), chunk):
                part = images[start : start + chunk]
                for c in range(channels):
                    counts[c] += torch.bincount(part[:, c].flatten(), minlength=256)
            values = torch.arange(256, dtype=torch.float64) / 255
            total, squares = counts.double() @ values, counts.double() @ (values * values)
        else:
            total = torch.zeros(channels, dtype=torch.float64)
            squares = torch.zeros_like(total)
            for start in range(0, len(images), 256):
                x = images[start : start + 256].double()
                total += x.sum((0, 2, 3))
                squares += (x * x).sum((0, 2, 3))
        count = images.numel() / channels
        mean = total / count
        std = (squares / count - mean * mean).clamp_min(1e-12).sqrt()
        return cls(tuple(mean.tolist()), tuple(std.tolist()))

    @classmethod
    def resolve(cls, images: torch.Tensor, mean=None, std=None) -> "Normalization":
        """Given values (1 or C of them) where set, measured values otherwise."""
        channels = images.shape[1]
        measured = cls.measure(images) if mean is None or std is None else None
        mean = measured.mean if mean is None else tuple(mean) * (channels // len(mean))
        std = measured.std if std is None else tuple(std) * (channels // len(std))
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std))

    def _view(self, values, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 `(n, C, H, W)` or float in [0, 1] -> float32 normalised."""
        x = images.float() / 255 if images.dtype == torch.uint8 else images
        return (x - self._view(self.mean, x)) / self._view(self.std, x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised `(n, C, H, W)` -> [0, 1] pixels (not clipped: the synthetic set may leave the range)."""
        return x * self._view(self.std, x) + self._view(self.mean, x)

    def crop_fill(self, fill: str) -> torch.Tensor:
        """The normalised colour `(C,)` that pads a random crop: `black` is pixel 0 (`-mean / std`, as the authors
        pad in [0, 1] space before normalising), `mean` is the mean colour (0)."""
        if fill == "black":
            return -torch.tensor(self.mean) / torch.tensor(self.std)
        if fill == "mean":
            return torch.zeros(len(self.mean))
        raise ConfigError(f"crop_fill={fill!r} is not one of black, mean.")


# ---------------------------------------------------------------------------------------------------------------------
# Batches and augmentation
# ---------------------------------------------------------------------------------------------------------------------


class Stream:
    """Every random stream of hf-ssdd, by name: `step_generator(seed, step, Stream.X)`. Streams only need to differ
    within one run; the numbers are part of every result (changing one changes the sets hf-ssdd makes). The one
    draw outside this table is a pool member's initial weights, seeded from (seed, member, resets) by `ModelPool`."""

    REAL_VIEWS = 0  # distill: crop and flip of the real batch of a step
    EPOCH_ORDER = 1  # every stage: the order of the images in an epoch (`batch_indices`)
    POOL_MEMBER = 2  # distill: the pool member a step uses
    SSL_VIEWS = 2  # train-teacher: the two views of a step, plus the process index
    INITIAL_IMAGES = 3  # distill: the real images the synthetic set starts from
    POOL_WARM_UP = 4  # distill: how long each pool member is trained before step 1
    PRETRAIN_VIEWS = 4  # pretrain: crop and flip of a batch
    FINETUNE_VIEWS = 5  # transfer: crop and flip of a fine-tuning batch
    CACHED_VIEWS = 6  # teacher cache: the fixed views, `step` being the view number
    VIEW_CHOICE = 7  # distill with a teacher cache: which cached view of each image a step reads
    PRETRAIN_DSA = 8  # pretrain: the differentiable siamese augmentation of a batch (`dsa`)
    EXPERT_INIT = 9  # trajectories: an expert's initial weights, `step` being the expert's number
    EXPERT_ORDER = 10  # trajectories: the order of an epoch, `step` = expert * 100,000 + epoch
    MATCH_SEGMENT = 11  # mkdt: the expert and start epoch of an iteration
    MATCH_BATCHES = 12  # mkdt: the mini-batches of the synthetic set in an iteration's inner steps
    CARVED_TEST = 101  # targets: the test split carved from train when a target has none
    BALANCED_SAMPLE = 102  # targets: the class-balanced few-label sample
    UNIFORM_SAMPLE = 103  # targets: the uniform few-label sample
    RANDOM_SUBSET = 201  # evaluation: the `random` baseline's images
    KMEANS_SEEDS = 202  # evaluation: k-means++ seeding of the `kmeans` baseline


def step_generator(seed: int, step: int, stream: int = Stream.REAL_VIEWS) -> torch.Generator:
    """A CPU generator determined by `(seed, step, stream)` alone: resuming needs no RNG state to replay a step."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7919 + stream)


@lru_cache(maxsize=2)
def _epoch_permutation(num_images: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(num_images, generator=step_generator(seed, epoch, Stream.EPOCH_ORDER))


def batch_indices(num_images: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices `(batch_size,)` of the global real batch at `step`: consecutive slices of per-epoch permutations."""
    start = step * batch_size
    parts = []
    while batch_size > 0:
        epoch, offset = divmod(start, num_images)
        take = min(batch_size, num_images - offset)
        parts.append(_epoch_permutation(num_images, seed, epoch)[offset : offset + take])
        start, batch_size = start + take, batch_size - take
    return torch.cat(parts)


@dataclass
class Augmentation:
    """The random draws of one batch: crop offsets `(n, 2)` in `[0, 2 * padding]` and flips `(n,)`."""

    offsets: torch.Tensor
    flips: torch.Tensor
    padding: int

    @classmethod
    def sample(cls, n: int, padding: int, flip: bool, generator: torch.Generator) -> "Augmentation":
        offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
        return cls(offsets, flips, padding)

    def __getitem__(self, index) -> "Augmentation":
        return Augmentation(self.offsets[index], self.flips[index], self.padding)

    def apply(self, x: torch.Tensor, fill: torch.Tensor | None = None) -> torch.Tensor:
        """`(n, C, H, W)` -> `(n, C, H, W)`: crop at `offsets` from the image padded with the colour `fill` `(C,)`
        (default 0), then flip."""
        n, c, h, w = x.shape
        p = self.padding
        padded = F.pad(x, (p, p, p, p))  # (n, C, H + 2p, W + 2p)
        if fill is not None and p:
            inside = F.pad(torch.ones(h, w, dtype=torch.bool, device=x.device), (p, p, p, p))
            padded = torch.where(inside, padded, fill.to(x).view(1, c, 1, 1))
        offsets = self.offsets.to(x.device)
        rows = offsets[:, 0, None] + torch.arange(h, device=x.device)  # (n, H)
        cols = offsets[:, 1, None] + torch.arange(w, device=x.device)  # (n, W)
        images = torch.arange(n, device=x.device).view(n, 1, 1, 1)
        channels = torch.arange(c, device=x.device).view(1, c, 1, 1)
        out = padded[images, channels, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
        return torch.where(self.flips.to(x.device).view(n, 1, 1, 1), out.flip(-1), out)
