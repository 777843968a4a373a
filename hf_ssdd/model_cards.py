"""The model cards hf-ssdd writes: a teacher's (trained by `train-teacher` or converted by `import-teacher`), a
learner's pre-trained on a distilled set, and a folder of expert trajectories; and the transfer results that
`transfer` merges into a pre-trained learner's card.

A card is text rendered from what a stage recorded (its config and stats), so a card never imports a stage: the stage
passes what the card shows. Inputs are named as `provenance` names them, never by a path on this machine. Transfer
results live in the card's `model-index` metadata, the format the Hub reads into its evaluation widget and
leaderboards; `add_results` merges new results into a saved card, one entry per (target, protocol).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from .data import BUILTIN_HUB_COPIES
from .provenance import public_name, where
from .resnet import MODEL_TYPE as RESNET_TYPE

PROTOCOL_NAMES = {"finetune": "Fine-tuning accuracy", "linear": "Linear-probe accuracy"}


# ---------------------------------------------------------------------------------------------------------------------
# The teacher's model card
# ---------------------------------------------------------------------------------------------------------------------


def describe_encoder(encoder) -> str:
    """A teacher's architecture in words, for its card: the stem exactly, since checkpoints differ in it."""
    c = encoder.config
    if c.model_type != RESNET_TYPE:
        return f"{c.model_type} encoder (stages {c.hidden_sizes}, blocks {c.depths})"
    side = encoder.conv1.kernel_size[0]
    pool = "a 3x3 stride-2 max-pool" if c.stem == "imagenet" else "no max-pool"
    return (f"ResNet in torchvision's layout ({c.block} blocks, stages {c.hidden_sizes}, blocks {c.depths}; {c.stem} "
            f"stem: {side}x{side} convolution, stride {c.stem_stride}, padding {c.stem_padding}, {pool}; "
            "global average pooling)")


def _remote_code(encoder) -> str:
    """The `from_pretrained` argument that loads the encoder without hf-ssdd: its code is saved beside the weights."""
    return ", trust_remote_code=True" if encoder.config.model_type == RESNET_TYPE else ""


def _teacher_use(name: str, encoder, mean: list, std: list, channels: int, side: int, dataset: str) -> str:
    """The "Use" section of a teacher's card: load it, feed it normalised pixels, distil with it."""
    dim = encoder.config.hidden_sizes[-1]
    return f"""## Use

```python
import torch
from transformers import AutoModel

model = AutoModel.from_pretrained("{name}"{_remote_code(encoder)}).eval()
mean = torch.tensor({mean}).view(1, -1, 1, 1)
std = torch.tensor({std}).view(1, -1, 1, 1)
# x: (n, {channels}, {side}, {side}) pixels in [0, 1]
features = model(pixel_values=(x - mean) / std).pooler_output.flatten(1)  # (n, {dim})
```

`preprocessor_config.json` holds the same size and normalisation. As the teacher of a distillation:

```bash
hf-ssdd distill --teacher {name} --dataset {dataset} --output_dir distilled
```
"""


def teacher_card(cfg, normalization, stats: dict, encoder) -> str:
    """README.md of a teacher written by `train-teacher` (`cfg` its TeacherTrainConfig): Hub metadata, then how it was
    trained and how to load and use it. A built-in source is named by its Hub copy where it has one."""
    from . import __version__

    hub_copy = BUILTIN_HUB_COPIES.get(cfg.dataset)
    dataset = hub_copy[0] if hub_copy else public_name(cfg.dataset)
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "image-feature-extraction",
        "tags": ["self-supervised", "barlow-twins", "hf-ssdd", cfg.arch],
        **({"datasets": [dataset]} if not Path(cfg.dataset).exists() else {}),
    }
    s, side = stats, stats["image_size"]
    params = sum(p.numel() for p in encoder.parameters())
    epochs = s["steps"] * cfg.batch_size / s["num_images"]
    mean = [round(v, 4) for v in normalization.mean]
    std = [round(v, 4) for v in normalization.std]
    values = {k: public_name(v) if isinstance(v, str) else v for k, v in dataclasses.asdict(cfg).items()}
    values["output_dir"] = Path(cfg.output_dir).name  # not written yet, so public_name cannot tell it is a folder
    hyperparameters = "\n".join(f"| `{k}` | `{v}` |" for k, v in values.items())
    name = cfg.push_to_hub or values["output_dir"]
    return f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

# Barlow Twins teacher: {cfg.arch} on `{dataset}`

