"""Shipped metrics: accuracy through `evaluate` offline, and the label-free representation R²."""

import evaluate
import pytest
import torch

from hf_ssdd.config import ConfigError
from hf_ssdd.metrics import metric_path, representation_r2


def test_accuracy_module_loads_by_path_and_counts_hand_computed_values():
    accuracy = evaluate.load(metric_path("accuracy"))
    assert accuracy.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2]) == {"accuracy": 0.75}
    accuracy.add_batch(predictions=[3, 3], references=[3, 0])
    accuracy.add_batch(predictions=[1], references=[1])
    assert accuracy.compute()["accuracy"] == pytest.approx(2 / 3)
    assert accuracy.compute(predictions=[1, 1], references=[0, 0]) == {"accuracy": 0.0}


def test_unknown_metric_is_a_one_line_error_listing_the_shipped_ones():
    with pytest.raises(ConfigError, match="'f1' is not shipped.*accuracy"):
        metric_path("f1")


def test_r2_matches_a_naive_reference_and_its_anchor_points():
    g = torch.Generator().manual_seed(0)
    target, noise = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)
    predicted = target + 0.5 * noise
    mean = [sum(target[i, j] for i in range(50)) / 50 for j in range(4)]
    residual = sum((target[i, j] - predicted[i, j]) ** 2 for i in range(50) for j in range(4))
    total = sum((target[i, j] - mean[j]) ** 2 for i in range(50) for j in range(4))
    assert representation_r2(predicted, target) == pytest.approx(float(1 - residual / total), rel=1e-5)
    assert representation_r2(target, target) == 1.0
    assert representation_r2(target.mean(0).expand_as(target), target) == pytest.approx(0.0, abs=1e-12)
    assert representation_r2(-target, target) < 0
    with pytest.raises(ValueError, match="one shape"):
        representation_r2(target[:, :3], target)
