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
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from .atomic import write_file
from .config import HUB_LICENSES, ConfigError, save_config
from .data import BUILTIN_SOURCES, FASHION_MNIST_HUB_ID, FASHION_MNIST_LICENSE, Normalization

TAGS = ("dataset-distillation", "self-supervised", "hf-ssdd")
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))
SNIPPET_PLACEHOLDER = "<repo_id or folder>"  # in the usage snippets of a set not pushed yet
CONFIG_FILE = "distill_config.yaml"
BUILTIN_HUB_COPIES = {"fashion_mnist": (FASHION_MNIST_HUB_ID, FASHION_MNIST_LICENSE)}  # built-in -> (Hub id, licence)
GRID_MIN_TILE, GRID_GAP = 64, 2  # preview: smallest tile side and white gap between tiles, pixels
LEARNER_KEYS = ("depth", "width", "norm", "pooling")  # ConvNet arguments recorded in metadata["learner"]


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
        content = self.pixel_values.detach().cpu().float().numpy().tobytes()
        content += self.targets.detach().cpu().float().numpy().tobytes()
        return hashlib.sha256(content).hexdigest()[:16]

    def data_file(self) -> str:
        return f"data/train-{self.fingerprint()}.parquet"

    def images(self) -> torch.Tensor:
        """uint8 `(m, C, H, W)`: de-normalised, clipped to [0, 1] and rounded to 8 bits, for viewing only."""
        pixels = Normalization(tuple(self.mean), tuple(self.std)).denormalize(self.pixel_values.detach().cpu().float())
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
        return datasets.Dataset.from_dict(columns, features=self._features())

    def _features(self):
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
        metadata = _with_local_paths(card["metadata"], Path(path_or_repo_id) / CONFIG_FILE)
        data = ds.with_format("torch", columns=["pixel_values", "target"])[:]
        return cls(data["pixel_values"], data["target"], tuple(card["mean"]), tuple(card["std"]), metadata)

    def save_preview(self, path: str | Path, max_images: int = 100) -> None:
        """Save the first `max_images` images as one PNG grid, each tile upscaled so small images are visible."""
        from PIL import Image

        grid = image_grid(self.images()[:max_images])  # (C, H', W')
        Image.fromarray(grid.permute(1, 2, 0).squeeze(-1).numpy()).save(path, format="PNG")


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


