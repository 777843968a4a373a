"""Tiny, local stand-ins for what users fetch from the Hub: an image dataset and a teacher encoder."""

import json

import numpy as np
import pytest


def temporary_environment(name: str, path):
    """Set the environment variable `name` to `path` (subprocesses inherit it), then restore it."""
    import os

    previous = os.environ.get(name)
    os.environ[name] = str(path)
    yield path
    if previous is None:
        os.environ.pop(name)
    else:
        os.environ[name] = previous


@pytest.fixture(scope="session", autouse=True)
def image_cache(tmp_path_factory):
    """Decoded source images go to a temporary folder, not the user's cache."""
    yield from temporary_environment("HF_SSDD_IMAGE_CACHE", tmp_path_factory.mktemp("image_cache"))


@pytest.fixture(scope="session", autouse=True)
def teacher_cache(tmp_path_factory):
    """Teacher caches (the trajectories' targets) go to a temporary folder, not the user's cache."""
    yield from temporary_environment("HF_SSDD_CACHE", tmp_path_factory.mktemp("teacher_cache"))


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


TINY_TRAJECTORIES = dict(num_experts=3, num_epochs=4, batch_size=16, learner_depth=2, learner_width=4,
                         report_to="none")


@pytest.fixture(scope="session")
def tiny_trajectories(tiny_source, tiny_teacher, tmp_path_factory):
    """3 experts (ConvNet-2, width 4, instance norm) trained 4 epochs on `tiny_source` by `hf-ssdd trajectories`."""
    from hf_ssdd.trajectories import train_trajectories
    from hf_ssdd.trajectories_config import TrajectoriesConfig

    path = tmp_path_factory.mktemp("trajectories") / "experts"
    train_trajectories(TrajectoriesConfig(dataset=tiny_source, teacher=tiny_teacher, output_dir=str(path),
                                          **TINY_TRAJECTORIES))
    return str(path)


@pytest.fixture(scope="session")
def tiny_labelled(tmp_path_factory):
    """An easy two-class task on 12x12 grey images (a bright blob in the top or the bottom half), with a `label`
    ClassLabel column; `train` (64) and `test` (32) splits, saved with `save_to_disk`."""
    import datasets

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:12, :12]

    def split(n):
        labels = np.arange(n) % 2
        images = []
        for label in labels:
            cy, cx = rng.uniform(1.5, 4) + 6.5 * label, rng.uniform(3, 9)
            blob = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.0**2))
            images.append((blob + rng.uniform(0, 40, (12, 12))).clip(0, 255).astype(np.uint8))
        features = datasets.Features(
            {"image": datasets.Array2D((12, 12), "uint8"), "label": datasets.ClassLabel(names=["top", "bottom"])}
        )
        return datasets.Dataset.from_dict({"image": np.stack(images), "label": labels}, features=features)

    path = tmp_path_factory.mktemp("labelled") / "top-bottom"
    datasets.DatasetDict({"train": split(64), "test": split(32)}).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="session")
def distill_tiny(tiny_labelled, tiny_teacher):
    """`distill(path, **overrides)`: 6 images of `tiny_labelled` (3 outer steps unless overridden), written to
    `path` as `hf-ssdd distill` writes them; returns the folder."""
    from hf_ssdd.methods.krr_st.config import KRRSTConfig
    from hf_ssdd.methods.krr_st.distiller import KRRSTDistiller

    def distill(path, **overrides) -> str:
        cfg = KRRSTConfig(**{
            "dataset": tiny_labelled, "teacher": tiny_teacher, "output_dir": str(path), "num_synthetic": 6,
            "max_steps": 3, "batch_size": 16, "learner_depth": 2, "learner_width": 4, "pool_size": 2, "pool_steps": 4,
            "learning_rate": 1e-2, "report_to": "none", **overrides,
        })
        KRRSTDistiller(cfg).train()
        return str(path)

    return distill


@pytest.fixture(scope="session")
def tiny_distilled(distill_tiny, tmp_path_factory):
    """A distilled set of 6 images of `tiny_labelled` (3 outer steps), as `hf-ssdd distill` writes it."""
    return distill_tiny(tmp_path_factory.mktemp("distilled") / "m6")


@pytest.fixture(scope="session")
def write_benchmark_config():
    """`write(path, distilled, target, **overrides) -> path`: a small benchmark YAML (every method, two seeds, a
    target with all its labels and one with 8) for a distilled set and a labelled target, with `overrides` applied."""
    import yaml

    from hf_ssdd.evaluation.methods import METHODS

    def write(path, distilled, target, **overrides):
        values = {
            "distilled": [distilled], "targets": [{"dataset": target, "name": "top-bottom"},
                                                  {"dataset": target, "name": "top-bottom-8", "max_train_samples": 8}],
            "output_dir": str(path.parent / "bench"), "methods": list(METHODS), "seeds": [0, 1],
            "pretrain": {"num_epochs": 3}, "finetune": {"max_steps": 3, "batch_size": 16}, "linear": {"max_steps": 20},
            "label_free_images": 32,
        }
        path.write_text(yaml.safe_dump({**values, **overrides}))
        return path

    return write


def rgb_images(n: int, seed: int = 0) -> np.ndarray:
    """uint8 `(n, 16, 16, 3)`: a bright square in the top half for even rows, in the bottom half for odd ones."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, 16, 16, 3), dtype=np.uint8)
    for i in range(n):
        top = 1 + 8 * (i % 2)
        images[i, top : top + 6, 5:11] = [220, 180, 120]
    return images


@pytest.fixture(scope="session")
def write_shared_set():
    """`write(folder, shape, objective, n=8)`: a set shared by another method (see `shared_set`)."""
    return shared_set


def shared_set(folder, shape: str, objective: str, n: int = 8):
    """A set as another method would share it: `shape` parquet or imagefolder, `objective` labels or targets.
    Returns the folder, the images `(n, 16, 16, 3)` and the labels `(n,)` or targets `(n, 4)`."""
    import datasets
    from PIL import Image

    images = rgb_images(n)
    values = np.arange(n) % 2 if objective == "labels" else np.random.default_rng(1).normal(size=(n, 4))
    if shape == "parquet":
        columns = {"image": [Image.fromarray(image) for image in images]}
        features = {"image": datasets.Image()}
        if objective == "labels":
            columns["label"], features["label"] = values.tolist(), datasets.ClassLabel(names=["top", "bottom"])
        else:
            columns["target"], features["target"] = values.tolist(), datasets.List(datasets.Value("float32"))
        (folder / "data").mkdir(parents=True)
        datasets.Dataset.from_dict(columns, features=datasets.Features(features)).to_parquet(
            str(folder / "data" / "train-00000-of-00001.parquet"))
    else:
        rows = []
        for i, (image, value) in enumerate(zip(images, values)):
            sub = folder / "train" / (["top", "bottom"][value] if objective == "labels" else "")
            sub.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(sub / f"{i}.png")
            if objective == "targets":
                rows.append({"file_name": f"{i}.png", "target": value.tolist()})
        if rows:
            (folder / "train" / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(folder), images, values


@pytest.fixture
def interrupt_at(monkeypatch):
    """`interrupt_at(module, "name", n)`: the `n`-th call of `module.name` first sends this process SIGINT, as a user's
    Ctrl-C in the middle of a step."""
    import os
    import signal

    def patch(module, name: str, n: int) -> None:
        real, calls = getattr(module, name), []

        def counted(*args, **kwargs):
            calls.append(None)
            if len(calls) == n:
                os.kill(os.getpid(), signal.SIGINT)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    return patch
