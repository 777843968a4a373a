"""The distilled set as a Hub dataset: what `save` writes, what `load_dataset` and `DistilledSet.load` give back."""

import hashlib
import json
import re
from pathlib import Path
from unittest import mock

import datasets
import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import DatasetCard, DatasetCardData
from PIL import Image
from safetensors.torch import save_file

from hf_ssdd.config import HUB_LICENSES, ConfigError, DistillConfig, load_yaml
from hf_ssdd.distilled_set import (
    SNIPPET_PLACEHOLDER,
    DistilledSet,
    describe_source,
    render_card,
    set_repo_id,
)
from hf_ssdd.evaluation.report import add_benchmark_results
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


# ---------------------------------------------------------------------------------------------------------------------
# A card the Hub accepts: licence, source_datasets, the repo in the snippets, no path of this machine
# ---------------------------------------------------------------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LOCAL = {  # what `Distiller.result` records for a local source and a local teacher
    **METADATA,
    "source": {"folder": "blobs", "split": "train", "image_column": "image", "num_images": 48},
    "teacher": {"folder": "vit", "sha256": {"model.safetensors": "ab" * 32}, "pooling": "cls", "dim": DIM,
                "model_type": "vit"},
    "license": None,
    "hyperparameters": {"dataset": "blobs", "teacher": "vit", "seed": 7},
}


def hub_card(text: str) -> DatasetCardData:
    """The card's YAML as the Hub reads it: `DatasetCard(text).data`, failing on anything it cannot parse."""
    return DatasetCard(text, ignore_metadata_errors=False).data


def snapshot(tmp_path, repo: str, filename: str, text: str) -> str:
    """A file as the Hub cache holds it, in the snapshot folder named after its commit."""
    path = tmp_path / "hub-cache" / f"datasets--{repo.replace('/', '--')}" / "snapshots" / COMMIT / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_the_card_metadata_round_trips_through_huggingface_hub(tmp_path):
    with_licence = {**METADATA, "license": {"id": "mit", "from": "the card of `zalando-datasets/fashion_mnist`"},
                    "source": {**METADATA["source"], "hub_id": "zalando-datasets/fashion_mnist"}}
    for metadata in (METADATA, with_licence, LOCAL, {}):
        text = render_card(make_set(metadata=metadata))
        data = hub_card(text)

        assert DatasetCard(f"---\n{data.to_yaml()}\n---\n").data.to_dict() == data.to_dict()
        assert data.license in HUB_LICENSES
        assert data.source_datasets is None or (
            isinstance(data.source_datasets, list) and all(re.fullmatch(r"[\w.-]+/[\w.-]+", i)
                                                           for i in data.source_datasets)
        )
        assert data.get("hf_ssdd")["metadata"] == metadata


def test_the_licence_and_source_dataset_of_a_hub_source_are_in_the_card(tmp_path):
    readme = "---\nlicense:\n- mit\npretty_name: FashionMNIST\n---\n# FashionMNIST\n"
    download = mock.Mock(return_value=snapshot(tmp_path, "zalando-datasets/fashion_mnist", "README.md", readme))
    with mock.patch("huggingface_hub.hf_hub_download", download):
        source, found = describe_source("zalando-datasets/fashion_mnist", revision="main")

    download.assert_called_once_with("zalando-datasets/fashion_mnist", "README.md", repo_type="dataset",
                                     revision="main")
    assert source == {"id": "zalando-datasets/fashion_mnist", "hub_id": "zalando-datasets/fashion_mnist",
                      "revision": COMMIT}
    text = render_card(make_set(metadata={**METADATA, "source": source, "license": found}))
    assert hub_card(text).license == ["mit"] and hub_card(text).source_datasets == ["zalando-datasets/fashion_mnist"]
    assert "Licence: `mit`, from the card of `zalando-datasets/fashion_mnist`." in text
    assert f"`zalando-datasets/fashion_mnist`, revision `{COMMIT}`" in text


def test_a_hub_source_out_of_reach_keeps_the_given_revision_and_an_unknown_licence():
    offline = mock.Mock(side_effect=OSError("offline mode is enabled"))
    with mock.patch("huggingface_hub.hf_hub_download", offline):
        assert describe_source("org/images", revision="v1") == (
            {"id": "org/images", "hub_id": "org/images", "revision": "v1"}, None
        )


def test_the_built_in_sources_are_recorded_by_name_and_fashion_mnist_by_its_hub_id_and_licence():
    source, found = describe_source("fashion_mnist")
    assert source == {"id": "fashion_mnist", "hub_id": "zalando-datasets/fashion_mnist", "revision": None}
    assert found == {"id": "mit", "from": "the card of `zalando-datasets/fashion_mnist`"}
    text = render_card(make_set(metadata={**METADATA, "source": source, "license": found}))
    assert hub_card(text).source_datasets == ["zalando-datasets/fashion_mnist"] and hub_card(text).license == "mit"
    assert "`fashion_mnist` (on the Hub: `zalando-datasets/fashion_mnist`)" in text

    assert describe_source("digits") == ({"id": "digits", "hub_id": None, "revision": None}, None)