def _results_section(results: list[dict]) -> str:
    """Markdown table of `metadata["transfer_results"]`: one row per method, one column per (table, column)."""
    if not results:
        return ""
    columns = list(dict.fromkeys((r["table"], r["column"]) for r in results))
    methods = list(dict.fromkeys((r["method"], r["m"], r["arch"]) for r in results))
    cells = {(r["method"], r["m"], r["arch"], r["table"], r["column"]): r for r in results}
    head = "| method | " + " | ".join(f"{t}: {c}" for t, c in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for method in methods:
        row = [cells.get((*method, *col)) for col in columns]
        text = [" " if r is None else _mean_std(r["mean"], r["std"], r["table"]) for r in row]
        lines.append(f"| {method[0]}{'' if method[1] is None else f' (m={method[1]})'} | " + " | ".join(text) + " |")
    return ("\n## Transfer results\n\nAccuracy (%) after pre-training on each set and transferring "
            "(mean ± std over seeds), and the label-free R² on held-out source images, from `hf-ssdd benchmark`.\n\n"
            + "\n".join(lines) + "\n")


def _mean_std(mean: float, std: float, table: str) -> str:
    """Accuracy as a percentage with 2 decimals, the label-free R² as a fraction with 3."""
    scale, digits = (1, 3) if table == "label-free" else (100, 2)
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def _card_block(path_or_repo_id: str | Path, revision: str | None) -> dict:
    """The card's `hf_ssdd` block (`mean`, `std`, `metadata`), from a local folder or a Hub dataset repo."""
    from huggingface_hub import DatasetCard, hf_hub_download

    local = Path(path_or_repo_id)
    if local.is_dir():
        card_path = local / "README.md"
    else:
        card_path = hf_hub_download(str(path_or_repo_id), "README.md", repo_type="dataset", revision=revision)
    block = DatasetCard.load(card_path).data.get("hf_ssdd") if Path(card_path).is_file() else None
    if block is None:
        raise ConfigError(
            f"{path_or_repo_id} has no card with an hf_ssdd block (normalisation, provenance); "
            "give a distilled set saved by hf-ssdd."
        )
    return block


# ---------------------------------------------------------------------------------------------------------------------
# Provenance: what the card says about the inputs, readable on any machine
# ---------------------------------------------------------------------------------------------------------------------


def public_name(name_or_path: str | None) -> str | None:
    """A local path by its folder's name, anything else (a Hub id, a built-in name) as it is: a path means nothing on
    another machine and may name the user."""
    if name_or_path is None or not Path(name_or_path).exists():
        return name_or_path
    return Path(name_or_path).resolve().name


def describe_source(dataset: str, revision: str | None = None) -> tuple[dict, dict | None]:
    """Where a reader finds the source dataset, and the licence its own card gives (`{"id", "from"}`, or None).

    A Hub dataset: `id` (= `hub_id`) and the commit its card was read at. A built-in: its name, and the Hub id and
    licence of its Hub copy where it has one. A local folder: its name only, and the licence of its README.md card or
    of `datasets`' dataset_info.json (when that is a Hub licence id).
    """
    if dataset in BUILTIN_SOURCES:  # the order of `load_source`: a built-in name, a local folder, a Hub id
        hub_id, license = BUILTIN_HUB_COPIES.get(dataset, (None, None))
        found = {"id": license, "from": f"the card of `{hub_id}`"} if license else None
        return {"id": dataset, "hub_id": hub_id, "revision": revision}, found
    if Path(dataset).exists():
        return {"folder": Path(dataset).resolve().name}, _local_license(Path(dataset))
    card, commit = _hub_card(dataset, revision)
    source = {"id": dataset, "hub_id": dataset, "revision": commit or revision}
    return source, _card_license(card, f"the card of `{dataset}`")


def _hub_card(repo_id: str, revision: str | None):
    """The card metadata of a Hub dataset and the commit it was read at: the name of its snapshot folder in the Hub
    cache. `(None, None)` when neither the Hub nor the cache has it: the set is still saved, its licence unknown."""
    from huggingface_hub import DatasetCard, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        path = Path(hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision))
    except HfHubHTTPError.__bases__:  # the HTTP client's errors and OSError: no network, no such repo or file
        return None, None
    return DatasetCard.load(path).data, path.parent.name


def _card_license(card_data, where: str) -> dict | None:
    """`{"id", "from"}` (and `name`, `link` for `license: other`) from a card's metadata, None when it gives none."""
    license = card_data.get("license") if card_data is not None else None
    if not license or license == "unknown":
        return None
    found = {"id": license, "from": where}
    for key in ("name", "link"):
        if card_data.get(f"license_{key}"):
            found[key] = card_data.get(f"license_{key}")
    return found


def _local_license(folder: Path) -> dict | None:
    """The licence of a local dataset folder: its README.md card's, else `datasets`' dataset_info.json's (of the
    folder or of a split in it, as `save_to_disk` writes them) when that text is a Hub licence id."""
    from datasets import DatasetInfo
    from huggingface_hub import DatasetCard

    name = folder.resolve().name
    if (folder / "README.md").is_file():
        found = _card_license(DatasetCard.load(folder / "README.md").data, f"the card of the local folder `{name}`")
        if found:
            return found
    for info in sorted(folder.glob("dataset_info.json")) + sorted(folder.glob("*/dataset_info.json")):
        license = (DatasetInfo.from_directory(str(info.parent)).license or "").strip().lower()
        if license in HUB_LICENSES and license != "unknown":
            return {"id": license, "from": f"the dataset_info.json of the local folder `{name}`"}
    return None


def _with_local_paths(metadata: dict, config_file: Path) -> dict:
    """`metadata` with `id` set, for a local source and teacher, to the path the run was given (its config file
    beside the card): on the machine that made the set they can be loaded again. The card never shows it (`_public`)."""
    if not config_file.is_file():
        return metadata
    run = yaml.safe_load(config_file.read_text()) or {}
    for key, option in (("source", "dataset"), ("teacher", "teacher")):
        entry = metadata.get(key) or {}
        if "folder" in entry and run.get(option):
            entry["id"] = run[option]
    return metadata


def _public(metadata: dict) -> dict:
    """A copy of `metadata` for the card: plain lists and dicts (safe YAML), and a local source or teacher by folder
    name only, without the path `_with_local_paths` may have put in."""
    public = json.loads(json.dumps(metadata))
    for key in ("source", "teacher"):
        if "folder" in (public.get(key) or {}):
            public[key].pop("id", None)
    return public


