"""One writer for every model folder hf-ssdd produces (a teacher, a pre-trained learner): what
`AutoModel.from_pretrained` loads, what feeds it, and how it was trained.

    OUTPUT_DIR/
        config.json, model.safetensors    # save_pretrained
        preprocessor_config.json          # size and normalisation of the training input (ViTImageProcessor format)
        <stage>_config.yaml               # the resolved config (`--config` loads it again)
        train_log.json                    # the logged losses
        README.md                         # the model card
        runs/                             # tracker logs, when the stage wrote them
        checkpoint-N/                     # the run's newest checkpoints (`checkpoint`), not pushed
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .atomic import write_folder
from .checkpoint import list_checkpoints
from .config import save_config


def preprocessor_config(image_size: int, normalization) -> dict:
    """The image processor that reproduces training's input: resize to `image_size`, scale to [0, 1], normalise."""
    return {
        "image_processor_type": "ViTImageProcessor",
        "do_resize": True,
        "size": {"height": image_size, "width": image_size},
        "resample": 2,  # bilinear, as the views were resampled
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(normalization.mean),
        "image_std": list(normalization.std),
    }


def save_model_folder(model, output_dir, image_size: int, normalization, cfg, stage: str, history, card: str) -> Path:
    """A transformers model folder, written atomically: weights and config, `preprocessor_config.json` (how to feed
    it), `<stage>_config.yaml` (how it was trained), `train_log.json` and the card `README.md`. What training wrote
    to `output_dir` is kept: the trackers' logs (`runs/`) and the checkpoints (`checkpoint-N/`), hard-linked into the
    new folder (no copy of the bytes; the old ones stay whole until the rename)."""

    def fill(folder: Path) -> None:
        kept = [Path(output_dir) / "runs", *list_checkpoints(output_dir)]
        for path in (path for path in kept if path.is_dir()):
            shutil.copytree(path, folder / path.name, copy_function=_link)
        model.save_pretrained(folder)
        preprocessing = preprocessor_config(image_size, normalization)
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessing, indent=2) + "\n")
        save_config(cfg, folder / f"{stage}_config.yaml")
        (folder / "train_log.json").write_text(json.dumps(history, indent=1) + "\n")
        (folder / "README.md").write_text(card)

    return write_folder(Path(output_dir), fill)


def _link(source: str, target: str) -> None:
    """A hard link where the file system has them, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