def test_a_local_source_is_named_by_its_folder_with_the_licence_of_its_card_or_its_dataset_info(tmp_path):
    carded = tmp_path / "carded"
    carded.mkdir()
    (carded / "README.md").write_text("---\nlicense: other\nlicense_name: blob-licence\nlicense_link: LICENSE\n---\n")
    assert describe_source(str(carded)) == (
        {"folder": "carded"},
        {"id": "other", "from": "the card of the local folder `carded`", "name": "blob-licence", "link": "LICENSE"},
    )

    features = datasets.Features({"image": datasets.Array2D((4, 4), "uint8")})
    info = datasets.DatasetInfo(license="CC-BY-4.0", features=features)  # a DatasetDict: dataset_info.json per split
    split = datasets.Dataset.from_dict({"image": np.zeros((2, 4, 4), np.uint8)}, features=features, info=info)
    datasets.DatasetDict({"train": split}).save_to_disk(str(tmp_path / "on-disk"))
    assert describe_source(str(tmp_path / "on-disk") + "/") == (
        {"folder": "on-disk"}, {"id": "cc-by-4.0", "from": "the dataset_info.json of the local folder `on-disk`"}
    )

    (tmp_path / "plain").mkdir()
    assert describe_source(str(tmp_path / "plain")) == ({"folder": "plain"}, None)


def test_the_card_of_a_licence_other_names_it(tmp_path):
    licence = {"id": "other", "from": "the card of `org/images`", "name": "blob-licence", "link": "LICENSE"}
    text = render_card(make_set(metadata={**METADATA, "license": licence}))

    data = hub_card(text)
    assert (data.license, data.get("license_name"), data.get("license_link")) == ("other", "blob-licence", "LICENSE")
    assert "Licence: `other` (blob-licence, LICENSE), from the card of `org/images`." in text


def test_an_unknown_licence_is_said_and_how_to_set_it():
    text = render_card(make_set(metadata=LOCAL))

    assert hub_card(text).license == "unknown" and hub_card(text).source_datasets is None
    licence = text.split("## Licence")[1].split("##")[0]
    assert "licence is unknown" in licence and "--license" in licence and "`license` field" in licence


def test_license_must_be_a_hub_licence_id():
    assert DistillConfig(license="cc-by-nc-4.0").license == "cc-by-nc-4.0"
    with pytest.raises(ConfigError, match="license='MIT' is not a Hub licence id"):
        DistillConfig(license="MIT")


def test_a_pushed_set_names_its_repo_in_the_snippets_and_keeps_it_through_new_results(tmp_path):
    out = make_set().save(tmp_path / "distilled")
    assert f'load_dataset("{SNIPPET_PLACEHOLDER}"' in (out / "README.md").read_text(), "not pushed: a placeholder"

    set_repo_id(out, "me/fmnist-distilled")
    text = (out / "README.md").read_text()
    assert 'load_dataset("me/fmnist-distilled", split="train")' in text
    assert "--distilled me/fmnist-distilled " in text and SNIPPET_PLACEHOLDER not in text
    assert DistilledSet.load(out).metadata == {**METADATA, "repo_id": "me/fmnist-distilled"}

    row = {"method": "distilled", "m": M, "arch": "convnet", "target": "t", "protocol": "linear", "accuracy": 0.5}
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
    config = DistillConfig(dataset=str(source), teacher=str(teacher), output_dir=str(tmp_path / "distilled"))
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


def test_a_distilled_card_from_local_inputs_holds_no_path_of_this_machine(tiny_distilled, tiny_labelled, tiny_teacher):
    text = (Path(tiny_distilled) / "README.md").read_text()
    metadata = DatasetCard(text).data.get("hf_ssdd")["metadata"]

    for path in (tiny_distilled, tiny_labelled, tiny_teacher, str(Path.home()), str(Path(tiny_distilled).parents[2])):
        assert path not in text
    assert metadata["source"]["folder"] == Path(tiny_labelled).name and "id" not in metadata["source"]
    weights = (Path(tiny_teacher) / "model.safetensors").read_bytes()
    assert metadata["teacher"]["folder"] == Path(tiny_teacher).name
    assert metadata["teacher"]["sha256"] == {"model.safetensors": hashlib.sha256(weights).hexdigest()}
    hyper = metadata["hyperparameters"]
    assert (hyper["dataset"], hyper["teacher"]) == (Path(tiny_labelled).name, Path(tiny_teacher).name)
    assert "license" not in hyper and hub_card(text).license == "unknown"
    assert DistilledSet.load(tiny_distilled).metadata["source"]["id"] == tiny_labelled


def test_an_explicit_license_wins_over_the_sources(tiny_labelled, tiny_teacher, tmp_path):
    import dataclasses
    import shutil

    from hf_ssdd.distill import Distiller

    source = shutil.copytree(tiny_labelled, tmp_path / "top-bottom")
    (source / "README.md").write_text("---\nlicense: mit\n---\n# Blobs at the top or the bottom\n")
    cfg = DistillConfig(dataset=str(source), teacher=tiny_teacher, output_dir=str(tmp_path / "out"), num_synthetic=4,
                        batch_size=8, learner_depth=1, learner_width=4, pool_size=1, pool_steps=2, report_to="none",
                        license="cc-by-nc-4.0")
    distiller = Distiller(cfg)
    text = render_card(distiller.result())
    assert hub_card(text).license == "cc-by-nc-4.0" and "Licence: `cc-by-nc-4.0`, from `--license`." in text

    distiller.cfg = dataclasses.replace(cfg, license=None)
    text = render_card(distiller.result())
    assert hub_card(text).license == "mit" and "Licence: `mit`, from the card of the local folder `top-bottom`." in text