def where(entry: dict) -> str | None:
    """How a reader finds an input (`metadata["source"]` or `["teacher"]`), in Markdown, e.g. "`org/name`, revision
    `abc`", "`fashion_mnist` (on the Hub: `zalando-datasets/fashion_mnist`)" or "local folder `vit`, `model.safetensors`
    sha256 `…`"; None when nothing is recorded."""
    if "folder" in entry:
        hashes = "".join(f", `{name}` sha256 `{digest}`" for name, digest in (entry.get("sha256") or {}).items())
        return f"local folder `{entry['folder']}`{hashes}"
    if not entry.get("id"):
        return None
    hub = entry.get("hub_id")
    text = f"`{entry['id']}`" + (f" (on the Hub: `{hub}`)" if hub and hub != entry["id"] else "")
    return text + (f", revision `{entry['revision']}`" if entry.get("revision") else "")


def render_card(distilled: DistilledSet) -> str:
    """The text of `README.md`: YAML metadata the Hub and `datasets` read, then prose for people."""
    return f"---\n{_card_data(distilled).to_yaml()}\n---\n\n{_card_text(distilled)}"


def _card_data(distilled: DistilledSet):
    """Hub metadata; `configs` keeps the loader on `data/`, `hf_ssdd` holds what `DistilledSet.load` needs back."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    m = len(distilled.pixel_values)
    license, hub_id = distilled.metadata.get("license") or {}, distilled.metadata.get("source", {}).get("hub_id")
    data = DatasetCardData(
        license=license.get("id", "unknown"),  # the source's licence applies to images derived from it
        license_name=license.get("name"),  # with license: other, as the source's card names it
        license_link=license.get("link"),
        source_datasets=[hub_id] if hub_id else None,
        pretty_name=_title(distilled),
        tags=list(TAGS),
        task_categories=["image-feature-extraction"],
        size_categories=[_size_category(m)],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": distilled.data_file()}]}],
        hf_ssdd={
            "mean": [float(v) for v in distilled.mean],
            "std": [float(v) for v in distilled.std],
            "metadata": _public(distilled.metadata),
        },
    )
    info = DatasetInfo(features=distilled._features(), splits=SplitDict({"train": SplitInfo("train", num_examples=m)}))
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return data


def _licence_section(license: dict | None) -> str:
    """The licence in words: which and where it came from, or that it is unknown and how to set it."""
    derived = "The synthetic images are derived from the source dataset, so its terms apply to them."
    if not license:
        return (
            "**The licence is unknown**: none was found for the source dataset (no card of it gives one) and none was "
            f"set with `--license`. {derived} Find its licence and set the `license` field of this card to its Hub "
            "licence id (https://huggingface.co/docs/hub/repositories-licenses), or distil again with `--license <id>`."
        )
    ids = ", ".join(f"`{i}`" for i in (license["id"] if isinstance(license["id"], list) else [license["id"]]))
    details = [license[key] for key in ("name", "link") if license.get(key)]
    named = f" ({', '.join(details)})" if details else ""
    return f"Licence: {ids}{named}, from {license['from']}. {derived}"


def _size_category(m: int) -> str:
    return next((name for bound, name in SIZE_CATEGORIES if m < bound), "n>1M")


def _title(distilled: DistilledSet) -> str:
    source = distilled.metadata.get("source", {})
    name = source.get("folder") or source.get("id") or "Distilled set"
    return f"{name}: {len(distilled.pixel_values)} synthetic images (KRR-ST)"


def _describe(values: dict, templates: dict[str, str]) -> str:
    """Fill in the templates of the keys `values` has, e.g. "`x`, split `train`": a card shows what was recorded."""
    parts = [template.format(values[key]) for key, template in templates.items() if values.get(key) is not None]
    return ", ".join(parts) or "—"


def _number(value, spec: str = ".6g") -> str:
    return "—" if value is None else format(value, spec)


def _card_text(distilled: DistilledSet) -> str:
    md = distilled.metadata
    m, c, h, w = distilled.pixel_values.shape
    d = distilled.targets.shape[1]
    source, teacher, learner = md.get("source", {}), md.get("teacher", {}), md.get("learner", {})
    hyperparameters = md.get("hyperparameters", {})
    wall_time = md.get("wall_time_s")
    provenance = {
        "Source dataset": _describe(
            {**source, "where": where(source)},
            {"where": "{}", "config": "config `{}`", "split": "split `{}`", "image_column": "column `{}`",
             "num_images": "{} images"},
        ),
        "Teacher": _describe(
            {**teacher, "where": where(teacher)},
            {"where": "{}", "model_type": "type `{}`", "pooling": "pooling `{}`", "dim": "{}-d",
             "image_size": "sees {} px"},
        ),
        "Normalisation": f"mean `{list(distilled.mean)}`, std `{list(distilled.std)}`",
        "Synthetic set": f"m = {m} images of {c} × {h} × {w}, targets of dimension {d}",
        "Learner": "ConvNet, " + _describe(learner, {key: f"{key} `{{}}`" for key in LEARNER_KEYS}),
        "Seed": _number(md.get("seed"), "d"),
        "Steps": _number(md.get("steps"), "d"),
        "Loss (initial → final)": f"{_number(md.get('initial_loss'))} → {_number(md.get('final_loss'))}",
        "Wall time": "—" if wall_time is None else f"{wall_time / 60:.1f} min",
        "hf-ssdd version": md.get("library_version", "—"),
    }
    provenance_rows = "\n".join(f"| {name} | {value} |" for name, value in provenance.items())
    hyperparameter_rows = "\n".join(f"| `{name}` | `{value}` |" for name, value in hyperparameters.items())
    learner_args = "".join(f", {key}={learner[key]!r}" for key in LEARNER_KEYS if key in learner)
    repo = md.get("repo_id") or SNIPPET_PLACEHOLDER
    return f"""# {_title(distilled)}

