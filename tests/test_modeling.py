"""Learners as transformers models: Auto-class round trips, and the head that transfer swaps."""

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, ResNetConfig

import hf_ssdd  # noqa: F401  (registers the Auto classes)
from hf_ssdd.config import ConfigError
from hf_ssdd.learners import ARCHITECTURES
from hf_ssdd.modeling import (
    LearnerConfig,
    LearnerForImageClassification,
    features,
    head_of,
    learner_config,
    new_model,
    replace_head,
)


def tiny(arch="convnet", **options):
    options = {"width": 4, **({"depth": 2} if arch == "convnet" else {}), **options}
    return LearnerConfig(arch=arch, num_channels=1, image_size=16, arch_options=options, num_labels=5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_round_trips_through_the_auto_classes(arch, tmp_path):
    torch.manual_seed(0)
    model = LearnerForImageClassification(tiny(arch)).eval()
    x = torch.randn(3, 1, 16, 16)
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).arch == arch
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(pixel_values=x).logits, model(pixel_values=x).logits)
    backbone = AutoModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(backbone(pixel_values=x).pooler_output, features(model, x))


def test_features_are_what_the_head_reads():
    model = LearnerForImageClassification(tiny()).eval()
    x = torch.randn(2, 1, 16, 16)
    phi = features(model, x)
    assert phi.shape == (2, model.learner.feature_dim)
    torch.testing.assert_close(model.classifier(phi), model(pixel_values=x).logits)


def test_replace_head_gives_a_fresh_classifier_of_the_new_size_even_when_sizes_match():
    model = LearnerForImageClassification(tiny())
    old = model.classifier.weight.detach().clone()
    head = replace_head(model, 5, {i: f"c{i}" for i in range(5)})
    assert model.classifier is head and head.out_features == 5 and not torch.equal(head.weight, old)
    assert model.config.num_labels == 5 and model.config.id2label[3] == "c3"


def test_a_transformers_architecture_goes_through_the_same_pipeline(tmp_path):
    ResNetConfig(hidden_sizes=[8, 16], depths=[1, 1], embedding_size=8).save_pretrained(tmp_path)
    model = new_model(learner_config(str(tmp_path), channels=1, resolution=16, num_labels=7)).eval()
    x = torch.randn(2, 1, 16, 16)
    assert model(pixel_values=x).logits.shape == (2, 7)
    parent, name, linear = head_of(model)
    assert linear.out_features == 7 and features(model, x).shape == (2, 16)
    replace_head(model, 3)
    assert model(pixel_values=x).logits.shape == (2, 3)


def test_bad_architectures_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="neither one of convnet"):
        learner_config(str(tmp_path / "nowhere"), 1, 16, 2)
    with pytest.raises(ConfigError, match="does not take"):
        learner_config("vgg11", 1, 16, 2, depth=3)
