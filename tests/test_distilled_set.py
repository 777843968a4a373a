"""The distilled set as a Hub dataset: what `save` writes, what `load_dataset` and `DistilledSet.load` give back."""

import re
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import DatasetCard
from PIL import Image
from safetensors.torch import save_file

from hf_ssdd.config import ConfigError, DistillConfig, load_yaml
from hf_ssdd.distilled_set import SNIPPET_PLACEHOLDER, DistilledSet, render_card

M, RES, DIM = 6, 8, 5
METADATA = {
    "source": {"id": "zalando-datasets/fashion_mnist", "config": None, "revision": "abc123", "split": "train",
               "image_column": "image", "num_images": 60000},
    "teacher": {"id": "facebook/dinov2-small", "revision": "def456", "pooling": "cls", "dim": DIM, "image_size": 224,
                "model_type": "dinov2"},
    "normalization": {"mean": [0.25], "std": [0.5]},
    "resolution": RES,
    "channels": 1,
    "num_synthetic": M,
    "learner": {"depth": 2, "width": 4, "norm": "batch", "pooling": "avg"},
    "hyperparameters": {"learning_rate": 0.0001, "batch_size": 1024, "max_steps": 3, "pool_size": 10,
                        "pool_steps": 1000, "ridge": 1e-06},
    "seed": 7,
    "steps": 3,
    "initial_loss": 0.875,
    "final_loss": 0.123456789,
    "library_version": "0.1.0",
    "wall_time_s": 90.0,
}


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")


def make_set(channels=1, m=M, metadata=METADATA) -> DistilledSet:
    """Pixels spread well beyond [0, 1] once de-normalised, so clipping matters."""
    g = torch.Generator().manual_seed(channels)
    mean, std = (0.25, 0.5, 0.75)[:channels], (0.5, 0.25, 0.125)[:channels]
    return DistilledSet(
        pixel_values=2 * torch.randn(m, channels, RES, RES, generator=g),
        targets=torch.randn(m, DIM, generator=g),
        mean=mean,
        std=std,
        metadata=metadata,
    )


def expected_pixels(distilled: DistilledSet) -> np.ndarray:
    """Naive reference: uint8 `(m, H, W, C)` of clip(round(255 * (x * std + mean)))."""
    x = distilled.pixel_values.numpy().transpose(0, 2, 3, 1).astype(np.float64)
    return np.clip(np.rint(255 * (x * np.array(distilled.std) + np.array(distilled.mean))), 0, 255).astype(np.uint8)


def card_yaml(out) -> dict:
    text = (out / "README.md").read_text()
    return yaml.safe_load(re.match(r"---\n(.*?)\n---\n", text, re.S).group(1))


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_load_dataset_gives_back_the_exact_tensors_and_viewable_images(tmp_path, channels, mode):
    distilled = make_set(channels)
    out = distilled.save(tmp_path / "distilled")

    ds = datasets.load_dataset(str(out), split="train")

    assert len(ds) == M and set(ds.column_names) == {"image", "pixel_values", "target"}
    assert ds.features["pixel_values"] == datasets.Array3D((channels, RES, RES), "float32")
    assert ds.features["target"] == datasets.List(datasets.Value("float32"), length=DIM)
    tensors = ds.with_format("torch", columns=["pixel_values", "target"])[:]
    assert tensors["pixel_values"].dtype == torch.float32
    assert torch.equal(tensors["pixel_values"], distilled.pixel_values)
    assert torch.equal(tensors["target"], distilled.targets)
    images = [ds[i]["image"] for i in range(M)]
    assert {image.mode for image in images} == {mode}
    pixels = np.stack([np.asarray(image).reshape(RES, RES, channels) for image in images])
    np.testing.assert_array_equal(pixels, expected_pixels(distilled))


def test_distilled_set_load_round_trips_tensors_normalisation_and_metadata(tmp_path):
    distilled = make_set(3)
    loaded = DistilledSet.load(distilled.save(tmp_path / "distilled"))

    assert torch.equal(loaded.pixel_values, distilled.pixel_values)
    assert torch.equal(loaded.targets, distilled.targets)
    assert loaded.mean == distilled.mean and loaded.std == distilled.std
    assert loaded.metadata == METADATA


def test_load_dataset_reads_only_the_data_beside_checkpoints_and_logs(tmp_path):
    out = tmp_path / "distilled"
    (out / "checkpoint-5").mkdir(parents=True)
    save_file({"synthetic_images": torch.zeros(M, 1, RES, RES)}, out / "checkpoint-5" / "model.safetensors")
    (out / "checkpoint-5" / "trainer_state.json").write_text('{"step": 5, "loss": [1.0, 0.5]}')
    (out / "runs").mkdir()
    (out / "runs" / "events.out.tfevents.1.host").write_bytes(b"\x00\x01tensorboard")

    make_set().save(out)
    ds = datasets.load_dataset(str(out), split="train")

    assert len(ds) == M and set(ds.column_names) == {"image", "pixel_values", "target"}
    assert (out / "checkpoint-5" / "model.safetensors").exists() and (out / "runs").exists()


def test_a_set_saved_anew_into_the_same_folder_is_what_load_dataset_gives(tmp_path):
    import datasets

    first, second = make_set(), make_set()
    second.targets = second.targets + 1
    first.save(tmp_path / "set")
    assert datasets.load_dataset(str(tmp_path / "set"), split="train")[0]["target"] == first.targets[0].tolist()
    second.save(tmp_path / "set")
    loaded = datasets.load_dataset(str(tmp_path / "set"), split="train").with_format("torch")[:]
    assert torch.equal(loaded["target"], second.targets), "not the rows cached from the first save"
    assert [p.name for p in (tmp_path / "set" / "data").iterdir()] == [Path(second.data_file()).name]


