"""The distilled set's dataset card: YAML metadata that the Hub and `datasets` read (licence, size, the loader's
`configs`, and what `DistilledSet.load` needs back), then prose for people: columns, usage, provenance, licence.

A card is text rendered from what a stage recorded (a `DistilledSet`'s metadata), so it never imports a stage. Inputs
are named as `provenance` names them (Hub id and commit, or a local folder by its name), never by a path on this
machine. The model cards (teacher, pre-trained learner, trajectories) are `model_cards`.
"""

from __future__ import annotations

from .provenance import public_metadata, where

TAGS = ("dataset-distillation", "self-supervised", "hf-ssdd")
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))
SNIPPET_PLACEHOLDER = "<repo_id or folder>"  # in the usage snippets of a set not pushed yet
LEARNER_KEYS = ("depth", "width", "norm", "pooling", "double_width")  # ConvNet arguments in metadata["learner"]


def render_card(distilled) -> str:
    """The text of a `DistilledSet`'s `README.md`: YAML metadata the Hub and `datasets` read, then prose for people."""
    return f"---\n{_card_data(distilled).to_yaml()}\n---\n\n{_card_text(distilled)}"


def _card_data(distilled):
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
        tags=[*TAGS, _method(distilled).name.lower()],
        task_categories=["image-feature-extraction"],
        size_categories=[_size_category(m)],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": distilled.data_file()}]}],
        hf_ssdd={
            "mean": [float(v) for v in distilled.mean],
            "std": [float(v) for v in distilled.std],
            "metadata": public_metadata(distilled.metadata),
        },
    )
    info = DatasetInfo(features=distilled.features(), splits=SplitDict({"train": SplitInfo("train", num_examples=m)}))
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


def _method(distilled):
    """The registered method that made the set (sets saved before there were methods are KRR-ST's)."""
    from .methods import METHODS, made_by

    return METHODS[made_by(distilled.metadata)]


def _title(distilled) -> str:
    source = distilled.metadata.get("source", {})
    name = source.get("folder") or source.get("id") or "Distilled set"
    return f"{name}: {len(distilled.pixel_values)} synthetic images ({_method(distilled).name})"


def _describe(values: dict, templates: dict[str, str]) -> str:
    """Fill in the templates of the keys `values` has, e.g. "`x`, split `train`": a card shows what was recorded."""
    parts = [template.format(values[key]) for key, template in templates.items() if values.get(key) is not None]
    return ", ".join(parts) or "—"


def _number(value, spec: str = ".6g") -> str:
    return "—" if value is None else format(value, spec)


def _card_text(distilled) -> str:
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
        "Method": _method(distilled).name,
        "Synthetic set": f"m = {m} images of {c} × {h} × {w}, targets of dimension {d}",
        "Learner": "ConvNet, " + _describe(learner, {key: f"{key} `{{}}`" for key in LEARNER_KEYS}),
        "Seed": _number(md.get("seed"), "d"),
        "Steps": _number(md.get("steps"), "d"),
        "Loss (initial → final)": f"{_number(md.get('initial_loss'))} → {_number(md.get('final_loss'))}",
        "Wall time": "—" if wall_time is None else f"{wall_time / 60:.1f} min",
        "hf-ssdd version": md.get("library_version", "—"),
    }
    if "step_size" in md:
        provenance["Learned step size"] = f"{md['step_size']:.6g} (`pretrain` uses it as its learning rate)"
    provenance_rows = "\n".join(f"| {name} | {value} |" for name, value in provenance.items())
    hyperparameter_rows = "\n".join(f"| `{name}` | `{value}` |" for name, value in hyperparameters.items())
    learner_args = "".join(f", {key}={learner[key]!r}" for key in LEARNER_KEYS if key in learner)
    repo = md.get("repo_id") or SNIPPET_PLACEHOLDER
    method = _method(distilled)
    recipe = method.recipe
    lr = recipe["learning_rate"] or md.get("step_size", 0.1)
    sgd = f"SGD at the set's learned step size, {lr:.4g}" if recipe["learning_rate"] is None else f"SGD lr {lr}"

    return f"""# {_title(distilled)}

A **self-supervised distilled set**: {m} synthetic images, each with a learned {d}-dimensional target, made with
hf-ssdd by {method.paper}. Pre-training a network to regress `target` from
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

or by hand: regress the targets by MSE (the paper's recipe: {sgd}, momentum 0.9, weight decay
{recipe["weight_decay"]}, batch 256, {recipe["epochs"]} epochs), then fine-tune `learner.embed` on your task:

```python
from hf_ssdd.learners import ConvNet

learner = ConvNet(channels={c}, resolution={h}{learner_args}, out_features={d})
optimizer = torch.optim.SGD(learner.parameters(), lr={lr:.6g}, momentum=0.9, weight_decay={recipe["weight_decay"]})
for epoch in range({recipe["epochs"]}):
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
{method.citation}
```
"""


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
