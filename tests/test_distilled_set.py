"""The distilled set as a Hub dataset: what `save` writes, what `load_dataset` and `DistilledSet.load` give back."""

import hashlib
import json
from pathlib import Path
from unittest import mock

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from hf_ssdd.dataset_card import SNIPPET_PLACEHOLDER
from hf_ssdd.config import ConfigError
from hf_ssdd.distilled_set import DistilledSet, set_repo_id
from hf_ssdd.evaluation.report import add_benchmark_results
from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.parsing import load_yaml
from hf_ssdd.teachers import Teacher, teacher_provenance

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
    config = KRRSTConfig(num_synthetic=M, max_steps=3, output_dir=str(tmp_path / "distilled"))
    out = make_set().save(tmp_path / "distilled", config)
    second = make_set(3)
    second.save(out)

    assert load_yaml(out / "distill_config.yaml", KRRSTConfig)["num_synthetic"] == M
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


# ---------------------------------------------------------------------------------------------------------------------
# What a saved set keeps of its inputs: the repo in the snippets, local inputs by folder, teachers by id or sha256
# ---------------------------------------------------------------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LOCAL = {  # what `KRRSTDistiller.result` records for a local source and a local teacher
    **METADATA,
    "source": {"folder": "blobs", "split": "train", "image_column": "image", "num_images": 48},
    "teacher": {"folder": "vit", "sha256": {"model.safetensors": "ab" * 32}, "pooling": "cls", "dim": DIM,
                "model_type": "vit"},
    "license": None,
    "hyperparameters": {"dataset": "blobs", "teacher": "vit", "seed": 7},
}


def snapshot(tmp_path, repo: str, filename: str, text: str) -> str:
    """A file as the Hub cache holds it, in the snapshot folder named after its commit."""
    path = tmp_path / "hub-cache" / f"datasets--{repo.replace('/', '--')}" / "snapshots" / COMMIT / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_a_pushed_set_names_its_repo_in_the_snippets_and_keeps_it_through_new_results(tmp_path):
    out = make_set().save(tmp_path / "distilled")
    assert f'load_dataset("{SNIPPET_PLACEHOLDER}"' in (out / "README.md").read_text(), "not pushed: a placeholder"

    set_repo_id(out, "me/fmnist-distilled")
    text = (out / "README.md").read_text()
    assert 'load_dataset("me/fmnist-distilled", split="train")' in text
    assert "--distilled me/fmnist-distilled " in text and SNIPPET_PLACEHOLDER not in text
    assert DistilledSet.load(out).metadata == {**METADATA, "repo_id": "me/fmnist-distilled"}

    row = {"method": "krr_st", "m": M, "arch": "convnet", "seed": 0, "target": "t", "protocol": "linear",
           "accuracy": 0.5}
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")
    add_benchmark_results(out, tmp_path)  # renders the card again
    text = (out / "README.md").read_text()
    assert "## Transfer results" in text and 'load_dataset("me/fmnist-distilled"' in text


def test_set_repo_id_leaves_a_folder_that_is_not_a_distilled_set_alone(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# A teacher\n")
    set_repo_id(tmp_path, "me/teacher")
    assert (tmp_path / "README.md").read_text() == "---\nlicense: mit\n---\n# A teacher\n"


def test_a_card_names_local_inputs_by_folder_yet_the_folder_that_made_it_finds_them_again(tmp_path):
    source, teacher = tmp_path / "data" / "blobs", tmp_path / "models" / "vit"
    source.mkdir(parents=True)
    teacher.mkdir(parents=True)
    config = KRRSTConfig(dataset=str(source), teacher=str(teacher), output_dir=str(tmp_path / "distilled"))
    out = make_set(metadata=LOCAL).save(tmp_path / "distilled", config)

    assert str(tmp_path) not in (out / "README.md").read_text()
    loaded = DistilledSet.load(out)
    assert loaded.metadata["source"] == {**LOCAL["source"], "id": str(source)}, "the benchmark reloads it"
    assert loaded.metadata["teacher"]["id"] == str(teacher)
    assert DistilledSet.load(out).metadata["hyperparameters"] == LOCAL["hyperparameters"]

    set_repo_id(out, "me/blobs-distilled")  # renders the card again from the loaded set
    assert str(tmp_path) not in (out / "README.md").read_text()
    assert "local folder `blobs`" in (out / "README.md").read_text()


def test_a_local_teacher_is_named_by_its_folder_and_the_sha256_of_its_weights(tiny_teacher):
    weights = Path(tiny_teacher) / "model.safetensors"

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()  # what `sha256sum model.safetensors` prints
    assert teacher_provenance(tiny_teacher + "/") == {"folder": Path(tiny_teacher).name,
                                                      "sha256": {"model.safetensors": digest}}


def test_a_hub_teacher_is_recorded_by_id_and_the_commit_its_files_came_from(tmp_path, tiny_teacher):
    teacher = Teacher.from_pretrained(tiny_teacher)
    teacher.name_or_path, teacher.revision = "org/tiny-vit", "main"
    cached = mock.Mock(return_value=snapshot(tmp_path, "org/tiny-vit", "config.json", "{}"))
    with mock.patch("transformers.utils.cached_file", cached):
        described = teacher.describe()
    assert cached.call_args.args == ("org/tiny-vit", "config.json") and cached.call_args.kwargs["revision"] == "main"
    assert (described["id"], described["revision"], described["pooling"]) == ("org/tiny-vit", COMMIT, "cls")

    with mock.patch("transformers.utils.cached_file", mock.Mock(side_effect=OSError("offline"))):
        assert teacher_provenance("org/tiny-vit", "v2") == {"id": "org/tiny-vit", "revision": "v2"}