A **self-supervised distilled set**: {m} synthetic images, each with a learned {d}-dimensional target, made with
hf-ssdd by KRR-ST, kernel ridge regression on self-supervised targets (Lee et al., ICLR 2024,
[arXiv:2310.06511](https://arxiv.org/abs/2310.06511)). Pre-training a network to regress `target` from
`pixel_values` by mean squared error stands in for self-supervised pre-training on the whole source dataset: the
network learns to mimic the teacher's representation, then transfers to other tasks by fine-tuning. No labels were
used.

![preview](preview.png)

## Columns

| column | type | meaning |
|---|---|---|
| `pixel_values` | float32 `({c}, {h}, {w})` | the synthetic image exactly as optimised, in normalised space |
| `target` | float32 `({d},)` | its learned target representation |
| `image` | uint8 image | `pixel_values * std + mean`, clipped and rounded, for viewing only; train on `pixel_values` |

## Usage

```python
import torch
from datasets import load_dataset

data = load_dataset("{repo}", split="train").with_format("torch")[:]
x, y = data["pixel_values"], data["target"]  # ({m}, {c}, {h}, {w}), ({m}, {d}) float32
```

Pre-train a learner on it and fine-tune it on a labelled task with hf-ssdd:

```bash
hf-ssdd pretrain --distilled {repo} --output_dir pretrained
hf-ssdd transfer --pretrained pretrained --target <dataset> --output_dir transfer
```

or by hand: regress the targets by MSE (the paper's recipe: SGD lr 0.1, momentum 0.9, weight decay 1e-3,
batch 256, 1000 epochs), then fine-tune `learner.embed` on your task:

```python
from hf_ssdd.learners import ConvNet

learner = ConvNet(channels={c}, resolution={h}{learner_args}, out_features={d})
optimizer = torch.optim.SGD(learner.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
for epoch in range(1000):
    for batch in torch.randperm(len(x)).split(256):
        loss = torch.nn.functional.mse_loss(learner(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
```

{_results_section(md.get("transfer_results", []))}
## Provenance

| | |
|---|---|
{provenance_rows}

## Hyperparameters

| name | value |
|---|---|
{hyperparameter_rows or "| — | not recorded |"}

## Licence

{_licence_section(md.get("license"))}

## Citation

```bibtex
@inproceedings{{lee2024selfsupervised,
  title     = {{Self-Supervised Dataset Distillation for Transfer Learning}},
  author    = {{Lee, Dong Bok and Lee, Seanie and Ko, Joonho and Kawaguchi, Kenji and Lee, Juho and Hwang, Sung Ju}},
  booktitle = {{International Conference on Learning Representations}},
  year      = {{2024}},
  url       = {{https://arxiv.org/abs/2310.06511}}
}}
```
"""
