"""Model cards of pre-trained learners: where the model came from, and what it scored after transfer.

Transfer results live in the card's `model-index` metadata, the format the Hub reads into its evaluation widget and
leaderboards; `add_results` merges new results into a saved card, one entry per (target, protocol).
"""

from __future__ import annotations

from pathlib import Path

PROTOCOL_NAMES = {"finetune": "Fine-tuning accuracy", "linear": "Linear-probe accuracy"}


def _is_hub_id(name: str) -> bool:
    return not Path(name).exists() and name.count("/") == 1


def pretrained_card(model, cfg, stats: dict) -> str:
    """README.md of a model written by `pretrain`: metadata naming the distilled set, then prose.

    `stats` holds steps, final_loss, wall_time_s, num_images, resolution, distilled_metadata and, optionally, the
    `objective` in words (the benchmark's baselines are not all trained on a distilled set). Inputs are named as the
    distilled set's card names them (`distilled_set.where`): by Hub id, or a local folder by its name, never its path.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from . import __version__
    from .distilled_set import public_name, where
    from .teachers import teacher_provenance

    distilled_metadata = stats.get("distilled_metadata") or {}
    source = distilled_metadata.get("source", {})
    hub_id = distilled_metadata.get("repo_id") or (cfg.distilled if _is_hub_id(cfg.distilled) else None)
    distilled = hub_id or public_name(cfg.distilled)
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=["hf-ssdd", "dataset-distillation", "krr-st", model.config.model_type],
        datasets=[hub_id] if hub_id else None,
    )
    how = stats.get("objective") or (
        f"knowledge distillation from {where(teacher_provenance(cfg.teacher))} on the distilled images" if cfg.teacher
        else "regression (MSE) of the distilled set's target representations"
    )
    params = sum(p.numel() for p in model.parameters())
    optimiser = f"SGD, lr {cfg.learning_rate}, momentum {cfg.momentum}, weight decay {cfg.weight_decay}"
    training = f"{cfg.num_epochs} epochs = {stats['steps']} steps, final loss {stats['final_loss']:.4g}"
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
    """`fashion_mnist (100 labels)`: the target and its few-label setting, as results are told apart."""
    labels = result.get("max_train_samples")
    return f"{result['target']} ({labels} labels)" if labels else result["target"]
