"""The distilled set as a Hub dataset: `m` synthetic images, their learned targets, and a card that says where they
came from.

A saved set is a folder in Hub dataset layout; the same folder may also hold the run's `checkpoint-N/` and `runs/`,
which the loader never reads because the card's `configs` point it at `data/` only:

    output_dir/
    ├── data/train-<fingerprint>.parquet   # columns image (uint8), pixel_values (C, H, W), target (d,)
    ├── README.md                          # the card: YAML metadata (configs, features, provenance) and prose
    ├── preview.png                        # grid of the synthetic images
    └── distill_config.yaml                # the resolved config of the run (this machine's paths): never uploaded

`datasets.load_dataset(output_dir, split="train")` gives `pixel_values` and `target` back bit for bit;
`DistilledSet.load` also reads the normalisation and the provenance back from the card. The data file is named after
a hash of its content, and the card's `configs` name that file: `datasets` caches a local folder under a hash of its
card alone, so a set saved anew into the same folder must change the card, or the old rows would be served.

The card names every input so that a reader elsewhere can find it, and never by a path on this machine: a Hub dataset
or teacher by id and commit, a built-in source by name and Hub id, a local folder by its name (a teacher's also by the
sha256 of its weights). Its licence is the source's (or `--license`), and once pushed its snippets name the repo.
`dataset_card.render_card` writes it; `provenance` names the inputs.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .atomic import write_file
from .config import ConfigError, save_config
from .data import Normalization
from .dataset_card import render_card
from .provenance import with_local_paths

CONFIG_FILE = "distill_config.yaml"
GRID_MIN_TILE, GRID_GAP = 64, 2  # preview: smallest tile side and white gap between tiles, pixels


@dataclass
class DistilledSet:
    """`m` synthetic images in the learner's normalised space and their learned targets.

    `save(folder)` writes it as a Hub dataset, `DistilledSet.load(folder or repo id)` reads it back.

    Example:
        >>> distilled = DistilledSet(torch.randn(10, 1, 28, 28), torch.randn(10, 64), (0.29,), (0.35,))
        >>> distilled.images().dtype, distilled.images().shape  # viewable pixels (m, C, H, W)
        (torch.uint8, torch.Size([10, 1, 28, 28]))
    """

    pixel_values: torch.Tensor  # (m, C, H, W) float32, normalised space
    targets: torch.Tensor  # (m, d) float32
    mean: tuple[float, ...]  # normalisation: pixels in [0, 1] = pixel_values * std + mean, per channel
    std: tuple[float, ...]
    metadata: dict = field(default_factory=dict)  # provenance and hyperparameters, JSON-serialisable

    def fingerprint(self) -> str:
        """16 hex digits of a hash of the images and targets: sets with equal fingerprints hold the same tensors."""
        return content_hash(self.pixel_values, self.targets)

    def data_file(self) -> str:
        return f"data/train-{self.fingerprint()}.parquet"

    @property
    def normalization(self) -> Normalization:
        """The space of `pixel_values`: pixels in [0, 1] = `pixel_values * std + mean`, per channel."""
        return Normalization(tuple(self.mean), tuple(self.std))

    def images(self) -> torch.Tensor:
        """uint8 `(m, C, H, W)`: de-normalised, clipped to [0, 1] and rounded to 8 bits, for viewing only."""
        pixels = self.normalization.denormalize(self.pixel_values.detach().cpu().float())
        return (pixels * 255).round().clamp(0, 255).to(torch.uint8)

    def to_dataset(self):
        """A `datasets.Dataset` of `m` rows: `image` (mode L or RGB), `pixel_values` `(C, H, W)`, `target` `(d,)`."""
        import datasets

        images = self.images().permute(0, 2, 3, 1).numpy()  # (m, H, W, C), as PIL wants it
        if images.shape[-1] == 1:
            images = images[..., 0]  # (m, H, W): grey images stay grey (mode L)
        columns = {
            "image": list(images),
            "pixel_values": self.pixel_values.detach().cpu().float().numpy(),
            "target": self.targets.detach().cpu().float().numpy(),
        }
        return datasets.Dataset.from_dict(columns, features=self.features())

    def features(self):
        """The `datasets.Features` of `to_dataset`, also written into the card's `dataset_info`."""
        import datasets

        return datasets.Features(
            {
                "image": datasets.Image(),
                "pixel_values": datasets.Array3D(tuple(self.pixel_values.shape[1:]), "float32"),
                "target": datasets.List(datasets.Value("float32"), length=self.targets.shape[1]),
            }
        )

    def save(self, output_dir: str | Path, config=None) -> Path:
        """Write the set into `output_dir` in Hub dataset layout (see the module docstring); return the folder.

        Every file is written under a temporary name and then renamed, so a crash leaves the old file or the new one,
        never half of one. The card comes last, so it never describes data that is not there. Anything else in
        `output_dir` (checkpoints, logs) is left alone. `config` (a dataclass) is saved as `distill_config.yaml`.
        """
        output_dir = Path(output_dir)
        data_file = output_dir / self.data_file()
        data_file.parent.mkdir(parents=True, exist_ok=True)
        write_file(data_file, lambda path: self.to_dataset().to_parquet(str(path)))
        write_file(output_dir / "preview.png", self.save_preview)
        if config is not None:
            write_file(output_dir / CONFIG_FILE, lambda path: save_config(config, path))
        write_file(output_dir / "README.md", lambda path: path.write_text(render_card(self)))
        for stale in data_file.parent.glob("train-*.parquet"):  # an earlier set's data, no longer in the card
            if stale != data_file:
                stale.unlink()
        return output_dir

    @classmethod
    def load(cls, path_or_repo_id: str | Path, revision: str | None = None, split: str = "train") -> DistilledSet:
        """Read a set written by `save` (or pushed to the Hub) back: tensors from the data, the rest from the card.

        A set read from the folder it was made in also gets the `id` of its local source and teacher back (their paths
        on this machine, from its distill_config.yaml), so that they can be loaded again, e.g. by the benchmark.
        """
        import datasets

        try:
            ds = datasets.load_dataset(str(path_or_repo_id), split=split, revision=revision)
        except (ValueError, FileNotFoundError, ConnectionError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"{path_or_repo_id} cannot be read as a distilled set ({reason}); give a distilled set saved by "
                "hf-ssdd (a folder from `hf-ssdd distill` or its Hub id)."
            ) from None
        missing = [column for column in ("pixel_values", "target") if column not in ds.column_names]
        if missing:
            raise ConfigError(
                f"{path_or_repo_id} has no {' or '.join(map(repr, missing))} column (it has "
                f"{', '.join(ds.column_names)}); give a distilled set saved by hf-ssdd."
            )
        card = _card_block(path_or_repo_id, revision)
        metadata = with_local_paths(card["metadata"], Path(path_or_repo_id) / CONFIG_FILE)
        data = ds.with_format("torch", columns=["pixel_values", "target"])[:]
        return cls(data["pixel_values"], data["target"], tuple(card["mean"]), tuple(card["std"]), metadata)

    def save_preview(self, path: str | Path, max_images: int = 100) -> None:
        """Save the first `max_images` images as one PNG grid, each tile upscaled so small images are visible."""
        from PIL import Image

        grid = image_grid(self.images()[:max_images])  # (C, H', W')
        Image.fromarray(grid.permute(1, 2, 0).squeeze(-1).numpy()).save(path, format="PNG")


