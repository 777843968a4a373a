"""Any shared set as a training set: hf-ssdd's own bit for bit; another method's from parquet or imagefolder, with a
float `target` column (MSE) or class labels (cross-entropy); and any of them in the learner's channels and side."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForImageClassification

from hf_ssdd.config import ConfigError
from hf_ssdd.data import Normalization, convert_channels
from hf_ssdd.distilled_set import DistilledSet
from hf_ssdd.pretrain_config import PretrainConfig
from hf_ssdd.pretraining import pretrain
from hf_ssdd.training_sets import TrainingSet, load_training_set

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("shape", ["parquet", "imagefolder"])
@pytest.mark.parametrize("objective", ["labels", "targets"])
def test_a_set_shared_by_another_method_is_read_with_what_it_holds(tmp_path, shape, objective, write_shared_set):
    folder, images, values = write_shared_set(tmp_path / "set", shape, objective)
    data = load_training_set(folder)
    order = _order(data, images)
    pixels = data.normalization.denormalize(data.pixel_values) * 255  # (n, 3, 16, 16), the set's own pixels
    assert torch.allclose(pixels, torch.from_numpy(images[order]).permute(0, 3, 1, 2).float(), atol=1e-3)
    if objective == "labels":  # imagefolder numbers its class folders in sorted order: bottom 0, top 1
        expected = values[order] if shape == "parquet" else 1 - values[order]
        assert data.uses_labels and torch.equal(data.targets, torch.from_numpy(expected))
    else:
        assert not data.uses_labels and torch.allclose(data.targets, torch.from_numpy(values[order]).float())
    measured = Normalization.measure(torch.from_numpy(images).permute(0, 3, 1, 2))
    assert data.normalization.mean == pytest.approx(measured.mean) and data.metadata == {}


def _order(data: TrainingSet, images: np.ndarray) -> list[int]:
    """Which of `images` each row of `data` holds (imagefolder reads its class folders in its own order)."""
    pixels = (data.normalization.denormalize(data.pixel_values) * 255).round()
    reference = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return [int((reference - row).abs().flatten(1).sum(1).argmin()) for row in pixels]


def test_a_set_made_by_hf_ssdd_is_read_bit_for_bit_with_its_card(tiny_distilled):
    data, distilled = load_training_set(tiny_distilled), DistilledSet.load(tiny_distilled)
    assert torch.equal(data.pixel_values, distilled.pixel_values) and torch.equal(data.targets, distilled.targets)
    assert data.normalization == distilled.normalization and data.metadata["learner"]["depth"] == 2
    assert data.fingerprint() == distilled.fingerprint()


def test_a_set_is_converted_to_the_learners_channels_side_and_normalisation():
    pixels = torch.rand(3, 3, 16, 16)
    own = Normalization((0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
    data = TrainingSet(own.normalize(pixels), torch.arange(3), own)
    learner = Normalization((0.3,), (0.4,))
    converted = data.to_input(1, 12, learner)
    expected = F.interpolate(convert_channels(pixels, 1), size=(12, 12), mode="bilinear", antialias=True)
    torch.testing.assert_close(converted.pixel_values, learner.normalize(expected), atol=1e-5, rtol=0)
    assert converted.normalization == learner and converted.targets is data.targets
    assert data.to_input(3, 16) is data and data.to_input(3, 16, own) is data, "nothing to convert: the set itself"
    grey = data.to_input(1, 16)  # no normalisation given: the grey pixels' own, measured
    assert grey.normalization.mean == pytest.approx(Normalization.measure(convert_channels(pixels, 1)).mean)


def test_pretrain_trains_a_label_set_by_the_supervised_recipe_in_the_channels_and_side_asked(tmp_path,
                                                                                              write_shared_set):
    folder, _, _ = write_shared_set(tmp_path / "set", "parquet", "labels")
    out = pretrain(PretrainConfig(distilled=folder, channels=1, resolution=12, num_epochs=20,
                                  output_dir=str(tmp_path / "p"), report_to="none"))
    model = AutoModelForImageClassification.from_pretrained(out)
    assert (model.config.num_channels, model.config.image_size, model.config.num_labels) == (1, 12, 2)
    assert model.config.problem_type == "single_label_classification"
    saved = (out / "pretrain_config.yaml").read_text()
    assert "learning_rate: 0.01" in saved and "dsa: true" in saved and "lr_drop: 0.5" in saved
    card = (out / "README.md").read_text()
    assert "cross-entropy on the set's class labels" in card and "lr x0.1 after 50% of the steps" in card
    log = json.loads((out / "train_log.json").read_text())
    assert log[-1]["step"] == 20 and log[-1]["learning_rate"] == pytest.approx(0.001)


def test_pretrain_regresses_a_shared_target_column(tmp_path, write_shared_set):
    folder, _, values = write_shared_set(tmp_path / "set", "imagefolder", "targets")
    out = pretrain(PretrainConfig(distilled=folder, num_epochs=2, output_dir=str(tmp_path / "p"), report_to="none"))
    model = AutoModelForImageClassification.from_pretrained(out)
    assert model.config.problem_type == "regression" and model.config.num_labels == values.shape[1]
    assert "learning_rate: 0.1" in (out / "pretrain_config.yaml").read_text()


def test_class_names_are_numbered_in_sorted_order(tmp_path):
    import datasets

    rows = {"image": np.zeros((3, 16, 16, 3), np.uint8), "label": ["top", "bottom", "top"]}
    features = datasets.Features({"image": datasets.Array3D((16, 16, 3), "uint8"), "label": datasets.Value("string")})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "names"))
    data = load_training_set(str(tmp_path / "names"))
    assert data.uses_labels and data.targets.tolist() == [1, 0, 1] and data.num_outputs == 2


def test_a_set_that_cannot_be_trained_on_is_one_clear_error(tmp_path):
    import datasets

    def save(folder, column: str, values, feature):
        features = datasets.Features({"image": datasets.Array3D((16, 16, 3), "uint8"), column: feature})
        rows = {"image": np.zeros((2, 16, 16, 3), np.uint8), column: values}
        datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(folder))

    floats = tmp_path / "floats"
    save(floats, "label", [0.5, 1.5], datasets.Value("float32"))
    with pytest.raises(ConfigError, match="must hold class indices"):
        load_training_set(str(floats))
    with pytest.raises(ConfigError, match="label_column='kind' is not a column"):
        load_training_set(str(floats), label_column="kind")
    nan = tmp_path / "nan"
    save(nan, "target", [[0.0], [float("nan")]], datasets.List(datasets.Value("float32")))
    with pytest.raises(ConfigError, match="NaN or infinite"):
        load_training_set(str(nan))