A {describe_encoder(encoder)}, {params / 1e6:.2f}M parameters,
trained from scratch, without labels, with Barlow Twins (Zbontar et al., *Barlow Twins: Self-Supervised Learning via
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

{_teacher_use(name, encoder, mean, std, s["channels"], side, values["dataset"])}"""


def imported_teacher_card(cfg, encoder, normalization, checkpoint: str, sha256: str) -> str:
    """README.md of a teacher written by `import-teacher` (`cfg` its TeacherImportConfig): the checkpoint it came from
    by file name and sha256 (never a path of this machine), the architecture, and how to load and use it."""
    from . import __version__

    metadata = {"library_name": "transformers", "pipeline_tag": "image-feature-extraction",
                "tags": ["self-supervised", "hf-ssdd", cfg.arch]}
    params = sum(p.numel() for p in encoder.parameters())
    mean = [round(v, 4) for v in normalization.mean]
    std = [round(v, 4) for v in normalization.std]
    side, dim = cfg.image_size, encoder.config.hidden_sizes[-1]
    name = cfg.push_to_hub or Path(cfg.output_dir).name  # not written yet, so public_name cannot tell it is a folder
    return f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

# Imported teacher: {cfg.arch} from `{checkpoint}`

The backbone of the checkpoint `{checkpoint}` (sha256 `{sha256}`), trained elsewhere, converted by hf-ssdd
{__version__} `import-teacher` without change to its weights: a {describe_encoder(encoder)}, {params / 1e6:.2f}M
parameters. Its representation is `pooler_output`, a {dim}-d vector per image. It is meant as the frozen teacher of
KRR-ST dataset distillation.

- Input: {cfg.num_channels} channel(s), resized to {side}x{side}, normalised with mean {mean}, std {std} (in [0, 1]
  pixel units), as given to `import-teacher`: the normalisation the checkpoint was trained with.
- The same conversion: `hf-ssdd import-teacher {checkpoint} --config import_teacher_config.yaml`.

{_teacher_use(name, encoder, mean, std, cfg.num_channels, side, "<source dataset>")}"""


# ---------------------------------------------------------------------------------------------------------------------
# The pre-trained learner's model card and its transfer results
# ---------------------------------------------------------------------------------------------------------------------


def _is_hub_id(name: str) -> bool:
    return not Path(name).exists() and name.count("/") == 1


def pretrained_card(model, cfg, stats: dict) -> str:
    """README.md of a model written by `pretrain`: metadata naming the distilled set, then prose.

    `stats` holds steps, final_loss, wall_time_s, num_images, resolution, distilled_metadata and, optionally, the
    `objective` in words (the benchmark's baselines are not all trained on a distilled set). Inputs are named as the
    distilled set's card names them (`provenance.where`): by Hub id, or a local folder by its name, never its path.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from . import __version__
    from .methods import made_by
    from .teachers import teacher_provenance

    distilled_metadata = stats.get("distilled_metadata") or {}
    source = distilled_metadata.get("source", {})
    hub_id = distilled_metadata.get("repo_id") or (cfg.distilled if _is_hub_id(cfg.distilled) else None)
    distilled = hub_id or public_name(cfg.distilled)
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=["hf-ssdd", "dataset-distillation", made_by(distilled_metadata).replace("_", "-"),
              model.config.model_type],
        datasets=[hub_id] if hub_id else None,
    )
    if cfg.teacher:
        how = f"knowledge distillation from {where(teacher_provenance(cfg.teacher))} on the distilled images"
    elif model.config.problem_type == "single_label_classification":
        how = "cross-entropy on the set's class labels"
    else:
        how = "regression (MSE) of the distilled set's target representations"
    how = stats.get("objective") or how
    params = sum(p.numel() for p in model.parameters())
    optimiser = f"SGD, lr {cfg.learning_rate}, momentum {cfg.momentum}, weight decay {cfg.weight_decay}"
    if cfg.lr_drop is not None and cfg.lr_drop < 1:
        optimiser += f", lr x0.1 after {cfg.lr_drop:.0%} of the steps"
    if cfg.dsa:
        optimiser += ", DSA augmentation"
    epochs = f"{cfg.num_epochs} epochs" + (f", at most {cfg.max_steps} steps" if cfg.max_steps else "")
    training = f"{epochs} = {stats['steps']} steps, final loss {stats['final_loss']:.4g}"
    text = f"""---
{data.to_yaml()}
---

# Learner pre-trained on a distilled set

A `{model.config.model_type}` network ({params / 1e6:.2f} M parameters): {how}.

| | |
|---|---|
| distilled set | `{distilled}` ({stats['num_images']} images, {stats['resolution']}x{stats['resolution']}) |
| source of the distilled set | {where(source) or 'unknown'} (split `{source.get('split', '?')}`) |
| optimiser | {optimiser}, batch {cfg.batch_size} |
| training | {training}, {stats['wall_time_s']:.0f} s |
| seed | {cfg.seed} |
| library | hf-ssdd {__version__} |

The head outputs the target representations; fine-tune on a labelled task with

```bash
hf-ssdd transfer --pretrained <this repo or folder> --target <dataset> --output_dir transfer
```

or load it in Python (`import hf_ssdd` registers the architecture with the Auto classes):

```python
import hf_ssdd
from transformers import AutoModel
model = AutoModel.from_pretrained("<this repo or folder>")  # pooler_output: the features
```
"""
    return ModelCard(text).content


def add_results(folder: str | Path, results: list[dict]) -> None:
    """Merge transfer `results` (as written to results.json) into the `model-index` of `folder/README.md`."""
    from huggingface_hub import EvalResult, ModelCard

    path = Path(folder) / "README.md"
    card = ModelCard.load(path)
    kept = {(r.dataset_name, r.metric_name): r for r in (card.data.eval_results or [])}
    for result in results:
        entry = EvalResult(
            task_type="image-classification",
            task_name="Transfer",
            dataset_type=result["target"],
            dataset_name=result_name(result),
            dataset_split=result.get("test_split"),
            metric_type="accuracy",
            metric_name=PROTOCOL_NAMES[result["protocol"]],
            metric_value=round(float(result["accuracy"]), 4),
        )
        kept[(entry.dataset_name, entry.metric_name)] = entry
    card.data.eval_results = list(kept.values())
    card.data.model_name = card.data.model_name or Path(folder).resolve().name
    tmp = path.with_suffix(".tmp")
    card.save(tmp)
    tmp.replace(path)


def result_name(result: dict) -> str:
    """`fashion_mnist (100 labels)`, `fashion_mnist (1% of labels)`: the target and its few-label setting, as
    results are told apart."""
    labels, fraction = result.get("max_train_samples"), result.get("train_fraction")
    if labels:
        return f"{result['target']} ({labels} labels)"
    return f"{result['target']} ({fraction:.0%} of labels)" if fraction else result["target"]


# ---------------------------------------------------------------------------------------------------------------------
# A folder of expert trajectories (MKDT's experts)
# ---------------------------------------------------------------------------------------------------------------------


def trajectories_card(cfg, meta: dict, losses: list[list[float]]) -> str:
    """README.md of a `trajectories` folder (`cfg` its TrajectoriesConfig, `meta` its config.json, `losses` each
    expert's mean loss per epoch): Hub metadata, how the experts were trained, how to read them."""
    from huggingface_hub import ModelCard, ModelCardData

    from . import __version__

    hub_copy = BUILTIN_HUB_COPIES.get(cfg.dataset)
    dataset = hub_copy[0] if hub_copy else public_name(cfg.dataset)
    data = ModelCardData(library_name="hf-ssdd", tags=["hf-ssdd", "dataset-distillation", "mkdt", "trajectories"],
                         datasets=[dataset] if not Path(cfg.dataset).exists() else None)
    spec, side = meta["learner"], meta["resolution"]
    first = [row[0] for row in losses]
    last = [row[-1] for row in losses]
    hyperparameters = "\n".join(f"| `{k}` | `{v}` |" for k, v in meta["hyperparameters"].items())
    name = cfg.push_to_hub or Path(cfg.output_dir).name
    text = f"""---
{data.to_yaml()}
---

# Expert trajectories: {meta['num_experts']} ConvNet-{spec['depth']} students of a teacher on `{dataset}`

{meta['num_experts']} students (ConvNet-{spec['depth']}, width {spec['width']}, {spec['norm']} norm, {spec['pooling']}
pooling, a linear head to the teacher's {meta['dim']}-d representation) trained by MSE to the representations that
{where(meta['teacher_provenance'])} gives the {meta['num_images']} un-augmented images of `{dataset}` (split
`{cfg.split}`, {side}x{side}, {meta['channels']} channel(s)), by hf-ssdd {__version__} `trajectories`: the experts
whose trajectories MKDT (Joshi et al., ICLR 2025) matches.

- SGD, lr {cfg.learning_rate}, momentum {cfg.momentum}, weight decay {cfg.weight_decay}, batch {cfg.batch_size},
  {cfg.num_epochs} epochs; weights recorded at the start and after every epoch ({cfg.num_epochs + 1} snapshots).
- Training loss (mean over experts): {sum(first) / len(first):.4g} in the first epoch, {sum(last) / len(last):.4g}
  in the last.
- Input normalisation: mean {[round(v, 4) for v in meta['normalization']['mean']]}, std
  {[round(v, 4) for v in meta['normalization']['std']]}; seed {cfg.seed}; {meta['wall_time_s']:.0f} s wall time.

| hyperparameter | value |
|---|---|
{hyperparameters}

`expert-NNN.safetensors` holds each parameter stacked over epochs, `(epochs + 1, *shape)`:

```python
from hf_ssdd.trajectories import Trajectories
trajectories = Trajectories.load("{name}")
params = trajectories.parameters(expert=0, epoch=1)  # {{name: tensor}}, for trajectories.learner()
```

Distil with them: `hf-ssdd distill --method mkdt --trajectories {name} --teacher <the teacher> ...`.
"""
    return ModelCard(text).content
