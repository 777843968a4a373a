"""The inputs the speed and memory benchmarks run on, built locally: no download, random weights are enough.

- `cifar_like_source`: `n` random 32x32 RGB images, saved with `save_to_disk` (a stand-in for CIFAR-100).
- `vit_tiny_teacher`: a ViT-Tiny-sized encoder (192 wide, 12 layers, 3 heads, patch 16) at 224x224, random weights.
- `fashion_mnist_teacher`: the README's teacher when it is there, else the same architecture after one step.
- `resnet18_cifar_teacher`: the paper's teacher architecture, ResNet-18 with the CIFAR stem at 32x32, random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def new_distiller(cfg):
    """A `KRRSTDistiller` for `cfg` in a process that may already have built one with another precision (accelerate
    fixes the precision of its `Accelerator` state once per process otherwise)."""
    from accelerate.state import AcceleratorState

    from hf_ssdd.methods.krr_st.distiller import KRRSTDistiller

    AcceleratorState._reset_state(True)
    return KRRSTDistiller(cfg)


def cifar_like_source(folder: Path, n: int = 2048) -> str:
    import datasets

    path = Path(folder) / f"cifar-like-{n}"
    if not path.exists():
        pixels = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        features = datasets.Features({"image": datasets.Array3D((32, 32, 3), "uint8")})
        datasets.Dataset.from_dict({"image": pixels}, features=features).save_to_disk(str(path))
    return str(path)


def save_preprocessor(path: Path, side: int, mean, std) -> None:
    (Path(path) / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": side, "width": side},
        "do_normalize": True, "image_mean": list(mean), "image_std": list(std), "do_rescale": True,
        "rescale_factor": 1 / 255,
    }))


def vit_tiny_teacher(folder: Path) -> str:
    import torch
    from transformers import ViTConfig, ViTModel

    path = Path(folder) / "vit-tiny-224"
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        config = ViTConfig(image_size=224, patch_size=16, hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                           intermediate_size=768)
        ViTModel(config, add_pooling_layer=False).save_pretrained(path)
        save_preprocessor(path, 224, [0.5] * 3, [0.5] * 3)
    return str(path)


def fashion_mnist_teacher(folder: Path) -> str:
    from hf_ssdd.cli import main

    readme_teacher = ROOT / "outputs" / "fashion-mnist-teacher"
    if (readme_teacher / "config.json").exists():
        return str(readme_teacher)
    path = Path(folder) / "fashion-mnist-teacher-1step"
    if not (path / "config.json").exists():
        main(["train-teacher", "--config", str(ROOT / "recipes/configs/fashion_mnist_teacher.yaml"),
              "--max_steps", "1", "--output_dir", str(path), "--overwrite_output_dir", "true"])
    return str(path)


def small_vit_teacher(folder: Path, side: int = 32) -> str:
    """A 2-layer ViT at the images' own size: a teacher whose memory does not depend on m."""
    import torch
    from transformers import ViTConfig, ViTModel

    path = Path(folder) / f"vit-small-{side}"
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        config = ViTConfig(image_size=side, patch_size=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=128)
        ViTModel(config, add_pooling_layer=False).save_pretrained(path)
        save_preprocessor(path, side, [0.5] * 3, [0.5] * 3)
    return str(path)


def resnet18_cifar_teacher(folder: Path, hidden_sizes: list[int] | None = None) -> str:
    """The authors' teacher architecture (3x3 stride-1 stem, no max-pool, 512-d) at 32x32, random weights;
    `hidden_sizes` narrows it (toy sizes)."""
    import torch

    from hf_ssdd.resnet import TorchvisionResNetConfig, TorchvisionResNetModel

    path = Path(folder) / f"resnet18-cifar-{'-'.join(map(str, hidden_sizes or [64]))}"
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        widths = {"hidden_sizes": hidden_sizes} if hidden_sizes else {}
        TorchvisionResNetModel(TorchvisionResNetConfig.preset("resnet18", stem="cifar", **widths)).save_pretrained(path)
        save_preprocessor(path, 32, [0.5071, 0.4866, 0.4409], [0.2673, 0.2564, 0.2762])  # the authors' CIFAR-100, 32 px
    return str(path)