def content_hash(*tensors: torch.Tensor) -> str:
    """16 hex digits of a sha256 of the tensors' values as float32: equal digits, equal tensors."""
    content = b"".join(t.detach().cpu().float().numpy().tobytes() for t in tensors)
    return hashlib.sha256(content).hexdigest()[:16]


def image_grid(images: torch.Tensor) -> torch.Tensor:
    """uint8 `(n, C, H, W)` -> one uint8 image `(C, rows * (s*H + gap) + gap, cols * (s*W + gap) + gap)`.

    Tiles sit on a near-square grid with white gaps of `GRID_GAP` pixels, each scaled by the smallest integer `s`
    (nearest neighbour, so pixels stay sharp) that makes it at least `GRID_MIN_TILE` pixels a side.
    """
    min_tile, gap = GRID_MIN_TILE, GRID_GAP
    n, c, h, w = images.shape
    scale = math.ceil(min_tile / min(h, w))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tiles = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)  # (n, C, sH, sW)
    tiles = torch.cat([tiles, tiles.new_full((rows * cols - n, *tiles.shape[1:]), 255)])
    tiles = F.pad(tiles, (0, gap, 0, gap), value=255)  # (rows * cols, C, sH + gap, sW + gap)
    th, tw = tiles.shape[2:]
    grid = tiles.view(rows, cols, c, th, tw).permute(2, 0, 3, 1, 4).reshape(c, rows * th, cols * tw)
    return F.pad(grid, (gap, 0, gap, 0), value=255)


def set_repo_id(folder: str | Path, repo_id: str) -> None:
    """Name `repo_id` in the card of the set in `folder` (its usage snippets; its metadata, so later renderings keep
    it), before that folder is pushed there: the local card and the Hub's then agree. A folder whose card has no
    hf_ssdd block (not a distilled set) is left as it is."""
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    card = folder / "README.md"
    if not card.is_file() or DatasetCard.load(card).data.get("hf_ssdd") is None:
        return
    distilled = DistilledSet.load(folder)
    distilled.metadata["repo_id"] = repo_id
    write_file(card, lambda path: path.write_text(render_card(distilled)))


def hf_ssdd_card(path_or_repo_id: str | Path, revision: str | None = None) -> dict | None:
    """The `hf_ssdd` block (`mean`, `std`, `metadata`) of the card of a local folder or a Hub dataset repo; None when
    there is no card, or a card without the block (a set made by another tool), or the repo cannot be reached."""
    from huggingface_hub import DatasetCard, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    local = Path(path_or_repo_id)
    if local.exists():
        card_path = local / "README.md"
    else:
        try:
            card_path = Path(hf_hub_download(str(path_or_repo_id), "README.md", repo_type="dataset", revision=revision))
        except (HfHubHTTPError, LocalEntryNotFoundError, ValueError, OSError):
            return None
    return DatasetCard.load(card_path).data.get("hf_ssdd") if card_path.is_file() else None


def _card_block(path_or_repo_id: str | Path, revision: str | None) -> dict:
    """The card's `hf_ssdd` block, or a `ConfigError` saying that this is not a set hf-ssdd made."""
    block = hf_ssdd_card(path_or_repo_id, revision)
    if block is None:
        raise ConfigError(
            f"{path_or_repo_id} has no card with an hf_ssdd block (normalisation, provenance); "
            "give a distilled set saved by hf-ssdd."
        )
    return block