def test_card_records_provenance_hyperparameters_preview_and_usage(tmp_path):
    out = make_set().save(tmp_path / "distilled")
    text = (out / "README.md").read_text()
    meta = card_yaml(out)

    for needle in [
        "`zalando-datasets/fashion_mnist`, revision `abc123`, split `train`, column `image`, 60000 images",
        "`facebook/dinov2-small`, revision `def456`, type `dinov2`, pooling `cls`, 5-d",
        "mean `[0.25]`, std `[0.5]`",
        "| Seed | 7 |",
        "| Steps | 3 |",
        "0.875 → 0.123457",
        "| hf-ssdd version | 0.1.0 |",
        "| `learning_rate` | `0.0001` |",
        "| `pool_steps` | `1000` |",
        "![preview](preview.png)",
        'load_dataset("',
        "mse_loss",
        "arXiv:2310.06511",
        "@inproceedings",
    ]:
        assert needle in text, needle
    assert {"dataset-distillation", "self-supervised", "hf-ssdd"} <= set(meta["tags"])
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": make_set().data_file()}]
    assert meta["dataset_info"]["splits"][0]["num_examples"] == M
    assert meta["size_categories"] == ["n<1K"]
    assert DatasetCard.load(out / "README.md").data.get("hf_ssdd")["metadata"] == METADATA


def test_card_usage_snippets_run_load_the_set_and_pretrain_the_recorded_learner(tmp_path):
    distilled = make_set()
    out = distilled.save(tmp_path / "distilled")
    snippets = re.findall(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S)

    scope = {}
    exec("".join(snippets).replace(SNIPPET_PLACEHOLDER, str(out)).replace("range(1000)", "range(2)"), scope)

    assert torch.equal(scope["x"], distilled.pixel_values) and torch.equal(scope["y"], distilled.targets)
    assert len(scope["learner"].features) == 4 * METADATA["learner"]["depth"] + 1  # conv, norm, ReLU, pool; flatten
    assert scope["loss"].isfinite()


def test_card_renders_without_metadata():
    bare = render_card(make_set(metadata={}))

    assert "not recorded" in bare and "| Teacher | — |" in bare and "| Seed | — |" in bare
    assert yaml.safe_load(bare.split("---\n")[1])["hf_ssdd"] == {"mean": [0.25], "std": [0.5], "metadata": {}}


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_preview_is_a_grid_of_upscaled_tiles(tmp_path, channels, mode):
    distilled = make_set(channels)
    out = distilled.save(tmp_path / "distilled")

    preview = Image.open(out / "preview.png")

    # 6 tiles on a 3 x 2 grid, 8 px upscaled x8 to 64 px, 2 px gaps around each.
    assert preview.mode == mode and preview.size == (3 * 66 + 2, 2 * 66 + 2)
    first_tile = np.asarray(preview).reshape(134, 200, channels)[2:66, 2:66]
    upscaled = expected_pixels(distilled)[0].repeat(8, axis=0).repeat(8, axis=1)
    np.testing.assert_array_equal(first_tile, upscaled)


def test_save_preview_keeps_at_most_max_images(tmp_path):
    make_set(m=30).save_preview(tmp_path / "preview.png", max_images=4)

    assert Image.open(tmp_path / "preview.png").size == (2 * 66 + 2, 2 * 66 + 2)


def test_save_writes_the_config_and_overwrites_without_leftovers(tmp_path):
    config = DistillConfig(num_synthetic=M, max_steps=3, output_dir=str(tmp_path / "distilled"))
    out = make_set().save(tmp_path / "distilled", config)
    second = make_set(3)
    second.save(out)

    assert load_yaml(out / "distill_config.yaml", DistillConfig)["num_synthetic"] == M
    assert not list(out.rglob("*.tmp"))
    assert torch.equal(DistilledSet.load(out).pixel_values, second.pixel_values)


def test_a_crash_while_writing_keeps_the_previous_files_whole(tmp_path, monkeypatch):
    first = make_set()
    out = first.save(tmp_path / "distilled")
    card = (out / "README.md").read_text()

    def write_half_then_crash(self, path, **kwargs):
        open(path, "wb").write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(datasets.Dataset, "to_parquet", write_half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        make_set(3).save(out)

    assert not list(out.rglob("*.tmp"))
    assert (out / "README.md").read_text() == card
    assert torch.equal(DistilledSet.load(out).pixel_values, first.pixel_values)


def test_load_names_the_missing_target_column(tmp_path):
    (tmp_path / "data").mkdir()
    columns = {"pixel_values": np.zeros((2, 1, RES, RES), np.float32), "label": [0, 1]}
    features = datasets.Features({"pixel_values": datasets.Array3D((1, RES, RES), "float32"),
                                  "label": datasets.Value("int64")})
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(tmp_path / "data" / "train.parquet"))

    with pytest.raises(ConfigError, match="'target'"):
        DistilledSet.load(tmp_path)


def test_load_asks_for_the_card_it_needs(tmp_path):
    out = make_set().save(tmp_path / "distilled")
    (out / "README.md").unlink()

    with pytest.raises(ConfigError, match="hf_ssdd"):
        DistilledSet.load(out)
