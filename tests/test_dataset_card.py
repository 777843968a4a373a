"""The distilled set's dataset card: what it records, that the Hub and `datasets` read it, its licence, and that its
snippets run. The stages' own tests check that they save a card."""

import hashlib
import re
from pathlib import Path
from unittest import mock

import torch
import yaml
from huggingface_hub import DatasetCard, DatasetCardData
from test_distilled_set import (  # the sets of the set I/O tests; the autouse fixture keeps `datasets`' cache private
    COMMIT,
    LOCAL,
    METADATA,
    M,
    _private_datasets_cache,  # noqa: F401
    make_set,
    snapshot,
)

from hf_ssdd.data import describe_source
from hf_ssdd.dataset_card import SNIPPET_PLACEHOLDER, render_card
from hf_ssdd.distilled_set import DistilledSet
from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.provenance import HUB_LICENSES


def card_yaml(out) -> dict:
    text = (out / "README.md").read_text()
    return yaml.safe_load(re.match(r"---\n(.*?)\n---\n", text, re.S).group(1))


def hub_card(text: str) -> DatasetCardData:
    """The card's YAML as the Hub reads it: `DatasetCard(text).data`, failing on anything it cannot parse."""
    return DatasetCard(text, ignore_metadata_errors=False).data


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


def test_the_built_in_sources_are_recorded_by_name_and_fashion_mnist_by_its_hub_id_and_licence():
    source, found = describe_source("fashion_mnist")
    assert source == {"id": "fashion_mnist", "hub_id": "zalando-datasets/fashion_mnist", "revision": None}
    assert found == {"id": "mit", "from": "the card of `zalando-datasets/fashion_mnist`"}
    text = render_card(make_set(metadata={**METADATA, "source": source, "license": found}))
    assert hub_card(text).source_datasets == ["zalando-datasets/fashion_mnist"] and hub_card(text).license == "mit"
    assert "`fashion_mnist` (on the Hub: `zalando-datasets/fashion_mnist`)" in text

    assert describe_source("digits") == ({"id": "digits", "hub_id": None, "revision": None}, None)


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

    from hf_ssdd.methods.krr_st.distiller import KRRSTDistiller

    source = shutil.copytree(tiny_labelled, tmp_path / "top-bottom")
    (source / "README.md").write_text("---\nlicense: mit\n---\n# Blobs at the top or the bottom\n")
    cfg = KRRSTConfig(dataset=str(source), teacher=tiny_teacher, output_dir=str(tmp_path / "out"), num_synthetic=4,
                      batch_size=8, learner_depth=1, learner_width=4, pool_size=1, pool_steps=2, report_to="none",
                      license="cc-by-nc-4.0")
    distiller = KRRSTDistiller(cfg)
    text = render_card(distiller.result())
    assert hub_card(text).license == "cc-by-nc-4.0" and "Licence: `cc-by-nc-4.0`, from `--license`." in text

    distiller.cfg = dataclasses.replace(cfg, license=None)
    text = render_card(distiller.result())
    assert hub_card(text).license == "mit" and "Licence: `mit`, from the card of the local folder `top-bottom`." in text
