"""Tiny, local stand-ins for what users fetch from the Hub: an image dataset and a teacher encoder."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory):
    """48 grey 12x12 images with some structure (blobs at random places), saved with `save_to_disk`."""
    import datasets

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:12, :12]
    images = []
    for _ in range(48):
        cy, cx, r = rng.uniform(3, 9), rng.uniform(3, 9), rng.uniform(1.5, 4)
        blob = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        images.append((blob + rng.uniform(0, 30, (12, 12))).clip(0, 255).astype(np.uint8))
    features = datasets.Features({"image": datasets.Array2D((12, 12), "uint8")})
    path = tmp_path_factory.mktemp("source") / "blobs"
    datasets.Dataset.from_dict({"image": np.stack(images)}, features=features).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory):
    """A random 1-layer ViT on 16x16 RGB images, saved with its preprocessor_config.json."""
    import torch
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=16, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32,
    )
    path = tmp_path_factory.mktemp("teacher") / "vit"
    ViTModel(config, add_pooling_layer=False).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 16, "width": 16},
        "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "do_rescale": True, "rescale_factor": 1 / 255,
    }))
    return str(path)
